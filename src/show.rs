//! "Where is this order?" — `station show ORDER|TRACKING|NICK`: everything the
//! station knows about an order, for customer service before they change or
//! cancel it: state and why, every wave and tracking number (current and
//! voided), packing, handover batch, write-backs still pending, and the full
//! audit timeline (who did what, when).

use crate::store::{
    Event, HandoverEntry, PackingEntry, ReturnEntry, Store, TrackingNumber, WaveEntry,
    WriteBackEntry,
};
use anyhow::Result;
use serde::Serialize;
use std::io::Write;

#[derive(Clone, Debug, Serialize)]
pub struct OrderStory {
    pub id: String,
    pub version: u64,
    pub state: String,
    pub reason: Option<String>,
    /// A plain-language answer: printed? packed? handed over? on the shop?
    pub summary: String,
    pub buyer_nick: String,
    pub paid_at: Option<String>,
    pub urgent: bool,
    pub waves: Vec<WaveEntry>,
    pub tracking_numbers: Vec<TrackingNumber>,
    pub packings: Vec<PackingEntry>,
    pub handover: Vec<HandoverEntry>,
    /// What came back at returns intake (退货登记), one entry per SKU of a receipt.
    pub returns: Vec<ReturnEntry>,
    pub write_backs: Vec<WriteBackEntry>,
    pub timeline: Vec<Event>,
}

/// Every order matching `query` (order id, tracking number or buyer nick).
pub fn show(store: &Store, query: &str) -> Result<Vec<OrderStory>> {
    let mut out = Vec::new();
    for id in store.find_orders(query)? {
        let Some(stored) = store.order(&id)? else {
            continue;
        };
        let o = &stored.order;
        let write_backs = store.write_backs_of(&id)?;
        let handover = store.handover_of(&id)?;
        let returns = store.returns_of(&id)?;
        let state = stored.state.as_str().to_string();
        out.push(OrderStory {
            summary: summary(&state, &handover, &write_backs, &returns),
            id: id.clone(),
            version: o.version,
            state,
            reason: stored.reason.clone(),
            buyer_nick: o.buyer.nick.clone(),
            paid_at: o.paid_at.map(|t| t.to_rfc3339()),
            urgent: o.is_urgent(),
            waves: store.waves_of(&id)?,
            tracking_numbers: store.tracking_numbers(&id)?,
            packings: store.packings_of(&id)?,
            handover,
            returns,
            write_backs,
            timeline: store.events(Some(&id))?,
        });
    }
    Ok(out)
}

fn summary(
    state: &str,
    handover: &[HandoverEntry],
    write_backs: &[WriteBackEntry],
    returns: &[ReturnEntry],
) -> String {
    if !returns.is_empty() {
        let items: u64 = returns.iter().map(|r| r.qty).sum();
        return format!(
            "handed to the courier, then came back: {items} item(s) received at returns intake (退货登记)"
        );
    }
    let pending = write_backs.iter().filter(|w| w.state == "pending").count();
    let batch = handover
        .first()
        .map(|h| format!(" in batch {}", h.batch_id))
        .unwrap_or_default();
    let left_with_courier = handover.iter().any(|h| h.batch_state == "closed");
    match state {
        "intercept" if left_with_courier => format!(
            "handed to the courier{batch}, then refunded or closed: ask the courier to intercept it (拦截)"
        ),
        "out_of_stock" => {
            "set aside as out of stock (缺货): back to customer service; not shipping until put back on the pull flag".into()
        }
        "queued" => "waiting to be printed: still safe to change or cancel".into(),
        "left_queue" => "not for the warehouse now (see reason); not printed".into(),
        "printed" => {
            "printed, not packed yet: a change needs a reprint, a cancel an intercept".into()
        }
        "changed_after_print" => {
            "printed, then changed: the label must be reprinted before it ships".into()
        }
        "intercept" => "intercepted: the parcel must not ship".into(),
        "packed" => "packed, waiting for the courier: a cancel now means pulling the parcel".into(),
        "handed_over" if pending > 0 => format!(
            "handed to the courier{batch}; {pending} write-back(s) to the shop still pending"
        ),
        "handed_over" => format!("handed to the courier{batch}"),
        "shipped" => format!("handed to the courier{batch}; the shop shows it shipped"),
        other => other.to_string(),
    }
}

/// The text form of `station show`. Shop text (nick, reasons, memos in the
/// timeline) goes through `order::terminal_safe`: no escape sequence from an
/// order reaches the terminal.
pub fn write_text(out: &mut dyn Write, stories: &[OrderStory]) -> std::io::Result<()> {
    let mut text = Vec::new();
    write_raw_text(&mut text, stories)?;
    let text = String::from_utf8_lossy(&text);
    out.write_all(crate::order::terminal_safe(&text).as_bytes())
}

fn write_raw_text(out: &mut dyn Write, stories: &[OrderStory]) -> std::io::Result<()> {
    for (n, s) in stories.iter().enumerate() {
        if n > 0 {
            writeln!(out)?;
        }
        writeln!(out, "order {} v{} — {}", s.id, s.version, s.state)?;
        writeln!(out, "  {}", s.summary)?;
        if let Some(r) = &s.reason {
            writeln!(out, "  reason: {r}")?;
        }
        writeln!(
            out,
            "  buyer {}; paid {}{}",
            s.buyer_nick,
            s.paid_at.as_deref().unwrap_or("-"),
            if s.urgent { "; URGENT" } else { "" }
        )?;
        for w in &s.waves {
            writeln!(
                out,
                "  wave {} (v{}): {} {}",
                w.wave_id,
                w.order_version,
                w.tracking_no,
                w.printed_at.as_deref().unwrap_or("not printed yet")
            )?;
        }
        for t in &s.tracking_numbers {
            match &t.void_reason {
                Some(r) if t.state == "voided" => {
                    writeln!(out, "  tracking {} {} VOID ({r})", t.courier, t.number)?
                }
                _ => writeln!(out, "  tracking {} {} ({})", t.courier, t.number, t.state)?,
            }
        }
        for p in &s.packings {
            writeln!(
                out,
                "  packed {} at {} by {} ({}){}",
                p.packed_at,
                p.bench,
                p.operator,
                p.tracking_no,
                if p.shop_checked {
                    ""
                } else {
                    ", shop unreachable"
                }
            )?;
        }
        for h in &s.handover {
            writeln!(
                out,
                "  handover {} ({}, {}) scanned {} by {}",
                h.batch_id, h.courier, h.batch_state, h.scanned_at, h.scanned_by
            )?;
        }
        for r in &s.returns {
            writeln!(
                out,
                "  returned #{} {} ×{} ({}{}) at {} by {} {}",
                r.receipt,
                r.sku,
                r.qty,
                r.condition,
                if r.reason.is_empty() {
                    String::new()
                } else {
                    format!(", {}", r.reason)
                },
                r.bench,
                r.operator,
                r.received_at
            )?;
        }
        for w in &s.write_backs {
            writeln!(
                out,
                "  write-back {}: {} after {} attempt(s){}",
                w.kind,
                w.state,
                w.attempts,
                w.last_error
                    .as_deref()
                    .map(|e| format!(" (last: {e})"))
                    .unwrap_or_default()
            )?;
        }
        writeln!(out, "  timeline:")?;
        for e in &s.timeline {
            writeln!(
                out,
                "    {} {} {}: {}",
                e.at, e.operator, e.action, e.detail
            )?;
        }
    }
    Ok(())
}
