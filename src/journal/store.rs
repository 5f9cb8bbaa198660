//! Where the journal lives: SQLite in `state_dir` (one host), or PostgreSQL (a fleet). The
//! journal's queries are written once, in the SQL both understand (`$1` parameters,
//! `RETURNING`, `ON CONFLICT`, `IS NOT DISTINCT FROM`); each store runs them in a
//! transaction and turns their rows into [`Value`]s.

use super::JournalError;
use rusqlite::Connection;

/// A parameter or a column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v.min(i64::MAX as u64) as i64)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(v.min(i64::MAX as usize) as i64)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(v as i64)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}

impl From<&crate::model::Text> for Value {
    fn from(v: &crate::model::Text) -> Value {
        Value::Text(v.to_string())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// Parameters of a statement, each converted to a [`Value`].
#[macro_export]
macro_rules! sql_params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::journal::store::Value::from($value)),*][..]
    };
}

/// One row of a query's answer.
#[derive(Clone, Debug)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&Value::Null)
    }

    pub fn opt_int(&self, i: usize) -> Option<i64> {
        match self.at(i) {
            Value::Int(v) => Some(*v),
            Value::Text(t) => t.parse().ok(),
            Value::Null => None,
        }
    }

    pub fn int(&self, i: usize) -> i64 {
        self.opt_int(i).unwrap_or(0)
    }

    pub fn flag(&self, i: usize) -> bool {
        self.int(i) != 0
    }

    pub fn opt_text(&self, i: usize) -> Option<String> {
        match self.at(i) {
            Value::Text(t) => Some(t.clone()),
            Value::Int(v) => Some(v.to_string()),
            Value::Null => None,
        }
    }

    pub fn text(&self, i: usize) -> String {
        self.opt_text(i).unwrap_or_default()
    }
}

/// A transaction of either store. Errors are the database's words; the journal adds which
/// journal and what it was doing.
pub trait Tx {
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, String>;
    /// Runs a query; every row.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, String>;

    /// Runs one statement once per parameter list, where their counts are not needed.
    /// PostgreSQL sends them with what follows — the next statement, or the commit — in one
    /// round trip, so their error may be the transaction's next one.
    fn execute_each(&mut self, sql: &str, each: &[Vec<Value>]) -> Result<(), String> {
        for params in each {
            self.execute(sql, params)?;
        }
        Ok(())
    }

    /// Runs one statement once per parameter list, in order; the rows each changed.
    /// PostgreSQL sends them all in one round trip.
    fn execute_all(&mut self, sql: &str, each: &[Vec<Value>]) -> Result<Vec<u64>, String> {
        each.iter()
            .map(|params| self.execute(sql, params))
            .collect()
    }

    /// Inserts `rows` into `target`, `table (columns)`, with a value per column in each row;
    /// nothing is read back. SQLite runs one prepared statement for each row (its values
    /// bound where they are); PostgreSQL streams them into one `COPY` (a server cost of about
    /// half a statement's for each row, BENCHMARKS.md).
    fn insert_rows(&mut self, target: &str, rows: &[Vec<Value>]) -> Result<(), String>;

    /// The first row, if any.
    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, String> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// SQLite's statements are the shared ones with `$N` written `?N`.
fn sqlite_sql(sql: &str) -> std::borrow::Cow<'_, str> {
    if sql.contains('$') {
        std::borrow::Cow::Owned(sql.replace('$', "?"))
    } else {
        std::borrow::Cow::Borrowed(sql)
    }
}

/// Bound where it is: a text parameter is not copied.
impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
        }))
    }
}

fn from_sqlite(v: rusqlite::types::ValueRef) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Int(f as i64),
        ValueRef::Text(t) | ValueRef::Blob(t) => Value::Text(String::from_utf8_lossy(t).into()),
    }
}

/// A SQLite connection or transaction as a [`Tx`]; statements are prepared once and cached.
pub struct SqliteTx<'c>(pub &'c Connection);

impl Tx for SqliteTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, String> {
        let mut statement = self
            .0
            .prepare_cached(&sqlite_sql(sql))
            .map_err(|e| e.to_string())?;
        statement
            .execute(rusqlite::params_from_iter(params))
            .map(|n| n as u64)
            .map_err(|e| e.to_string())
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, String> {
        let mut statement = self
            .0
            .prepare_cached(&sqlite_sql(sql))
            .map_err(|e| e.to_string())?;
        let columns = statement.column_count();
        let mut rows = statement
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(from_sqlite(row.get_ref(i).map_err(|e| e.to_string())?));
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn insert_rows(&mut self, target: &str, rows: &[Vec<Value>]) -> Result<(), String> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let columns: Vec<String> = (1..=first.len()).map(|i| format!("?{i}")).collect();
        let sql = format!("INSERT INTO {target} VALUES ({})", columns.join(", "));
        let mut statement = self.0.prepare_cached(&sql).map_err(|e| e.to_string())?;
        for row in rows {
            statement
                .execute(rusqlite::params_from_iter(row))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Runs `work` in one SQLite transaction: committed when it returns `Ok`, rolled back
/// otherwise.
pub fn sqlite_transaction<T>(
    conn: &mut Connection,
    work: impl FnOnce(&mut dyn Tx) -> Result<T, String>,
) -> Result<T, String> {
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    let value = work(&mut SqliteTx(&tx))?;
    tx.commit().map_err(|e| e.to_string())?;
    Ok(value)
}

/// A journal error naming the journal and what it was doing.
pub fn error(journal: &str, what: &str) -> impl Fn(String) -> JournalError {
    let journal = journal.to_string();
    let what = what.to_string();
    move |e| JournalError(format!("journal {journal}: cannot {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_statements_run_on_sqlite() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
            .unwrap();
        let ids = sqlite_transaction(&mut conn, |tx| {
            let mut ids = Vec::new();
            for (name, n) in [("a", Some(1)), ("b", None)] {
                let row = tx
                    .query_one(
                        "INSERT INTO t (name, n) VALUES ($1, $2) RETURNING id",
                        sql_params![name, n.map(|n: i64| n)],
                    )?
                    .unwrap();
                ids.push(row.int(0));
            }
            Ok(ids)
        })
        .unwrap();
        assert_eq!(ids, [1, 2]);
        let rows = sqlite_transaction(&mut conn, |tx| {
            tx.query(
                "SELECT name, n FROM t WHERE n IS NOT DISTINCT FROM $1 ORDER BY id",
                sql_params![None::<i64>],
            )
        })
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].text(0), "b");
        assert_eq!(rows[0].opt_int(1), None);
    }
}
