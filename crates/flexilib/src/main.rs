//! `flexilib`: the server binary.
//!
//! By default the process is a [`supervisor`] that binds the socket and runs
//! the server ([`worker`]) as a child; `--no-supervisor` runs the server in
//! this process. The request path, module by module:
//! [`listen`] → [`conn`] (HTTP/1.1 parse, timeouts) → [`service`] →
//! [`route`] → [`handlers`] + [`targets`] (library call, [`arena`]) →
//! [`respond`] → [`access_log`]. [`reload`] swaps libraries and routes
//! while serving.

mod access_log;
mod access_log_json;
mod admin;
mod arena;
mod body_channel;
mod client_limit;
mod compress;
mod config;
mod conn;
mod control;
mod cores;
mod file_version;
mod file_watch;
mod files;
mod handlers;
mod host;
mod housekeeping;
mod http1;
mod https_redirect;
mod invoke_api;
mod last_good;
mod listen;
mod metrics;
mod os;
mod panics;
mod private_dirs;
mod process_tree;
mod rate_limit;
mod reload;
mod request_log;
mod request_path;
mod respond;
mod route;
mod service;
mod settings;
mod stderr_log;
mod supervisor;
mod targets;
mod tls;
mod worker;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

use crate::settings::Settings;

fn main() -> ExitCode {
    let settings = Settings::parse();
    if let Err(message) = settings.check_addresses() {
        use clap::CommandFactory as _;
        Settings::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    if settings.check {
        return ExitCode::from(check(&settings));
    }
    let worker = std::env::var_os(supervisor::LISTEN_FD_ENV).is_some() || settings.no_supervisor;
    init_logging(worker);
    let code = match std::env::var(supervisor::LISTEN_FD_ENV) {
        Ok(fd) => {
            worker_process();
            supervised_worker(&settings, &fd)
        }
        Err(_) if settings.no_supervisor => {
            worker_process();
            private_dirs::remove_stale_and_log();
            report(worker::run(&settings, None).map(|()| 0), 1)
        }
        Err(_) => report(supervise(&settings), 1),
    };
    stderr_log::flush(EXIT_FLUSH_TIMEOUT);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// `--check`: loads the config as the server would (the rules, the files
/// they name, the instances of libraries with options), says what it
/// found, and tears it down. 0 if it would serve, 2 if not.
fn check(settings: &Settings) -> u8 {
    let config = match config::load(&settings.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("flexilib: error: {error}");
            return 2;
        }
    };
    for warning in &config.warnings {
        eprintln!("flexilib: warning: {warning}");
    }
    let copies = std::sync::Arc::new(targets::native::copy::CopyDir::default());
    let built = route::RouteTable::build(&config, None, &copies);
    let code = match &built {
        Ok(table) => {
            println!("{}: OK, {} routes", settings.config.display(), table.len());
            0
        }
        Err(error) => {
            eprintln!("flexilib: error: {error}");
            2
        }
    };
    drop(built);
    copies.remove();
    code
}

/// Longest wait at exit for queued diagnostics to reach stderr.
const EXIT_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Diagnostics on stderr, filtered by `RUST_LOG` (default `info`). In a
/// server process (`worker`), through a queue and a writer thread, so that
/// no request thread ever waits for stderr; the supervisor, one thread off
/// the request path, writes directly.
fn init_logging(worker: bool) {
    let builder = tracing_subscriber::fmt()
        // A closed stderr must not make logging panic (its default reports
        // the failure with `eprintln!`, which panics when stderr is gone).
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        );
    if worker {
        if let Err(error) = stderr_log::start() {
            eprintln!(
                "flexilib: cannot start the stderr writer thread ({error}); writing directly"
            );
        }
        builder.with_writer(stderr_log::NonBlocking).init();
    } else {
        builder.with_writer(std::io::stderr).init();
    }
}

/// Process-wide setup of a worker, before anything else.
fn worker_process() {
    // SIGHUP stays blocked (as the supervisor's mask, inherited, has it)
    // until the server handles it: until then its default action, ending
    // the process, would kill a starting worker. One that arrives meanwhile
    // stays pending and is then taken as a config reload.
    os::block_only(&[os::Signal::Hup]);
    panics::exit_on_fatal_panics();
}

/// Prints an error the way every startup failure is printed; a lack of
/// resources exits with [`supervisor::EXIT_NO_RESOURCES`] instead of
/// `failure_code`.
fn report(result: anyhow::Result<i32>, failure_code: i32) -> i32 {
    result.unwrap_or_else(|error| {
        // After the diagnostics logged before it.
        stderr_log::flush(EXIT_FLUSH_TIMEOUT);
        eprintln!("flexilib: error: {error:#}");
        if error.downcast_ref::<cores::StartError>().is_some() {
            supervisor::EXIT_NO_RESOURCES
        } else {
            failure_code
        }
    })
}

/// The child of a supervisor: serve on the inherited socket.
fn supervised_worker(settings: &Settings, fd: &str) -> i32 {
    let parent = std::env::var(supervisor::SUPERVISOR_PID_ENV)
        .ok()
        .and_then(|pid| pid.parse().ok());
    if let Some(parent) = parent {
        if !os::terminate_with_parent(parent) {
            return 0;
        }
    }
    let result = fd
        .parse()
        .with_context(|| format!("{} is not a descriptor: {fd:?}", supervisor::LISTEN_FD_ENV))
        .and_then(|fd| worker::run(settings, Some(fd)).map(|()| 0));
    report(result, supervisor::EXIT_STARTUP_FAILED)
}

/// The supervisor: check the config, bind, then run workers.
fn supervise(settings: &Settings) -> anyhow::Result<i32> {
    // Fail fast, with the file and line, before any worker starts.
    let config = config::load(&settings.config)?;
    private_dirs::remove_stale_and_log();
    let last_good = match last_good::LastGoodDir::create() {
        Ok(dir) => {
            dir.last_good().save(&config.text);
            Some(dir)
        }
        Err(error) => {
            tracing::warn!(%error, "cannot keep the last good config; a restarted worker reads the file as it is");
            None
        }
    };
    let address = SocketAddr::new(settings.listen_address, settings.port);
    let listener = std::net::TcpListener::bind(address)
        .with_context(|| format!("cannot listen on {address}"))?;
    let fd = listener.as_raw_fd();
    os::set_listen_backlog(fd, 4096).context("cannot set the listen backlog")?;
    os::inherit_fd(fd).context("cannot pass the socket to workers")?;
    tracing::info!(address = %listener.local_addr()?, "listening (supervisor)");
    let code = supervisor::run(fd, last_good.as_ref().map(|dir| dir.last_good()))
        .context("supervisor failed")?;
    drop(listener);
    drop(last_good);
    Ok(code)
}
