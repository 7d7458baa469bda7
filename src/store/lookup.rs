//! Read-only questions customer service asks about one order ("has it been
//! printed / packed / shipped?"), answered from every table that knows.

use super::sql;
use super::sql::params;
use super::{Result, Store};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct WaveEntry {
    pub wave_id: i64,
    pub order_version: u64,
    pub tracking_no: String,
    pub printed_at: Option<String>,
    pub waybill_file: Option<String>,
    pub slip_file: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PackingEntry {
    pub order_version: u64,
    pub tracking_no: String,
    pub bench: String,
    pub operator: String,
    pub packed_at: String,
    pub shop_checked: bool,
    /// Grams on the bench scale, when the parcel was weighed.
    pub weight_g: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HandoverEntry {
    pub batch_id: String,
    pub courier: String,
    pub batch_state: String,
    pub tracking_no: String,
    pub scanned_by: String,
    pub scanned_at: String,
    pub closed_at: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WriteBackEntry {
    pub kind: String,
    pub state: String,
    pub attempts: u64,
    pub last_error: Option<String>,
    pub next_attempt_at: String,
    pub created_at: String,
    pub done_at: Option<String>,
}

impl Store {
    /// Order ids matching a query: an order id, a tracking number (live or
    /// void; every order a merged parcel shipped under it), or a buyer's nick (every order of that buyer, newest payment first).
    pub fn find_orders(&self, query: &str) -> Result<Vec<String>> {
        let q = query.trim();
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM orders WHERE id = ?1
             UNION SELECT order_id FROM tracking_numbers WHERE number = ?1
             UNION SELECT order_id FROM wave_orders WHERE tracking_no = ?1",
        )?;
        let direct: Vec<String> = stmt
            .query_map([q], |r| r.get(0))?
            .collect::<sql::Result<_>>()?;
        if !direct.is_empty() {
            return Ok(direct);
        }
        let mut stmt = self.conn.prepare_cached(if self.conn.is_postgres() {
            "SELECT id FROM orders WHERE CAST(payload AS jsonb) #>> '{buyer,nick}' = ?1
             ORDER BY paid_at DESC, id"
        } else {
            "SELECT id FROM orders WHERE json_extract(payload, '$.buyer.nick') = ?1
             ORDER BY paid_at DESC, id"
        })?;
        let rows = stmt.query_map([q], |r| r.get(0))?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    pub fn waves_of(&self, order_id: &str) -> Result<Vec<WaveEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT wave_id, order_version, tracking_no, printed_at, waybill_file, slip_file
             FROM wave_orders WHERE order_id = ?1 ORDER BY wave_id",
        )?;
        let rows = stmt.query_map([order_id], |r| {
            Ok(WaveEntry {
                wave_id: r.get(0)?,
                order_version: r.get(1)?,
                tracking_no: r.get(2)?,
                printed_at: r.get(3)?,
                waybill_file: r.get(4)?,
                slip_file: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    pub fn packings_of(&self, order_id: &str) -> Result<Vec<PackingEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT order_version, tracking_no, bench, operator, packed_at, shop_checked, weight_g
             FROM packings WHERE order_id = ?1 ORDER BY packed_at",
        )?;
        let rows = stmt.query_map([order_id], |r| {
            Ok(PackingEntry {
                order_version: r.get(0)?,
                tracking_no: r.get(1)?,
                bench: r.get(2)?,
                operator: r.get(3)?,
                packed_at: r.get(4)?,
                shop_checked: r.get(5)?,
                weight_g: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    pub fn handover_of(&self, order_id: &str) -> Result<Vec<HandoverEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT h.id, h.courier, h.state, p.tracking_no, p.scanned_by, p.scanned_at, h.closed_at
             FROM handover_parcels p JOIN handovers h ON h.id = p.batch_id
             WHERE p.order_id = ?1",
        )?;
        let rows = stmt.query_map(params![order_id], |r| {
            Ok(HandoverEntry {
                batch_id: r.get(0)?,
                courier: r.get(1)?,
                batch_state: r.get(2)?,
                tracking_no: r.get(3)?,
                scanned_by: r.get(4)?,
                scanned_at: r.get(5)?,
                closed_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    pub fn write_backs_of(&self, order_id: &str) -> Result<Vec<WriteBackEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind, state, attempts, last_error, next_attempt_at, created_at, done_at
             FROM outbox WHERE order_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([order_id], |r| {
            Ok(WriteBackEntry {
                kind: r.get(0)?,
                state: r.get(1)?,
                attempts: r.get(2)?,
                last_error: r.get(3)?,
                next_attempt_at: r.get(4)?,
                created_at: r.get(5)?,
                done_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }
}
