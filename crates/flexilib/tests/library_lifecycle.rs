//! Once-per-load init and teardown exports, and `request_deinit` after each request.

mod common;

use common::{compile_c_text, ServerBuilder, TempDir};

const LIFECYCLE_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "flexilib.h"

static int inits;
static size_t host_version;
static int deinits_of_requests;

int flexilib_init(size_t v) { inits++; host_version = v; return 0; }

void flexilib_deinit(void) {
    const char *path = getenv("LIFECYCLE_MARK");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (f) { fprintf(f, "deinit after %d request_deinit calls", deinits_of_requests); fclose(f); }
}

void request_deinit(void) { deinits_of_requests++; }

struct flexilib_response *handle_request(struct flexilib_request *req) {
    struct flexilib_response *res = req->alloc(req->arena, sizeof *res, _Alignof(struct flexilib_response));
    char *body = req->alloc(req->arena, 64, 1);
    if (!res || !body) return NULL;
    memset(res, 0, sizeof *res);
    res->len = (size_t)snprintf(body, 64, "inits=%d abi=%zu deinits=%d", inits, host_version, deinits_of_requests);
    res->ptr = body;
    return res;
}
"#;

#[test]
fn init_once_request_deinit_each_time_deinit_at_exit() {
    let dir = TempDir::new("lifecycle");
    compile_c_text(&dir, "liblife.so", LIFECYCLE_C);
    let config = dir.write("proxy.ini", "/ = liblife.so\n");
    let mark = dir.path().join("deinit-mark");
    let server = ServerBuilder::new(&config)
        .env("LIFECYCLE_MARK", mark.to_str().expect("utf-8 path"))
        .start();
    assert_eq!(server.get("/", &[]).text(), "inits=1 abi=3 deinits=0");
    assert_eq!(server.get("/", &[]).text(), "inits=1 abi=3 deinits=1");
    assert_eq!(server.get("/", &[]).text(), "inits=1 abi=3 deinits=2");
    assert!(!mark.exists(), "not unloaded while serving");
    let (status, _, _) = server.terminate();
    assert!(status.success());
    let marked = std::fs::read_to_string(&mark).expect("flexilib_deinit ran at shutdown");
    assert_eq!(marked, "deinit after 3 request_deinit calls");
}
