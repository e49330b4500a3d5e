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
mod arena;
mod body_channel;
mod config;
mod conn;
mod handlers;
mod housekeeping;
mod listen;
mod os;
mod reload;
mod request_log;
mod respond;
mod route;
mod service;
mod settings;
mod supervisor;
mod targets;
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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A closed stderr must not make logging panic (its default reports
        // the failure with `eprintln!`, which panics when stderr is gone).
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let code = match std::env::var(supervisor::LISTEN_FD_ENV) {
        Ok(fd) => supervised_worker(&settings, &fd),
        Err(_) if settings.no_supervisor => report(worker::run(&settings, None).map(|()| 0), 1),
        Err(_) => report(supervise(&settings), 1),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Prints an error the way every startup failure is printed.
fn report(result: anyhow::Result<i32>, failure_code: i32) -> i32 {
    result.unwrap_or_else(|error| {
        eprintln!("flexilib: error: {error:#}");
        failure_code
    })
}

/// The child of a supervisor: serve on the inherited socket.
fn supervised_worker(settings: &Settings, fd: &str) -> i32 {
    os::unblock_all_signals();
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
    config::load(&settings.config)?;
    let address = SocketAddr::new(settings.listen_address, settings.port);
    let listener = std::net::TcpListener::bind(address)
        .with_context(|| format!("cannot listen on {address}"))?;
    let fd = listener.as_raw_fd();
    os::set_listen_backlog(fd, 4096).context("cannot set the listen backlog")?;
    os::inherit_fd(fd).context("cannot pass the socket to workers")?;
    tracing::info!(address = %listener.local_addr()?, "listening (supervisor)");
    let code = supervisor::run(fd).context("supervisor failed")?;
    drop(listener);
    Ok(code)
}
