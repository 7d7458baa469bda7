//! The bench's JSON API: thin handlers over `packing` and `handover`. Each
//! runs as the signed-in operator at their bench, on a pooled `Store`.

use super::auth::SignedIn;
use super::{ApiError, AppState, with_store};
use crate::handover::{self, BatchView, Closed, HandoverScan};
use crate::packing::{self, Bench, BenchOrder, ScanOutcome};
use crate::wave::PrintedOrder;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
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
}

/// One scan at the bench. It may re-read the order from the shop (short
/// timeout); that wait holds this request's own `Store`, nobody else's.
pub async fn scan(
    State(state): State<Arc<AppState>>,
    who: SignedIn,
    Json(req): Json<ScanReq>,
) -> Result<Json<ScanOutcome>, ApiError> {
    check_code(&req.code)?;
    let handle = tokio::runtime::Handle::current();
    let out = with_store(&state, move |store, st| {
        let bench = Bench {
            name: &who.bench,
            operator: &who.operator,
        };
        handle.block_on(packing::scan(
            store,
            st.shop.as_ref(),
            &st.config,
            &bench,
            &req.code,
        ))
    })
    .await?;
    Ok(Json(out))
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

pub async fn reprint(
    State(state): State<Arc<AppState>>,
    who: SignedIn,
    Json(req): Json<ReprintReq>,
) -> Result<Json<PrintedOrder>, ApiError> {
    check_code(&req.order_id)?;
    let out = with_store(&state, move |store, st| {
        let bench = Bench {
            name: &who.bench,
            operator: &who.operator,
        };
        packing::reprint(store, &st.config, &bench, &req.order_id, &st.out_dir)
    })
    .await?;
    Ok(Json(out))
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
}

pub async fn handover_scan(
    State(state): State<Arc<AppState>>,
    who: SignedIn,
    Json(req): Json<HandoverScanReq>,
) -> Result<Json<HandoverScan>, ApiError> {
    check_code(&req.code)?;
    let out = with_store(&state, move |store, st| {
        let h = handover::scan(
            store,
            &st.config,
            req.batch.as_deref(),
            &req.code,
            &who.operator,
        )?;
        let what = format!("handover batch {}: {:?} → {}", h.batch.id, req.code, h.code);
        at_bench(store, &who, h.order_id.as_deref(), &what)?;
        Ok(h)
    })
    .await?;
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
    let out = with_store(&state, move |store, st| {
        let c = handover::close(
            store,
            &st.config,
            req.batch.as_deref(),
            &who.operator,
            &st.out_dir,
        )?;
        let what = format!("handover batch {} closed, {} parcels", c.batch_id, c.count);
        at_bench(store, &who, None, &what)?;
        Ok(c)
    })
    .await?;
    // The shop should hear about the handover now, not at the next tick.
    state.outbox_wake.notify_one();
    Ok(Json(out))
}
