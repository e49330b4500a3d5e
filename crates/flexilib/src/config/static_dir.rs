//! `dir:PATH`: a directory of static files, relative to the config file's
//! directory.

use std::path::{Path, PathBuf};

/// A static-file route's directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StaticSpec {
    /// The directory, absolute (not resolving symlinks: it is opened at
    /// every request, so a directory swapped by a rename is followed).
    pub root: PathBuf,
}

/// Parses the value after `dir:`; `base` is the config file's directory.
pub fn parse(value: &str, base: &Path) -> Result<StaticSpec, String> {
    let mut tokens = value.split_whitespace();
    let path = tokens
        .next()
        .ok_or("`dir:` needs a directory: `dir:public`")?;
    if let Some(extra) = tokens.next() {
        return Err(format!("`{extra}`: `dir:` takes no options"));
    }
    Ok(StaticSpec {
        root: super::absolute(&base.join(path)),
    })
}

/// A missing directory is an error: nothing could ever be served.
pub fn check_files(spec: &StaticSpec) -> Result<(), String> {
    match std::fs::metadata(&spec.root) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", spec.root.display())),
        Err(error) => Err(format!("directory {}: {error}", spec.root.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_to_the_config_and_without_options() {
        let spec = parse("public", Path::new("/srv/site")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.root, Path::new("/srv/site/public"));
        assert!(parse("public index=no", Path::new("/srv")).is_err());
        assert!(parse("", Path::new("/srv")).is_err());
    }
}
