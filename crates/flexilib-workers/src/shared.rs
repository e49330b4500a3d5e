//! What a route's JS threads share (configuration, KV stores, D1
//! databases, R2 buckets, the outbound
//! HTTP client, the project's modules, the host-side runtime) and the
//! messages a JS thread receives.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use flexilib_sdk::Responder;

use crate::config::WorkerConfig;
use crate::d1::D1Database;
use crate::fetch::{BodyRx, FetchHead, HttpClient};
use crate::kv::KvStore;
use crate::modules::Project;
use crate::objects::ObjectStore;
use crate::r2::R2Bucket;

/// What a route's JS threads share.
pub struct Shared {
    /// The resolved configuration.
    pub config: WorkerConfig,
    /// KV namespaces, by binding index.
    pub kv: Vec<Arc<KvStore>>,
    /// D1 databases, by binding index.
    pub d1: Vec<Arc<D1Database>>,
    /// R2 buckets, by binding index.
    pub r2: Vec<Arc<R2Bucket>>,
    /// Durable Object storage, by binding index.
    pub objects: Vec<Arc<ObjectStore>>,
    /// SQL databases of SQLite-backed Durable Object classes, by binding
    /// index (`None`: a key-value class).
    pub sql: Vec<Option<Arc<crate::sql::ObjectSql>>>,
    /// Durable Object alarms scheduled.
    pub alarms: crate::alarms::Alarms,
    /// The JS thread Durable Objects live on (the instance's first), set
    /// once the threads run: every call to an object goes there, so calls
    /// to one object never run at once.
    pub objects_home: OnceLock<(std::sync::mpsc::Sender<Msg>, Arc<crate::queue::Queue>)>,
    /// One lock per object called, so its calls run one at a time (an
    /// input gate, stricter than Cloudflare's: a call waits until the
    /// previous one has answered).
    pub object_locks:
        std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// What the instance counts for the admin listener's `/metrics`.
    pub(crate) counts: crate::gauges::Counts,
    /// Outbound HTTP.
    pub client: HttpClient,
    /// Where modules come from.
    pub project: Project,
    tokio: Option<tokio::runtime::Runtime>,
    /// Spawns host work on the runtime above.
    pub(crate) handle: tokio::runtime::Handle,
}

impl Shared {
    /// Opens the KV stores, D1 databases and R2 buckets and starts the
    /// host-side runtime.
    pub fn new(config: WorkerConfig) -> Result<Shared, String> {
        let kv = config
            .kv
            .iter()
            .map(|ns| KvStore::open(&config.state_dir, &ns.id).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let d1 = config
            .d1
            .iter()
            .map(|db| D1Database::open(&config.state_dir, &db.id).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("D1 database: {e}"))?;
        let r2 = config
            .r2
            .iter()
            .map(|bucket| R2Bucket::open(&config.state_dir, &bucket.bucket).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("R2 bucket: {e}"))?;
        let objects = config
            .objects
            .iter()
            .map(|object| ObjectStore::open(&config.state_dir, &object.class_name).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("Durable Objects: {e}"))?;
        let sql = config
            .objects
            .iter()
            .map(|object| {
                object.sqlite.then(|| {
                    Arc::new(crate::sql::ObjectSql::new(
                        &config.state_dir,
                        &object.class_name,
                    ))
                })
            })
            .collect();
        let project = Project::new(&config.root)
            .map_err(|e| e.to_string())?
            .with_node_compat(config.node_compat());
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(4)
            .thread_name("worker-io")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the worker's I/O runtime: {e}"))?;
        let handle = tokio.handle().clone();
        let client = {
            let _guard = handle.enter();
            crate::fetch::client()
        };
        Ok(Shared {
            config,
            kv,
            d1,
            r2,
            objects,
            sql,
            alarms: crate::alarms::Alarms::default(),
            objects_home: OnceLock::new(),
            object_locks: std::sync::Mutex::default(),
            counts: crate::gauges::Counts::default(),
            client,
            project,
            tokio: Some(tokio),
            handle,
        })
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(runtime) = self.tokio.take() {
            runtime.shutdown_background();
        }
    }
}

/// A service's answer: its head and its whole body.
#[derive(Debug)]
pub struct ServiceAnswer {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub status_text: String,
    /// name, value, name, value, …
    pub headers: Vec<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl ServiceAnswer {
    /// The answer an SDK response makes (a failure the runtime answered).
    pub fn from_sdk(response: &flexilib_sdk::Response) -> Self {
        ServiceAnswer {
            status: response.status_code(),
            status_text: response.reason_phrase().unwrap_or_default().to_string(),
            headers: response
                .headers()
                .iter()
                .flat_map(|(name, value)| [name.to_string(), value.to_string()])
                .collect(),
            body: response.body_bytes().to_vec(),
        }
    }
}

/// Where a service's answer goes.
pub type ReplyTx = tokio::sync::oneshot::Sender<ServiceAnswer>;

/// Which Durable Object a call is for, and what it calls.
pub struct ObjectTarget {
    /// The namespace's binding index.
    pub binding: usize,
    /// The object's id (64 hex digits).
    pub id: String,
    /// An RPC method (its arguments are the body, in the prelude's RPC
    /// encoding; `NAME\0get` reads a property), `\0alarm:RETRY:TIME` for
    /// the object's `alarm()` (see alarms.rs), or `None` for `fetch`.
    pub rpc: Option<String>,
}

/// What a service binding's call reaches in the callee.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The exported class (`entrypoint = "Name"`), or `""` for the
    /// default export.
    pub entrypoint: String,
    /// The RPC method (its arguments are the body, in the prelude's RPC
    /// encoding), or `""` for `fetch`.
    pub method: String,
}

/// A request handed to a JS thread.
pub struct Incoming {
    /// Method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// name, value, name, value, …
    pub headers: Vec<String>,
    /// The whole body.
    pub body: Vec<u8>,
    /// Answers it (`None` for a scheduled event of `[triggers] crons` and
    /// for a call through a service binding).
    pub responder: Option<Responder>,
    /// Answers a call through a service binding or to a Durable Object.
    pub service: Option<ReplyTx>,
    /// A call to a Durable Object (then `service` answers it).
    pub object: Option<ObjectTarget>,
    /// A call through a service binding to a named entrypoint or an RPC
    /// method (then `service` answers it); `None` for the default
    /// export's `fetch`.
    pub entry: Option<Entry>,
    /// `Some(cron)` for `/__scheduled`.
    pub scheduled: Option<String>,
}

/// What woke a socket up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The client sent something (or closed).
    Readable,
    /// There is room to write again.
    Writable,
    /// Nothing new: the previous event ran, read on.
    More,
}

/// A message to a JS thread.
pub enum Msg {
    /// A request.
    Request(Box<Incoming>),
    /// A host operation of isolate generation `.0` finished.
    Done(u64, u64, OpResult),
    /// WebSocket `.1` of isolate generation `.0` can go on.
    Socket(u64, u64, Wake),
    /// The instance is retired: finish what is running, then exit.
    Shutdown,
}

/// The outcome of a host operation.
pub enum OpResult {
    /// Resolve with this.
    Ok(Payload),
    /// Reject with an error of this class and message.
    Err(&'static str, String),
}

/// What an operation resolves with.
pub enum Payload {
    /// `undefined`.
    Undefined,
    /// `null`.
    Null,
    /// A string.
    Text(String),
    /// `[Uint8Array, metadata JSON | null]`, a KV value.
    Entry(Vec<u8>, Option<String>),
    /// A fetch response head.
    Head(FetchHead),
    /// A body chunk (`None` at the end), with the body's channel to keep.
    Chunk(u64, BodyRx, Option<Bytes>),
}

/// Why a thread's module could not be loaded, with the files it read.
pub type Ready = (Vec<PathBuf>, Result<(), String>);
