//! Packing benches: which order is open at which bench, the items scanned for
//! it, and the packing itself.
//!
//! Architecture invariant: a parcel is packed only while its order is
//! `printed` at exactly the version whose label the bench paired (the
//! `UPDATE ... WHERE state = 'printed' AND version = ?` guard), so a change
//! that arrived from the shop between the scan and the commit is never packed.

use super::sql;
use super::sql::{OptionalExtension, params};
use super::{Result, Store, event, now};

/// The order open at a bench.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchSession {
    pub operator: String,
    pub order_id: Option<String>,
    pub order_version: Option<u64>,
    /// The order the bench worked on last: the open one, else the one it
    /// closed last (after a STOP or an INTERCEPT).
    pub last_order_id: Option<String>,
}

/// The weight a parcel was packed with, inside a caller's transaction.
pub(crate) fn packed_weight(
    tx: &sql::Connection,
    order_id: &str,
    tracking_no: &str,
) -> Result<Option<u64>> {
    Ok(tx
        .prepare_cached("SELECT weight_g FROM packings WHERE order_id = ?1 AND tracking_no = ?2")?
        .query_row(params![order_id, tracking_no], |r| {
            r.get::<_, Option<u64>>(0)
        })
        .optional()?
        .flatten())
}

impl Store {
    pub fn bench_session(&self, bench: &str) -> Result<Option<BenchSession>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT operator, order_id, order_version, last_order_id FROM bench_sessions WHERE bench = ?1",
            )?
            .query_row([bench], |r| {
                Ok(BenchSession {
                    operator: r.get(0)?,
                    order_id: r.get(1)?,
                    order_version: r.get(2)?,
                    last_order_id: r.get(3)?,
                })
            })
            .optional()?)
    }

    /// Put an order on a bench (or clear it with `None`), recording why.
    pub fn set_bench_order(
        &mut self,
        bench: &str,
        operator: &str,
        order: Option<(&str, u64)>,
        action: &str,
        detail: &str,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT INTO bench_sessions (bench, operator, order_id, order_version, updated, last_order_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?3)
             ON CONFLICT (bench) DO UPDATE SET operator = ?2, order_id = ?3, order_version = ?4, updated = ?5,
                 last_order_id = COALESCE(?3, bench_sessions.order_id, bench_sessions.last_order_id)",
            params![bench, operator, order.map(|o| o.0), order.map(|o| o.1), now()],
        )?;
        event(&tx, operator, order.map(|o| o.0), action, detail)?;
        tx.commit()?;
        Ok(())
    }

    /// Scanned counts per item index of one order version (missing = 0).
    pub fn tallies(&self, order_id: &str, version: u64, items: usize) -> Result<Vec<u64>> {
        let mut out = vec![0; items];
        let mut stmt = self.conn.prepare_cached(
            "SELECT item, scanned FROM pack_tallies WHERE order_id = ?1 AND order_version = ?2",
        )?;
        for row in stmt.query_map(params![order_id, version], |r| {
            Ok((r.get::<_, usize>(0)?, r.get::<_, u64>(1)?))
        })? {
            let (item, n) = row?;
            if let Some(slot) = out.get_mut(item) {
                *slot = n;
            }
        }
        Ok(out)
    }

    /// Count one scan of item `item`, unless it already reached `qty`.
    /// Returns the new count, or `None` when it was already complete.
    pub fn tally_item(
        &mut self,
        order_id: &str,
        version: u64,
        item: usize,
        qty: u64,
        operator: &str,
        detail: &str,
    ) -> Result<Option<u64>> {
        let tx = self.write_tx()?;
        let current: u64 = tx
            .prepare_cached(
                "SELECT scanned FROM pack_tallies WHERE order_id = ?1 AND order_version = ?2 AND item = ?3",
            )?
            .query_row(params![order_id, version, item], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        if current >= qty {
            return Ok(None);
        }
        tx.prepare_cached(
            "INSERT INTO pack_tallies (order_id, order_version, item, scanned) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (order_id, order_version, item) DO UPDATE SET scanned = pack_tallies.scanned + 1",
        )?
        .execute(params![order_id, version, item])?;
        event(&tx, operator, Some(order_id), "bench.item", detail)?;
        tx.commit()?;
        Ok(Some(current + 1))
    }

    /// Mark the parcel packed. `false` when the order (or an order riding in
    /// its merged parcel) is no longer `printed` at its version (it changed
    /// under the bench): nothing was written.
    #[allow(clippy::too_many_arguments)]
    pub fn mark_packed(
        &mut self,
        bench: &str,
        operator: &str,
        (order_id, version): (&str, u64),
        riders: &[(String, u64)],
        tracking_no: &str,
        shop_checked: bool,
        weight_g: Option<u64>,
        detail: &str,
    ) -> Result<bool> {
        let tx = self.write_tx()?;
        let at = now();
        // The order and, in a merged parcel, every order riding with it: all
        // packed at the versions the bench checked, or none.
        for (id, version) in std::iter::once((order_id, version))
            .chain(riders.iter().map(|(id, v)| (id.as_str(), *v)))
        {
            let n = tx.execute(
                "UPDATE orders SET state = 'packed', reason = NULL, updated = ?3
                 WHERE id = ?1 AND version = ?2 AND state = 'printed'",
                params![id, version, at],
            )?;
            if n == 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO packings
                     (order_id, order_version, tracking_no, bench, operator, packed_at, shop_checked, weight_g)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (order_id, tracking_no) DO UPDATE SET order_version = ?2, bench = ?4,
                     operator = ?5, packed_at = ?6, shop_checked = ?7, weight_g = ?8",
                params![
                    id,
                    version,
                    tracking_no,
                    bench,
                    operator,
                    at,
                    shop_checked,
                    weight_g
                ],
            )?;
            if id != order_id {
                event(
                    &tx,
                    operator,
                    Some(id),
                    "bench.packed",
                    &format!("{detail} (merged with order {order_id})"),
                )?;
            }
        }
        tx.execute(
            "UPDATE bench_sessions SET last_order_id = COALESCE(order_id, last_order_id),
                 order_id = NULL, order_version = NULL, updated = ?2
             WHERE bench = ?1",
            params![bench, at],
        )?;
        event(&tx, operator, Some(order_id), "bench.packed", detail)?;
        crate::crash::point("bench.pack.before_commit");
        tx.commit()?;
        crate::crash::point("bench.packed");
        Ok(true)
    }
}

/// What `Store::mark_short` did.
#[derive(Clone, Debug)]
pub struct Shorted {
    /// The live number that was voided, if the order had one.
    pub voided: Option<(String, String)>,
    pub order_version: u64,
}

impl Store {
    /// Set an order aside as out of stock (缺货), in one transaction: the order
    /// becomes `out_of_stock` with `reason`, its live number is voided, it is
    /// taken off any bench and out of any open handover batch, and `enqueue`
    /// queues the exception-flag write-back. `None` when the order is not in a
    /// state that can be set aside (the caller says why).
    pub fn mark_short(
        &mut self,
        order_id: &str,
        reason: &str,
        operator: &str,
        enqueue: impl FnOnce(&sql::Connection, u64, Option<(&str, &str)>) -> Result<()>,
    ) -> Result<Option<Shorted>> {
        let tx = self.write_tx()?;
        let at = now();
        let version: Option<u64> = tx
            .query_row(
                "SELECT version FROM orders WHERE id = ?1
                   AND state IN ('queued', 'printed', 'packed', 'changed_after_print')",
                [order_id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(version) = version else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE orders SET state = 'out_of_stock', reason = ?2, updated = ?3 WHERE id = ?1",
            params![order_id, reason, at],
        )?;
        let live: Option<(String, String)> = tx
            .query_row(
                "SELECT number, courier FROM tracking_numbers WHERE order_id = ?1 AND state = 'allocated'",
                [order_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((number, _)) = &live {
            tx.execute(
                "UPDATE tracking_numbers SET state = 'voided', voided_at = ?2, void_reason = ?3
                 WHERE number = ?1",
                params![number, at, format!("out of stock: {reason}")],
            )?;
            event(
                &tx,
                operator,
                Some(order_id),
                "tracking.voided",
                &format!("{number}: out of stock: {reason}"),
            )?;
        }
        tx.execute(
            "UPDATE bench_sessions SET order_id = NULL, order_version = NULL, updated = ?2 WHERE order_id = ?1",
            params![order_id, at],
        )?;
        tx.execute(
            "DELETE FROM handover_parcels WHERE order_id = ?1
               AND batch_id IN (SELECT id FROM handovers WHERE state = 'open')",
            [order_id],
        )?;
        event(&tx, operator, Some(order_id), "bench.short", reason)?;
        enqueue(
            &tx,
            version,
            live.as_ref().map(|(n, c)| (n.as_str(), c.as_str())),
        )?;
        tx.commit()?;
        Ok(Some(Shorted {
            voided: live,
            order_version: version,
        }))
    }
}
