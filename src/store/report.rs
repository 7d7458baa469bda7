//! Read-only figures for the end-of-day report and the dispatch warnings.
//! Times are UTC RFC 3339 strings, so a day window is a string range.

use super::sql;
use super::sql::params;
use super::{Result, Store};
use serde::Serialize;

/// An order still in the warehouse (not handed over, not set aside for good).
#[derive(Clone, Debug, Serialize)]
pub struct InWarehouse {
    pub order_id: String,
    pub state: String,
    pub reason: Option<String>,
    /// UTC RFC 3339.
    pub paid_at: Option<String>,
    pub tracking_no: Option<String>,
    pub courier: Option<String>,
}

/// One courier batch closed in the window.
#[derive(Clone, Debug, Serialize)]
pub struct BatchCount {
    pub batch_id: String,
    pub courier: String,
    pub parcels: u64,
    pub closed_at: String,
    pub closed_by: String,
}

/// Packing figures of one bench or one operator in the window.
#[derive(Clone, Debug, Serialize)]
pub struct PackRate {
    pub bench: String,
    pub operator: String,
    pub parcels: u64,
    pub first: String,
    pub last: String,
}

/// Counts for `serve`'s `/metrics` and `/healthz`, read at scrape time.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Gauges {
    /// Orders per state.
    pub orders: Vec<(String, u64)>,
    /// Waves per state (open, done).
    pub waves: Vec<(String, u64)>,
    /// Orders printed in waves (each counted once per wave it was printed in).
    pub wave_orders_printed: u64,
    /// Print jobs per state (sending, sent, completed, failed).
    pub print_jobs: Vec<(String, u64)>,
}

impl Store {
    /// The counts `/metrics` shows; cheap (grouped counts on indexed tables).
    pub fn gauges(&self) -> Result<Gauges> {
        let grouped = |sql: &str| -> Result<Vec<(String, u64)>> {
            let mut stmt = self.conn.prepare_cached(sql)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<sql::Result<_>>()?)
        };
        Ok(Gauges {
            orders: grouped("SELECT state, COUNT(*) FROM orders GROUP BY state ORDER BY state")?,
            waves: grouped("SELECT state, COUNT(*) FROM waves GROUP BY state ORDER BY state")?,
            wave_orders_printed: self.conn.query_row(
                "SELECT COUNT(*) FROM wave_orders WHERE printed_at IS NOT NULL",
                [],
                |r| r.get(0),
            )?,
            print_jobs: grouped(
                "SELECT state, COUNT(*) FROM print_jobs GROUP BY state ORDER BY state",
            )?,
        })
    }

    /// Orders refunded or closed after the courier took them (an outbox alert):
    /// the courier must be asked to intercept (拦截) them.
    pub fn recall_from_courier(&self) -> Result<Vec<(String, Option<String>, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT o.id, o.reason, p.batch_id FROM orders o
             JOIN handover_parcels p ON p.order_id = o.id JOIN handovers h ON h.id = p.batch_id
             WHERE o.state = 'intercept' AND h.state = 'closed' ORDER BY o.id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    /// Orders in the warehouse that the courier has not taken yet, oldest payment first:
    /// queued, printed, packed, changed after print, intercepted, out of stock.
    pub fn in_warehouse(&self) -> Result<Vec<InWarehouse>> {
        let mut stmt = self.conn.prepare(
            "SELECT o.id, o.state, o.reason, o.paid_at, t.number, t.courier
             FROM orders o LEFT JOIN tracking_numbers t ON t.order_id = o.id AND t.state = 'allocated'
             WHERE o.state IN ('queued', 'printed', 'packed', 'changed_after_print', 'intercept', 'out_of_stock')
               AND NOT EXISTS (SELECT 1 FROM handover_parcels p JOIN handovers h ON h.id = p.batch_id
                               WHERE p.order_id = o.id AND h.state = 'closed')
             ORDER BY o.paid_at, o.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(InWarehouse {
                order_id: r.get(0)?,
                state: r.get(1)?,
                reason: r.get(2)?,
                paid_at: r.get(3)?,
                tracking_no: r.get(4)?,
                courier: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    /// Distinct orders whose state became `new` in [from, to) (`None`: orders
    /// taken in), from the `state_changes` the database records itself.
    pub fn orders_changed_to(
        &self,
        new: Option<&str>,
        from: &str,
        to: &str,
    ) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT order_id FROM state_changes
             WHERE at >= ?2 AND at < ?3
               AND ((CAST(?1 AS TEXT) IS NULL AND old IS NULL) OR new = ?1)
             ORDER BY order_id",
        )?;
        let rows = stmt.query_map(params![new, from, to], |r| r.get(0))?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    /// Distinct orders with an event `action` in [from, to), optionally only
    /// events whose detail contains `detail_has`.
    pub fn orders_with_event(
        &self,
        action: &str,
        detail_has: Option<&str>,
        from: &str,
        to: &str,
    ) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT order_id FROM events
             WHERE action = ?1 AND at >= ?2 AND at < ?3 AND order_id IS NOT NULL
               AND (CAST(?4 AS TEXT) IS NULL OR instr(detail, ?4) > 0)
             ORDER BY order_id",
        )?;
        let rows = stmt.query_map(params![action, from, to, detail_has], |r| r.get(0))?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    /// Rejections first seen in [from, to).
    pub fn rejections_between(&self, from: &str, to: &str) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM rejections WHERE first_seen >= ?1 AND first_seen < ?2",
            params![from, to],
            |r| r.get(0),
        )?)
    }

    pub fn batches_closed_between(&self, from: &str, to: &str) -> Result<Vec<BatchCount>> {
        let mut stmt = self.conn.prepare(
            "SELECT h.id, h.courier, COUNT(p.seq), h.closed_at, h.closed_by
             FROM handovers h LEFT JOIN handover_parcels p ON p.batch_id = h.id
             WHERE h.state = 'closed' AND h.closed_at >= ?1 AND h.closed_at < ?2
             GROUP BY h.id ORDER BY h.closed_at, h.id",
        )?;
        let rows = stmt.query_map(params![from, to], |r| {
            Ok(BatchCount {
                batch_id: r.get(0)?,
                courier: r.get(1)?,
                parcels: r.get(2)?,
                closed_at: r.get(3)?,
                closed_by: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    /// Packings in [from, to) per (bench, operator).
    pub fn pack_rates(&self, from: &str, to: &str) -> Result<Vec<PackRate>> {
        let mut stmt = self.conn.prepare(
            "SELECT bench, operator, COUNT(*), MIN(packed_at), MAX(packed_at) FROM packings
             WHERE packed_at >= ?1 AND packed_at < ?2
             GROUP BY bench, operator ORDER BY bench, operator",
        )?;
        let rows = stmt.query_map(params![from, to], |r| {
            Ok(PackRate {
                bench: r.get(0)?,
                operator: r.get(1)?,
                parcels: r.get(2)?,
                first: r.get(3)?,
                last: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }
}
