//! A library rebuilt in place (`cc -o lib.so` over the served file) loads
//! its new generation quietly: the half-written file the linker leaves for
//! a moment is not reported as a failed reload.

mod common;

use std::time::Duration;

use common::{compile_c, ServerBuilder, TempDir};

fn source(version: u32) -> String {
    format!(
        "#include \"flexilib.h\"\n\
         static struct flexilib_response r;\n\
         struct flexilib_response *handle_request(struct flexilib_request *req) {{\n\
         \x20   (void)req; r.status = 200; r.ptr = (char *)\"v{version}\"; r.len = {len}; return &r;\n\
         }}\n",
        len = format!("v{version}").len()
    )
}

#[test]
fn an_in_place_rebuild_reloads_without_a_warning() {
    let dir = TempDir::new("rebuild");
    let library = dir.path().join("librebuilt.so");
    compile_c(&dir.write("v1.c", &source(1)), &library);
    let config = dir.write("proxy.ini", "/ = librebuilt.so\n");
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/", &[]).text(), "v1");
    for version in 2..=4u32 {
        // The linker writes the served path itself.
        compile_c(
            &dir.write(&format!("v{version}.c"), &source(version)),
            &library,
        );
        let loaded = server.stderr.wait_for(Duration::from_secs(10), |l| {
            l.contains("library generation loaded") && l.contains(&format!("generation={version}"))
        });
        assert!(loaded.is_some(), "generation {version} loaded");
        assert_eq!(server.get("/", &[]).text(), format!("v{version}"));
    }
    // Past the grace period, nothing was reported as failed.
    std::thread::sleep(Duration::from_millis(2500));
    let warnings: Vec<String> = server
        .stderr
        .snapshot()
        .into_iter()
        .filter(|l| l.contains("WARN") || l.contains("reload failed"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}
