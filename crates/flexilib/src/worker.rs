//! The server process: settings and config in, handler slots and the I/O
//! threads up ([`crate::cores`]), serve until SIGTERM/SIGINT, then shut down
//! gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::access_log::AccessLog;
use crate::conn::limit::ConnLimit;
use crate::conn::{ConnSettings, ConnStats};
use crate::handlers::HandlerSlots;
use crate::http1::head::HeadLimits;
use crate::last_good::LastGood;
use crate::listen;
use crate::metrics::Lifecycle;
use crate::reload::Reloader;
use crate::route::RouteTable;
use crate::service::Server;
use crate::settings::Settings;
use crate::targets::lambda::event_queue::EventQueue;
use crate::targets::native::copy::CopyDir;
use crate::targets::upstream::{ProxyClient, ProxySettings};
use crate::targets::TargetEnv;
use crate::{cores, housekeeping, os};

/// Runs the server until SIGTERM/SIGINT. `inherited` is the supervisor's
/// listening socket, if any.
pub fn run(settings: &Settings, inherited: Option<i32>) -> anyhow::Result<()> {
    let open_files = match os::raise_open_file_limit() {
        Ok(limit) => {
            tracing::debug!(limit, "open file limit");
            Some(limit)
        }
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open file limit");
            None
        }
    };
    let limit = Arc::new(ConnLimit::new(settings.max_connections(open_files)));
    if let Some(open_files) = open_files.filter(|&files| limit.max() as u64 >= files) {
        tracing::warn!(
            max_connections = limit.max(),
            open_files,
            "MAX_CONNECTIONS is not below the open file limit: clients past the limit get 503"
        );
    }
    let last_good = LastGood::from_env();
    let config = LastGood::load_or_fall_back(last_good.as_ref(), &settings.config)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    for rule in &config.rules {
        tracing::debug!(line = rule.line, matcher = ?rule.matcher, target = ?rule.target, "route");
    }
    let copies = Arc::new(CopyDir::default());
    let routes = RouteTable::build(&config, None, &copies)?;
    tracing::info!(config = %config.path.display(), routes = routes.len(), "config loaded");

    let log = Arc::new(AccessLog::new(settings.access_log_format));
    let conn_stats = Arc::new(ConnStats::default());
    housekeeping::start(Arc::clone(&log), Arc::clone(&conn_stats))
        .context("cannot start the housekeeping thread")?;
    // Signals, shutdown, and tasks tied to no connection (see `cores`); the
    // I/O threads start in `serve`.
    let control = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(crate::control::CONTROL_THREAD_NAME)
        .enable_all()
        .build()
        .context("cannot start the control runtime")?;
    crate::control::set(control.handle().clone());
    let handlers = HandlerSlots::start(
        settings.handler_threads(),
        settings.arena_prealloc_bytes(),
        settings.arena_retain_bytes(),
    )
    .context("cannot start the handler stall guard")?;
    let server = Arc::new(Server {
        routes: ArcSwap::from_pointee(routes),
        env: TargetEnv {
            handlers,
            proxy: ProxyClient::new(ProxySettings {
                connect_timeout: settings.upstream_connect_timeout,
                response_timeout: settings.upstream_response_timeout,
                idle_timeout: settings.upstream_idle_timeout,
                cooldown: settings.upstream_cooldown,
            }),
            max_body_bytes: settings.max_body_bytes,
            body_timeout: settings.body_read_timeout,
            completion_timeout: settings.library_completion_timeout,
            copies,
            files_changed: std::sync::OnceLock::new(),
        },
        log: Arc::clone(&log),
        reloads: parking_lot::Mutex::new(false),
        metrics: crate::metrics::ServerMetrics::default(),
        compression: settings.compression == crate::settings::Switch::On,
        https_redirect: std::sync::OnceLock::new(),
    });

    let conn_settings = Arc::new(ConnSettings {
        limits: HeadLimits {
            max_bytes: settings.max_header_bytes as usize,
            max_fields: settings.max_header_count(),
        },
        keepalive_timeout: settings.keepalive_timeout,
        header_read_timeout: settings.header_read_timeout,
        stats: conn_stats,
        limit: Some(Arc::clone(&limit)),
        log: Some(Arc::clone(&log)),
        h2c: settings.http2 == crate::settings::Switch::On,
    });

    let reloader = match Reloader::start(Arc::clone(&server), &settings.config, last_good) {
        Ok(reloader) => Some(reloader),
        Err(error) => {
            tracing::error!(%error, "cannot start reloading; libraries and config stay as loaded");
            None
        }
    };
    // Connections still open after the grace period are dropped when `serve`
    // stops the I/O threads, and their log lines written, before the final
    // flush.
    let result = control.block_on(serve(
        settings,
        inherited,
        Arc::clone(&server),
        conn_settings,
        limit,
        reloader,
    ));
    control.shutdown_timeout(Duration::from_secs(1));
    // Unload every library (`flexilib_deinit`) by dropping the route table;
    // the reload thread, which also holds the server, only borrows it.
    {
        let mut stopped = server.reloads.lock();
        *stopped = true;
        server.routes.store(Arc::new(RouteTable::default()));
    }
    server.env.copies.remove();
    drop(server);
    crate::targets::lambda::stop_all();
    log.flush();
    result
}

/// Time shutdown may take beyond `SHUTDOWN_GRACE_SECONDS` (closing the
/// runtimes, `flexilib_deinit` of every library, the last log flush) before
/// the process ends regardless.
const SHUTDOWN_OVERRUN: Duration = Duration::from_secs(5);

/// Ends the process if shutdown has not finished within `limit`: a library
/// whose `flexilib_deinit` never returns must not leave a worker running
/// for ever (one whose supervisor died would be an orphan).
fn start_shutdown_deadline(limit: Duration) {
    let started = std::thread::Builder::new()
        .name("flexilib-shutdown-deadline".into())
        .spawn(move || {
            std::thread::sleep(limit);
            tracing::error!(
                limit_ms = limit.as_millis() as u64,
                "shutdown did not finish in time; exiting now"
            );
            crate::stderr_log::flush(Duration::from_millis(500));
            os::exit_at_once(1);
        });
    if let Err(error) = started {
        tracing::warn!(%error, "cannot start the shutdown deadline thread");
    }
}

async fn serve(
    settings: &Settings,
    inherited: Option<i32>,
    server: Arc<Server>,
    conn_settings: Arc<ConnSettings>,
    open: Arc<ConnLimit>,
    reloader: Option<Reloader>,
) -> anyhow::Result<()> {
    let listener = match inherited {
        Some(fd) => {
            listen::adopt(fd).with_context(|| format!("cannot use inherited socket {fd}"))?
        }
        None => {
            let address = SocketAddr::new(settings.listen_address, settings.port);
            listen::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address}"))?
        }
    };
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;
    // Before any connection is accepted: a SIGTERM that comes once requests
    // are being served must find its handler (the default would kill the
    // worker mid-request).
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    crate::targets::lambda::dependencies::set_cache_dir(
        settings
            .lambda_cache_dir
            .clone()
            .unwrap_or_else(crate::targets::lambda::dependencies::default_cache_dir),
    );
    if let Some(address) = settings.invoke_api_address {
        let listener = crate::invoke_api::bind(address)
            .await
            .with_context(|| format!("cannot listen for the Invoke API on {address}"))?;
        let bound = listener.local_addr().unwrap_or(address);
        let events = EventQueue::new(settings.event_queue_max, settings.event_queue_max_bytes);
        tokio::spawn(crate::invoke_api::serve(
            listener,
            Arc::clone(&server),
            events,
            // Its own connection cap (see `invoke_api`), not the public one.
            Arc::new(ConnSettings {
                limit: None,
                h2c: false,
                ..(*conn_settings).clone()
            }),
            shutdown_rx.clone(),
        ));
        tracing::info!(invoke_api = %bound, "Lambda Invoke API ready");
    }
    // The admin listener (`ADMIN_ADDRESS`): up before the public listeners,
    // so `/readyz` says "starting" until they are.
    if let Some(address) = settings.admin_address {
        let listener = crate::admin::bind(address)
            .await
            .with_context(|| format!("cannot listen for the admin endpoints on {address}"))?;
        let bound = listener.local_addr().unwrap_or(address);
        let state = Arc::new(crate::admin::AdminState {
            server: Arc::clone(&server),
            open: Arc::clone(&open),
            config_path: std::path::absolute(&settings.config)
                .unwrap_or_else(|_| settings.config.clone()),
        });
        tokio::spawn(crate::admin::serve(
            listener,
            state,
            // Its own connection cap (see `admin`); its requests are not logged.
            Arc::new(ConnSettings {
                limit: None,
                log: None,
                ..(*conn_settings).clone()
            }),
        ));
        tracing::info!(admin_address = %bound, "admin endpoints ready");
    }
    // TLS (`TLS_PORT`): a listener of the worker's own, served by the core
    // threads; a bad certificate stops the server at startup, naming it.
    let tls = match settings.tls_port {
        Some(port) => {
            let files = crate::tls::Certificates {
                default: settings.tls_cert.clone().zip(settings.tls_key.clone()),
                dir: settings.tls_cert_dir.clone(),
                #[cfg(feature = "acme")]
                acme: crate::tls::acme::AcmeConfig::from_settings(settings),
            };
            let acceptor =
                crate::tls::acceptor(&files, settings.http2 == crate::settings::Switch::On)
                    .context("cannot use the TLS certificate")?;
            let address = SocketAddr::new(settings.listen_address, port);
            let listener = listen::bind(address)
                .await
                .with_context(|| format!("cannot listen for TLS on {address}"))?;
            let bound = listener.local_addr().unwrap_or(address);
            tracing::info!(tls_address = %bound, "TLS ready");
            Some((listener, acceptor))
        }
        None => None,
    };
    if settings.https_redirect == crate::settings::Switch::On {
        let Some((listener, _)) = &tls else {
            anyhow::bail!("HTTPS_REDIRECT=on needs TLS_PORT (with TLS_CERT and TLS_KEY)");
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let _ = server.https_redirect.set(port);
    }
    let mut io_threads = cores::start(cores::Plan {
        tls: tls
            .as_ref()
            .map(|(listener, acceptor)| (listener, acceptor.clone())),
        listener: &listener,
        cores: settings.handler_threads(),
        reserve: settings.reserved_io_threads(),
        reserve_accepting: server.env.handlers.reserve_accepting(),
        server: Arc::clone(&server),
        conn_settings,
        limit: Arc::clone(&open),
        shutdown: shutdown_rx,
    })?;
    // Each I/O thread holds its own duplicate.
    drop(listener);
    drop(tls);
    // Before the line that says so: whoever saw it finds `/readyz` ready.
    server.metrics.set_lifecycle(Lifecycle::Ready);
    tracing::info!(
        address = %local,
        handler_threads = settings.handler_threads(),
        reserved_io_threads = settings.reserved_io_threads(),
        "listening"
    );
    // Startup code (argument parsing, config loading) is not needed again.
    os::drop_unused_code_pages();

    // Blocked since the process started (see `main`); one sent meanwhile
    // is delivered now, to the handler just installed.
    os::unblock(&[os::Signal::Hup]);

    let signal_name = loop {
        tokio::select! {
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            _ = hangup.recv() => match &reloader {
                Some(reloader) => reloader.reload_config(),
                None => tracing::warn!("SIGHUP ignored: reloading is unavailable"),
            },
        }
    };
    tracing::info!(signal = signal_name, open = open.count(), "shutting down");
    server.metrics.set_lifecycle(Lifecycle::Draining);
    start_shutdown_deadline(settings.shutdown_grace + SHUTDOWN_OVERRUN);
    // Every receiver outlives this send: the accept loops and each connection
    // hold one. The accept loops go on, answering new connections 503.
    let _ = shutdown_tx.send(true);
    let deadline = tokio::time::Instant::now() + settings.shutdown_grace;
    let busy = || open.count() + server.env.proxy.open_tunnels();
    while busy() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if busy() > 0 {
        tracing::warn!(
            open = busy(),
            "grace period over; closing remaining connections"
        );
    }
    io_threads.stop(Duration::from_secs(1));
    Ok(())
}
