//! The write-back outbox in SQLite: what the station still owes the shop for
//! handed-over parcels, and what came of each send.
//!
//! Per handed-over order there are two rows, enqueued in the handover close
//! transaction: the shipment (`POST /v1/orders/{id}/shipments`), then the done
//! flag with the house memo (`PUT /v1/orders/{id}/flag` with `if_version`). The
//! flag row is only claimable once the shipment row is acknowledged; its
//! `if_version` is the version in the shipment's answer. An order set aside as
//! out of stock (缺货) gets one `exception` row: the exception flag with a memo,
//! sent with the version the station knew, no shipment.
//!
//! Invariants:
//! - a request body is fixed at enqueue, so every resend is identical (the shop
//!   de-duplicates a repeated tracking number and an identical last memo);
//! - an order is written back as handed over once (one shipment, one done
//!   flag: a unique index); an out-of-stock exception flag once per order version;
//! - every outcome that matters (`outbox.enqueued`, `outbox.sent`, `outbox.alert`,
//!   `outbox.done`) is an event in the same transaction as the change;
//! - a claimed row is leased (`next_attempt_at` pushed forward) and its attempt
//!   counted before the request goes out, so a crash mid-send leaves it pending and
//!   it is sent again once the lease runs out.

use super::sql::{Connection, OptionalExtension, params};
use super::{Listed, Result, Store, StoreError, event, now};
use crate::order::Flag;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;

/// One handed-over parcel's write-back, enqueued in the handover close transaction.
pub struct WriteBack<'a> {
    pub order_id: &'a str,
    /// The version the station knew at close.
    pub order_version: u64,
    /// Courier code, e.g. "ZTO".
    pub courier: &'a str,
    pub tracking_no: &'a str,
    /// RFC 3339 with offset: the close time.
    pub handed_over_at: &'a str,
    pub done_flag: Flag,
    /// "已交接 中通 78310000123 · 小王 · 2026-11-11 15:02".
    pub memo_text: &'a str,
    /// The operator.
    pub memo_author: &'a str,
    /// RFC 3339 with offset (the same instant as `handed_over_at`).
    pub memo_at: &'a str,
    pub batch_id: &'a str,
}

/// Which request an outbox row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendKind {
    /// `POST /v1/orders/{id}/shipments`.
    Shipment,
    /// `PUT /v1/orders/{id}/flag` with the memo and `if_version`.
    Flag,
    /// Out of stock: `PUT /v1/orders/{id}/flag` with the exception flag and a memo.
    Exception,
    /// Returns intake: `PUT /v1/orders/{id}/flag` with the returns flag and a
    /// memo, after the order's handover write-back (never before its green flag).
    Return,
}

impl SendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SendKind::Shipment => "shipment",
            SendKind::Flag => "flag",
            SendKind::Exception => "exception",
            SendKind::Return => "return",
        }
    }

    fn parse(s: &str) -> SendKind {
        match s {
            "flag" => SendKind::Flag,
            "exception" => SendKind::Exception,
            "return" => SendKind::Return,
            _ => SendKind::Shipment,
        }
    }

    /// Part of a handover write-back (the order ends `shipped` when both are done).
    pub fn is_handover(self) -> bool {
        matches!(self, SendKind::Shipment | SendKind::Flag)
    }
}

/// An outbox row claimed for sending (leased and its attempt counted).
#[derive(Clone, Debug)]
pub struct ClaimedSend {
    pub id: i64,
    pub order_id: String,
    pub kind: SendKind,
    pub batch_id: String,
    pub courier: String,
    pub tracking_no: String,
    /// The request body as fixed at enqueue (the flag row without `if_version`).
    pub body: Value,
    pub order_version: u64,
    /// Flag rows: the version to send as `if_version`.
    pub if_version: Option<u64>,
    /// Including this one.
    pub attempts: u32,
}

/// What the outbox holds, for `station status` and `station sync`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct OutboxSummary {
    /// Sends (shipments and flags) not yet acknowledged by the shop.
    pub pending: u64,
    /// Orders with at least one pending send.
    pub pending_orders: u64,
    /// How long the oldest pending send has waited, in seconds.
    pub oldest_pending_secs: Option<u64>,
    /// The last problem of the oldest pending send that has been tried.
    pub last_error: Option<String>,
    /// Orders whose shipment and done flag the shop acknowledged.
    pub done_orders: u64,
    /// Orders whose write-back stopped, with the reason and what to do.
    pub alerts: Vec<Listed>,
}

/// Why a send stopped for good. An alert never turns into a green flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub reason: String,
    /// The order was refunded, closed or unpaid after handover: the parcel must
    /// be stopped with the courier, so the order becomes `intercept`.
    pub intercept: bool,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_stamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Enqueue one parcel's write-back (its shipment, then its done flag) inside the
/// caller's transaction (the handover close). Fails with
/// [`StoreError::AlreadyWrittenBack`] when the order already has a write-back: an
/// order ships once.
pub(crate) fn enqueue(tx: &Connection, wb: &WriteBack<'_>) -> Result<()> {
    let known: Option<String> = tx
        .prepare_cached(
            "SELECT batch_id FROM outbox WHERE order_id = ?1 AND kind IN ('shipment', 'flag') LIMIT 1",
        )?
        .query_row([wb.order_id], |r| r.get(0))
        .optional()?;
    if let Some(batch) = known {
        return Err(StoreError::AlreadyWrittenBack {
            order_id: wb.order_id.into(),
            batch_id: batch,
        });
    }
    let at = now();
    let mut shipment = json!({
        "courier": wb.courier,
        "tracking_no": wb.tracking_no,
        "handed_over_at": wb.handed_over_at,
    });
    // Weighed at the bench: the shop gets the weight (Shop API v1.1).
    if let Some(grams) = super::packing::packed_weight(tx, wb.order_id, wb.tracking_no)? {
        shipment["weight_g"] = json!(grams);
    }
    let flag = json!({
        "flag": wb.done_flag,
        "memo": {"text": wb.memo_text, "author": wb.memo_author, "at": wb.memo_at},
    });
    let mut insert = tx.prepare_cached(
        "INSERT INTO outbox (order_id, kind, batch_id, courier, tracking_no, body, order_version,
                             state, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)",
    )?;
    for (kind, body) in [(SendKind::Shipment, shipment), (SendKind::Flag, flag)] {
        insert.execute(params![
            wb.order_id,
            kind.as_str(),
            wb.batch_id,
            wb.courier,
            wb.tracking_no,
            body.to_string(),
            wb.order_version,
            at
        ])?;
    }
    event(
        tx,
        wb.memo_author,
        Some(wb.order_id),
        "outbox.enqueued",
        &format!(
            "batch {}: shipment {} {} and flag {} with memo “{}” wait to be sent to the shop",
            wb.batch_id, wb.courier, wb.tracking_no, wb.done_flag, wb.memo_text
        ),
    )?;
    Ok(())
}

/// An order set aside as out of stock (缺货): the exception flag and its memo,
/// enqueued in the same transaction as the order's change of state.
pub struct ExceptionWrite<'a> {
    pub order_id: &'a str,
    /// The version the station knew when it set the order aside: sent as `if_version`.
    pub order_version: u64,
    pub flag: Flag,
    /// "缺货: SKU ×1 · 小王 · 2026-11-11 15:02".
    pub memo_text: &'a str,
    pub memo_author: &'a str,
    /// RFC 3339 with offset.
    pub memo_at: &'a str,
    /// The voided label's courier and number, for messages; empty when none.
    pub courier: &'a str,
    pub tracking_no: &'a str,
}

/// Enqueue an out-of-stock exception flag inside the caller's transaction.
/// The same order version set aside again queues nothing more (one exception
/// flag per version).
pub(crate) fn enqueue_exception(tx: &Connection, ex: &ExceptionWrite<'_>) -> Result<()> {
    let known: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE order_id = ?1 AND order_version = ?2
                              AND kind = 'exception')",
        )?
        .query_row(params![ex.order_id, ex.order_version], |r| r.get(0))?;
    if known {
        return Ok(());
    }
    let at = now();
    let body = json!({
        "flag": ex.flag,
        "memo": {"text": ex.memo_text, "author": ex.memo_author, "at": ex.memo_at},
    });
    tx.prepare_cached(
        "INSERT INTO outbox (order_id, kind, batch_id, courier, tracking_no, body, order_version,
                             if_version, state, next_attempt_at, created_at)
         VALUES (?1, 'exception', '', ?2, ?3, ?4, ?5, ?5, 'pending', ?6, ?6)",
    )?
    .execute(params![
        ex.order_id,
        ex.courier,
        ex.tracking_no,
        body.to_string(),
        ex.order_version,
        at
    ])?;
    event(
        tx,
        ex.memo_author,
        Some(ex.order_id),
        "outbox.enqueued",
        &format!(
            "flag {} with memo “{}” waits to be sent to the shop (v{})",
            ex.flag, ex.memo_text, ex.order_version
        ),
    )?;
    Ok(())
}

/// A receive at returns intake (退货登记): the returns flag and its memo.
pub struct ReturnWrite<'a> {
    pub order_id: &'a str,
    pub order_version: u64,
    pub flag: Flag,
    /// "退货已收: SKU ×1 · reason · 小王 · 2026-11-20 10:02".
    pub memo_text: &'a str,
    pub memo_author: &'a str,
    /// RFC 3339 with offset.
    pub memo_at: &'a str,
    /// The number the parcel left under, for messages.
    pub courier: &'a str,
    pub tracking_no: &'a str,
}

/// Enqueue a returns flag inside the caller's transaction. Its `if_version`
/// is left unset: the order has changed on the shop since (our own green flag
/// at least), so the send reads the current version first.
pub(crate) fn enqueue_return(tx: &Connection, rw: &ReturnWrite<'_>) -> Result<()> {
    let at = now();
    let body = json!({
        "flag": rw.flag,
        "memo": {"text": rw.memo_text, "author": rw.memo_author, "at": rw.memo_at},
    });
    tx.prepare_cached(
        "INSERT INTO outbox (order_id, kind, batch_id, courier, tracking_no, body, order_version,
                             state, next_attempt_at, created_at)
         VALUES (?1, 'return', '', ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
    )?
    .execute(params![
        rw.order_id,
        rw.courier,
        rw.tracking_no,
        body.to_string(),
        rw.order_version,
        at
    ])?;
    event(
        tx,
        rw.memo_author,
        Some(rw.order_id),
        "outbox.enqueued",
        &format!(
            "flag {} with memo “{}” waits to be sent to the shop",
            rw.flag, rw.memo_text
        ),
    )?;
    Ok(())
}

/// An acknowledged send, to record.
#[derive(Clone, Debug)]
pub struct Ack {
    pub id: i64,
    /// The order's version in the shop's answer, when it gave one.
    pub shop_version: Option<u64>,
    /// The audit trail's words for it.
    pub detail: String,
}

/// The order and kind of send `id` while it is still pending (`None` once it
/// was answered, or never existed).
fn pending_send(tx: &Connection, id: i64) -> Result<Option<(String, String)>> {
    Ok(tx
        .query_row(
            "SELECT order_id, kind FROM outbox WHERE id = ?1 AND state = 'pending'",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// One acknowledgement inside the caller's transaction (see `Store::outbox_ack`).
fn ack_in(
    tx: &Connection,
    id: i64,
    shop_version: Option<u64>,
    operator: &str,
    detail: &str,
) -> Result<bool> {
    let at = now();
    let Some((order_id, kind)) = pending_send(tx, id)? else {
        return Ok(false);
    };
    tx.execute(
        "UPDATE outbox SET state = 'done', done_at = ?2, last_error = NULL WHERE id = ?1",
        params![id, at],
    )?;
    event(tx, operator, Some(&order_id), "outbox.sent", detail)?;
    if SendKind::parse(&kind) == SendKind::Exception {
        // The version the shop gave the exception flag: intake holds the
        // order out of stock until customer service changes it after that.
        tx.execute(
            "UPDATE outbox SET if_version = COALESCE(?2, if_version) WHERE id = ?1",
            params![id, shop_version],
        )?;
    }
    if SendKind::parse(&kind) == SendKind::Shipment {
        tx.execute(
            "UPDATE outbox SET if_version = COALESCE(?2, if_version), next_attempt_at = ?3
             WHERE order_id = ?1 AND kind = 'flag' AND state = 'pending'",
            params![order_id, shop_version, at],
        )?;
    }
    let open: u64 = tx.query_row(
        "SELECT COUNT(*) FROM outbox WHERE order_id = ?1 AND state != 'done'
           AND kind IN ('shipment', 'flag')",
        [&order_id],
        |r| r.get(0),
    )?;
    let complete = SendKind::parse(&kind).is_handover() && open == 0;
    if complete {
        tx.execute(
            "UPDATE orders SET state = 'shipped', reason = NULL, updated = ?2
             WHERE id = ?1 AND state = 'handed_over'",
            params![order_id, at],
        )?;
        event(
            tx,
            operator,
            Some(&order_id),
            "outbox.done",
            "the shop acknowledged the shipment and the done flag: shipped",
        )?;
    }
    Ok(complete)
}

/// One claim inside the caller's transaction (see `Store::outbox_claim_due`).
fn claim_in(tx: &Connection, at: DateTime<Utc>, lease: Duration) -> Result<Option<ClaimedSend>> {
    let row = tx
        .query_row(
            "SELECT o.id, o.order_id, o.kind, o.batch_id, o.body, o.order_version,
                    o.if_version, o.attempts, o.courier, o.tracking_no
             FROM outbox o
             WHERE o.state = 'pending' AND o.next_attempt_at <= ?1
               AND (o.kind = 'shipment'
                    OR (o.kind = 'exception' AND NOT EXISTS (
                        SELECT 1 FROM outbox s WHERE s.order_id = o.order_id
                          AND s.kind = 'exception' AND s.state = 'pending' AND s.id < o.id))
                    OR (o.kind = 'flag' AND EXISTS (
                        SELECT 1 FROM outbox s WHERE s.order_id = o.order_id
                          AND s.kind = 'shipment' AND s.state = 'done'))
                    OR (o.kind = 'return' AND NOT EXISTS (
                        SELECT 1 FROM outbox s WHERE s.order_id = o.order_id
                          AND s.state = 'pending'
                          AND (s.kind IN ('shipment', 'flag')
                               OR (s.kind = 'return' AND s.id < o.id)))))
             ORDER BY o.next_attempt_at, o.id LIMIT 1",
            [stamp(at)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, u64>(5)?,
                    r.get::<_, Option<u64>>(6)?,
                    r.get::<_, u32>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, String>(9)?,
                ))
            },
        )
        .optional()?;
    let Some((
        id,
        order_id,
        kind,
        batch_id,
        body,
        order_version,
        if_version,
        attempts,
        courier,
        tracking_no,
    )) = row
    else {
        return Ok(None);
    };
    let lease_until = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    tx.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2 WHERE id = ?1",
        params![id, stamp(lease_until)],
    )?;
    let body = serde_json::from_str(&body).map_err(|source| StoreError::Corrupt {
        id: order_id.clone(),
        source,
    })?;
    Ok(Some(ClaimedSend {
        id,
        order_id,
        kind: SendKind::parse(&kind),
        batch_id,
        courier,
        tracking_no,
        body,
        order_version,
        if_version,
        attempts: attempts + 1,
    }))
}

impl Store {
    /// Claim the next send that is due at `at`: pending, its time has come; for
    /// a flag, its shipment acknowledged; for a returns flag, nothing of its
    /// order's handover write-back or earlier returns still pending. The claim
    /// counts the attempt and leases the row until `at + lease`, so a
    /// concurrent worker leaves it alone and a crash only delays it.
    pub fn outbox_claim_due(
        &mut self,
        at: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<ClaimedSend>> {
        Ok(self.outbox_claim_many(at, lease, 1)?.pop())
    }

    /// Claim up to `limit` due sends in one transaction (one commit for all):
    /// the rules of [`Store::outbox_claim_due`], and never two of one order.
    pub fn outbox_claim_many(
        &mut self,
        at: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedSend>> {
        let tx = self.write_tx()?;
        let mut claimed: Vec<ClaimedSend> = Vec::new();
        while claimed.len() < limit {
            let Some(send) = claim_in(&tx, at, lease)? else {
                break;
            };
            claimed.push(send);
        }
        tx.commit()?;
        Ok(claimed)
    }

    /// Extend a claimed row's lease (before another request for it goes out).
    pub fn outbox_extend_lease(&mut self, id: i64, until: DateTime<Utc>) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "UPDATE outbox SET next_attempt_at = ?2 WHERE id = ?1 AND state = 'pending'",
            params![id, stamp(until)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The shop acknowledged a send; `shop_version` is the order's version in its
    /// answer. A shipment's answer becomes its flag's `if_version` (and the flag is
    /// due at once); when both are acknowledged the order is `shipped`. Returns
    /// whether that completed the order's handover write-back. Acknowledging a row that is no
    /// longer pending (another worker got there first) changes nothing.
    pub fn outbox_ack(
        &mut self,
        id: i64,
        shop_version: Option<u64>,
        operator: &str,
        detail: &str,
    ) -> Result<bool> {
        let done = self.outbox_ack_many(
            &[Ack {
                id,
                shop_version,
                detail: detail.to_string(),
            }],
            operator,
        )?;
        Ok(done.first().copied().unwrap_or(false))
    }

    /// Record several acknowledgements in one transaction (one commit, one
    /// disk sync, however many sends came back meanwhile). For each, whether
    /// it completed its order's handover write-back (now `shipped`). Nothing
    /// is lost if the process dies before the commit: those sends stay
    /// pending, are sent again, and the shop's idempotency (the tracking
    /// number, our memo on the order) answers that it has them.
    pub fn outbox_ack_many(&mut self, acks: &[Ack], operator: &str) -> Result<Vec<bool>> {
        let tx = self.write_tx()?;
        let mut done = Vec::with_capacity(acks.len());
        for a in acks {
            done.push(ack_in(&tx, a.id, a.shop_version, operator, &a.detail)?);
        }
        tx.commit()?;
        Ok(done)
    }

    /// A send must wait: keep it pending until `until`, noting the problem.
    pub fn outbox_retry_later(
        &mut self,
        id: i64,
        until: DateTime<Utc>,
        problem: &str,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "UPDATE outbox SET next_attempt_at = ?2, last_error = ?3 WHERE id = ?1 AND state = 'pending'",
            params![id, stamp(until), problem],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A flag met a version conflict on an order that may still be flagged: send
    /// it again with the shop's current version.
    pub fn outbox_set_if_version(&mut self, id: i64, version: u64, problem: &str) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "UPDATE outbox SET if_version = ?2, last_error = ?3 WHERE id = ?1 AND state = 'pending'",
            params![id, version, problem],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A send stopped for good. The order's other pending handover sends stop
    /// with it (a refused shipment must never be followed by a green flag), and an
    /// intercept alert sets the order to `intercept` with the reason. A stopped
    /// exception flag stops only itself and leaves the order as it is.
    pub fn outbox_alert(&mut self, id: i64, operator: &str, alert: &Alert) -> Result<()> {
        let tx = self.write_tx()?;
        let at = now();
        let Some((order_id, kind)) = pending_send(&tx, id)? else {
            return Ok(());
        };
        tx.execute(
            "UPDATE outbox SET state = 'alert', done_at = ?2, last_error = ?3 WHERE id = ?1",
            params![id, at, alert.reason],
        )?;
        let handover = SendKind::parse(&kind).is_handover();
        if handover {
            tx.execute(
                "UPDATE outbox SET state = 'alert', done_at = ?2, last_error = ?3
                 WHERE order_id = ?1 AND state = 'pending' AND kind IN ('shipment', 'flag')",
                params![
                    order_id,
                    at,
                    format!("not sent: the {kind} was stopped ({})", alert.reason)
                ],
            )?;
        }
        if !handover {
            // The order's state (out of stock) and reason stay: the alert says what failed.
        } else if alert.intercept {
            tx.execute(
                "UPDATE orders SET state = 'intercept', reason = ?2, updated = ?3 WHERE id = ?1",
                params![order_id, alert.reason, at],
            )?;
        } else {
            tx.execute(
                "UPDATE orders SET reason = ?2, updated = ?3 WHERE id = ?1",
                params![order_id, alert.reason, at],
            )?;
        }
        event(
            &tx,
            operator,
            Some(&order_id),
            "outbox.alert",
            &alert.reason,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Pending sends, how long the oldest has waited, and the alerts.
    pub fn outbox_summary(&self) -> Result<OutboxSummary> {
        self.outbox_summary_at(Utc::now())
    }

    pub(crate) fn outbox_summary_at(&self, at: DateTime<Utc>) -> Result<OutboxSummary> {
        let (pending, pending_orders, oldest): (u64, u64, Option<String>) = self.conn.query_row(
            "SELECT COUNT(*), COUNT(DISTINCT order_id), MIN(created_at)
             FROM outbox WHERE state = 'pending'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let last_error: Option<String> = self
            .conn
            .query_row(
                "SELECT last_error FROM outbox WHERE state = 'pending' AND last_error IS NOT NULL
                 ORDER BY created_at, id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let done_orders: u64 = self.conn.query_row(
            "SELECT COUNT(*) FROM (SELECT order_id FROM outbox WHERE kind IN ('shipment', 'flag')
                                   GROUP BY order_id
                                   HAVING SUM(CASE WHEN state <> 'done' THEN 1 ELSE 0 END) = 0) AS settled",
            [],
            |r| r.get(0),
        )?;
        // One line per order: the send that stopped first says why.
        let alerts = self.listed(
            "SELECT o.order_id, COALESCE(o.last_error, '') FROM outbox o
             WHERE o.state = 'alert' AND o.id = (SELECT MIN(a.id) FROM outbox a
                                                 WHERE a.order_id = o.order_id AND a.state = 'alert')
             ORDER BY o.done_at, o.order_id",
            [],
        )?;
        let oldest_pending_secs = oldest
            .as_deref()
            .and_then(parse_stamp)
            .map(|t| (at - t).num_seconds().max(0) as u64);
        Ok(OutboxSummary {
            pending,
            pending_orders,
            oldest_pending_secs,
            last_error,
            done_orders,
            alerts,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::shop::generate::{self, GenerateOptions};
    use crate::store::{Actor, Incoming};

    /// A store with `n` generated, valid orders, all moved to `handed_over` and
    /// enqueued for write-back in batch `B1` (what a handover close does).
    pub(crate) fn handed_over(n: usize) -> (tempfile::TempDir, Store, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("station.db")).unwrap();
        let orders = generate::generate(&GenerateOptions {
            count: n,
            seed: 5,
            ..Default::default()
        });
        let batch: Vec<Incoming> = orders.iter().cloned().map(Incoming::Valid).collect();
        let actor = Actor {
            operator: "测试员",
            source: "test",
        };
        store.ingest(&batch, &actor, Flag::Yellow).unwrap();
        let ids: Vec<String> = orders.iter().map(|o| o.id.clone()).collect();
        let tx = store.write_tx().unwrap();
        for (i, o) in orders.iter().enumerate() {
            tx.execute(
                "UPDATE orders SET state = 'handed_over' WHERE id = ?1",
                [&o.id],
            )
            .unwrap();
            let tracking = format!("7831{i:07}");
            let memo = format!("已交接 中通 {tracking} · 小王 · 2026-11-11 15:02");
            enqueue(&tx, &write_back(&o.id, o.version, &tracking, &memo)).unwrap();
        }
        tx.commit().unwrap();
        (dir, store, ids)
    }

    pub(crate) fn write_back<'a>(
        id: &'a str,
        version: u64,
        tracking: &'a str,
        memo: &'a str,
    ) -> WriteBack<'a> {
        WriteBack {
            order_id: id,
            order_version: version,
            courier: "ZTO",
            tracking_no: tracking,
            handed_over_at: "2026-11-11T15:02:00+08:00",
            done_flag: Flag::Green,
            memo_text: memo,
            memo_author: "小王",
            memo_at: "2026-11-11T15:02:00+08:00",
            batch_id: "B1",
        }
    }

    fn state(store: &Store, id: &str) -> String {
        store
            .conn
            .query_row("SELECT state FROM orders WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
    }

    fn actions(store: &Store, id: &str) -> Vec<String> {
        store
            .events(Some(id))
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .filter(|a| a.starts_with("outbox."))
            .collect()
    }

    const LEASE: Duration = Duration::from_secs(30);

    #[test]
    fn enqueue_fixes_both_bodies_and_refuses_a_second_write_back() {
        let (_dir, mut store, ids) = handed_over(1);
        let s = store.outbox_claim_due(Utc::now(), LEASE).unwrap().unwrap();
        assert_eq!(
            (s.kind, s.attempts, s.if_version),
            (SendKind::Shipment, 1, None)
        );
        assert_eq!(
            s.body,
            json!({"courier": "ZTO", "tracking_no": "78310000000",
                   "handed_over_at": "2026-11-11T15:02:00+08:00"})
        );
        let tx = store.write_tx().unwrap();
        let again = enqueue(&tx, &write_back(&ids[0], 1, "78319999999", "again"));
        assert!(
            matches!(again, Err(StoreError::AlreadyWrittenBack { ref batch_id, .. }) if batch_id == "B1"),
            "{again:?}"
        );
        drop(tx);
        assert_eq!(actions(&store, &ids[0]), ["outbox.enqueued"]);
    }

    #[test]
    fn the_flag_waits_for_the_shipment_and_takes_its_version() {
        let (_dir, mut store, ids) = handed_over(1);
        let now = Utc::now();
        let ship = store.outbox_claim_due(now, LEASE).unwrap().unwrap();
        // Leased: neither the shipment again nor its flag is claimable.
        assert!(store.outbox_claim_due(now, LEASE).unwrap().is_none());
        assert!(!store.outbox_ack(ship.id, Some(7), "w", "shipped").unwrap());
        let flag = store.outbox_claim_due(Utc::now(), LEASE).unwrap().unwrap();
        assert_eq!((flag.kind, flag.if_version), (SendKind::Flag, Some(7)));
        assert_eq!(flag.body["memo"]["author"], "小王");
        assert_eq!(flag.body["flag"], "green");
        assert_eq!(state(&store, &ids[0]), "handed_over");
        assert!(store.outbox_ack(flag.id, Some(8), "w", "flagged").unwrap());
        assert_eq!(state(&store, &ids[0]), "shipped");
        // A second acknowledgement (another worker) records nothing more.
        assert!(!store.outbox_ack(flag.id, Some(8), "w", "flagged").unwrap());
        assert_eq!(
            actions(&store, &ids[0]),
            [
                "outbox.enqueued",
                "outbox.sent",
                "outbox.sent",
                "outbox.done"
            ]
        );
        let s = store.outbox_summary().unwrap();
        assert_eq!((s.pending, s.done_orders, s.alerts.len()), (0, 1, 0));
    }

    #[test]
    fn a_crashed_claim_comes_back_after_its_lease_with_the_attempt_counted() {
        let (_dir, mut store, _) = handed_over(1);
        let t0 = Utc::now();
        let first = store.outbox_claim_due(t0, LEASE).unwrap().unwrap();
        // The process dies here: nothing is acknowledged.
        assert!(
            store
                .outbox_claim_due(t0 + chrono::Duration::seconds(29), LEASE)
                .unwrap()
                .is_none()
        );
        let again = store
            .outbox_claim_due(t0 + chrono::Duration::seconds(31), LEASE)
            .unwrap()
            .unwrap();
        assert_eq!((again.id, again.attempts), (first.id, 2));
    }

    #[test]
    fn retry_later_keeps_the_row_pending_and_summary_shows_age_and_problem() {
        let (_dir, mut store, _) = handed_over(2);
        let now = Utc::now();
        let s = store.outbox_claim_due(now, LEASE).unwrap().unwrap();
        store
            .outbox_retry_later(
                s.id,
                now + chrono::Duration::seconds(60),
                "HTTP 503 unavailable",
            )
            .unwrap();
        // The other order's shipment is still due; this one waits.
        let other = store.outbox_claim_due(now, LEASE).unwrap().unwrap();
        assert_ne!(other.order_id, s.order_id);
        assert!(store.outbox_claim_due(now, LEASE).unwrap().is_none());
        let sum = store
            .outbox_summary_at(now + chrono::Duration::seconds(90))
            .unwrap();
        assert_eq!((sum.pending, sum.pending_orders), (4, 2));
        assert!(sum.oldest_pending_secs.unwrap() >= 89, "{sum:?}");
        assert_eq!(sum.last_error.as_deref(), Some("HTTP 503 unavailable"));
    }

    #[test]
    fn an_intercept_alert_stops_the_flag_and_intercepts_the_order() {
        let (_dir, mut store, ids) = handed_over(1);
        let ship = store.outbox_claim_due(Utc::now(), LEASE).unwrap().unwrap();
        let alert = Alert {
            reason: "refund requested after handover".into(),
            intercept: true,
        };
        store.outbox_alert(ship.id, "w", &alert).unwrap();
        assert!(store.outbox_claim_due(Utc::now(), LEASE).unwrap().is_none());
        let stored = store.order(&ids[0]).unwrap().unwrap();
        assert_eq!(stored.state.as_str(), "intercept");
        assert_eq!(
            stored.reason.as_deref(),
            Some("refund requested after handover")
        );
        let sum = store.outbox_summary().unwrap();
        assert_eq!(sum.pending, 0);
        assert_eq!(
            sum.alerts,
            [Listed {
                id: ids[0].clone(),
                reason: "refund requested after handover".into()
            }]
        );
        assert_eq!(
            actions(&store, &ids[0]),
            ["outbox.enqueued", "outbox.alert"]
        );
        // A plain alert (the shop refused for another reason) keeps the state.
        let (_dir, mut store, ids) = handed_over(1);
        let ship = store.outbox_claim_due(Utc::now(), LEASE).unwrap().unwrap();
        let plain = Alert {
            reason: "HTTP 400".into(),
            intercept: false,
        };
        store.outbox_alert(ship.id, "w", &plain).unwrap();
        assert_eq!(state(&store, &ids[0]), "handed_over");
    }
}
