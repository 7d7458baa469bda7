//! The packing bench (验货打包): what one scan at a bench means.
//!
//! A barcode scanner types a code and Enter. At a bench the code is, in this
//! order of precedence:
//! 1. an item of the order open at the bench (its barcode, else its SKU) →
//!    tick it off; a code not in the order, or one too many, is STOP;
//! 2. a packing slip's QR (the order id) → open that order at the bench;
//! 3. a waybill (a tracking number the station issued) → it must be the open
//!    order's current label (slip ↔ waybill pairing); when every item is
//!    scanned (or item scans are not required) the parcel is packed.
//!
//! Before opening and before packing, the bench re-reads the order from the
//! shop with a short timeout and takes the answer in through the normal intake
//! rules: a refund, a closed or an unpaid order is INTERCEPT (拦截, set aside);
//! a changed address or items is STOP with a one-key reprint. When the shop is
//! unreachable the bench goes on with the last known state and says so.
//!
//! Which order is open at which bench, and the item tallies, live in SQLite, so
//! several benches work at once and `station scan` works across invocations.
//! Every scan is recorded as an event with the operator and the bench.

use crate::config::Config;
use crate::intake::State;
use crate::order::Order;
use crate::shop::client::ShopClient;
use crate::store::{Actor, Store, StoredOrder};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

/// A bench and who works at it.
#[derive(Clone, Copy, Debug)]
pub struct Bench<'a> {
    pub name: &'a str,
    pub operator: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Go on.
    Ok,
    /// Stop and look: wrong item, wrong label, changed order.
    Stop,
    /// Do not ship this parcel (拦截): set it aside.
    Intercept,
}

/// Whether the bench asked the shop about the order during this scan.
pub use crate::pull::ShopCheck;

#[derive(Clone, Debug, Serialize)]
pub struct ScanOutcome {
    pub verdict: Verdict,
    /// What happened, for programs: order_opened, already_packed, item_ok,
    /// items_complete, packed, wrong_item, too_many, items_missing,
    /// wrong_waybill, voided_waybill, no_order_open, unknown_code, empty_code,
    /// changed_after_print, intercept, not_printable, handed_over.
    pub code: &'static str,
    pub message: String,
    pub message_zh: String,
    pub order: Option<BenchOrder>,
    pub shop: ShopCheck,
    /// The order changed after print: a reprint (new number) fixes the label.
    pub can_reprint: bool,
}

/// The order at a bench, as the page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct BenchOrder {
    pub id: String,
    pub version: u64,
    pub state: String,
    pub reason: Option<String>,
    /// The reason in the bench's language (Chinese).
    pub reason_zh: Option<String>,
    pub tracking_no: Option<String>,
    pub courier: Option<String>,
    pub buyer_nick: String,
    pub buyer_message: Option<String>,
    /// The effective (newest) memo: "text · author".
    pub memo: Option<String>,
    pub gift_message: Option<String>,
    pub invoice_title: Option<String>,
    pub urgent: bool,
    pub items: Vec<BenchItem>,
    pub require_item_scans: bool,
    /// A merged parcel (合并发货): every order in it, the lead (`id`) first;
    /// `items` are all of theirs and `state` the parcel's (the first order
    /// that cannot ship decides it). Empty for a parcel of one order.
    pub parcel: Vec<ParcelOrder>,
}

/// One order of a merged parcel at the bench.
#[derive(Clone, Debug, Serialize)]
pub struct ParcelOrder {
    pub id: String,
    pub version: u64,
    pub state: String,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchItem {
    pub sku: String,
    pub title: String,
    pub spec: Option<String>,
    pub barcode: Option<String>,
    pub qty: u64,
    pub scanned: u64,
}

impl BenchOrder {
    pub fn items_left(&self) -> u64 {
        self.items
            .iter()
            .map(|i| i.qty.saturating_sub(i.scanned))
            .sum()
    }
}

/// One scan at a bench.
pub async fn scan(
    store: &mut Store,
    shop: Option<&ShopClient>,
    config: &Config,
    bench: &Bench<'_>,
    code: &str,
) -> Result<ScanOutcome> {
    scan_weighed(store, shop, config, bench, code, None).await
}

/// One scan at a bench with the parcel's weight (from the scale or typed),
/// which a waybill scan checks against the items and records with the packing.
pub async fn scan_weighed(
    store: &mut Store,
    shop: Option<&ShopClient>,
    config: &Config,
    bench: &Bench<'_>,
    code: &str,
    weight_g: Option<u64>,
) -> Result<ScanOutcome> {
    let code = &resolve(store, config, bench, code)?;
    let outcome = scan_inner(store, shop, config, bench, code, weight_g).await?;
    // An intercepted order leaves the bench at once: the parcel is set aside,
    // and the next scan (the next order's slip) must not meet it again.
    if outcome.verdict == Verdict::Intercept
        && let Some(order) = &outcome.order
        && store
            .bench_session(bench.name)?
            .and_then(|s| s.order_id)
            .is_some_and(|open| open == order.id)
    {
        store.set_bench_order(
            bench.name,
            bench.operator,
            None,
            "bench.closed",
            &format!(
                "bench {}: order {} intercepted, set aside",
                bench.name, order.id
            ),
        )?;
    }
    store.record(
        bench.operator,
        outcome.order.as_ref().map(|o| o.id.as_str()),
        "bench.scan",
        &format!(
            "bench {}: {code:?} → {} {}",
            bench.name,
            serde_json::to_value(outcome.verdict)?
                .as_str()
                .unwrap_or("?"),
            outcome.code
        ),
    )?;
    Ok(outcome)
}

/// The code a scan means: normalized ([`crate::scancode`]), and in upper
/// case when only that is a code the bench knows (Caps Lock, an eaten Shift).
fn resolve(store: &Store, config: &Config, bench: &Bench<'_>, raw: &str) -> Result<String> {
    let code = crate::scancode::normalize(raw);
    let Some(upper) = crate::scancode::upper_variant(&code) else {
        return Ok(code);
    };
    let open = current(store, config, bench)?;
    let known = |c: &str| -> Result<bool> {
        Ok(open.as_ref().is_some_and(|o| {
            o.items
                .iter()
                .any(|i| item_is(&i.sku, i.barcode.as_deref(), c))
        }) || store.order(c)?.is_some()
            || store.tracking(c)?.is_some())
    };
    Ok(if !known(&code)? && known(&upper)? {
        upper
    } else {
        code
    })
}

async fn scan_inner(
    store: &mut Store,
    shop: Option<&ShopClient>,
    config: &Config,
    bench: &Bench<'_>,
    code: &str,
    weight_g: Option<u64>,
) -> Result<ScanOutcome> {
    if code.is_empty() {
        return Ok(outcome(
            Verdict::Stop,
            "empty_code",
            "nothing was scanned".into(),
            "没有扫到内容".into(),
            None,
        ));
    }
    let open = current(store, config, bench)?;

    // 0. The open order changed under the bench (a pull, another bench's
    // re-read): the operator must see the new version before going on.
    // Rescanning its slip is the way back, so that goes through as usual.
    if let Some(order) = &open
        && code != order.id
        && let Some(session) = store.bench_session(bench.name)?
        && session.order_version.is_some_and(|v| v != order.version)
    {
        if order.state == State::Printed.as_str() {
            store.set_bench_order(
                bench.name,
                bench.operator,
                Some((&order.id, order.version)),
                "bench.opened",
                &format!(
                    "bench {}: v{} arrived while packing",
                    bench.name, order.version
                ),
            )?;
            let view = current(store, config, bench)?.unwrap_or_else(|| order.clone());
            return Ok(order_updated(view));
        }
        store.set_bench_order(
            bench.name,
            bench.operator,
            None,
            "bench.closed",
            &format!(
                "bench {}: order {} is now {}",
                bench.name, order.id, order.state
            ),
        )?;
        return Ok(not_packable(order));
    }

    // 1. An item of the open order.
    if let Some(order) = &open
        && let Some(outcome) = scan_item(store, config, bench, order, code)?
    {
        return Ok(outcome);
    }
    // 2. A packing slip: the order id.
    if let Some(stored) = store.order(code)? {
        return open_order(store, shop, config, bench, stored).await;
    }
    // 3. A waybill.
    if let Some(number) = store.tracking(code)? {
        let Some(order) = open else {
            if let Some(stored) = store.order(&number.order_id)?
                && stored.state == State::Packed
                && number.state == "allocated"
            {
                let view = bench_order(store, config, &stored)?;
                return pack(store, shop, config, bench, view, None).await;
            }
            return Ok(outcome(
                Verdict::Stop,
                "no_order_open",
                format!("waybill {code} scanned with no order open: scan the packing slip first"),
                format!("扫到运单 {code}，但还没有打开订单：请先扫发货单"),
                None,
            ));
        };
        if number.order_id != order.id {
            return Ok(outcome(
                Verdict::Stop,
                "wrong_waybill",
                format!(
                    "waybill {code} belongs to order {}, not to order {}: find this order's label",
                    number.order_id, order.id
                ),
                format!(
                    "运单 {code} 属于订单 {}，不是订单 {}：请找本单的快递单",
                    number.order_id, order.id
                ),
                Some(order),
            ));
        }
        if number.state != "allocated" {
            let why = number.void_reason.clone().unwrap_or_default();
            return Ok(ScanOutcome {
                can_reprint: true,
                ..outcome(
                    Verdict::Stop,
                    "voided_waybill",
                    format!(
                        "waybill {code} is void ({why}): use the order's current label, or reprint"
                    ),
                    format!("运单 {code} 已作废（{why}）：请用本单当前的快递单，或重打"),
                    Some(order),
                )
            });
        }
        return pack(store, shop, config, bench, order, weight_g).await;
    }
    // Chinese characters where a code was expected: the input method is on.
    if crate::scancode::looks_garbled(code) {
        return Ok(outcome(
            Verdict::Stop,
            "unreadable_code",
            format!(
                "{code:?} is not a code the scanner could have read: switch the keyboard to English half-width input (切换到英文半角输入) and scan again"
            ),
            format!("扫到的内容不是条码（{code}）：请切换到英文半角输入后重扫"),
            open,
        ));
    }
    // With an order open, anything else is an item that does not belong in it.
    Ok(match open {
        Some(o) => outcome(
            Verdict::Stop,
            "wrong_item",
            format!(
                "{code} is not an item of order {} (nor a packing slip or waybill): take it out",
                o.id
            ),
            format!("{code} 不是订单 {} 的商品：请拿出", o.id),
            Some(o),
        ),
        None => match slots_needing(store, code)? {
            // A loose item from a batch pick (二次分拣): say whose slot it goes in.
            Some(((order, wave, slot), others)) => {
                let (also, also_zh) = if others.is_empty() {
                    (String::new(), String::new())
                } else {
                    (
                        format!("; slots {} need it too", others.join(", ")),
                        format!("；格位 {} 也需要", others.join("、")),
                    )
                };
                outcome(
                    Verdict::Stop,
                    "item_for_slot",
                    format!(
                        "{code} is an item, and no order is open: it goes in slot {slot} (order {order}, wave {wave}){also}; scan that order's slip to pack it"
                    ),
                    format!(
                        "{code} 是商品，但还没有打开订单：放入格位 {slot}（订单 {order}，波次 {wave}）{also_zh}；扫该单的发货单后打包"
                    ),
                    None,
                )
            }
            None => outcome(
                Verdict::Stop,
                "unknown_code",
                format!("{code} is not a packing slip or waybill the station knows"),
                format!("{code} 不是本站的发货单或运单"),
                None,
            ),
        },
    })
}

/// (order id, wave, slot).
type SlotHit = (String, i64, u64);

/// The printed, unpacked orders holding an item with this code, newest wave
/// first then by slot: (order, wave, slot) of the first, and the other slots.
fn slots_needing(store: &Store, code: &str) -> Result<Option<(SlotHit, Vec<String>)>> {
    let mut found = Vec::new();
    for (id, payload, wave, slot) in store.printed_orders_mentioning(code, 50)? {
        let Ok(order) = serde_json::from_str::<crate::order::Order>(&payload) else {
            continue;
        };
        if order
            .items
            .iter()
            .any(|i| item_is(&i.sku, i.barcode.as_deref(), code))
        {
            found.push((id, wave, slot));
        }
    }
    let mut it = found.into_iter();
    let Some(first) = it.next() else {
        return Ok(None);
    };
    let others: Vec<String> = it
        .filter(|(_, w, _)| *w == first.1)
        .take(5)
        .map(|(_, _, s)| s.to_string())
        .collect();
    Ok(Some((first, others)))
}

/// Whether the normalized scanned `code` names the item with this SKU and
/// barcode (both compared normalized, as the scanner would send them).
pub(crate) fn item_is(sku: &str, barcode: Option<&str>, code: &str) -> bool {
    crate::scancode::matches(sku, code)
        || barcode.is_some_and(|b| crate::scancode::matches(b, code))
}

/// Tick an item off, or `None` when the code is not one of the order's items.
fn scan_item(
    store: &mut Store,
    config: &Config,
    bench: &Bench<'_>,
    order: &BenchOrder,
    code: &str,
) -> Result<Option<ScanOutcome>> {
    let matches = |i: &BenchItem| item_is(&i.sku, i.barcode.as_deref(), code);
    if !order.items.iter().any(matches) {
        return Ok(None);
    }
    if order.state != State::Printed.as_str() {
        return Ok(Some(not_packable(order)));
    }
    // The first matching line that still wants this item (two lines may share a
    // barcode, e.g. two specs of one product).
    let Some((index, item)) = order
        .items
        .iter()
        .enumerate()
        .find(|(_, i)| matches(i) && i.scanned < i.qty)
    else {
        let item = order.items.iter().find(|i| matches(i)).expect("matched");
        return Ok(Some(outcome(
            Verdict::Stop,
            "too_many",
            format!(
                "one {} too many: the order has {} (take it out)",
                item.title, item.qty
            ),
            format!(
                "{} 多了一件：本单只要 {} 件（请拿出）",
                item.title, item.qty
            ),
            Some(order.clone()),
        )));
    };
    let detail = format!("bench {}: {} ({code})", bench.name, item.sku);
    let counted = store.tally_item(
        &order.id,
        order.version,
        index,
        item.qty,
        bench.operator,
        &detail,
    )?;
    if counted.is_none() {
        // Another bench (or a double scan) completed this line just now.
        return Ok(Some(outcome(
            Verdict::Stop,
            "too_many",
            format!(
                "one {} too many: the order has {} (take it out)",
                item.title, item.qty
            ),
            format!(
                "{} 多了一件：本单只要 {} 件（请拿出）",
                item.title, item.qty
            ),
            current(store, config, bench)?,
        )));
    }
    let order = current(store, config, bench)?.expect("still open");
    let left = order.items_left();
    Ok(Some(if left == 0 {
        outcome(
            Verdict::Ok,
            "items_complete",
            "all items scanned: scan the waybill to pack".into(),
            "商品已扫齐：请扫快递单完成打包".into(),
            Some(order),
        )
    } else {
        outcome(
            Verdict::Ok,
            "item_ok",
            format!("{} ok, {left} to go", item.title),
            format!("{} ✓，还差 {left} 件", item.title),
            Some(order),
        )
    }))
}

async fn open_order(
    store: &mut Store,
    shop: Option<&ShopClient>,
    config: &Config,
    bench: &Bench<'_>,
    stored: StoredOrder,
) -> Result<ScanOutcome> {
    // An order of a merged parcel opens the whole parcel, under its lead.
    let stored = match store.parcel_of(&stored.order.id)? {
        Some((_, lead)) => store.order(&lead)?.unwrap_or(stored),
        None => stored,
    };
    let id = stored.order.id.clone();
    let (stored, check) = match stored.state {
        State::Printed | State::Packed => refresh(store, shop, config, bench, stored).await?,
        _ => (stored, ShopCheck::Skipped),
    };
    let view = bench_order(store, config, &stored)?;
    let state = State::parse(&view.state).unwrap_or(stored.state);
    let mut out = match state {
        State::Printed | State::Packed => {
            store.set_bench_order(
                bench.name,
                bench.operator,
                Some((&id, stored.order.version)),
                "bench.opened",
                &format!("bench {}: v{}", bench.name, stored.order.version),
            )?;
            let view = current(store, config, bench)?.unwrap_or(view);
            if state == State::Packed {
                outcome(
                    Verdict::Ok,
                    "already_packed",
                    format!("order {id} is already packed"),
                    format!("订单 {id} 已打包"),
                    Some(view),
                )
            } else {
                let next = if config.bench.require_item_scans {
                    ("scan each item", "请逐件扫商品")
                } else {
                    ("scan the waybill to pack", "请扫快递单完成打包")
                };
                outcome(
                    Verdict::Ok,
                    "order_opened",
                    format!("order {id}: {}", next.0),
                    format!("订单 {id}：{}", next.1),
                    Some(view),
                )
            }
        }
        _ => {
            // Nothing to pack here: the bench must not keep matching items and
            // waybills against the order that was open before.
            store.set_bench_order(
                bench.name,
                bench.operator,
                None,
                "bench.closed",
                &format!("bench {}: order {id} is {state}", bench.name),
            )?;
            not_packable(&view)
        }
    };
    out.shop = check;
    Ok(out)
}

/// STOP: the order open at the bench has a newer version; show it, count again.
fn order_updated(view: BenchOrder) -> ScanOutcome {
    outcome(
        Verdict::Stop,
        "order_updated",
        format!(
            "order {} was updated on the shop (v{}): check the memo, then scan its items again",
            view.id, view.version
        ),
        format!(
            "订单 {} 在店铺有更新（v{}）：请看备注，然后重新扫商品",
            view.id, view.version
        ),
        Some(view),
    )
}

/// Pack the open order after its waybill was scanned.
async fn pack(
    store: &mut Store,
    shop: Option<&ShopClient>,
    config: &Config,
    bench: &Bench<'_>,
    order: BenchOrder,
    weight_g: Option<u64>,
) -> Result<ScanOutcome> {
    if order.state == State::Packed.as_str() {
        // The waybill scanned twice (a double read, a second press): nothing
        // is wrong, and the bench must not flash red for it.
        // A weight given now is not taken: the parcel was packed (and perhaps
        // weighed) already, and the operator is told so rather than left to
        // think it was recorded.
        let no = order.tracking_no.clone().unwrap_or_default();
        let (not_weighed, not_weighed_zh) = match weight_g {
            Some(_) => ("; the weight given now is not recorded", "；本次称重未记录"),
            None => ("", ""),
        };
        return Ok(outcome(
            Verdict::Ok,
            "already_packed",
            format!(
                "order {} is already packed ({no}): the waybill was scanned again{not_weighed}",
                order.id
            ),
            format!(
                "订单 {} 已打包（{no}）：重复扫描，无需处理{not_weighed_zh}",
                order.id
            ),
            Some(order),
        ));
    }
    if order.state != State::Printed.as_str() {
        return Ok(not_packable(&order));
    }
    let left = order.items_left();
    if config.bench.require_item_scans && left > 0 {
        return Ok(outcome(
            Verdict::Stop,
            "items_missing",
            format!("{left} items of order {} are not scanned yet", order.id),
            format!("订单 {} 还有 {left} 件商品没有扫", order.id),
            Some(order),
        ));
    }
    let Some(stored) = store.order(&order.id)? else {
        anyhow::bail!("order {} vanished from the database", order.id);
    };
    let (stored, check) = refresh(store, shop, config, bench, stored).await?;
    let now = bench_order(store, config, &stored)?;
    if now.state != State::Printed.as_str()
        || now.version != order.version
        || now.parcel.len() != order.parcel.len()
    {
        // A new version that only touched memos keeps the order printed, but the
        // bench opened an older one: show the new one and re-check items.
        let view = now;
        if view.state == State::Printed.as_str() {
            store.set_bench_order(
                bench.name,
                bench.operator,
                Some((&stored.order.id, stored.order.version)),
                "bench.opened",
                &format!(
                    "bench {}: v{} arrived while packing",
                    bench.name, stored.order.version
                ),
            )?;
            let view = current(store, config, bench)?.unwrap_or(view);
            let mut out = order_updated(view);
            out.shop = check;
            return Ok(out);
        }
        let mut out = not_packable(&view);
        out.shop = check;
        return Ok(out);
    }
    // Weighed: a parcel far off its items' weights misses an item or holds
    // an extra one (items without a weight, or with weight 0 meaning "not
    // weighed" in many shop catalogues, skip the check).
    if let Some(measured) = weight_g {
        let mut items = stored.order.items.clone();
        for p in now.parcel.iter().skip(1) {
            if let Some(rider) = store.order(&p.id)? {
                items.extend(rider.order.items);
            }
        }
        if items.iter().all(|i| i.weight_g.is_some_and(|w| w > 0)) {
            let expected: u64 = items.iter().fold(0u64, |sum, i| {
                sum.saturating_add(i.weight_g.unwrap_or(0).saturating_mul(u64::from(i.qty)))
            });
            let tolerance = crate::scale::Tolerance {
                pct: config.bench.weight_tolerance_pct,
                grams: config.bench.weight_tolerance_g,
            };
            if !tolerance.accepts(expected, measured) {
                let (m, e) = (crate::scale::shown(measured), crate::scale::shown(expected));
                let mut out = outcome(
                    Verdict::Stop,
                    "weight_mismatch",
                    format!(
                        "order {}: the parcel weighs {m}, its items {e}: an item is missing or extra; check the parcel, then scan the waybill again",
                        order.id
                    ),
                    format!(
                        "订单 {}：包裹重 {m}，商品应重 {e}：可能少件或多件，请检查后重扫运单",
                        order.id
                    ),
                    Some(order),
                );
                out.shop = check;
                return Ok(out);
            }
        }
    }
    let tracking_no = order.tracking_no.clone().unwrap_or_default();
    let riders: Vec<(String, u64)> = now
        .parcel
        .iter()
        .skip(1)
        .map(|p| (p.id.clone(), p.version))
        .collect();
    let packed = store.mark_packed(
        bench.name,
        bench.operator,
        (&order.id, order.version),
        &riders,
        &tracking_no,
        check != ShopCheck::Unreachable,
        weight_g,
        &format!(
            "bench {}: {tracking_no}{}",
            bench.name,
            if check == ShopCheck::Unreachable {
                " (shop unreachable: last known state)"
            } else {
                ""
            }
        ),
    )?;
    let stored = store.order(&order.id)?.expect("still there");
    let view = bench_order(store, config, &stored)?;
    if !packed {
        // Lost a race with a pull that brought a newer version after the re-read.
        if stored.state == State::Printed {
            store.set_bench_order(
                bench.name,
                bench.operator,
                Some((&stored.order.id, stored.order.version)),
                "bench.opened",
                &format!(
                    "bench {}: v{} arrived while packing",
                    bench.name, stored.order.version
                ),
            )?;
            let view = current(store, config, bench)?.unwrap_or(view);
            return Ok(order_updated(view));
        }
        return Ok(not_packable(&view));
    }
    let weighed = weight_g
        .map(|w| format!(", {}", crate::scale::shown(w)))
        .unwrap_or_default();
    let mut out = outcome(
        Verdict::Ok,
        "packed",
        format!("order {} packed ({tracking_no}{weighed})", order.id),
        format!("订单 {} 已打包（{tracking_no}{weighed}）", order.id),
        Some(view),
    );
    out.shop = check;
    Ok(out)
}

/// Re-read the order from the shop and take the answer in through intake.
async fn refresh(
    store: &mut Store,
    shop: Option<&ShopClient>,
    config: &Config,
    bench: &Bench<'_>,
    stored: StoredOrder,
) -> Result<(StoredOrder, ShopCheck)> {
    let id = stored.order.id.clone();
    let source = format!("bench:{}", bench.name);
    let actor = Actor {
        operator: bench.operator,
        source: &source,
    };
    // Every order of its parcel: a refund of any one stops the parcel.
    let ids = store.parcel_orders(&id)?;
    let check = crate::pull::recheck(store, shop, config, &actor, &ids).await?;
    let now = store.order(&id)?.unwrap_or(stored);
    Ok((now, check))
}

/// The outcome for an order that cannot be packed in its state.
fn not_packable(order: &BenchOrder) -> ScanOutcome {
    let id = &order.id;
    let reason = order.reason.clone().unwrap_or_default();
    let state = State::parse(&order.state).unwrap_or(State::LeftQueue);
    match state {
        // A merged parcel with other orders still to ship: the reprint
        // splits it and prints those again under a new number.
        State::Intercept if order.parcel.len() > 1 => ScanOutcome {
            can_reprint: true,
            ..outcome(
                Verdict::Intercept,
                "intercept",
                format!(
                    "INTERCEPT parcel of order {id}: {reason}. Do not ship it: set the parcel aside, then reprint to ship the other orders"
                ),
                format!(
                    "拦截 合并包裹（订单 {id}）：{}。不要发货，请把包裹放到一边，再重打以发出其余订单",
                    reason_zh(&reason)
                ),
                Some(order.clone()),
            )
        },
        State::Intercept => outcome(
            Verdict::Intercept,
            "intercept",
            format!("INTERCEPT order {id}: {reason}. Do not ship: set the parcel aside"),
            format!(
                "拦截 订单 {id}：{}。不要发货，请把包裹放到一边",
                reason_zh(&reason)
            ),
            Some(order.clone()),
        ),
        State::ChangedAfterPrint => ScanOutcome {
            can_reprint: true,
            ..outcome(
                Verdict::Stop,
                "changed_after_print",
                format!("order {id} changed after print ({reason}): reprint its label"),
                format!("订单 {id} 打印后有变更（{reason}）：请重打快递单"),
                Some(order.clone()),
            )
        },
        State::HandedOver | State::Shipped => outcome(
            Verdict::Stop,
            "handed_over",
            format!("order {id} was already handed to the courier"),
            format!("订单 {id} 已交接给快递"),
            Some(order.clone()),
        ),
        State::OutOfStock => outcome(
            Verdict::Stop,
            "out_of_stock",
            format!("order {id} is set aside as out of stock ({reason}): customer service has it"),
            format!("订单 {id} 已登记缺货（{reason}）：等客服处理"),
            Some(order.clone()),
        ),
        State::Packed => outcome(
            Verdict::Stop,
            "already_packed",
            format!("order {id} is already packed"),
            format!("订单 {id} 已打包"),
            Some(order.clone()),
        ),
        State::Queued | State::LeftQueue | State::Printed => outcome(
            Verdict::Stop,
            "not_printable",
            format!(
                "order {id} has no label yet ({}): print it first",
                if reason.is_empty() {
                    state.as_str()
                } else {
                    &reason
                }
            ),
            format!("订单 {id} 还没有打印快递单：请先打单"),
            Some(order.clone()),
        ),
    }
}

/// The intake reasons in the bench's language.
fn reason_zh(reason: &str) -> String {
    if let Some(rest) = reason.strip_prefix("order ")
        && let Some((id, why)) = rest.split_once(" of this parcel: ")
    {
        return format!("合并包裹中的订单 {id}：{}", reason_zh(why));
    }
    match reason {
        "refund requested" => "买家申请退款".into(),
        "refunded" => "已退款".into(),
        "order closed" => "交易已关闭".into(),
        r if r == crate::intake::GONE_REASON => "店铺已查不到此订单".into(),
        r if r.starts_with("no longer paid") => format!("订单已不是已付款状态（{r}）"),
        r if r.contains(" changed since v") => format!("打印后有变更，需要重打面单（{r}）"),
        r if r.starts_with("its tracking number was voided") => "运单号已作废".into(),
        r => r.into(),
    }
}

fn outcome(
    verdict: Verdict,
    code: &'static str,
    message: String,
    message_zh: String,
    order: Option<BenchOrder>,
) -> ScanOutcome {
    ScanOutcome {
        verdict,
        code,
        message,
        message_zh,
        order,
        shop: ShopCheck::Skipped,
        can_reprint: false,
    }
}

/// The order open at a bench, with its tallies.
/// Whether scanning `raw` at this bench now is the waybill that packs its
/// open order (printed, not packed yet): the one scan a bench scale weighs.
pub fn would_pack(store: &Store, config: &Config, bench: &Bench<'_>, raw: &str) -> Result<bool> {
    let code = resolve(store, config, bench, raw)?;
    Ok(current(store, config, bench)?.is_some_and(|o| {
        o.state == State::Printed.as_str() && o.tracking_no.as_deref() == Some(code.as_str())
    }))
}

pub fn current(store: &Store, config: &Config, bench: &Bench<'_>) -> Result<Option<BenchOrder>> {
    let Some(session) = store.bench_session(bench.name)? else {
        return Ok(None);
    };
    let Some(id) = session.order_id else {
        return Ok(None);
    };
    let Some(stored) = store.order(&id)? else {
        return Ok(None);
    };
    // Tallies are kept per order version, so a newer version starts from zero.
    Ok(Some(bench_order(store, config, &stored)?))
}

fn bench_order(store: &Store, config: &Config, stored: &StoredOrder) -> Result<BenchOrder> {
    let ids = store.parcel_orders(&stored.order.id)?;
    if ids.len() < 2 {
        return order_view(store, config, stored, &[]);
    }
    // A merged parcel: the lead's view with every order's items, in the
    // state of its first order that cannot ship as printed.
    let mut orders = Vec::with_capacity(ids.len());
    for id in &ids {
        match store.order(id)? {
            Some(o) if o.order.id == stored.order.id => orders.push(stored.clone()),
            Some(o) => orders.push(o),
            None => anyhow::bail!("order {id} vanished from the database"),
        }
    }
    order_view(store, config, &orders[0], &orders[1..])
}

/// The bench's view of an order and the orders riding in its parcel.
fn order_view(
    store: &Store,
    config: &Config,
    stored: &StoredOrder,
    riders: &[StoredOrder],
) -> Result<BenchOrder> {
    let o: &Order = &stored.order;
    let all_items: Vec<&crate::order::Item> = o
        .items
        .iter()
        .chain(riders.iter().flat_map(|r| &r.order.items))
        .collect();
    let tallies = store.tallies(&o.id, o.version, all_items.len())?;
    let live = store.live_number(&o.id)?;
    let (mut state, mut reason) = (stored.state, stored.reason.clone());
    if (state == State::Printed || state == State::Packed)
        && let Some(r) = riders.iter().find(|r| r.state != state)
    {
        state = r.state;
        reason = Some(format!(
            "order {} of this parcel: {}",
            r.order.id,
            r.reason.as_deref().unwrap_or(r.state.as_str())
        ));
    }
    let notes = |f: &dyn Fn(&Order) -> Option<String>| -> Option<String> {
        if riders.is_empty() {
            return f(o);
        }
        let all: Vec<String> = std::iter::once(o)
            .chain(riders.iter().map(|r| &r.order))
            .filter_map(|x| f(x).map(|n| format!("{}: {n}", x.id)))
            .collect();
        (!all.is_empty()).then(|| all.join("；"))
    };
    Ok(BenchOrder {
        id: o.id.clone(),
        version: o.version,
        state: state.as_str().into(),
        reason_zh: reason.as_deref().map(reason_zh),
        reason,
        tracking_no: live.as_ref().map(|t| t.number.clone()),
        courier: live.as_ref().map(|t| t.courier.clone()),
        buyer_nick: o.buyer.nick.clone(),
        buyer_message: notes(&|x| x.buyer.message.clone().filter(|m| !m.is_empty())),
        memo: notes(&|x| {
            x.effective_memo()
                .map(|m| format!("{} · {}", m.text, m.author))
        }),
        gift_message: notes(&|x| x.options.gift_message.clone().filter(|m| !m.is_empty())),
        invoice_title: notes(&|x| x.options.invoice_title.clone().filter(|m| !m.is_empty())),
        urgent: o.is_urgent(),
        items: all_items
            .into_iter()
            .zip(tallies)
            .map(|(i, scanned)| BenchItem {
                sku: i.sku.clone(),
                title: i.title.clone(),
                spec: i.spec.clone(),
                barcode: i.barcode.clone(),
                qty: u64::from(i.qty),
                scanned,
            })
            .collect(),
        require_item_scans: config.bench.require_item_scans,
        parcel: if riders.is_empty() {
            Vec::new()
        } else {
            std::iter::once(stored)
                .chain(riders)
                .map(|x| ParcelOrder {
                    id: x.order.id.clone(),
                    version: x.order.version,
                    state: x.state.as_str().into(),
                    reason: x.reason.clone(),
                })
                .collect()
        },
    })
}

/// The one-key reprint at a bench (after STOP changed_after_print): a new
/// label with a new number, the old one voided. The bench keeps the order open.
pub fn reprint(
    store: &mut Store,
    config: &Config,
    bench: &Bench<'_>,
    order_id: &str,
    out_dir: &Path,
) -> Result<crate::wave::PrintedOrder> {
    let printed = crate::wave::reprint(store, config, order_id, out_dir, bench.operator, None)?;
    // The new label's order: a split parcel's may be another than the old lead.
    if let Some(stored) = store.order(&printed.order_id)? {
        store.set_bench_order(
            bench.name,
            bench.operator,
            Some((&printed.order_id, stored.order.version)),
            "bench.reprinted",
            &format!("bench {}: new label {}", bench.name, printed.tracking_no),
        )?;
    }
    Ok(printed)
}

/// Whether `order_id` is the order this bench works on (open, or closed by
/// its last STOP or INTERCEPT): the bench page's reprint and out-of-stock act
/// on that order only, never on any id a request names.
pub fn bench_works_on(store: &Store, bench: &Bench<'_>, order_id: &str) -> Result<bool> {
    Ok(store.bench_session(bench.name)?.is_some_and(|s| {
        s.order_id.as_deref() == Some(order_id) || s.last_order_id.as_deref() == Some(order_id)
    }))
}

/// What `short` did.
#[derive(Clone, Debug, Serialize)]
pub struct Shortage {
    pub order_id: String,
    pub sku: String,
    pub qty: u64,
    pub state: &'static str,
    /// The tracking number voided with it, if the order had a label.
    pub voided: Option<String>,
    /// The memo the shop gets with the exception flag.
    pub memo: String,
    pub exception_flag: crate::order::Flag,
}

/// Out of stock (缺货): an item of the order is missing. The order is set aside
/// (it leaves its wave and cannot be handed over), its tracking number is
/// voided, and the outbox moves it to `flags.exception` on the shop with the memo
/// "缺货: SKU ×N · operator · date" so customer service can call the buyer. When
/// they put it back on the pull flag, it queues again like a new version.
pub fn short(
    store: &mut Store,
    config: &Config,
    bench: &Bench<'_>,
    order_id: &str,
    sku: &str,
    qty: Option<u64>,
) -> Result<Shortage> {
    use crate::error::UsageError;
    let Some(stored) = store.order(order_id)? else {
        anyhow::bail!(UsageError(format!(
            "order {order_id} is not in the database: pull it first"
        )));
    };
    // Scanned or typed: the same code either way.
    let sku = crate::scancode::normalize(sku);
    let sku = sku.as_str();
    let items = &stored.order.items;
    let Some(item) = items
        .iter()
        .find(|i| item_is(&i.sku, i.barcode.as_deref(), sku))
    else {
        let skus: Vec<&str> = items.iter().map(|i| i.sku.as_str()).collect();
        anyhow::bail!(UsageError(format!(
            "order {order_id}: no item with SKU or barcode {sku:?} (its items: {})",
            skus.join(", ")
        )));
    };
    let ordered = u64::from(item.qty);
    let qty = qty.unwrap_or(1);
    if qty == 0 || qty > ordered {
        anyhow::bail!(UsageError(format!(
            "order {order_id}: --qty for {} must be 1..={ordered} (ordered), got {qty}",
            item.sku
        )));
    }
    let sku = item.sku.clone();
    let reason = format!("缺货: {sku} ×{qty}");
    let now = chrono::Utc::now().with_timezone(&config.tz());
    let memo = format!(
        "{reason} · {} · {}",
        bench.operator,
        now.format("%Y-%m-%d %H:%M")
    );
    let memo_at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let flag = config.flags.exception;
    // In a merged parcel the others still ship: in the same transaction the
    // parcel is split, its number voided and the others queued to print again.
    let parcel = store.parcel_orders(order_id)?;
    let split = store
        .parcel_number(order_id)?
        .map(|(number, _)| number)
        .filter(|_| parcel.len() > 1);
    let others: Vec<String> = parcel.into_iter().filter(|id| id != order_id).collect();
    let done = store.mark_short(order_id, &reason, bench.operator, |tx, version, live| {
        if let Some(number) = &split {
            crate::store::split_parcel_in(
                tx,
                number,
                &others,
                &format!("parcel split: order {order_id} is out of stock ({reason})"),
                bench.operator,
            )?;
        }
        crate::store::enqueue_exception(
            tx,
            &crate::store::ExceptionWrite {
                order_id,
                order_version: version,
                flag,
                memo_text: &memo,
                memo_author: bench.operator,
                memo_at: &memo_at,
                courier: live.map(|l| l.1).unwrap_or(""),
                tracking_no: live.map(|l| l.0).unwrap_or(""),
            },
        )
    })?;
    let Some(done) = done else {
        anyhow::bail!(UsageError(format!(
            "order {order_id} is {}{}: only an order waiting to ship (queued, printed, packed, changed after print) can be set aside as out of stock",
            stored.state,
            stored
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )));
    };
    Ok(Shortage {
        order_id: order_id.into(),
        sku,
        qty,
        state: State::OutOfStock.as_str(),
        voided: done.voided.map(|v| v.0),
        memo,
        exception_flag: flag,
    })
}
