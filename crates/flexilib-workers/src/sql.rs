//! `ctx.storage.sql` of SQLite-backed Durable Object classes
//! (`new_sqlite_classes` in `[[migrations]]`): one SQLite file per object,
//! `do/CLASS/ID.sqlite` under the state directory, queried synchronously
//! on the objects' JS thread as workerd does.
//!
//! A worker's SQL reaches its object's database and nothing else: no
//! ATTACH (attached-database limit 0, as D1), strings and rows up to 2 MB
//! and a database up to [`MAX_DATABASE_BYTES`] (Cloudflare's limits, the
//! size one bounded lower), results gathered up to [`MAX_RESULT_BYTES`],
//! and a query stops when the request's CPU budget is spent (SQLite's
//! progress handler reads the thread's CPU clock), so a runaway recursive
//! query cannot wedge the thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::fallible_iterator::FallibleIterator as _;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::Value;
use rusqlite::Connection;

/// Open databases kept per class before they are closed (all at once).
const OPEN_LIMIT: usize = 64;
/// The largest database of one object: 1 GiB (Cloudflare allows 10 GB;
/// this server's disk is shared).
pub const MAX_DATABASE_BYTES: u64 = 1 << 30;
/// The largest result one `exec` gathers.
pub const MAX_RESULT_BYTES: usize = 64 << 20;
/// Cloudflare's largest string, BLOB or row: 2 MB.
const MAX_LENGTH: i32 = 2_000_000;
/// The most objects of one class with a database (files in its directory):
/// a script creating objects without end fills no disk.
pub const MAX_DATABASES: usize = 10_000;
/// SQLite VM steps between two looks at the CPU clock.
const PROGRESS_STEPS: i32 = 10_000;

/// Why a query failed, worded as workerd words it.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// SQLite said no (its message and result code).
    #[error("{0}")]
    Sqlite(String),
    /// Nothing but whitespace and comments.
    #[error("SQL code did not contain a statement.")]
    Empty,
    /// Parameters on a statement before the last.
    #[error("When executing multiple SQL statements in a single call, only the last statement can have parameters.")]
    ParamsNotLast,
    /// Not as many bindings as parameters.
    #[error("Wrong number of parameter bindings for SQL query.")]
    Bindings,
    /// BEGIN, COMMIT, SAVEPOINT… in SQL.
    #[error("To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.")]
    Transaction,
    /// The class has [`MAX_DATABASES`] databases already.
    #[error("This Durable Object class has {0} SQLite databases already (FlexiLib's limit); delete objects' data with deleteAll()")]
    TooMany(usize),
    /// The result is over [`MAX_RESULT_BYTES`].
    #[error("The SQL query's result is larger than {MAX_RESULT_BYTES} bytes (FlexiLib's limit)")]
    TooLarge,
    /// The state directory cannot be created.
    #[error("cannot create the Durable Object SQL directory {path}: {source}", path = .path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<rusqlite::Error> for SqlError {
    fn from(error: rusqlite::Error) -> Self {
        SqlError::Sqlite(match &error {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let text = message.clone().unwrap_or_else(|| failure.to_string());
                format!("{text}: {}", code_name(failure.code))
            }
            rusqlite::Error::SqlInputError { msg, offset, .. } => {
                format!("{msg} at offset {offset}: SQLITE_ERROR")
            }
            other => other.to_string(),
        })
    }
}

fn code_name(code: rusqlite::ErrorCode) -> &'static str {
    use rusqlite::ErrorCode as C;
    match code {
        C::ConstraintViolation => "SQLITE_CONSTRAINT",
        C::AuthorizationForStatementDenied => "SQLITE_AUTH",
        C::OperationInterrupted => "SQLITE_INTERRUPT",
        C::DiskFull => "SQLITE_FULL",
        C::TooBig => "SQLITE_TOOBIG",
        C::TypeMismatch => "SQLITE_MISMATCH",
        C::ParameterOutOfRange => "SQLITE_RANGE",
        C::DatabaseBusy => "SQLITE_BUSY",
        C::ReadOnly => "SQLITE_READONLY",
        _ => "SQLITE_ERROR",
    }
}

/// What `exec` answers: the last statement's columns and rows.
#[derive(Debug, Default)]
pub struct Cursor {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as many values as columns.
    pub rows: Vec<Vec<Value>>,
    /// Rows the last statement returned (FlexiLib's count; Cloudflare
    /// counts rows scanned).
    pub rows_read: u64,
    /// Rows the last statement changed.
    pub rows_written: u64,
}

/// One class's objects' SQL databases.
pub struct ObjectSql {
    dir: PathBuf,
    open: Mutex<HashMap<String, Arc<Mutex<Connection>>>>,
    /// Databases in `dir`, counted when first needed.
    count: Mutex<Option<usize>>,
    /// At most this many ([`MAX_DATABASES`]).
    max: usize,
}

impl ObjectSql {
    /// The databases of `class` under `state_dir` (opened when first used).
    pub fn new(state_dir: &Path, class: &str) -> ObjectSql {
        ObjectSql {
            dir: state_dir.join("do").join(crate::kv::safe_name(class)),
            open: Mutex::default(),
            count: Mutex::default(),
            max: MAX_DATABASES,
        }
    }

    /// Object `object`'s database (its id: 64 hex digits), opened once.
    fn connection(&self, object: &str) -> Result<Arc<Mutex<Connection>>, SqlError> {
        if !crate::objects::is_id(object) {
            return Err(SqlError::Sqlite("not a Durable Object id".into()));
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(conn) = open.get(object) {
            return Ok(conn.clone());
        }
        std::fs::create_dir_all(&self.dir).map_err(|source| SqlError::Directory {
            path: self.dir.clone(),
            source,
        })?;
        let path = self.dir.join(format!("{object}.sqlite"));
        let created = !path.exists();
        if created {
            self.counted(|count| {
                if *count >= self.max {
                    return Err(SqlError::TooMany(self.max));
                }
                *count += 1;
                Ok(())
            })?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let page_size: u64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
        conn.pragma_update(
            None,
            "max_page_count",
            MAX_DATABASE_BYTES / page_size.max(512),
        )?;
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_LENGTH)?;
        if open.len() >= OPEN_LIMIT {
            open.clear();
        }
        let conn = Arc::new(Mutex::new(conn));
        open.insert(object.to_string(), conn.clone());
        Ok(conn)
    }

    /// Runs `f` on the number of databases (counted in the directory the
    /// first time).
    fn counted(&self, f: impl FnOnce(&mut usize) -> Result<(), SqlError>) -> Result<(), SqlError> {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        let count = count.get_or_insert_with(|| {
            std::fs::read_dir(&self.dir).map_or(0, |entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".sqlite"))
                    .count()
            })
        });
        f(count)
    }

    /// Runs `sql` (one statement or several; `params` bind the last) on
    /// `object`'s database, all or nothing, stopping once the thread's CPU
    /// clock passes `deadline`.
    pub fn exec(
        &self,
        object: &str,
        sql: &str,
        params: &[Value],
        deadline: Duration,
    ) -> Result<Cursor, SqlError> {
        let conn = self.connection(object)?;
        let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.progress_handler(
            PROGRESS_STEPS,
            Some(move || crate::cpu::thread_time() >= deadline),
        );
        conn.execute_batch("SAVEPOINT flexilib_exec")?;
        conn.authorizer(Some(authorize));
        let result = run(&conn, sql, params);
        conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        let end = if result.is_ok() {
            "RELEASE flexilib_exec"
        } else {
            "ROLLBACK TO flexilib_exec; RELEASE flexilib_exec"
        };
        conn.progress_handler(0, None::<fn() -> bool>);
        conn.execute_batch(end)?;
        result
    }

    /// `deleteAll()`: `object`'s database is removed (its tables with it,
    /// as on Cloudflare); the next query starts an empty one.
    pub fn delete_all(&self, object: &str) -> Result<(), SqlError> {
        if !crate::objects::is_id(object) {
            return Err(SqlError::Sqlite("not a Durable Object id".into()));
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        // Closed first (the last holder: queries run on this thread only).
        open.remove(object);
        if self.dir.join(format!("{object}.sqlite")).exists() {
            self.counted(|count| {
                *count = count.saturating_sub(1);
                Ok(())
            })?;
        }
        for suffix in ["sqlite", "sqlite-wal", "sqlite-shm"] {
            match std::fs::remove_file(self.dir.join(format!("{object}.{suffix}"))) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(SqlError::Sqlite(format!("cannot delete the database: {e}"))),
            }
        }
        Ok(())
    }

    /// The size of `object`'s database, bytes.
    pub fn size(&self, object: &str) -> Result<u64, SqlError> {
        let conn = self.connection(object)?;
        let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
        let pages: u64 = conn.pragma_query_value(None, "page_count", |row| row.get(0))?;
        let size: u64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
        Ok(pages * size)
    }

    /// `transactionSync`: opens (`begin`), keeps (`commit`) or undoes
    /// (`rollback`) savepoint number `depth` of `object`'s database.
    pub fn savepoint(&self, object: &str, depth: u32, what: &str) -> Result<(), SqlError> {
        let conn = self.connection(object)?;
        let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
        let name = format!("flexilib_tx{depth}");
        let sql = match what {
            "begin" => format!("SAVEPOINT {name}"),
            "commit" => format!("RELEASE {name}"),
            _ => format!("ROLLBACK TO {name}; RELEASE {name}"),
        };
        conn.execute_batch(&sql)?;
        Ok(())
    }
}

/// Pragmas a worker may run: reading the schema and checking the
/// database; nothing that changes how SQLite keeps it (`max_page_count`,
/// `journal_mode`, `writable_schema`…).
const PRAGMAS: [&str; 11] = [
    "table_list",
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "quick_check",
    "integrity_check",
    "data_version",
];

/// What a worker's SQL may do: no ATTACH or DETACH (the limit of 0 stops
/// them too), only the pragmas above.
fn authorize(context: AuthContext<'_>) -> Authorization {
    match context.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Pragma { pragma_name, .. }
            if !PRAGMAS.contains(&pragma_name.to_ascii_lowercase().as_str()) =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

/// Whether `sql` (one statement's text) is a transaction statement.
fn is_transaction(sql: &str) -> bool {
    let word: String = sql
        .trim_start()
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(
        word.as_str(),
        "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE"
    )
}

fn run(conn: &Connection, sql: &str, params: &[Value]) -> Result<Cursor, SqlError> {
    let mut batch = rusqlite::Batch::new(conn, sql);
    let mut cursor = None;
    let mut had_params = false;
    while let Some(mut statement) = batch.next()? {
        if had_params {
            return Err(SqlError::ParamsNotLast);
        }
        if statement
            .expanded_sql()
            .is_some_and(|text| is_transaction(text.as_str()))
        {
            return Err(SqlError::Transaction);
        }
        let count = statement.parameter_count();
        if count > 0 {
            had_params = true;
            if count != params.len() {
                // Another statement after this one (even one that does not
                // prepare yet) makes it workerd's other complaint.
                return Err(match batch.next() {
                    Ok(None) => SqlError::Bindings,
                    _ => SqlError::ParamsNotLast,
                });
            }
            for (index, value) in params.iter().enumerate() {
                statement.raw_bind_parameter(index + 1, value)?;
            }
        }
        cursor = Some(step(conn, &mut statement)?);
    }
    if !had_params && !params.is_empty() {
        return Err(if cursor.is_some() {
            SqlError::Bindings
        } else {
            SqlError::Empty
        });
    }
    cursor.ok_or(SqlError::Empty)
}

/// Runs one bound statement to its end, gathering its rows.
fn step(conn: &Connection, statement: &mut rusqlite::Statement<'_>) -> Result<Cursor, SqlError> {
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let readonly = statement.readonly();
    let width = columns.len();
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    let mut raw = statement.raw_query();
    while let Some(row) = raw.next()? {
        let mut values = Vec::with_capacity(width);
        for index in 0..width {
            let value: Value = row.get(index)?;
            bytes += match &value {
                Value::Text(text) => text.len(),
                Value::Blob(blob) => blob.len(),
                _ => 8,
            };
            values.push(value);
        }
        if bytes > MAX_RESULT_BYTES {
            return Err(SqlError::TooLarge);
        }
        rows.push(values);
    }
    let rows_read = rows.len() as u64;
    let rows_written = if readonly { 0 } else { conn.changes() };
    Ok(Cursor {
        columns,
        rows,
        rows_read,
        rows_written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Duration {
        crate::cpu::thread_time() + Duration::from_secs(60)
    }

    #[test]
    fn a_class_holds_a_bounded_number_of_databases() {
        let dir = std::env::temp_dir().join(format!("flexilib-sql-max-{}", std::process::id()));
        let sql = ObjectSql {
            max: 2,
            ..ObjectSql::new(&dir, "Many")
        };
        let id = |n: &str| crate::objects::id_from_name("Many", n);
        for name in ["a", "b"] {
            sql.exec(&id(name), "SELECT 1", &[], far()).expect("room");
        }
        assert!(matches!(
            sql.exec(&id("c"), "SELECT 1", &[], far()),
            Err(SqlError::TooMany(2))
        ));
        // An existing one still opens; deleting one makes room.
        sql.exec(&id("a"), "SELECT 1", &[], far())
            .expect("existing");
        sql.delete_all(&id("b")).expect("delete");
        sql.exec(&id("c"), "SELECT 1", &[], far())
            .expect("room again");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn statements_run_all_or_nothing_and_bind_the_last() {
        let dir = std::env::temp_dir().join(format!("flexilib-sql-{}", std::process::id()));
        let sql = ObjectSql::new(&dir, "Db");
        let id = crate::objects::id_from_name("Db", "a");
        sql.exec(&id, "CREATE TABLE t (a INTEGER, b TEXT)", &[], far())
            .expect("create");
        let cursor = sql
            .exec(
                &id,
                "INSERT INTO t VALUES (1, 'x'); SELECT a, b FROM t WHERE a = ?",
                &[Value::Integer(1)],
                far(),
            )
            .expect("insert and select");
        assert_eq!(cursor.columns, ["a", "b"]);
        assert_eq!(
            cursor.rows,
            [vec![Value::Integer(1), Value::Text("x".into())]]
        );
        // A failing second statement undoes the first.
        let failed = sql.exec(&id, "INSERT INTO t VALUES (2, 'y'); SELEKT 1", &[], far());
        assert!(matches!(failed, Err(SqlError::Sqlite(ref m)) if m.contains("syntax error")));
        let count = sql
            .exec(&id, "SELECT count(*) FROM t", &[], far())
            .expect("count");
        assert_eq!(count.rows, [vec![Value::Integer(1)]]);
        assert!(matches!(
            sql.exec(&id, "SELECT ?; SELECT 1", &[Value::Integer(1)], far()),
            Err(SqlError::ParamsNotLast)
        ));
        assert!(matches!(
            sql.exec(&id, "BEGIN", &[], far()),
            Err(SqlError::Transaction)
        ));
        assert!(matches!(
            sql.exec(&id, "ATTACH DATABASE '/tmp/x.sqlite' AS x", &[], far()),
            Err(SqlError::Sqlite(_))
        ));
        for refused in [
            "PRAGMA max_page_count = 100000000",
            "PRAGMA writable_schema = ON",
            "PRAGMA journal_mode = OFF",
        ] {
            assert!(
                matches!(sql.exec(&id, refused, &[], far()), Err(SqlError::Sqlite(ref m)) if m == "not authorized: SQLITE_AUTH"),
                "{refused}"
            );
        }
        assert!(sql.exec(&id, "PRAGMA table_info(t)", &[], far()).is_ok());
        assert!(matches!(
            sql.exec(&id, "  -- nothing\n", &[], far()),
            Err(SqlError::Empty)
        ));
        // A runaway query stops at the deadline.
        let spin = sql.exec(
            &id,
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            &[],
            crate::cpu::thread_time() + Duration::from_millis(50),
        );
        assert!(
            matches!(spin, Err(SqlError::Sqlite(ref m)) if m.contains("SQLITE_INTERRUPT")),
            "{spin:?}"
        );
        assert!(sql.size(&id).expect("size") > 0);
        sql.delete_all(&id).expect("delete all");
        assert!(matches!(
            sql.exec(&id, "SELECT count(*) FROM t", &[], far()),
            Err(SqlError::Sqlite(ref m)) if m.contains("no such table")
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
