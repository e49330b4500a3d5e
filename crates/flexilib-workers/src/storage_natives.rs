//! The natives of Durable Objects' SQL storage (`ctx.storage.sql`, run
//! synchronously on the objects' JS thread) and alarms (stored off the
//! thread, then scheduled).

use std::cell::RefCell;
use std::rc::Rc;

use rquickjs::{Array, ArrayBuffer, Ctx, Exception, Function, Object, Value};

use crate::natives::{id, sql_value, type_error};
use crate::shared::{OpResult, Payload};
use crate::sql::ObjectSql;
use crate::state::State;

fn sql_of<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<State>>,
    binding: usize,
) -> rquickjs::Result<std::sync::Arc<ObjectSql>> {
    state
        .borrow()
        .shared
        .sql
        .get(binding)
        .cloned()
        .flatten()
        .ok_or_else(|| {
            Exception::throw_message(
                ctx,
                "SQL is not enabled for this Durable Object class. To enable it, change `new_classes` to `new_sqlite_classes` within the 'migrations' field in your wrangler.jsonc or wrangler.toml file. If using workerd directly,set `enableSql = true` in your workerd config for the class. Note that this change cannot be made after the class is already deployed to production.",
            )
        })
}

fn js_value<'js>(ctx: &Ctx<'js>, value: rusqlite::types::Value) -> rquickjs::Result<Value<'js>> {
    use rusqlite::types::Value as Sql;
    Ok(match value {
        Sql::Null => Value::new_null(ctx.clone()),
        Sql::Integer(n) => Value::new_number(ctx.clone(), n as f64),
        Sql::Real(x) => Value::new_number(ctx.clone(), x),
        Sql::Text(text) => rquickjs::String::from_str(ctx.clone(), &text)?.into_value(),
        Sql::Blob(bytes) => ArrayBuffer::new(ctx.clone(), bytes)?.into_value(),
    })
}

/// Adds the natives to `n`.
pub(crate) fn register<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<State>>,
    n: &Object<'js>,
) -> rquickjs::Result<()> {
    let s = state.clone();
    // [columns, rows (arrays), rowsRead, rowsWritten].
    let exec = move |ctx: Ctx<'js>,
                     binding: usize,
                     object: String,
                     query: String,
                     params: Array<'js>|
          -> rquickjs::Result<Array<'js>> {
        let sql = sql_of(&ctx, &s, binding)?;
        let mut bound = Vec::with_capacity(params.len());
        for value in params.iter::<Value<'js>>() {
            bound.push(sql_value(&ctx, &value?)?);
        }
        // The query may use what is left of the request's CPU budget.
        let deadline = {
            let state = s.borrow();
            let used = state
                .calls
                .get(&state.current)
                .map(|c| c.cpu)
                .unwrap_or_default();
            crate::cpu::thread_time() + state.shared.config.cpu_limit.saturating_sub(used)
        };
        let cursor = sql
            .exec(&object, &query, &bound, deadline)
            .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))?;
        let out = Array::new(ctx.clone())?;
        out.set(0, cursor.columns)?;
        let rows = Array::new(ctx.clone())?;
        for (index, row) in cursor.rows.into_iter().enumerate() {
            let values = Array::new(ctx.clone())?;
            for (column, value) in row.into_iter().enumerate() {
                values.set(column, js_value(&ctx, value)?)?;
            }
            rows.set(index, values)?;
        }
        out.set(1, rows)?;
        out.set(2, cursor.rows_read as f64)?;
        out.set(3, cursor.rows_written as f64)?;
        Ok(out)
    };
    n.set(
        "doSql",
        Function::new(ctx.clone(), exec)?.with_name("doSql")?,
    )?;
    let s = state.clone();
    let size = move |ctx: Ctx<'js>, binding: usize, object: String| -> rquickjs::Result<f64> {
        let sql = sql_of(&ctx, &s, binding)?;
        sql.size(&object)
            .map(|n| n as f64)
            .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))
    };
    n.set(
        "doSqlSize",
        Function::new(ctx.clone(), size)?.with_name("doSqlSize")?,
    )?;
    let s = state.clone();
    let delete_all = move |ctx: Ctx<'js>, binding: usize, object: String| -> rquickjs::Result<()> {
        let sql = sql_of(&ctx, &s, binding)?;
        sql.delete_all(&object)
            .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))
    };
    n.set(
        "doSqlDeleteAll",
        Function::new(ctx.clone(), delete_all)?.with_name("doSqlDeleteAll")?,
    )?;
    let s = state.clone();
    let savepoint = move |ctx: Ctx<'js>,
                          binding: usize,
                          object: String,
                          depth: u32,
                          what: String|
          -> rquickjs::Result<()> {
        let sql = sql_of(&ctx, &s, binding)?;
        sql.savepoint(&object, depth, &what)
            .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))
    };
    n.set(
        "doSqlSavepoint",
        Function::new(ctx.clone(), savepoint)?.with_name("doSqlSavepoint")?,
    )?;
    let s = state.clone();
    // `what`: get, set (at `at`, ms since the epoch) or delete.
    let alarm = move |ctx: Ctx<'js>,
                      op: f64,
                      binding: usize,
                      object: String,
                      what: String,
                      at: f64|
          -> rquickjs::Result<()> {
        let mut state = s.borrow_mut();
        let shared = state.shared.clone();
        let Some(store) = shared.objects.get(binding).cloned() else {
            return Err(type_error(&ctx, "no such Durable Object namespace"));
        };
        state.spawn_blocking(id(op), move || {
            let result = match what.as_str() {
                "get" => store.alarm(&object).map(|at| match at {
                    Some(at) => Payload::Text(at.to_string()),
                    None => Payload::Null,
                }),
                "set" if !shared.alarms.has_room(binding, &object) => {
                    return OpResult::Err(
                        "Error",
                        format!(
                            "too many Durable Object alarms pending (FlexiLib's limit: {})",
                            crate::alarms::MAX_SCHEDULED
                        ),
                    );
                }
                "set" => {
                    let at = at as i64;
                    store.set_alarm(&object, Some(at)).map(|()| {
                        crate::alarms::schedule(&shared, binding, object, Some(at));
                        Payload::Undefined
                    })
                }
                _ => store.set_alarm(&object, None).map(|()| {
                    crate::alarms::schedule(&shared, binding, object, None);
                    Payload::Undefined
                }),
            };
            result.map_or_else(|e| OpResult::Err("Error", e.to_string()), OpResult::Ok)
        });
        Ok(())
    };
    n.set(
        "doAlarm",
        Function::new(ctx.clone(), alarm)?.with_name("doAlarm")?,
    )?;
    Ok(())
}
