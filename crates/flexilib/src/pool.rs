//! Handler threads: where blocking library calls run.
//!
//! Library calls block (a handler may sleep for seconds), so they never run
//! on the I/O threads. The I/O side queues a [`Job`] and awaits its reply on
//! a oneshot channel; `SERVER_THREAD_COUNT` handler threads take jobs off one
//! shared queue, so a job waits only until *any* handler thread is free.
//! Each handler thread owns its [`RequestArena`].

use std::sync::Arc;

use bytes::Bytes;
use hyper::http::request::Parts;
use tokio::sync::oneshot;

use crate::arena::{ArenaUsage, RequestArena};
use crate::target::native::{CallError, LibraryResponse, LoadError, NativeLibrary};

/// A library call waiting for a handler thread.
pub struct Job {
    /// The library to call.
    pub library: Arc<NativeLibrary>,
    /// The request head; handed back in the reply.
    pub head: Parts,
    /// The complete request body.
    pub body: Bytes,
    /// Where the result goes.
    pub reply: oneshot::Sender<JobDone>,
}

/// The result of a [`Job`].
pub struct JobDone {
    /// What the library produced.
    pub outcome: Outcome,
    /// The request head, returned for the access log.
    pub head: Parts,
    /// Arena use during the call.
    pub usage: ArenaUsage,
}

/// What came of calling a library.
pub enum Outcome {
    /// A response to send.
    Response(LibraryResponse),
    /// The library could not be loaded.
    LoadFailed(LoadError),
    /// The library was called but gave nothing usable.
    CallFailed(CallError),
}

/// Error returned when the handler threads are gone (server shutting down).
#[derive(Debug, thiserror::Error)]
#[error("handler threads have stopped")]
pub struct PoolClosed;

/// The handler threads and their shared job queue.
pub struct HandlerPool {
    queue: crossbeam_channel::Sender<Job>,
}

impl HandlerPool {
    /// Starts `threads` handler threads, each with an arena of `prealloc`
    /// bytes that keeps at most `retain` bytes between requests.
    pub fn start(threads: usize, prealloc: usize, retain: usize) -> std::io::Result<Self> {
        let (queue, jobs) = crossbeam_channel::unbounded::<Job>();
        for index in 0..threads {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("flexilib-handler-{index}"))
                .spawn(move || {
                    let mut arena = RequestArena::new(prealloc, retain);
                    for job in jobs {
                        run(&mut arena, job);
                    }
                })?;
        }
        Ok(Self { queue })
    }

    /// Queues a job for the next free handler thread.
    pub fn submit(&self, job: Job) -> Result<(), PoolClosed> {
        self.queue.send(job).map_err(|_| PoolClosed)
    }
}

fn run(arena: &mut RequestArena, job: Job) {
    let Job {
        library,
        head,
        body,
        reply,
    } = job;
    let preallocated = arena.capacity();
    let outcome = match library.get() {
        Err(error) => Outcome::LoadFailed(error),
        Ok(loaded) => match loaded.call(arena, &head, &body) {
            Ok(response) => Outcome::Response(response),
            Err(error) => Outcome::CallFailed(error),
        },
    };
    drop(body);
    let usage = arena.finish(preallocated);
    // The receiver is gone only if the client went away; nothing to do then.
    let _ = reply.send(JobDone {
        outcome,
        head,
        usage,
    });
}
