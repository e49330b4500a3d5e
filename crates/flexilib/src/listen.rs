//! The listening socket and the accept loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::conn::limit::{Admission, ConnLimit, Refusal};
use crate::conn::{self, ConnSettings};
use crate::service::{handle, Server};

/// Binds the listening socket (non-blocking, registered with no runtime:
/// each I/O thread registers a duplicate with its own).
pub async fn bind(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    TcpListener::bind(address).await?.into_std()
}

/// Adopts the listening socket inherited from the supervisor (non-blocking,
/// registered with no runtime).
pub fn adopt(fd: i32) -> std::io::Result<std::net::TcpListener> {
    let listener = crate::os::adopt_listener(fd)?;
    // Not for processes a library might start.
    crate::os::close_on_exec(fd)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Accepts connections, serving each on its own task of the calling
/// thread's runtime, until the future is dropped.
///
/// Connections are admitted by `limit` (see [`crate::conn::limit`]): over
/// the cap, or when the process is out of file descriptors, a newcomer is
/// answered 503 instead of waiting unanswered in the listen queue. Once
/// `shutdown` turns true, connections already open finish their requests,
/// and connections accepted since are answered 503 with `Connection:
/// close` at once (the supervisor holds the socket open until the server
/// exits).
pub async fn accept_loop(
    listener: &TcpListener,
    server: &Arc<Server>,
    settings: &Arc<ConnSettings>,
    limit: &Arc<ConnLimit>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut draining = *shutdown.borrow();
    // A descriptor held back for the moment the process runs out of them:
    // closed to accept one client and answer it, instead of leaving every
    // client in the listen queue.
    let mut spare = open_spare();
    let mut out_of_fds = false;
    // Refused connections must not see the shutdown signal: it would close
    // them before their request is read and answered.
    let (_keep, never) = watch::channel(false);
    let shutdowns = Shutdowns {
        serve: shutdown.clone(),
        refuse: never,
    };
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.changed(), if !draining => {
                draining = true;
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if out_of_descriptors(&error) => {
                if !out_of_fds {
                    // Once per episode, not once per client.
                    tracing::warn!(%error, "out of file descriptors: new clients get 503");
                    out_of_fds = true;
                }
                limit.make_room();
                if spare.take().is_some() {
                    if let Ok((stream, peer)) = listener.accept().await {
                        tracing::debug!(%peer, "out of file descriptors: client answered 503");
                        start(stream, peer, server, settings, limit.refuse(), &shutdowns);
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                spare = open_spare();
                continue;
            }
            Err(error) => {
                // Out of memory, say: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        out_of_fds = false;
        if spare.is_none() {
            spare = open_spare();
        }
        let admission = if draining {
            limit.refuse()
        } else {
            limit.admit()
        };
        if matches!(admission, Admission::Refuse(_)) && !draining {
            tracing::debug!(%peer, max = limit.max(), "connection cap reached: client answered 503");
        }
        start(stream, peer, server, settings, admission, &shutdowns);
    }
}

/// The shutdown signal a served connection watches, and the one that
/// never fires, for refused connections.
struct Shutdowns {
    serve: watch::Receiver<bool>,
    refuse: watch::Receiver<bool>,
}

/// Serves (or refuses) one accepted connection on a task of its own.
fn start(
    stream: TcpStream,
    peer: SocketAddr,
    server: &Arc<Server>,
    settings: &Arc<ConnSettings>,
    admission: Admission,
    shutdowns: &Shutdowns,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    let (refusal, shutdown) = match &admission {
        Admission::Serve(_) => (None, shutdowns.serve.clone()),
        Admission::Refuse(_) => {
            let refusal = if *shutdowns.serve.borrow() {
                Refusal::ShuttingDown
            } else {
                Refusal::AtCapacity
            };
            (Some(refusal), shutdowns.refuse.clone())
        }
        Admission::Close => return,
    };
    let server = Arc::clone(server);
    let settings = Arc::clone(settings);
    if refusal == Some(Refusal::AtCapacity) {
        // Answered before its request is read: a client that never sends
        // one must not hold a descriptor for the header-read timeout.
        tokio::spawn(async move {
            conn::refuse(stream, peer, settings, Refusal::AtCapacity).await;
            drop(admission);
        });
        return;
    }
    tokio::spawn(async move {
        let service = move |activity: Arc<conn::Activity>| {
            move |request| handle(Arc::clone(&server), Arc::clone(&activity), request)
        };
        conn::serve_public(stream, peer, service, settings, shutdown, refusal, false).await;
        drop(admission);
    });
}

/// Out of file descriptors, for the process or the whole system.
fn out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

fn open_spare() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Accepts TLS connections (`TLS_PORT`) until the future is dropped: as
/// [`accept_loop`] does, with the TLS handshake first (bounded by the
/// header-read timeout) on the connection's own task.
pub async fn tls_accept_loop(
    listener: &TcpListener,
    acceptor: &tokio_rustls::TlsAcceptor,
    server: &Arc<Server>,
    settings: &Arc<ConnSettings>,
    limit: &Arc<ConnLimit>,
    shutdown: watch::Receiver<bool>,
) {
    let (_keep, never) = watch::channel(false);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                if out_of_descriptors(&error) {
                    limit.make_room();
                }
                tracing::debug!(%error, "TLS accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let draining = *shutdown.borrow();
        let admission = if draining {
            limit.refuse()
        } else {
            limit.admit()
        };
        let refusal = match &admission {
            Admission::Serve(_) => None,
            Admission::Refuse(_) if draining => Some(Refusal::ShuttingDown),
            Admission::Refuse(_) => Some(Refusal::AtCapacity),
            Admission::Close => continue,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let server = Arc::clone(server);
        let settings = Arc::clone(settings);
        let shutdown = if refusal.is_some() {
            never.clone()
        } else {
            shutdown.clone()
        };
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(settings.header_read_timeout, acceptor.accept(stream)).await;
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake not finished in time");
                    return;
                }
            };
            match refusal {
                Some(Refusal::AtCapacity) => {
                    conn::refuse(stream, peer, settings, Refusal::AtCapacity).await;
                }
                _ => {
                    // The client chose HTTP/2 by ALPN.
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    let service = move |activity: Arc<conn::Activity>| {
                        move |request| handle(Arc::clone(&server), Arc::clone(&activity), request)
                    };
                    conn::serve_public(stream, peer, service, settings, shutdown, refusal, h2)
                        .await;
                }
            }
            drop(admission);
        });
    }
}
