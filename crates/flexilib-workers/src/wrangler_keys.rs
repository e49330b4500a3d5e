//! The top-level keys of a `wrangler.toml`, checked as wrangler checks
//! them: a key wrangler does not know is warned about (a misspelt
//! `[[kv_namespace]]` would otherwise just leave `env.KV` undefined), with
//! the nearest known key; a key wrangler knows but this runtime does not
//! emulate is named too, so a binding that is missing says why.

/// Keys this runtime reads.
const READ: &[&str] = &[
    "name",
    "services",
    "main",
    "compatibility_date",
    "compatibility_flags",
    "vars",
    "kv_namespaces",
    "d1_databases",
    "r2_buckets",
    "durable_objects",
    "migrations",
    "limits",
    "triggers",
];

/// Keys wrangler knows that change nothing when running locally here
/// (deployment, build and account settings).
const NOT_LOCAL: &[&str] = &[
    "account_id",
    "zone_id",
    "workers_dev",
    "preview_urls",
    "route",
    "routes",
    "build",
    "minify",
    "no_bundle",
    "keep_vars",
    "keep_names",
    "send_metrics",
    "upload_source_maps",
    "logpush",
    "observability",
    "placement",
    "usage_model",
    "tail_consumers",
    "version_metadata",
    "dev",
    "env",
    "tsconfig",
    "jsx_factory",
    "jsx_fragment",
    "define",
    "alias",
    "rules",
    "find_additional_modules",
    "base_dir",
    "preserve_file_names",
    "legacy_env",
    "first_party_worker",
    "node_compat",
    "$schema",
];

/// Keys wrangler knows for features this runtime does not emulate yet.
const NOT_EMULATED: &[&str] = &[
    "queues",
    "assets",
    "site",
    "ai",
    "browser",
    "vectorize",
    "hyperdrive",
    "analytics_engine_datasets",
    "dispatch_namespaces",
    "mtls_certificates",
    "send_email",
    "workflows",
    "pipelines",
    "containers",
    "ratelimits",
    "secrets_store_secrets",
    "unsafe",
    "wasm_modules",
    "text_blobs",
    "data_blobs",
    "logfwdr",
];

/// Warnings for the top-level `keys` of a wrangler configuration; `text`
/// is the file they came from (TOML or JSON, to give each key's line) and
/// `file` its name as shown.
pub fn check<'k>(keys: impl Iterator<Item = &'k str>, text: &str, file: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    for key in keys {
        if READ.contains(&key) || NOT_LOCAL.contains(&key) {
            continue;
        }
        let place = match line_of(text, key) {
            Some(line) => format!("{file}:{line}"),
            None => file.to_string(),
        };
        if NOT_EMULATED.contains(&key) {
            warnings.push(format!(
                "{place}: `{key}` is not emulated by FlexiLib yet; its bindings are not in `env`"
            ));
            continue;
        }
        let nearest = READ
            .iter()
            .chain(NOT_LOCAL)
            .chain(NOT_EMULATED)
            .map(|known| (strsim::damerau_levenshtein(key, known), *known))
            .min()
            .filter(|(distance, _)| *distance <= 3.max(key.len() / 3));
        let hint = match nearest {
            Some((_, known)) => format!(" (did you mean `{known}`?)"),
            None => String::new(),
        };
        warnings.push(format!(
            "{place}: unexpected top-level field `{key}`{hint}; wrangler ignores it too"
        ));
    }
    warnings
}

/// The line (from 1) where top-level `key` is written: `key = …`,
/// `key.sub = …`, `[key]`, `[key.sub]` or `[[key]]` in TOML, `"key":` in
/// JSON.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let json_key = format!("\"{key}\"");
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            if let Some(rest) = line.strip_prefix(&json_key) {
                if rest.trim_start().starts_with(':') {
                    return true;
                }
            }
            let name = line.trim_start_matches('[').trim_start();
            let rest = name
                .strip_prefix(key)
                .or_else(|| name.strip_prefix(&format!("\"{key}\"")));
            match rest {
                Some(rest) => {
                    let rest = rest.trim_start();
                    rest.starts_with('=')
                        || rest.starts_with('.')
                        || (line.starts_with('[') && rest.starts_with(']'))
                }
                None => false,
            }
        })
        .map(|index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_warn_with_their_line_and_the_nearest_known_key() {
        let text = "name = \"w\"\nflavour = 1\nmain = \"a.js\"\n\n[[kv_namespace]]\nbinding = \"KV\"\n\n[[d1_databases]]\nbinding = \"DB\"\n\n[[queues]]\nbinding = \"Q\"\n";
        let table: toml::Table = toml::from_str(text).expect("toml");
        let warnings = check(table.keys().map(String::as_str), text, "wrangler.toml");
        assert_eq!(
            warnings,
            [
                "wrangler.toml:2: unexpected top-level field `flavour`; wrangler ignores it too",
                "wrangler.toml:5: unexpected top-level field `kv_namespace` (did you mean `kv_namespaces`?); wrangler ignores it too",
                "wrangler.toml:11: `queues` is not emulated by FlexiLib yet; its bindings are not in `env`",
            ]
        );
    }
}
