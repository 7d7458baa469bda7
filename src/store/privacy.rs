//! Privacy retention: recipient personal data of shipped orders is removed after
//! the retention period, keeping order ids, tracking numbers and the audit trail.

use super::sql;
use super::sql::params;
use super::{Result, Store, event};
use serde_json::Value;

/// What a purge removed, and the files the caller must clean.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Purged {
    pub orders: Vec<String>,
    /// Wave PDF files whose every order was purged: the caller deletes them.
    pub files: Vec<String>,
    /// Wave PDF files that also hold orders not purged: where each order's
    /// pages start, and whether it was purged (ever, not only now). The
    /// caller blanks the purged orders' pages.
    pub mixed: Vec<MixedFile>,
    /// Every order ever purged: their reprint files go too.
    pub all_purged: Vec<String>,
    /// Where waves wrote their files (reprints live under `DIR/reprints`).
    pub out_dirs: Vec<String>,
    /// Handover batches holding an order purged now: their manifests are
    /// written again from the purged data.
    pub batches: Vec<String>,
}

/// A wave file shared by purged and kept orders.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MixedFile {
    pub file: String,
    /// (first page, purged) per order, by page.
    pub starts: Vec<(u32, bool)>,
}

impl MixedFile {
    /// The pages of purged orders: each order's pages run to the next
    /// order's first page, the last one to the end of the file (`pages`).
    pub fn purged_pages(&self, pages: u32) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, &(start, purged)) in self.starts.iter().enumerate() {
            let end = self.starts.get(i + 1).map_or(pages, |&(next, _)| next - 1);
            if purged {
                out.extend(start..=end.max(start));
            }
        }
        out
    }
}

/// Blank the personal fields of one stored order JSON: recipient, buyer, memo
/// texts, gift message and invoice title.
fn scrub(payload: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(payload).ok()?;
    if let Some(r) = v.get_mut("recipient").and_then(Value::as_object_mut) {
        for k in ["name", "phone", "address"] {
            r.insert(k.into(), Value::String(String::new()));
        }
        r.remove("postcode");
    }
    // Memos often carry a changed address and phone ("改地址为 … 138…"); gift
    // messages and invoice titles name people too.
    if let Some(memos) = v.get_mut("memos").and_then(Value::as_array_mut) {
        for m in memos.iter_mut().filter_map(Value::as_object_mut) {
            m.insert("text".into(), Value::String(String::new()));
        }
    }
    if let Some(o) = v.get_mut("options").and_then(Value::as_object_mut) {
        o.remove("gift_message");
        o.remove("invoice_title");
    }
    if let Some(b) = v.get_mut("buyer").and_then(Value::as_object_mut) {
        b.insert("nick".into(), Value::String(String::new()));
        b.remove("message");
    }
    Some(v.to_string())
}

impl Store {
    /// Remove recipient and buyer personal data of orders handed over in a
    /// batch closed before `before` (UTC RFC 3339), in one transaction, with
    /// freed pages zeroed (`secure_delete`); then checkpoint the WAL and
    /// VACUUM so no copy stays in the WAL or in free pages.
    pub fn purge_personal_data(&mut self, before: &str, operator: &str) -> Result<Purged> {
        if !self.conn.is_postgres() {
            self.conn.execute_batch("PRAGMA secure_delete = ON")?;
        }
        let tx = self.write_tx()?;
        let rows: Vec<(String, String, Option<String>)> = {
            let mut stmt = tx.prepare(
                "SELECT o.id, o.payload, o.printed_payload FROM orders o
                 JOIN handover_parcels p ON p.order_id = o.id JOIN handovers h ON h.id = p.batch_id
                 WHERE h.state = 'closed' AND h.closed_at < ?1
                   AND NOT EXISTS (SELECT 1 FROM events e WHERE e.order_id = o.id AND e.action = 'privacy.purged')",
            )?;
            stmt.query_map([before], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<sql::Result<_>>()?
        };
        let mut out = Purged::default();
        for (id, payload, printed) in rows {
            let payload = scrub(&payload).unwrap_or(payload);
            let printed = printed.map(|p| scrub(&p).unwrap_or(p));
            tx.execute(
                "UPDATE orders SET payload = ?2, printed_payload = ?3 WHERE id = ?1",
                params![id, payload, printed],
            )?;
            tx.execute("DELETE FROM rejections WHERE key = ?1", [&id])?;
            event(
                &tx,
                operator,
                Some(&id),
                "privacy.purged",
                &format!("recipient and buyer personal data removed (shipped before {before})"),
            )?;
            out.orders.push(id);
        }
        // Wave files whose every order has now been purged.
        let mut stmt = tx.prepare(
            "SELECT w.f FROM (SELECT waybill_file AS f, order_id AS o FROM wave_orders WHERE waybill_file IS NOT NULL
                              UNION ALL SELECT slip_file, order_id FROM wave_orders WHERE slip_file IS NOT NULL) w
             GROUP BY w.f
             HAVING SUM(CASE WHEN EXISTS (SELECT 1 FROM events e WHERE e.order_id = w.o
                                    AND e.action = 'privacy.purged') THEN 0 ELSE 1 END) = 0",
        )?;
        out.files = stmt
            .query_map([], |r| r.get(0))?
            .collect::<sql::Result<_>>()?;
        drop(stmt);
        let purged_ever = "EXISTS (SELECT 1 FROM events e WHERE e.order_id = w.o AND e.action = 'privacy.purged')";
        let pages: Vec<(String, u32, bool)> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT w.f, w.p, {purged_ever} FROM
                   (SELECT waybill_file AS f, waybill_page AS p, order_id AS o FROM wave_orders WHERE waybill_file IS NOT NULL
                    UNION ALL SELECT slip_file, slip_page, order_id FROM wave_orders WHERE slip_file IS NOT NULL) w
                 WHERE w.f IN (SELECT f FROM (SELECT waybill_file AS f, order_id AS o FROM wave_orders
                                              UNION ALL SELECT slip_file, order_id FROM wave_orders) w
                               WHERE f IS NOT NULL GROUP BY f
                               HAVING SUM(CASE WHEN {purged_ever} THEN 1 ELSE 0 END) > 0
                                  AND SUM(CASE WHEN {purged_ever} THEN 0 ELSE 1 END) > 0)
                 ORDER BY w.f, w.p"
            ))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<sql::Result<_>>()?
        };
        for (file, page, purged) in pages {
            match out.mixed.last_mut() {
                Some(m) if m.file == file => m.starts.push((page, purged)),
                _ => out.mixed.push(MixedFile {
                    file,
                    starts: vec![(page, purged)],
                }),
            }
        }
        out.all_purged = tx
            .prepare("SELECT DISTINCT order_id FROM events WHERE action = 'privacy.purged' AND order_id IS NOT NULL")?
            .query_map([], |r| r.get(0))?
            .collect::<sql::Result<_>>()?;
        out.out_dirs = tx
            .prepare("SELECT DISTINCT out_dir FROM waves")?
            .query_map([], |r| r.get(0))?
            .collect::<sql::Result<_>>()?;
        {
            let mut stmt =
                tx.prepare("SELECT DISTINCT batch_id FROM handover_parcels WHERE order_id = ?1")?;
            let mut batches = std::collections::BTreeSet::new();
            for id in &out.orders {
                for b in stmt.query_map([id], |r| r.get::<_, String>(0))? {
                    batches.insert(b?);
                }
            }
            out.batches = batches.into_iter().collect();
        }
        tx.commit()?;
        if self.conn.is_postgres() {
            // The old row versions go now; their bytes are overwritten as
            // PostgreSQL reuses the pages (WAL archives, if kept, hold copies).
            self.conn.execute_batch("VACUUM orders, events")?;
        } else {
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            self.conn.execute_batch("VACUUM")?;
        }
        Ok(out)
    }
}
