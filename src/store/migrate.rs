//! `station migrate-db`: a SQLite station copied whole into an empty
//! PostgreSQL database, then checked row by row.
//!
//! Every table is copied with its rows exactly as stored (ids, sequence
//! numbers, the audit trail, the pools' positions), in one transaction on the
//! destination, with the destination's triggers off for the copy (they would
//! add state changes twice, and refuse parcels of closed batches). Identity
//! columns then continue after the highest copied value. The check reads both
//! databases again, table by table in key order, and compares every value.

use super::sql::{self, Connection, Value};
use super::{Result, Store, StoreError, event};
use serde::Serialize;

/// Every table of the schema, parents before children, with the key its rows
/// are compared in. A table missing here stops the copy (a new migration must
/// add its table).
const TABLES: &[(&str, &str)] = &[
    ("orders", "id"),
    ("rejections", "key"),
    ("events", "seq"),
    ("tracking_numbers", "rowid"),
    ("pool_cursors", "courier"),
    ("pool_file_numbers", "courier, seq"),
    ("waves", "id"),
    ("wave_orders", "wave_id, seq"),
    ("bench_sessions", "bench"),
    ("pack_tallies", "order_id, order_version, item"),
    ("packings", "order_id, tracking_no"),
    ("handovers", "id"),
    ("handover_parcels", "batch_id, seq"),
    ("outbox", "id"),
    ("state_changes", "seq"),
    ("print_jobs", "id"),
    ("returns", "id"),
    ("signins", "token_sha256"),
    ("pin_failures", "name"),
    ("waybill_requests", "request_id"),
    ("waybill_cancels", "number"),
];

/// Identity columns that continue after the copied rows.
const IDENTITIES: &[(&str, &str)] = &[
    ("events", "seq"),
    ("tracking_numbers", "rowid"),
    ("waves", "id"),
    ("outbox", "id"),
    ("state_changes", "seq"),
    ("print_jobs", "id"),
    ("returns", "id"),
];

#[derive(Clone, Debug, Serialize)]
pub struct CopiedTable {
    pub table: String,
    pub rows: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Migrated {
    pub from: String,
    pub to: String,
    pub tables: Vec<CopiedTable>,
    /// Every row of every table read back and compared equal.
    pub checked: bool,
}

/// The columns of a SQLite table, in order (`tracking_numbers` with its rowid).
fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut cols: Vec<String> = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
        .query_map([], |r| r.get(0))?
        .collect::<sql::Result<_>>()?;
    if table == "tracking_numbers" {
        cols.push("rowid".into());
    }
    Ok(cols)
}

fn rows(conn: &Connection, table: &str, cols: &[String], key: &str) -> Result<Vec<Vec<Value>>> {
    let sql = format!("SELECT {} FROM {table} ORDER BY {key}", cols.join(", "));
    let n = cols.len();
    let out = conn
        .prepare(&sql)?
        .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())?
        .collect::<sql::Result<_>>()?;
    Ok(out)
}

impl Store {
    /// Copy this SQLite station into `dest`, a PostgreSQL store with no rows
    /// yet, and check the copy; `operator` is recorded on the destination.
    pub fn migrate_to(&self, dest: &mut Store, operator: &str) -> Result<Migrated> {
        if self.conn.is_postgres() || !dest.conn.is_postgres() {
            return Err(StoreError::NotOnPostgres {
                what: "station migrate-db",
                instead: "it copies a SQLite station (--db FILE) into PostgreSQL (--to postgres://…)",
            });
        }
        let present: Vec<String> = self
            .conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 ORDER BY name",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<sql::Result<_>>()?;
        if let Some(t) = present.iter().find(|t| !TABLES.iter().any(|(n, _)| n == t)) {
            return Err(StoreError::MigrateRefused(format!(
                "table {t} is not one migrate-db knows: update station"
            )));
        }
        let busy: Vec<String> = TABLES
            .iter()
            .map(|(t, _)| {
                dest.conn
                    .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| {
                        r.get::<_, i64>(0)
                    })
                    .map(|n| (t, n))
            })
            .filter_map(|r| match r {
                Ok((t, n)) if n > 0 => Some(Ok(format!("{t} ({n} rows)"))),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<sql::Result<_>>()?;
        if !busy.is_empty() {
            return Err(StoreError::MigrateRefused(format!(
                "{} is not empty: {}; migrate into an empty database",
                dest.db,
                busy.join(", ")
            )));
        }

        // A snapshot of the source for the whole copy.
        let snapshot_begun = self.conn.execute_batch("BEGIN DEFERRED");
        let copied = (|| -> Result<Vec<CopiedTable>> {
            let tx = dest.conn.write_tx()?;
            for (t, _) in TABLES {
                tx.execute_batch(&format!("ALTER TABLE {t} DISABLE TRIGGER USER"))?;
            }
            let mut tables = Vec::new();
            for (t, key) in TABLES {
                let cols = columns(&self.conn, t)?;
                let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
                let insert = format!(
                    "INSERT INTO {t} ({}) VALUES ({})",
                    cols.join(", "),
                    marks.join(", ")
                );
                let all = rows(&self.conn, t, &cols, key)?;
                let mut stmt = tx.prepare_cached(&insert)?;
                for row in &all {
                    stmt.execute(row.clone())?;
                }
                tables.push(CopiedTable {
                    table: t.to_string(),
                    rows: all.len() as u64,
                });
            }
            for (t, col) in IDENTITIES {
                tx.query_row(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{t}', '{col}'),
                                       COALESCE((SELECT MAX({col}) FROM {t}), 0) + 1, false)"
                    ),
                    [],
                    |_| Ok(()),
                )?;
            }
            for (t, _) in TABLES {
                tx.execute_batch(&format!("ALTER TABLE {t} ENABLE TRIGGER USER"))?;
            }
            crate::crash::point("migrate.before_commit");
            tx.commit()?;
            Ok(tables)
        })();
        if snapshot_begun.is_ok() {
            let _ = self.conn.execute_batch("COMMIT");
        }
        let tables = copied?;

        // The check: both read again, every value compared.
        for (t, key) in TABLES {
            let cols = columns(&self.conn, t)?;
            let (a, b) = (
                rows(&self.conn, t, &cols, key)?,
                rows(&dest.conn, t, &cols, key)?,
            );
            if a != b {
                let first = a
                    .iter()
                    .zip(&b)
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.len().min(b.len()));
                return Err(StoreError::MigrateRefused(format!(
                    "the copy of table {t} differs from the original ({} rows here, {} there; first difference at row {})",
                    a.len(),
                    b.len(),
                    first + 1
                )));
            }
        }
        let from = self.db.to_string();
        let tx = dest.conn.write_tx()?;
        event(
            &tx,
            operator,
            None,
            "store.migrated",
            &format!(
                "copied from SQLite {from}: {} orders, {} events; every row checked",
                tables
                    .iter()
                    .find(|t| t.table == "orders")
                    .map_or(0, |t| t.rows),
                tables
                    .iter()
                    .find(|t| t.table == "events")
                    .map_or(0, |t| t.rows)
            ),
        )?;
        tx.commit()?;
        Ok(Migrated {
            from,
            to: dest.db.to_string(),
            tables,
            checked: true,
        })
    }
}
