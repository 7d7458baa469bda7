//! Returns intake (退货登记): what came back, recorded once, with the returns
//! flag queued in the same transaction.

use super::sql;
use super::sql::{OptionalExtension, params};
use super::{Result, Store, event, now};
use serde::Serialize;

/// One SKU of a receive, as asked: how many came back, and how many the
/// parcel held (the order's quantity), which the store checks against what
/// earlier receipts already took back.
#[derive(Clone, Debug)]
pub struct ReturnLine {
    pub sku: String,
    pub qty: u64,
    pub shipped: u64,
}

/// A receive to record.
#[derive(Clone, Debug)]
pub struct NewReturn<'a> {
    pub order_id: &'a str,
    pub lines: &'a [ReturnLine],
    pub condition: &'a str,
    pub reason: &'a str,
    pub bench: &'a str,
    pub operator: &'a str,
}

/// A returned line as recorded (for `show` and the day report).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReturnEntry {
    pub receipt: u64,
    pub order_id: String,
    pub tracking_no: String,
    pub courier: String,
    pub sku: String,
    pub qty: u64,
    pub condition: String,
    pub reason: String,
    pub bench: String,
    pub operator: String,
    pub received_at: String,
}

/// Why a receive was refused; nothing was recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReturnRefused {
    /// The order never left with a courier (no closed handover batch holds it).
    NotShipped { state: String },
    /// More of a SKU than the parcel held, counting earlier receipts.
    TooMany {
        sku: String,
        shipped: u64,
        already: u64,
        asked: u64,
    },
}

/// What `Store::record_return` recorded.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub receipt: u64,
    pub tracking_no: String,
    pub courier: String,
    pub order_version: u64,
}

impl Store {
    /// Record a receive in one transaction: the order must have left in a
    /// closed handover batch, and no SKU may come back more often than the
    /// parcel held it (earlier receipts count, so two benches receiving the
    /// same return at once cannot both take it). `enqueue` queues the returns
    /// flag in the same transaction, given the order's version, the receipt
    /// number, the courier and the number the parcel left under.
    pub fn record_return(
        &mut self,
        r: &NewReturn<'_>,
        enqueue: impl FnOnce(&sql::Connection, u64, u64, &str, &str) -> Result<()>,
    ) -> Result<std::result::Result<Recorded, ReturnRefused>> {
        let tx = self.write_tx()?;
        let at = now();
        let left: Option<(String, String)> = tx
            .query_row(
                "SELECT p.tracking_no, h.courier FROM handover_parcels p
                   JOIN handovers h ON h.id = p.batch_id
                  WHERE p.order_id = ?1 AND h.state = 'closed'",
                [r.order_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let (version, state): (u64, String) = tx.query_row(
            "SELECT version, state FROM orders WHERE id = ?1",
            [r.order_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let Some((tracking_no, courier)) = left else {
            return Ok(Err(ReturnRefused::NotShipped { state }));
        };
        for line in r.lines {
            let already: u64 = tx
                .prepare_cached(
                    "SELECT CAST(COALESCE(SUM(qty), 0) AS BIGINT) FROM returns WHERE order_id = ?1 AND sku = ?2",
                )?
                .query_row(params![r.order_id, line.sku], |row| row.get(0))?;
            if already.saturating_add(line.qty) > line.shipped {
                return Ok(Err(ReturnRefused::TooMany {
                    sku: line.sku.clone(),
                    shipped: line.shipped,
                    already,
                    asked: line.qty,
                }));
            }
        }
        let receipt: u64 = tx.query_row(
            "SELECT COALESCE(MAX(receipt), 0) + 1 FROM returns",
            [],
            |row| row.get(0),
        )?;
        for line in r.lines {
            tx.prepare_cached(
                "INSERT INTO returns (receipt, order_id, tracking_no, courier, sku, qty, condition,
                                      reason, bench, operator, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                receipt,
                r.order_id,
                tracking_no,
                courier,
                line.sku,
                line.qty,
                r.condition,
                r.reason,
                r.bench,
                r.operator,
                at
            ])?;
        }
        let what: Vec<String> = r
            .lines
            .iter()
            .map(|l| format!("{} ×{}", l.sku, l.qty))
            .collect();
        event(
            &tx,
            r.operator,
            Some(r.order_id),
            "returns.received",
            &format!(
                "receipt {receipt} at bench {}: {} ({}{}) from {courier} {tracking_no}",
                r.bench,
                what.join(", "),
                r.condition,
                if r.reason.is_empty() {
                    String::new()
                } else {
                    format!(", {}", r.reason)
                }
            ),
        )?;
        enqueue(&tx, version, receipt, &courier, &tracking_no)?;
        tx.commit()?;
        Ok(Ok(Recorded {
            receipt,
            tracking_no,
            courier,
            order_version: version,
        }))
    }

    /// Every returned line of an order, oldest first.
    pub fn returns_of(&self, order_id: &str) -> Result<Vec<ReturnEntry>> {
        self.returns_where("order_id = ?1", [order_id])
    }

    /// Every line received in [from, to) (RFC 3339 UTC instants), oldest first.
    pub fn returns_between(&self, from: &str, to: &str) -> Result<Vec<ReturnEntry>> {
        self.returns_where("received_at >= ?1 AND received_at < ?2", [from, to])
    }

    fn returns_where<P: sql::Params>(&self, filter: &str, p: P) -> Result<Vec<ReturnEntry>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT receipt, order_id, tracking_no, courier, sku, qty, condition, reason, bench,
                    operator, received_at
             FROM returns WHERE {filter} ORDER BY id"
        ))?;
        let rows = stmt.query_map(p, |r| {
            Ok(ReturnEntry {
                receipt: r.get(0)?,
                order_id: r.get(1)?,
                tracking_no: r.get(2)?,
                courier: r.get(3)?,
                sku: r.get(4)?,
                qty: r.get(5)?,
                condition: r.get(6)?,
                reason: r.get(7)?,
                bench: r.get(8)?,
                operator: r.get(9)?,
                received_at: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }
}
