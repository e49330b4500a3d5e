//! Spin key-value stores (`fermyon:spin/key-value@2.0.0`) in SQLite: one
//! database file per application, in its state directory
//! (`<state>/key_value.sqlite`), a table row per (store label, key).
//! A component opens only the labels its `key_value_stores` lists; the
//! components of one application that list the same label share that
//! store, as in Spin. The data survives reloads and restarts.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{params, Connection, OptionalExtension};
use wasmtime::component::Resource;

use super::bindings::fermyon::spin::key_value::{self, Error};
use crate::guest::GuestState;

/// Longest key, in bytes (Spin's limit).
pub const MAX_KEY_BYTES: usize = 255;
/// Largest value, in bytes (Spin's limit).
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Stores one request may hold open at once.
const MAX_OPEN_STORES: usize = 16;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyValueError {
    /// The state directory could not be made.
    #[error("cannot create the state directory {path}: {source}", path = .path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite refused.
    #[error("key-value database {path}: {source}", path = .path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
}

/// An application's key-value database.
pub struct KeyValueDb {
    conn: Mutex<Connection>,
}

impl KeyValueDb {
    /// Opens (creating) `<state_dir>/key_value.sqlite`.
    pub fn open(state_dir: &Path) -> Result<KeyValueDb, KeyValueError> {
        std::fs::create_dir_all(state_dir).map_err(|source| KeyValueError::Directory {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join("key_value.sqlite");
        let sqlite = |source| KeyValueError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sqlite)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            ) WITHOUT ROWID;",
        )
        .map_err(sqlite)?;
        Ok(KeyValueDb {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, store: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        self.conn()
            .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
            .query_row(params![store, key], |row| row.get(0))
            .optional()
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT(store, key) DO UPDATE SET value = ?3",
            )?
            .execute(params![store, key, value])
            .map(drop)
    }

    fn delete(&self, store: &str, key: &str) -> rusqlite::Result<()> {
        self.conn()
            .prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
            .execute(params![store, key])
            .map(drop)
    }

    fn exists(&self, store: &str, key: &str) -> rusqlite::Result<bool> {
        self.conn()
            .prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
            .exists(params![store, key])
    }

    fn keys(&self, store: &str) -> rusqlite::Result<Vec<String>> {
        let conn = self.conn();
        let mut statement =
            conn.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?;
        let keys = statement
            .query_map(params![store], |row| row.get(0))?
            .collect();
        keys
    }
}

/// A store a guest opened: its label.
pub struct OpenStore {
    label: String,
}

/// What a failed database call becomes for the guest.
fn other(error: &rusqlite::Error) -> Error {
    Error::Other(format!("key-value storage error: {error}"))
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::Other(format!(
            "the key is {} bytes, more than the {MAX_KEY_BYTES} a key may have",
            key.len()
        )));
    }
    Ok(())
}

impl GuestState {
    /// The label of `store` and the application's database.
    fn store(
        &mut self,
        store: &Resource<OpenStore>,
    ) -> wasmtime::Result<(String, std::sync::Arc<KeyValueDb>)> {
        let label = self.table.get(store)?.label.clone();
        let db = self
            .spin
            .as_ref()
            .and_then(|spin| spin.context.key_value.clone())
            .ok_or_else(|| wasmtime::Error::msg("a key-value store without a database"))?;
        Ok((label, db))
    }
}

impl key_value::Host for GuestState {}

impl key_value::HostStore for GuestState {
    fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        let Some(spin) = self.spin.as_mut() else {
            return Ok(Err(Error::AccessDenied));
        };
        if !spin.context.stores.contains(&label) || spin.context.key_value.is_none() {
            return Ok(Err(Error::AccessDenied));
        }
        if spin.open_stores >= MAX_OPEN_STORES {
            return Ok(Err(Error::StoreTableFull));
        }
        spin.open_stores += 1;
        Ok(Ok(self.table.push(OpenStore { label })?))
    }

    fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let (label, db) = self.store(&store)?;
        Ok(check_key(&key).and_then(|()| db.get(&label, &key).map_err(|e| other(&e))))
    }

    fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (label, db) = self.store(&store)?;
        if value.len() > MAX_VALUE_BYTES {
            return Ok(Err(Error::Other(format!(
                "the value is {} bytes, more than the {MAX_VALUE_BYTES} a value may have",
                value.len()
            ))));
        }
        Ok(check_key(&key).and_then(|()| db.set(&label, &key, &value).map_err(|e| other(&e))))
    }

    fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (label, db) = self.store(&store)?;
        Ok(check_key(&key).and_then(|()| db.delete(&label, &key).map_err(|e| other(&e))))
    }

    fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let (label, db) = self.store(&store)?;
        Ok(check_key(&key).and_then(|()| db.exists(&label, &key).map_err(|e| other(&e))))
    }

    fn get_keys(
        &mut self,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let (label, db) = self.store(&store)?;
        Ok(db.keys(&label).map_err(|e| other(&e)))
    }

    fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        if let Some(spin) = self.spin.as_mut() {
            spin.open_stores = spin.open_stores.saturating_sub(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_are_separate_and_persist() {
        let dir = std::env::temp_dir().join(format!("flexilib-spin-kv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = KeyValueDb::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        db.set("default", "a", b"1")
            .unwrap_or_else(|e| panic!("{e}"));
        db.set("other", "a", b"2").unwrap_or_else(|e| panic!("{e}"));
        db.set("default", "b", b"3")
            .unwrap_or_else(|e| panic!("{e}"));
        drop(db);
        let db = KeyValueDb::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(db.get("default", "a").ok().flatten(), Some(b"1".to_vec()));
        assert_eq!(db.get("other", "a").ok().flatten(), Some(b"2".to_vec()));
        assert_eq!(db.keys("default").ok(), Some(vec!["a".into(), "b".into()]));
        db.delete("default", "a").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(db.exists("default", "a").ok(), Some(false));
        assert_eq!(db.exists("other", "a").ok(), Some(true));
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES + 1)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
