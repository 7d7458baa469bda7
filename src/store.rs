//! The station's state, in SQLite or PostgreSQL: the only module that writes SQL.
//!
//! [`sql`] puts both engines behind one interface; the store's SQL is written
//! once. Opening a SQLite file sets the pragmas (WAL, foreign keys, a busy
//! handler, `synchronous=FULL`) and runs its migrations; opening a PostgreSQL
//! database runs its own migrations (`store/pg/`) under the write lock, so two
//! stations starting at once migrate once. Every write goes through a write
//! transaction ([`sql::Connection::write_tx`]): writers of every process queue
//! on one lock (SQLite's file lock, a PostgreSQL advisory lock) and never
//! deadlock on a lock upgrade.
//!
//! Architecture invariant: every change to an order is written in the same
//! transaction as the `events` row that records it (who, what, when). The
//! `events` table is append-only, enforced by triggers.

use crate::intake::{self, ExceptionFlag, State, Stored, Verdict};
use crate::order::validate::Rejection;
use crate::order::{Flag, Order};
use chrono::{SecondsFormat, Utc};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;
use sql::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

mod handover;
mod location;
mod lookup;
mod maintenance;
mod migrate;
mod outbox;
mod packing;
mod print_jobs;
mod privacy;
mod report;
mod returns;
mod signins;
pub mod sql;
mod tracking;
mod waves;
mod waybills;
pub use handover::{ClosingParcel, HandoverRow, ParcelRow, Removed};
pub use location::Db;
pub use lookup::{HandoverEntry, PackingEntry, WaveEntry, WriteBackEntry};
pub use migrate::{CopiedTable, Migrated};
pub(crate) use outbox::enqueue as enqueue_write_back;
#[cfg(test)]
pub(crate) use outbox::tests::handed_over as outbox_fixture;
pub use outbox::{
    Ack, Alert, ClaimedSend, ExceptionWrite, OutboxSummary, ReturnWrite, SendKind, WriteBack,
};
pub(crate) use outbox::{enqueue_exception, enqueue_return};
pub use packing::{BenchSession, Shorted};
pub use print_jobs::{NewPrintJob, PrintJob};
pub use privacy::{MixedFile, Purged};
pub use report::{BatchCount, Gauges, InWarehouse, PackRate};
pub use returns::{NewReturn, Recorded, ReturnEntry, ReturnLine, ReturnRefused};
pub use signins::{BenchHolder, NewSignin, SessionRow};
pub use tracking::{Allocation, TrackingNumber};
pub use waves::{ChunkFiles, Wave, WaveOrder, WavePlan, host_name, split_parcel_in};
pub use waybills::{Answered, CourierDay, DueCancel, PendingRequest};

const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("store/001_orders.sql")),
    M::up(include_str!("store/002_tracking.sql")),
    M::up(include_str!("store/003_waves.sql")),
    M::up(include_str!("store/004_packing.sql")),
    M::up(include_str!("store/005_outbox.sql")),
    M::up(include_str!("store/006_exception.sql")),
    M::up(include_str!("store/007_transitions.sql")),
    M::up(include_str!("store/008_wave_lease.sql")),
    M::up(include_str!("store/009_print_jobs.sql")),
    M::up(include_str!("store/010_bench_last_order.sql")),
    M::up(include_str!("store/011_packing_weight.sql")),
    M::up(include_str!("store/012_returns.sql")),
    M::up(include_str!("store/013_signins.sql")),
    M::up(include_str!("store/014_outbox_by_order.sql")),
    M::up(include_str!("store/015_waybill_service.sql")),
    M::up(include_str!("store/016_wave_format.sql")),
    M::up(include_str!("store/017_parcels.sql")),
];

/// PostgreSQL's migrations: the first is the whole schema SQLite's 001–013
/// leave; later ones come in pairs with SQLite's (002 = 014, 003 = 015, 004 = 016, 005 = 017).
const PG_MIGRATIONS: &[&str] = &[
    include_str!("store/pg/001_schema.sql"),
    include_str!("store/pg/002_outbox_by_order.sql"),
    include_str!("store/pg/003_waybill_service.sql"),
    include_str!("store/pg/004_wave_format.sql"),
    include_str!("store/pg/005_parcels.sql"),
];

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open { path: String, source: sql::Error },
    #[error("database {path}: cannot bring the schema up to date: {source}")]
    Migrate {
        path: String,
        source: rusqlite_migration::Error,
    },
    #[error("database {db}: cannot bring the schema up to date: {source}")]
    MigratePg { db: String, source: sql::Error },
    #[error(
        "database {db}: its schema is version {found}, newer than this station knows ({known}): update station"
    )]
    SchemaTooNew { db: String, found: i64, known: i64 },
    #[error("database error: {0}")]
    Sql(#[from] sql::Error),
    #[error("migrate-db: {0}")]
    MigrateRefused(String),
    #[error("{what} works on a SQLite station only; on PostgreSQL, {instead}")]
    NotOnPostgres {
        what: &'static str,
        instead: &'static str,
    },
    #[error("order {id}: stored payload is unreadable: {source}")]
    Corrupt {
        id: String,
        source: serde_json::Error,
    },
    #[error("order {0} is not in the database")]
    UnknownOrder(String),
    #[error(
        "no database at {0}: run `station pull` (or `station import`) first, or point --db at the right file"
    )]
    Missing(String),
    #[error("wave {0} does not exist")]
    UnknownWave(i64),
    #[error("tracking number {0} is not one the station issued")]
    UnknownTracking(String),
    #[error("tracking number {0} is already void")]
    AlreadyVoided(String),
    #[error(
        "no tracking number left for courier {courier}: {detail}. Add numbers to its pool in station.toml ([[couriers]] pool)"
    )]
    PoolExhausted { courier: String, detail: String },
    #[error(
        "order {order_id} has no number from {courier}'s e-waybill service for its current version: print it again (`station print` or `station reprint`) to take one"
    )]
    NoServiceNumber { order_id: String, courier: String },
    #[error(
        "order {order_id} was already handed over in batch {batch_id} and its write-back to the shop is queued: an order ships once"
    )]
    AlreadyWrittenBack { order_id: String, batch_id: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub struct Store {
    conn: Connection,
    db: Db,
    /// `print.lease_secs`, for the waves this store plans or resumes.
    wave_lease_secs: u32,
}

/// Who is acting and where the orders came from, recorded with every event.
#[derive(Clone, Debug)]
pub struct Actor<'a> {
    pub operator: &'a str,
    /// "shop" or "import:<file>".
    pub source: &'a str,
}

/// One order as it arrived: decoded and valid, or set aside with a reason.
// A valid order is the common case and each lives only while its page is
// stored: boxing it would cost an allocation per order for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Incoming {
    Valid(Order),
    Invalid {
        rejection: Rejection,
        raw: String,
    },
    /// The shop no longer knows this order (404 on a direct read).
    Gone {
        id: String,
    },
}

/// What one batch (a page, a file) did to the store.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IntakeReport {
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub not_eligible: u64,
    pub left_queue: u64,
    pub marked: u64,
    pub rejected: u64,
    pub cleared_rejections: u64,
}

impl IntakeReport {
    pub fn add(&mut self, o: &IntakeReport) {
        self.new += o.new;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.not_eligible += o.not_eligible;
        self.left_queue += o.left_queue;
        self.marked += o.marked;
        self.rejected += o.rejected;
        self.cleared_rejections += o.cleared_rejections;
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    /// Orders per state, plus `rejected`: payloads set aside for breaking the contract.
    pub counts: BTreeMap<String, u64>,
    pub rejected: Vec<Listed>,
    pub changed_after_print: Vec<Listed>,
    pub intercept: Vec<Listed>,
    pub left_queue: Vec<Listed>,
    /// Printed labels to look at: text that overflowed its box, characters in
    /// no font. Listed while the order's current label is the one warned about.
    pub attention: Vec<Listed>,
    /// The write-back to the shop: pending sends, the oldest one's age, alerts.
    pub outbox: OutboxSummary,
}

#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub seq: i64,
    pub at: String,
    pub operator: String,
    pub order_id: Option<String>,
    pub action: String,
    pub detail: String,
}

#[derive(Clone, Debug)]
pub struct StoredOrder {
    pub order: Order,
    pub state: State,
    pub reason: Option<String>,
}

/// SQLite's busy handler: `true` = try again. 20,000 × 0.5 ms ≈ 10 s.
fn busy_wait(retries: i32) -> bool {
    if retries >= 20_000 {
        return false;
    }
    std::thread::sleep(Duration::from_micros(500));
    true
}

pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Store {
    /// Open a database that must already exist (for commands that only read:
    /// a mistyped `--db` must not silently show an empty station).
    /// Another connection to the same database file, for work running at the
    /// same time in this process (the outbox's sends in flight).
    pub fn reopen(&self) -> Result<Store> {
        match &self.db {
            Db::Sqlite(p) if p.as_os_str().is_empty() || p == Path::new(":memory:") => {
                Err(StoreError::Missing(
                    "(an in-memory database: it cannot be opened a second time)".into(),
                ))
            }
            db => Store::open_existing(db),
        }
    }

    pub fn open_existing(db: impl Into<Db>) -> Result<Store> {
        let db = db.into();
        match &db {
            Db::Sqlite(path) if !path.exists() => {
                Err(StoreError::Missing(path.display().to_string()))
            }
            Db::Sqlite(_) => Store::open(db),
            Db::Postgres(url) => {
                let conn = Store::connect_pg(&db, url)?;
                let known = conn.query_row(
                    "SELECT to_regclass('station_schema') IS NOT NULL",
                    [],
                    |r| r.get::<_, bool>(0),
                )?;
                if !known {
                    return Err(StoreError::Missing(format!(
                        "{db} (a PostgreSQL database without the station's tables)"
                    )));
                }
                Store::open_pg(conn, db)
            }
        }
    }

    pub fn open(db: impl Into<Db>) -> Result<Store> {
        let db = db.into();
        match &db {
            Db::Sqlite(path) => {
                let conn = Store::open_sqlite(path)?;
                Ok(Store {
                    conn,
                    db,
                    wave_lease_secs: waves::WAVE_LEASE_SECS,
                })
            }
            Db::Postgres(url) => {
                let conn = Store::connect_pg(&db, url)?;
                Store::open_pg(conn, db)
            }
        }
    }

    /// A PostgreSQL store on `conn`, its schema brought up to date.
    fn open_pg(mut conn: Connection, db: Db) -> Result<Store> {
        migrate_pg(&mut conn).map_err(|e| match e {
            StoreError::Sql(source) => StoreError::MigratePg {
                db: db.to_string(),
                source,
            },
            StoreError::SchemaTooNew { found, known, .. } => StoreError::SchemaTooNew {
                db: db.to_string(),
                found,
                known,
            },
            other => other,
        })?;
        Ok(Store {
            conn,
            db,
            wave_lease_secs: waves::WAVE_LEASE_SECS,
        })
    }

    /// Its errors name the database already (`sql::Error::Postgres`).
    fn connect_pg(db: &Db, url: &str) -> Result<Connection> {
        Ok(sql::PgConn::connect(url, &db.to_string()).map(Connection::Pg)?)
    }

    fn open_sqlite(path: &Path) -> Result<Connection> {
        let shown = path.display().to_string();
        let open_err = |source: rusqlite::Error| StoreError::Open {
            path: shown.clone(),
            source: source.into(),
        };
        let mut conn = rusqlite::Connection::open(path).map_err(open_err)?;
        // A writer waiting for another (8 benches at once, a wave, the outbox)
        // retries every half millisecond for up to ~10 s, instead of SQLite's
        // default back-off steps (1, 2, 5, 10, … 100 ms) that made a scan wait
        // tens of milliseconds behind a lock held for one.
        conn.busy_handler(Some(busy_wait)).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(128);
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|source| StoreError::Migrate {
                path: shown.clone(),
                source,
            })?;
        Ok(Connection::Lite(conn))
    }

    /// The connection itself, for tests (here and in `tests/`) that look at
    /// what was stored with SQL of their own, on either engine.
    #[doc(hidden)]
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    /// The connection itself, for unit tests elsewhere in the crate that
    /// check what was stored.
    #[cfg(test)]
    pub(crate) fn conn_for_tests(&self) -> &Connection {
        &self.conn
    }

    fn write_tx(&mut self) -> Result<sql::Transaction<'_>> {
        Ok(self.conn.write_tx()?)
    }

    /// Take a batch in, in one transaction: decide each order with
    /// [`intake::decide`] and record every change as an event.
    pub fn ingest(
        &mut self,
        batch: &[Incoming],
        actor: &Actor<'_>,
        pull_flag: Flag,
    ) -> Result<IntakeReport> {
        let tx = self.write_tx()?;
        let mut report = IntakeReport::default();
        let at = now();
        for incoming in batch {
            match incoming {
                Incoming::Valid(order) => {
                    ingest_valid(&tx, order, actor, pull_flag, &at, &mut report)?
                }
                Incoming::Invalid { rejection, raw } => {
                    ingest_invalid(&tx, rejection, raw, actor, &at, &mut report)?
                }
                Incoming::Gone { id } => ingest_gone(&tx, id, actor, &at, &mut report)?,
            }
        }
        tx.commit()?;
        Ok(report)
    }

    /// Forget rejections that had no usable id (keyed by page and position)
    /// from an earlier run of the same source: positions mean nothing across pulls.
    pub fn clear_positional_rejections(&mut self, source: &str, seen_before: &str) -> Result<u64> {
        let tx = self.write_tx()?;
        let n = tx.execute(
            "DELETE FROM rejections WHERE positional = 1 AND source = ?1 AND last_seen < ?2",
            params![source, seen_before],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// Ids of the orders rejected from `source` (not positions).
    pub fn rejection_keys(&self, source: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key FROM rejections WHERE positional = 0 AND source = ?1")?;
        let keys = stmt
            .query_map([source], |r| r.get(0))?
            .collect::<sql::Result<_>>()?;
        Ok(keys)
    }

    /// Drop a rejection that no longer matters, recording why.
    pub fn clear_rejection(&mut self, key: &str, operator: &str, why: &str) -> Result<()> {
        let tx = self.write_tx()?;
        if tx.execute("DELETE FROM rejections WHERE key = ?1", [key])? > 0 {
            event(&tx, operator, Some(key), "intake.rejection_cleared", why)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Orders the station is still working on (queued or printed and not yet
    /// gone): a complete pull that did not see one of them must ask about it.
    pub fn active_ids(&self) -> Result<HashSet<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM orders
             WHERE state IN ('queued', 'printed', 'changed_after_print', 'intercept', 'packed', 'out_of_stock')",
        )?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<sql::Result<_>>()?;
        Ok(ids)
    }

    pub fn order(&self, id: &str) -> Result<Option<StoredOrder>> {
        let row = self
            .conn
            .prepare_cached("SELECT payload, state, reason FROM orders WHERE id = ?1")?
            .query_row([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .optional()?;
        let Some((payload, state, reason)) = row else {
            return Ok(None);
        };
        let order = serde_json::from_str(&payload).map_err(|source| StoreError::Corrupt {
            id: id.into(),
            source,
        })?;
        Ok(Some(StoredOrder {
            order,
            state: State::parse(&state).unwrap_or(State::LeftQueue),
            reason,
        }))
    }

    /// Record that the current version of an order has been printed (a label
    /// outside a wave: a test, or a reprint after a change); marks only ever
    /// compare against this snapshot.
    pub fn mark_printed(&mut self, id: &str, operator: &str) -> Result<()> {
        let tx = self.write_tx()?;
        let n = tx.execute(
            "UPDATE orders SET state = CASE state WHEN 'packed' THEN 'packed' ELSE 'printed' END,
                    reason = NULL, printed_payload = payload, printed_version = version, updated = ?2
             WHERE id = ?1 AND state IN ('queued', 'printed', 'changed_after_print', 'packed')",
            params![id, now()],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownOrder(id.into()));
        }
        event(
            &tx,
            operator,
            Some(id),
            "print.marked",
            "label printed for the current version",
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Append one event outside any other change (e.g. a pull summary).
    pub fn record(
        &mut self,
        operator: &str,
        order_id: Option<&str>,
        action: &str,
        detail: &str,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        event(&tx, operator, order_id, action, detail)?;
        tx.commit()?;
        Ok(())
    }

    pub fn events(&self, order_id: Option<&str>) -> Result<Vec<Event>> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at, operator, order_id, action, detail FROM events
             WHERE CAST(?1 AS TEXT) IS NULL OR order_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([order_id], |r| {
            Ok(Event {
                seq: r.get(0)?,
                at: r.get(1)?,
                operator: r.get(2)?,
                order_id: r.get(3)?,
                action: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    pub fn status(&self) -> Result<StatusReport> {
        let mut counts: BTreeMap<String, u64> = State::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
        let mut stmt = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM orders GROUP BY state")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))? {
            let (state, n) = row?;
            counts.insert(state, n);
        }
        let rejected = self.listed(
            "SELECT key, reason FROM rejections ORDER BY last_seen DESC, key",
            [],
        )?;
        counts.insert("rejected".into(), rejected.len() as u64);
        let by_state = |state: State| {
            self.listed(
                "SELECT id, COALESCE(reason, '') FROM orders WHERE state = ?1 ORDER BY paid_at, id",
                [state.as_str()],
            )
        };
        Ok(StatusReport {
            counts,
            rejected,
            changed_after_print: by_state(State::ChangedAfterPrint)?,
            intercept: by_state(State::Intercept)?,
            left_queue: by_state(State::LeftQueue)?,
            // A warning counts while no later print of the order happened.
            attention: self.listed(
                "SELECT e.order_id, e.detail FROM events e JOIN orders o ON o.id = e.order_id
                 WHERE e.action = 'print.warning' AND o.state = 'printed'
                   AND NOT EXISTS (SELECT 1 FROM events p WHERE p.order_id = e.order_id
                                   AND p.action IN ('print.printed', 'print.marked') AND p.seq > e.seq)
                 ORDER BY e.seq",
                [],
            )?,
            outbox: self.outbox_summary()?,
        })
    }

    fn listed<P: sql::Params>(&self, sql: &str, p: P) -> Result<Vec<Listed>> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(p, |r| {
            Ok(Listed {
                id: r.get(0)?,
                reason: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    /// Queued orders in shipping order: urgent first, then by payment time.
    pub fn queue(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM orders WHERE state = 'queued' ORDER BY urgent DESC, paid_at, id",
        )?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<sql::Result<_>>()?;
        Ok(ids)
    }
}

/// Bring a PostgreSQL database's schema up to date, under the write lock so
/// stations starting at once migrate once; the version is kept in
/// `station_schema`.
fn migrate_pg(conn: &mut Connection) -> Result<()> {
    let known = PG_MIGRATIONS.len() as i64;
    // Up to date (the common case: every command, every outbox connection):
    // seen without taking the write lock.
    let exists = conn.query_row(
        "SELECT to_regclass('station_schema') IS NOT NULL",
        [],
        |r| r.get::<_, bool>(0),
    )?;
    if exists {
        let found: Option<i64> =
            conn.query_row("SELECT MAX(version) FROM station_schema", [], |r| r.get(0))?;
        if found == Some(known) {
            return Ok(());
        }
    }
    let tx = conn.write_tx()?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS station_schema (version BIGINT NOT NULL)")?;
    let found: i64 = tx
        .query_row("SELECT MAX(version) FROM station_schema", [], |r| {
            r.get::<_, Option<i64>>(0)
        })?
        .unwrap_or(0);
    if found > known {
        return Err(StoreError::SchemaTooNew {
            db: String::new(),
            found,
            known,
        });
    }
    for (i, m) in PG_MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(m)?;
        tx.execute(
            "INSERT INTO station_schema (version) VALUES (?1)",
            [i as i64 + 1],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn event(
    tx: &Connection,
    operator: &str,
    order_id: Option<&str>,
    action: &str,
    detail: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (at, operator, order_id, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![now(), operator, order_id, action, detail])?;
    Ok(())
}

/// The newest exception flag (缺货) sent for the order, if any.
fn exception_flag(tx: &Connection, id: &str) -> Result<Option<ExceptionFlag>> {
    let row: Option<(String, Option<u64>)> = tx
        .prepare_cached(
            "SELECT state, if_version FROM outbox WHERE order_id = ?1 AND kind = 'exception'
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((state, _)) if state == "pending" => Some(ExceptionFlag::Pending),
        Some((state, version)) if state == "done" => Some(ExceptionFlag::Acknowledged { version }),
        _ => None,
    })
}

/// Whether the order was ever in a closed handover (its write-back is queued).
fn handed_over(tx: &Connection, id: &str) -> Result<bool> {
    Ok(tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE order_id = ?1 AND kind IN ('shipment', 'flag'))",
        )?
        .query_row([id], |r| r.get(0))?)
}

fn load_stored(tx: &Connection, id: &str) -> Result<Option<Stored>> {
    let row = tx
        .prepare_cached("SELECT version, state, printed_payload, reason FROM orders WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .optional()?;
    let Some((version, state, printed, reason)) = row else {
        return Ok(None);
    };
    let printed = match printed {
        Some(p) => Some(
            serde_json::from_str(&p).map_err(|source| StoreError::Corrupt {
                id: id.into(),
                source,
            })?,
        ),
        None => None,
    };
    let state = State::parse(&state).unwrap_or(State::LeftQueue);
    // The facts the intake rules read for these states only (a query each).
    let handed_over = state == State::Intercept && handed_over(tx, id)?;
    let exception = match state {
        State::OutOfStock => exception_flag(tx, id)?,
        _ => None,
    };
    Ok(Some(Stored {
        version,
        state,
        printed,
        reason,
        handed_over,
        exception,
    }))
}

fn ingest_valid(
    tx: &Connection,
    order: &Order,
    actor: &Actor<'_>,
    pull_flag: Flag,
    at: &str,
    report: &mut IntakeReport,
) -> Result<()> {
    // A valid version at least as new as a rejected one clears the rejection.
    let cleared = tx
        .prepare_cached(
            "DELETE FROM rejections WHERE key = ?1 AND (version IS NULL OR version <= ?2)",
        )?
        .execute(params![order.id, order.version])?;
    if cleared > 0 {
        report.cleared_rejections += 1;
        event(
            tx,
            actor.operator,
            Some(&order.id),
            "intake.rejection_cleared",
            &format!("v{} is valid", order.version),
        )?;
    }
    let stored = load_stored(tx, &order.id)?;
    let verdict = intake::decide(stored.as_ref(), order, pull_flag);
    let (state, reason) = match verdict {
        Verdict::Stale => {
            report.unchanged += 1;
            return Ok(());
        }
        Verdict::NotEligible { .. } => {
            report.not_eligible += 1;
            return Ok(());
        }
        Verdict::Store { state, reason } => (state, reason),
    };
    let payload = serde_json::to_string(order).expect("orders serialise");
    // Fixed-width UTC with every fractional digit, so that text order is payment
    // order: with whole seconds, two orders paid within one second tied and the
    // later-paid one could print first (tests/properties.rs found it).
    let paid_at = order.paid_at.map(|t| {
        t.with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Nanos, true)
    });
    tx.prepare_cached(
        "INSERT INTO orders (id, version, state, reason, payload, paid_at, urgent, first_seen, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT (id) DO UPDATE SET version = ?2, state = ?3, reason = ?4, payload = ?5,
             paid_at = ?6, urgent = ?7, updated = ?8",
    )?
    .execute(params![order.id, order.version, state.as_str(), reason, payload, paid_at, order.is_urgent(), at])?;

    let detail = |what: &str| match &reason {
        Some(r) => format!("v{} from {}: {what}: {r}", order.version, actor.source),
        None => format!("v{} from {}: {what}", order.version, actor.source),
    };
    match stored {
        None => {
            report.new += 1;
            event(
                tx,
                actor.operator,
                Some(&order.id),
                "intake.queued",
                &detail("queued"),
            )?;
        }
        Some(before) => {
            report.updated += 1;
            let action = match (before.state, state) {
                (_, State::LeftQueue) if before.state != State::LeftQueue => {
                    report.left_queue += 1;
                    "intake.left_queue"
                }
                (State::LeftQueue | State::OutOfStock, State::Queued) => "intake.requeued",
                (_, State::ChangedAfterPrint | State::Intercept) => {
                    report.marked += 1;
                    if before.state == state {
                        "intake.updated"
                    } else {
                        "intake.marked"
                    }
                }
                (State::ChangedAfterPrint | State::Intercept, State::Printed) => {
                    "intake.mark_cleared"
                }
                _ => "intake.updated",
            };
            event(
                tx,
                actor.operator,
                Some(&order.id),
                action,
                &detail(state.as_str()),
            )?;
        }
    }
    Ok(())
}

fn ingest_invalid(
    tx: &Connection,
    rejection: &Rejection,
    raw: &str,
    actor: &Actor<'_>,
    at: &str,
    report: &mut IntakeReport,
) -> Result<()> {
    let stored = load_stored(tx, &rejection.key)?;
    // A rejected payload older than the valid version we hold is stale news.
    if let (Some(s), Some(v)) = (&stored, rejection.version)
        && v <= s.version
    {
        report.unchanged += 1;
        return Ok(());
    }
    // The same rejected version seen again (every pull re-reads it): nothing new
    // to record, and the order's state already reflects it.
    let known: Option<(Option<u64>, String)> = tx
        .prepare_cached("SELECT version, reason FROM rejections WHERE key = ?1")?
        .query_row([&rejection.key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if known
        .as_ref()
        .is_some_and(|(v, reason)| *v == rejection.version && *reason == rejection.reason)
    {
        tx.prepare_cached("UPDATE rejections SET last_seen = ?2 WHERE key = ?1")?
            .execute(params![rejection.key, at])?;
        report.rejected += 1;
        return Ok(());
    }
    report.rejected += 1;
    tx.prepare_cached(
        "INSERT INTO rejections (key, version, reason, raw, source, positional, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (key) DO UPDATE SET version = ?2, reason = ?3, raw = ?4, source = ?5,
             positional = ?6, last_seen = ?7",
    )?
    .execute(params![rejection.key, rejection.version, rejection.reason, raw, actor.source, rejection.by_position, at])?;
    let order_id = (!rejection.by_position).then_some(rejection.key.as_str());
    event(
        tx,
        actor.operator,
        order_id,
        "intake.rejected",
        &rejection.reason,
    )?;

    // The order we hold is no longer what the shop has: it must not print (or,
    // when printed, it must be looked at) until a valid version arrives.
    if let Some(s) = stored {
        let version = rejection
            .version
            .map_or("a newer version".to_string(), |v| format!("v{v}"));
        if s.state.has_left() {
            return Ok(());
        }
        let (state, action) = match s.state {
            // "Do not ship" must never be downgraded by a payload we cannot read.
            State::Intercept => (State::Intercept, "intake.updated"),
            st if st.is_printed() => {
                report.marked += 1;
                (State::ChangedAfterPrint, "intake.marked")
            }
            _ => {
                report.left_queue += 1;
                (State::LeftQueue, "intake.left_queue")
            }
        };
        let reason = if s.state == State::Intercept {
            format!(
                "{}; then {version} was rejected",
                s.reason.as_deref().unwrap_or("intercepted")
            )
        } else {
            format!("{version} was rejected; see `station status`")
        };
        tx.prepare_cached("UPDATE orders SET state = ?2, reason = ?3, updated = ?4 WHERE id = ?1")?
            .execute(params![rejection.key, state.as_str(), reason, at])?;
        event(tx, actor.operator, Some(&rejection.key), action, &reason)?;
    }
    Ok(())
}

fn ingest_gone(
    tx: &Connection,
    id: &str,
    actor: &Actor<'_>,
    at: &str,
    report: &mut IntakeReport,
) -> Result<()> {
    let Some(s) = load_stored(tx, id)? else {
        return Ok(());
    };
    if s.state.has_left() {
        return Ok(());
    }
    let (state, action) = if s.state.is_printed() {
        report.marked += 1;
        (State::Intercept, "intake.marked")
    } else {
        report.left_queue += 1;
        (State::LeftQueue, "intake.left_queue")
    };
    let reason = intake::GONE_REASON;
    tx.prepare_cached("UPDATE orders SET state = ?2, reason = ?3, updated = ?4 WHERE id = ?1")?
        .execute(params![id, state.as_str(), reason, at])?;
    event(tx, actor.operator, Some(id), action, reason)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intercept_raised_after_handover_is_never_cleared_by_intake() {
        let (_dir, mut store, ids) = outbox_fixture(1);
        let id = &ids[0];
        // What an outbox alert does: the refund arrived after the courier left.
        store
            .conn
            .execute(
                "UPDATE orders SET state = 'intercept', reason = 'refunded after handover' WHERE id = ?1",
                [id],
            )
            .unwrap();
        // The refund is withdrawn on the shop: the parcel still left; nothing changes.
        let mut order = store.order(id).unwrap().unwrap().order;
        order.version += 1;
        let actor = Actor {
            operator: "t",
            source: "test",
        };
        store
            .ingest(&[Incoming::Valid(order)], &actor, Flag::Yellow)
            .unwrap();
        let now = store.order(id).unwrap().unwrap();
        assert_eq!(now.state, State::Intercept);
        assert_eq!(now.reason.as_deref(), Some("refunded after handover"));
    }
}
