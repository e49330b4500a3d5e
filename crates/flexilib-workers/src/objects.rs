//! Durable Objects' storage and ids, host side.
//!
//! Each `[[durable_objects.bindings]]` class stores its objects' data in
//! one SQLite file under the state directory (`do/CLASS.sqlite`), a row
//! per object and key, values as JSON text (the prelude's RPC encoding,
//! which carries what a structured clone does but functions and streams;
//! see the README). Ids are 64 hex digits, as Cloudflare's:
//! `idFromName` hashes the class and the name, so a name finds the same
//! object after a restart; `newUniqueId` is random.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use sha2::Digest as _;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The database said no.
    #[error("Durable Object storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A key or value over Cloudflare's limits.
    #[error("{0}")]
    TooLarge(&'static str),
    /// The state directory cannot be created.
    #[error("cannot create the Durable Objects state directory {path}: {source}", path = .path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One class's objects' storage.
pub struct ObjectStore {
    conn: Mutex<Connection>,
}

/// The options of `storage.list()`.
#[derive(Debug, Default)]
pub struct ListOptions {
    /// Keys starting with this.
    pub prefix: String,
    /// Keys at or after this.
    pub start: Option<String>,
    /// Keys before this.
    pub end: Option<String>,
    /// At most this many (0: all).
    pub limit: usize,
    /// Descending order.
    pub reverse: bool,
}

impl ObjectStore {
    /// Opens (creating) the store of `class` under `state_dir`.
    pub fn open(state_dir: &Path, class: &str) -> Result<ObjectStore, ObjectError> {
        let dir = state_dir.join("do");
        std::fs::create_dir_all(&dir).map_err(|source| ObjectError::Directory {
            path: dir.clone(),
            source,
        })?;
        let name = format!("{}.sqlite", crate::kv::safe_name(class));
        let conn = Connection::open(dir.join(name))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS storage (
                 object TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                 PRIMARY KEY (object, key)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS alarms (
                 object TEXT PRIMARY KEY NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;",
        )?;
        Ok(ObjectStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The values (JSON) of `keys` of `object`, `None` where absent.
    pub fn get(&self, object: &str, keys: &[String]) -> Result<Vec<Option<String>>, ObjectError> {
        let conn = self.conn();
        let mut statement =
            conn.prepare_cached("SELECT value FROM storage WHERE object = ?1 AND key = ?2")?;
        keys.iter()
            .map(|key| {
                statement
                    .query_row(params![object, key], |row| row.get(0))
                    .optional()
                    .map_err(ObjectError::from)
            })
            .collect()
    }

    /// Stores `entries` (key, JSON value) of `object`, in one transaction.
    pub fn put(&self, object: &str, entries: &[(String, String)]) -> Result<(), ObjectError> {
        let mut conn = self.conn();
        let transaction = conn.transaction()?;
        {
            let mut statement = transaction.prepare_cached(
                "INSERT INTO storage (object, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (object, key) DO UPDATE SET value = excluded.value",
            )?;
            for (key, value) in entries {
                statement.execute(params![object, key, value])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Deletes `keys` of `object`; how many existed.
    pub fn delete(&self, object: &str, keys: &[String]) -> Result<usize, ObjectError> {
        let mut conn = self.conn();
        let transaction = conn.transaction()?;
        let mut deleted = 0;
        {
            let mut statement =
                transaction.prepare_cached("DELETE FROM storage WHERE object = ?1 AND key = ?2")?;
            for key in keys {
                deleted += statement.execute(params![object, key])?;
            }
        }
        transaction.commit()?;
        Ok(deleted)
    }

    /// Deletes everything `object` stored.
    pub fn delete_all(&self, object: &str) -> Result<(), ObjectError> {
        self.conn()
            .execute("DELETE FROM storage WHERE object = ?1", params![object])?;
        Ok(())
    }

    /// When `object`'s alarm is set for (ms since the epoch), if it is.
    pub fn alarm(&self, object: &str) -> Result<Option<i64>, ObjectError> {
        self.conn()
            .query_row(
                "SELECT at FROM alarms WHERE object = ?1",
                params![object],
                |row| row.get(0),
            )
            .optional()
            .map_err(ObjectError::from)
    }

    /// Sets `object`'s alarm for `at` (ms since the epoch), or deletes it
    /// (`None`).
    pub fn set_alarm(&self, object: &str, at: Option<i64>) -> Result<(), ObjectError> {
        let conn = self.conn();
        match at {
            Some(at) => conn.execute(
                "INSERT INTO alarms (object, at) VALUES (?1, ?2)
                 ON CONFLICT (object) DO UPDATE SET at = excluded.at",
                params![object, at],
            )?,
            None => conn.execute("DELETE FROM alarms WHERE object = ?1", params![object])?,
        };
        Ok(())
    }

    /// Deletes `object`'s alarm if it is still set for `at` (it fired and
    /// was not set again meanwhile).
    pub fn clear_alarm(&self, object: &str, at: i64) -> Result<(), ObjectError> {
        self.conn().execute(
            "DELETE FROM alarms WHERE object = ?1 AND at = ?2",
            params![object, at],
        )?;
        Ok(())
    }

    /// Every alarm set: (object, ms since the epoch).
    pub fn alarms(&self) -> Result<Vec<(String, i64)>, ObjectError> {
        let conn = self.conn();
        let mut statement = conn.prepare("SELECT object, at FROM alarms")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>().map_err(ObjectError::from)
    }

    /// `object`'s entries, by key, as `list` selects them.
    pub fn list(
        &self,
        object: &str,
        options: &ListOptions,
    ) -> Result<Vec<(String, String)>, ObjectError> {
        let order = if options.reverse { "DESC" } else { "ASC" };
        let limit = if options.limit == 0 {
            -1
        } else {
            i64::try_from(options.limit).unwrap_or(-1)
        };
        let sql = format!(
            "SELECT key, value FROM storage WHERE object = ?1
               AND substr(key, 1, length(?2)) = ?2
               AND (?3 IS NULL OR key >= ?3) AND (?4 IS NULL OR key < ?4)
             ORDER BY key {order} LIMIT ?5"
        );
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement.query_map(
            params![object, options.prefix, options.start, options.end, limit],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        rows.collect::<Result<_, _>>().map_err(ObjectError::from)
    }
}

/// The id `idFromName(name)` gives in namespace `class`.
pub fn id_from_name(class: &str, name: &str) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(class.as_bytes());
    hasher.update([0]);
    hasher.update(name.as_bytes());
    hex(&hasher.finalize())
}

/// A fresh random id.
pub fn new_unique_id() -> String {
    hex(&crate::web::random_bytes(32))
}

/// Whether `id` is an id (64 lowercase hex digits).
pub fn is_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_round_trips_and_lists_in_order() {
        let dir = std::env::temp_dir().join(format!("flexilib-do-{}", std::process::id()));
        let store = ObjectStore::open(&dir, "Counter").expect("store");
        store
            .put(
                "a",
                &[
                    ("k2".into(), "2".into()),
                    ("k1".into(), "1".into()),
                    ("x".into(), "\"x\"".into()),
                ],
            )
            .expect("put");
        store
            .put("b", &[("k1".into(), "9".into())])
            .expect("other object");
        assert_eq!(
            store.get("a", &["k1".into(), "nope".into()]).expect("get"),
            [Some("1".to_string()), None]
        );
        let listed = store
            .list(
                "a",
                &ListOptions {
                    prefix: "k".into(),
                    ..ListOptions::default()
                },
            )
            .expect("list");
        assert_eq!(
            listed,
            [
                ("k1".to_string(), "1".to_string()),
                ("k2".to_string(), "2".to_string())
            ]
        );
        let reversed = store
            .list(
                "a",
                &ListOptions {
                    reverse: true,
                    limit: 1,
                    ..ListOptions::default()
                },
            )
            .expect("list");
        assert_eq!(reversed, [("x".to_string(), "\"x\"".to_string())]);
        assert_eq!(
            store
                .delete("a", &["k1".into(), "nope".into()])
                .expect("delete"),
            1
        );
        store.delete_all("a").expect("delete all");
        assert!(store
            .list("a", &ListOptions::default())
            .expect("list")
            .is_empty());
        assert_eq!(
            store.get("b", &["k1".into()]).expect("get"),
            [Some("9".to_string())]
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(id_from_name("Counter", "a"), id_from_name("Counter", "a"));
        assert_ne!(id_from_name("Counter", "a"), id_from_name("Other", "a"));
        assert!(is_id(&id_from_name("Counter", "a")) && is_id(&new_unique_id()));
    }
}
