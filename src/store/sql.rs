//! Two database engines behind one small, rusqlite-shaped interface: SQLite
//! (a file, the zero-setup default) and PostgreSQL (a server several stations
//! share). The store's modules write their SQL once, in the dialect both
//! engines read: numbered parameters `?1`, `ON CONFLICT … DO …`, `RETURNING`,
//! `CAST(… AS BIGINT)` around sums. For PostgreSQL the parameters become `$1`
//! and `instr(` becomes `strpos(`; nothing else is rewritten.
//!
//! Values cross the boundary as [`Value`]: a parameter adapts to the type
//! PostgreSQL inferred for it (an integer bound to an `INT4` column, a flag to
//! a `BOOL`), and a column of any integer, float, text or bytes type reads as
//! the Rust type asked for.
//!
//! PostgreSQL's client runs on a thread of its own (`postgres` drives a small
//! runtime of its own), so the store can be called from anywhere — a plain
//! thread, `spawn_blocking`, or an async task of the outbox — exactly as the
//! SQLite connection is. Its prepared statements are cached per connection. A
//! connection the server dropped (a restart) is opened again on the next
//! call; the call that met the drop fails and its transaction is gone whole.
//!
//! Write transactions: SQLite's `BEGIN IMMEDIATE` takes the one write lock of
//! the file; on PostgreSQL a write transaction takes one transaction-scoped
//! advisory lock ([`WRITE_LOCK`]), so writers of every station queue the same
//! way and each sees everything committed before it. Readers never wait.

use postgres::types::{IsNull, ToSql as PgToSql, Type, to_sql_checked};
use std::collections::HashMap;
use std::fmt;
use std::sync::mpsc;

/// The advisory lock a PostgreSQL write transaction holds ("station" in ASCII).
pub const WRITE_LOCK: i64 = 0x73_74_61_74_69_6f_6e;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// What PostgreSQL said, and which database (filled in by the connection).
    // (Not a field named `source`: that would print the message twice.)
    #[error("PostgreSQL {db}: {}", pg_message(error))]
    Postgres { db: String, error: postgres::Error },
    #[error("the query returned no rows")]
    NoRows,
    #[error("column {column}: {problem}")]
    Column { column: String, problem: String },
    #[error("parameter out of range: {0}")]
    OutOfRange(String),
    #[error("PostgreSQL connection {0}: its client stopped")]
    Gone(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

// Not `#[from]`: the server's message is already in this error's text, and a
// source would print it twice.
impl From<postgres::Error> for Error {
    fn from(error: postgres::Error) -> Error {
        Error::Postgres {
            db: String::new(),
            error,
        }
    }
}

impl Error {
    /// Name the database in a PostgreSQL error that does not yet.
    fn on(self, shown: &str) -> Error {
        match self {
            Error::Postgres { db, error } if db.is_empty() => Error::Postgres {
                db: shown.to_string(),
                error,
            },
            other => other,
        }
    }
}

/// A PostgreSQL error with what the server said (the crate's own text is
/// only "db error").
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(": ");
                s.push_str(d);
            }
            s
        }
        // The connection: refused, dropped, timed out.
        None => {
            let what = match std::error::Error::source(e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            };
            format!(
                "{what}. Is the server up and reachable from here? Nothing half-done was kept: run the command again once it is"
            )
        }
    }
}

/// One SQL value, as both engines store it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A Rust value that can be a query parameter.
pub trait ToSql {
    fn to_value(&self) -> Result<Value>;
}

impl ToSql for Value {
    fn to_value(&self) -> Result<Value> {
        Ok(self.clone())
    }
}
impl ToSql for str {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Text(self.to_string()))
    }
}
impl ToSql for String {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Text(self.clone()))
    }
}
impl ToSql for [u8] {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Blob(self.to_vec()))
    }
}
impl ToSql for Vec<u8> {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Blob(self.clone()))
    }
}
impl ToSql for bool {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Int(i64::from(*self)))
    }
}
impl ToSql for f64 {
    fn to_value(&self) -> Result<Value> {
        Ok(Value::Real(*self))
    }
}
macro_rules! int_to_sql {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> Result<Value> {
                i64::try_from(*self)
                    .map(Value::Int)
                    .map_err(|_| Error::OutOfRange(self.to_string()))
            }
        }
    )*};
}
int_to_sql!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);
impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> Result<Value> {
        match self {
            Some(v) => v.to_value(),
            None => Ok(Value::Null),
        }
    }
}
impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> Result<Value> {
        (**self).to_value()
    }
}

/// A query's parameters: `params![a, b]`, `[a]`, or `[]`.
pub trait Params {
    fn values(self) -> Result<Vec<Value>>;
}
impl Params for &[&dyn ToSql] {
    fn values(self) -> Result<Vec<Value>> {
        self.iter().map(|p| p.to_value()).collect()
    }
}
impl Params for [&dyn ToSql; 0] {
    fn values(self) -> Result<Vec<Value>> {
        Ok(Vec::new())
    }
}
impl Params for Vec<Value> {
    fn values(self) -> Result<Vec<Value>> {
        Ok(self)
    }
}
macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn values(self) -> Result<Vec<Value>> {
                self.iter().map(|p| p.to_value()).collect()
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8);

/// `params![a, b, …]`: parameters of different types.
#[macro_export]
#[doc(hidden)]
macro_rules! __station_sql_params {
    () => {
        &[] as &[&dyn $crate::store::sql::ToSql]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::store::sql::ToSql),+] as &[&dyn $crate::store::sql::ToSql]
    };
}
pub use __station_sql_params as params;

/// A column value read as a Rust type.
pub trait FromSql: Sized {
    fn from_value(v: Value) -> std::result::Result<Self, String>;
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "bytes",
    }
}

impl FromSql for Value {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        Ok(v)
    }
}
impl FromSql for String {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s),
            other => Err(format!("{} where text was expected", kind(&other))),
        }
    }
}
impl FromSql for Vec<u8> {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b),
            Value::Text(s) => Ok(s.into_bytes()),
            other => Err(format!("{} where bytes were expected", kind(&other))),
        }
    }
}
impl FromSql for f64 {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Real(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            other => Err(format!("{} where a number was expected", kind(&other))),
        }
    }
}
impl FromSql for bool {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Int(i) => Ok(i != 0),
            other => Err(format!("{} where a flag was expected", kind(&other))),
        }
    }
}
macro_rules! int_from_sql {
    ($($t:ty),*) => {$(
        impl FromSql for $t {
            fn from_value(v: Value) -> std::result::Result<Self, String> {
                match v {
                    Value::Int(i) => <$t>::try_from(i)
                        .map_err(|_| format!("{i} does not fit {}", stringify!($t))),
                    other => Err(format!("{} where an integer was expected", kind(&other))),
                }
            }
        }
    )*};
}
int_from_sql!(i32, i64, u32, u64, usize);
impl<T: FromSql> FromSql for Option<T> {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// A column, by position (a trait, so calls read as rusqlite's `get::<_, T>(i)`).
pub trait RowIndex {
    fn index(&self) -> usize;
}
impl RowIndex for usize {
    fn index(&self) -> usize {
        *self
    }
}

/// One row of a result, from either engine.
pub enum Row<'a> {
    Lite(&'a rusqlite::Row<'a>),
    Pg(&'a postgres::Row),
}

impl Row<'_> {
    pub fn get<I: RowIndex, T: FromSql>(&self, idx: I) -> Result<T> {
        let i = idx.index();
        let v = match self {
            Row::Lite(r) => match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(n) => Value::Int(n),
                rusqlite::types::ValueRef::Real(f) => Value::Real(f),
                rusqlite::types::ValueRef::Text(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
                rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            },
            Row::Pg(r) => pg_value(r, i)?,
        };
        T::from_value(v).map_err(|problem| Error::Column {
            column: i.to_string(),
            problem,
        })
    }
}

fn pg_value(r: &postgres::Row, i: usize) -> Result<Value> {
    let ty = r.columns()[i].type_().clone();
    let v = match ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
        Type::INT4 => r
            .try_get::<_, Option<i32>>(i)?
            .map(|n| Value::Int(n.into())),
        Type::INT2 => r
            .try_get::<_, Option<i16>>(i)?
            .map(|n| Value::Int(n.into())),
        Type::BOOL => r
            .try_get::<_, Option<bool>>(i)?
            .map(|b| Value::Int(b.into())),
        Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Value::Real),
        Type::FLOAT4 => r
            .try_get::<_, Option<f32>>(i)?
            .map(|f| Value::Real(f.into())),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            r.try_get::<_, Option<String>>(i)?.map(Value::Text)
        }
        Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
        other => {
            return Err(Error::Column {
                column: r.columns()[i].name().to_string(),
                problem: format!("type {other} is not read by the store (CAST it in the query)"),
            });
        }
    };
    Ok(v.unwrap_or(Value::Null))
}

impl PgToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(n) => match *ty {
                Type::INT8 => n.to_sql(ty, out),
                Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
                Type::BOOL => (*n != 0).to_sql(ty, out),
                Type::FLOAT8 => (*n as f64).to_sql(ty, out),
                Type::FLOAT4 => (*n as f32).to_sql(ty, out),
                _ => n.to_string().to_sql(ty, out),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::FLOAT8 => f.to_sql(ty, out),
                _ => f.to_string().to_sql(ty, out),
            },
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT8
                | Type::INT4
                | Type::INT2
                | Type::BOOL
                | Type::FLOAT8
                | Type::FLOAT4
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
                | Type::UNKNOWN
                | Type::BYTEA
        )
    }

    to_sql_checked!();
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(*n),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// The SQL as PostgreSQL reads it: `?N` → `$N` (a bare `?` counts on), and
/// `instr(` → `strpos(`, outside string literals and quoted names.
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.char_indices().peekable();
    let mut next_bare = 1;
    let mut quote: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                out.push('$');
                let mut digits = false;
                while let Some(&(_, d)) = chars.peek() {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    out.push(d);
                    digits = true;
                    chars.next();
                }
                if !digits {
                    out.push_str(&next_bare.to_string());
                    next_bare += 1;
                }
            }
            'i' | 'I'
                if sql[i..].len() >= 6
                    && sql[i..i + 6].eq_ignore_ascii_case("instr(")
                    && !sql[..i]
                        .chars()
                        .next_back()
                        .is_some_and(|p| p.is_alphanumeric() || p == '_') =>
            {
                out.push_str("strpos(");
                for _ in 0..5 {
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A connection to either engine.
pub enum Connection {
    Lite(rusqlite::Connection),
    Pg(PgConn),
}

/// A prepared query of either engine.
pub enum Statement<'c> {
    Lite(rusqlite::CachedStatement<'c>),
    Pg { conn: &'c PgConn, sql: String },
}

impl Connection {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Connection::Pg(_))
    }

    pub fn execute<P: Params>(&self, sql: &str, p: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }

    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Connection::Lite(c) => Ok(c.execute_batch(sql)?),
            Connection::Pg(c) => c.batch(sql.to_string()),
        }
    }

    pub fn query_row<T, P: Params, F>(&self, sql: &str, p: P, f: F) -> Result<T>
    where
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        self.prepare_cached(sql)?.query_row(p, f)
    }

    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        self.prepare_cached(sql)
    }

    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(match self {
            Connection::Lite(c) => Statement::Lite(c.prepare_cached(sql)?),
            Connection::Pg(c) => Statement::Pg {
                conn: c,
                sql: sql.to_string(),
            },
        })
    }

    /// Begin a write transaction (see the module's notes on the write lock).
    pub fn write_tx(&mut self) -> Result<Transaction<'_>> {
        match self {
            Connection::Lite(c) => c.execute_batch("BEGIN IMMEDIATE")?,
            Connection::Pg(c) => {
                c.batch(format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"))?
            }
        }
        Ok(Transaction {
            conn: self,
            open: true,
        })
    }
}

impl Statement<'_> {
    pub fn execute<P: Params>(&mut self, p: P) -> Result<usize> {
        let values = p.values()?;
        match self {
            Statement::Lite(s) => Ok(s.execute(rusqlite::params_from_iter(values.iter()))?),
            Statement::Pg { conn, sql } => Ok(conn.execute(sql.clone(), values)? as usize),
        }
    }

    /// Every row, mapped, collected before it returns (the mapping may run
    /// other queries on the connection; on PostgreSQL the rows are all read
    /// before the first is mapped).
    pub fn query_map<T, P: Params, F>(
        &mut self,
        p: P,
        mut f: F,
    ) -> Result<std::vec::IntoIter<Result<T>>>
    where
        F: FnMut(&Row<'_>) -> Result<T>,
    {
        let values = p.values()?;
        let out: Vec<Result<T>> = match self {
            Statement::Lite(s) => {
                let mut rows = s.query(rusqlite::params_from_iter(values.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Lite(r)));
                }
                out
            }
            Statement::Pg { conn, sql } => conn
                .query(sql.clone(), values)?
                .iter()
                .map(|r| f(&Row::Pg(r)))
                .collect(),
        };
        Ok(out.into_iter())
    }

    pub fn query_row<T, P: Params, F>(&mut self, p: P, f: F) -> Result<T>
    where
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        let values = p.values()?;
        match self {
            Statement::Lite(s) => {
                let mut rows = s.query(rusqlite::params_from_iter(values.iter()))?;
                match rows.next()? {
                    Some(r) => f(&Row::Lite(r)),
                    None => Err(Error::NoRows),
                }
            }
            Statement::Pg { conn, sql } => match conn.query(sql.clone(), values)?.first() {
                Some(r) => f(&Row::Pg(r)),
                None => Err(Error::NoRows),
            },
        }
    }

    pub fn exists<P: Params>(&mut self, p: P) -> Result<bool> {
        self.query_row(p, |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
    }
}

/// An open transaction: commit it, or it rolls back when dropped.
pub struct Transaction<'c> {
    conn: &'c Connection,
    open: bool,
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Transaction<'_> {
    /// A COMMIT that fails leaves the transaction to roll back on drop.
    pub fn commit(mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// `.optional()`: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}
impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) | Err(Error::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

type Job = Box<dyn FnOnce(&mut PgWorker) + Send>;

/// A PostgreSQL connection: a client on a thread of its own.
pub struct PgConn {
    jobs: mpsc::Sender<Job>,
    shown: String,
}

struct PgWorker {
    url: String,
    shown: String,
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
    /// Inside BEGIN … COMMIT: a dropped connection then fails every call
    /// until the transaction ends, never reconnecting mid-transaction (its
    /// statements would run outside it).
    in_tx: bool,
}

impl PgWorker {
    fn client(&mut self) -> Result<&mut postgres::Client> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            if self.in_tx {
                return Err(Error::Gone(format!(
                    "{}: the connection dropped during a transaction, which did not commit",
                    self.shown
                )));
            }
            self.statements.clear();
            self.client = None;
            self.client = Some(postgres::Client::connect(&self.url, postgres::NoTls)?);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let translated = to_postgres(sql);
        let s = self.client()?.prepare(&translated)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

impl PgConn {
    /// Connect to `url` (`postgres://…`); `shown` names it in errors
    /// (without its password).
    pub fn connect(url: &str, shown: &str) -> Result<PgConn> {
        let mut worker = PgWorker {
            url: url.to_string(),
            shown: shown.to_string(),
            in_tx: false,
            client: None,
            statements: HashMap::new(),
        };
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::sync_channel(1);
        // Connected on its own thread too: the caller may be an async task.
        std::thread::Builder::new()
            .name("postgres".into())
            .spawn(move || {
                let connected = worker.client().map(|_| ());
                let ok = connected.is_ok();
                let _ = ready_tx.send(connected);
                if ok {
                    for job in rx {
                        job(&mut worker);
                    }
                }
            })
            .map_err(|e| Error::Gone(format!("{shown}: {e}")))?;
        ready
            .recv()
            .map_err(|_| Error::Gone(shown.to_string()))?
            .map_err(|e| e.on(shown))?;
        Ok(PgConn {
            jobs,
            shown: shown.to_string(),
        })
    }

    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PgWorker) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |w| {
                let _ = tx.send(f(w));
            }))
            .map_err(|_| Error::Gone(self.shown.clone()))?;
        rx.recv()
            .map_err(|_| Error::Gone(self.shown.clone()))?
            .map_err(|e| e.on(&self.shown))
    }

    fn query(&self, sql: String, values: Vec<Value>) -> Result<Vec<postgres::Row>> {
        self.call(move |w| {
            let st = w.statement(&sql)?;
            let refs: Vec<&(dyn PgToSql + Sync)> = values.iter().map(|v| v as _).collect();
            Ok(w.client()?.query(&st, &refs)?)
        })
    }

    fn execute(&self, sql: String, values: Vec<Value>) -> Result<u64> {
        self.call(move |w| {
            let st = w.statement(&sql)?;
            let refs: Vec<&(dyn PgToSql + Sync)> = values.iter().map(|v| v as _).collect();
            Ok(w.client()?.execute(&st, &refs)?)
        })
    }

    fn batch(&self, sql: String) -> Result<()> {
        self.call(move |w| {
            let ends = sql == "COMMIT" || sql == "ROLLBACK";
            if sql == "ROLLBACK" && w.client.as_ref().is_none_or(|c| c.is_closed()) {
                // The server already dropped the transaction with the connection.
                w.in_tx = false;
                return Ok(());
            }
            let done = w.client().and_then(|c| Ok(c.batch_execute(&sql)?));
            if ends {
                w.in_tx = false;
            } else if sql.starts_with("BEGIN") && done.is_ok() {
                w.in_tx = true;
            }
            done
        })
    }
}

impl fmt::Debug for PgConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgConn({})", self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_and_instr_read_as_postgres_outside_literals() {
        assert_eq!(
            to_postgres("SELECT '?1', \"a?\" FROM t WHERE a = ?1 AND instr(b, ?12) > 0 AND c = ?"),
            "SELECT '?1', \"a?\" FROM t WHERE a = $1 AND strpos(b, $12) > 0 AND c = $1"
        );
        assert_eq!(to_postgres("SELECT xinstr(a)"), "SELECT xinstr(a)");
    }
}
