//! Instance counts on the admin listener's `/metrics`, scraped and parsed
//! by Python's `prometheus-client` (see `tests/admin.rs`): what a library
//! route's instance reports through the optional `flexilib_instance_gauges`
//! export (`flexilib_library_…`), from a C library exporting it by hand
//! (past the host's first buffer, with names it must skip).

mod common;
#[path = "common/metrics.rs"]
mod metrics;

use common::{compile_c_text, ServerBuilder, TempDir};
use metrics::{admin_address, scrape};

/// A C library exporting `flexilib_instance_gauges` by hand: 40 gauges
/// (more than the host's first buffer of 32), a name given twice, and names
/// the host must skip.
const GAUGES_C: &str = r#"#include "flexilib.h"
#include <stdio.h>
#include <string.h>

static int instance;
static struct flexilib_response_v2 ok = {{"ok", 2, 0, 0, 0, 0, 0}, 0};
static char names[40][24];
static volatile size_t requests;

int flexilib_init(size_t v) { return v < 2; }
size_t flexilib_abi_version(void) { return 2; }
void *flexilib_instance_new(const struct flexilib_instance_config *c) {
    (void)c;
    for (int i = 0; i < 40; i++)
        snprintf(names[i], sizeof names[i], "c_gauge_%d", i);
    return &instance;
}
void flexilib_instance_free(void *i) { (void)i; }
struct flexilib_response *handle_request(struct flexilib_request *r) {
    (void)r;
    __atomic_fetch_add(&requests, 1, __ATOMIC_RELAXED);
    return &ok.base;
}

static void put(struct flexilib_gauge *out, size_t capacity, size_t *n,
                const char *name, const char *help, double value) {
    if (*n < capacity) {
        out[*n].name = name;
        out[*n].name_len = strlen(name);
        out[*n].help = help;
        out[*n].help_len = strlen(help);
        out[*n].value = value;
    }
    (*n)++;
}

size_t flexilib_instance_gauges(void *i, struct flexilib_gauge *out, size_t capacity) {
    size_t n = 0;
    if (i != &instance)
        return 0;
    put(out, capacity, &n, "c_requests", "Requests the C library saw\nsecond line",
        (double)__atomic_load_n(&requests, __ATOMIC_RELAXED));
    put(out, capacity, &n, "c_requests", "twice", -1);
    put(out, capacity, &n, "Not-A-Name", "skipped", 1);
    put(out, capacity, &n, "c_seen_total", "skipped", 1);
    for (int k = 0; k < 40; k++)
        put(out, capacity, &n, names[k], "", k);
    return n;
}
"#;

#[test]
fn a_c_library_reports_gauges_past_the_first_buffer_and_bad_names_are_skipped() {
    let dir = TempDir::new("admin-c-gauges");
    compile_c_text(&dir, "libgauges.so", GAUGES_C);
    let config = dir.write("proxy.ini", "/g = libgauges.so\n");
    let server = ServerBuilder::new(&config)
        .env("ADMIN_ADDRESS", "127.0.0.1:0")
        .start();
    let admin = admin_address(&server);

    // Built on the first request: nothing to ask before.
    let before = scrape(admin);
    assert!(before.named("flexilib_library_c_requests").is_empty());

    for _ in 0..3 {
        assert_eq!(server.get("/g", &[]).text(), "ok");
    }
    let scraped = scrape(admin);
    assert_eq!(scraped.types["flexilib_library_c_requests"], "gauge");
    assert_eq!(
        scraped.named("flexilib_library_c_requests").len(),
        1,
        "a name given twice is kept once"
    );
    assert_eq!(
        scraped.value("flexilib_library_c_requests", &[("route", "/g")]),
        Some(3.0),
        "the first of the two"
    );
    for k in [0, 31, 32, 39] {
        assert_eq!(
            scraped.value(&format!("flexilib_library_c_gauge_{k}"), &[("route", "/g")]),
            Some(f64::from(k)),
            "gauge {k} of 40"
        );
    }
    let names: Vec<&str> = scraped
        .samples
        .iter()
        .filter_map(|s| s["name"].as_str())
        .filter(|name| name.starts_with("flexilib_library_"))
        .collect();
    assert_eq!(names.len(), 41, "{names:?}");
    assert!(
        !names
            .iter()
            .any(|name| name.contains("seen") || name.contains("Not")),
        "{names:?}"
    );
}
