//! The write-back worker: sends what the outbox holds (each handed-over order's
//! shipment, then its done flag with the 已交接 memo) to the shop until the shop
//! acknowledges it. `station sync` runs one pass; `station serve` runs
//! [`run_forever`].
//!
//! Architecture invariant: this is the only module that writes to the shop.
//!
//! Invariants:
//! - a pass never fails because the shop is down: a send that cannot go through
//!   stays pending with exponential backoff, and the pass ends (the shop is the
//!   same for every send) so a dead shop costs one send timeout, not one per row;
//! - exactly one shipment and one memo per order on the shop, across crashes and
//!   resends: bodies are fixed at enqueue, the shipment is idempotent by tracking
//!   number, and the flag carries `if_version`, so a resend after a lost answer
//!   either repeats an identical request (which the shop treats as done) or meets
//!   a conflict that a re-read resolves;
//! - a refund, close or lost payment that arrived after handover is an alert
//!   (the order becomes `intercept`), never a green flag.

use crate::config::Config;
use crate::order::Flag;
use crate::shop::client::{ShopClient, ShopError};
use crate::store::{Ack, Alert, ClaimedSend, Listed, OutboxSummary, SendKind, Store};
use anyhow::Result;
use chrono::Utc;
use rand::RngExt as _;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What one pass did, and what the outbox holds afterwards.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncReport {
    /// Sends the shop acknowledged in this pass.
    pub sent: u64,
    /// Orders fully written back in this pass (now `shipped`).
    pub shipped: u64,
    /// Orders whose write-back stopped in this pass, with the reason.
    pub new_alerts: Vec<Listed>,
    /// Why the pass ended before every due send was tried (the shop is down or
    /// too slow); the rest waits for the next pass.
    pub stopped: Option<String>,
    /// The outbox after the pass.
    pub outbox: OutboxSummary,
    /// Voided numbers given back to their couriers' e-waybill services in this pass.
    pub cancels: crate::courier::cancel::CancelReport,
}

impl SyncReport {
    /// "sent 4, pending 6 (oldest 12s), alerts 1".
    pub fn summary(&self) -> String {
        let o = &self.outbox;
        let pending = match o.oldest_pending_secs {
            Some(age) if o.pending > 0 => format!("pending {} (oldest {age}s)", o.pending),
            _ => format!("pending {}", o.pending),
        };
        format!("sent {}, {pending}, alerts {}", self.sent, o.alerts.len())
    }
}

/// What came of one send.
#[derive(Debug)]
enum Step {
    /// The shop has it (answered 200, or a re-read shows it applied).
    Acked {
        version: Option<u64>,
        detail: String,
    },
    /// Stop this order's write-back for good.
    Alert(Alert),
    /// Try again later; `shop_down` ends the pass.
    Wait { problem: String, shop_down: bool },
    /// Nothing will work until the operator fixes the setup (token, URL).
    Fatal(ShopError),
}

/// One pass over the sends that are due. Returns after every due send was
/// tried, or as soon as the shop proves unreachable (the rest stays pending).
/// Errors only for what a retry cannot fix: the database, a refused token, a bad URL.
///
/// Up to `outbox.max_in_flight` sends are in flight at once (starting from
/// one and growing with every acknowledgement), each on its own database connection; the claim rules keep each order's sends in order (a
/// flag is claimable only once its shipment is acknowledged, a returns flag
/// only once nothing before it is pending), so one order never has two sends
/// in flight. Outcomes are recorded on `store` as they come back.
pub async fn sync_once(
    store: &mut Store,
    client: &ShopClient,
    config: &Config,
    operator: &str,
) -> Result<SyncReport> {
    let send_timeout = Duration::from_secs(config.outbox.send_timeout_secs);
    let lease = lease_for(send_timeout);
    let max_in_flight = config.outbox.max_in_flight.max(1);
    let client = &client.paced(config.outbox.max_per_sec);
    let mut report = SyncReport::default();
    let mut flight: JoinSet<(Store, ClaimedSend, Result<Step>)> = JoinSet::new();
    // Connections of finished sends, for the next ones.
    let mut idle: Vec<Store> = Vec::new();
    let mut claiming = true;
    let mut fatal: Option<anyhow::Error> = None;
    // Slow start: one send first, one more for every send the shop takes, up
    // to the limit; so a shop that is down meets one request a pass (and its
    // retries), not one per send in flight.
    let mut window = 1;
    loop {
        if claiming && flight.len() < window {
            // One commit for every send that goes out now.
            let room = window - flight.len();
            for send in store.outbox_claim_many(Utc::now(), lease, room)? {
                let mut conn = match idle.pop() {
                    Some(c) => c,
                    None => store.reopen()?,
                };
                let client = client.clone();
                flight.spawn(async move {
                    let step = match send.kind {
                        SendKind::Shipment => ship(&mut conn, &client, send_timeout, &send).await,
                        SendKind::Flag | SendKind::Exception | SendKind::Return => {
                            flag(&mut conn, &client, send_timeout, &send).await
                        }
                    };
                    (conn, send, step)
                });
            }
        }
        // The next send to come back, and every other one back meanwhile:
        // their acknowledgements share one commit.
        let Some(first) = flight.join_next().await else {
            break;
        };
        let mut back = vec![first];
        while let Some(more) = flight.try_join_next() {
            back.push(more);
        }
        let mut acks = Vec::new();
        for done in back {
            let (conn, send, step) = match done {
                Ok(done) => done,
                // A send that panicked: its row stays leased and is tried
                // again when the lease runs out; the others go on.
                Err(e) => {
                    tracing::error!("outbox: a send stopped unexpectedly: {e}");
                    continue;
                }
            };
            idle.push(conn);
            match step? {
                Step::Acked { version, detail } => {
                    crate::crash::outbox(send.kind.as_str(), "answered");
                    acks.push(Ack {
                        id: send.id,
                        shop_version: version,
                        detail,
                    });
                }
                Step::Alert(alert) => {
                    store.outbox_alert(send.id, operator, &alert)?;
                    report.new_alerts.push(Listed {
                        id: send.order_id.clone(),
                        reason: alert.reason,
                    });
                }
                Step::Wait { problem, shop_down } => {
                    let until = Utc::now() + chrono_duration(backoff(config, send.attempts));
                    store.outbox_retry_later(send.id, until, &problem)?;
                    if shop_down {
                        // The shop is the same for every send: claim no more;
                        // the ones in flight finish (each within its timeout).
                        report.stopped.get_or_insert(problem);
                        claiming = false;
                    }
                }
                Step::Fatal(e) => {
                    // The send is not at fault: release it for the next pass.
                    store.outbox_retry_later(send.id, Utc::now(), &e.to_string())?;
                    claiming = false;
                    fatal.get_or_insert(e.into());
                }
            }
        }
        if !acks.is_empty() {
            // A flag (or what waits behind it) becomes due with this commit.
            let completed = store.outbox_ack_many(&acks, operator)?;
            window = (window + acks.len()).min(max_in_flight);
            report.sent += acks.len() as u64;
            report.shipped += completed.iter().filter(|c| **c).count() as u64;
        }
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    // Numbers voided since the last pass go back to their services (回收):
    // not the shop, but the same durable worker.
    report.cancels = crate::courier::cancel::cancel_due(store, config, operator).await?;
    report.outbox = store.outbox_summary()?;
    Ok(report)
}

/// The worker of `station serve`: a pass every `outbox.interval_secs` (at once
/// when `wake` is notified, e.g. after a handover closes), backing off while the
/// shop is down, until `stop` turns true or its sender is dropped. Problems are
/// logged, never fatal: the outbox is durable and the next pass picks up.
pub async fn run_forever(
    db: crate::store::Db,
    client: ShopClient,
    config: Config,
    operator: String,
    mut stop: watch::Receiver<bool>,
    wake: Arc<Notify>,
) -> Result<()> {
    let interval = Duration::from_secs(config.outbox.interval_secs);
    let mut store = Store::open(&db)?;
    let mut failed_passes: u32 = 0;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let pass = tokio::select! {
            pass = sync_once(&mut store, &client, &config, &operator) => pass,
            _ = stop.changed() => return Ok(()),
        };
        let wait = match pass {
            Ok(r) => {
                if r.sent > 0 || !r.new_alerts.is_empty() {
                    tracing::info!("outbox: {}", r.summary());
                }
                for a in &r.new_alerts {
                    tracing::warn!("outbox alert: order {}: {}", a.id, a.reason);
                }
                match r.stopped {
                    None => {
                        failed_passes = 0;
                        interval
                    }
                    Some(problem) => {
                        failed_passes += 1;
                        tracing::warn!(
                            "outbox: the shop is not answering ({problem}); {} sends wait",
                            r.outbox.pending
                        );
                        backoff(&config, failed_passes).max(interval)
                    }
                }
            }
            Err(e) => {
                failed_passes += 1;
                tracing::error!("outbox: {e:#}");
                backoff(&config, failed_passes).max(interval)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// A claimed send is leased for one request plus a margin; each further
/// request for it (a re-read, a resend with a new version) renews the lease.
fn lease_for(send_timeout: Duration) -> Duration {
    send_timeout + Duration::from_secs(2)
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Exponential backoff with equal jitter: `retry_first_secs` doubling per
/// failed try, capped at `retry_max_secs`; half fixed, half random.
fn backoff(config: &Config, tries: u32) -> Duration {
    let first = Duration::from_secs(config.outbox.retry_first_secs);
    let max = Duration::from_secs(config.outbox.retry_max_secs);
    let step = first
        .saturating_mul(1u32 << tries.saturating_sub(1).min(20))
        .min(max);
    let half = step / 2;
    half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
}

async fn renew(store: &mut Store, send: &ClaimedSend, send_timeout: Duration) -> Result<Instant> {
    store.outbox_extend_lease(
        send.id,
        Utc::now() + chrono_duration(lease_for(send_timeout)),
    )?;
    Ok(Instant::now() + send_timeout)
}

async fn ship(
    store: &mut Store,
    client: &ShopClient,
    send_timeout: Duration,
    send: &ClaimedSend,
) -> Result<Step> {
    let text = |k: &str| send.body.get(k).and_then(Value::as_str).unwrap_or("");
    let (courier, tracking_no, at) = (text("courier"), text("tracking_no"), text("handed_over_at"));
    let deadline = Instant::now() + send_timeout;
    crate::crash::outbox(send.kind.as_str(), "sending");
    let refused = match client
        .post_shipment(
            &send.order_id,
            courier,
            tracking_no,
            at,
            send.body.get("weight_g").and_then(Value::as_u64),
            deadline,
        )
        .await
    {
        Ok(order) => {
            // A resent shipment (its first answer was lost) is answered with the
            // order as it is now: a refund that came in between must stop the
            // done flag, not ride on the shipment's acknowledgement.
            if let Some(why) = stop_reason(&order) {
                return Ok(Step::Alert(intercept(
                    why,
                    send,
                    "the shipment was reported to the shop, the done flag was not set",
                )));
            }
            let version = version_of(&order);
            return Ok(Step::Acked {
                version,
                detail: format!(
                    "shipment {courier} {tracking_no} acknowledged by the shop{}",
                    shown_version(version)
                ),
            });
        }
        Err(ShopError::Conflict { message, .. }) => message,
        Err(e) => return Ok(failed(e, send)),
    };
    // 409 not_shippable: the re-read says whether it is ours already, or why not.
    let deadline = renew(store, send, send_timeout).await?;
    Ok(match client.get_order(&send.order_id, deadline).await {
        Ok(Some(current)) => after_not_shippable(&current, send, &refused),
        Ok(None) => gone(send),
        Err(e) => failed(e, send),
    })
}

/// How often a flag is resent with the shop's newer version in one pass before
/// it waits (an order that keeps changing).
const CONFLICT_ROUNDS: usize = 3;

async fn flag(
    store: &mut Store,
    client: &ShopClient,
    send_timeout: Duration,
    send: &ClaimedSend,
) -> Result<Step> {
    let flag = send
        .body
        .get("flag")
        .and_then(Value::as_str)
        .and_then(Flag::parse)
        .unwrap_or(Flag::Green);
    let memo = send.body.get("memo").filter(|m| m.is_object());
    let mut if_version = send.if_version;
    let mut deadline = Instant::now() + send_timeout;
    crate::crash::outbox(send.kind.as_str(), "sending");
    for round in 0..CONFLICT_ROUNDS {
        if round > 0 {
            deadline = renew(store, send, send_timeout).await?;
        }
        // Never write without if_version: it is what keeps a resend from adding
        // a second memo after someone else changed the order. Without a version
        // from the shipment's answer, read one first.
        let current = match if_version {
            Some(v) => Err(v),
            None => match client.get_order(&send.order_id, deadline).await {
                Ok(Some(order)) => Ok(order),
                Ok(None) => return Ok(gone(send)),
                Err(e) => return Ok(failed(e, send)),
            },
        };
        let current = match current {
            Err(v) => match client
                .put_flag(&send.order_id, flag, memo, Some(v), deadline)
                .await
            {
                Ok(order) => {
                    let version = version_of(&order);
                    return Ok(Step::Acked {
                        version,
                        detail: format!(
                            "flag {flag} with memo “{}” acknowledged by the shop{}",
                            memo_text(memo),
                            shown_version(version)
                        ),
                    });
                }
                Err(ShopError::Conflict { order, .. }) => match order {
                    Some(order) => *order,
                    None => {
                        deadline = renew(store, send, send_timeout).await?;
                        match client.get_order(&send.order_id, deadline).await {
                            Ok(Some(order)) => order,
                            Ok(None) => return Ok(gone(send)),
                            Err(e) => return Ok(failed(e, send)),
                        }
                    }
                },
                Err(e) => return Ok(failed(e, send)),
            },
            Ok(order) => order,
        };
        match after_flag_conflict(&current, memo, send) {
            Resolution::Done(version) => {
                return Ok(Step::Acked {
                    version,
                    detail: format!(
                        "flag {flag} with memo “{}”: the shop already has it (an earlier send went through and its answer was lost)",
                        memo_text(memo)
                    ),
                });
            }
            Resolution::Moot(why) => {
                return Ok(Step::Acked {
                    version: version_of(&current),
                    detail: format!(
                        "flag {flag} with memo “{}” not sent: {why}, so it is not needed any more",
                        memo_text(memo)
                    ),
                });
            }
            Resolution::Alert(alert) => return Ok(Step::Alert(alert)),
            Resolution::Resend(v) => {
                store.outbox_set_if_version(
                    send.id,
                    v,
                    &format!(
                        "the order changed on the shop (now v{v}); sent again with that version"
                    ),
                )?;
                if_version = Some(v);
            }
        }
    }
    Ok(Step::Wait {
        problem: format!(
            "the order kept changing on the shop ({CONFLICT_ROUNDS} version conflicts in a row)"
        ),
        shop_down: false,
    })
}

/// What a re-read after a 409 decides.
#[derive(Debug, PartialEq)]
enum Resolution {
    /// The shop already has our write (its answer was lost): acknowledged.
    Done(Option<u64>),
    /// An out-of-stock flag for an order that was refunded or closed meanwhile:
    /// nothing to tell the shop any more.
    Moot(&'static str),
    Alert(Alert),
    /// Someone else changed the order; nothing stops the flag: resend with this version.
    Resend(u64),
}

/// The flag met a version conflict; `current` is the order as the shop holds it.
/// Our memo on the order means our write was applied (the memo and the flag go
/// together), so it is done even if someone changed the flag since; otherwise a
/// refund, close or lost payment stops the done flag (an alert: the parcel has
/// left) and makes an out-of-stock flag moot; otherwise resend with the new version.
fn after_flag_conflict(current: &Value, memo: Option<&Value>, send: &ClaimedSend) -> Resolution {
    if let Some(memo) = memo
        && has_memo(current, memo)
    {
        return Resolution::Done(version_of(current));
    }
    if let Some(why) = stop_reason(current)
        && send.kind == SendKind::Exception
    {
        return Resolution::Moot(why);
    }
    // A returned parcel's order is often refunded: the returns flag is for
    // exactly that, so nothing on the order stops it.
    if send.kind == SendKind::Return {
        return match version_of(current) {
            Some(v) => Resolution::Resend(v),
            None => Resolution::Alert(Alert {
                reason: format!(
                    "the shop answered a version conflict for order {} without the order's version: the returns flag was not set; set it on the shop by hand",
                    send.order_id
                ),
                intercept: false,
            }),
        };
    }
    if let Some(why) = stop_reason(current) {
        return Resolution::Alert(intercept(
            why,
            send,
            "the shipment was already reported to the shop, the done flag was not set",
        ));
    }
    match version_of(current) {
        Some(v) => Resolution::Resend(v),
        None => Resolution::Alert(Alert {
            reason: format!(
                "the shop answered a version conflict for order {} without the order's version: the done flag was not set; set it on the shop by hand",
                send.order_id
            ),
            intercept: false,
        }),
    }
}

/// The shipment was refused as not shippable; `current` is the order now.
fn after_not_shippable(current: &Value, send: &ClaimedSend, refused: &str) -> Step {
    if let Some(why) = stop_reason(current) {
        return Step::Alert(intercept(why, send, "nothing was reported to the shop"));
    }
    let shipped = matches!(
        current.get("status").and_then(Value::as_str),
        Some("shipped" | "completed")
    );
    if shipped && mentions(current, &send.tracking_no) {
        let version = version_of(current);
        return Step::Acked {
            version,
            detail: format!(
                "shipment {} {}: the shop already has it{}",
                send.courier,
                send.tracking_no,
                shown_version(version)
            ),
        };
    }
    let reason = if shipped {
        format!(
            "the shop shows order {} as shipped, but not with {} {}: it was shipped some other way. Check on the shop which waybill the buyer sees; the done flag was not set",
            send.order_id, send.courier, send.tracking_no
        )
    } else {
        format!(
            "the shop refused the shipment of order {} ({} {}): {refused}. The parcel is with the courier: settle it on the shop by hand; the done flag was not set",
            send.order_id, send.courier, send.tracking_no
        )
    };
    Step::Alert(Alert {
        reason,
        intercept: false,
    })
}

/// Why an order must not be finished as shipped, as the shop shows it now.
fn stop_reason(order: &Value) -> Option<&'static str> {
    match order.get("refund").and_then(Value::as_str) {
        Some("requested") => return Some("a refund was requested on the shop"),
        Some("refunded") => return Some("the order was refunded on the shop"),
        _ => {}
    }
    match order.get("status").and_then(Value::as_str) {
        Some("closed") => Some("the order was closed on the shop"),
        Some("awaiting_payment") => Some("the order is no longer paid on the shop"),
        _ => None,
    }
}

fn intercept(why: &str, send: &ClaimedSend, written: &str) -> Alert {
    Alert {
        reason: format!(
            "{why} after handover (batch {}, {} {}): the parcel is with the courier — ask {} to intercept it (拦截); {written}",
            send.batch_id, send.courier, send.tracking_no, send.courier
        ),
        intercept: true,
    }
}

fn gone(send: &ClaimedSend) -> Step {
    if send.kind == SendKind::Return {
        return Step::Alert(Alert {
            reason: format!(
                "the shop no longer knows order {} (404): its returns flag was not set; the return is recorded here (`station show {}`)",
                send.order_id, send.order_id
            ),
            intercept: false,
        });
    }
    if send.kind == SendKind::Exception {
        return Step::Alert(Alert {
            reason: format!(
                "the shop no longer knows order {} (404): its out-of-stock flag was not set",
                send.order_id
            ),
            intercept: false,
        });
    }
    Step::Alert(intercept(
        "the shop no longer knows the order (404)",
        send,
        "nothing more was reported to the shop",
    ))
}

/// A send that failed without a 409: wait when it may pass, alert when the
/// shop refused this request for good, stop everything when the setup is wrong.
fn failed(e: ShopError, send: &ClaimedSend) -> Step {
    match e {
        ShopError::GaveUp { last, .. } => Step::Wait {
            problem: format!("the shop did not answer in time: {last}"),
            shop_down: true,
        },
        ShopError::NotJson { .. }
        | ShopError::BadPage { .. }
        | ShopError::RepeatedCursor { .. } => Step::Wait {
            problem: e.to_string(),
            shop_down: true,
        },
        ShopError::Unauthorized { .. } | ShopError::BadUrl { .. } | ShopError::NoToken => {
            Step::Fatal(e)
        }
        // Only the Shop API's own "not_found" means the order is gone; a 404
        // page from a proxy or a wrong path is the setup, not the order.
        ShopError::Refused {
            status: 404,
            ref code,
            ..
        } if code == "not_found" => gone(send),
        ShopError::Refused { status: 404, .. } => Step::Wait {
            problem: format!("{e} (not the Shop API's own answer: check shop.url)"),
            shop_down: true,
        },
        ShopError::Refused { .. } | ShopError::Conflict { .. }
            if send.kind == SendKind::Exception =>
        {
            Step::Alert(Alert {
                reason: format!(
                    "{e}. Order {} is out of stock in the warehouse: tell customer service by hand",
                    send.order_id
                ),
                intercept: false,
            })
        }
        ShopError::Refused { .. } | ShopError::Conflict { .. } if send.kind == SendKind::Return => {
            Step::Alert(Alert {
                reason: format!(
                    "{e}. The return of order {} is recorded here but the shop did not take the returns flag: tell after-sales by hand",
                    send.order_id
                ),
                intercept: false,
            })
        }
        ShopError::Refused { .. } | ShopError::Conflict { .. } => Step::Alert(Alert {
            reason: format!(
                "{e}. The parcel is with the courier ({} {}): settle order {} on the shop by hand",
                send.courier, send.tracking_no, send.order_id
            ),
            intercept: false,
        }),
    }
}

fn version_of(order: &Value) -> Option<u64> {
    order.get("version").and_then(Value::as_u64)
}

fn shown_version(v: Option<u64>) -> String {
    v.map(|v| format!(" (now v{v})")).unwrap_or_default()
}

fn memo_text(memo: Option<&Value>) -> &str {
    memo.and_then(|m| m.get("text"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Whether the order carries this memo (same text, author and time), anywhere:
/// what the shop compares to de-duplicate.
fn has_memo(order: &Value, memo: &Value) -> bool {
    order
        .get("memos")
        .and_then(Value::as_array)
        .is_some_and(|memos| {
            memos.iter().any(|m| {
                ["text", "author", "at"]
                    .iter()
                    .all(|k| m.get(k) == memo.get(k))
            })
        })
}

/// Whether any string in the order is this tracking number (the contract's
/// order has no shipment field, but a platform may add one).
fn mentions(order: &Value, tracking_no: &str) -> bool {
    match order {
        Value::String(s) => s == tracking_no,
        Value::Array(a) => a.iter().any(|v| mentions(v, tracking_no)),
        Value::Object(o) => o.values().any(|v| mentions(v, tracking_no)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn send(kind: SendKind) -> ClaimedSend {
        ClaimedSend {
            id: 1,
            order_id: "T1".into(),
            kind,
            batch_id: "B1".into(),
            courier: "ZTO".into(),
            tracking_no: "78310000123".into(),
            body: json!({}),
            order_version: 3,
            if_version: Some(4),
            attempts: 1,
        }
    }

    fn memo() -> Value {
        json!({"text": "已交接 中通 78310000123 · 小王 · 2026-11-11 15:02", "author": "小王",
               "at": "2026-11-11T15:02:00+08:00"})
    }

    fn order(status: &str, refund: &str, version: u64, memos: Value) -> Value {
        json!({"id": "T1", "status": status, "refund": refund, "version": version,
               "flag": "yellow", "memos": memos})
    }

    #[test]
    fn a_flag_conflict_with_our_memo_on_the_order_is_a_lost_acknowledgement() {
        let m = memo();
        // Our memo is there, even with a later memo and a refund after it.
        let current = order(
            "shipped",
            "requested",
            9,
            json!([m, {"text": "x", "author": "客服", "at": "2026-11-12T09:00:00+08:00"}]),
        );
        assert_eq!(
            after_flag_conflict(&current, Some(&m), &send(SendKind::Flag)),
            Resolution::Done(Some(9))
        );
        // The same text by someone else is not ours.
        let other = json!([{"text": m["text"], "author": "客服", "at": m["at"]}]);
        assert_eq!(
            after_flag_conflict(
                &order("shipped", "none", 6, other),
                Some(&m),
                &send(SendKind::Flag)
            ),
            Resolution::Resend(6)
        );
    }

    #[test]
    fn a_flag_conflict_after_a_refund_or_close_is_an_intercept_alert() {
        for (status, refund, why) in [
            ("shipped", "requested", "a refund was requested"),
            ("shipped", "refunded", "refunded"),
            ("closed", "none", "closed"),
            ("awaiting_payment", "none", "no longer paid"),
        ] {
            let current = order(status, refund, 5, json!([]));
            let Resolution::Alert(alert) =
                after_flag_conflict(&current, Some(&memo()), &send(SendKind::Flag))
            else {
                panic!("{status}/{refund} must alert");
            };
            assert!(alert.intercept);
            assert!(alert.reason.contains(why), "{}", alert.reason);
            assert!(
                alert.reason.contains("intercept it (拦截)"),
                "{}",
                alert.reason
            );
            assert!(alert.reason.contains("B1") && alert.reason.contains("78310000123"));
        }
    }

    #[test]
    fn an_out_of_stock_flag_for_a_refunded_order_is_moot_not_an_intercept() {
        let current = order("paid", "requested", 5, json!([]));
        let ex = send(SendKind::Exception);
        assert_eq!(
            after_flag_conflict(&current, Some(&memo()), &ex),
            Resolution::Moot("a refund was requested on the shop")
        );
        let changed = order("paid", "none", 6, json!([]));
        assert_eq!(
            after_flag_conflict(&changed, Some(&memo()), &ex),
            Resolution::Resend(6)
        );
        assert!(matches!(
            gone(&ex),
            Step::Alert(Alert {
                intercept: false,
                ..
            })
        ));
    }

    #[test]
    fn not_shippable_is_done_only_when_the_shop_shows_our_number() {
        let s = send(SendKind::Shipment);
        let mut ours = order("shipped", "none", 4, json!([]));
        ours["shipments"] = json!([{"tracking_no": "78310000123"}]);
        assert!(matches!(
            after_not_shippable(&ours, &s, "already shipped"),
            Step::Acked {
                version: Some(4),
                ..
            }
        ));
        let theirs = order("shipped", "none", 4, json!([]));
        let Step::Alert(alert) = after_not_shippable(&theirs, &s, "already shipped") else {
            panic!("shipped some other way must alert");
        };
        assert!(!alert.intercept);
        assert!(alert.reason.contains("some other way"), "{}", alert.reason);
        let refunded = order("paid", "requested", 4, json!([]));
        let Step::Alert(alert) = after_not_shippable(&refunded, &s, "refund") else {
            panic!("a refund must alert");
        };
        assert!(alert.intercept);
    }

    #[test]
    fn refusals_alert_and_outages_wait() {
        let s = send(SendKind::Shipment);
        let refused = ShopError::Refused {
            what: "the shipment".into(),
            status: 400,
            code: "bad_request".into(),
            message: "courier unknown".into(),
        };
        assert!(matches!(
            failed(refused, &s),
            Step::Alert(Alert {
                intercept: false,
                ..
            })
        ));
        let missing = ShopError::Refused {
            what: "x".into(),
            status: 404,
            code: "not_found".into(),
            message: String::new(),
        };
        assert!(matches!(
            failed(missing, &s),
            Step::Alert(Alert {
                intercept: true,
                ..
            })
        ));
        let down = ShopError::GaveUp {
            what: "x".into(),
            url: "u".into(),
            elapsed_secs: 5,
            last: "HTTP 503 unavailable".into(),
        };
        assert!(matches!(
            failed(down, &s),
            Step::Wait {
                shop_down: true,
                ..
            }
        ));
        let token = ShopError::Unauthorized { url: "u".into() };
        assert!(matches!(failed(token, &s), Step::Fatal(_)));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut config = Config::default();
        config.outbox.retry_first_secs = 2;
        config.outbox.retry_max_secs = 300;
        for (tries, step) in [(1, 2), (2, 4), (3, 8), (9, 300), (40, 300)] {
            let d = backoff(&config, tries).as_secs_f64();
            assert!(
                (step as f64 / 2.0..=step as f64).contains(&d),
                "try {tries}: {d}"
            );
        }
    }

    #[test]
    fn summary_line() {
        let mut r = SyncReport {
            sent: 4,
            ..Default::default()
        };
        assert_eq!(r.summary(), "sent 4, pending 0, alerts 0");
        r.outbox.pending = 6;
        r.outbox.oldest_pending_secs = Some(12);
        r.outbox.alerts.push(Listed {
            id: "T1".into(),
            reason: "x".into(),
        });
        assert_eq!(r.summary(), "sent 4, pending 6 (oldest 12s), alerts 1");
    }

    /// The worker against the in-process simulator, over loopback HTTP.
    mod against_the_simulator {
        use super::*;
        use crate::config::Secret;
        use crate::shop::client::RetryPolicy;
        use crate::shop::generate::{self, GenerateOptions};
        use crate::shop::sim::{self, Faults, SimConfig, Simulator};
        use crate::store::outbox_fixture;

        const TOKEN: &str = "outbox-test-token";

        struct Rig {
            _dir: tempfile::TempDir,
            store: Store,
            ids: Vec<String>,
            sim: Simulator,
            client: ShopClient,
            config: Config,
        }

        /// `n` orders handed over in the store and paid/yellow on the shop.
        async fn rig(n: usize) -> Rig {
            let (dir, store, ids) = outbox_fixture(n);
            let orders = generate::generate_json(&GenerateOptions {
                count: n,
                seed: 5,
                ..Default::default()
            });
            let sim = Simulator::new(
                orders,
                SimConfig {
                    token: TOKEN.into(),
                    faults: Faults::default(),
                },
            );
            let (addr, _) = sim::spawn(sim.clone(), ([127, 0, 0, 1], 0).into())
                .await
                .unwrap();
            let policy = RetryPolicy {
                request_timeout: Duration::from_millis(500),
                first_delay: Duration::from_millis(20),
                ..RetryPolicy::default()
            };
            let client =
                ShopClient::new(&format!("http://{addr}"), Secret::new(TOKEN), policy).unwrap();
            let mut config = Config::default();
            config.outbox.send_timeout_secs = 1;
            config.outbox.retry_first_secs = 1;
            Rig {
                _dir: dir,
                store,
                ids,
                sim,
                client,
                config,
            }
        }

        impl Rig {
            async fn sync(&mut self) -> SyncReport {
                sync_once(&mut self.store, &self.client, &self.config, "测试员")
                    .await
                    .unwrap()
            }

            fn memos_by_station(&self, id: &str) -> usize {
                let o = self.sim.order(id).unwrap();
                o["memos"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|m| m["text"].as_str().unwrap().starts_with("已交接"))
                    .count()
            }

            fn state(&self, id: &str) -> String {
                self.store
                    .order(id)
                    .unwrap()
                    .unwrap()
                    .state
                    .as_str()
                    .to_string()
            }

            /// Make every pending send due now (instead of sleeping out a backoff or lease).
            fn all_due(&mut self) {
                let far = Utc::now() + chrono::Duration::days(1);
                let mut ids = Vec::new();
                while let Some(s) = self
                    .store
                    .outbox_claim_due(far, Duration::from_secs(1))
                    .unwrap()
                {
                    ids.push(s.id);
                }
                for id in ids {
                    let past = Utc::now() - chrono::Duration::seconds(1);
                    self.store.outbox_retry_later(id, past, "test").unwrap();
                }
            }
        }

        #[tokio::test]
        async fn one_pass_ships_and_flags_every_order_once() {
            let mut r = rig(5).await;
            let report = r.sync().await;
            assert_eq!((report.sent, report.shipped), (10, 5), "{report:?}");
            assert_eq!(report.outbox.pending, 0);
            assert!(report.stopped.is_none());
            for id in &r.ids {
                let o = r.sim.order(id).unwrap();
                assert_eq!(
                    (o["status"].as_str(), o["flag"].as_str()),
                    (Some("shipped"), Some("green"))
                );
                assert_eq!(r.memos_by_station(id), 1);
                assert_eq!(r.state(id), "shipped");
            }
            // Nothing is sent twice.
            let again = r.sync().await;
            assert_eq!(again.sent, 0);
            let shipments = r.sim.log().iter().filter(|e| e.method == "POST").count();
            assert_eq!(shipments, 5);
        }

        #[tokio::test]
        async fn sends_overlap_up_to_the_limit_and_each_order_keeps_its_order() {
            let mut r = rig(24).await;
            r.sim.set_faults(Faults {
                latency_ms: 50,
                ..Faults::default()
            });
            r.config.outbox.max_in_flight = 8;
            let report = r.sync().await;
            assert_eq!((report.sent, report.shipped), (48, 24), "{report:?}");
            let log = r.sim.log();
            let most = log.iter().map(|e| e.concurrent).max().unwrap();
            assert!((2..=8).contains(&most), "at most {most} at once");
            // The log is written as answers go out: each shipment was answered
            // before its order's flag arrived.
            for id in &r.ids {
                let at = |m: &str| {
                    log.iter()
                        .position(|e| e.method == m && e.path.contains(id.as_str()))
                        .unwrap()
                };
                assert!(at("POST") < at("PUT"), "order {id}");
                assert_eq!(r.memos_by_station(id), 1);
            }
        }

        #[tokio::test]
        async fn a_rate_limit_spaces_the_requests() {
            let mut r = rig(6).await;
            r.config.outbox.max_per_sec = 20;
            let report = r.sync().await;
            assert_eq!(report.sent, 12, "{report:?}");
            let log = r.sim.log();
            // 12 requests at 20 a second: the last starts at least 11/20 s
            // after the first (the log has answer times; a slower machine only
            // spreads them more).
            let span = log.last().unwrap().at - log.first().unwrap().at;
            assert!(
                span >= chrono::Duration::milliseconds(500),
                "12 requests in {span}"
            );
        }

        #[tokio::test]
        async fn a_dead_shop_ends_the_pass_quickly_and_everything_waits() {
            let mut r = rig(4).await;
            r.sim.set_faults(Faults {
                unavailable_rate: 1.0,
                ..Faults::default()
            });
            let started = std::time::Instant::now();
            let report = r.sync().await;
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{:?}",
                started.elapsed()
            );
            assert_eq!(report.sent, 0);
            assert!(
                report.stopped.as_deref().unwrap().contains("503"),
                "{report:?}"
            );
            assert_eq!(report.outbox.pending, 8);
            assert!(report.outbox.last_error.as_deref().unwrap().contains("503"));
            // The failed send backs off; the others were not tried and stay due.
            r.sim.set_faults(Faults::default());
            r.all_due();
            let report = r.sync().await;
            assert_eq!((report.sent, report.outbox.pending), (8, 0), "{report:?}");
        }

        #[tokio::test]
        async fn a_lost_acknowledgement_never_makes_a_second_memo() {
            let mut r = rig(1).await;
            let id = r.ids[0].clone();
            // The shipment goes through and is acknowledged.
            let ship = r
                .store
                .outbox_claim_due(Utc::now(), Duration::from_secs(5))
                .unwrap()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(2);
            let b = &ship.body;
            let answer = r
                .client
                .post_shipment(
                    &id,
                    "ZTO",
                    b["tracking_no"].as_str().unwrap(),
                    b["handed_over_at"].as_str().unwrap(),
                    None,
                    deadline,
                )
                .await
                .unwrap();
            r.store
                .outbox_ack(ship.id, version_of(&answer), "w", "shipped")
                .unwrap();
            // The flag reaches the shop, then the station dies before recording it.
            let flag = r
                .store
                .outbox_claim_due(Utc::now(), Duration::from_secs(5))
                .unwrap()
                .unwrap();
            r.client
                .put_flag(
                    &id,
                    Flag::Green,
                    flag.body.get("memo"),
                    flag.if_version,
                    deadline,
                )
                .await
                .unwrap();
            // Customer service adds a memo meanwhile, so the resend is no longer identical
            // to the last state and meets a version conflict.
            r.sim.set_faults(Faults::default());
            let cs = serde_json::json!({"text": "客户来电", "author": "客服", "at": "2026-11-12T09:00:00+08:00"});
            let url = format!("{}/admin/orders/{id}/mutate", r.client.url());
            let resp = crate::shop::client::http()
                .build()
                .unwrap()
                .post(url)
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({"memo": cs}))
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success());
            r.all_due();
            let report = r.sync().await;
            assert_eq!((report.sent, report.shipped), (1, 1), "{report:?}");
            assert_eq!(r.memos_by_station(&id), 1);
            assert_eq!(r.state(&id), "shipped");
            let conflicts = r.sim.log().iter().filter(|e| e.status == 409).count();
            assert_eq!(conflicts, 1);
        }

        #[tokio::test]
        async fn a_refund_after_a_lost_shipment_answer_is_an_alert_not_a_green_flag() {
            let mut r = rig(1).await;
            let id = r.ids[0].clone();
            // The shipment reaches the shop; its answer is lost (the station dies).
            let ship = r
                .store
                .outbox_claim_due(Utc::now(), Duration::from_secs(5))
                .unwrap()
                .unwrap();
            let b = &ship.body;
            r.client
                .post_shipment(
                    &id,
                    "ZTO",
                    b["tracking_no"].as_str().unwrap(),
                    b["handed_over_at"].as_str().unwrap(),
                    None,
                    Instant::now() + Duration::from_secs(2),
                )
                .await
                .unwrap();
            // The buyer asks for a refund before the station sends again.
            let url = format!("{}/admin/orders/{id}/mutate", r.client.url());
            let resp = crate::shop::client::http()
                .build()
                .unwrap()
                .post(url)
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({"refund": "requested"}))
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success());
            // The resent shipment is answered 200 (same tracking number) with
            // the refunded order: an intercept alert, and no done flag.
            r.all_due();
            let report = r.sync().await;
            assert_eq!(report.new_alerts.len(), 1, "{report:?}");
            assert_eq!(r.state(&id), "intercept");
            let o = r.sim.order(&id).unwrap();
            assert_ne!(o["flag"], "green", "{o}");
            assert_eq!(r.memos_by_station(&id), 0);
            let puts = r.sim.log().iter().filter(|e| e.method == "PUT").count();
            assert_eq!(puts, 0);
        }

        #[tokio::test]
        async fn a_refund_after_the_shipment_is_an_alert_not_a_green_flag() {
            let mut r = rig(1).await;
            let id = r.ids[0].clone();
            let ship = r
                .store
                .outbox_claim_due(Utc::now(), Duration::from_secs(5))
                .unwrap()
                .unwrap();
            let b = &ship.body;
            let deadline = Instant::now() + Duration::from_secs(2);
            let answer = r
                .client
                .post_shipment(
                    &id,
                    "ZTO",
                    b["tracking_no"].as_str().unwrap(),
                    b["handed_over_at"].as_str().unwrap(),
                    None,
                    deadline,
                )
                .await
                .unwrap();
            r.store
                .outbox_ack(ship.id, version_of(&answer), "w", "shipped")
                .unwrap();
            let url = format!("{}/admin/orders/{id}/mutate", r.client.url());
            crate::shop::client::http()
                .build()
                .unwrap()
                .post(url)
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({"refund": "requested"}))
                .send()
                .await
                .unwrap();
            let report = r.sync().await;
            assert_eq!(report.sent, 0);
            assert_eq!(report.new_alerts.len(), 1, "{report:?}");
            assert!(report.new_alerts[0].reason.contains("refund"));
            let o = r.sim.order(&id).unwrap();
            assert_ne!(o["flag"], "green");
            assert_eq!(r.memos_by_station(&id), 0);
            assert_eq!(r.state(&id), "intercept");
        }

        #[tokio::test]
        async fn an_order_changed_on_the_shop_is_flagged_with_its_new_version() {
            let mut r = rig(1).await;
            let id = r.ids[0].clone();
            let ship = r
                .store
                .outbox_claim_due(Utc::now(), Duration::from_secs(5))
                .unwrap()
                .unwrap();
            let b = &ship.body;
            let deadline = Instant::now() + Duration::from_secs(2);
            let answer = r
                .client
                .post_shipment(
                    &id,
                    "ZTO",
                    b["tracking_no"].as_str().unwrap(),
                    b["handed_over_at"].as_str().unwrap(),
                    None,
                    deadline,
                )
                .await
                .unwrap();
            r.store
                .outbox_ack(ship.id, version_of(&answer), "w", "shipped")
                .unwrap();
            let url = format!("{}/admin/orders/{id}/mutate", r.client.url());
            crate::shop::client::http()
                .build()
                .unwrap()
                .post(url)
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({"address": "新地址 1 号"}))
                .send()
                .await
                .unwrap();
            let report = r.sync().await;
            assert_eq!((report.sent, report.shipped), (1, 1), "{report:?}");
            assert_eq!(r.sim.order(&id).unwrap()["flag"], "green");
            assert_eq!(r.memos_by_station(&id), 1);
        }

        #[tokio::test]
        async fn run_forever_sends_and_stops_when_told() {
            let r = rig(2).await;
            let db = r._dir.path().join("station.db");
            let (tx, rx) = watch::channel(false);
            let wake = Arc::new(Notify::new());
            let worker = tokio::spawn(run_forever(
                db.into(),
                r.client.clone(),
                r.config.clone(),
                "worker".into(),
                rx,
                wake.clone(),
            ));
            let until = std::time::Instant::now() + Duration::from_secs(10);
            while r.store.outbox_summary().unwrap().done_orders < 2 {
                assert!(
                    std::time::Instant::now() < until,
                    "the worker did not finish"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tx.send(true).unwrap();
            tokio::time::timeout(Duration::from_secs(2), worker)
                .await
                .expect("the worker stops when told")
                .unwrap()
                .unwrap();
        }
    }
}
