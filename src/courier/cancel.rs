//! Giving voided numbers back to their e-waybill service (回收), from the
//! outbox worker (`station sync`, `serve`).
//!
//! A service number voided anywhere (a reprint after a change, out of stock,
//! `station void`) is queued by a trigger in the voiding transaction. Each
//! pass claims the due ones (a lease, so syncs at once never send one twice),
//! asks the service to cancel, and records the outcome: cancelled; an alert for
//! a person when the service says `already_used` (the courier has scanned the
//! parcel) or `not_found`; else a retry later with backoff.

use super::{ServiceError, api};
use crate::config::Config;
use crate::store::Store;
use anyhow::Result;
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// What one pass did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CancelReport {
    pub cancelled: u64,
    /// (number, why it could not be given back): for a person to look at.
    pub alerts: Vec<(String, String)>,
    /// Left for a later pass (the service was down), with the last problem.
    pub retrying: Vec<(String, String)>,
}

/// Claimed at a time; a pass loops until nothing is due.
const BATCH: usize = 50;

fn at(after: chrono::Duration) -> String {
    (Utc::now() + after).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Give back every number due now.
pub async fn cancel_due(
    store: &mut Store,
    config: &Config,
    operator: &str,
) -> Result<CancelReport> {
    let mut report = CancelReport::default();
    if !config.couriers.iter().any(|c| c.is_service()) {
        return Ok(report);
    }
    let mut services: BTreeMap<String, Option<Box<dyn super::WaybillService>>> = BTreeMap::new();
    let patience = api::Patience {
        request_timeout: std::time::Duration::from_secs(config.outbox.send_timeout_secs),
        total: std::time::Duration::from_secs(config.outbox.send_timeout_secs * 2),
    };
    let lease = at(chrono::Duration::seconds(
        (config.outbox.send_timeout_secs * 3).max(30) as i64,
    ));
    // Numbers already tried in this pass are not claimed again in it.
    let mut seen = std::collections::HashSet::new();
    loop {
        let due = store.claim_cancels(&lease, BATCH)?;
        let due: Vec<_> = due
            .into_iter()
            .filter(|c| seen.insert(c.number.clone()))
            .collect();
        if due.is_empty() {
            return Ok(report);
        }
        for c in due {
            let service = services.entry(c.courier.clone()).or_insert_with(|| {
                config
                    .courier(&c.courier)
                    .filter(|k| k.is_service())
                    .and_then(|k| super::service_for(k, patience).ok())
            });
            let outcome: std::result::Result<(), (bool, String)> = match service {
                None => Err((
                    false,
                    format!(
                        "courier {} has no e-waybill service configured here (source, service_url, token_env)",
                        c.courier
                    ),
                )),
                Some(s) => match s.cancel(&c.number, &c.reason).await {
                    Ok(()) => Ok(()),
                    Err(e @ ServiceError::Refused { .. }) => Err((true, e.to_string())),
                    Err(e) => Err((false, e.to_string())),
                },
            };
            // Backoff for a retry: 30 s doubling per attempt, at most an hour.
            let retry_secs = (30i64 << c.attempts.min(7)).min(3600);
            match &outcome {
                Ok(()) => report.cancelled += 1,
                Err((true, why)) => report.alerts.push((c.number.clone(), why.clone())),
                Err((false, why)) => report.retrying.push((c.number.clone(), why.clone())),
            }
            store.finish_cancel(
                &c,
                outcome,
                &at(chrono::Duration::seconds(retry_secs)),
                operator,
            )?;
        }
    }
}
