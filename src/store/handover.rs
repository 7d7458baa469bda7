//! Courier handover batches (交接): opening, scanning parcels in, closing.
//!
//! Architecture invariants:
//! - a batch id is handed out and committed when the batch opens, before any
//!   manifest shows it;
//! - a tracking number and an order are in at most one batch (UNIQUE columns);
//! - closing is one transaction: every parcel's order becomes `handed_over` and
//!   its write-back is enqueued in that same transaction, so a crash leaves
//!   either an open batch or a closed one with all its write-backs queued;
//! - a closed batch is immutable (triggers in `004_packing.sql`).

use super::sql;
use super::sql::{Connection, OptionalExtension, params};
use super::{Result, Store, event, now};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct HandoverRow {
    pub id: String,
    pub courier: String,
    pub state: String,
    pub opened_by: String,
    pub opened_at: String,
    pub closed_by: Option<String>,
    pub closed_at: Option<String>,
    pub manifest: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ParcelRow {
    pub batch_id: String,
    pub seq: u64,
    pub tracking_no: String,
    pub order_id: String,
    pub scanned_by: String,
    pub scanned_at: String,
}

/// A parcel of a closing batch, as the write-back needs it.
#[derive(Clone, Debug)]
pub struct ClosingParcel {
    pub order_id: String,
    pub order_version: u64,
    pub tracking_no: String,
}

/// A parcel taken out of a batch at close because its order must not ship.
#[derive(Clone, Debug, Serialize)]
pub struct Removed {
    pub order_id: String,
    pub tracking_no: String,
    pub reason: String,
}

const HANDOVER_COLUMNS: &str =
    "id, courier, state, opened_by, opened_at, closed_by, closed_at, manifest";

fn handover_row(r: &sql::Row<'_>) -> sql::Result<HandoverRow> {
    Ok(HandoverRow {
        id: r.get(0)?,
        courier: r.get(1)?,
        state: r.get(2)?,
        opened_by: r.get(3)?,
        opened_at: r.get(4)?,
        closed_by: r.get(5)?,
        closed_at: r.get(6)?,
        manifest: r.get(7)?,
    })
}

fn parcel_row(r: &sql::Row<'_>) -> sql::Result<ParcelRow> {
    Ok(ParcelRow {
        batch_id: r.get(0)?,
        seq: r.get(1)?,
        tracking_no: r.get(2)?,
        order_id: r.get(3)?,
        scanned_by: r.get(4)?,
        scanned_at: r.get(5)?,
    })
}

/// A parcel of a closing batch as read: seq, tracking number, order id,
/// order version, order state and reason, the number's state.
type ClosingRow = (
    u64,
    String,
    String,
    u64,
    String,
    Option<String>,
    Option<String>,
);

impl Store {
    /// Open a batch for a courier; its id is `COURIER-YYYYMMDD-NN` (`day` is the
    /// warehouse's local date), committed before anything shows it.
    pub fn open_handover(
        &mut self,
        courier: &str,
        day: &str,
        operator: &str,
    ) -> Result<HandoverRow> {
        let tx = self.write_tx()?;
        // One open batch per courier: two benches opening at once share it.
        let open: Option<String> = tx
            .query_row(
                "SELECT id FROM handovers WHERE state = 'open' AND courier = ?1 ORDER BY opened_at LIMIT 1",
                [courier],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = open {
            drop(tx);
            return self.handover(&id).map(|h| h.expect("just read"));
        }
        let prefix = format!("{courier}-{day}-");
        let n: u64 = tx.query_row(
            "SELECT COUNT(*) FROM handovers WHERE substr(id, 1, length(?1)) = ?1",
            [&prefix],
            |r| r.get(0),
        )?;
        let id = format!("{prefix}{:02}", n + 1);
        let at = now();
        tx.execute(
            "INSERT INTO handovers (id, courier, state, opened_by, opened_at) VALUES (?1, ?2, 'open', ?3, ?4)",
            params![id, courier, operator, at],
        )?;
        event(
            &tx,
            operator,
            None,
            "handover.opened",
            &format!("{id} for {courier}"),
        )?;
        tx.commit()?;
        self.handover(&id).map(|h| h.expect("just inserted"))
    }

    pub fn handover(&self, id: &str) -> Result<Option<HandoverRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {HANDOVER_COLUMNS} FROM handovers WHERE id = ?1"),
                [id],
                handover_row,
            )
            .optional()?)
    }

    /// The newest closed batch whose manifest was never recorded (a crash
    /// between the close commit and the PDF).
    pub fn unfinished_handover(&self) -> Result<Option<HandoverRow>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {HANDOVER_COLUMNS} FROM handovers WHERE state = 'closed' AND manifest IS NULL
                     ORDER BY closed_at DESC LIMIT 1"
                ),
                [],
                handover_row,
            )
            .optional()?)
    }

    /// Open batches, oldest first.
    pub fn open_handovers(&self) -> Result<Vec<HandoverRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {HANDOVER_COLUMNS} FROM handovers WHERE state = 'open' ORDER BY opened_at, id"
        ))?;
        let rows = stmt.query_map([], handover_row)?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    pub fn handover_parcels(&self, batch_id: &str) -> Result<Vec<ParcelRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT batch_id, seq, tracking_no, order_id, scanned_by, scanned_at
             FROM handover_parcels WHERE batch_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([batch_id], parcel_row)?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    /// The batch a tracking number or an order was scanned into, if any.
    pub fn parcel_for(&self, tracking_no: &str, order_id: &str) -> Result<Option<ParcelRow>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT batch_id, seq, tracking_no, order_id, scanned_by, scanned_at
                 FROM handover_parcels WHERE tracking_no = ?1 OR order_id = ?2",
            )?
            .query_row(params![tracking_no, order_id], parcel_row)
            .optional()?)
    }

    /// Parcels labelled for `courier` and still in the warehouse, not in any
    /// batch: (tracking number, order id, state), by payment time.
    pub fn waiting_for_courier(&self, courier: &str) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.number, o.id, o.state FROM tracking_numbers t JOIN orders o ON o.id = t.order_id
             WHERE t.courier = ?1 AND t.state = 'allocated' AND o.state IN ('printed', 'packed')
               AND NOT EXISTS (SELECT 1 FROM handover_parcels p WHERE p.order_id = o.id)
             ORDER BY o.paid_at, o.id",
        )?;
        let rows = stmt.query_map([courier], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    /// Add a parcel the caller checked, re-checking inside the write transaction
    /// what another process may have changed since (batch closed, number
    /// voided, order intercepted or set aside, parcel scanned elsewhere).
    /// `None`: something changed; nothing was written — check again.
    /// `require_packed`: only a packed order's parcel (`[handover]
    /// require_packed`); else a printed one too.
    pub fn add_parcel(
        &mut self,
        batch_id: &str,
        tracking_no: &str,
        order_id: &str,
        operator: &str,
        require_packed: bool,
    ) -> Result<Option<ParcelRow>> {
        let tx = self.write_tx()?;
        // The parcel's orders, riders of a merged parcel too, still ship.
        let still: bool = tx.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM handovers h, tracking_numbers t, orders o
                WHERE h.id = ?1 AND h.state = 'open' AND t.number = ?2 AND t.state = 'allocated'
                  AND t.courier = h.courier AND t.order_id = ?3 AND o.id = ?3
                  AND (o.state = 'packed' OR (o.state = 'printed' AND NOT ?4)))
             AND NOT EXISTS (SELECT 1 FROM handover_parcels WHERE tracking_no = ?2 OR order_id = ?3)
             AND NOT EXISTS (SELECT 1 FROM wave_orders w JOIN orders m ON m.id = w.order_id
                             WHERE {} AND NOT (m.state = 'packed' OR (m.state = 'printed' AND NOT ?4)))",
                super::waves::riders("?2")
            ),
            params![batch_id, tracking_no, order_id, require_packed],
            |r| r.get(0),
        )?;
        if !still {
            return Ok(None);
        }
        let seq: u64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM handover_parcels WHERE batch_id = ?1",
            [batch_id],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO handover_parcels (batch_id, seq, tracking_no, order_id, scanned_by, scanned_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![batch_id, seq, tracking_no, order_id, operator, now()],
        )?;
        event(
            &tx,
            operator,
            Some(order_id),
            "handover.scanned",
            &format!("{tracking_no} into {batch_id}"),
        )?;
        tx.commit()?;
        Ok(self
            .handover_parcels(batch_id)?
            .into_iter()
            .find(|p| p.seq == seq))
    }

    /// Close a batch in one transaction. A parcel whose order must no longer
    /// ship (intercepted, label outdated) is taken out and returned in
    /// `Removed`; every other order becomes `handed_over` and `enqueue` writes
    /// its write-back inside the same transaction. With `require_packed`, a
    /// parcel whose order is not packed (any more) is taken out too.
    pub fn close_handover(
        &mut self,
        batch_id: &str,
        operator: &str,
        closed_at: &str,
        require_packed: bool,
        mut enqueue: impl FnMut(&Connection, &ClosingParcel) -> Result<()>,
    ) -> Result<(Vec<ClosingParcel>, Vec<Removed>)> {
        let tx = self.write_tx()?;
        let parcels: Vec<ClosingRow> = {
            let mut stmt = tx.prepare(
                "SELECT p.seq, p.tracking_no, p.order_id, o.version, o.state, o.reason, t.state
                 FROM handover_parcels p JOIN orders o ON o.id = p.order_id
                 LEFT JOIN tracking_numbers t ON t.number = p.tracking_no
                 WHERE p.batch_id = ?1 ORDER BY p.seq",
            )?;
            stmt.query_map([batch_id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<sql::Result<_>>()?
        };
        let mut closing = Vec::new();
        let mut removed = Vec::new();
        for (seq, tracking_no, order_id, version, mut state, mut reason, number_state) in parcels {
            // A merged parcel ships whole: an order riding in it that may not
            // ship takes the parcel out.
            let riders: Vec<(String, u64, String, Option<String>)> = tx
                .prepare_cached(&format!(
                    "SELECT m.id, m.version, m.state, m.reason FROM wave_orders w
                     JOIN orders m ON m.id = w.order_id WHERE {} ORDER BY w.wave_id, w.seq",
                    super::waves::riders("?1")
                ))?
                .query_map([&tracking_no], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<sql::Result<_>>()?;
            if let Some((id, _, s, r)) = riders
                .iter()
                .find(|(_, _, s, _)| !(s == "packed" || (s == "printed" && !require_packed)))
                && matches!(state.as_str(), "packed" | "printed")
            {
                reason = Some(format!(
                    "order {id} of this parcel is {s}{}",
                    r.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
                ));
                state = s.clone();
            }
            let riders: Vec<(String, u64)> =
                riders.into_iter().map(|(id, v, _, _)| (id, v)).collect();
            let problem = match (state.as_str(), number_state.as_deref()) {
                (_, Some("voided")) => Some("its tracking number was voided".to_string()),
                ("packed", _) => None,
                ("printed", _) if !require_packed => None,
                ("printed", _) => {
                    Some("it was never checked at a packing bench (handover.require_packed)".into())
                }
                (other, _) => Some(match reason {
                    Some(r) => format!("order is {other}: {r}"),
                    None => format!("order is {other}"),
                }),
            };
            if let Some(reason) = problem {
                tx.execute(
                    "DELETE FROM handover_parcels WHERE batch_id = ?1 AND seq = ?2",
                    params![batch_id, seq],
                )?;
                event(
                    &tx,
                    operator,
                    Some(&order_id),
                    "handover.removed",
                    &format!("{tracking_no} taken out of {batch_id} at close: {reason}"),
                )?;
                removed.push(Removed {
                    order_id,
                    tracking_no,
                    reason,
                });
                continue;
            }
            tx.execute(
                "UPDATE orders SET state = 'handed_over', reason = NULL, updated = ?2 WHERE id = ?1",
                params![order_id, closed_at],
            )?;
            // The orders riding in its merged parcel go with it, each written
            // back on its own (one shipment naming the shared number each).
            for (rider, rider_version) in &riders {
                tx.execute(
                    "UPDATE orders SET state = 'handed_over', reason = NULL, updated = ?2 WHERE id = ?1",
                    params![rider, closed_at],
                )?;
                event(
                    &tx,
                    operator,
                    Some(rider),
                    "handover.handed_over",
                    &format!("{tracking_no} in {batch_id} (merged with order {order_id})"),
                )?;
                let parcel = ClosingParcel {
                    order_id: rider.clone(),
                    order_version: *rider_version,
                    tracking_no: tracking_no.clone(),
                };
                enqueue(&tx, &parcel)?;
                closing.push(parcel);
            }
            event(
                &tx,
                operator,
                Some(&order_id),
                "handover.handed_over",
                &format!("{tracking_no} in {batch_id}"),
            )?;
            let parcel = ClosingParcel {
                order_id,
                order_version: version,
                tracking_no,
            };
            enqueue(&tx, &parcel)?;
            closing.push(parcel);
        }
        if closing.is_empty() {
            // Every parcel was taken out: no empty manifest for the courier.
            // The removals stand; the batch stays open.
            tx.commit()?;
            return Ok((closing, removed));
        }
        tx.execute(
            "UPDATE handovers SET state = 'closed', closed_by = ?2, closed_at = ?3 WHERE id = ?1 AND state = 'open'",
            params![batch_id, operator, closed_at],
        )?;
        event(
            &tx,
            operator,
            None,
            "handover.closed",
            &format!(
                "{batch_id}: {} parcels handed over, {} taken out",
                closing.len(),
                removed.len()
            ),
        )?;
        crate::crash::point("handover.close.before_commit");
        tx.commit()?;
        Ok((closing, removed))
    }

    /// Record where a closed batch's manifest was written.
    pub fn set_manifest(&mut self, batch_id: &str, path: &str, operator: &str) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "UPDATE handovers SET manifest = ?2 WHERE id = ?1",
            params![batch_id, path],
        )?;
        event(
            &tx,
            operator,
            None,
            "handover.manifest",
            &format!("{batch_id}: {path}"),
        )?;
        tx.commit()?;
        Ok(())
    }
}
