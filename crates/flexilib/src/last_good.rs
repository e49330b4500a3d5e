//! The last good configuration: what a restarted worker serves when the
//! config file was broken since the last one started.
//!
//! A running worker rejects a bad edit and keeps its routes; a worker
//! restarted after a crash would read the broken file and could not start,
//! and the supervisor would then give up, closing the socket. So the
//! supervisor makes a private directory and passes the path of a file in it
//! (`FLEXILIB_LAST_GOOD_CONFIG`); it writes there the text it validated at
//! startup, and the worker writes every text it starts with or reloads. A
//! worker that finds the config file broken parses the last good text
//! instead, as if it were in the real file (relative library paths and
//! watching stay the real file's), and logs a warning naming the file and
//! line. The supervisor removes the directory when it exits.

use std::path::{Path, PathBuf};

use crate::config::{self, Config, ConfigError};
use crate::private_dirs::PrivateDir;

/// Environment variable carrying the path of the last good config.
pub const LAST_GOOD_CONFIG_ENV: &str = "FLEXILIB_LAST_GOOD_CONFIG";

/// Where the last good config text is kept.
#[derive(Debug, Clone)]
pub struct LastGood {
    path: PathBuf,
}

/// The supervisor's private directory, removed when dropped.
#[derive(Debug)]
pub struct LastGoodDir {
    dir: PrivateDir,
    last_good: LastGood,
}

impl LastGoodDir {
    /// Creates the private directory in which the last good config is kept.
    pub fn create() -> std::io::Result<Self> {
        let dir = crate::private_dirs::create_in(&crate::private_dirs::base())?;
        let path = dir.path().join("last-good.ini");
        Ok(Self {
            dir,
            last_good: LastGood { path },
        })
    }

    /// The file in it.
    pub fn last_good(&self) -> &LastGood {
        &self.last_good
    }
}

impl Drop for LastGoodDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.dir.path());
    }
}

impl LastGood {
    /// The file named by the supervisor, if any.
    pub fn from_env() -> Option<Self> {
        std::env::var_os(LAST_GOOD_CONFIG_ENV).map(|path| Self { path: path.into() })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps `text` as the last good config (written aside, then renamed
    /// into place, so a reader never sees half of it). A failure is logged:
    /// the server runs on, only a later restart could not fall back.
    pub fn save(&self, text: &str) {
        let staged = self.path.with_extension("ini.new");
        let saved =
            std::fs::write(&staged, text).and_then(|()| std::fs::rename(&staged, &self.path));
        if let Err(error) = saved {
            tracing::warn!(file = %self.path.display(), %error, "cannot keep the last good config");
        }
    }

    /// The config at `path`; if that is broken, the last good text parsed
    /// as if it were at `path` (with a warning naming the file and line).
    pub fn load_or_fall_back(last_good: Option<&Self>, path: &Path) -> Result<Config, ConfigError> {
        let error = match config::load(path) {
            Ok(config) => {
                if let Some(last_good) = last_good {
                    last_good.save(&config.text);
                }
                return Ok(config);
            }
            Err(error) => error,
        };
        let fallback = last_good
            .and_then(|last_good| std::fs::read_to_string(&last_good.path).ok())
            .and_then(|text| config::parse(path, &text).ok());
        match fallback {
            Some(config) => {
                tracing::warn!(
                    %error,
                    "config rejected; serving the last good config until the file is fixed"
                );
                Ok(config)
            }
            None => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_file_falls_back_to_the_last_good_text_at_its_own_path() {
        let dir = LastGoodDir::create().expect("private directory");
        let config_path = dir.dir.path().join("proxy.ini");
        std::fs::write(&config_path, "/a = liba.so\n").expect("write");
        let last_good = Some(dir.last_good());
        let loaded = LastGood::load_or_fall_back(last_good, &config_path).expect("good");
        assert_eq!(loaded.rules.len(), 1);

        std::fs::write(&config_path, "/a = liba.so\n/broken\n").expect("write");
        let loaded = LastGood::load_or_fall_back(last_good, &config_path).expect("fallback");
        assert_eq!(loaded.path, config_path);
        let config::TargetSpec::Library(library) = &loaded.rules[0].target else {
            panic!("a library rule: {:?}", loaded.rules[0].target);
        };
        assert_eq!(library.path, dir.dir.path().join("liba.so"));
        // Without a last good config, the error stands.
        assert!(LastGood::load_or_fall_back(None, &config_path).is_err());
        let kept = dir.dir.path().to_path_buf();
        drop(dir);
        assert!(!kept.exists());
    }
}
