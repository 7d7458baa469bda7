//! The Shop API v1 client: the only code that sends requests to a shop.
//!
//! Every request carries the bearer token and is retried, with exponential
//! backoff and jitter, on timeouts, connection errors, 429 (honouring
//! `Retry-After`) and 5xx; never on other 4xx. All requests of one operation
//! share a deadline, so a dead shop ends in an error that says what to check
//! rather than a hang. Orders come back as raw JSON: validating them is the
//! caller's business (`order::validate`), because one bad order must never fail
//! the page that carries it.

use crate::config::{Config, Secret};
use crate::order::Flag;
use rand::RngExt as _;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use thiserror::Error;
use tokio::time::Instant;

#[derive(Debug, Error)]
pub enum ShopError {
    #[error(
        "the shop at {url} refused the token (401 unauthorized): set STATION_SHOP_TOKEN to this shop's API token"
    )]
    Unauthorized { url: String },
    #[error("the shop refused {what}: HTTP {status} {code}: {message}{}", refused_hint(what, *status, code))]
    Refused {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    /// A 409: `version_conflict` (with the shop's current `order`) or
    /// `not_shippable`. Kept apart from [`ShopError::Refused`] because a conflict
    /// is resolved by re-reading the order, not reported as is.
    #[error("the shop refused {what}: HTTP 409 {code}: {message}")]
    Conflict {
        what: String,
        code: String,
        message: String,
        /// The order as the shop holds it now, when the answer carried it.
        order: Option<Box<Value>>,
    },
    #[error(
        "gave up on {what} after {elapsed_secs} s of trying (last problem: {last}). Check that the shop at {url} is up and reachable and that STATION_SHOP_URL / shop.url is right; for a slow shop raise shop.total_timeout_secs"
    )]
    GaveUp {
        what: String,
        url: String,
        elapsed_secs: u64,
        last: String,
    },
    #[error(
        "the shop sent a malformed list page {page}: {message}. Nothing after page {page} was read; run pull again, and report it to the platform if it repeats"
    )]
    BadPage { page: u32, message: String },
    #[error(
        "the shop's paging is broken: page {page} returned cursor {cursor:?}, which an earlier page already returned, so the pull would never end. Pages read so far were stored; report it to the platform"
    )]
    RepeatedCursor { page: u32, cursor: String },
    #[error(
        "the answer to {what} is not JSON ({message}): is {url} really the Shop API? Check STATION_SHOP_URL / shop.url"
    )]
    NotJson {
        what: String,
        url: String,
        message: String,
    },
    #[error("invalid shop URL {url:?}: {message}")]
    BadUrl { url: String, message: String },
    #[error(
        "no shop token: set STATION_SHOP_TOKEN to the shop's API token (it is read from the environment only)"
    )]
    NoToken,
}

/// When any client of this process last had a successful answer from the
/// shop (Unix millis; 0: never). `serve`'s `/healthz` shows it.
static LAST_ANSWER: AtomicI64 = AtomicI64::new(0);

/// When this process last heard a successful answer from the shop.
pub fn last_answer() -> Option<chrono::DateTime<chrono::Utc>> {
    match LAST_ANSWER.load(Ordering::Relaxed) {
        0 => None,
        ms => chrono::DateTime::from_timestamp_millis(ms),
    }
}

/// What a client built from the configuration is for: each use has its own patience.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Pulls and write-backs: `shop.request_timeout_secs` a request,
    /// `shop.total_timeout_secs` an operation with its retries.
    Work,
    /// The bench's and the handover's re-read before a parcel leaves:
    /// `bench.shop_check_timeout_ms` in all, so an operator never waits on the shop.
    Check,
    /// `station doctor`'s one request: 5 s a request, 8 s in all.
    Probe,
}

/// What to do about a refusal that is the setup's fault, not the order's.
fn refused_hint(what: &str, status: u16, code: &str) -> &'static str {
    match status {
        403 => ". The token is not allowed to do this: check its permissions on the platform",
        404 if code != "not_found" || what.starts_with("list page") => {
            ". That is not the Shop API's answer: check STATION_SHOP_URL / shop.url"
        }
        _ => "",
    }
}

/// How hard to try.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub request_timeout: Duration,
    pub total: Duration,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            request_timeout: Duration::from_secs(10),
            total: Duration::from_secs(120),
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(8),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub status: Option<String>,
    pub flag: Option<String>,
    pub page_size: u32,
}

/// One list page as received.
#[derive(Debug)]
pub struct Page {
    /// 1-based.
    pub number: u32,
    pub orders: Vec<Value>,
}

/// Every HTTP client of the station (the shop, CUPS's IPP, the tools) is built
/// from here: TLS through rustls with the `ring` provider (see [`install_crypto`]).
pub fn http() -> reqwest::ClientBuilder {
    install_crypto();
    reqwest::Client::builder()
}

/// Install rustls's `ring` provider as the process's default, once (a provider
/// some other code installed first is kept). Every TLS client and server of
/// the station calls this first.
pub fn install_crypto() {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[derive(Clone)]
pub struct ShopClient {
    http: reqwest::Client,
    base: String,
    token: Secret,
    policy: RetryPolicy,
    /// Shared by every clone: a 429's `Retry-After` pauses all requests in
    /// flight, not only the one that met it; and an optional rate.
    pace: Arc<Pace>,
}

/// When the next request may go: not before a 429's `Retry-After` has passed,
/// and (with a rate) not before its turn.
#[derive(Default)]
struct Pace {
    /// Requests a second; 0: no limit.
    per_sec: u32,
    state: std::sync::Mutex<PaceState>,
}

#[derive(Default)]
struct PaceState {
    paused_until: Option<Instant>,
    next_turn: Option<Instant>,
}

impl Pace {
    fn with_rate(per_sec: u32) -> Pace {
        Pace {
            per_sec,
            ..Pace::default()
        }
    }

    /// Wait for this request's turn (at most until `deadline`).
    async fn turn(&self, deadline: Instant) {
        let at = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let mut at = st.paused_until.map_or(now, |p| p.max(now));
            if self.per_sec > 0 {
                at = st.next_turn.map_or(at, |t| t.max(at));
                st.next_turn = Some(at + Duration::from_secs(1) / self.per_sec);
            }
            at
        };
        if at > Instant::now() {
            tokio::time::sleep_until(at.min(deadline)).await;
        }
    }

    fn pause_until(&self, until: Instant) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.paused_until = Some(st.paused_until.map_or(until, |p| p.max(until)));
    }
}

impl ShopClient {
    /// The client for the configured shop (`shop.url`, the token from
    /// `STATION_SHOP_TOKEN`), with the timeouts of its [`Purpose`]. The one
    /// way the station's commands and `serve` build a client.
    pub fn from_config(config: &Config, purpose: Purpose) -> Result<ShopClient, ShopError> {
        if config.shop.token.is_empty() {
            return Err(ShopError::NoToken);
        }
        let policy = match purpose {
            Purpose::Work => RetryPolicy {
                request_timeout: Duration::from_secs(config.shop.request_timeout_secs),
                total: Duration::from_secs(config.shop.total_timeout_secs),
                ..RetryPolicy::default()
            },
            Purpose::Check => {
                let timeout = Duration::from_millis(config.bench.shop_check_timeout_ms.max(100));
                RetryPolicy {
                    request_timeout: timeout,
                    total: timeout,
                    first_delay: Duration::from_millis(50),
                    max_delay: Duration::from_millis(200),
                }
            }
            Purpose::Probe => RetryPolicy {
                request_timeout: Duration::from_secs(5),
                total: Duration::from_secs(8),
                ..RetryPolicy::default()
            },
        };
        ShopClient::new(&config.shop.url, config.shop.token.clone(), policy)
    }

    pub fn new(url: &str, token: Secret, policy: RetryPolicy) -> Result<ShopClient, ShopError> {
        let base = url.trim_end_matches('/').to_string();
        reqwest::Url::parse(&base).map_err(|e| ShopError::BadUrl {
            url: url.into(),
            message: e.to_string(),
        })?;
        let http = http()
            .timeout(policy.request_timeout)
            .connect_timeout(policy.request_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("station/", env!("CARGO_PKG_VERSION")))
            // A redirect would turn a POST or PUT into a GET (301/302/303) and
            // could carry the request elsewhere: the shop URL must be the final one.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ShopError::BadUrl {
                url: url.into(),
                message: e.to_string(),
            })?;
        Ok(ShopClient {
            http,
            base,
            token,
            policy,
            pace: Arc::default(),
        })
    }

    /// This client with at most `per_sec` requests a second across all its
    /// clones (0: no limit); a 429 pauses them all either way.
    pub fn paced(&self, per_sec: u32) -> ShopClient {
        ShopClient {
            pace: Arc::new(Pace::with_rate(per_sec)),
            ..self.clone()
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// A deadline `policy.total` from now, for one operation.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.policy.total
    }

    /// Walk the order list page by page.
    pub fn pages(&self, filter: ListFilter, deadline: Instant) -> Pager<'_> {
        Pager {
            client: self,
            filter,
            cursor: None,
            seen: HashSet::new(),
            page: 0,
            done: false,
            deadline,
        }
    }

    /// `GET /v1/orders/{id}`: `None` when the shop answers 404.
    pub async fn get_order(&self, id: &str, deadline: Instant) -> Result<Option<Value>, ShopError> {
        let url = format!("{}/v1/orders/{}", self.base, encode_segment(id));
        let what = format!("reading order {id}");
        match self.send(&what, deadline, || self.http.get(&url)).await {
            Ok(body) => Ok(Some(body)),
            // Only the Shop API's own answer means "no such order"; a 404 page
            // from a proxy or a wrong base path must not make orders vanish.
            Err(ShopError::Refused {
                status: 404,
                ref code,
                ..
            }) if code == "not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/orders/{id}/shipments`: the order is handed to the courier.
    /// Idempotent by `tracking_no` on the shop, so a resend after a lost answer
    /// is harmless. Returns the order as the shop holds it afterwards.
    pub async fn post_shipment(
        &self,
        id: &str,
        courier: &str,
        tracking_no: &str,
        handed_over_at: &str,
        weight_g: Option<u64>,
        deadline: Instant,
    ) -> Result<Value, ShopError> {
        let url = format!("{}/v1/orders/{}/shipments", self.base, encode_segment(id));
        let mut body = serde_json::json!({
            "courier": courier,
            "tracking_no": tracking_no,
            "handed_over_at": handed_over_at,
        });
        // Shop API v1.1: the weight as weighed at the bench, when it was.
        if let Some(grams) = weight_g {
            body["weight_g"] = grams.into();
        }
        let what = format!("the shipment of order {id} ({courier} {tracking_no})");
        self.send(&what, deadline, || self.http.post(&url).json(&body))
            .await
    }

    /// `PUT /v1/orders/{id}/flag` with an optional memo and `if_version`.
    /// Returns the order as the shop holds it afterwards; a stale `if_version`
    /// is a [`ShopError::Conflict`] carrying the current order.
    pub async fn put_flag(
        &self,
        id: &str,
        flag: Flag,
        memo: Option<&Value>,
        if_version: Option<u64>,
        deadline: Instant,
    ) -> Result<Value, ShopError> {
        let url = format!("{}/v1/orders/{}/flag", self.base, encode_segment(id));
        let body = serde_json::json!({"flag": flag, "memo": memo, "if_version": if_version});
        let what = format!("the {flag} flag of order {id}");
        self.send(&what, deadline, || self.http.put(&url).json(&body))
            .await
    }

    /// Send a request built by `build` until it succeeds, fails for good, or
    /// the deadline passes. Returns the JSON body of a 2xx answer.
    async fn send(
        &self,
        what: &str,
        deadline: Instant,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, ShopError> {
        let mut attempt: u32 = 0;
        loop {
            self.pace.turn(deadline).await;
            // A request never outlives the operation's deadline.
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = self
                .policy
                .request_timeout
                .min(left)
                .max(Duration::from_millis(1));
            let outcome = build()
                .bearer_auth(self.token.expose())
                .timeout(timeout)
                .send()
                .await;
            let (problem, wait) = match outcome {
                Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                    Ok(body) => {
                        LAST_ANSWER.store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
                        // A complete body that is not JSON (a login page, a proxy's
                        // banner) is the wrong server, not a passing fault.
                        return serde_json::from_slice(&body).map_err(|e| ShopError::NotJson {
                            what: what.into(),
                            url: self.base.clone(),
                            message: e.to_string(),
                        });
                    }
                    // A body cut off mid-way is a transport problem: try again.
                    Err(e) => (format!("response body cut off: {}", without_url(&e)), None),
                },
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = retry_after(&resp);
                    let (code, message, order) = error_body(resp).await;
                    match status {
                        StatusCode::UNAUTHORIZED => {
                            return Err(ShopError::Unauthorized {
                                url: self.base.clone(),
                            });
                        }
                        StatusCode::TOO_MANY_REQUESTS => (format!("HTTP 429 {code}"), retry_after),
                        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY => {
                            (format!("HTTP {} {code}", status.as_u16()), None)
                        }
                        s if s.is_redirection() => {
                            return Err(ShopError::BadUrl {
                                url: self.base.clone(),
                                message: format!(
                                    "the shop answered {what} with a redirect (HTTP {}): set STATION_SHOP_URL / shop.url to the address it redirects to",
                                    s.as_u16()
                                ),
                            });
                        }
                        s if s.is_server_error() => (format!("HTTP {} {code}", s.as_u16()), None),
                        StatusCode::CONFLICT => {
                            return Err(ShopError::Conflict {
                                what: what.into(),
                                code,
                                message,
                                order: order.map(Box::new),
                            });
                        }
                        s => {
                            return Err(ShopError::Refused {
                                what: what.into(),
                                status: s.as_u16(),
                                code,
                                message,
                            });
                        }
                    }
                }
                Err(e) if e.is_builder() => {
                    return Err(ShopError::BadUrl {
                        url: self.base.clone(),
                        message: without_url(&e),
                    });
                }
                Err(e) if e.is_timeout() => ("timed out".to_string(), None),
                Err(e) => (format!("cannot connect: {}", without_url(&e)), None),
            };
            // Retry-After is a floor, never a reason to hammer: `Retry-After: 0`
            // still backs off.
            let backoff = self.backoff(attempt);
            if let Some(w) = wait {
                // The shop said how long: every request of this client waits.
                self.pace.pause_until(Instant::now() + w);
            }
            let wait = wait.map_or(backoff, |w| w.max(backoff));
            attempt += 1;
            if Instant::now() + wait >= deadline {
                return Err(ShopError::GaveUp {
                    what: what.into(),
                    url: self.base.clone(),
                    elapsed_secs: self
                        .policy
                        .total
                        .saturating_sub(deadline.saturating_duration_since(Instant::now()))
                        .as_secs(),
                    last: problem,
                });
            }
            tracing::warn!(
                "{what}: {problem}; retrying in {} ms (attempt {attempt})",
                wait.as_millis()
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Exponential backoff with "equal jitter": half the step is fixed, half
    /// random, so retries spread out but never collapse to zero.
    fn backoff(&self, attempt: u32) -> Duration {
        let step = self
            .policy
            .first_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.policy.max_delay);
        let half = step / 2;
        half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

/// Walks the list with cursors. Refuses a cursor it has already seen, which
/// would otherwise loop forever on a broken platform.
pub struct Pager<'a> {
    client: &'a ShopClient,
    filter: ListFilter,
    cursor: Option<String>,
    seen: HashSet<String>,
    page: u32,
    done: bool,
    deadline: Instant,
}

impl Pager<'_> {
    /// The next page, or `None` after the last one. An error is final: a page
    /// that failed is never taken for the end of the list.
    pub async fn next(&mut self) -> Result<Option<Page>, ShopError> {
        if self.done {
            return Ok(None);
        }
        self.page += 1;
        let page = self.page;
        let url = format!("{}/v1/orders", self.client.base);
        let mut query: Vec<(&str, String)> = vec![("page_size", self.filter.page_size.to_string())];
        if let Some(s) = &self.filter.status {
            query.push(("status", s.clone()));
        }
        if let Some(f) = &self.filter.flag {
            query.push(("flag", f.clone()));
        }
        if let Some(c) = &self.cursor {
            query.push(("cursor", c.clone()));
        }
        let what = format!("list page {page}");
        let http = &self.client.http;
        let body = self
            .client
            .send(&what, self.deadline, || http.get(&url).query(&query))
            .await?;
        let bad = |message: &str| ShopError::BadPage {
            page,
            message: message.into(),
        };
        let Value::Object(mut body) = body else {
            return Err(bad("the body is not a JSON object"));
        };
        let orders = match body.remove("orders") {
            Some(Value::Array(orders)) => orders,
            _ => return Err(bad("`orders` is missing or not an array")),
        };
        match body.remove("next_cursor") {
            None | Some(Value::Null) => self.done = true,
            Some(Value::String(c)) if c.is_empty() => self.done = true,
            Some(Value::String(c)) => {
                if !self.seen.insert(c.clone()) {
                    return Err(ShopError::RepeatedCursor { page, cursor: c });
                }
                self.cursor = Some(c);
            }
            Some(_) => return Err(bad("`next_cursor` is neither a string nor null")),
        }
        Ok(Some(Page {
            number: page,
            orders,
        }))
    }
}

/// A response's `Retry-After` (seconds or an HTTP-date), as a wait from now.
pub(crate) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    parse_retry_after(v, chrono::Utc::now())
}

/// `Retry-After` is delay-seconds or an HTTP-date (RFC 9110 §10.2.3); a date
/// in the past means no wait beyond the backoff. Anything else is ignored.
fn parse_retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // IMF-fixdate, RFC 850 and asctime: the three forms a recipient must accept.
    let at: chrono::DateTime<chrono::Utc> = httpdate::parse_http_date(v).ok()?.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// The error's code and message, and the `order` a version conflict carries.
async fn error_body(resp: reqwest::Response) -> (String, String, Option<Value>) {
    let mut body: Option<Value> = resp.json().await.ok();
    let field = |k: &str| {
        body.as_ref()
            .and_then(|b| b.get("error"))
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (code, message) = (field("code"), field("message"));
    let order = body
        .as_mut()
        .and_then(|b| b.get_mut("order"))
        .map(Value::take)
        .filter(Value::is_object);
    (code, message, order)
}

/// reqwest's top-level message repeats the URL, which the caller already
/// names; the causes below it say what actually went wrong.
fn without_url(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    if parts.is_empty() {
        "request failed".into()
    } else {
        parts.join(": ")
    }
}

/// Order ids are `[A-Za-z0-9_-]` by contract, but a bad one must not break the URL.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clients_speak_tls_through_the_ring_provider() {
        // Without a crypto provider installed, reqwest panics while building.
        let client = http().build().expect("a TLS-capable client");
        // A TLS handshake against a listener that answers plain text fails as
        // an error (the handshake ran), never a panic.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            if let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\nnot tls").await;
            }
        });
        let err = client
            .get(format!("https://{addr}/"))
            .send()
            .await
            .expect_err("plain text is no TLS server");
        assert!(err.is_connect(), "{err:?}");
    }

    #[test]
    fn refusals_that_are_the_setup_say_what_to_check() {
        let refused = |what: &str, status, code: &str| {
            ShopError::Refused {
                what: what.into(),
                status,
                code: code.into(),
                message: "m".into(),
            }
            .to_string()
        };
        assert!(refused("list page 1", 403, "forbidden").contains("permissions"));
        assert!(refused("list page 1", 404, "not_found").contains("STATION_SHOP_URL"));
        assert!(refused("reading order A", 404, "").contains("STATION_SHOP_URL"));
        // The Shop API's own "no such order" is about the order, not the setup.
        assert!(!refused("reading order A", 404, "not_found").contains("STATION_SHOP_URL"));
        assert!(refused("list page 1", 400, "bad_request").ends_with(": m"));
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-11T08:00:00Z")
            .unwrap()
            .to_utc();
        let p = |v: &str| parse_retry_after(v, now);
        assert_eq!(p("120"), Some(Duration::from_secs(120)));
        assert_eq!(p(" 0 "), Some(Duration::ZERO));
        // A date was ignored before, so a rate-limited shop was asked again
        // after ~100 ms instead of when it said.
        assert_eq!(
            p("Wed, 11 Nov 2026 08:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(p("Wed, 11 Nov 2026 07:59:00 GMT"), Some(Duration::ZERO));
        // The obsolete forms RFC 9110 §5.6.7 still requires: RFC 850 and asctime.
        assert_eq!(
            p("Wednesday, 11-Nov-26 08:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(p("Wed Nov 11 08:00:45 2026"), Some(Duration::from_secs(45)));
        assert_eq!(p("soon"), None);
        assert_eq!(p("-5"), None);
    }
}
