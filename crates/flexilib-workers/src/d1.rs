//! D1 databases on SQLite: one database file per database id under the
//! state directory, shared by every JS thread and instance of a route.
//! Statements run off the JS thread; each call (one statement, a `batch`,
//! an `exec`) is one transaction, rolled back when a statement fails, and
//! answers in D1's shapes: rows with their column names and the `meta`
//! object D1 gives (`served_by`, `duration`, `changes`, `last_row_id`,
//! `changed_db`, `size_after`, `rows_read`, `rows_written`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Batch, Connection, Statement, StatementStatus, TransactionBehavior};
use serde_json::json;

/// What `meta.served_by` says.
const SERVED_BY: &str = "flexilib.db";

/// Why a D1 operation failed. The message is the one D1 puts after
/// `D1_ERROR: ` (SQLite's message, then the primary result code's name).
#[derive(Debug, thiserror::Error)]
pub enum D1Error {
    /// SQLite said no.
    #[error("{}", sqlite_message(.0))]
    Sqlite(#[from] rusqlite::Error),
    /// The state directory cannot be created.
    #[error("cannot create the D1 state directory {path}: {source}", path = .path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The SQL holds no statement (empty, or only comments).
    #[error("No SQL statements detected.")]
    Empty,
    /// More or fewer values bound than the statement has parameters.
    #[error("Wrong number of parameter bindings for SQL query.")]
    Bindings,
}

/// The names of SQLite's primary result codes, as D1 appends them.
fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 29] = [
        "SQLITE_OK",
        "SQLITE_ERROR",
        "SQLITE_INTERNAL",
        "SQLITE_PERM",
        "SQLITE_ABORT",
        "SQLITE_BUSY",
        "SQLITE_LOCKED",
        "SQLITE_NOMEM",
        "SQLITE_READONLY",
        "SQLITE_INTERRUPT",
        "SQLITE_IOERR",
        "SQLITE_CORRUPT",
        "SQLITE_NOTFOUND",
        "SQLITE_FULL",
        "SQLITE_CANTOPEN",
        "SQLITE_PROTOCOL",
        "SQLITE_EMPTY",
        "SQLITE_SCHEMA",
        "SQLITE_TOOBIG",
        "SQLITE_CONSTRAINT",
        "SQLITE_MISMATCH",
        "SQLITE_MISUSE",
        "SQLITE_NOLFS",
        "SQLITE_AUTH",
        "SQLITE_FORMAT",
        "SQLITE_RANGE",
        "SQLITE_NOTADB",
        "SQLITE_NOTICE",
        "SQLITE_WARNING",
    ];
    usize::try_from(code & 0xff)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("SQLITE_ERROR")
}

/// `no such table: t: SQLITE_ERROR`, as D1 words a SQLite error.
fn sqlite_message(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let text = message.clone().unwrap_or_else(|| failure.to_string());
            format!("{text}: {}", code_name(failure.extended_code))
        }
        // A syntax error, with where it is, as workerd's SQLite words it.
        rusqlite::Error::SqlInputError {
            error, msg, offset, ..
        } => {
            format!(
                "{msg} at offset {offset}: {}",
                code_name(error.extended_code)
            )
        }
        rusqlite::Error::InvalidParameterCount(..) | rusqlite::Error::InvalidParameterName(_) => {
            "Wrong number of parameter bindings for SQL query.".into()
        }
        other => format!("{other}: SQLITE_ERROR"),
    }
}

/// A statement and the values bound to it.
#[derive(Debug, Clone)]
pub struct Query {
    /// The SQL (several statements: all run, the last one's rows answer
    /// and take the values, as D1 runs them).
    pub sql: String,
    /// `?` values in order.
    pub params: Vec<Value>,
}

/// One database's store.
pub struct D1Database {
    conn: Mutex<Connection>,
}

/// A cell as D1 gives it to JavaScript: numbers, strings, null, and a
/// BLOB as an array of byte values.
fn cell(value: ValueRef<'_>) -> serde_json::Value {
    match value {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(n) => n.into(),
        ValueRef::Real(x) => {
            serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into)
        }
        ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned().into(),
        ValueRef::Blob(bytes) => bytes.iter().map(|&b| serde_json::Value::from(b)).collect(),
    }
}

/// Runs `statement` to its end, discarding rows.
fn drain(statement: &mut Statement<'_>) -> Result<(), D1Error> {
    let mut rows = statement.raw_query();
    while rows.next()?.is_some() {}
    Ok(())
}

/// The database file's size in bytes.
fn size(conn: &Connection) -> Result<i64, D1Error> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    Ok(pages.saturating_mul(page_size))
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Runs one query, as `{ columns, rows, meta }`.
fn run_query(conn: &Connection, query: &Query) -> Result<serde_json::Value, D1Error> {
    let started = Instant::now();
    let size_before = size(conn)?;
    let changes_before = conn.total_changes();
    let row_id_before = conn.last_insert_rowid();
    let mut batch = Batch::new(conn, &query.sql);
    let mut statement = batch.next()?.ok_or(D1Error::Empty)?;
    // Every statement but the last runs without values.
    while let Some(next) = batch.next()? {
        if statement.parameter_count() > 0 {
            return Err(D1Error::Bindings);
        }
        drain(&mut statement)?;
        statement = next;
    }
    if statement.parameter_count() != query.params.len() {
        return Err(D1Error::Bindings);
    }
    for (index, value) in query.params.iter().enumerate() {
        statement.raw_bind_parameter(index + 1, value)?;
    }
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    {
        let mut cursor = statement.raw_query();
        while let Some(row) = cursor.next()? {
            let mut cells = Vec::with_capacity(columns.len());
            for index in 0..columns.len() {
                cells.push(cell(row.get_ref(index)?));
            }
            rows.push(serde_json::Value::Array(cells));
        }
    }
    // SQLite does not count rows read as D1 does; the rows a full scan
    // stepped through, or those returned, whichever is more, come close.
    let scanned = u64::try_from(statement.get_status(StatementStatus::FullscanStep)).unwrap_or(0);
    drop(statement);
    let changes = conn.total_changes().saturating_sub(changes_before);
    let row_id = conn.last_insert_rowid();
    let size_after = size(conn)?;
    let rows_read = scanned.max(rows.len() as u64);
    Ok(json!({
        "columns": columns,
        "rows": rows,
        "meta": {
            "served_by": SERVED_BY,
            "duration": millis(started),
            "changes": changes,
            "last_row_id": row_id,
            "changed_db": changes != 0 || row_id != row_id_before || size_after != size_before,
            "size_after": size_after,
            "rows_read": rows_read,
            "rows_written": changes,
        },
    }))
}

/// Whether `sql` holds a statement (not only blanks and comments).
fn has_statement(conn: &Connection, sql: &str) -> Result<bool, D1Error> {
    Ok(Batch::new(conn, sql).next()?.is_some())
}

impl D1Database {
    /// Opens (creating if needed) database `id` under `state_dir`.
    pub fn open(state_dir: &Path, id: &str) -> Result<D1Database, D1Error> {
        let dir = state_dir.join("d1");
        std::fs::create_dir_all(&dir).map_err(|source| D1Error::Directory {
            path: dir.clone(),
            source,
        })?;
        let conn = Connection::open(dir.join(format!("{}.sqlite", crate::kv::safe_name(id))))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // D1 enforces foreign keys.
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A worker's SQL reaches its database and nothing else: no ATTACH
        // (which opens or creates any file the server can), and so no
        // VACUUM INTO either, which attaches its target.
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        Ok(D1Database {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `queries` in one transaction (rolled back if one fails), as
    /// the JSON array of their `{ columns, rows, meta }`.
    pub fn query(&self, queries: &[Query]) -> Result<String, D1Error> {
        if queries.is_empty() {
            return Err(D1Error::Empty);
        }
        let mut conn = self.conn();
        let transaction = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let results = queries
            .iter()
            .map(|query| run_query(&transaction, query))
            .collect::<Result<Vec<_>, _>>()?;
        transaction.commit()?;
        Ok(serde_json::Value::Array(results).to_string())
    }

    /// Runs `lines` (each one or more statements, without values) in one
    /// transaction, as `{ count, duration }`, or `{ error, line }` for the
    /// first line that fails (index from 0; nothing is kept).
    pub fn exec(&self, lines: &[String]) -> Result<String, D1Error> {
        let started = Instant::now();
        let mut conn = self.conn();
        let transaction = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut count = 0usize;
        for (index, line) in lines.iter().enumerate() {
            let outcome = has_statement(&transaction, line).and_then(|present| {
                if present {
                    count += 1;
                    transaction.execute_batch(line).map_err(D1Error::from)
                } else {
                    Ok(())
                }
            });
            if let Err(error) = outcome {
                return Ok(json!({ "error": error.to_string(), "line": index }).to_string());
            }
        }
        if count == 0 {
            return Err(D1Error::Empty);
        }
        transaction.commit()?;
        Ok(json!({ "count": count, "duration": millis(started) }).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(sql: &str, params: Vec<Value>) -> Query {
        Query {
            sql: sql.into(),
            params,
        }
    }

    #[test]
    fn statements_batches_and_errors() {
        let dir = std::env::temp_dir().join(format!("flexilib-d1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = D1Database::open(&dir, "db/1").expect("open");
        let out = db
            .exec(&[
                "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, data BLOB);".into(),
                String::new(),
                "-- a comment".into(),
                "INSERT INTO t (name) VALUES ('a'); INSERT INTO t (name) VALUES ('b');".into(),
            ])
            .expect("exec");
        let out: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(out["count"], 2);

        let insert = query(
            "INSERT INTO t (name, data) VALUES (?, ?)",
            vec![Value::Text("c".into()), Value::Blob(vec![0, 255])],
        );
        let out: serde_json::Value =
            serde_json::from_str(&db.query(&[insert]).expect("insert")).expect("json");
        assert_eq!(out[0]["meta"]["changes"], 1);
        assert_eq!(out[0]["meta"]["last_row_id"], 3);
        assert_eq!(out[0]["meta"]["changed_db"], true);

        let select = query(
            "SELECT name, data FROM t WHERE id = ?",
            vec![Value::Integer(3)],
        );
        let out: serde_json::Value =
            serde_json::from_str(&db.query(&[select]).expect("select")).expect("json");
        assert_eq!(out[0]["columns"], json!(["name", "data"]));
        assert_eq!(out[0]["rows"], json!([["c", [0, 255]]]));

        // A failing statement in a batch undoes the ones before it.
        let good = query("INSERT INTO t (name) VALUES ('d')", vec![]);
        let bad = query("INSERT INTO t (name) VALUES ('a')", vec![]);
        let error = db.query(&[good, bad]).expect_err("unique");
        assert_eq!(
            error.to_string(),
            "UNIQUE constraint failed: t.name: SQLITE_CONSTRAINT"
        );
        let count = query("SELECT count(*) AS n FROM t", vec![]);
        let out: serde_json::Value =
            serde_json::from_str(&db.query(&[count]).expect("count")).expect("json");
        assert_eq!(out[0]["rows"], json!([[3]]));

        let missing = query("SELECT * FROM nope", vec![]);
        assert_eq!(
            db.query(&[missing]).expect_err("missing").to_string(),
            "no such table: nope: SQLITE_ERROR"
        );
        let unbound = query("SELECT ?", vec![]);
        assert!(matches!(db.query(&[unbound]), Err(D1Error::Bindings)));
        assert!(matches!(
            db.query(&[query("  -- nothing", vec![])]),
            Err(D1Error::Empty)
        ));

        let out: serde_json::Value = serde_json::from_str(
            &db.exec(&["INSERT INTO t (name) VALUES ('e')".into(), "SELEC 1".into()])
                .expect("exec"),
        )
        .expect("json");
        assert_eq!(out["line"], 1);
        assert!(out["error"]
            .as_str()
            .is_some_and(|e| e.contains("syntax error")));
        drop(db);
        let again = D1Database::open(&dir, "db/1").expect("reopen");
        let out: serde_json::Value = serde_json::from_str(
            &again
                .query(&[query("SELECT name FROM t ORDER BY id", vec![])])
                .expect("select"),
        )
        .expect("json");
        assert_eq!(
            out[0]["rows"],
            json!([["a"], ["b"], ["c"]]),
            "persisted, exec rolled back"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
