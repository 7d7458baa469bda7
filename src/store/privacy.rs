//! Privacy retention: recipient personal data of shipped orders is removed after
//! the retention period, keeping order ids, tracking numbers and the audit trail.

use super::{Result, Store, event};
use rusqlite::params;
use serde_json::Value;

/// What a purge removed.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Purged {
    pub orders: Vec<String>,
    /// Wave PDF files whose every order was purged: the caller deletes them.
    pub files: Vec<String>,
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
        self.conn.pragma_update(None, "secure_delete", "ON")?;
        let tx = self.write_tx()?;
        let rows: Vec<(String, String, Option<String>)> = {
            let mut stmt = tx.prepare(
                "SELECT o.id, o.payload, o.printed_payload FROM orders o
                 JOIN handover_parcels p ON p.order_id = o.id JOIN handovers h ON h.id = p.batch_id
                 WHERE h.state = 'closed' AND h.closed_at < ?1
                   AND NOT EXISTS (SELECT 1 FROM events e WHERE e.order_id = o.id AND e.action = 'privacy.purged')",
            )?;
            stmt.query_map([before], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?
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
             HAVING SUM(NOT EXISTS (SELECT 1 FROM events e WHERE e.order_id = w.o
                                    AND e.action = 'privacy.purged')) = 0",
        )?;
        out.files = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        tx.commit()?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.conn.execute_batch("VACUUM")?;
        Ok(out)
    }
}
