//! Returns intake (退货登记): a parcel comes back (the buyer returned it, or the
//! courier brought back an intercepted one). The operator scans its waybill or
//! types the order id, names what is in it, and the station records who
//! received what, why and in what condition, then moves the order to
//! `flags.returns` (the after-sales flag) on the shop with the memo
//! "退货已收 #N: SKU ×N · reason · operator · date" through the outbox.
//!
//! Invariants: a receive is recorded whole or not at all, together with its
//! returns flag (one transaction); no SKU comes back more often than the
//! parcel held it, counting every earlier receipt; only an order that left in
//! a closed handover batch can come back.

use crate::config::Config;
use crate::error::Refused;
use crate::order::Flag;
use crate::packing::{Bench, item_is};
use crate::store::{NewReturn, ReturnLine, ReturnRefused, ReturnWrite, Store};
use anyhow::Result;
use serde::Serialize;

/// The state of what came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Resellable.
    Ok,
    /// 破损: not resellable as is.
    Damaged,
}

impl Condition {
    pub fn parse(s: &str) -> Option<Condition> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ok" | "good" | "完好" => Some(Condition::Ok),
            "damaged" | "broken" | "破损" => Some(Condition::Damaged),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Ok => "ok",
            Condition::Damaged => "damaged",
        }
    }
}

/// One `--item SKU[:QTY]` as typed or scanned (quantity 1 when not given).
pub fn parse_item(arg: &str) -> Result<(String, u64), String> {
    let (code, qty) = match arg.rsplit_once(':') {
        Some((code, qty)) => {
            let qty: u64 = qty.trim().parse().map_err(|_| {
                format!("--item {arg:?}: the quantity after ':' must be a whole number, like SKU:2")
            })?;
            (code, qty)
        }
        None => (arg, 1),
    };
    if qty == 0 {
        return Err(format!("--item {arg:?}: the quantity must be at least 1"));
    }
    let code = crate::scancode::normalize(code);
    if code.is_empty() {
        return Err(format!(
            "--item {arg:?}: give the SKU or barcode, like SKU:2"
        ));
    }
    Ok((code, qty))
}

/// A receive as asked: the parcel's code and what is in it.
#[derive(Clone, Debug)]
pub struct Receive<'a> {
    /// Our tracking number or the order id, as scanned or typed.
    pub code: &'a str,
    /// Normalized SKUs or barcodes with quantities (see [`parse_item`]).
    pub items: &'a [(String, u64)],
    pub reason: &'a str,
    pub condition: Condition,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReceivedLine {
    pub sku: String,
    pub title: String,
    pub qty: u64,
}

/// What a receive recorded.
#[derive(Clone, Debug, Serialize)]
pub struct Received {
    pub receipt: u64,
    pub order_id: String,
    pub courier: String,
    pub tracking_no: String,
    pub lines: Vec<ReceivedLine>,
    pub condition: Condition,
    pub reason: String,
    /// The flag and memo the shop gets (`station sync`, or `serve`'s outbox worker).
    pub returns_flag: Flag,
    pub memo: String,
}

/// Why a receive was refused, in the operator's words both ways (the bench
/// page shows the Chinese one). Nothing was recorded.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Refusal {
    /// `unknown_code`, `not_shipped`, `unknown_item`, `too_many`, `no_items`.
    pub code: &'static str,
    pub message: String,
    pub message_zh: String,
}

impl Refusal {
    fn new(code: &'static str, message: String, message_zh: String) -> Refusal {
        Refusal {
            code,
            message,
            message_zh,
        }
    }

    /// As an error for the command line (exit 7).
    pub fn into_error(self) -> anyhow::Error {
        Refused(self.message).into()
    }
}

/// A returned parcel as the returns bench shows it before anything is
/// recorded: the order it belongs to and what it held.
#[derive(Clone, Debug, Serialize)]
pub struct Parcel {
    pub order_id: String,
    pub courier: String,
    pub tracking_no: String,
    pub items: Vec<ParcelItem>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ParcelItem {
    pub sku: String,
    pub barcode: Option<String>,
    pub title: String,
    pub spec: Option<String>,
    /// How many the parcel held.
    pub shipped: u64,
    /// How many earlier receipts took back.
    pub returned: u64,
}

/// Look up a returned parcel by its tracking number or order id.
pub fn parcel(store: &Store, code: &str) -> Result<Result<Parcel, Refusal>> {
    let Some(order_id) = order_of(store, code)? else {
        return Ok(Err(unknown_code(code)));
    };
    let Some(stored) = store.order(&order_id)? else {
        anyhow::bail!("order {order_id} vanished from the database while it was looked up");
    };
    let Some(left) = store
        .handover_of(&order_id)?
        .into_iter()
        .find(|h| h.batch_state == "closed")
    else {
        return Ok(Err(not_shipped(&order_id, stored.state.as_str())));
    };
    let back = store.returns_of(&order_id)?;
    let mut items: Vec<ParcelItem> = Vec::new();
    for i in &stored.order.items {
        match items.iter_mut().find(|x| x.sku == i.sku) {
            Some(x) => x.shipped += u64::from(i.qty),
            None => items.push(ParcelItem {
                sku: i.sku.clone(),
                barcode: i.barcode.clone(),
                title: i.title.clone(),
                spec: i.spec.clone(),
                shipped: u64::from(i.qty),
                returned: back.iter().filter(|r| r.sku == i.sku).map(|r| r.qty).sum(),
            }),
        }
    }
    Ok(Ok(Parcel {
        order_id,
        courier: left.courier,
        tracking_no: left.tracking_no,
        items,
    }))
}

fn unknown_code(raw: &str) -> Refusal {
    let code = crate::scancode::normalize(raw);
    Refusal::new(
        "unknown_code",
        format!(
            "{code:?} is neither an order id nor a tracking number of this station: scan the waybill on the returned parcel or type its order id"
        ),
        format!("{code} 不是本站的订单号或运单号：请扫退回包裹上的面单，或输入订单号"),
    )
}

fn not_shipped(order_id: &str, state: &str) -> Refusal {
    Refusal::new(
        "not_shipped",
        format!(
            "order {order_id} never left with a courier (it is {state}): nothing can come back from it; use `station show {order_id}`"
        ),
        format!("订单 {order_id} 没有交接给快递（{state}），不能登记退货"),
    )
}

/// Record a returned parcel. `Ok(Err(_))` is a refusal the operator must see
/// (nothing recorded); `Err` is the database.
pub fn receive(
    store: &mut Store,
    config: &Config,
    bench: &Bench<'_>,
    r: &Receive<'_>,
) -> Result<Result<Received, Refusal>> {
    let Some(order_id) = order_of(store, r.code)? else {
        return Ok(Err(unknown_code(r.code)));
    };
    let Some(stored) = store.order(&order_id)? else {
        anyhow::bail!("order {order_id} vanished from the database while it was looked up");
    };
    // Said first: no item can be right for a parcel that never left (the
    // store checks it again inside the write).
    if !store
        .handover_of(&order_id)?
        .iter()
        .any(|h| h.batch_state == "closed")
    {
        return Ok(Err(not_shipped(&order_id, stored.state.as_str())));
    }
    if r.items.is_empty() {
        let skus: Vec<&str> = stored.order.items.iter().map(|i| i.sku.as_str()).collect();
        return Ok(Err(Refusal::new(
            "no_items",
            format!(
                "order {order_id}: name what came back with --item SKU[:QTY] (its items: {})",
                skus.join(", ")
            ),
            format!("订单 {order_id}：请扫退回的商品"),
        )));
    }
    // Each named item is one of the order's SKUs; the same SKU named twice adds up.
    let mut lines: Vec<(ReturnLine, String)> = Vec::new();
    for (code, qty) in r.items {
        let Some(item) = stored
            .order
            .items
            .iter()
            .find(|i| item_is(&i.sku, i.barcode.as_deref(), code))
        else {
            let skus: Vec<&str> = stored.order.items.iter().map(|i| i.sku.as_str()).collect();
            return Ok(Err(Refusal::new(
                "unknown_item",
                format!(
                    "order {order_id} has no item with SKU or barcode {code:?} (its items: {}): it was not in this parcel",
                    skus.join(", ")
                ),
                format!("{code} 不是订单 {order_id} 的商品：不是这个包裹里的"),
            )));
        };
        let shipped: u64 = stored
            .order
            .items
            .iter()
            .filter(|i| i.sku == item.sku)
            .map(|i| u64::from(i.qty))
            .sum();
        match lines.iter_mut().find(|(l, _)| l.sku == item.sku) {
            Some((l, _)) => l.qty = l.qty.saturating_add(*qty),
            None => lines.push((
                ReturnLine {
                    sku: item.sku.clone(),
                    qty: *qty,
                    shipped,
                },
                item.title.clone(),
            )),
        }
    }
    let return_lines: Vec<ReturnLine> = lines.iter().map(|(l, _)| l.clone()).collect();
    let reason = r.reason.trim();
    let now = chrono::Utc::now().with_timezone(&config.tz());
    let memo_at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let what: Vec<String> = return_lines
        .iter()
        .map(|l| format!("{} ×{}", l.sku, l.qty))
        .collect();
    let mut memo = String::new();
    let flag = config.flags.returns;
    let recorded = store.record_return(
        &NewReturn {
            order_id: &order_id,
            lines: &return_lines,
            condition: r.condition.as_str(),
            reason,
            bench: bench.name,
            operator: bench.operator,
        },
        |tx, version, receipt, courier, tracking_no| {
            let mut parts = vec![format!("退货已收 #{receipt}: {}", what.join(", "))];
            if r.condition == Condition::Damaged {
                parts.push("破损".into());
            }
            if !reason.is_empty() {
                parts.push(reason.to_string());
            }
            parts.push(bench.operator.to_string());
            parts.push(now.format("%Y-%m-%d %H:%M").to_string());
            memo = parts.join(" · ");
            crate::store::enqueue_return(
                tx,
                &ReturnWrite {
                    order_id: &order_id,
                    order_version: version,
                    flag,
                    memo_text: &memo,
                    memo_author: bench.operator,
                    memo_at: &memo_at,
                    courier,
                    tracking_no,
                },
            )
        },
    )?;
    let recorded = match recorded {
        Ok(recorded) => recorded,
        Err(ReturnRefused::NotShipped { state }) => {
            return Ok(Err(not_shipped(&order_id, &state)));
        }
        Err(ReturnRefused::TooMany {
            sku,
            shipped,
            already,
            asked,
        }) => {
            return Ok(Err(Refusal::new(
                "too_many",
                format!(
                    "order {order_id}: {asked} × {sku} is more than came back from this parcel: it held {shipped}, and {already} were received back before"
                ),
                format!(
                    "订单 {order_id}：{sku} 退回 {asked} 件超过发出数量（发出 {shipped} 件，已退 {already} 件）"
                ),
            )));
        }
    };
    Ok(Ok(Received {
        receipt: recorded.receipt,
        order_id,
        courier: recorded.courier,
        tracking_no: recorded.tracking_no,
        lines: lines
            .into_iter()
            .map(|(l, title)| ReceivedLine {
                sku: l.sku,
                title,
                qty: l.qty,
            })
            .collect(),
        condition: r.condition,
        reason: reason.to_string(),
        returns_flag: flag,
        memo,
    }))
}

/// The order a returned parcel belongs to: the code as an order id, else as
/// one of our tracking numbers (live or voided: a parcel can come back under
/// a number voided after it left), trying the upper-case form of a code typed
/// with Caps Lock confusion.
fn order_of(store: &Store, raw: &str) -> Result<Option<String>> {
    let code = crate::scancode::normalize(raw);
    let mut candidates = vec![code.clone()];
    if let Some(upper) = crate::scancode::upper_variant(&code) {
        candidates.push(upper);
    }
    for c in &candidates {
        if store.order(c)?.is_some() {
            return Ok(Some(c.clone()));
        }
        if let Some(t) = store.tracking(c)? {
            return Ok(Some(t.order_id));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_read_with_an_optional_quantity() {
        assert_eq!(parse_item("SKU-1"), Ok(("SKU-1".into(), 1)));
        assert_eq!(parse_item(" SKU-1:3 "), Ok(("SKU-1".into(), 3)));
        // Full-width, as a scanner under a Chinese input method types it.
        assert_eq!(parse_item("ＳＫＵ－１:2").map(|p| p.1), Ok(2));
        assert!(parse_item("SKU-1:0").unwrap_err().contains("at least 1"));
        assert!(parse_item("SKU-1:x").unwrap_err().contains("whole number"));
        assert!(parse_item(":2").unwrap_err().contains("SKU"));
    }

    #[test]
    fn conditions_are_read_in_english_and_chinese() {
        assert_eq!(Condition::parse("OK"), Some(Condition::Ok));
        assert_eq!(Condition::parse("破损"), Some(Condition::Damaged));
        assert_eq!(Condition::parse("lost"), None);
    }
}
