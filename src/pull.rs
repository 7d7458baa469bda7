//! Taking orders in: `pull` from a shop over HTTP and `import` from a file. Both
//! validate every order, keep the newest version of each, and hand batches to
//! the store under the rules of `intake`.
//!
//! Architecture invariant: a pull stores page by page (one transaction each), so
//! an error on page 40 keeps pages 1–39; but only a pull that reached the end of
//! the list may conclude anything from an order's *absence*. Such a complete
//! pull asks the shop directly about every active order it did not see (closed,
//! shipped elsewhere, flag moved) so nothing stays queued on stale information.
//!
//! The list is requested with `status=paid` and the pull flag is applied here,
//! not by the shop: an order whose flag moved off the pull flag must be seen to
//! leave the queue, and an order with a flag outside the contract must be
//! rejected with a reason rather than be invisible.

use crate::config::Config;
use crate::order::validate::{Origin, validate};
use crate::shop::client::{ListFilter, ShopClient, ShopError};
use crate::store::{Actor, Incoming, IntakeReport, Store, StoreError};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PullError {
    #[error("{source}{}", stored_note(*.pages_stored))]
    Shop {
        source: ShopError,
        pages_stored: u32,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {path}: {message}")]
    Input { path: String, message: String },
}

fn stored_note(pages: u32) -> String {
    match pages {
        0 => String::new(),
        n => format!(" ({n} page(s) read before the failure were stored)"),
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PullReport {
    pub source: String,
    pub pages: u32,
    pub received: u64,
    /// Copies of an order already seen in this run at the same or a higher version.
    pub duplicates: u64,
    /// Copies at the version already seen but with other content: a platform
    /// that changed an order without a new version. The first copy is kept and
    /// each one is named here (and in a `pull.conflicting_copy` event).
    pub conflicting_copies: Vec<String>,
    /// Active orders missing from the list and read one by one.
    pub checked_directly: u64,
    #[serde(flatten)]
    pub intake: IntakeReport,
    /// Reasons for the orders rejected in this run.
    pub rejections: Vec<String>,
    pub elapsed_ms: u64,
}

/// Keeps the newest copy of each id within one run (pages overlap).
#[derive(Default)]
struct Dedup {
    /// Per id: the highest version seen and the content of that copy.
    newest: HashMap<String, (u64, Value)>,
}

#[derive(Debug, PartialEq, Eq)]
enum Admit {
    /// New id, or a higher version than any copy so far: process it.
    Take,
    /// A copy of what was already taken (or older): skip it.
    Duplicate,
    /// The version already taken, but other content: skip it and say so.
    Conflict(String),
}

impl Dedup {
    /// Whether `raw` should be processed: its id is new, or its version is
    /// higher than any copy seen so far. Payloads without a string id always pass.
    fn admit(&mut self, raw: &Value) -> Admit {
        let Some(id) = raw.get("id").and_then(Value::as_str) else {
            return Admit::Take;
        };
        let version = raw.get("version").and_then(Value::as_u64).unwrap_or(0);
        match self.newest.get_mut(id) {
            Some((v, first)) if *v == version && first != raw => Admit::Conflict(format!(
                "order {id:?}: the shop sent two different copies of version {version}; the first was kept (a platform must give every change a new version)"
            )),
            Some((v, _)) if *v >= version => Admit::Duplicate,
            Some(seen) => {
                *seen = (version, raw.clone());
                Admit::Take
            }
            None => {
                self.newest.insert(id.to_string(), (version, raw.clone()));
                Admit::Take
            }
        }
    }
}

fn to_incoming(raw: &Value, origin: Origin<'_>) -> Incoming {
    match validate(raw, origin) {
        Ok(order) => Incoming::Valid(order),
        Err(rejection) => Incoming::Invalid {
            rejection,
            raw: raw.to_string(),
        },
    }
}

fn take(
    store: &mut Store,
    batch: &[Incoming],
    actor: &Actor<'_>,
    cfg: &Config,
    report: &mut PullReport,
) -> Result<(), StoreError> {
    let r = store.ingest(batch, actor, cfg.flags.pull)?;
    report.intake.add(&r);
    for item in batch {
        if let Incoming::Invalid { rejection, .. } = item {
            report.rejections.push(rejection.reason.clone());
        }
    }
    Ok(())
}

/// Pull every paid order from the shop into the store.
pub async fn pull(
    client: &ShopClient,
    store: &mut Store,
    cfg: &Config,
    operator: &str,
) -> Result<PullReport, PullError> {
    let started = Instant::now();
    let actor = Actor {
        operator,
        source: "shop",
    };
    let mut report = PullReport {
        source: client.url().to_string(),
        ..Default::default()
    };
    let deadline = client.deadline();
    let filter = ListFilter {
        status: Some("paid".into()),
        flag: None,
        page_size: cfg.shop.page_size,
    };
    let mut pager = client.pages(filter, deadline);
    let mut dedup = Dedup::default();
    let pull_started = crate::store::now();
    loop {
        let page = match pager.next().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(source) => {
                let detail = format!("pull stopped after {} page(s): {source}", report.pages);
                store.record(operator, None, "pull.failed", &detail)?;
                return Err(PullError::Shop {
                    source,
                    pages_stored: report.pages,
                });
            }
        };
        report.pages += 1;
        report.received += page.orders.len() as u64;
        let mut batch = Vec::with_capacity(page.orders.len());
        for (i, raw) in page.orders.iter().enumerate() {
            match dedup.admit(raw) {
                Admit::Take => batch.push(to_incoming(raw, Origin::Page(page.number, i + 1))),
                Admit::Duplicate => report.duplicates += 1,
                Admit::Conflict(why) => {
                    report.duplicates += 1;
                    let id = raw.get("id").and_then(Value::as_str);
                    store.record(operator, id, "pull.conflicting_copy", &why)?;
                    report.conflicting_copies.push(why);
                }
            }
        }
        take(store, &batch, &actor, cfg, &mut report)?;
        // Tests hold a pull here to change the shop between two pages.
        crate::crash::pause("pull.page.stored");
    }

    // The list is complete: ask about every active order it did not contain.
    let mut missing: Vec<String> = store
        .active_ids()?
        .into_iter()
        .filter(|id| !dedup.newest.contains_key(id))
        .collect();
    missing.sort();
    for id in missing {
        report.checked_directly += 1;
        let incoming = match client.get_order(&id, deadline).await {
            Ok(Some(raw)) => to_incoming(&raw, Origin::Direct),
            Ok(None) => Incoming::Gone { id },
            Err(source) => {
                let detail = format!("pull stopped while reading order {id} directly: {source}");
                store.record(operator, None, "pull.failed", &detail)?;
                return Err(PullError::Shop {
                    source,
                    pages_stored: report.pages,
                });
            }
        };
        take(store, &[incoming], &actor, cfg, &mut report)?;
    }
    // Rejected orders the list no longer carries were closed, shipped or
    // deleted on the shop: their rejection is moot. Positions from earlier
    // pulls mean nothing now.
    for key in store.rejection_keys(actor.source)? {
        if !dedup.newest.contains_key(&key) {
            store.clear_rejection(&key, operator, "no longer among the shop's paid orders")?;
        }
    }
    store.clear_positional_rejections(actor.source, &pull_started)?;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    store.record(operator, None, "pull.finished", &summary(&report))?;
    Ok(report)
}

/// Import orders from a file holding a JSON array or JSON Lines, under the same
/// rules as a pull. Unlike a pull, a file says nothing about orders it lacks.
pub fn import(
    path: &Path,
    store: &mut Store,
    cfg: &Config,
    operator: &str,
) -> Result<PullReport, PullError> {
    let started = Instant::now();
    let shown = path.display().to_string();
    let input_err = |message: String| PullError::Input {
        path: shown.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| input_err(e.to_string()))?;
    let name = path
        .file_name()
        .map_or(shown.clone(), |n| n.to_string_lossy().into_owned());
    let source = format!("import:{name}");
    let actor = Actor {
        operator,
        source: &source,
    };
    let mut report = PullReport {
        source: shown.clone(),
        pages: 1,
        ..Default::default()
    };
    let mut dedup = Dedup::default();

    // Files saved by Windows tools start with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let records: Vec<(usize, Result<Value, String>)> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(values)) => values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i + 1, Ok(v)))
            .collect(),
        // One (possibly pretty-printed) order.
        Ok(one) => vec![(1, Ok(one))],
        Err(e) if text.trim_start().starts_with('[') => {
            return Err(input_err(format!(
                "not a valid JSON array ({e}); fix the file or give one order per line (JSON Lines)"
            )));
        }
        Err(_) => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, serde_json::from_str(l).map_err(|e| e.to_string())))
            .collect(),
    };
    if !records.is_empty() && records.iter().all(|(_, r)| r.is_err()) {
        return Err(input_err(
            "no line is JSON: give a JSON array of orders or one order per line (JSON Lines)"
                .into(),
        ));
    }
    store.clear_positional_rejections(actor.source, &crate::store::now())?;
    let mut batch = Vec::new();
    for (n, record) in records {
        report.received += 1;
        let origin = Origin::Record(&name, n);
        match record {
            Ok(raw) => match dedup.admit(&raw) {
                Admit::Take => batch.push(to_incoming(&raw, origin)),
                Admit::Duplicate => report.duplicates += 1,
                Admit::Conflict(why) => {
                    report.duplicates += 1;
                    report.conflicting_copies.push(why);
                }
            },
            Err(e) => {
                let key = origin.to_string();
                let rejection = crate::order::validate::Rejection {
                    reason: format!("{key}: not valid JSON ({e})"),
                    key,
                    version: None,
                    by_position: true,
                };
                batch.push(Incoming::Invalid {
                    rejection,
                    raw: String::new(),
                });
            }
        }
        // Bounded batches keep a big file's transactions short.
        if batch.len() == 500 {
            take(store, &batch, &actor, cfg, &mut report)?;
            batch.clear();
        }
    }
    take(store, &batch, &actor, cfg, &mut report)?;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    store.record(operator, None, "import.finished", &summary(&report))?;
    Ok(report)
}

fn summary(r: &PullReport) -> String {
    let i = &r.intake;
    format!(
        "{} received on {} page(s), {} new, {} updated, {} unchanged, {} not for the warehouse, {} left the queue, {} marked, {} rejected, {} checked directly",
        r.received,
        r.pages,
        i.new,
        i.updated,
        i.unchanged + r.duplicates,
        i.not_eligible,
        i.left_queue,
        i.marked,
        i.rejected,
        r.checked_directly
    )
}

impl PullReport {
    pub fn summary(&self) -> String {
        summary(self)
    }
}

/// Whether the station asked the shop about an order just now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShopCheck {
    /// The shop answered; the state shown is the shop's current one.
    Checked,
    /// The shop did not answer in time: the last known state was used.
    Unreachable,
    /// No shop check was needed (or no shop is configured).
    Skipped,
}

/// At most this many re-reads at once (a batch of hundreds at a handover close).
const RECHECK_AT_ONCE: usize = 16;

/// Re-read orders from the shop, several at once, and take the answers in
/// through intake (a refund becomes an intercept, a change
/// changed-after-print). Orders the shop did not answer for keep their last
/// known state, and the answer says so (`Unreachable`); `Skipped` without a
/// shop. The client's own patience bounds the wait (the bench's short one).
pub async fn recheck(
    store: &mut Store,
    shop: Option<&ShopClient>,
    config: &Config,
    actor: &Actor<'_>,
    ids: &[String],
) -> Result<ShopCheck, StoreError> {
    Ok(recheck_each(store, shop, config, actor, ids).await?.0)
}

/// [`recheck`], and the ids of the orders the shop did not answer about (they
/// stay on their last known state).
pub async fn recheck_each(
    store: &mut Store,
    shop: Option<&ShopClient>,
    config: &Config,
    actor: &Actor<'_>,
    ids: &[String],
) -> Result<(ShopCheck, Vec<String>), StoreError> {
    let Some(shop) = shop else {
        return Ok((ShopCheck::Skipped, Vec::new()));
    };
    let mut answers = Vec::with_capacity(ids.len());
    let mut unanswered = Vec::new();
    let mut unreachable = false;
    for chunk in ids.chunks(RECHECK_AT_ONCE) {
        let mut reads = tokio::task::JoinSet::new();
        for id in chunk {
            let (shop, id) = (shop.clone(), id.clone());
            reads.spawn(async move {
                let answer = shop.get_order(&id, shop.deadline()).await;
                (id, answer)
            });
        }
        let mut asked: std::collections::HashSet<&String> = chunk.iter().collect();
        while let Some(joined) = reads.join_next().await {
            let Ok((id, answer)) = joined else {
                unreachable = true;
                continue;
            };
            asked.remove(&id);
            match answer {
                Ok(Some(raw)) => answers.push(match validate(&raw, Origin::Direct) {
                    Ok(order) => Incoming::Valid(order),
                    Err(rejection) => Incoming::Invalid {
                        rejection,
                        raw: raw.to_string(),
                    },
                }),
                Ok(None) => answers.push(Incoming::Gone { id }),
                Err(e) => {
                    tracing::warn!(order = %id, source = actor.source, "re-reading the order: {e}");
                    unreachable = true;
                    unanswered.push(id);
                }
            }
        }
        // A read that panicked took its id with it: still unanswered.
        unanswered.extend(asked.into_iter().cloned());
    }
    if !answers.is_empty() {
        store.ingest(&answers, actor, config.flags.pull)?;
    }
    unanswered.sort();
    let check = if unreachable {
        ShopCheck::Unreachable
    } else {
        ShopCheck::Checked
    };
    Ok((check, unanswered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dedup_takes_newer_skips_copies_and_names_a_conflicting_copy() {
        let mut d = Dedup::default();
        let v1 = json!({"id": "A", "version": 1, "recipient": {"address": "x"}});
        assert_eq!(d.admit(&v1), Admit::Take);
        assert_eq!(d.admit(&v1), Admit::Duplicate);
        let other = json!({"id": "A", "version": 1, "recipient": {"address": "y"}});
        match d.admit(&other) {
            Admit::Conflict(why) => assert!(
                why.contains("order \"A\"") && why.contains("version 1"),
                "{why}"
            ),
            a => panic!("{a:?}"),
        }
        let v2 = json!({"id": "A", "version": 2});
        assert_eq!(d.admit(&v2), Admit::Take);
        assert_eq!(d.admit(&v1), Admit::Duplicate, "older is a plain duplicate");
        assert_eq!(d.admit(&json!("no id")), Admit::Take);
    }
}
