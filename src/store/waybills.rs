//! Numbers from e-waybill services: the requests (committed before each call,
//! under the request id the service de-duplicates by), the numbers and
//! routing that came back, the refusals, and the numbers to give back.
//!
//! Architecture invariant: a request row is committed before its call; an
//! answer is recorded once (a request already answered is left as it is); a
//! service number voided anywhere is queued for cancelling by a trigger in
//! the same transaction (`015_waybill_service.sql`).

use super::sql;
use super::sql::{OptionalExtension, params};
use super::{Result, Store, event, now};
use crate::render::Routing;
use serde::Serialize;

/// A parcel's request, recorded and not yet answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRequest {
    pub request_id: String,
    pub order_id: String,
    pub order_version: u64,
    pub courier: String,
}

/// What came back for one request.
#[derive(Clone, Debug)]
pub enum Answered<'a> {
    Taken {
        request_id: &'a str,
        number: &'a str,
        routing: &'a Routing,
    },
    Refused {
        request_id: &'a str,
        code: &'a str,
        message: &'a str,
    },
}

/// A number to give back to its service, claimed for one attempt.
#[derive(Clone, Debug)]
pub struct DueCancel {
    pub number: String,
    pub courier: String,
    pub order_id: String,
    pub reason: String,
    pub attempts: u64,
}

/// A courier's numbers of one day (`station couriers`).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct CourierDay {
    pub courier: String,
    /// Numbers issued to orders that day.
    pub taken: u64,
    /// Of those, the ones on a parcel that was printed and is still live.
    pub used: u64,
    /// Numbers voided that day (and, for a service, given back or waiting to be).
    pub voided: u64,
    /// Service numbers confirmed cancelled at the service that day.
    pub cancelled: u64,
    /// Service numbers waiting to be given back, and those that could not be.
    pub cancel_pending: u64,
    pub cancel_alerts: u64,
}

fn new_request_id() -> String {
    // 26 characters of [A-Za-z0-9-]: within the contract's 1..64, unique
    // across stations sharing a service account.
    format!(
        "st-{:012x}{:011x}",
        rand::random::<u64>() >> 16,
        rand::random::<u64>() >> 20
    )
}

impl Store {
    /// The requests to send for these (order, courier) parcels, committed
    /// before anything is sent: none for an order that already holds a live
    /// number of that courier for its current version; the earlier request
    /// when one is still unanswered (a crash or a lost answer: the same id
    /// gets the same number back); else a new one.
    pub fn waybill_requests(
        &mut self,
        parcels: &[(&str, &str)],
        operator: &str,
    ) -> Result<Vec<PendingRequest>> {
        let tx = self.write_tx()?;
        let mut out = Vec::new();
        for (order_id, courier) in parcels {
            let Some(version) = tx
                .prepare_cached("SELECT version FROM orders WHERE id = ?1")?
                .query_row([order_id], |r| r.get::<_, u64>(0))
                .optional()?
            else {
                continue;
            };
            let holds = tx
                .prepare_cached(
                    "SELECT 1 FROM tracking_numbers WHERE order_id = ?1 AND state = 'allocated'
                     AND courier = ?2 AND order_version = ?3",
                )?
                .exists(params![order_id, courier, version])?;
            if holds {
                continue;
            }
            let pending: Option<String> = tx
                .prepare_cached(
                    "SELECT request_id FROM waybill_requests WHERE order_id = ?1 AND order_version = ?2
                     AND courier = ?3 AND state = 'pending' ORDER BY created_at LIMIT 1",
                )?
                .query_row(params![order_id, version, courier], |r| r.get(0))
                .optional()?;
            let request_id = match pending {
                Some(id) => id,
                None => {
                    let id = new_request_id();
                    tx.prepare_cached(
                        "INSERT INTO waybill_requests (request_id, courier, order_id, order_version, state, created_at)
                         VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
                    )?
                    .execute(params![id, courier, order_id, version, now()])?;
                    event(
                        &tx,
                        operator,
                        Some(order_id),
                        "tracking.requested",
                        &format!("{courier} e-waybill request {id} for v{version}"),
                    )?;
                    id
                }
            };
            out.push(PendingRequest {
                request_id,
                order_id: order_id.to_string(),
                order_version: version,
                courier: courier.to_string(),
            });
        }
        crate::crash::point("waybill.requests.before_commit");
        tx.commit()?;
        Ok(out)
    }

    /// Record what one call answered, in one transaction: each number with
    /// its routing as the order's live number (voiding the one it replaces),
    /// each refusal with its reason. An answer to a request already answered
    /// changes nothing.
    pub fn record_waybill_answers(
        &mut self,
        answers: &[Answered<'_>],
        operator: &str,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        let at = now();
        for answer in answers {
            let request_id = match answer {
                Answered::Taken { request_id, .. } | Answered::Refused { request_id, .. } => {
                    *request_id
                }
            };
            let Some((courier, order_id, version)) = tx
                .prepare_cached(
                    "SELECT courier, order_id, order_version FROM waybill_requests
                     WHERE request_id = ?1 AND state = 'pending'",
                )?
                .query_row([request_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u64>(2)?,
                    ))
                })
                .optional()?
            else {
                continue;
            };
            match answer {
                Answered::Taken {
                    number, routing, ..
                } => {
                    // A number the station already holds under another request
                    // would be a second parcel on one number: refuse it loudly.
                    let known: Option<Option<String>> = tx
                        .prepare_cached(
                            "SELECT request_id FROM tracking_numbers WHERE number = ?1",
                        )?
                        .query_row([number], |r| r.get(0))
                        .optional()?;
                    if let Some(other) = known {
                        let detail = format!(
                            "{courier} e-waybill service answered request {request_id} with {number}, which request {} already holds: not used",
                            other.as_deref().unwrap_or("(a pool)")
                        );
                        tx.execute(
                            "UPDATE waybill_requests SET state = 'refused', error_code = 'duplicate_number',
                                    error_message = ?2, answered_at = ?3 WHERE request_id = ?1",
                            params![request_id, detail, at],
                        )?;
                        event(&tx, operator, Some(&order_id), "tracking.refused", &detail)?;
                        continue;
                    }
                    let stale: Option<(String, u64)> = tx
                        .prepare_cached(
                            "SELECT number, order_version FROM tracking_numbers
                             WHERE order_id = ?1 AND state = 'allocated'",
                        )?
                        .query_row([&order_id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    if let Some((old, old_version)) = stale {
                        let reason = if old_version != version {
                            format!("order changed after print (v{old_version} → v{version})")
                        } else {
                            format!("replaced by {courier} {number}")
                        };
                        tx.execute(
                            "UPDATE tracking_numbers SET state = 'voided', voided_at = ?2, void_reason = ?3 WHERE number = ?1",
                            params![old, at, reason],
                        )?;
                        event(
                            &tx,
                            operator,
                            Some(&order_id),
                            "tracking.voided",
                            &format!("{old}: {reason}"),
                        )?;
                    }
                    tx.prepare_cached(
                        "INSERT INTO tracking_numbers (number, courier, order_id, order_version, state, allocated_at,
                                                       sort_code, short_address, package_center, request_id)
                         VALUES (?1, ?2, ?3, ?4, 'allocated', ?5, ?6, ?7, ?8, ?9)",
                    )?
                    .execute(params![
                        number,
                        courier,
                        order_id,
                        version,
                        at,
                        routing.sort_code,
                        routing.short_address,
                        routing.package_center,
                        request_id
                    ])?;
                    tx.execute(
                        "UPDATE waybill_requests SET state = 'taken', number = ?2, answered_at = ?3 WHERE request_id = ?1",
                        params![request_id, number, at],
                    )?;
                    event(
                        &tx,
                        operator,
                        Some(&order_id),
                        "tracking.allocated",
                        &format!(
                            "{courier} {number} for v{version} (e-waybill {request_id}; {})",
                            routing.sort_code
                        ),
                    )?;
                }
                Answered::Refused { code, message, .. } => {
                    tx.execute(
                        "UPDATE waybill_requests SET state = 'refused', error_code = ?2, error_message = ?3, answered_at = ?4
                         WHERE request_id = ?1",
                        params![request_id, code, message, at],
                    )?;
                    event(
                        &tx,
                        operator,
                        Some(&order_id),
                        "tracking.refused",
                        &format!(
                            "{courier} e-waybill service refused v{version}: {code}: {message}"
                        ),
                    )?;
                }
            }
        }
        crate::crash::point("waybill.answers.before_commit");
        tx.commit()?;
        Ok(())
    }

    /// Why this courier's service refused this version of the order, if it did
    /// (`unreachable`, `bad_address`, …, and the service's message).
    pub fn waybill_refusal(
        &self,
        order_id: &str,
        version: u64,
        courier: &str,
    ) -> Result<Option<(String, String)>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT error_code, error_message FROM waybill_requests WHERE order_id = ?1
                 AND order_version = ?2 AND courier = ?3 AND state = 'refused' ORDER BY answered_at DESC LIMIT 1",
            )?
            .query_row(params![order_id, version, courier], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                ))
            })
            .optional()?)
    }

    /// The routing printed with a number (empty for a pool's number).
    pub fn routing(&self, number: &str) -> Result<Routing> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT sort_code, short_address, package_center FROM tracking_numbers WHERE number = ?1",
            )?
            .query_row([number], |r| {
                Ok(Routing {
                    sort_code: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    short_address: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    package_center: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                })
            })
            .optional()?
            .unwrap_or_default())
    }

    /// Claim up to `limit` numbers due to be given back (leased until `lease_until`).
    pub fn claim_cancels(&mut self, lease_until: &str, limit: usize) -> Result<Vec<DueCancel>> {
        let tx = self.write_tx()?;
        let due: Vec<DueCancel> = tx
            .prepare_cached(
                "SELECT number, courier, order_id, reason, attempts FROM waybill_cancels
                 WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY created_at, number LIMIT ?2",
            )?
            .query_map(params![now(), limit as i64], |r| {
                Ok(DueCancel {
                    number: r.get(0)?,
                    courier: r.get(1)?,
                    order_id: r.get(2)?,
                    reason: r.get(3)?,
                    attempts: r.get(4)?,
                })
            })?
            .collect::<sql::Result<_>>()?;
        for c in &due {
            tx.prepare_cached(
                "UPDATE waybill_cancels SET attempts = attempts + 1, next_attempt_at = ?2 WHERE number = ?1",
            )?
            .execute(params![c.number, lease_until])?;
        }
        tx.commit()?;
        Ok(due)
    }

    /// The outcome of giving a number back: `Ok` cancelled; `Err((alert, problem))`
    /// an alert for a person (`already_used`, `not_found`) or a retry at `retry_at`.
    pub fn finish_cancel(
        &mut self,
        c: &DueCancel,
        outcome: std::result::Result<(), (bool, String)>,
        retry_at: &str,
        operator: &str,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        let at = now();
        match outcome {
            Ok(()) => {
                tx.execute(
                    "UPDATE waybill_cancels SET state = 'done', done_at = ?2, last_error = NULL WHERE number = ?1",
                    params![c.number, at],
                )?;
                event(
                    &tx,
                    operator,
                    Some(&c.order_id),
                    "tracking.cancelled",
                    &format!(
                        "{} {} given back to the e-waybill service ({})",
                        c.courier, c.number, c.reason
                    ),
                )?;
            }
            Err((true, problem)) => {
                tx.execute(
                    "UPDATE waybill_cancels SET state = 'alert', last_error = ?2 WHERE number = ?1",
                    params![c.number, problem],
                )?;
                event(
                    &tx,
                    operator,
                    Some(&c.order_id),
                    "tracking.cancel_alert",
                    &format!(
                        "{} {} could not be given back: {problem}",
                        c.courier, c.number
                    ),
                )?;
            }
            Err((false, problem)) => {
                tx.execute(
                    "UPDATE waybill_cancels SET next_attempt_at = ?2, last_error = ?3 WHERE number = ?1",
                    params![c.number, retry_at, problem],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Each courier's numbers between two instants (UTC RFC 3339), for `station couriers`.
    pub fn courier_days(&self, from: &str, to: &str) -> Result<Vec<CourierDay>> {
        let mut days: std::collections::BTreeMap<String, CourierDay> = Default::default();
        let mut stmt = self.conn.prepare(
            "SELECT t.courier,
                    CAST(SUM(CASE WHEN t.allocated_at >= ?1 AND t.allocated_at < ?2 THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(SUM(CASE WHEN t.allocated_at >= ?1 AND t.allocated_at < ?2 AND t.state = 'allocated'
                                   AND o.state IN ('printed', 'packed', 'handed_over', 'shipped') THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(SUM(CASE WHEN t.voided_at >= ?1 AND t.voided_at < ?2 THEN 1 ELSE 0 END) AS BIGINT)
             FROM tracking_numbers t JOIN orders o ON o.id = t.order_id GROUP BY t.courier",
        )?;
        let rows = stmt.query_map(params![from, to], |r| {
            Ok(CourierDay {
                courier: r.get(0)?,
                taken: r.get(1)?,
                used: r.get(2)?,
                voided: r.get(3)?,
                ..CourierDay::default()
            })
        })?;
        for d in rows {
            let d = d?;
            days.insert(d.courier.clone(), d);
        }
        let mut stmt = self.conn.prepare(
            "SELECT courier,
                    CAST(SUM(CASE WHEN state = 'done' AND done_at >= ?1 AND done_at < ?2 THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(SUM(CASE WHEN state = 'alert' THEN 1 ELSE 0 END) AS BIGINT)
             FROM waybill_cancels GROUP BY courier",
        )?;
        let rows = stmt.query_map(params![from, to], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u64>(1)?,
                r.get::<_, u64>(2)?,
                r.get::<_, u64>(3)?,
            ))
        })?;
        for row in rows {
            let (courier, done, pending, alerts) = row?;
            let d = days.entry(courier.clone()).or_insert_with(|| CourierDay {
                courier,
                ..CourierDay::default()
            });
            d.cancelled = done;
            d.cancel_pending = pending;
            d.cancel_alerts = alerts;
        }
        Ok(days.into_values().collect())
    }
}
