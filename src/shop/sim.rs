//! The shop platform simulator: an in-memory server that speaks the whole Shop API v1
//! contract (`shop-api.md`), plus admin endpoints that act as the shop's customer service
//! would, and fault knobs (errors, latency, broken paging) for the station's client to
//! survive. It backs the demo and the integration tests.
//!
//! Orders are held as raw `serde_json::Value`s and served exactly as given: the simulator
//! never validates or normalises an order, so tests can serve deliberately invalid ones (a
//! numeric phone, a flag "orange") and check that the station rejects them. Writes touch
//! only the fields the contract says they touch.
//!
//! Architecture Invariant: the bearer token is never logged, echoed or printed by `Debug`.
//! Architecture Invariant: the state mutex is never held across an `.await`.

use std::{
    fmt,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use anyhow::Context as _;
use axum::{
    Json, Router,
    extract::{
        Path, Query, Request, State,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use rand::{RngExt as _, SeedableRng as _, rngs::StdRng};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

const FLAGS: [&str; 6] = ["none", "red", "yellow", "green", "blue", "purple"];
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 500;

/// Faults injected into the `/v1` endpoints; the admin endpoints never see them.
/// `Default` is "no fault" (with `retry_after_secs` 1, which only matters once 429s are on).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Fraction of requests answered 503 `unavailable`.
    pub unavailable_rate: f64,
    /// Fraction of requests answered 429 `rate_limited` with `Retry-After`.
    pub rate_limit_rate: f64,
    pub retry_after_secs: u64,
    /// Send `Retry-After` as an HTTP-date (now + `retry_after_secs`) rather than seconds.
    pub retry_after_date: bool,
    /// Added to every `/v1` request, faulted or not.
    pub latency_ms: u64,
    /// Each next list page starts this many orders before the end of the previous one;
    /// clamped below the page size so paging always progresses.
    pub overlap: usize,
    /// A broken platform: a page requested with a cursor answers that same cursor, forever.
    pub repeat_cursor: bool,
    /// A 1-based list page number that always answers 503.
    pub fail_page: Option<u32>,
    /// Fraction of writes (PUT, POST) that are carried out and then answered 503
    /// anyway: the answer is lost on the way back, so the client must send again
    /// and the shop's idempotency is what keeps it at one write.
    pub lost_answer_rate: f64,
    /// An outage: every `/v1` request answers 503 for this many milliseconds after
    /// the faults were set (at start-up or by `PUT /admin/faults`), then the shop is back.
    pub outage_ms: u64,
    /// Every `/v1` request is answered with this status (400, 403, 404, 409, …) and
    /// the contract's error body, to check what a client must not retry.
    pub force_status: Option<u16>,
    /// Seeds the fault RNG; replacing the faults reseeds it, so runs are reproducible.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            unavailable_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_secs: 1,
            retry_after_date: false,
            latency_ms: 0,
            overlap: 0,
            repeat_cursor: false,
            fail_page: None,
            lost_answer_rate: 0.0,
            outage_ms: 0,
            force_status: None,
            seed: 0,
        }
    }
}

#[derive(Clone)]
pub struct SimConfig {
    pub token: String,
    pub faults: Faults,
}

// Hand-written so that printing a config can never leak the token.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("token", &"<redacted>")
            .field("faults", &self.faults)
            .finish()
    }
}

/// One request as the simulator saw it. Headers are deliberately not recorded: they carry
/// the token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogEntry {
    pub method: String,
    /// The path with its query string, as sent.
    pub path: String,
    pub status: u16,
    pub at: DateTime<FixedOffset>,
    /// Requests the shop was answering when this one arrived, itself included:
    /// how many a client had in flight at once.
    #[serde(default)]
    pub concurrent: u32,
}

/// A shipment accepted by `POST /v1/orders/{id}/shipments`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Shipment {
    pub order_id: String,
    pub courier: String,
    pub tracking_no: String,
    pub handed_over_at: String,
    /// Shop API v1.1: the parcel's weight in grams, when it was weighed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_g: Option<u64>,
}

/// A handle on one simulated shop; clones share the same state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    token: String,
    state: Mutex<ShopState>,
    in_flight: std::sync::atomic::AtomicU32,
}

struct ShopState {
    /// Insertion order is the platform's result order, and positions never change: admin
    /// replacements happen in place and nothing is ever deleted. List cursors rely on this.
    orders: Vec<Value>,
    shipments: Vec<Shipment>,
    log: Vec<LogEntry>,
    faults: Faults,
    /// When the faults were set: the outage window counts from here.
    faults_set: std::time::Instant,
    rng: StdRng,
}

impl Simulator {
    pub fn new(orders: Vec<Value>, cfg: SimConfig) -> Simulator {
        let state = ShopState {
            orders,
            shipments: Vec::new(),
            log: Vec::new(),
            rng: StdRng::seed_from_u64(cfg.faults.seed),
            faults: cfg.faults,
            faults_set: std::time::Instant::now(),
        };
        let inner = Inner {
            token: cfg.token,
            state: Mutex::new(state),
            in_flight: Default::default(),
        };
        Simulator {
            inner: Arc::new(inner),
        }
    }

    pub fn router(&self) -> Router {
        let v1 = Router::new()
            .route("/v1/orders", get(list_orders))
            .route("/v1/orders/{id}", get(get_order))
            .route("/v1/orders/{id}/flag", put(put_flag))
            .route("/v1/orders/{id}/shipments", post(post_shipment))
            .route_layer(middleware::from_fn_with_state(self.clone(), inject_faults));
        let admin = Router::new()
            .route("/admin/orders", put(admin_put_order))
            .route("/admin/orders/{id}/mutate", post(admin_mutate))
            .route(
                "/admin/log",
                get(|State(sim): State<Simulator>| async move { Json(sim.log()) }),
            )
            .route("/admin/faults", put(admin_put_faults))
            .route("/admin/shipments", get(admin_shipments));
        v1.merge(admin)
            .fallback(|| async {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
            })
            .method_not_allowed_fallback(|| async {
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "wrong method",
                )
            })
            .layer(middleware::from_fn_with_state(self.clone(), authenticate))
            .layer(middleware::from_fn_with_state(self.clone(), record))
            .with_state(self.clone())
    }

    pub fn log(&self) -> Vec<LogEntry> {
        self.state().log.clone()
    }

    pub fn set_faults(&self, f: Faults) {
        let mut st = self.state();
        st.rng = StdRng::seed_from_u64(f.seed);
        st.faults = f;
        st.faults_set = std::time::Instant::now();
    }

    pub fn order(&self, id: &str) -> Option<Value> {
        let st = self.state();
        position(&st.orders, id).map(|i| st.orders[i].clone())
    }

    /// A handler that panicked mid-write poisons the mutex; the simulator keeps serving the
    /// state as it is rather than failing every later request of a test.
    fn state(&self) -> MutexGuard<'_, ShopState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Bind and serve in the background (for the demo and tests). Returns the bound address.
/// The server runs until the returned handle is aborted or the runtime shuts down.
pub async fn spawn(
    sim: Simulator,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_app(sim.router(), addr, "shop simulator").await
}

/// Serve a simulator's routes on `addr` (port 0: any free port); returns the bound address.
pub async fn serve_app(
    app: Router,
    addr: SocketAddr,
    what: &'static str,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "{what} stopped serving");
        }
    });
    Ok((bound, handle))
}

/// Load orders from a file: a JSON array OR JSON Lines (one order per line). Elements that
/// are not objects are kept as they are (the simulator serves whatever it was given).
pub fn load_orders(path: &std::path::Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading orders from {}", path.display()))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(orders)) => return Ok(orders),
        // A single value is a JSON Lines file of one line.
        Ok(one) => return Ok(vec![one]),
        // A broken array is reported as a whole: parsing its lines would only blame line 1.
        Err(e) if text.trim_start().starts_with('[') => {
            return Err(e).with_context(|| format!("{} is not a valid JSON array", path.display()));
        }
        Err(_) => {}
    }
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    lines
        .map(|(n, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{} line {}: not valid JSON", path.display(), n + 1))
        })
        .collect()
}

/// A non-2xx answer: `{"error": {"code", "message"}}`, plus the current order on a version
/// conflict and `Retry-After` on a 429.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    order: Option<Value>,
    /// The `Retry-After` header's value: delay-seconds or an HTTP-date.
    retry_after: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            order: None,
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code, "message": self.message}});
        if let Some(order) = self.order {
            body["order"] = order;
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(value) = self.retry_after
            && let Ok(value) = header::HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

// Malformed requests get the contract's JSON error body, never axum's plain-text rejection.
macro_rules! bad_request_from {
    ($($rejection:ty),*) => {$(
        impl From<$rejection> for ApiError {
            fn from(r: $rejection) -> Self {
                ApiError::bad_request(r.body_text())
            }
        }
    )*};
}
bad_request_from!(JsonRejection, PathRejection, QueryRejection);

type ApiResult = Result<Json<Value>, ApiError>;

/// Finds an order by its string id. Entries without one (invalid orders, non-objects) can be
/// listed but never addressed.
fn position(orders: &[Value], id: &str) -> Option<usize> {
    orders
        .iter()
        .position(|o| o.get("id").and_then(Value::as_str) == Some(id))
}

fn find<'a>(orders: &'a mut [Value], id: &str) -> Result<&'a mut Value, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no order {id:?}"),
        )
    };
    Ok(&mut orders[position(orders, id).ok_or_else(not_found)?])
}

/// The platform's clock, in the shop's zone (China, +08:00) like the orders themselves.
fn now() -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset"))
}

/// Records a change: bumps `version` (a missing or non-integer version counts as 0) and sets
/// `updated_at`.
fn touch(order: &mut Value) {
    let version = order.get("version").and_then(Value::as_u64).unwrap_or(0);
    order["version"] = (version + 1).into();
    order["updated_at"] = now().to_rfc3339_opts(SecondsFormat::Secs, false).into();
}

fn push_memo(order: &mut Value, memo: Value) {
    match order.get_mut("memos") {
        Some(Value::Array(memos)) => memos.push(memo),
        _ => order["memos"] = json!([memo]),
    }
}

async fn record(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
    /// Counts the request out however it ends (a client that hangs up drops it).
    struct Counted<'a>(&'a AtomicU32);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, SeqCst);
        }
    }
    let concurrent = sim.inner.in_flight.fetch_add(1, SeqCst) + 1;
    let counted = Counted(&sim.inner.in_flight);
    let response = next.run(req).await;
    drop(counted);
    let entry = LogEntry {
        method,
        path,
        status: response.status().as_u16(),
        at: now(),
        concurrent,
    };
    sim.state().log.push(entry);
    response
}

async fn authenticate(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let expected =
        presented.and_then(|v| v.strip_prefix("Bearer ")) == Some(sim.inner.token.as_str());
    if !expected {
        let message = "missing or wrong bearer token in the Authorization header";
        return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    }
    next.run(req).await
}

/// Draws one roll per request so a given seed and request sequence always fault the same way.
async fn inject_faults(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let write = req.method() != axum::http::Method::GET;
    let (latency_ms, fault, lose_answer) = {
        let mut st = sim.state();
        let roll: f64 = st.rng.random();
        let lose: f64 = st.rng.random();
        let f = &st.faults;
        let down = st.faults_set.elapsed() < Duration::from_millis(f.outage_ms);
        let fault = if let Some(status) = f.force_status {
            Some(forced(status))
        } else if down {
            Some(ApiError::unavailable("the shop is down (simulated outage)"))
        } else if roll < f.unavailable_rate {
            Some(ApiError::unavailable("the shop is unavailable (simulated)"))
        } else if roll < f.unavailable_rate + f.rate_limit_rate {
            let message = "too many requests (simulated)";
            let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
            e.retry_after = Some(if f.retry_after_date {
                // IMF-fixdate, whole seconds: the wait it means is up to 1 s shorter.
                let at = Utc::now() + chrono::Duration::seconds(f.retry_after_secs as i64);
                at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
            } else {
                f.retry_after_secs.to_string()
            });
            Some(e)
        } else {
            None
        };
        let lose_answer = fault.is_none() && write && lose < f.lost_answer_rate;
        (f.latency_ms, fault, lose_answer)
    };
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
    match fault {
        Some(e) => e.into_response(),
        None if lose_answer => {
            // Carried out, then the answer is lost.
            let _ = next.run(req).await;
            ApiError::unavailable("the answer was lost on the way back (simulated)").into_response()
        }
        None => next.run(req).await,
    }
}

/// The answer a `force_status` fault gives: the status with the contract's code for it.
fn forced(status: u16) -> ApiError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "version_conflict",
        429 => "rate_limited",
        s if s >= 500 => "unavailable",
        _ => "forced",
    };
    ApiError::new(status, code, format!("forced answer {status} (simulated)"))
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    flag: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
}

/// A cursor names the page number it leads to (for the `fail_page` fault) and the position
/// in the insertion-ordered list where that page starts, e.g. `c2.100`.
fn parse_cursor(cursor: &str) -> Option<(u32, usize)> {
    let (page, start) = cursor.strip_prefix('c')?.split_once('.')?;
    let page: u32 = page.parse().ok()?;
    (page >= 2).then_some((page, start.parse().ok()?))
}

/// Pages are keyed by position in the unfiltered insertion order rather than by an offset
/// into the filtered list. So when the filtered set changes between pages, an order that
/// leaves the filter never makes the client skip another one; an order that enters the
/// filter behind the cursor is simply picked up by the next pull.
///
/// Filters compare the raw string fields exactly. Entries that are not objects have no
/// status or flag, so they are served on unfiltered lists and skipped by any filter.
async fn list_orders(
    State(sim): State<Simulator>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = query?;
    let page_size = match q.page_size.as_deref() {
        None => DEFAULT_PAGE_SIZE,
        Some(s) => s
            .parse()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("page_size must be 1..={MAX_PAGE_SIZE}, got {s:?}"))
            })?,
    };
    let (page, start) = match q.cursor.as_deref() {
        None => (1, 0),
        Some(c) => {
            parse_cursor(c).ok_or_else(|| ApiError::bad_request(format!("unknown cursor {c:?}")))?
        }
    };
    let st = sim.state();
    if st.faults.fail_page == Some(page) {
        return Err(ApiError::unavailable(format!(
            "list page {page} is failing (simulated)"
        )));
    }
    let field_is = |o: &Value, field: &str, want: &Option<String>| {
        want.as_deref()
            .is_none_or(|w| o.get(field).and_then(Value::as_str) == Some(w))
    };
    let mut matching = (st.orders.iter().enumerate().skip(start))
        .filter(|(_, o)| field_is(o, "status", &q.status) && field_is(o, "flag", &q.flag));
    let hits: Vec<(usize, &Value)> = matching.by_ref().take(page_size).collect();
    let more = matching.next().is_some();
    let next_cursor = match (&q.cursor, more) {
        (Some(given), _) if st.faults.repeat_cursor => Some(given.clone()),
        (_, true) => {
            // `more` means the page is full, and the overlap is clamped below its size.
            let overlap = st.faults.overlap.min(page_size - 1);
            let next_start = match overlap {
                0 => hits[hits.len() - 1].0 + 1,
                k => hits[hits.len() - k].0,
            };
            Some(format!("c{}.{next_start}", page + 1))
        }
        (_, false) => None,
    };
    let orders: Vec<Value> = hits.into_iter().map(|(_, o)| o.clone()).collect();
    Ok(Json(json!({"orders": orders, "next_cursor": next_cursor})))
}

async fn get_order(
    State(sim): State<Simulator>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let mut st = sim.state();
    Ok(Json(find(&mut st.orders, &id)?.clone()))
}

#[derive(Deserialize)]
struct FlagRequest {
    flag: String,
    memo: Option<Memo>,
    if_version: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct Memo {
    text: String,
    author: String,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    flag: Option<String>,
}

/// A request that is already fully applied (same flag, same memo last) answers 200 with the
/// current order before `if_version` is checked: a client retrying a write whose response
/// was lost must not get a conflict for its own earlier success.
async fn put_flag(
    State(sim): State<Simulator>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<FlagRequest>, JsonRejection>,
) -> ApiResult {
    let (Path(id), Json(req)) = (id?, body?);
    if !FLAGS.contains(&req.flag.as_str()) {
        return Err(ApiError::bad_request(format!(
            "flag must be one of {FLAGS:?}, got {:?}",
            req.flag
        )));
    }
    let memo = req
        .memo
        .map(|m| serde_json::to_value(m).expect("a memo serialises"));
    let mut st = sim.state();
    let order = find(&mut st.orders, &id)?;
    let last_memo = order
        .get("memos")
        .and_then(Value::as_array)
        .and_then(|m| m.last());
    let memo_is_last = memo.as_ref().is_none_or(|m| {
        last_memo.is_some_and(|last| {
            ["text", "author", "at"]
                .iter()
                .all(|k| last.get(k) == m.get(k))
        })
    });
    if order.get("flag").and_then(Value::as_str) == Some(req.flag.as_str()) && memo_is_last {
        return Ok(Json(order.clone()));
    }
    if let Some(expected) = req.if_version
        && order.get("version").and_then(Value::as_u64) != Some(expected)
    {
        let message = format!(
            "order {id} is at version {}, not {expected}",
            order["version"]
        );
        let mut e = ApiError::conflict("version_conflict", message);
        e.order = Some(order.clone());
        return Err(e);
    }
    order["flag"] = req.flag.into();
    if let Some(memo) = memo {
        push_memo(order, memo);
    }
    touch(order);
    Ok(Json(order.clone()))
}

#[derive(Deserialize)]
struct ShipmentRequest {
    courier: String,
    tracking_no: String,
    handed_over_at: String,
    #[serde(default)]
    weight_g: Option<u64>,
}

/// What orders sharing a tracking number must share: the buyer's nick and the
/// recipient (name, phone, province, city, district, address), compared as
/// the station merges them (spaces and full-width characters aside).
fn parcel_key(order: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => crate::parcel::normalize(s),
        Value::Null => String::new(),
        other => crate::parcel::normalize(&other.to_string()),
    };
    let r = &order["recipient"];
    let mut key = text(&order["buyer"]["nick"]);
    for field in ["name", "phone", "province", "city", "district", "address"] {
        key.push('\u{1}');
        key.push_str(&text(&r[field]));
    }
    key
}

async fn post_shipment(
    State(sim): State<Simulator>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<ShipmentRequest>, JsonRejection>,
) -> ApiResult {
    let (Path(id), Json(req)) = (id?, body?);
    if let Some(w) = req.weight_g
        && !(1..=1_000_000).contains(&w)
    {
        return Err(ApiError::bad_request(format!(
            "weight_g {w} is out of range (1..1000000 grams)"
        )));
    }
    let mut guard = sim.state();
    let st = &mut *guard;
    // The orders this number already ships: the same order again is a retry;
    // another order of the same buyer and recipient is a merged parcel
    // (合并发货, since v1.1); any other order is a mistake.
    let shipped: Vec<String> = st
        .shipments
        .iter()
        .filter(|s| s.tracking_no == req.tracking_no)
        .map(|s| s.order_id.clone())
        .collect();
    if let Some(first) = shipped.first()
        && !shipped.contains(&id)
    {
        let key = |order_id: &str| {
            st.orders
                .iter()
                .find(|o| o.get("id").and_then(Value::as_str) == Some(order_id))
                .map(parcel_key)
        };
        if key(first).is_none() || key(first) != key(&id) {
            let message = format!(
                "tracking number {} already ships order {first}, of another buyer or recipient",
                req.tracking_no
            );
            return Err(ApiError::bad_request(message));
        }
    }
    let order = find(&mut st.orders, &id)?;
    if shipped.contains(&id) {
        return Ok(Json(order.clone()));
    }
    if order.get("status").and_then(Value::as_str) != Some("paid")
        || order.get("refund").and_then(Value::as_str) != Some("none")
    {
        let (status, refund) = (&order["status"], &order["refund"]);
        let message = format!("order {id} cannot ship: status is {status}, refund is {refund}");
        return Err(ApiError::conflict("not_shippable", message));
    }
    order["status"] = "shipped".into();
    touch(order);
    let order = order.clone();
    let ShipmentRequest {
        courier,
        tracking_no,
        handed_over_at,
        weight_g,
    } = req;
    st.shipments.push(Shipment {
        order_id: id,
        courier,
        tracking_no,
        handed_over_at,
        weight_g,
    });
    Ok(Json(order))
}

/// Applies a customer-service change to the raw order. Values are taken as given, so a test
/// can make an order invalid (a numeric phone, a flag "orange"); unknown keys are refused so
/// that a typo in a test fails loudly instead of changing nothing.
async fn admin_mutate(
    State(sim): State<Simulator>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> ApiResult {
    let (Path(id), Json(changes)) = (id?, body?);
    const RECIPIENT: [&str; 3] = ["address", "name", "phone"];
    const TOP_LEVEL: [&str; 4] = ["refund", "status", "flag", "items"];
    if let Some(key) = changes.keys().find(|k| {
        !(RECIPIENT.contains(&k.as_str()) || TOP_LEVEL.contains(&k.as_str()) || *k == "memo")
    }) {
        return Err(ApiError::bad_request(format!("cannot mutate {key:?}")));
    }
    let mut st = sim.state();
    let order = find(&mut st.orders, &id)?;
    for (key, value) in changes {
        match key.as_str() {
            "memo" => push_memo(order, value),
            k if RECIPIENT.contains(&k) => {
                if !order.get("recipient").is_some_and(Value::is_object) {
                    order["recipient"] = json!({});
                }
                order["recipient"][k] = value;
            }
            _ => order[key.as_str()] = value,
        }
    }
    touch(order);
    Ok(Json(order.clone()))
}

async fn admin_put_order(
    State(sim): State<Simulator>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let Json(order) = body?;
    let Some(id) = order.get("id").and_then(Value::as_str) else {
        return Err(ApiError::bad_request("an order needs a string \"id\""));
    };
    let mut st = sim.state();
    match position(&st.orders, id) {
        Some(i) => st.orders[i] = order.clone(),
        None => st.orders.push(order.clone()),
    }
    Ok(Json(order))
}

async fn admin_put_faults(
    State(sim): State<Simulator>,
    body: Result<Json<Faults>, JsonRejection>,
) -> ApiResult {
    let Json(faults) = body?;
    sim.set_faults(faults.clone());
    Ok(Json(
        serde_json::to_value(faults).expect("faults serialise"),
    ))
}

async fn admin_shipments(State(sim): State<Simulator>) -> Json<Vec<Shipment>> {
    Json(sim.state().shipments.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "s3cret-test-token";
    const AT: &str = "2026-11-11T18:00:00+08:00";

    struct Shop {
        sim: Simulator,
        base: String,
        http: reqwest::Client,
    }

    /// Serves `orders` on a loopback port; `faults` is JSON so a test names only its knobs.
    async fn shop(orders: Vec<Value>, faults: Value) -> Shop {
        let faults = serde_json::from_value(faults).unwrap();
        let sim = Simulator::new(
            orders,
            SimConfig {
                token: TOKEN.into(),
                faults,
            },
        );
        let (addr, _server) = spawn(sim.clone(), ([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        let (base, http) = (
            format!("http://{addr}"),
            crate::shop::client::http().build().unwrap(),
        );
        Shop { sim, base, http }
    }

    impl Shop {
        async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
            let resp = req.bearer_auth(TOKEN).send().await.unwrap();
            (resp.status().as_u16(), resp.json().await.unwrap())
        }

        async fn get(&self, path: &str) -> (u16, Value) {
            self.send(self.http.get(format!("{}{path}", self.base)))
                .await
        }

        async fn put(&self, path: &str, body: Value) -> (u16, Value) {
            self.send(self.http.put(format!("{}{path}", self.base)).json(&body))
                .await
        }

        async fn post(&self, path: &str, body: Value) -> (u16, Value) {
            self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
                .await
        }

        /// Follows cursors to the end and returns the ids served, in order, repeats included.
        async fn pull(&self, page_size: usize) -> Vec<String> {
            let mut path = format!("/v1/orders?page_size={page_size}");
            let mut pulled = Vec::new();
            for _ in 0..100 {
                let (status, page) = self.get(&path).await;
                assert_eq!(status, 200, "{page}");
                pulled.extend(ids(&page).into_iter().map(String::from));
                let Some(cursor) = page["next_cursor"].as_str() else {
                    return pulled;
                };
                path = format!("/v1/orders?page_size={page_size}&cursor={cursor}");
            }
            panic!("paging did not end after 100 pages");
        }
    }

    fn ids(page: &Value) -> Vec<&str> {
        page["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect()
    }

    fn code(body: &Value) -> &str {
        body["error"]["code"].as_str().unwrap_or("<no error code>")
    }

    fn order(id: &str, status: &str, flag: &str) -> Value {
        json!({"id": id, "version": 1, "status": status, "refund": "none", "flag": flag,
               "recipient": {"name": "孔子娥", "phone": "17869074391"}, "memos": []})
    }

    fn orders(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| order(&format!("o{i:03}"), "paid", "yellow"))
            .collect()
    }

    #[tokio::test]
    async fn paging_covers_every_order_once() {
        let shop = shop(orders(250), json!({})).await;
        let expected: Vec<String> = (0..250).map(|i| format!("o{i:03}")).collect();
        assert_eq!(shop.pull(100).await, expected);
        assert_eq!(shop.sim.log().len(), 3);
    }

    #[tokio::test]
    async fn filters_skip_entries_that_are_not_objects() {
        let entries = vec![
            order("a", "paid", "yellow"),
            json!("just a string"),
            json!(42),
            order("b", "paid", "green"),
            order("c", "shipped", "yellow"),
        ];
        let shop = shop(entries.clone(), json!({})).await;
        assert_eq!(shop.get("/v1/orders").await.1["orders"], json!(entries));
        assert_eq!(ids(&shop.get("/v1/orders?flag=yellow").await.1), ["a", "c"]);
        let (_, both) = shop.get("/v1/orders?flag=yellow&status=paid").await;
        assert_eq!(
            (ids(&both), &both["next_cursor"]),
            (vec!["a"], &Value::Null)
        );
    }

    #[tokio::test]
    async fn bad_page_size_and_cursor_are_bad_requests() {
        let shop = shop(orders(3), json!({})).await;
        let queries = [
            "page_size=0",
            "page_size=501",
            "page_size=ten",
            "cursor=12",
            "cursor=c1.0",
        ];
        for query in queries {
            let (status, body) = shop.get(&format!("/v1/orders?{query}")).await;
            assert_eq!((status, code(&body)), (400, "bad_request"), "{query}");
        }
    }

    #[tokio::test]
    async fn overlap_repeats_orders_but_still_reaches_the_end() {
        let shop = shop(orders(100), json!({"overlap": 5})).await;
        let pulled = shop.pull(30).await;
        let unique: std::collections::BTreeSet<_> = pulled.iter().collect();
        assert_eq!((pulled.len(), unique.len()), (115, 100));
        assert_eq!(pulled.last().unwrap(), "o099");
        // An overlap as large as the page is clamped, so paging still progresses.
        shop.sim.set_faults(Faults {
            overlap: 1000,
            ..Faults::default()
        });
        assert_eq!(shop.pull(10).await.last().unwrap(), "o099");
    }

    #[tokio::test]
    async fn repeat_cursor_never_advances() {
        let shop = shop(orders(50), json!({"repeat_cursor": true})).await;
        let (_, first) = shop.get("/v1/orders?page_size=10").await;
        let cursor = first["next_cursor"].as_str().unwrap();
        for _ in 0..3 {
            let (_, page) = shop
                .get(&format!("/v1/orders?page_size=10&cursor={cursor}"))
                .await;
            assert_eq!(
                (&page["next_cursor"], ids(&page)[0]),
                (&json!(cursor), "o010")
            );
        }
    }

    #[tokio::test]
    async fn faults_hit_v1_but_never_admin() {
        let shop = shop(orders(30), json!({"fail_page": 2})).await;
        let (_, first) = shop.get("/v1/orders?page_size=10").await;
        let cursor = first["next_cursor"].as_str().unwrap();
        let (status, body) = shop
            .get(&format!("/v1/orders?page_size=10&cursor={cursor}"))
            .await;
        assert_eq!((status, code(&body)), (503, "unavailable"));

        shop.sim.set_faults(Faults {
            rate_limit_rate: 1.0,
            retry_after_secs: 3,
            ..Faults::default()
        });
        let url = format!("{}/v1/orders/o001", shop.base);
        let resp = shop.http.get(url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(
            (resp.status().as_u16(), &resp.headers()["retry-after"]),
            (429, &"3".parse().unwrap())
        );
        shop.sim.set_faults(Faults {
            rate_limit_rate: 1.0,
            retry_after_secs: 3,
            retry_after_date: true,
            ..Faults::default()
        });
        let url = format!("{}/v1/orders/o001", shop.base);
        let resp = shop.http.get(url).bearer_auth(TOKEN).send().await.unwrap();
        let date = resp.headers()["retry-after"].to_str().unwrap();
        let at = DateTime::parse_from_rfc2822(date).unwrap();
        let ahead = at.with_timezone(&Utc) - Utc::now();
        assert!((1..=3).contains(&ahead.num_seconds()), "{date}");

        assert_eq!(
            shop.put("/admin/faults", json!({"unavailable_rate": 1.0}))
                .await
                .0,
            200
        );
        assert_eq!(shop.get("/v1/orders/o001").await.0, 503);
        assert_eq!(shop.get("/admin/shipments").await, (200, json!([])));
    }

    #[tokio::test]
    async fn seeded_faults_are_reproducible_and_latency_is_added() {
        let faults = json!({"unavailable_rate": 0.3, "rate_limit_rate": 0.3, "seed": 7});
        let mut runs = Vec::new();
        for _ in 0..2 {
            let shop = shop(orders(1), faults.clone()).await;
            let mut statuses = Vec::new();
            for _ in 0..20 {
                statuses.push(shop.get("/v1/orders/o000").await.0);
            }
            runs.push(statuses);
        }
        assert_eq!(runs[0], runs[1]);
        assert!(
            [200, 429, 503].iter().all(|s| runs[0].contains(s)),
            "{:?}",
            runs[0]
        );

        let shop = shop(orders(1), json!({"latency_ms": 50})).await;
        let started = std::time::Instant::now();
        assert_eq!(shop.get("/v1/orders/o000").await.0, 200);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn an_outage_ends_on_time_and_forced_statuses_carry_their_code() {
        let shop = shop(orders(1), json!({"outage_ms": 400})).await;
        assert_eq!(shop.get("/v1/orders/o000").await.0, 503);
        // Admin endpoints stay up during the outage.
        assert_eq!(shop.get("/admin/shipments").await.0, 200);
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(shop.get("/v1/orders/o000").await.0, 200);
        // Setting the faults again starts a new outage window.
        shop.sim.set_faults(Faults {
            outage_ms: 10_000,
            ..Faults::default()
        });
        assert_eq!(shop.get("/v1/orders").await.0, 503);

        for (status, code_) in [
            (400, "bad_request"),
            (403, "forbidden"),
            (404, "not_found"),
            (409, "version_conflict"),
        ] {
            shop.sim.set_faults(Faults {
                force_status: Some(status),
                ..Faults::default()
            });
            let (got, body) = shop.get("/v1/orders?page_size=5").await;
            assert_eq!((got, code(&body)), (status, code_));
        }
    }

    #[tokio::test]
    async fn requests_without_the_token_are_unauthorized() {
        let shop = shop(orders(1), json!({})).await;
        let url = format!("{}/v1/orders", shop.base);
        let get = || shop.http.get(&url);
        for req in [
            get(),
            get().bearer_auth("wrong"),
            get().header("authorization", TOKEN),
        ] {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 401);
            assert_eq!(code(&resp.json().await.unwrap()), "unauthorized");
        }
        let (_, log) = shop.get("/admin/log").await;
        let unauthorized = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == 401);
        assert_eq!(unauthorized.count(), 3);
        assert!(!log.to_string().contains(TOKEN));
        let config = SimConfig {
            token: TOKEN.into(),
            faults: Faults::default(),
        };
        assert!(!format!("{config:?}").contains(TOKEN));
    }

    #[tokio::test]
    async fn stale_if_version_conflicts_and_returns_the_order() {
        let shop = shop(orders(1), json!({})).await;
        let stale = json!({"flag": "green", "memo": null, "if_version": 2});
        let (status, body) = shop.put("/v1/orders/o000/flag", stale).await;
        assert_eq!(
            (status, code(&body), &body["order"]["version"]),
            (409, "version_conflict", &json!(1))
        );

        let write = json!({"flag": "green", "if_version": 1});
        let (status, body) = shop.put("/v1/orders/o000/flag", write.clone()).await;
        assert_eq!(
            (status, &body["flag"], &body["version"]),
            (200, &json!("green"), &json!(2))
        );
        // The same write retried is already applied: no conflict, no bump.
        assert_eq!(shop.put("/v1/orders/o000/flag", write).await, (200, body));
        assert_eq!(
            shop.put("/v1/orders/o000/flag", json!({"flag": "orange"}))
                .await
                .0,
            400
        );
    }

    #[tokio::test]
    async fn an_identical_memo_is_not_appended_twice() {
        let shop = shop(orders(1), json!({})).await;
        let memo = json!({"text": "已打印", "author": "仓库", "at": AT});
        for _ in 0..2 {
            let (status, _) = shop
                .put(
                    "/v1/orders/o000/flag",
                    json!({"flag": "yellow", "memo": memo}),
                )
                .await;
            assert_eq!(status, 200);
        }
        let stored = shop.sim.order("o000").unwrap();
        assert_eq!(
            (&stored["memos"], &stored["version"]),
            (&json!([memo]), &json!(2))
        );
    }

    #[tokio::test]
    async fn shipments_are_idempotent_and_a_refund_blocks_them() {
        let shop = shop(orders(2), json!({})).await;
        let ship = json!({"courier": "ZTO", "tracking_no": "7831", "handed_over_at": AT});
        let (status, first) = shop.post("/v1/orders/o000/shipments", ship.clone()).await;
        assert_eq!(
            (status, &first["status"], &first["version"]),
            (200, &json!("shipped"), &json!(2))
        );
        assert_eq!(
            shop.post("/v1/orders/o000/shipments", ship.clone()).await,
            (200, first)
        );
        let recorded = json!([{"order_id": "o000", "courier": "ZTO", "tracking_no": "7831", "handed_over_at": AT}]);
        assert_eq!(shop.get("/admin/shipments").await.1, recorded);

        assert_eq!(
            shop.post("/admin/orders/o001/mutate", json!({"refund": "requested"}))
                .await
                .0,
            200
        );
        let other = json!({"courier": "ZTO", "tracking_no": "7832", "handed_over_at": AT});
        let (status, body) = shop.post("/v1/orders/o001/shipments", other).await;
        assert_eq!((status, code(&body)), (409, "not_shippable"));
    }

    #[tokio::test]
    async fn one_number_ships_one_buyers_orders_to_one_recipient_only() {
        let mut list = orders(3);
        for o in &mut list {
            o["buyer"] = json!({"nick": "小明"});
            o["recipient"] = json!({"name": "王小明", "phone": "13800138000", "province": "浙江省",
                                     "city": "杭州市", "district": "西湖区", "address": "文一路 1 号"});
        }
        // The same address with a full-width digit and no space: the same recipient.
        list[1]["recipient"]["address"] = json!("文一路１号");
        list[2]["recipient"]["name"] = json!("王大明");
        let shop = shop(list, json!({})).await;
        let ship = json!({"courier": "ZTO", "tracking_no": "7831", "handed_over_at": AT});
        for id in ["o000", "o001", "o001"] {
            let (status, _) = shop
                .post(&format!("/v1/orders/{id}/shipments"), ship.clone())
                .await;
            assert_eq!(status, 200, "{id}");
        }
        let (status, body) = shop.post("/v1/orders/o002/shipments", ship).await;
        assert_eq!((status, code(&body)), (400, "bad_request"));
        assert_eq!(
            shop.get("/admin/shipments")
                .await
                .1
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn mutate_bumps_version_and_keeps_invalid_values_as_given() {
        let shop = shop(orders(1), json!({})).await;
        let change = json!({"phone": 13800138000u64, "flag": "orange", "address": "新地址 1 号"});
        assert_eq!(
            shop.post("/admin/orders/o000/mutate", change).await.1["version"],
            2
        );
        let (_, served) = shop.get("/v1/orders/o000").await;
        assert_eq!(
            (&served["recipient"]["phone"], &served["flag"]),
            (&json!(13800138000u64), &json!("orange"))
        );
        assert_ne!(served["updated_at"], Value::Null);
        assert_eq!(
            shop.post("/admin/orders/o000/mutate", json!({"phnoe": "1"}))
                .await
                .0,
            400
        );
        assert_eq!(
            shop.post("/admin/orders/nope/mutate", json!({})).await.0,
            404
        );
    }

    #[tokio::test]
    async fn ids_with_reserved_characters_are_addressable() {
        let shop = shop(Vec::new(), json!({})).await;
        let odd = order("bad/id#2333", "paid", "yellow");
        assert_eq!(shop.put("/admin/orders", odd.clone()).await.0, 200);
        assert_eq!(shop.get("/v1/orders/bad%2Fid%232333").await, (200, odd));
        assert_eq!(code(&shop.get("/v1/orders/missing").await.1), "not_found");
    }

    #[test]
    fn load_orders_reads_arrays_and_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let array = write("a.json", "[\n{\"id\":\"a\"},\n\"odd\"\n]\n");
        assert_eq!(
            load_orders(&array).unwrap(),
            [json!({"id": "a"}), json!("odd")]
        );
        let lines = write("b.jsonl", "{\"id\":\"a\"}\n\n7\n");
        assert_eq!(load_orders(&lines).unwrap(), [json!({"id": "a"}), json!(7)]);
        let broken = write("c.jsonl", "{\"id\":\"a\"}\n{oops\n");
        assert!(format!("{:#}", load_orders(&broken).unwrap_err()).contains("line 2"));
    }
}
