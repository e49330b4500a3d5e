//! What a worker route is built from: the route's options
//! (`script=PATH`, `state=DIR`, `threads=N`, `cpu_ms=N`, `memory_mb=N`,
//! `queue=N`, `queue_mb=N`, `test_scheduled=1`),
//! and, when the script is a `wrangler.toml`, its `main`, `[vars]`,
//! `kv_namespaces`, `d1_databases`, `r2_buckets`, `[limits] cpu_ms`,
//! `[triggers] crons` and the secrets in `.dev.vars` beside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why a worker route cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `script=` is missing.
    #[error("a worker route needs script=PATH (a .js module or a wrangler.toml)")]
    NoScript,
    /// A file could not be read.
    #[error("cannot read {path}: {source}", path = .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `wrangler.toml` is not valid.
    #[error("{path}: {message}", path = .path.display())]
    Wrangler {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `.dev.vars` is not valid.
    #[error("{path}: {message}", path = .path.display())]
    DevVars {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An option has a bad value.
    #[error("option {key}={value}: {message}")]
    Option {
        /// The option.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong.
        message: &'static str,
    },
}

/// A KV namespace binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvBinding {
    /// The name in `env`.
    pub binding: String,
    /// The namespace id (names its database file).
    pub id: String,
}

/// A D1 database binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct D1Binding {
    /// The name in `env`.
    pub binding: String,
    /// The database id (names its database file): `database_id`, else
    /// `preview_database_id`, else `database_name`, else the binding.
    pub id: String,
}

/// A Durable Object namespace binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectBinding {
    /// The name in `env`.
    pub binding: String,
    /// The class the main module exports (names its storage file).
    pub class_name: String,
    /// Whether the class is SQLite-backed (`new_sqlite_classes` in
    /// `[[migrations]]`): it has `ctx.storage.sql`.
    pub sqlite: bool,
}

/// An R2 bucket binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct R2Binding {
    /// The name in `env`.
    pub binding: String,
    /// The bucket (names its directory): `bucket_name`, else
    /// `preview_bucket_name`, else the binding.
    pub bucket: String,
}

/// A service binding: `env` name → the worker it calls.
#[derive(Debug, Clone)]
pub struct ServiceBinding {
    /// The `env` name.
    pub binding: String,
    /// The `name` of the worker it calls.
    pub service: String,
    /// The exported `WorkerEntrypoint` class it reaches (`None`: the
    /// default export).
    pub entrypoint: Option<String>,
}

/// Everything a worker instance needs, resolved.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The route key, for log lines.
    pub route: String,
    /// The module to run, absolute.
    pub main: PathBuf,
    /// The project directory (of the `wrangler.toml`, or of the script):
    /// modules are imported from it only.
    pub root: PathBuf,
    /// `env` values: `[vars]` and `.dev.vars`, as a JSON object.
    pub vars_json: String,
    /// KV namespaces.
    pub kv: Vec<KvBinding>,
    /// The worker's `name`: what service bindings of other workers call.
    pub name: Option<String>,
    /// Service bindings.
    pub services: Vec<ServiceBinding>,
    /// `compatibility_flags` (`nodejs_compat` is the one acted on).
    pub compatibility_flags: Vec<String>,
    /// D1 databases.
    pub d1: Vec<D1Binding>,
    /// R2 buckets.
    pub r2: Vec<R2Binding>,
    /// Durable Object namespaces (classes of the main module).
    pub objects: Vec<ObjectBinding>,
    /// Where KV, D1 and R2 data live.
    pub state_dir: PathBuf,
    /// CPU time a request may use.
    pub cpu_limit: Duration,
    /// Memory limit of each JS runtime, bytes.
    pub memory_limit: usize,
    /// JS threads (one runtime each).
    pub threads: usize,
    /// Requests that may wait for each JS thread.
    pub queue: usize,
    /// Body bytes those requests may hold.
    pub queue_bytes: usize,
    /// Whether `…/__scheduled` runs `scheduled()` (as `wrangler dev
    /// --test-scheduled`); otherwise it is a path like any other.
    pub test_scheduled: bool,
    /// `[triggers] crons`.
    pub crons: Vec<String>,
    /// `compatibility_date`, if given.
    pub compatibility_date: Option<String>,
    /// What is wrong but not fatal in `wrangler.toml` (unknown keys,
    /// bindings not emulated), each with its file and line.
    pub warnings: Vec<String>,
}

impl WorkerConfig {
    /// Whether the `nodejs_compat` built-ins are on: the compatibility
    /// flag (or its `_v2`), or a compatibility date from 2026-08-04 on, when
    /// Cloudflare turned it on by default (checked on workerd 2026-12-01).
    pub fn node_compat(&self) -> bool {
        self.compatibility_flags
            .iter()
            .any(|f| f == "nodejs_compat" || f == "nodejs_compat_v2")
            || self
                .compatibility_date
                .as_deref()
                .is_some_and(|date| date >= "2026-08-04")
    }

    /// Whether `process.env` holds the text bindings: with
    /// `nodejs_compat` from the compatibility date 2025-04-01 on, or with
    /// `nodejs_compat_populate_process_env`, unless
    /// `nodejs_compat_do_not_populate_process_env`, as on Cloudflare.
    pub fn node_process_env(&self) -> bool {
        let flag = |name: &str| self.compatibility_flags.iter().any(|f| f == name);
        if flag("nodejs_compat_do_not_populate_process_env") {
            return false;
        }
        flag("nodejs_compat_populate_process_env")
            || self
                .compatibility_date
                .as_deref()
                .is_some_and(|date| date >= "2025-04-01")
    }

    /// `process.env`'s entries: the text `[vars]` (and `.dev.vars`), as
    /// a JSON object, when [`WorkerConfig::node_process_env`].
    pub fn node_env_json(&self) -> String {
        if !self.node_process_env() {
            return "{}".into();
        }
        let vars: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&self.vars_json).unwrap_or_default();
        let text: serde_json::Map<String, serde_json::Value> = vars
            .into_iter()
            .filter(|(_, value)| value.is_string())
            .collect();
        serde_json::Value::Object(text).to_string()
    }
}

/// Production's default CPU limit per request (30 s).
pub const DEFAULT_CPU_MS: u64 = 30_000;
/// Memory limit per isolate, as on Cloudflare (128 MB).
pub const DEFAULT_MEMORY_MB: usize = 128;
/// Requests that may wait for a busy JS thread.
pub const DEFAULT_QUEUE: usize = 256;
/// Body bytes the requests waiting for a JS thread may hold (MiB).
pub const DEFAULT_QUEUE_MB: usize = 64;

#[derive(Debug, Deserialize, Default)]
struct Wrangler {
    name: Option<String>,
    main: Option<String>,
    compatibility_date: Option<String>,
    #[serde(default)]
    compatibility_flags: Vec<String>,
    #[serde(default)]
    vars: toml::Table,
    #[serde(default)]
    kv_namespaces: Vec<WranglerKv>,
    #[serde(default)]
    services: Vec<WranglerService>,
    #[serde(default)]
    d1_databases: Vec<WranglerD1>,
    #[serde(default)]
    r2_buckets: Vec<WranglerR2>,
    durable_objects: Option<WranglerObjects>,
    #[serde(default)]
    migrations: Vec<WranglerMigration>,
    limits: Option<WranglerLimits>,
    triggers: Option<WranglerTriggers>,
}

#[derive(Debug, Deserialize)]
struct WranglerService {
    binding: String,
    service: String,
    entrypoint: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WranglerKv {
    binding: String,
    id: Option<String>,
    preview_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WranglerD1 {
    binding: String,
    database_name: Option<String>,
    database_id: Option<String>,
    preview_database_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WranglerMigration {
    #[serde(default)]
    new_sqlite_classes: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct WranglerObjects {
    #[serde(default)]
    bindings: Vec<WranglerObject>,
}

#[derive(Debug, Deserialize)]
struct WranglerObject {
    name: String,
    class_name: String,
    script_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WranglerR2 {
    binding: String,
    bucket_name: Option<String>,
    preview_bucket_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WranglerLimits {
    cpu_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct WranglerTriggers {
    #[serde(default)]
    crons: Vec<String>,
}

/// The largest `wrangler.toml` or `.dev.vars` read (1 MiB).
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads a configuration file: a regular file, opened without blocking,
/// at most [`MAX_CONFIG_BYTES`].
fn read(path: &Path, files: &mut Vec<PathBuf>) -> Result<String, ConfigError> {
    files.push(path.to_path_buf());
    crate::modules::read_text(path, MAX_CONFIG_BYTES).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn number<T: std::str::FromStr + PartialOrd + From<u8>>(
    key: &str,
    value: Option<&str>,
) -> Result<Option<T>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    match value.parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(Some(n)),
        _ => Err(ConfigError::Option {
            key: key.into(),
            value: value.into(),
            message: "expected a positive whole number",
        }),
    }
}

fn flag(key: &str, value: Option<&str>) -> Result<bool, ConfigError> {
    match value {
        None | Some("0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(ConfigError::Option {
            key: key.into(),
            value: other.into(),
            message: "expected 1 or 0",
        }),
    }
}

impl WorkerConfig {
    /// Resolves a route's options. `option` looks an option up; paths are
    /// relative to `config_dir`. On failure, `files` still names what was
    /// read (so that fixing it rebuilds the route).
    pub fn load(
        route: &str,
        config_dir: &Path,
        option: impl Fn(&str) -> Option<String>,
        files: &mut Vec<PathBuf>,
    ) -> Result<WorkerConfig, ConfigError> {
        let script = option("script").ok_or(ConfigError::NoScript)?;
        let script = config_dir.join(script);
        let extension = script.extension().and_then(|e| e.to_str()).unwrap_or("");
        let is_config = matches!(extension, "toml" | "json" | "jsonc");
        let mut warnings = Vec::new();
        let (main, base, wrangler) = if is_config {
            let text = read(&script, files)?;
            let shown = script.file_name().unwrap_or_default().to_string_lossy();
            let invalid = |message: String| ConfigError::Wrangler {
                path: script.clone(),
                message,
            };
            let wrangler: Wrangler = if extension == "toml" {
                let table: toml::Table =
                    toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
                warnings =
                    crate::wrangler_keys::check(table.keys().map(String::as_str), &text, &shown);
                table.try_into().map_err(|e| invalid(e.to_string()))?
            } else {
                // wrangler.json / wrangler.jsonc: JSON with comments and
                // trailing commas, as wrangler reads it.
                let options = jsonc_parser::ParseOptions::default();
                let json: serde_json::Map<String, serde_json::Value> =
                    jsonc_parser::parse_to_serde_value(&text, &options)
                        .map_err(|e| invalid(e.to_string()))?;
                warnings =
                    crate::wrangler_keys::check(json.keys().map(String::as_str), &text, &shown);
                serde_json::from_value(serde_json::Value::Object(json))
                    .map_err(|e| invalid(e.to_string()))?
            };
            let base = script.parent().unwrap_or(config_dir).to_path_buf();
            let main = wrangler.main.clone().ok_or_else(|| ConfigError::Wrangler {
                path: script.clone(),
                message: "no `main` (the worker's module)".into(),
            })?;
            (base.join(main), base, wrangler)
        } else {
            let base = script.parent().unwrap_or(config_dir).to_path_buf();
            (script, base, Wrangler::default())
        };

        let mut vars = serde_json::Map::new();
        for (name, value) in &wrangler.vars {
            let json = serde_json::to_value(value).map_err(|e| ConfigError::Wrangler {
                path: base.join("wrangler.toml"),
                message: format!("[vars] {name}: {e}"),
            })?;
            vars.insert(name.clone(), json);
        }
        // Secrets for development, beside the config: always watched, so
        // that creating the file rebuilds the route.
        let dev_vars = base.join(".dev.vars");
        files.push(dev_vars.clone());
        // Dependencies: a changed manifest or lock file (an `npm install`)
        // rebuilds the route; the packages' files it loads are watched as
        // they are loaded.
        for manifest in ["package.json", "package-lock.json"] {
            files.push(base.join(manifest));
        }
        if dev_vars.exists() {
            // Already named in `files` above.
            let text = read(&dev_vars, &mut Vec::new())?;
            for item in dotenvy::from_read_iter(text.as_bytes()) {
                let (name, value) = item.map_err(|e| ConfigError::DevVars {
                    path: dev_vars.clone(),
                    message: e.to_string(),
                })?;
                vars.insert(name, serde_json::Value::String(value));
            }
        }

        let kv = wrangler
            .kv_namespaces
            .iter()
            .map(|ns| KvBinding {
                binding: ns.binding.clone(),
                id: ns
                    .id
                    .clone()
                    .or_else(|| ns.preview_id.clone())
                    .unwrap_or_else(|| ns.binding.clone()),
            })
            .collect();
        let d1 = wrangler
            .d1_databases
            .iter()
            .map(|db| D1Binding {
                binding: db.binding.clone(),
                id: db
                    .database_id
                    .clone()
                    .or_else(|| db.preview_database_id.clone())
                    .or_else(|| db.database_name.clone())
                    .unwrap_or_else(|| db.binding.clone()),
            })
            .collect();
        let r2 = wrangler
            .r2_buckets
            .iter()
            .map(|bucket| R2Binding {
                binding: bucket.binding.clone(),
                bucket: bucket
                    .bucket_name
                    .clone()
                    .or_else(|| bucket.preview_bucket_name.clone())
                    .unwrap_or_else(|| bucket.binding.clone()),
            })
            .collect();

        let mut objects = Vec::new();
        for object in wrangler.durable_objects.iter().flat_map(|d| &d.bindings) {
            if let Some(script) = &object.script_name {
                warnings.push(format!(
                    "[[durable_objects.bindings]] {}: `script_name = \"{script}\"` (a class of another worker) is not emulated yet; it is not in `env`",
                    object.name
                ));
                continue;
            }
            objects.push(ObjectBinding {
                binding: object.name.clone(),
                class_name: object.class_name.clone(),
                sqlite: wrangler
                    .migrations
                    .iter()
                    .any(|m| m.new_sqlite_classes.contains(&object.class_name)),
            });
        }
        // The operator decides which workers a project may call: the route
        // option `services=a,b` (or `*`); a project's own `[[services]]`
        // reach nothing else, as its code is not trusted.
        let allowed = option("services").unwrap_or_default();
        let allows = |name: &str| allowed == "*" || allowed.split(',').any(|a| a.trim() == name);
        for service in wrangler.services.iter().filter(|s| !allows(&s.service)) {
            warnings.push(format!(
                "[[services]] {}: the worker \"{}\" is not in this route's `services=` option in proxy.ini; the binding is not in `env`",
                service.binding, service.service
            ));
        }
        let services = wrangler
            .services
            .iter()
            .filter(|service| allows(&service.service))
            .map(|service| ServiceBinding {
                binding: service.binding.clone(),
                service: service.service.clone(),
                entrypoint: service.entrypoint.clone(),
            })
            .collect();
        let state_dir = match option("state") {
            Some(dir) => config_dir.join(dir),
            None => base.join(".wrangler/state"),
        };
        let cpu_ms = number::<u64>("cpu_ms", option("cpu_ms").as_deref())?
            .or(wrangler.limits.as_ref().and_then(|l| l.cpu_ms))
            .unwrap_or(DEFAULT_CPU_MS);
        let memory_mb = number::<usize>("memory_mb", option("memory_mb").as_deref())?
            .unwrap_or(DEFAULT_MEMORY_MB);
        let queue = number::<usize>("queue", option("queue").as_deref())?.unwrap_or(DEFAULT_QUEUE);
        let queue_mb =
            number::<usize>("queue_mb", option("queue_mb").as_deref())?.unwrap_or(DEFAULT_QUEUE_MB);
        let test_scheduled = flag("test_scheduled", option("test_scheduled").as_deref())?;
        let threads =
            number::<usize>("threads", option("threads").as_deref())?.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map_or(1, std::num::NonZeroUsize::get)
                    .min(4)
            });
        Ok(WorkerConfig {
            route: route.to_string(),
            main,
            root: base,
            vars_json: serde_json::Value::Object(vars).to_string(),
            kv,
            d1,
            r2,
            objects,
            state_dir,
            cpu_limit: Duration::from_millis(cpu_ms),
            memory_limit: memory_mb.saturating_mul(1024 * 1024),
            threads,
            queue,
            queue_bytes: queue_mb.saturating_mul(1024 * 1024),
            test_scheduled,
            crons: wrangler.triggers.map(|t| t.crons).unwrap_or_default(),
            compatibility_date: wrangler.compatibility_date,
            compatibility_flags: wrangler.compatibility_flags,
            name: wrangler.name,
            services,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flexilib-workers-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn wrangler_toml_and_dev_vars() {
        let dir = dir("wrangler");
        std::fs::write(
            dir.join("wrangler.toml"),
            r#"
name = "app"
main = "src/index.js"
compatibility_date = "2025-01-01"
[vars]
GREETING = "hi"
LIMITS = { max = 3, names = ["a"] }
[[kv_namespaces]]
binding = "CACHE"
id = "abc123"
[[d1_databases]]
binding = "DB"
database_name = "app-db"
database_id = "d1-uuid"
[[r2_buckets]]
binding = "FILES"
bucket_name = "files"
[limits]
cpu_ms = 50
[triggers]
crons = ["*/5 * * * *"]
"#,
        )
        .expect("write");
        std::fs::write(
            dir.join(".dev.vars"),
            "SECRET=\"s3cret\"\nGREETING=override\n",
        )
        .expect("write");
        let mut files = Vec::new();
        let options = |key: &str| (key == "script").then(|| "wrangler.toml".to_string());
        let config =
            WorkerConfig::load("/w", &dir, options, &mut files).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.main, dir.join("src/index.js"));
        let vars: serde_json::Value =
            serde_json::from_str(&config.vars_json).expect("vars are JSON");
        assert_eq!(vars["GREETING"], "override");
        assert_eq!(vars["SECRET"], "s3cret");
        assert_eq!(vars["LIMITS"]["max"], 3);
        assert_eq!(
            config.kv,
            vec![KvBinding {
                binding: "CACHE".into(),
                id: "abc123".into()
            }]
        );
        assert_eq!(
            config.d1,
            vec![D1Binding {
                binding: "DB".into(),
                id: "d1-uuid".into()
            }]
        );
        assert_eq!(
            config.r2,
            vec![R2Binding {
                binding: "FILES".into(),
                bucket: "files".into()
            }]
        );
        assert_eq!(config.cpu_limit, Duration::from_millis(50));
        assert_eq!(config.crons, vec!["*/5 * * * *".to_string()]);
        assert_eq!(config.state_dir, dir.join(".wrangler/state"));
        assert_eq!(config.root, dir);
        assert!(!config.test_scheduled);
        assert_eq!(config.queue, DEFAULT_QUEUE);
        assert!(files.contains(&dir.join("wrangler.toml")));
        assert!(files.contains(&dir.join(".dev.vars")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_options_and_missing_main() {
        let dir = dir("bad");
        std::fs::write(dir.join("wrangler.toml"), "name = \"x\"\n").expect("write");
        let mut files = Vec::new();
        let err = WorkerConfig::load(
            "/w",
            &dir,
            |k| (k == "script").then(|| "wrangler.toml".into()),
            &mut files,
        )
        .map(|_| ())
        .map_err(|e| e.to_string());
        assert!(err.is_err_and(|e| e.contains("no `main`")));
        let err = WorkerConfig::load(
            "/w",
            &dir,
            |k| match k {
                "script" => Some("a.js".into()),
                "threads" => Some("zero".into()),
                _ => None,
            },
            &mut files,
        )
        .map(|_| ())
        .map_err(|e| e.to_string());
        assert!(err.is_err_and(|e| e.contains("threads=zero")));
        let err = WorkerConfig::load(
            "/w",
            &dir,
            |k| match k {
                "script" => Some("a.js".into()),
                "test_scheduled" => Some("maybe".into()),
                _ => None,
            },
            &mut files,
        )
        .map(|_| ())
        .map_err(|e| e.to_string());
        assert!(err.is_err_and(|e| e.contains("test_scheduled=maybe")));
        assert!(matches!(
            WorkerConfig::load("/w", &dir, |_| None, &mut files),
            Err(ConfigError::NoScript)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
