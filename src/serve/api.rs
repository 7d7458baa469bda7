//! The bench's JSON API: thin handlers over `packing`, `handover`, `show` and
//! `report`. Each runs as the signed-in operator at their bench, on a pooled
//! `Store`.

use super::auth::SignedIn;
use super::{ApiError, AppState, with_store};
use crate::handover::{self, BatchView, Closed, HandoverScan};
use crate::packing::{self, Bench, BenchOrder, ScanOutcome};
use crate::wave::PrintedOrder;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Longer than any barcode a scanner produces; anything longer is a mistake
/// (a pasted text, a stuck key), refused before it reaches the database.
const MAX_CODE: usize = 128;

fn check_code(code: &str) -> Result<(), ApiError> {
    if code.chars().count() > MAX_CODE {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("that is not a barcode: {MAX_CODE} characters at most"),
            format!("这不是条码：最多 {MAX_CODE} 个字符"),
        ));
    }
    Ok(())
}

/// The handover domain records who acted; this records where (the bench), so
/// every action from the page carries both.
fn at_bench(
    store: &mut crate::store::Store,
    who: &SignedIn,
    order_id: Option<&str>,
    what: &str,
) -> anyhow::Result<()> {
    let detail = format!("bench {}: {what}", who.bench);
    Ok(store.record(&who.operator, order_id, "bench.handover", &detail)?)
}

#[derive(Deserialize)]
pub struct ScanReq {
    code: String,
    /// The page's id for this scan: the same id sent again (the answer was
    /// lost on the way, the page tried again) gets the first answer again.
    #[serde(default)]
    scan_id: Option<String>,
}

/// How many answered scans each bench remembers by id.
const REMEMBERED_SCANS: usize = 32;

/// Per bench: a lock that orders its scans, and its latest answers by scan id.
pub struct RecentScans<T> {
    benches: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Answers<T>>>>>,
}

type Answers<T> = VecDeque<(String, T)>;

impl<T> Default for RecentScans<T> {
    fn default() -> Self {
        RecentScans {
            benches: Default::default(),
        }
    }
}

impl<T: Clone> RecentScans<T> {
    fn bench(&self, bench: &str) -> Arc<tokio::sync::Mutex<Answers<T>>> {
        let mut benches = self.benches.lock().unwrap_or_else(|e| e.into_inner());
        benches.entry(bench.to_string()).or_default().clone()
    }
}

/// The answer already given to scan `id`, if any.
fn recall<T: Clone>(answers: &Answers<T>, id: Option<&str>) -> Option<T> {
    let id = id.filter(|id| id.len() <= MAX_SCAN_ID)?;
    answers
        .iter()
        .find(|(seen, _)| seen == id)
        .map(|(_, out)| out.clone())
}

/// A page's scan id is short; a longer one is not remembered (memory).
const MAX_SCAN_ID: usize = 64;

fn remember<T: Clone>(answers: &mut Answers<T>, id: Option<String>, out: &T) {
    if let Some(id) = id.filter(|id| id.len() <= MAX_SCAN_ID) {
        if answers.len() == REMEMBERED_SCANS {
            answers.pop_front();
        }
        answers.push_back((id, out.clone()));
    }
}

/// One scan at the bench. It may re-read the order from the shop (short
/// timeout); that wait holds this request's own `Store`, nobody else's.
pub async fn scan(
    State(state): State<Arc<AppState>>,
    who: SignedIn,
    Json(req): Json<ScanReq>,
) -> Result<Json<ScanOutcome>, ApiError> {
    check_code(&req.code)?;
    // One scan of a bench at a time, so a repeat waits for its first try and
    // then finds its answer.
    let recent = state.recent_scans.bench(&who.bench);
    let mut recent = recent.lock().await;
    if let Some(out) = recall(&recent, req.scan_id.as_deref()) {
        return Ok(Json(out));
    }
    let scan_id = req.scan_id.clone();
    let handle = tokio::runtime::Handle::current();
    let started = std::time::Instant::now();
    // The bench's scale, read now: what the parcel weighs as its waybill is scanned.
    let scale = state
        .scale
        .as_ref()
        .filter(|s| s.serves(&who.bench))
        .and_then(|s| s.steady_grams());
    let out = with_store(&state, move |store, st| {
        let bench = Bench {
            name: &who.bench,
            operator: &who.operator,
        };
        // Only a waybill that is about to pack takes the weight: a slip, an
        // item or a waybill scanned again is not weighed.
        let weight = match scale {
            Some(g) if packing::would_pack(store, &st.config, &bench, &req.code)? => Some(g),
            _ => None,
        };
        handle.block_on(packing::scan_weighed(
            store,
            st.shop.as_ref(),
            &st.config,
            &bench,
            &req.code,
            weight,
        ))
    })
    .await;
    state
        .metrics
        .scan(out.as_ref().ok().map(|o| o.verdict), started.elapsed());
    let out = out?;
    remember(&mut recent, scan_id, &out);
    Ok(Json(out))
}

/// The bench scale's live weight (`[bench.scale]`); 404 when this bench has none.
pub async fn scale(
    State(state): State<Arc<AppState>>,
    who: SignedIn,
) -> Result<Json<super::scale::Shown>, ApiError> {
    match state.scale.as_ref().filter(|s| s.serves(&who.bench)) {
        Some(live) => Ok(Json(live.shown())),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("bench {} has no scale ([bench.scale])", who.bench),
            format!("工作台 {} 没有电子秤（[bench.scale]）", who.bench),
        )),
    }
}

/// The order open at this bench (after a reload or a sign-in), or `null`.
pub async fn bench(
    State(state): State<Arc<AppState>>,
    who: SignedIn,
) -> Result<Json<Option<BenchOrder>>, ApiError> {
    let out = with_store(&state, move |store, st| {
        let bench = Bench {
            name: &who.bench,
            operator: &who.operator,
        };
        packing::current(store, &st.config, &bench)
    })
    .await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct ReprintReq {
    order_id: String,
}

/// A reprint at the bench, and where it went: the bench's printer, or
/// nowhere when none is set (then the page says so, not a server's file path).
#[derive(Serialize)]
pub struct Reprinted {
    #[serde(flatten)]
    printed: PrintedOrder,
    printer: Option<String>,
}

pub async fn reprint(
    State(state): State<Arc<AppState>>,
    who: SignedIn,
    Json(req): Json<ReprintReq>,
) -> Result<Json<Reprinted>, ApiError> {
    check_code(&req.order_id)?;
    let out = with_store(&state, move |store, st| {
        let bench = Bench {
            name: &who.bench,
            operator: &who.operator,
        };
        if !packing::bench_works_on(store, &bench, &req.order_id)? {
            return Ok(Err(not_at_this_bench(&req.order_id, &who.bench)));
        }
        packing::reprint(store, &st.config, &bench, &req.order_id, &st.out_dir).map(Ok)
    })
    .await??;
    let printer = Some(state.config.printers.bench.clone()).filter(|p| !p.is_empty());
    Ok(Json(Reprinted {
        printed: out,
        printer,
    }))
}

pub async fn handover_list(
    State(state): State<Arc<AppState>>,
    _who: SignedIn,
) -> Result<Json<Vec<BatchView>>, ApiError> {
    let out = with_store(&state, move |store, st| {
        handover::open_batches(store, &st.config)
    })
    .await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct OpenReq {
    courier: String,
}

pub async fn handover_open(
    State(state): State<Arc<AppState>>,
    who: SignedIn,
    Json(req): Json<OpenReq>,
) -> Result<Json<BatchView>, ApiError> {
    check_code(&req.courier)?;
    let out = with_store(&state, move |store, st| {
        let b = handover::open(store, &st.config, &req.courier, &who.operator)?;
        at_bench(store, &who, None, &format!("handover batch {} open", b.id))?;
        Ok(b)
    })
    .await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct HandoverScanReq {
    code: String,
    #[serde(default)]
    batch: Option<String>,
    /// As for a bench scan: a repeat gets the first answer, not "duplicate".
    #[serde(default)]
    scan_id: Option<String>,
}

pub async fn handover_scan(
    State(state): State<Arc<AppState>>,
    who: SignedIn,
    Json(req): Json<HandoverScanReq>,
) -> Result<Json<HandoverScan>, ApiError> {
    check_code(&req.code)?;
    let recent = state.recent_handover_scans.bench(&who.bench);
    let mut recent = recent.lock().await;
    if let Some(out) = recall(&recent, req.scan_id.as_deref()) {
        return Ok(Json(out));
    }
    let scan_id = req.scan_id.clone();
    let handle = tokio::runtime::Handle::current();
    let out = with_store(&state, move |store, st| {
        let h = handle.block_on(handover::scan(
            store,
            st.shop.as_ref(),
            &st.config,
            req.batch.as_deref(),
            &req.code,
            &who.operator,
        ))?;
        let what = format!("handover batch {}: {:?} → {}", h.batch.id, req.code, h.code);
        at_bench(store, &who, h.order_id.as_deref(), &what)?;
        Ok(h)
    })
    .await?;
    remember(&mut recent, scan_id, &out);
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct CloseReq {
    #[serde(default)]
    batch: Option<String>,
}

pub async fn handover_close(
    State(state): State<Arc<AppState>>,
    who: SignedIn,
    Json(req): Json<CloseReq>,
) -> Result<Json<Closed>, ApiError> {
    let handle = tokio::runtime::Handle::current();
    let out = with_store(&state, move |store, st| {
        let c = handle.block_on(handover::close(
            store,
            st.shop.as_ref(),
            &st.config,
            req.batch.as_deref(),
            &who.operator,
            &st.out_dir,
        ))?;
        let what = format!("handover batch {} closed, {} parcels", c.batch_id, c.count);
        at_bench(store, &who, None, &what)?;
        Ok(c)
    })
    .await?;
    // The shop should hear about the handover now, not at the next tick.
    state.outbox_wake.notify_one();
    Ok(Json(out))
}

/// A bench acts only on the order it works on (open, or just stopped or
/// intercepted there): another bench's order, or any id a request names, is refused.
fn not_at_this_bench(order_id: &str, bench: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        format!(
            "order {order_id} is not the order at bench {bench}: scan its packing slip at this bench first"
        ),
        format!("订单 {order_id} 不是本台（{bench}）正在处理的订单：请先在本台扫它的发货单"),
    )
}

#[derive(Deserialize)]
pub struct ShortReq {
    order_id: String,
    sku: String,
    #[serde(default)]
    qty: Option<u64>,
}

/// Out of stock (缺货) at the bench: the order is set aside, its number voided,
/// and the exception flag queued for the shop (sent at once: the worker is woken).
pub async fn short(
    State(state): State<Arc<AppState>>,
    who: SignedIn,
    Json(req): Json<ShortReq>,
) -> Result<Json<packing::Shortage>, ApiError> {
    check_code(&req.order_id)?;
    check_code(&req.sku)?;
    let out = with_store(&state, move |store, st| {
        let bench = Bench {
            name: &who.bench,
            operator: &who.operator,
        };
        if !packing::bench_works_on(store, &bench, &req.order_id)? {
            return Ok(Err(not_at_this_bench(&req.order_id, &who.bench)));
        }
        let s = packing::short(
            store,
            &st.config,
            &bench,
            &req.order_id,
            req.sku.trim(),
            req.qty,
        )?;
        let detail = format!(
            "bench {}: out of stock {} ×{}{}",
            who.bench,
            s.sku,
            s.qty,
            s.voided
                .as_deref()
                .map(|n| format!(", waybill {n} voided"))
                .unwrap_or_default()
        );
        store.record(
            &who.operator,
            Some(&s.order_id),
            "bench.out_of_stock",
            &detail,
        )?;
        Ok(Ok(s))
    })
    .await??;
    state.outbox_wake.notify_one();
    Ok(Json(out))
}

/// A returns refusal (unknown code, item not in the parcel, more than it
/// held, never shipped): the operator's to fix, nothing recorded.
fn return_refused(r: crate::returns::Refusal) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, r.message, r.message_zh)
}

#[derive(Deserialize)]
pub struct ParcelReq {
    code: String,
}

/// Returns intake (退货登记): what a returned parcel held, by its waybill or order id.
pub async fn returns_parcel(
    State(state): State<Arc<AppState>>,
    _who: SignedIn,
    Query(req): Query<ParcelReq>,
) -> Result<Json<crate::returns::Parcel>, ApiError> {
    check_code(&req.code)?;
    let out = with_store(&state, move |store, _| {
        crate::returns::parcel(store, &req.code)
    })
    .await?;
    out.map(Json).map_err(return_refused)
}

#[derive(Deserialize)]
pub struct ReceiveItem {
    code: String,
    #[serde(default = "one")]
    qty: u64,
}

fn one() -> u64 {
    1
}

#[derive(Deserialize)]
pub struct ReceiveReq {
    code: String,
    items: Vec<ReceiveItem>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    condition: Option<String>,
    /// As for a scan: the same id sent again gets the first answer, not a
    /// second receipt.
    #[serde(default)]
    receive_id: Option<String>,
}

/// Longer than any reason an operator types at a bench.
const MAX_REASON: usize = 200;
/// More lines than any parcel holds.
const MAX_RETURN_LINES: usize = 200;

/// Record a returned parcel at this bench; the returns flag goes to the shop
/// at once (the worker is woken).
pub async fn returns_receive(
    State(state): State<Arc<AppState>>,
    who: SignedIn,
    Json(req): Json<ReceiveReq>,
) -> Result<Json<crate::returns::Received>, ApiError> {
    check_code(&req.code)?;
    for i in &req.items {
        check_code(&i.code)?;
    }
    if req.reason.chars().count() > MAX_REASON || req.items.len() > MAX_RETURN_LINES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "a reason of at most {MAX_REASON} characters and at most {MAX_RETURN_LINES} items"
            ),
            format!("原因最多 {MAX_REASON} 个字，商品最多 {MAX_RETURN_LINES} 行"),
        ));
    }
    let condition = match req.condition.as_deref() {
        None | Some("") => crate::returns::Condition::Ok,
        Some(c) => crate::returns::Condition::parse(c).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("condition {c:?}: ok or damaged"),
                format!("状态 {c}：完好（ok）或破损（damaged）"),
            )
        })?,
    };
    let mut items = Vec::with_capacity(req.items.len());
    for i in &req.items {
        let code = crate::scancode::normalize(&i.code);
        if code.is_empty() || i.qty == 0 {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "every item needs a code and a quantity of at least 1",
                "每件商品都要有条码和至少 1 的数量",
            ));
        }
        items.push((code, i.qty));
    }
    let recent = state.recent_receives.bench(&who.bench);
    let mut recent = recent.lock().await;
    if let Some(out) = recall(&recent, req.receive_id.as_deref()) {
        return Ok(Json(out));
    }
    let receive_id = req.receive_id.clone();
    let out = with_store(&state, move |store, st| {
        let bench = Bench {
            name: &who.bench,
            operator: &who.operator,
        };
        crate::returns::receive(
            store,
            &st.config,
            &bench,
            &crate::returns::Receive {
                code: &req.code,
                items: &items,
                reason: &req.reason,
                condition,
            },
        )
    })
    .await?
    .map_err(return_refused)?;
    remember(&mut recent, receive_id, &out);
    state.outbox_wake.notify_one();
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct ShowReq {
    #[serde(default)]
    q: String,
}

/// One order as `station show` tells it, plus what the bench page shows of it
/// (the effective memo and the buyer's message).
#[derive(Serialize)]
pub struct ShownOrder {
    #[serde(flatten)]
    story: crate::show::OrderStory,
    memo: Option<String>,
    buyer_message: Option<String>,
}

/// "Where is this order?": by order id, tracking number or buyer nick.
pub async fn show(
    State(state): State<Arc<AppState>>,
    _who: SignedIn,
    Query(req): Query<ShowReq>,
) -> Result<Json<Vec<ShownOrder>>, ApiError> {
    let q = req.q.trim().to_string();
    if q.is_empty() || q.chars().count() > MAX_CODE {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "give an order id, a tracking number or a buyer nick (1 to {MAX_CODE} characters)"
            ),
            format!("请输入订单号、运单号或买家昵称（1–{MAX_CODE} 个字）"),
        ));
    }
    let out = with_store(&state, move |store, _| {
        let mut out = Vec::new();
        for story in crate::show::show(store, &q)? {
            let order = store.order(&story.id)?;
            let memo = order.as_ref().and_then(|o| {
                o.order
                    .effective_memo()
                    .map(|m| format!("{} · {}", m.text, m.author))
            });
            let buyer_message = order.and_then(|o| o.order.buyer.message.clone());
            out.push(ShownOrder {
                story,
                memo,
                buyer_message,
            });
        }
        Ok(out)
    })
    .await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct ReportReq {
    #[serde(default)]
    date: Option<String>,
}

/// The end-of-day report for a local date (default today), as `station
/// report --format json`.
pub async fn report(
    State(state): State<Arc<AppState>>,
    _who: SignedIn,
    Query(req): Query<ReportReq>,
) -> Result<Json<crate::report::DayReport>, ApiError> {
    let date = match req.date.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => Some(
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("{d:?} is not a date like 2026-11-11"),
                    format!("{d:?} 不是日期（例如 2026-11-11）"),
                )
            })?,
        ),
    };
    let out = with_store(&state, move |store, st| {
        crate::report::day_report(store, &st.config, date)
    })
    .await?;
    Ok(Json(out))
}

/// The dispatch warnings now: after the cut-off, promise broken or at risk.
pub async fn dispatch(
    State(state): State<Arc<AppState>>,
    _who: SignedIn,
) -> Result<Json<crate::report::Dispatch>, ApiError> {
    let out = with_store(&state, move |store, st| {
        crate::report::dispatch_now(store, &st.config)
    })
    .await?;
    Ok(Json(out))
}

/// How many orders wait to be printed, and what the schedule did last.
#[derive(Serialize)]
pub struct QueueView {
    queued: u64,
    #[serde(flatten)]
    schedule: super::schedule::Status,
}

pub async fn queue(
    State(state): State<Arc<AppState>>,
    _who: SignedIn,
) -> Result<Json<QueueView>, ApiError> {
    let queued = with_store(&state, move |store, _| Ok(store.queue()?.len() as u64)).await?;
    let schedule = state
        .schedule
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(Json(QueueView { queued, schedule }))
}
