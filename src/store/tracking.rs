//! Tracking numbers: allocation from per-courier pools, and voiding.
//!
//! Architecture invariant: a number is allocated and committed (with
//! `synchronous=FULL`, so it survives power loss) before anything renders it,
//! and the `number` primary key makes issuing it twice impossible. An order
//! holds at most one live number; asking again for the same order version
//! returns the same number, which is what makes a crashed wave resumable.

use super::sql;
use super::sql::{OptionalExtension, Transaction, params};
use super::{Result, Store, StoreError, event, now};
use crate::config::{Courier, Pool};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Allocation {
    pub order_id: String,
    pub courier: String,
    pub number: String,
    /// True when the order already held a live number for this version.
    pub reused: bool,
    /// A number voided to make way for this one (the order changed after print).
    pub voided: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackingNumber {
    pub number: String,
    pub courier: String,
    pub order_id: String,
    pub order_version: u64,
    pub state: String,
    pub void_reason: Option<String>,
}

impl Store {
    /// Give each order a tracking number of its courier, in one durable
    /// transaction. An order that already holds a live number for its current
    /// version keeps it; one whose live number belongs to an older version gets
    /// a new number and the old one is voided.
    pub fn allocate(
        &mut self,
        orders: &[(&str, &Courier)],
        operator: &str,
    ) -> Result<Vec<Allocation>> {
        let tx = self.write_tx()?;
        let mut out = Vec::with_capacity(orders.len());
        for (order_id, courier) in orders {
            out.push(allocate_one(&tx, order_id, courier, operator)?);
        }
        tx.commit()?;
        Ok(out)
    }

    /// Void a number so it is never used again (作废). A merged parcel's
    /// number sends all its orders back to the queue.
    pub fn void(&mut self, number: &str, reason: &str, operator: &str) -> Result<TrackingNumber> {
        let tx = self.write_tx()?;
        let n = tx.execute(
            "UPDATE tracking_numbers SET state = 'voided', voided_at = ?2, void_reason = ?3
             WHERE number = ?1 AND state = 'allocated'",
            params![number, now(), reason],
        )?;
        let row =
            tracking_row(&tx, number)?.ok_or_else(|| StoreError::UnknownTracking(number.into()))?;
        if n == 0 {
            return Err(StoreError::AlreadyVoided(number.into()));
        }
        event(
            &tx,
            operator,
            Some(&row.order_id),
            "tracking.voided",
            &format!("{number}: {reason}"),
        )?;
        // A merged parcel's label is void for all its orders: they go back
        // to the queue together and print again (merged again).
        let riders: Vec<String> = tx
            .prepare(&format!(
                "SELECT w.order_id FROM wave_orders w WHERE {}",
                super::waves::riders("?1")
            ))?
            .query_map([number], |r| r.get(0))?
            .collect::<sql::Result<_>>()?;
        if !riders.is_empty() {
            let mut all = vec![row.order_id.clone()];
            all.extend(riders);
            super::waves::split_parcel_in(&tx, number, &all, reason, operator)?;
        }
        tx.commit()?;
        Ok(row)
    }

    /// (order id, courier, number) of every live number on a printed order,
    /// for the shop's bulk-shipping upload; the orders riding in a merged
    /// parcel (合并发货) are listed with its number, after its lead.
    pub fn live_tracking(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT order_id, courier, number FROM (
                 SELECT t.order_id, t.courier, t.number, t.allocated_at AS at, 0 AS rider, t.number AS n
                 FROM tracking_numbers t JOIN orders o ON o.id = t.order_id
                 WHERE t.state = 'allocated' AND o.state IN ('printed', 'packed', 'handed_over', 'shipped')
                 UNION ALL
                 SELECT w.order_id, t.courier, t.number, t.allocated_at, 1, t.number
                 FROM tracking_numbers t JOIN orders lead ON lead.id = t.order_id
                 JOIN wave_orders w ON w.tracking_no = t.number
                 JOIN orders o ON o.id = w.order_id
                 WHERE t.state = 'allocated' AND lead.state IN ('printed', 'packed', 'handed_over', 'shipped')
                   AND o.state IN ('printed', 'packed', 'handed_over', 'shipped') AND {}
             ) x ORDER BY at, n, rider, order_id",
            super::waves::riders("t.number")
        ))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }

    /// Whether a number is issued and not void.
    pub fn is_live_tracking(&self, number: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM tracking_numbers WHERE number = ?1 AND state = 'allocated')")?
            .query_row([number], |r| r.get(0))?)
    }

    /// One number, live or void.
    pub fn tracking(&self, number: &str) -> Result<Option<TrackingNumber>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT number, courier, order_id, order_version, state, void_reason
                 FROM tracking_numbers WHERE number = ?1",
            )?
            .query_row([number], row_to_tracking)
            .optional()?)
    }

    /// The order's live number, if it has one.
    pub fn live_number(&self, order_id: &str) -> Result<Option<TrackingNumber>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT number, courier, order_id, order_version, state, void_reason
                 FROM tracking_numbers WHERE order_id = ?1 AND state = 'allocated'",
            )?
            .query_row([order_id], row_to_tracking)
            .optional()?)
    }

    /// Every number an order has had, oldest first.
    pub fn tracking_numbers(&self, order_id: &str) -> Result<Vec<TrackingNumber>> {
        let mut stmt = self.conn.prepare(
            "SELECT number, courier, order_id, order_version, state, void_reason
             FROM tracking_numbers WHERE order_id = ?1 ORDER BY allocated_at, rowid",
        )?;
        let rows = stmt.query_map([order_id], row_to_tracking)?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }
}

fn row_to_tracking(r: &sql::Row<'_>) -> sql::Result<TrackingNumber> {
    Ok(TrackingNumber {
        number: r.get(0)?,
        courier: r.get(1)?,
        order_id: r.get(2)?,
        order_version: r.get(3)?,
        state: r.get(4)?,
        void_reason: r.get(5)?,
    })
}

fn tracking_row(tx: &Transaction<'_>, number: &str) -> Result<Option<TrackingNumber>> {
    Ok(tx
        .query_row(
            "SELECT number, courier, order_id, order_version, state, void_reason FROM tracking_numbers WHERE number = ?1",
            [number],
            row_to_tracking,
        )
        .optional()?)
}

/// Void the order's own live number, if it has one (it joins another
/// order's parcel): `reason` says why.
pub(super) fn void_own(
    tx: &Transaction<'_>,
    order_id: &str,
    reason: &str,
    operator: &str,
) -> Result<()> {
    let live: Option<String> = tx
        .prepare_cached(
            "SELECT number FROM tracking_numbers WHERE order_id = ?1 AND state = 'allocated'",
        )?
        .query_row([order_id], |r| r.get(0))
        .optional()?;
    if let Some(number) = live {
        void_number(tx, &number, reason, operator)?;
    }
    Ok(())
}

/// Void a live number (nothing when it is void already), with an event on its order.
pub(super) fn void_number(
    tx: &sql::Connection,
    number: &str,
    reason: &str,
    operator: &str,
) -> Result<()> {
    let holder: Option<String> = tx
        .query_row(
            "UPDATE tracking_numbers SET state = 'voided', voided_at = ?2, void_reason = ?3
             WHERE number = ?1 AND state = 'allocated' RETURNING order_id",
            params![number, now(), reason],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(order_id) = holder {
        event(
            tx,
            operator,
            Some(&order_id),
            "tracking.voided",
            &format!("{number}: {reason}"),
        )?;
    }
    Ok(())
}

pub(super) fn allocate_one(
    tx: &Transaction<'_>,
    order_id: &str,
    courier: &Courier,
    operator: &str,
) -> Result<Allocation> {
    let version: u64 = tx
        .query_row(
            "SELECT version FROM orders WHERE id = ?1",
            [order_id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::UnknownOrder(order_id.into()))?;
    let live: Option<(String, String, u64)> = tx
        .prepare_cached(
            "SELECT number, courier, order_version FROM tracking_numbers WHERE order_id = ?1 AND state = 'allocated'",
        )?
        .query_row([order_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let mut voided = None;
    if let Some((number, live_courier, live_version)) = &live
        && *live_version == version
        && *live_courier == courier.code
    {
        return Ok(Allocation {
            order_id: order_id.into(),
            courier: live_courier.clone(),
            number: number.clone(),
            reused: true,
            voided: None,
        });
    }
    if courier.is_service() {
        // Its numbers come from its e-waybill service (`courier::take`), taken
        // before the plan; one without a number is not printed now.
        return Err(StoreError::NoServiceNumber {
            order_id: order_id.into(),
            courier: courier.code.clone(),
        });
    }
    if let Some((number, live_courier, live_version)) = live {
        let reason = if live_version != version {
            format!("order changed after print (v{live_version} → v{version})")
        } else {
            format!("courier changed from {live_courier} to {}", courier.code)
        };
        tx.execute(
            "UPDATE tracking_numbers SET state = 'voided', voided_at = ?2, void_reason = ?3 WHERE number = ?1",
            params![number, now(), reason],
        )?;
        event(
            tx,
            operator,
            Some(order_id),
            "tracking.voided",
            &format!("{number}: {reason}"),
        )?;
        voided = Some(number);
    }
    let number = next_number(tx, courier)?;
    tx.prepare_cached(
        "INSERT INTO tracking_numbers (number, courier, order_id, order_version, state, allocated_at)
         VALUES (?1, ?2, ?3, ?4, 'allocated', ?5)",
    )?
    .execute(params![number, courier.code, order_id, version, now()])?;
    event(
        tx,
        operator,
        Some(order_id),
        "tracking.allocated",
        &format!("{} {number} for v{version}", courier.code),
    )?;
    crate::crash::point("tracking.allocated");
    Ok(Allocation {
        order_id: order_id.into(),
        courier: courier.code.clone(),
        number,
        reused: false,
        voided,
    })
}

fn next_number(tx: &Transaction<'_>, courier: &Courier) -> Result<String> {
    let pool = &courier.pool;
    let exhausted = |detail: String| StoreError::PoolExhausted {
        courier: courier.code.clone(),
        detail,
    };
    if !pool.file.is_empty() {
        load_file_pool(tx, courier)?;
        let number: Option<String> = tx
            .prepare_cached(
                "SELECT number FROM pool_file_numbers p WHERE courier = ?1
                 AND NOT EXISTS (SELECT 1 FROM tracking_numbers t WHERE t.number = p.number)
                 ORDER BY seq LIMIT 1",
            )?
            .query_row([&courier.code], |r| r.get(0))
            .optional()?;
        return number
            .ok_or_else(|| exhausted(format!("every number in {} has been used", pool.file)));
    }
    if pool.end == 0 || pool.end < pool.start {
        return Err(exhausted(
            "no range is configured (couriers.pool start/end)".into(),
        ));
    }
    let next: u64 = tx
        .prepare_cached("SELECT next FROM pool_cursors WHERE courier = ?1")?
        .query_row([&courier.code], |r| r.get(0))
        .optional()?
        .unwrap_or(pool.start)
        .max(pool.start);
    // Skip numbers already issued (e.g. a range reconfigured to overlap an old one).
    let mut n = next;
    loop {
        if n > pool.end {
            return Err(exhausted(format!(
                "the range {}..={} is used up",
                pool.start, pool.end
            )));
        }
        let candidate = format_number(pool, n);
        let taken: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM tracking_numbers WHERE number = ?1)")?
            .query_row([&candidate], |r| r.get(0))?;
        n += 1;
        if !taken {
            tx.prepare_cached(
                "INSERT INTO pool_cursors (courier, next) VALUES (?1, ?2)
                 ON CONFLICT (courier) DO UPDATE SET next = ?2",
            )?
            .execute(params![courier.code, n])?;
            return Ok(candidate);
        }
    }
}

fn format_number(pool: &Pool, n: u64) -> String {
    format!("{}{:0width$}", pool.prefix, n, width = pool.digits as usize)
}

fn load_file_pool(tx: &Transaction<'_>, courier: &Courier) -> Result<()> {
    let loaded: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM pool_file_numbers WHERE courier = ?1)")?
        .query_row([&courier.code], |r| r.get(0))?;
    if loaded {
        return Ok(());
    }
    let text =
        std::fs::read_to_string(&courier.pool.file).map_err(|e| StoreError::PoolExhausted {
            courier: courier.code.clone(),
            detail: format!("cannot read the numbers file {}: {e}", courier.pool.file),
        })?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO pool_file_numbers (courier, seq, number) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )?;
    for (seq, line) in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        insert.execute(params![courier.code, seq as i64, line])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::order::validate::{Origin, validate};
    use crate::store::{Actor, Incoming};

    fn store_with(ids: &[&str]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("s.db")).unwrap();
        let batch: Vec<Incoming> = ids
            .iter()
            .map(|id| {
                let v = serde_json::json!({
                    "id": id, "version": 1, "status": "paid", "refund": "none", "flag": "yellow",
                    "created_at": "2026-11-11T00:00:00+08:00", "paid_at": "2026-11-11T00:01:00+08:00",
                    "updated_at": "2026-11-11T00:02:00+08:00", "buyer": {"nick": "n"},
                    "recipient": {"name": "王小明", "phone": "13812345678", "province": "浙江省",
                                  "city": "杭州市", "address": "文三路1号"},
                    "items": [{"sku": "A", "title": "伞", "qty": 1, "unit_price": "45.00"}], "memos": []
                });
                Incoming::Valid(validate(&v, Origin::Page(1, 1)).unwrap())
            })
            .collect();
        store
            .ingest(
                &batch,
                &Actor {
                    operator: "t",
                    source: "test",
                },
                crate::order::Flag::Yellow,
            )
            .unwrap();
        (dir, store)
    }

    #[test]
    fn numbers_are_unique_reused_per_version_and_voidable() {
        let (_d, mut store) = store_with(&["A", "B"]);
        let zto = Config::default().courier("ZTO").unwrap().clone();
        let first = store.allocate(&[("A", &zto), ("B", &zto)], "小王").unwrap();
        assert_eq!(first[0].number, "991000000001");
        assert_eq!(first[1].number, "991000000002");
        // Asking again (a resumed wave) returns the same numbers.
        let again = store.allocate(&[("A", &zto)], "小王").unwrap();
        assert_eq!(again[0].number, first[0].number);
        assert!(again[0].reused);
        // Voided numbers are never issued again; the order gets a fresh one.
        store
            .void(&first[0].number, "label damaged", "小王")
            .unwrap();
        assert!(matches!(
            store.void(&first[0].number, "again", "小王"),
            Err(StoreError::AlreadyVoided(_))
        ));
        let next = store.allocate(&[("A", &zto)], "小王").unwrap();
        assert_eq!(next[0].number, "991000000003");
        let history = store.tracking_numbers("A").unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].state, "voided");
        assert_eq!(history[1].state, "allocated");
        assert!(
            store
                .events(Some("A"))
                .unwrap()
                .iter()
                .any(|e| e.action == "tracking.voided" && e.operator == "小王")
        );
    }

    #[test]
    fn file_pools_are_used_in_order_and_run_out_with_a_clear_error() {
        let (dir, mut store) = store_with(&["A", "B", "C"]);
        let file = dir.path().join("sf.txt");
        std::fs::write(&file, "SF1001\n\nSF1002\n").unwrap();
        let mut sf = Config::default().courier("SF").unwrap().clone();
        sf.pool.file = file.display().to_string();
        let got = store.allocate(&[("A", &sf), ("B", &sf)], "t").unwrap();
        assert_eq!(
            (got[0].number.as_str(), got[1].number.as_str()),
            ("SF1001", "SF1002")
        );
        let err = store.allocate(&[("C", &sf)], "t").unwrap_err().to_string();
        assert!(err.contains("SF") && err.contains("has been used"), "{err}");
        // The failed transaction allocated nothing.
        assert!(store.tracking_numbers("C").unwrap().is_empty());
    }
}
