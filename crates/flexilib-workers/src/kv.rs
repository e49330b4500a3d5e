//! KV namespaces backed by SQLite (one database file per namespace id
//! under the state directory), shared by every JS thread and instance of a
//! route: the data survives reloads and restarts.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rusqlite::{params, Connection, OptionalExtension};

/// Why a KV operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The database said no.
    #[error("KV storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The state directory cannot be created.
    #[error("cannot create the KV state directory {path}: {source}", path = .path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `list` cursor this store did not hand out.
    #[error("KV LIST failed: 400 Invalid cursor.")]
    Cursor,
}

/// One namespace's store.
pub struct KvStore {
    conn: Mutex<Connection>,
}

/// A value with its metadata (JSON text).
pub type Entry = (Vec<u8>, Option<String>);

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `name` made safe as a file or directory name under the state
/// directory (KV namespaces, D1 databases, R2 buckets, Durable Object
/// classes): letters, digits, `-` and `_` kept, anything else `_`.
pub(crate) fn safe_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "_".into()
    } else {
        safe
    }
}

impl KvStore {
    /// Opens (creating if needed) namespace `id` under `state_dir`.
    pub fn open(state_dir: &Path, id: &str) -> Result<KvStore, KvError> {
        let dir = state_dir.join("kv");
        std::fs::create_dir_all(&dir).map_err(|source| KvError::Directory {
            path: dir.clone(),
            source,
        })?;
        let conn = Connection::open(dir.join(format!("{}.sqlite", safe_name(id))))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (
                key TEXT PRIMARY KEY NOT NULL,
                value BLOB NOT NULL,
                metadata TEXT,
                expiration INTEGER
            ) WITHOUT ROWID;",
        )?;
        Ok(KvStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The live value of `key`.
    pub fn get(&self, key: &str) -> Result<Option<Entry>, KvError> {
        let conn = self.conn();
        let row = conn
            .prepare_cached(
                "SELECT value, metadata FROM kv WHERE key = ?1 AND (expiration IS NULL OR expiration > ?2)",
            )?
            .query_row(params![key, now_seconds()], |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Option<String>>(1)?))
            })
            .optional()?;
        Ok(row)
    }

    /// Stores `value` (expiration in seconds since the epoch, 0 for none).
    pub fn put(
        &self,
        key: &str,
        value: &[u8],
        expiration: i64,
        metadata: Option<&str>,
    ) -> Result<(), KvError> {
        let expiration = (expiration > 0).then_some(expiration);
        self.conn()
            .prepare_cached(
                "INSERT INTO kv (key, value, metadata, expiration) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(key) DO UPDATE SET value = ?2, metadata = ?3, expiration = ?4",
            )?
            .execute(params![key, value, metadata, expiration])?;
        Ok(())
    }

    /// Deletes `key` (absent keys are fine).
    pub fn delete(&self, key: &str) -> Result<(), KvError> {
        self.conn()
            .prepare_cached("DELETE FROM kv WHERE key = ?1")?
            .execute(params![key])?;
        Ok(())
    }

    /// Lists live keys with `prefix` after `cursor`, as the JSON object
    /// `list()` resolves to: `{ keys, list_complete, cursor? }`.
    pub fn list(&self, prefix: &str, limit: usize, cursor: &str) -> Result<String, KvError> {
        let after = if cursor.is_empty() {
            String::new()
        } else {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(cursor)
                .map_err(|_| KvError::Cursor)?;
            String::from_utf8(bytes).map_err(|_| KvError::Cursor)?
        };
        let conn = self.conn();
        let now = now_seconds();
        conn.prepare_cached("DELETE FROM kv WHERE expiration IS NOT NULL AND expiration <= ?1")?
            .execute(params![now])?;
        let mut stmt = conn.prepare_cached(
            "SELECT key, metadata, expiration FROM kv
             WHERE key > ?1 AND substr(key, 1, length(?2)) = ?2
             ORDER BY key LIMIT ?3",
        )?;
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![after, prefix, fetch], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let complete = rows.len() <= limit;
        let mut keys = Vec::new();
        for (name, metadata, expiration) in rows.into_iter().take(limit) {
            let mut key = serde_json::Map::new();
            key.insert("name".into(), name.into());
            if let Some(expiration) = expiration {
                key.insert("expiration".into(), expiration.into());
            }
            if let Some(metadata) = metadata {
                let value = serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null);
                key.insert("metadata".into(), value);
            }
            keys.push(serde_json::Value::Object(key));
        }
        let mut out = serde_json::Map::new();
        let last = keys
            .last()
            .and_then(|k| k.get("name"))
            .and_then(|n| n.as_str())
            .map(str::to_string);
        out.insert("keys".into(), serde_json::Value::Array(keys));
        out.insert("list_complete".into(), complete.into());
        if let (false, Some(last)) = (complete, last) {
            let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last);
            out.insert("cursor".into(), cursor.into());
        }
        out.insert("cacheStatus".into(), serde_json::Value::Null);
        Ok(serde_json::Value::Object(out).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_list_delete_expire() {
        let dir = std::env::temp_dir().join(format!("flexilib-kv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let kv = KvStore::open(&dir, "ns/1").expect("open");
        kv.put("a", b"1", 0, Some("{\"m\":1}")).expect("put");
        kv.put("b1", b"2", 0, None).expect("put");
        kv.put("b2", b"3", 0, None).expect("put");
        kv.put("old", b"x", now_seconds() - 1, None).expect("put");
        assert_eq!(
            kv.get("a").expect("get"),
            Some((b"1".to_vec(), Some("{\"m\":1}".into())))
        );
        assert_eq!(kv.get("old").expect("get"), None, "expired");
        let page: serde_json::Value =
            serde_json::from_str(&kv.list("b", 1, "").expect("list")).expect("json");
        assert_eq!(page["keys"][0]["name"], "b1");
        assert_eq!(page["list_complete"], false);
        let cursor = page["cursor"].as_str().expect("cursor").to_string();
        let page: serde_json::Value =
            serde_json::from_str(&kv.list("b", 1, &cursor).expect("list")).expect("json");
        assert_eq!(page["keys"][0]["name"], "b2");
        assert_eq!(page["list_complete"], true);
        kv.delete("a").expect("delete");
        assert_eq!(kv.get("a").expect("get"), None);
        drop(kv);
        let again = KvStore::open(&dir, "ns/1").expect("reopen");
        assert!(again.get("b1").expect("get").is_some(), "persisted");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
