//! Cloudflare Workers emulation, the module worker model: `fetch` sync and
//! async, the request the worker sees, `ctx.waitUntil`,
//! `passThroughOnException`, `scheduled` through `/__scheduled` (on a
//! route with `test_scheduled=1`), and
//! timers that hold no handler slot.

mod common;

use std::time::{Duration, Instant};

use common::{request_in_background, worker_dir, ServerBuilder};

const APP: &str = r#"
let state = 'idle';
let lastCron = null;
export default {
  fetch(request, env, ctx) {
    const url = new URL(request.url);
    switch (url.pathname) {
      case '/sync':
        return new Response(`sync ${request.method} ${url.pathname}${url.search} ${request.headers.get('x-test')}`);
      case '/async':
        return (async () => {
          const body = await request.text();
          await null;
          return new Response(`async ${request.method} ${body}`);
        })();
      case '/wait':
        state = 'pending';
        ctx.waitUntil(new Promise((resolve) => setTimeout(resolve, 1000)).then(() => { state = 'done'; }));
        return new Response('sent');
      case '/state':
        return new Response(state);
      case '/sleep': {
        const ms = Number(url.searchParams.get('ms'));
        const started = Date.now();
        return new Promise((resolve) => setTimeout(() => resolve(new Response(`slept ${Date.now() - started >= ms - 5}`)), ms));
      }
      case '/pass':
        ctx.passThroughOnException();
        throw new Error('no origin to pass to');
      case '/cron':
        return Response.json(lastCron);
    }
    return new Response('not here', { status: 404 });
  },
  async scheduled(event, env, ctx) {
    if (event.cron === 'fail') throw new Error('scheduled failed');
    await new Promise((resolve) => setTimeout(resolve, 10));
    lastCron = { cron: event.cron, type: event.type, time: typeof event.scheduledTime };
  },
};
"#;

fn start() -> (common::TempDir, common::Server) {
    let (dir, config) = worker_dir(
        "workers-module",
        &[("app.js", APP)],
        "/ = worker:app.js threads=1 test_scheduled=1\n",
    );
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "2")
        .start();
    (dir, server)
}

#[test]
fn sync_and_async_fetch_handlers_see_the_request() {
    let (_dir, server) = start();
    let response = server.get("/sync?a=1", &[("x-test", "yes")]);
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "sync GET /sync?a=1 yes");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain;charset=UTF-8")
    );
    let response = server.client().request("POST", "/async", &[], b"the body");
    assert_eq!(response.text(), "async POST the body");
    assert_eq!(server.get("/nowhere", &[]).status, 404);
}

#[test]
fn wait_until_work_runs_on_after_the_response_is_sent() {
    let (_dir, server) = start();
    assert_eq!(server.get("/state", &[]).text(), "idle");
    let started = Instant::now();
    assert_eq!(server.get("/wait", &[]).text(), "sent");
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "the response waited for waitUntil ({:?})",
        started.elapsed()
    );
    assert_eq!(server.get("/state", &[]).text(), "pending");
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(
        server.get("/state", &[]).text(),
        "done",
        "the waitUntil promise ran to completion"
    );
}

#[test]
fn sixteen_requests_awaiting_a_500ms_timer_finish_together_on_two_handler_slots() {
    let (_dir, server) = start();
    assert_eq!(server.get("/sync", &[]).status, 200);
    let started = Instant::now();
    let requests: Vec<_> = (0..16)
        .map(|_| request_in_background(server.addr, "/sleep?ms=500", &[]))
        .collect();
    for request in requests {
        let (response, took) = request.join().expect("client");
        assert_eq!(response.text(), "slept true");
        assert!(took >= Duration::from_millis(490), "{took:?}");
    }
    let took = started.elapsed();
    // Holding a handler slot each, 16 requests on 2 slots would take 4 s.
    assert!(
        took < Duration::from_millis(1000),
        "16 timers of 500 ms took {took:?}"
    );
}

#[test]
fn pass_through_on_exception_without_an_origin_is_still_a_500() {
    let (_dir, server) = start();
    let response = server.get("/pass", &[]);
    assert_eq!(response.status, 500);
    assert_eq!(response.text(), "Internal Server Error");
}

#[test]
fn scheduled_runs_through_the_scheduled_path_as_wrangler_dev_does() {
    let (_dir, server) = start();
    let response = server.get("/__scheduled?cron=*/5+*+*+*+*", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "ok");
    assert_eq!(
        server.get("/cron", &[]).text(),
        r#"{"cron":"*/5 * * * *","type":"scheduled","time":"number"}"#
    );
    let failed = server.get("/__scheduled?cron=fail", &[]);
    assert_eq!(failed.status, 500);
    assert_eq!(failed.text(), "exception");
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("scheduled failed"))
        .expect("the scheduled handler's error is logged");
}
