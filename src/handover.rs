//! The courier handover (交接): a batch per courier pickup, parcels scanned in
//! by their waybill, and the signed manifest (交接单) when it closes.
//!
//! Rules a scan must pass (each refusal names its reason): the number is one
//! the station issued, it is live (not voided), it belongs to the batch's
//! courier, its order is packed at a bench (or, with `handover.require_packed
//! = false`, at least printed; never intercepted or changed after print), and
//! neither the number nor the order is in a batch already. Before the rules,
//! the order is re-read from the shop with the bench's short patience, and at
//! close every order of the batch is re-read (several at once): a refund or a
//! closed order is refused or taken out, never shipped. A shop that does not
//! answer in time leaves the last known state, and the answer says so.
//!
//! Closing commits first — every order becomes `handed_over` and its shop
//! write-back (shipment, then the done flag with a memo) is queued in the
//! outbox in the same transaction — and only then writes the manifest PDF. A
//! crash in between leaves a closed batch without a manifest: `handover close`
//! again writes it. A closed batch never changes.

use crate::config::Config;
use crate::error::UsageError;
use crate::intake::State;
use crate::pull::ShopCheck;
use crate::render::layout::{DocInput, manifest_context, render_manifest};
use crate::shop::client::ShopClient;
use crate::store::{Actor, ClosingParcel, HandoverRow, ParcelRow, Removed, Store};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A batch as the bench page and the CLI show it.
#[derive(Clone, Debug, Serialize)]
pub struct BatchView {
    pub id: String,
    pub courier: String,
    pub courier_name: String,
    pub state: String,
    pub opened_by: String,
    pub opened_at: String,
    pub closed_by: Option<String>,
    pub closed_at: Option<String>,
    pub manifest: Option<String>,
    pub count: usize,
    pub parcels: Vec<ParcelRow>,
    /// Parcels labelled for this courier, still in the warehouse and in no
    /// batch (only while the batch is open).
    pub waiting: Vec<Waiting>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Waiting {
    pub tracking_no: String,
    pub order_id: String,
    pub state: String,
}

/// The answer to one handover scan.
#[derive(Clone, Debug, Serialize)]
pub struct HandoverScan {
    pub accepted: bool,
    /// accepted, empty_code, unknown_number, voided, other_courier,
    /// duplicate, in_other_batch, intercept, changed_after_print, not_packed,
    /// not_printed, handed_over.
    pub code: &'static str,
    pub message: String,
    pub message_zh: String,
    pub tracking_no: String,
    pub order_id: Option<String>,
    pub batch: BatchView,
    /// Whether the shop was asked about the order just now.
    pub shop: ShopCheck,
}

/// A closed batch.
#[derive(Clone, Debug, Serialize)]
pub struct Closed {
    pub batch_id: String,
    pub courier: String,
    pub count: usize,
    pub tracking_numbers: Vec<String>,
    pub order_ids: Vec<String>,
    pub manifest: String,
    /// Parcels taken out at close because their order must not ship.
    pub removed: Vec<Removed>,
    /// True when this call found the batch already closed and only (re)wrote
    /// its manifest.
    pub already_closed: bool,
    /// Whether the shop was asked about the batch's orders before closing.
    pub shop: ShopCheck,
    /// Orders the shop did not answer about before closing: they closed on
    /// their last known state.
    pub unchecked: Vec<String>,
}

/// Open a batch for `courier` (a configured courier code). A batch already
/// open for that courier is returned as is: one pickup, one batch.
pub fn open(
    store: &mut Store,
    config: &Config,
    courier: &str,
    operator: &str,
) -> Result<BatchView> {
    let courier = courier.trim().to_uppercase();
    if config.courier(&courier).is_none() {
        let known: Vec<&str> = config.couriers.iter().map(|c| c.code.as_str()).collect();
        bail!(UsageError(format!(
            "unknown courier {courier:?}: the configured couriers are {}",
            known.join(", ")
        )));
    }
    if let Some(row) = store
        .open_handovers()?
        .into_iter()
        .find(|h| h.courier == courier)
    {
        return view_row(store, config, row);
    }
    let day = Utc::now()
        .with_timezone(&config.tz())
        .format("%Y%m%d")
        .to_string();
    let row = store.open_handover(&courier, &day, operator)?;
    view_row(store, config, row)
}

/// One parcel scanned at the courier's pickup. `batch` picks the batch; without
/// it, the only open batch, or the open batch of the parcel's courier. The
/// parcel's order is re-read from the shop first (`shop`: the bench's
/// short-patience client; `None` checks nothing).
pub async fn scan(
    store: &mut Store,
    shop: Option<&ShopClient>,
    config: &Config,
    batch: Option<&str>,
    code: &str,
    operator: &str,
) -> Result<HandoverScan> {
    let mut code = crate::scancode::normalize(code);
    if let Some(upper) = crate::scancode::upper_variant(&code)
        && store.tracking(&code)?.is_none()
        && store.tracking(&upper)?.is_some()
    {
        code = upper;
    }
    let code = code.as_str();
    let mut check = ShopCheck::Skipped;
    if let Some(number) = store.tracking(code)?
        && number.state == "allocated"
        && let Some(stored) = store.order(&number.order_id)?
        && matches!(stored.state, State::Printed | State::Packed)
    {
        let actor = Actor {
            operator,
            source: "handover",
        };
        // Every order of a merged parcel: a refund of any one holds the parcel.
        let ids = store.parcel_orders(&number.order_id)?;
        check = crate::pull::recheck(store, shop, config, &actor, &ids).await?;
    }
    let mut out = scan_checked(store, config, batch, code, operator)?;
    out.shop = check;
    if check == ShopCheck::Unreachable {
        out.message
            .push_str(" (the shop did not answer: went on with the last known state)");
        out.message_zh
            .push_str("（店铺未响应：按最后已知状态处理）");
    }
    Ok(out)
}

/// The rules of a handover scan, on the state the store holds now.
fn scan_checked(
    store: &mut Store,
    config: &Config,
    batch: Option<&str>,
    code: &str,
    operator: &str,
) -> Result<HandoverScan> {
    let number = store.tracking(code)?;
    let row = pick_batch(store, batch, number.as_ref().map(|n| n.courier.as_str()))?;
    if row.state != "open" {
        bail!(UsageError(format!(
            "handover batch {} is closed: open a new one with `station handover open --courier {}`",
            row.id, row.courier
        )));
    }
    let refuse =
        |store: &Store, code_: &'static str, en: String, zh: String, order: Option<String>| {
            Ok::<_, anyhow::Error>(HandoverScan {
                accepted: false,
                code: code_,
                message: en,
                message_zh: zh,
                tracking_no: code.into(),
                order_id: order,
                batch: view_row(store, config, row.clone())?,
                shop: ShopCheck::Skipped,
            })
        };
    if code.is_empty() {
        return refuse(
            store,
            "empty_code",
            "nothing was scanned".into(),
            "没有扫到内容".into(),
            None,
        );
    }
    let Some(number) = number else {
        let result = refuse(
            store,
            "unknown_number",
            format!("{code} is not a tracking number the station issued"),
            format!("{code} 不是本站打印的运单号"),
            None,
        );
        store.record(
            operator,
            None,
            "handover.refused",
            &format!("{code} into {}: unknown number", row.id),
        )?;
        return result;
    };
    let order_id = number.order_id.clone();
    let stored = store.order(&order_id)?;
    let mut state = stored.as_ref().map(|s| s.state);
    let mut reason = stored
        .as_ref()
        .and_then(|s| s.reason.clone())
        .unwrap_or_default();
    // A merged parcel is handed over whole: the first of its orders that
    // cannot go (as the lead can) speaks for it.
    let mut who = order_id.clone();
    if let Some(lead) = state.filter(|s| matches!(s, State::Packed | State::Printed)) {
        for (rider, _) in store.parcel_members(code)? {
            if let Some(r) = store.order(&rider)?
                && r.state != lead
                && (r.state != State::Packed || config.handover.require_packed)
            {
                state = Some(r.state);
                reason = r.reason.unwrap_or_default();
                who = rider;
                break;
            }
        }
    }
    let existing = store.parcel_for(code, &order_id)?;
    let courier_name = |c: &str| {
        config
            .courier(c)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| c.to_string())
    };
    let refusal: Option<(&'static str, String, String)> = if number.state != "allocated" {
        let why = number.void_reason.clone().unwrap_or_default();
        Some((
            "voided",
            format!(
                "{code} is void ({why}): this label must not ship; use the order's current label"
            ),
            format!("{code} 已作废（{why}）：此面单不能发出，请用本单当前的快递单"),
        ))
    } else if number.courier != row.courier {
        Some((
            "other_courier",
            format!(
                "{code} is a {} parcel, not {}: keep it for its own courier",
                number.courier, row.courier
            ),
            format!(
                "{code} 是{}的包裹，不是{}的：请留给对应快递",
                courier_name(&number.courier),
                courier_name(&row.courier)
            ),
        ))
    } else if let Some(p) = existing {
        if p.batch_id == row.id {
            Some((
                "duplicate",
                format!("{code} is already in this batch (parcel {})", p.seq),
                format!("{code} 已经扫过（第 {} 件）", p.seq),
            ))
        } else {
            Some((
                "in_other_batch",
                format!("order {order_id} is already in batch {}", p.batch_id),
                format!("订单 {order_id} 已在交接批次 {} 中", p.batch_id),
            ))
        }
    } else {
        match state {
            Some(State::Packed) => None,
            Some(State::Printed) if !config.handover.require_packed => None,
            Some(State::Printed) => Some((
                "not_packed",
                format!(
                    "order {who} was never checked at a packing bench: scan its packing slip, items and waybill at a bench first (or set handover.require_packed = false)"
                ),
                format!("订单 {who} 还没有在打包台验货：请先在打包台扫发货单、商品和运单"),
            )),
            Some(State::Intercept) => Some((
                "intercept",
                format!("INTERCEPT order {who}: {reason}. Do not hand it over: set it aside"),
                format!("拦截 订单 {who}：{reason}。不要交给快递，请放到一边"),
            )),
            Some(State::ChangedAfterPrint) => Some((
                "changed_after_print",
                format!(
                    "order {who} changed after print ({reason}): reprint its label before it ships"
                ),
                format!("订单 {who} 打印后有变更（{reason}）：请重打快递单后再交接"),
            )),
            Some(State::HandedOver | State::Shipped) => Some((
                "handed_over",
                format!("order {who} was already handed over"),
                format!("订单 {who} 已交接"),
            )),
            _ => Some((
                "not_printed",
                format!("order {who} is not printed"),
                format!("订单 {who} 还没有打印"),
            )),
        }
    };
    if let Some((c, en, zh)) = refusal {
        store.record(
            operator,
            Some(&order_id),
            "handover.refused",
            &format!("{code} into {}: {c}", row.id),
        )?;
        return refuse(store, c, en, zh, Some(order_id));
    }
    if store
        .add_parcel(
            &row.id,
            code,
            &order_id,
            operator,
            config.handover.require_packed,
        )?
        .is_none()
    {
        // Another scanner or process changed something between the checks and
        // the write: check again, so the answer names what changed.
        return scan_checked(store, config, Some(&row.id), code, operator);
    }
    let batch = view_row(store, config, row)?;
    Ok(HandoverScan {
        accepted: true,
        code: "accepted",
        message: format!(
            "{code} (order {order_id}) accepted: {} parcels in {}",
            batch.count, batch.id
        ),
        message_zh: format!("{code} 已交接，本批共 {} 件", batch.count),
        tracking_no: code.into(),
        order_id: Some(order_id),
        batch,
        shop: ShopCheck::Skipped,
    })
}

/// Close a batch: re-read its orders from the shop, commit the handover and
/// its write-backs (a parcel whose order was refunded or closed meanwhile is
/// taken out), then write the manifest under `out_dir/handovers/`. Closing a
/// batch that is already closed (after a crash) writes its manifest again if
/// it is missing.
pub async fn close(
    store: &mut Store,
    shop: Option<&ShopClient>,
    config: &Config,
    batch: Option<&str>,
    operator: &str,
    out_dir: &Path,
) -> Result<Closed> {
    let row = closing_batch(store, batch)?;
    let mut check = ShopCheck::Skipped;
    let mut unchecked = Vec::new();
    if row.state == "open" {
        // Every order of every parcel, the riders of merged parcels too.
        let mut ids: Vec<String> = Vec::new();
        for p in store.handover_parcels(&row.id)? {
            ids.push(p.order_id);
            ids.extend(
                store
                    .parcel_members(&p.tracking_no)?
                    .into_iter()
                    .map(|(id, _)| id),
            );
        }
        let actor = Actor {
            operator,
            source: "handover close",
        };
        (check, unchecked) = crate::pull::recheck_each(store, shop, config, &actor, &ids).await?;
    }
    let mut closed = close_checked(store, config, row, operator, out_dir)?;
    closed.shop = check;
    // Only those still in the batch matter to the operator.
    unchecked.retain(|id| closed.order_ids.contains(id));
    closed.unchecked = unchecked;
    Ok(closed)
}

/// The batch `close` means: the one named, else the only open one, else one
/// whose close a crash interrupted.
fn closing_batch(store: &Store, batch: Option<&str>) -> Result<HandoverRow> {
    Ok(match batch {
        Some(id) => store
            .handover(id)?
            .ok_or_else(|| UsageError(format!("there is no handover batch {id:?}")))?,
        None => {
            let open = store.open_handovers()?;
            match open.len() {
                1 => open.into_iter().next().expect("one"),
                0 => match store.unfinished_handover()? {
                    Some(row) => row,
                    None => bail!(UsageError(
                        "no handover batch is open: open one with `station handover open --courier C`"
                            .into()
                    )),
                },
                _ => bail!(UsageError(format!(
                    "several handover batches are open ({}): say which with --batch",
                    open.iter().map(|h| h.id.as_str()).collect::<Vec<_>>().join(", ")
                ))),
            }
        }
    })
}

/// Close `row` on the state the store holds now.
fn close_checked(
    store: &mut Store,
    config: &Config,
    row: HandoverRow,
    operator: &str,
    out_dir: &Path,
) -> Result<Closed> {
    let already_closed = row.state == "closed";
    let mut removed = Vec::new();
    let row = if already_closed {
        row
    } else {
        if store.handover_parcels(&row.id)?.is_empty() {
            bail!(UsageError(format!(
                "handover batch {} has no parcels yet: scan the parcels' waybills first",
                row.id
            )));
        }
        let courier = config.courier(&row.courier);
        let courier_name = courier.map(|c| c.name.as_str()).unwrap_or(&row.courier);
        let closed = Utc::now();
        let closed_at = closed.to_rfc3339_opts(SecondsFormat::Millis, true);
        let local = closed.with_timezone(&config.tz());
        let shop_time = local.to_rfc3339_opts(SecondsFormat::Secs, false);
        let memo_day = local.format("%Y-%m-%d %H:%M").to_string();
        let batch_id = row.id.clone();
        let courier_code = row.courier.clone();
        let (_, out) = store.close_handover(
            &row.id,
            operator,
            &closed_at,
            config.handover.require_packed,
            |tx, p: &ClosingParcel| {
                let memo_text = format!(
                    "已交接 {courier_name} {} · {operator} · {memo_day}",
                    p.tracking_no
                );
                crate::store::enqueue_write_back(
                    tx,
                    &crate::store::WriteBack {
                        order_id: &p.order_id,
                        order_version: p.order_version,
                        courier: &courier_code,
                        tracking_no: &p.tracking_no,
                        handed_over_at: &shop_time,
                        done_flag: config.flags.done,
                        memo_text: &memo_text,
                        memo_author: operator,
                        memo_at: &shop_time,
                        batch_id: &batch_id,
                    },
                )
            },
        )?;
        removed = out;
        crate::crash::point("handover.closed");
        let row = store.handover(&row.id)?.expect("still there");
        if row.state == "open" {
            let taken: Vec<String> = removed
                .iter()
                .map(|r| format!("{} (order {}: {})", r.tracking_no, r.order_id, r.reason))
                .collect();
            bail!(UsageError(format!(
                "batch {} was not closed: every parcel in it had to be taken out: {}. Take them out of the courier's pile",
                row.id,
                taken.join("; ")
            )));
        }
        row
    };
    let parcels = store.handover_parcels(&row.id)?;
    let manifest = match &row.manifest {
        Some(path) if Path::new(path).exists() => PathBuf::from(path),
        _ => {
            let path = write_manifest(store, config, &row, &parcels, out_dir)?;
            crate::crash::point("handover.manifest.written");
            store.set_manifest(&row.id, &path.display().to_string(), operator)?;
            path
        }
    };
    Ok(Closed {
        batch_id: row.id.clone(),
        courier: row.courier.clone(),
        count: parcels.len(),
        tracking_numbers: parcels.iter().map(|p| p.tracking_no.clone()).collect(),
        order_ids: parcels.iter().map(|p| p.order_id.clone()).collect(),
        manifest: manifest.display().to_string(),
        removed,
        already_closed,
        shop: ShopCheck::Skipped,
        unchecked: Vec::new(),
    })
}

/// Write a closed batch's manifest again where it is, from the orders as the
/// store holds them now (after a purge: without the purged personal data).
/// `None` when the batch has no manifest on disk.
pub fn rewrite_manifest(store: &Store, config: &Config, batch_id: &str) -> Result<Option<PathBuf>> {
    let Some(row) = store.handover(batch_id)? else {
        return Ok(None);
    };
    let Some(path) = row.manifest.clone().map(PathBuf::from) else {
        return Ok(None);
    };
    if row.state != "closed" || !path.exists() {
        return Ok(None);
    }
    // `DIR/handovers/BATCH.pdf`: written again under the same DIR.
    let out_dir = path
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let parcels = store.handover_parcels(&row.id)?;
    write_manifest(store, config, &row, &parcels, &out_dir).map(Some)
}

/// Render the manifest of a closed batch and write it atomically.
fn write_manifest(
    store: &Store,
    config: &Config,
    row: &HandoverRow,
    parcels: &[ParcelRow],
    out_dir: &Path,
) -> Result<PathBuf> {
    let courier = config.courier(&row.courier);
    let closed_at = row
        .closed_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            t.with_timezone(&config.tz())
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default();
    // A merged parcel is one row: its combined items, "等 N 单".
    let mut orders = Vec::with_capacity(parcels.len());
    let mut merged = Vec::with_capacity(parcels.len());
    for p in parcels {
        let mut all = Vec::new();
        let riders = store.parcel_members(&p.tracking_no)?;
        for id in std::iter::once(&p.order_id).chain(riders.iter().map(|(id, _)| id)) {
            let stored = store.order(id)?.with_context(|| {
                format!("order {id} of batch {} is not in the database", row.id)
            })?;
            all.push(stored.order);
        }
        let riders: Vec<&crate::order::Order> = all[1..].iter().collect();
        orders.push(crate::parcel::combined(&all[0], &riders));
        merged.push(if all.len() > 1 {
            all.iter().map(crate::parcel::MergedOrder::of).collect()
        } else {
            Vec::new()
        });
    }
    let docs: Vec<DocInput> = parcels
        .iter()
        .zip(&orders)
        .zip(&merged)
        .map(|((p, order), merged)| DocInput {
            order,
            tracking_no: Some(&p.tracking_no),
            courier_code: Some(&row.courier),
            courier_name: courier.map(|c| c.name.as_str()),
            sender: &config.sender,
            routing: None,
            slot: None,
            merged,
            printed_at: closed_at.clone(),
            wave: None,
            hide_prices: true,
            shop_name: &config.print.shop_name,
            // The manifest leaves with the courier: names masked like the waybill.
            mask: config.print.mask,
            time_zone: config.tz(),
        })
        .collect();
    let mut context = manifest_context(&docs);
    // A parcel weighed at the bench shows what the scale said, not the
    // items' catalogue weights.
    for (shown, p) in context.parcels.iter_mut().zip(parcels) {
        if let Some(grams) = store
            .packings_of(&p.order_id)?
            .into_iter()
            .rfind(|k| k.tracking_no == p.tracking_no)
            .and_then(|k| k.weight_g)
        {
            shown.weight_kg = Some(format!("{:.2}", grams as f64 / 1000.0));
        }
    }
    context.batch = Some(row.id.clone());
    context.operator = row.closed_by.clone();
    context.courier_code = Some(row.courier.clone());
    context.courier_name = courier.map(|c| c.name.clone());
    let template = crate::wave::load_template(
        &config.print.manifest_template,
        crate::render::barcode::Dpi(config.print.dpi),
    )?;
    let rendered = render_manifest(&template, &context)
        .with_context(|| format!("cannot render the manifest of batch {}", row.id))?;
    let dir = out_dir.join("handovers");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}.pdf", row.id));
    crate::wave::write_atomically(&path, &rendered.pdf)?;
    Ok(path)
}

/// A batch with its parcels and, while open, the parcels still waiting.
pub fn view(store: &Store, config: &Config, batch_id: &str) -> Result<BatchView> {
    let row = store
        .handover(batch_id)?
        .ok_or_else(|| UsageError(format!("there is no handover batch {batch_id:?}")))?;
    view_row(store, config, row)
}

/// Every open batch, oldest first.
pub fn open_batches(store: &Store, config: &Config) -> Result<Vec<BatchView>> {
    store
        .open_handovers()?
        .into_iter()
        .map(|row| view_row(store, config, row))
        .collect()
}

fn view_row(store: &Store, config: &Config, row: HandoverRow) -> Result<BatchView> {
    let parcels = store.handover_parcels(&row.id)?;
    let waiting = if row.state == "open" {
        store
            .waiting_for_courier(&row.courier)?
            .into_iter()
            .map(|(tracking_no, order_id, state)| Waiting {
                tracking_no,
                order_id,
                state,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(BatchView {
        courier_name: config
            .courier(&row.courier)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| row.courier.clone()),
        count: parcels.len(),
        id: row.id,
        courier: row.courier,
        state: row.state,
        opened_by: row.opened_by,
        opened_at: row.opened_at,
        closed_by: row.closed_by,
        closed_at: row.closed_at,
        manifest: row.manifest,
        parcels,
        waiting,
    })
}

/// The batch a scan goes into.
fn pick_batch(store: &Store, batch: Option<&str>, courier: Option<&str>) -> Result<HandoverRow> {
    if let Some(id) = batch {
        return Ok(store
            .handover(id)?
            .ok_or_else(|| UsageError(format!("there is no handover batch {id:?}")))?);
    }
    let open = store.open_handovers()?;
    match open.len() {
        0 => bail!(UsageError(
            "no handover batch is open: open one with `station handover open --courier C`".into()
        )),
        1 => Ok(open.into_iter().next().expect("one")),
        _ => {
            let ids = open
                .iter()
                .map(|h| h.id.clone())
                .collect::<Vec<_>>()
                .join(", ");
            match courier.and_then(|c| open.iter().find(|h| h.courier == c)) {
                Some(h) => Ok(h.clone()),
                None => bail!(UsageError(format!(
                    "several handover batches are open ({ids}) and none is for this parcel's courier: say which with --batch"
                ))),
            }
        }
    }
}
