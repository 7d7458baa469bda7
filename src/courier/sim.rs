//! The Waybill API v1 simulator (`station waybill-sim`, and in-process for the
//! demo and tests): a courier branch's e-waybill service with a balance,
//! idempotent request ids, routing codes, cancels, out-of-area places, and the
//! shop simulator's fault switches (503s, 429s, latency, lost answers, an outage).
//!
//! Admin endpoints (no token, never faulted): `GET /admin/state`,
//! `PUT /admin/faults`, `PUT /admin/balance {courier, available}`,
//! `PUT /admin/unreachable {courier, places}` (a province, city or district
//! named in `places` is out of the courier's area), `POST /admin/used {number}`
//! (the courier scanned the parcel: it can no longer be cancelled).
//!
//! Architecture Invariant: the token is never logged or echoed; the state
//! mutex is never held across an `.await`.

use axum::{
    Json, Router,
    extract::{Path, Query, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use rand::{RngExt as _, SeedableRng as _, rngs::StdRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Faults on the `/v1` endpoints.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Fraction of requests answered 503 `unavailable`.
    pub unavailable_rate: f64,
    /// Fraction answered 429 `rate_limited` (Retry-After: 1).
    pub rate_limit_rate: f64,
    /// Added to every `/v1` request.
    pub latency_ms: u64,
    /// Fraction of takes carried out and then answered 503 (the answer is
    /// lost: the client must send the same request ids again).
    pub lost_answer_rate: f64,
    /// Every `/v1` request answers 503 for this long after the faults were set.
    pub outage_ms: u64,
    pub seed: u64,
}

#[derive(Clone, Debug, Serialize)]
struct Issued {
    courier: String,
    request_id: String,
    order_ids: Vec<String>,
    /// issued | cancelled | used
    state: &'static str,
}

struct Inner {
    token: String,
    default_balance: u64,
    faults: Faults,
    faults_set: Instant,
    rng: StdRng,
    balances: BTreeMap<String, u64>,
    /// Per courier: the next serial and its slot in the number.
    serials: BTreeMap<String, (u64, u64)>,
    by_request: HashMap<String, String>,
    numbers: BTreeMap<String, Issued>,
    unreachable: BTreeMap<String, Vec<String>>,
    /// Take calls answered 200, and parcels in them.
    take_calls: u64,
    parcels_answered: u64,
}

/// A running simulator's state, shared with its handlers.
#[derive(Clone)]
pub struct WaybillSim {
    inner: Arc<Mutex<Inner>>,
}

impl WaybillSim {
    /// A service holding `balance` numbers for every courier it is asked about.
    pub fn new(token: &str, balance: u64, faults: Faults) -> WaybillSim {
        WaybillSim {
            inner: Arc::new(Mutex::new(Inner {
                token: token.into(),
                default_balance: balance,
                rng: StdRng::seed_from_u64(faults.seed),
                faults,
                faults_set: Instant::now(),
                balances: BTreeMap::new(),
                serials: BTreeMap::new(),
                by_request: HashMap::new(),
                numbers: BTreeMap::new(),
                unreachable: BTreeMap::new(),
                take_calls: 0,
                parcels_answered: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Places (province, city or district names) `courier` does not deliver to.
    pub fn set_unreachable(&self, courier: &str, places: Vec<String>) {
        self.lock().unreachable.insert(courier.into(), places);
    }

    /// What `GET /admin/state` answers: numbers issued, cancelled, used, balances.
    pub fn state(&self) -> Value {
        let st = self.lock();
        let count = |state: &str| st.numbers.values().filter(|n| n.state == state).count();
        json!({
            "issued": st.numbers.len(),
            "cancelled": count("cancelled"),
            "used": count("used"),
            "requests": st.by_request.len(),
            "take_calls": st.take_calls,
            "parcels_answered": st.parcels_answered,
            "balances": st.balances,
            "numbers": st.numbers,
        })
    }

    pub fn router(&self) -> Router {
        let v1 = Router::new()
            .route("/v1/waybills", post(take))
            .route("/v1/waybills/{number}/cancel", post(cancel))
            .route("/v1/balance", get(balance))
            .layer(middleware::from_fn_with_state(self.clone(), guard));
        Router::new()
            .merge(v1)
            .route("/admin/state", get(admin_state))
            .route("/admin/faults", put(admin_faults))
            .route("/admin/balance", put(admin_balance))
            .route("/admin/unreachable", put(admin_unreachable))
            .route("/admin/used", post(admin_used))
            .with_state(self.clone())
    }
}

/// Serve on `addr` (port 0: any free port); returns the bound address.
pub async fn spawn(
    sim: WaybillSim,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    crate::shop::sim::serve_app(sim.router(), addr, "waybill simulator").await
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// Token, then faults, then latency, for every `/v1` request.
async fn guard(State(sim): State<WaybillSim>, req: Request, next: Next) -> Response {
    let (ok, latency, fault) = {
        let mut st = sim.lock();
        let expected = format!("Bearer {}", st.token);
        let ok = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected);
        let f = st.faults.clone();
        let outage =
            f.outage_ms > 0 && st.faults_set.elapsed() < Duration::from_millis(f.outage_ms);
        let draw: f64 = st.rng.random_range(0.0..1.0);
        let fault = if outage || draw < f.unavailable_rate {
            Some(503)
        } else if draw < f.unavailable_rate + f.rate_limit_rate {
            Some(429)
        } else {
            None
        };
        (ok, f.latency_ms, fault)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if !ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        );
    }
    match fault {
        Some(503) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "try again later",
        ),
        Some(_) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down");
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        }
        None => next.run(req).await,
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string()
}

fn valid_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A deterministic routing for an address, in the shape couriers print.
fn routing(r: &Value) -> Value {
    let strip = |s: String, suffixes: &[&str]| {
        suffixes
            .iter()
            .find_map(|x| {
                s.strip_suffix(x)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
            })
            .unwrap_or(s)
    };
    let city = strip(text(r, "city"), &["市", "地区", "自治州", "盟"]);
    let district = strip(text(r, "district"), &["区", "县", "市"]);
    let h = |s: &str| {
        s.bytes().fold(2166136261u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(16777619)
        })
    };
    let (hc, hd) = (h(&city), h(&format!("{city}/{district}")));
    json!({
        "sort_code": format!("{:03}-{}{:02} {:02}", 100 + hc % 900, (b'A' + (hd % 26) as u8) as char, hd / 26 % 100, hd / 2600 % 100),
        "short_address": if district.is_empty() { city.clone() } else { format!("{city} {district}") },
        "package_center": format!("{city}转运中心"),
    })
}

async fn take(State(sim): State<WaybillSim>, Json(body): Json<Value>) -> Response {
    let courier = text(&body, "courier");
    let parcels = body
        .get("parcels")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let sender = body.get("sender").cloned().unwrap_or(Value::Null);
    if courier.is_empty() || !(1..=10).contains(&parcels.len()) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "courier and 1..10 parcels are required",
        );
    }
    if ["name", "phone", "address"]
        .iter()
        .any(|k| text(&sender, k).is_empty())
    {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "sender.name, sender.phone and sender.address are required",
        );
    }
    let lost;
    let answer = {
        let mut st = sim.lock();
        let lost_rate = st.faults.lost_answer_rate;
        lost = lost_rate > 0.0 && st.rng.random_range(0.0..1.0) < lost_rate;
        let new = parcels
            .iter()
            .filter(|p| !st.by_request.contains_key(&text(p, "request_id")))
            .count() as u64;
        let default_balance = st.default_balance;
        let balance = *st
            .balances
            .entry(courier.clone())
            .or_insert(default_balance);
        if new > balance {
            return error(
                StatusCode::CONFLICT,
                "quota_exhausted",
                &format!("the branch has {balance} numbers left for {courier}"),
            );
        }
        let slots = st.serials.len() as u64;
        let mut results = Vec::new();
        for p in &parcels {
            let request_id = text(p, "request_id");
            let r = p.get("recipient").cloned().unwrap_or(Value::Null);
            let refuse = |code: &str, message: &str| json!({"request_id": request_id, "error": {"code": code, "message": message}});
            if !valid_request_id(&request_id) {
                results.push(refuse(
                    "bad_request",
                    "request_id must be 1..64 of [A-Za-z0-9_-]",
                ));
                continue;
            }
            if let Some(number) = st.by_request.get(&request_id).cloned() {
                results.push(
                    json!({"request_id": request_id, "waybill_no": number, "routing": routing(&r)}),
                );
                continue;
            }
            if ["name", "phone", "province", "city", "address"]
                .iter()
                .any(|k| text(&r, k).is_empty())
            {
                results.push(refuse(
                    "bad_address",
                    "recipient name, phone, province, city and address are required",
                ));
                continue;
            }
            let places = st.unreachable.get(&courier).cloned().unwrap_or_default();
            if let Some(place) = places.iter().find(|pl| {
                ["province", "city", "district"]
                    .iter()
                    .any(|k| !pl.is_empty() && text(&r, k) == **pl)
            }) {
                results.push(refuse(
                    "unreachable",
                    &format!("{courier} does not deliver to {place} (超区)"),
                ));
                continue;
            }
            let (serial, slot) = {
                let e = st.serials.entry(courier.clone()).or_insert((0, slots + 1));
                e.0 += 1;
                *e
            };
            let number = format!("73{}{:010}", slot % 10, serial);
            *st.balances.get_mut(&courier).expect("set above") -= 1;
            st.by_request.insert(request_id.clone(), number.clone());
            let order_ids = p
                .get("order_ids")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            st.numbers.insert(
                number.clone(),
                Issued {
                    courier: courier.clone(),
                    request_id: request_id.clone(),
                    order_ids,
                    state: "issued",
                },
            );
            results.push(
                json!({"request_id": request_id, "waybill_no": number, "routing": routing(&r)}),
            );
        }
        st.take_calls += 1;
        st.parcels_answered += parcels.len() as u64;
        json!({"waybills": results})
    };
    if lost {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the answer was lost",
        );
    }
    Json(answer).into_response()
}

async fn cancel(
    State(sim): State<WaybillSim>,
    Path(number): Path<String>,
    Json(_body): Json<Value>,
) -> Response {
    let mut st = sim.lock();
    let Some(issued) = st.numbers.get_mut(&number) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "this service never issued that number",
        );
    };
    match issued.state {
        "used" => error(
            StatusCode::CONFLICT,
            "already_used",
            "the courier has already scanned this parcel",
        ),
        "cancelled" => Json(json!({"waybill_no": number, "state": "cancelled"})).into_response(),
        _ => {
            issued.state = "cancelled";
            let courier = issued.courier.clone();
            *st.balances.entry(courier).or_default() += 1;
            Json(json!({"waybill_no": number, "state": "cancelled"})).into_response()
        }
    }
}

#[derive(Deserialize)]
struct BalanceQuery {
    courier: String,
}

async fn balance(State(sim): State<WaybillSim>, Query(q): Query<BalanceQuery>) -> Response {
    let mut st = sim.lock();
    let default_balance = st.default_balance;
    let available = *st
        .balances
        .entry(q.courier.clone())
        .or_insert(default_balance);
    Json(json!({"courier": q.courier, "available": available})).into_response()
}

async fn admin_state(State(sim): State<WaybillSim>) -> Response {
    Json(sim.state()).into_response()
}

async fn admin_faults(State(sim): State<WaybillSim>, Json(faults): Json<Faults>) -> Response {
    let mut st = sim.lock();
    st.rng = StdRng::seed_from_u64(faults.seed);
    st.faults = faults;
    st.faults_set = Instant::now();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct SetBalance {
    courier: String,
    available: u64,
}

async fn admin_balance(State(sim): State<WaybillSim>, Json(b): Json<SetBalance>) -> Response {
    sim.lock().balances.insert(b.courier, b.available);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct SetUnreachable {
    courier: String,
    places: Vec<String>,
}

async fn admin_unreachable(
    State(sim): State<WaybillSim>,
    Json(u): Json<SetUnreachable>,
) -> Response {
    sim.set_unreachable(&u.courier, u.places);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct MarkUsed {
    number: String,
}

async fn admin_used(State(sim): State<WaybillSim>, Json(m): Json<MarkUsed>) -> Response {
    match sim.lock().numbers.get_mut(&m.number) {
        Some(n) => {
            n.state = "used";
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "not_found", "no such number"),
    }
}
