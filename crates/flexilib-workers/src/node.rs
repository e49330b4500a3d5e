//! The `nodejs_compat` built-in modules (compatibility flag
//! `nodejs_compat`, as on Cloudflare): which exist, and the module source
//! the loader declares for each. Their code is `js/node.js`, evaluated once
//! per isolate after the prelude; a `node:X` module re-exports its part.

/// The modules emulated, by their name after `node:`.
pub const MODULES: [&str; 6] = [
    "buffer",
    "events",
    "util",
    "crypto",
    "async_hooks",
    "process",
];

/// The code of the modules (a function of the natives and `process.env`).
pub const SOURCE: &str = include_str!("js/node.js");

/// Where `js/node.js` leaves its modules (a global symbol key).
pub const GLOBAL_KEY: &str = "flexilib.node";

/// `node:X` for a specifier naming built-in module X (`node:buffer`, or
/// the bare `buffer` Cloudflare also accepts), if it is one emulated here.
pub fn builtin(specifier: &str) -> Option<&'static str> {
    let name = specifier.strip_prefix("node:").unwrap_or(specifier);
    MODULES
        .iter()
        .position(|m| *m == name)
        .map(|index| NAMES[index])
}

const NAMES: [&str; 6] = [
    "node:buffer",
    "node:events",
    "node:util",
    "node:crypto",
    "node:async_hooks",
    "node:process",
];

/// The source of module `node:X` (`name`), exporting `exports` by name, the
/// default, and the value `require` gives.
pub fn module_source(name: &str, exports: &[String]) -> String {
    let short = name.strip_prefix("node:").unwrap_or(name);
    let mut source = format!(
        "const m = globalThis[Symbol.for('{GLOBAL_KEY}')]['{short}'];\n\
         export default m.default;\n\
         export function __flexilib_cjs() {{ return m.default; }}\n"
    );
    let names: Vec<&str> = exports
        .iter()
        .map(String::as_str)
        .filter(|e| {
            *e != "default"
                && !e.is_empty()
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                && !e.starts_with(|c: char| c.is_ascii_digit())
        })
        .collect();
    if !names.is_empty() {
        source.push_str(&format!(
            "export const {{ {} }} = m.named;\n",
            names.join(", ")
        ));
    }
    source
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifiers_name_the_emulated_modules_only() {
        assert_eq!(builtin("node:buffer"), Some("node:buffer"));
        assert_eq!(builtin("events"), Some("node:events"));
        assert_eq!(builtin("node:fs"), None);
        assert_eq!(builtin("lodash"), None);
        let source = module_source("node:util", &["inspect".into(), "bad-name".into()]);
        assert!(source.contains("export const { inspect } = m.named;"));
        assert!(!source.contains("bad-name"));
    }
}
