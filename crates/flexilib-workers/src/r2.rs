//! R2 buckets on the file system: `<state>/r2/<bucket>/` holds an index
//! (`index.sqlite`: each object's key, size, etag, upload time and
//! metadata) and the objects' bytes in `blobs/`, each file named by a
//! random id. A key never becomes a path, so no key (`../x`, `/etc/x`)
//! reaches outside the bucket's directory.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use md5::Digest as _;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::json;

/// Why an R2 operation failed. The message is R2's, which the runtime
/// prefixes with the operation (`get: The requested range is not
/// satisfiable (10039)`).
#[derive(Debug, thiserror::Error)]
pub enum R2Error {
    /// The index said no.
    #[error("We encountered an internal error. Please try again. (10001): {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A blob could not be read or written.
    #[error("We encountered an internal error. Please try again. (10001): {0}")]
    Io(#[from] std::io::Error),
    /// The bucket's directory cannot be created.
    #[error("cannot create the R2 bucket directory {path}: {source}", path = .path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A range outside the object.
    #[error("The requested range is not satisfiable (10039)")]
    Range,
    /// The `md5` given to `put` is not the value's.
    #[error("The MD5 checksum you specified did not match what we received.\nYou provided a MD5 checksum with value: {given}\nActual MD5 was: {actual} (10037)")]
    BadDigest {
        /// The one given.
        given: String,
        /// The value's.
        actual: String,
    },
    /// A `list` cursor this bucket did not hand out.
    #[error("The provided cursor is not valid. (10029)")]
    Cursor,
}

/// An object's stored description.
#[derive(Debug, Clone)]
pub struct ObjectMeta {
    key: String,
    version: String,
    size: u64,
    etag: String,
    /// Milliseconds since the epoch.
    uploaded: i64,
    http_metadata: String,
    custom_metadata: String,
}

impl ObjectMeta {
    /// As the runtime builds an `R2Object` from it (`range` for a body).
    fn to_json(&self, range: Option<(u64, u64)>) -> serde_json::Value {
        let parse = |text: &str| {
            serde_json::from_str::<serde_json::Value>(text).unwrap_or_else(|_| json!({}))
        };
        let mut object = json!({
            "key": self.key,
            "version": self.version,
            "size": self.size,
            "etag": self.etag,
            "uploaded": self.uploaded,
            "httpMetadata": parse(&self.http_metadata),
            "customMetadata": parse(&self.custom_metadata),
        });
        if let (Some((offset, length)), Some(map)) = (range, object.as_object_mut()) {
            map.insert(
                "range".into(),
                json!({ "offset": offset, "length": length }),
            );
        }
        object
    }
}

/// `onlyIf`, as the runtime hands it over: etag lists (`*`, `W/x` for a
/// weak etag, else a strong one) and times in milliseconds.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    etag_matches: Option<Vec<String>>,
    etag_does_not_match: Option<Vec<String>>,
    uploaded_before: Option<f64>,
    uploaded_after: Option<f64>,
    #[serde(default)]
    seconds_granularity: bool,
}

impl Conditions {
    /// Whether an object with `etag`, uploaded at `uploaded` (ms), or no
    /// object, meets them (RFC 9110's preconditions: an etag condition
    /// overrides the date condition beside it).
    fn hold(&self, object: Option<(&str, i64)>) -> bool {
        let Some((etag, uploaded)) = object else {
            return self.etag_matches.is_none() && self.uploaded_after.is_none();
        };
        let listed = |list: &[String], weak_ok: bool| {
            list.iter().any(|condition| {
                if condition == "*" {
                    return true;
                }
                match condition.strip_prefix("W/") {
                    Some(weak) => weak_ok && weak == etag,
                    None => condition == etag,
                }
            })
        };
        let truncate = |ms: i64| {
            if self.seconds_granularity {
                ms - ms.rem_euclid(1000)
            } else {
                ms
            }
        };
        let uploaded = truncate(uploaded);
        let at = |ms: f64| truncate(ms as i64);
        let if_match = match &self.etag_matches {
            Some(list) => listed(list, false),
            None => self
                .uploaded_before
                .is_none_or(|before| uploaded < at(before)),
        };
        let if_none_match = match &self.etag_does_not_match {
            Some(list) => !listed(list, true),
            None => self.uploaded_after.is_none_or(|after| at(after) < uploaded),
        };
        if_match && if_none_match
    }
}

/// `range` for `get`: `{ offset, length }`, `{ suffix }`, or a `Range`
/// header's value.
#[derive(Debug, Default, Deserialize)]
pub struct RangeSpec {
    offset: Option<f64>,
    length: Option<f64>,
    suffix: Option<f64>,
    header: Option<String>,
}

impl RangeSpec {
    /// The bytes `(offset, length)` of an object of `size` it selects;
    /// `None` for the whole object.
    fn resolve(&self, size: u64) -> Result<Option<(u64, u64)>, R2Error> {
        if let Some(header) = &self.header {
            return Ok(header_range(header, size));
        }
        let whole = |x: f64| -> Result<u64, R2Error> {
            if x.is_finite() && x >= 0.0 && x.fract() == 0.0 {
                Ok(x as u64)
            } else {
                Err(R2Error::Range)
            }
        };
        let (offset, length) = match self.suffix {
            Some(suffix) => {
                let suffix = whole(suffix)?;
                if suffix == 0 {
                    return Err(R2Error::Range);
                }
                let suffix = suffix.min(size);
                (size - suffix, Some(suffix))
            }
            None => (
                self.offset.map(whole).transpose()?.unwrap_or(0),
                self.length.map(whole).transpose()?,
            ),
        };
        if offset > size {
            return Err(R2Error::Range);
        }
        let length = match length {
            Some(0) => return Err(R2Error::Range),
            Some(length) => length.min(size - offset),
            None => size - offset,
        };
        Ok(Some((offset, length)))
    }
}

/// One range of a `Range: bytes=…` header; anything else (several
/// ranges, a malformed or unsatisfiable one) selects the whole object.
fn header_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = (start.trim(), end.trim());
    if start.is_empty() {
        let suffix: u64 = end.parse().ok()?;
        let suffix = suffix.min(size);
        return (suffix > 0).then(|| (size - suffix, suffix));
    }
    let start: u64 = start.parse().ok()?;
    let end: u64 = if end.is_empty() {
        size.checked_sub(1)?
    } else {
        end.parse::<u64>().ok()?.min(size.checked_sub(1)?)
    };
    (start <= end).then(|| (start, end - start + 1))
}

/// `put`'s options, as the runtime hands them over.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutOptions {
    /// `httpMetadata` (JSON object; `cacheExpiry` in milliseconds).
    #[serde(default)]
    http_metadata: serde_json::Map<String, serde_json::Value>,
    /// `customMetadata` (strings).
    #[serde(default)]
    custom_metadata: serde_json::Map<String, serde_json::Value>,
    /// `onlyIf`.
    only_if: Option<Conditions>,
    /// `md5`, in hex.
    md5: Option<String>,
}

/// `list`'s options, as the runtime hands them over.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOptions {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    delimiter: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    start_after: String,
    /// 1 to 1000 (checked by the runtime).
    limit: usize,
}

/// What `get` found.
pub struct Found {
    /// The object, as JSON for the runtime.
    pub meta: String,
    /// Its bytes (the range asked for); `None` when `onlyIf` did not hold.
    pub body: Option<Vec<u8>>,
}

/// One bucket.
pub struct R2Bucket {
    blobs: PathBuf,
    conn: Mutex<Connection>,
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    // The id only has to be unique in this bucket; a failure of the system's
    // source leaves the time to tell ids apart.
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..8].copy_from_slice(&now_millis().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const COLUMNS: &str = "key, version, size, etag, uploaded, http_metadata, custom_metadata, blob";

fn meta_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<(ObjectMeta, String)> {
    Ok((
        ObjectMeta {
            key: row.get(0)?,
            version: row.get(1)?,
            size: row.get::<_, i64>(2)?.max(0) as u64,
            etag: row.get(3)?,
            uploaded: row.get(4)?,
            http_metadata: row.get(5)?,
            custom_metadata: row.get(6)?,
        },
        row.get(7)?,
    ))
}

impl R2Bucket {
    /// Opens (creating if needed) bucket `name` under `state_dir`.
    pub fn open(state_dir: &Path, name: &str) -> Result<R2Bucket, R2Error> {
        let dir = state_dir.join("r2").join(crate::kv::safe_name(name));
        let blobs = dir.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(|source| R2Error::Directory {
            path: blobs.clone(),
            source,
        })?;
        let conn = Connection::open(dir.join("index.sqlite"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS objects (
                key TEXT PRIMARY KEY NOT NULL,
                version TEXT NOT NULL,
                size INTEGER NOT NULL,
                etag TEXT NOT NULL,
                uploaded INTEGER NOT NULL,
                http_metadata TEXT NOT NULL,
                custom_metadata TEXT NOT NULL,
                blob TEXT NOT NULL
            ) WITHOUT ROWID;",
        )?;
        Ok(R2Bucket {
            blobs,
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn row(conn: &Connection, key: &str) -> Result<Option<(ObjectMeta, String)>, R2Error> {
        Ok(conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM objects WHERE key = ?1"))?
            .query_row(params![key], meta_of)
            .optional()?)
    }

    /// The path of blob `id` (ids are made here: hex only).
    fn blob_path(&self, id: &str) -> PathBuf {
        self.blobs.join(id)
    }

    /// Stores `value` under `key`, as the JSON of the new object; `None`
    /// when `only_if` does not hold.
    pub fn put(
        &self,
        key: &str,
        value: &[u8],
        options: &PutOptions,
    ) -> Result<Option<String>, R2Error> {
        let etag: String = md5::Md5::digest(value)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Some(given) = &options.md5 {
            if !given.eq_ignore_ascii_case(&etag) {
                return Err(R2Error::BadDigest {
                    given: given.to_string(),
                    actual: etag,
                });
            }
        }
        let conn = self.conn();
        let old = Self::row(&conn, key)?;
        if let Some(conditions) = &options.only_if {
            let current = old.as_ref().map(|(m, _)| (m.etag.as_str(), m.uploaded));
            if !conditions.hold(current) {
                return Ok(None);
            }
        }
        let version = random_hex();
        let blob = random_hex();
        let path = self.blob_path(&blob);
        let partial = self.blob_path(&format!("{blob}.partial"));
        std::fs::write(&partial, value)?;
        std::fs::rename(&partial, &path)?;
        let meta = ObjectMeta {
            key: key.to_string(),
            version,
            size: value.len() as u64,
            etag,
            uploaded: now_millis(),
            http_metadata: serde_json::Value::Object(options.http_metadata.clone()).to_string(),
            custom_metadata: serde_json::Value::Object(options.custom_metadata.clone()).to_string(),
        };
        let stored = conn
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO objects ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))
            .and_then(|mut statement| {
                statement.execute(params![
                    meta.key,
                    meta.version,
                    i64::try_from(meta.size).unwrap_or(i64::MAX),
                    meta.etag,
                    meta.uploaded,
                    meta.http_metadata,
                    meta.custom_metadata,
                    blob
                ])
            });
        if let Err(error) = stored {
            let _ = std::fs::remove_file(&path);
            return Err(error.into());
        }
        if let Some((_, old_blob)) = old {
            let _ = std::fs::remove_file(self.blob_path(&old_blob));
        }
        Ok(Some(meta.to_json(None).to_string()))
    }

    /// The object under `key` (`None` if there is none) with the bytes of
    /// `range` when `body` is asked for and `only_if` holds.
    pub fn get(
        &self,
        key: &str,
        range: Option<&RangeSpec>,
        only_if: Option<&Conditions>,
        body: bool,
    ) -> Result<Option<Found>, R2Error> {
        // Another instance of the route (during a reload) may replace the
        // object between reading its row and opening its blob: read again.
        let mut attempts = 3;
        loop {
            match self.get_once(key, range, only_if, body) {
                Err(R2Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && attempts > 1 => {
                    attempts -= 1;
                }
                outcome => return outcome,
            }
        }
    }

    fn get_once(
        &self,
        key: &str,
        range: Option<&RangeSpec>,
        only_if: Option<&Conditions>,
        body: bool,
    ) -> Result<Option<Found>, R2Error> {
        let conn = self.conn();
        let Some((meta, blob)) = Self::row(&conn, key)? else {
            return Ok(None);
        };
        if !body {
            // `head` gives the whole object's range too, as wrangler dev's R2 does.
            return Ok(Some(Found {
                meta: meta.to_json(Some((0, meta.size))).to_string(),
                body: None,
            }));
        }
        if let Some(conditions) = only_if {
            if !conditions.hold(Some((&meta.etag, meta.uploaded))) {
                return Ok(Some(Found {
                    meta: meta.to_json(None).to_string(),
                    body: None,
                }));
            }
        }
        let (offset, length) = match range {
            Some(range) => range.resolve(meta.size)?.unwrap_or((0, meta.size)),
            None => (0, meta.size),
        };
        let mut file = std::fs::File::open(self.blob_path(&blob))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
        file.take(length).read_to_end(&mut bytes)?;
        Ok(Some(Found {
            meta: meta.to_json(Some((offset, length))).to_string(),
            body: Some(bytes),
        }))
    }

    /// Deletes `keys` (absent ones are fine).
    pub fn delete(&self, keys: &[String]) -> Result<(), R2Error> {
        let mut conn = self.conn();
        let transaction = conn.transaction()?;
        let mut blobs = Vec::new();
        for key in keys {
            if let Some((_, blob)) = Self::row(&transaction, key)? {
                transaction
                    .prepare_cached("DELETE FROM objects WHERE key = ?1")?
                    .execute(params![key])?;
                blobs.push(blob);
            }
        }
        transaction.commit()?;
        for blob in blobs {
            let _ = std::fs::remove_file(self.blob_path(&blob));
        }
        Ok(())
    }

    /// Lists objects with `prefix` in key order, after `cursor` or
    /// `start_after`, rolling keys with `delimiter` after the prefix into
    /// `delimitedPrefixes`; as the JSON `{ objects, truncated, cursor?,
    /// delimitedPrefixes }` (each object with its metadata).
    pub fn list(&self, options: &ListOptions) -> Result<String, R2Error> {
        let ListOptions {
            prefix,
            delimiter,
            cursor,
            start_after,
            limit,
        } = options;
        let (prefix, delimiter, limit) = (prefix.as_str(), delimiter.as_str(), *limit);
        // A cursor is the last key given (`k…`) or the last delimited
        // prefix (`p…`), whose keys are all skipped.
        let (mut after, mut skip_prefix) = (start_after.clone(), None::<String>);
        if !cursor.is_empty() {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(cursor)
                .map_err(|_| R2Error::Cursor)?;
            let text = String::from_utf8(bytes).map_err(|_| R2Error::Cursor)?;
            let kind = text.chars().next().ok_or(R2Error::Cursor)?;
            let value = text.get(kind.len_utf8()..).unwrap_or_default().to_string();
            match kind {
                'k' => after = after.max(value),
                'p' => {
                    after = after.max(value.clone());
                    skip_prefix = Some(value);
                }
                _ => return Err(R2Error::Cursor),
            }
        }
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM objects
             WHERE key > ?1 AND substr(key, 1, length(?2)) = ?2
             ORDER BY key"
        ))?;
        let mut rows = statement.query(params![after, prefix])?;
        let mut objects = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        let mut last: Option<String> = None;
        let mut truncated = false;
        while let Some(row) = rows.next()? {
            let (meta, _) = meta_of(row)?;
            if skip_prefix
                .as_deref()
                .is_some_and(|skip| meta.key.starts_with(skip))
            {
                continue;
            }
            // (SQLite's length() stops at a NUL: the prefix is checked here too.)
            let Some(rest) = meta.key.strip_prefix(prefix) else {
                continue;
            };
            let rolled = (!delimiter.is_empty())
                .then(|| rest.find(delimiter))
                .flatten()
                .and_then(|at| rest.get(..at + delimiter.len()))
                .map(|head| format!("{prefix}{head}"));
            if let Some(rolled) = &rolled {
                if prefixes.last() == Some(rolled) {
                    continue;
                }
            }
            if objects.len() + prefixes.len() == limit {
                truncated = true;
                break;
            }
            match rolled {
                Some(rolled) => {
                    last = Some(format!("p{rolled}"));
                    skip_prefix = Some(rolled.clone());
                    prefixes.push(rolled);
                }
                None => {
                    last = Some(format!("k{}", meta.key));
                    objects.push(meta.to_json(None));
                }
            }
        }
        let mut out = serde_json::Map::new();
        out.insert("objects".into(), serde_json::Value::Array(objects));
        out.insert("truncated".into(), truncated.into());
        if let (true, Some(last)) = (truncated, last) {
            let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last);
            out.insert("cursor".into(), cursor.into());
        }
        out.insert("delimitedPrefixes".into(), prefixes.into());
        Ok(serde_json::Value::Object(out).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let spec = |offset, length, suffix| RangeSpec {
            offset,
            length,
            suffix,
            header: None,
        };
        assert_eq!(
            spec(Some(2.0), Some(3.0), None).resolve(10).ok().flatten(),
            Some((2, 3))
        );
        assert_eq!(
            spec(Some(8.0), Some(5.0), None).resolve(10).ok().flatten(),
            Some((8, 2))
        );
        assert_eq!(
            spec(None, None, Some(4.0)).resolve(10).ok().flatten(),
            Some((6, 4))
        );
        assert!(spec(Some(11.0), None, None).resolve(10).is_err());
        assert!(spec(None, Some(0.0), None).resolve(10).is_err());
        assert_eq!(header_range("bytes=0-3", 10), Some((0, 4)));
        assert_eq!(header_range("bytes=-3", 10), Some((7, 3)));
        assert_eq!(header_range("bytes=4-", 10), Some((4, 6)));
        assert_eq!(header_range("bytes=0-1,3-4", 10), None);
    }

    #[test]
    fn conditions() {
        let strong = Conditions {
            etag_matches: Some(vec!["abc".into()]),
            ..Conditions::default()
        };
        assert!(strong.hold(Some(("abc", 0))));
        assert!(!strong.hold(Some(("abd", 0))));
        assert!(!strong.hold(None));
        let weak = Conditions {
            etag_matches: Some(vec!["W/abc".into()]),
            ..Conditions::default()
        };
        assert!(!weak.hold(Some(("abc", 0))), "If-Match compares strongly");
        let none = Conditions {
            etag_does_not_match: Some(vec!["W/abc".into()]),
            ..Conditions::default()
        };
        assert!(
            !none.hold(Some(("abc", 0))),
            "If-None-Match compares weakly"
        );
        assert!(none.hold(None));
        let after = Conditions {
            uploaded_after: Some(1_500.0),
            seconds_granularity: true,
            ..Conditions::default()
        };
        assert!(!after.hold(Some(("x", 1_900))), "same second");
        assert!(after.hold(Some(("x", 2_000))));
    }
}
