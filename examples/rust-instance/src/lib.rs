//! An ABI-2 FlexiLib library written with the Rust SDK: one instance per
//! route, configured by the route's options.
//!
//! ```ini
//! /greet = target/release/libflexilib_example_instance.so template=examples/rust-instance/page.txt name=FlexiLib
//! ```
//!
//! * `template=FILE` (required) — the page; `{name}` and `{path}` in it are
//!   filled in. The file is watched: edit it and the next requests get a
//!   new instance built from it. A template without `{path}` is refused
//!   (the build fails and the current instance keeps serving).
//! * `name=TEXT` — what `{name}` becomes (default `world`).
//!
//! Paths under the route:
//! * `…/later?ms=M` — the page, answered `M` ms later from another thread;
//! * `…/count?n=N` — `N` lines streamed, 50 ms apart;
//! * anything else — the page.

use std::time::Duration;

use flexilib_sdk::{export_instance, Answer, Call, Instance, InstanceConfig, Request, Response};

/// The route's instance: its template and name.
struct Page {
    template: String,
    name: String,
}

impl Instance for Page {
    fn new(config: &InstanceConfig<'_>) -> Result<Self, String> {
        let file = config
            .option("template")
            .ok_or("the route needs template=FILE")?;
        let template = config
            .read_file(file)
            .map_err(|error| format!("cannot read {file}: {error}"))?;
        if !template.contains("{path}") {
            return Err(format!("{file} has no {{path}} placeholder"));
        }
        Ok(Page {
            template,
            name: config.option("name").unwrap_or("world").to_string(),
        })
    }

    fn handle(&self, request: &Request<'_>, call: Call) -> Answer {
        let page = self
            .template
            .replace("{name}", &self.name)
            .replace("{path}", request.path());
        let number = |key: &str, default: u64| {
            request
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix(key)))
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        if request.path().ends_with("/later") {
            let wait = Duration::from_millis(number("ms=", 100));
            let (responder, answer) = call.respond_later();
            std::thread::spawn(move || {
                std::thread::sleep(wait);
                responder.complete(Response::ok(page).header("x-answered", "later"));
            });
            return answer;
        }
        if request.path().ends_with("/count") {
            let lines = number("n=", 5);
            let head = Response::new().header("content-type", "text/plain; charset=utf-8");
            let (writer, answer) = call.stream(head);
            std::thread::spawn(move || {
                for i in 1..=lines {
                    if i > 1 {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    if writer.write(format!("line {i}\n").as_bytes()).is_err() {
                        return; // the client left; dropping the writer aborts
                    }
                }
                writer.finish();
            });
            return answer;
        }
        Response::ok(page).into()
    }
}

export_instance!(Page);
