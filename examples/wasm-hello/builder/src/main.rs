//! Builds a C guest of `examples/wasm-hello` into a `wasi:http/proxy`
//! component, honestly, with what this machine has (Rust cannot target
//! wasm32 here):
//!
//! 1. C bindings for the world in `examples/wasm-hello/wit` are generated
//!    with `wit-bindgen-c` (the `wasi:http` WIT is the one the
//!    `wasmtime-wasi-http` crate ships, found with `cargo metadata`);
//! 2. Zig's C compiler (`zig cc`, from PyPI's `ziglang`) builds a
//!    `wasm32-wasi` preview-1 reactor module from the guest and the
//!    bindings;
//! 3. the world's type is embedded and `wit-component` turns the module
//!    into a component with Wasmtime's preview-1 reactor adapter.
//!
//! ```text
//! wasm-hello-build --zig ZIG --out OUT.wasm [--wit DIR] [-DNAME=VALUE …] GUEST.c
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use wit_bindgen_core::wit_parser::Resolve;
use wit_bindgen_core::Files;

/// Why a guest could not be built.
#[derive(Debug, thiserror::Error)]
enum BuildError {
    #[error("usage: wasm-hello-build --zig ZIG --out OUT.wasm [--wit WASI_HTTP_WIT_DIR] [-DNAME=VALUE ...] GUEST.c ({0})")]
    Usage(&'static str),
    #[error("cannot run {command}: {error}")]
    Spawn {
        command: String,
        error: std::io::Error,
    },
    #[error("{command} failed:\n{output}")]
    Failed { command: String, output: String },
    #[error("cannot find the wasi:http WIT: {0}")]
    Wit(String),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: {1:#}")]
    Component(&'static str, anyhow::Error),
}

/// The command line.
struct Args {
    zig: PathBuf,
    out: PathBuf,
    wit: Option<PathBuf>,
    defines: Vec<String>,
    source: PathBuf,
}

fn parse_args() -> Result<Args, BuildError> {
    let mut args = std::env::args_os().skip(1);
    let (mut zig, mut out, mut wit, mut defines, mut source) = (None, None, None, vec![], None);
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        match text.as_str() {
            "--zig" => zig = args.next().map(PathBuf::from),
            "--out" => out = args.next().map(PathBuf::from),
            "--wit" => wit = args.next().map(PathBuf::from),
            _ if text.starts_with("-D") => defines.push(text),
            _ if text.starts_with('-') => return Err(BuildError::Usage("unknown option")),
            _ => source = Some(PathBuf::from(arg)),
        }
    }
    Ok(Args {
        zig: zig.ok_or(BuildError::Usage("--zig is missing"))?,
        out: out.ok_or(BuildError::Usage("--out is missing"))?,
        wit,
        defines,
        source: source.ok_or(BuildError::Usage("the guest source is missing"))?,
    })
}

/// This example's directory (holding `wit/`).
fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `command`, returning its stdout; its output is the error otherwise.
fn run(command: &mut Command) -> Result<Vec<u8>, BuildError> {
    let name = format!("{command:?}");
    let output = command.output().map_err(|error| BuildError::Spawn {
        command: name.clone(),
        error,
    })?;
    if !output.status.success() {
        return Err(BuildError::Failed {
            command: name,
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(output.stdout)
}

/// The `wit/` directory of the `wasmtime-wasi-http` crate this workspace
/// depends on, from `cargo metadata`.
fn wasi_http_wit() -> Result<PathBuf, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = example_dir().join("../../Cargo.toml");
    let json = run(Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest))?;
    let metadata: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| BuildError::Wit(format!("cargo metadata: {e}")))?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let manifest_path = packages
        .iter()
        .find(|package| package["name"] == "wasmtime-wasi-http")
        .and_then(|package| package["manifest_path"].as_str())
        .ok_or_else(|| BuildError::Wit("no wasmtime-wasi-http in `cargo metadata`".into()))?;
    let wit = Path::new(manifest_path).with_file_name("wit");
    if !wit.join("deps").is_dir() {
        return Err(BuildError::Wit(format!(
            "{} has no deps/ (run `cargo fetch`)",
            wit.display()
        )));
    }
    Ok(wit)
}

fn build(args: &Args) -> Result<(), BuildError> {
    // The WIT: wasi:http and its dependencies, then this example's world.
    let wasi_wit = match &args.wit {
        Some(dir) => dir.clone(),
        None => wasi_http_wit()?,
    };
    let mut resolve = Resolve::default();
    resolve
        .push_dir(&wasi_wit)
        .map_err(|e| BuildError::Component("parsing the wasi:http WIT", e))?;
    let (package, _) = resolve
        .push_dir(example_dir().join("wit"))
        .map_err(|e| BuildError::Component("parsing wit/world.wit", e))?;
    let world = resolve
        .select_world(&[package], Some("hello"))
        .map_err(|e| BuildError::Component("selecting the world", e))?;

    // C bindings, into a scratch directory beside the output.
    let scratch = args.out.with_extension("build");
    std::fs::create_dir_all(&scratch).map_err(|e| BuildError::Io(scratch.clone(), e))?;
    let mut files = Files::default();
    let opts = wit_bindgen_c::Opts {
        no_object_file: true,
        ..Default::default()
    };
    opts.build()
        .generate(&mut resolve, world, &mut files)
        .map_err(|e| BuildError::Component("generating C bindings", e))?;
    // The bindings refer to a symbol of the component-type object file
    // wit-bindgen-c can write; the type is embedded below instead.
    let stub = scratch.join("component_type_stub.c");
    std::fs::write(
        &stub,
        "void __component_type_object_force_link_hello(void) {}\n",
    )
    .map_err(|e| BuildError::Io(stub.clone(), e))?;
    let mut c_files = vec![stub];
    for (name, contents) in files.iter() {
        let path = scratch.join(name);
        std::fs::write(&path, contents).map_err(|e| BuildError::Io(path.clone(), e))?;
        if name.ends_with(".c") {
            c_files.push(path);
        }
    }

    // A preview-1 reactor module, compiled by Zig's clang.
    let module_path = scratch.join("module.wasm");
    run(Command::new(&args.zig)
        .args([
            "cc",
            "--target=wasm32-wasi",
            "-mexec-model=reactor",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wno-unused-parameter",
            // Zig gives wasm32 a 16 MiB stack by default; 1 MiB is plenty here.
            "-Wl,-z,stack-size=1048576",
        ])
        .arg("-I")
        .arg(&scratch)
        .args(&args.defines)
        .arg("-o")
        .arg(&module_path)
        .arg(&args.source)
        .args(&c_files))?;
    let module = std::fs::read(&module_path).map_err(|e| BuildError::Io(module_path.clone(), e))?;
    // wasi-libc's DWARF is most of the module; the name section stays (the
    // host's trap backtraces name the guest's functions with it).
    let mut module = strip_dwarf(&module).ok_or(BuildError::Component(
        "reading the module's sections",
        anyhow::anyhow!("malformed module"),
    ))?;

    // The component: the world's type, then the adapter.
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .map_err(|e| BuildError::Component("embedding the world's type", e))?;
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|encoder| {
            encoder.adapter(
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|mut encoder| encoder.encode())
        .map_err(|e| BuildError::Component("making the component", e))?;
    // Written aside and renamed, so a server watching the file never reads half of it.
    let staged = args.out.with_extension("wasm.tmp");
    std::fs::write(&staged, &component).map_err(|e| BuildError::Io(staged.clone(), e))?;
    std::fs::rename(&staged, &args.out).map_err(|e| BuildError::Io(args.out.clone(), e))?;
    Ok(())
}

/// Reads an unsigned LEB128 number at `*at`, moving past it.
fn leb128(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let mut value = 0usize;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// `module` without its DWARF custom sections (`.debug_*`); `None` if its
/// sections cannot be read.
fn strip_dwarf(module: &[u8]) -> Option<Vec<u8>> {
    let mut out = module.get(..8)?.to_vec();
    let mut at = 8;
    while at < module.len() {
        let start = at;
        let id = module[at];
        at += 1;
        let size = leb128(module, &mut at)?;
        let body = module.get(at..at.checked_add(size)?)?;
        at += size;
        if id == 0 {
            let mut name_at = 0;
            let name_len = leb128(body, &mut name_at)?;
            let name = body.get(name_at..name_at.checked_add(name_len)?)?;
            if name.starts_with(b".debug_") {
                continue;
            }
        }
        out.extend_from_slice(&module[start..at]);
    }
    Some(out)
}

fn main() -> ExitCode {
    match parse_args().and_then(|args| build(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wasm-hello-build: {error}");
            ExitCode::FAILURE
        }
    }
}
