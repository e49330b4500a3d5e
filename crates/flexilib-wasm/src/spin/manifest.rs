//! A Spin manifest (`spin.toml`, `spin_manifest_version = 2`) as written:
//! the TOML read into these types, with `toml`'s error (line and column)
//! when it does not parse or a field has the wrong type. What the fields
//! mean is resolved in [`super::app`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}", path = .path.display())]
    Read {
        /// The manifest.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not TOML, or not a manifest (`toml` says where: the line and
    /// column are counted from its span).
    #[error("{path}: {message}", path = .path.display())]
    Parse {
        /// The manifest.
        path: PathBuf,
        /// `line L, column C: ` and `toml`'s message.
        message: String,
    },
    /// Another manifest version.
    #[error("{path}: spin_manifest_version = {found}: only version 2 is read (`spin doctor` or `spin up` migrates version 1)", path = .path.display())]
    Version {
        /// The manifest.
        path: PathBuf,
        /// The version found.
        found: String,
    },
}

/// The whole manifest.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    /// Must be 2.
    pub spin_manifest_version: toml::Value,
    /// `[application]`.
    #[serde(default)]
    pub application: Application,
    /// Application variables.
    #[serde(default)]
    pub variables: BTreeMap<String, Variable>,
    /// `[[trigger.TYPE]]` tables.
    #[serde(default)]
    pub trigger: Triggers,
    /// `[component.ID]` tables.
    #[serde(default)]
    pub component: BTreeMap<String, Component>,
}

/// `[application]`.
#[derive(Debug, Default, Deserialize)]
pub struct Application {
    /// The application's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// An application variable.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Its value unless the route gives one.
    #[serde(default)]
    pub default: Option<String>,
    /// Whether a value must be given (then there is no default).
    #[serde(default)]
    pub required: bool,
    /// Whether its value is kept out of logs (accepted; no value is ever
    /// logged here).
    #[serde(default, rename = "secret")]
    pub _secret: bool,
}

/// `[[trigger.http]]` and other trigger types.
#[derive(Debug, Default, Deserialize)]
pub struct Triggers {
    /// HTTP triggers.
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
    /// Any other trigger type (`redis`, …): not served.
    #[serde(flatten)]
    pub other: BTreeMap<String, toml::Value>,
}

/// One `[[trigger.http]]`.
#[derive(Debug, Deserialize)]
pub struct HttpTrigger {
    /// The trigger's id, if given.
    #[serde(default)]
    pub id: Option<String>,
    /// `route = "/path"`, `"/path/..."` or `{ private = true }`.
    pub route: TriggerRoute,
    /// The component's id, or the component inline.
    pub component: ComponentRef,
    /// `executor = { type = "spin" | "wagi" }`.
    #[serde(default)]
    pub executor: Option<Executor>,
}

/// A trigger's route.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TriggerRoute {
    /// A path pattern.
    Path(String),
    /// `{ private = true }`: reachable only from other components.
    Private {
        /// Must be true.
        private: bool,
    },
}

/// A trigger's component.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ComponentRef {
    /// The id of a `[component.ID]`.
    Id(String),
    /// The component written inline.
    Inline(Box<Component>),
}

/// `executor = { type = … }`.
#[derive(Debug, Deserialize)]
pub struct Executor {
    /// `spin` (the default) or `wagi`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `[component.ID]`.
#[derive(Debug, Deserialize)]
pub struct Component {
    /// The `.wasm`: a path relative to the manifest, or `{ url, digest }`.
    pub source: Source,
    /// `scheme://host[:port]` patterns the component may send requests to.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Files and directories the component sees (read-only).
    #[serde(default)]
    pub files: Vec<FileMount>,
    /// Patterns left out of `files`.
    #[serde(default)]
    pub exclude_files: Vec<String>,
    /// Its environment.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Key-value store labels it may open.
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// SQLite database labels (not provided).
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    /// AI models (not provided).
    #[serde(default)]
    pub ai_models: Vec<String>,
    /// Component variables: name → template (`"{{ app_var }}"`).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Component dependencies (not provided).
    #[serde(default)]
    pub dependencies: Option<toml::Value>,
    // `description`, `[component.ID.build]` (for `spin build`), … are
    // ignored.
}

/// A component's source.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Source {
    /// A path relative to the manifest.
    Path(String),
    /// `{ url, digest }` or `{ registry, package, version }`.
    Remote(toml::Table),
}

/// An entry of `files`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FileMount {
    /// A path or glob pattern relative to the manifest, seen at the same
    /// path from `/`.
    Pattern(String),
    /// A directory (or file) mounted at `destination`.
    Mapping {
        /// Relative to the manifest.
        source: String,
        /// Absolute path in the guest.
        destination: String,
    },
}

impl Manifest {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        let read_error = |source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(file, MAX_MANIFEST_BYTES),
            &mut text,
        )
        .map_err(read_error)?;
        Self::parse(path, &text)
    }

    /// Parses `text`, the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| ManifestError::Parse {
            path: path.to_path_buf(),
            message: match e.span() {
                Some(span) => {
                    let before = text.get(..span.start).unwrap_or(text);
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |n| n + 1) + 1;
                    format!("line {line}, column {column}: {}", e.message())
                }
                None => e.message().to_string(),
            },
        })?;
        if manifest.spin_manifest_version.as_integer() != Some(2) {
            return Err(ManifestError::Version {
                path: path.to_path_buf(),
                found: manifest.spin_manifest_version.to_string(),
            });
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_is_read_and_errors_name_file_and_line() {
        let path = Path::new("/apps/spin.toml");
        let manifest = Manifest::parse(
            path,
            r#"
spin_manifest_version = 2
[application]
name = "demo"
[variables]
greeting = { default = "hi" }
token = { required = true, secret = true }
[[trigger.http]]
route = "/..."
component = "web"
[[trigger.http]]
route = { private = true }
component = { source = "inline.wasm" }
[component.web]
source = "web.wasm"
allowed_outbound_hosts = ["https://example.com"]
files = ["static", { source = "assets", destination = "/assets" }]
environment = { A = "b" }
key_value_stores = ["default"]
[component.web.variables]
message = "{{ greeting }}, world"
[component.web.build]
command = "make"
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(manifest.application.name.as_deref(), Some("demo"));
        assert_eq!(manifest.trigger.http.len(), 2);
        assert!(manifest.variables["token"].required);
        let web = &manifest.component["web"];
        assert_eq!(web.files.len(), 2);
        assert_eq!(web.variables["message"], "{{ greeting }}, world");

        let bad = Manifest::parse(
            path,
            "spin_manifest_version = 2\n[component.x]\nsource = 3\n",
        )
        .map(|_| ())
        .map_err(|e| e.to_string());
        let message = bad.err().unwrap_or_default();
        assert!(
            message.starts_with("/apps/spin.toml:") && message.contains("line 3"),
            "{message}"
        );
        let v1 = Manifest::parse(path, "spin_manifest_version = \"1\"\n").map(|_| ());
        assert!(v1.is_err_and(|e| e.to_string().contains("only version 2")));
    }
}
