//! Links the library `-z nodelete`: once loaded it stays mapped even after
//! `dlclose`, because Wasmtime installs signal handlers (its traps) and
//! this library starts threads (the epoch ticker, the guests' runtime)
//! that must never find their code unmapped when the server unloads an
//! old generation of the library.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
