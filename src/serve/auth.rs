//! Sign-in at a bench: operators and their PINs (Argon2id hashes from
//! `[[operators]]`), and the sessions behind the bench cookie.
//!
//! Sessions live in memory: a restart signs every bench out, which costs a PIN
//! and loses nothing (what is open at a bench lives in SQLite). The cookie is
//! `HttpOnly` (no script reads it) and `SameSite=Strict` (no other site's page
//! sends it); its value is 256 random bits. Wrong PINs lock the name out for a
//! while, doubling, because a four-digit PIN is otherwise guessed in minutes.

use super::{ApiError, AppState, with_store};
use crate::config::{ConfigError, Operator};
use anyhow::Result;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::RngExt as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const COOKIE: &str = "station_session";

/// Wrong PINs allowed for a name before it is locked out.
const FREE_FAILURES: u32 = 5;
const FIRST_LOCKOUT: Duration = Duration::from_secs(60);
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// A PIN's Argon2id hash as a PHC string, for `pin_hash` in `[[operators]]`.
pub fn hash_pin(pin: &str) -> Result<String> {
    let n = pin.chars().count();
    if n < 4 || pin.trim() != pin {
        return Err(crate::error::UsageError(
            "a PIN needs at least 4 characters and no leading or trailing spaces".into(),
        )
        .into());
    }
    Argon2::default()
        .hash_password(pin.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the PIN: {e}"))
}

/// Whether `pin` matches the PHC string `hash`. Slow on purpose (Argon2).
pub fn verify_pin(pin: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(pin.as_bytes(), hash)
        .is_ok()
}

/// The operators from the config, checked once at start-up.
pub struct Operators {
    by_name: HashMap<String, String>,
}

impl Operators {
    pub fn from_config(list: &[Operator]) -> Result<Operators, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            origin: "settings".into(),
            message,
        };
        if list.is_empty() {
            return Err(invalid(
                "no [[operators]] configured, so nobody could sign in at a bench: add one per person to station.toml with a name and the pin_hash printed by `station operator hash-pin`".into(),
            ));
        }
        let mut by_name = HashMap::new();
        for (i, op) in list.iter().enumerate() {
            let name = op.name.trim();
            if name.is_empty() {
                return Err(invalid(format!("operators[{i}].name is empty")));
            }
            if PasswordHash::new(&op.pin_hash).is_err() {
                return Err(invalid(format!(
                    "operators[{i}] ({name}): pin_hash is not a hash from `station operator hash-pin` (it starts with $argon2id$)"
                )));
            }
            if by_name
                .insert(name.to_string(), op.pin_hash.clone())
                .is_some()
            {
                return Err(invalid(format!(
                    "operator {name:?} is listed twice in [[operators]]"
                )));
            }
        }
        Ok(Operators { by_name })
    }
}

/// A hash to verify against when the name is unknown, so an unknown name
/// takes as long to refuse as a wrong PIN.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_pin("not-a-pin").unwrap_or_default())
}

#[derive(Clone, Debug)]
struct Session {
    operator: String,
    bench: String,
    last_seen: Instant,
}

#[derive(Debug)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// Signed-in benches by cookie token, and wrong-PIN counts by name.
pub struct Sessions {
    idle: Duration,
    inner: Mutex<Inner>,
    /// What time it is: `Instant::now`, or a test's hand-moved clock.
    clock: Box<dyn Fn() -> Instant + Send + Sync>,
}

#[derive(Default)]
struct Inner {
    by_token: HashMap<String, Session>,
    failures: HashMap<String, Failures>,
}

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions::with_clock(idle, Instant::now)
    }

    fn with_clock(idle: Duration, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Sessions {
        Sessions {
            idle,
            inner: Mutex::new(Inner::default()),
            clock: Box::new(clock),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sign a browser in at `bench`. A bench is one browser's: while another
    /// live session holds it, the answer is `Err(who holds it)`, unless
    /// `take_over` ends that session (its next request must sign in again).
    /// `replacing`: this browser's own session, which it leaves by signing in
    /// again (it never holds the bench against itself), only once the new one
    /// starts. `Ok` gives the new token and whom it took the bench from.
    fn start(
        &self,
        operator: &str,
        bench: &str,
        take_over: bool,
        replacing: Option<&str>,
    ) -> Result<(String, Option<String>), String> {
        let now = (self.clock)();
        let mut inner = self.lock();
        let idle = self.idle;
        inner
            .by_token
            .retain(|_, s| now.duration_since(s.last_seen) < idle);
        let mut taken_from = None;
        if let Some((_, holder)) = inner
            .by_token
            .iter()
            .find(|(t, s)| s.bench == bench && Some(t.as_str()) != replacing)
        {
            if !take_over {
                return Err(holder.operator.clone());
            }
            taken_from = Some(holder.operator.clone());
            inner.by_token.retain(|_, s| s.bench != bench);
        }
        if let Some(old) = replacing {
            inner.by_token.remove(old);
        }
        let bytes: [u8; 32] = rand::rng().random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        inner.by_token.insert(
            token.clone(),
            Session {
                operator: operator.into(),
                bench: bench.into(),
                last_seen: now,
            },
        );
        Ok((token, taken_from))
    }

    /// The session for a token, refreshed; `None` when unknown or idle too long.
    fn touch(&self, token: &str) -> Option<Session> {
        let now = (self.clock)();
        let mut inner = self.lock();
        let s = inner.by_token.get_mut(token)?;
        if now.duration_since(s.last_seen) >= self.idle {
            inner.by_token.remove(token);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    fn end(&self, token: &str) -> Option<Session> {
        self.lock().by_token.remove(token)
    }

    /// How long `name` must still wait after too many wrong PINs.
    fn locked_for(&self, name: &str) -> Option<Duration> {
        let inner = self.lock();
        let until = inner.failures.get(name)?.locked_until?;
        until
            .checked_duration_since((self.clock)())
            .filter(|left| !left.is_zero())
    }

    fn failed(&self, name: &str) {
        let mut inner = self.lock();
        let f = inner.failures.entry(name.to_string()).or_insert(Failures {
            count: 0,
            locked_until: None,
        });
        f.count += 1;
        if f.count >= FREE_FAILURES {
            let doublings = (f.count - FREE_FAILURES).min(8);
            let wait = (FIRST_LOCKOUT * 2u32.pow(doublings)).min(MAX_LOCKOUT);
            f.locked_until = Some((self.clock)() + wait);
        }
    }

    fn succeeded(&self, name: &str) {
        self.lock().failures.remove(name);
    }
}

fn token_from(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// A request from a signed-in bench: who, and where.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub operator: String,
    pub bench: String,
}

impl FromRequestParts<Arc<AppState>> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<SignedIn, ApiError> {
        let session = token_from(&parts.headers).and_then(|t| state.sessions.touch(&t));
        match session {
            Some(s) => Ok(SignedIn {
                operator: s.operator,
                bench: s.bench,
            }),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "not signed in (or the sign-in ran out): sign in with your name and PIN",
                "未登录或登录已过期：请输入姓名和 PIN 登录",
            )),
        }
    }
}

#[derive(Deserialize)]
pub struct Login {
    name: String,
    pin: String,
    bench: String,
    /// End the session of another browser signed in at this bench.
    #[serde(default)]
    take_over: bool,
}

#[derive(Serialize)]
pub struct Me {
    operator: String,
    bench: String,
    couriers: Vec<CourierName>,
    require_item_scans: bool,
    /// This bench weighs with the scale of `[bench.scale]` (the page shows it live).
    scale: bool,
}

#[derive(Serialize)]
struct CourierName {
    code: String,
    name: String,
}

fn me_for(state: &AppState, operator: String, bench: String) -> Me {
    Me {
        operator,
        couriers: state
            .config
            .couriers
            .iter()
            .map(|c| CourierName {
                code: c.code.clone(),
                name: c.name.clone(),
            })
            .collect(),
        require_item_scans: state.config.bench.require_item_scans,
        scale: state.scale.as_ref().is_some_and(|s| s.serves(&bench)),
        bench,
    }
}

/// A bench name: what the operator typed, trimmed; printable and short, since
/// it goes into every event.
fn check_bench(bench: &str) -> Result<&str, ApiError> {
    let b = bench.trim();
    if b.is_empty() || b.chars().count() > 32 || b.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "give the bench's name (1 to 32 characters), e.g. 1号台",
            "请填写工作台名称（1–32 个字），例如 1号台",
        ));
    }
    Ok(b)
}

static PIN_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

pub async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(req): Json<Login>,
) -> Result<Response, ApiError> {
    let name = req.name.trim().to_string();
    let bench = check_bench(&req.bench)?.to_string();
    let locked = |name: &str| {
        state.sessions.locked_for(name).map(|wait| {
            let secs = wait.as_secs().max(1);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many wrong PINs for {name}: wait {secs} s, or ask the manager"),
                format!("{name} 的 PIN 错误次数过多：请等 {secs} 秒，或找主管"),
            )
        })
    };
    if let Some(e) = locked(&name) {
        return Err(e);
    }
    // At most two PIN checks run at once (each Argon2id check takes ~19 MiB and
    // a few ms of CPU), and the lockout is checked again once it is this
    // attempt's turn: parallel guesses queue behind each other instead of all
    // slipping past the lockout before the first failure is recorded.
    let _permit = PIN_CHECKS
        .acquire()
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down", "正在关闭"))?;
    if let Some(e) = locked(&name) {
        return Err(e);
    }
    let hash = state
        .operators
        .by_name
        .get(&name)
        .cloned()
        .unwrap_or_else(|| dummy_hash().to_string());
    let known = state.operators.by_name.contains_key(&name);
    let pin = req.pin;
    let matches = tokio::task::spawn_blocking(move || verify_pin(&pin, &hash))
        .await
        .unwrap_or(false);
    if !(known && matches) {
        state.sessions.failed(&name);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong name or PIN",
            "姓名或 PIN 不正确",
        ));
    }
    state.sessions.succeeded(&name);
    // This browser signing in again leaves its old session, once the new
    // one is granted (a refused sign-in keeps it signed in where it was).
    let old = token_from(&headers);
    let (token, taken_from) = state
        .sessions
        .start(&name, &bench, req.take_over, old.as_deref())
        .map_err(|holder| {
            ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "bench {bench} is in use by {holder} in another browser: sign out there, choose another bench name, or take the bench over"
                ),
                format!("打包台 {bench} 正被 {holder} 在另一个浏览器使用：请在那边退出、换一个台号，或接管此台"),
            )
        })?;
    if let Some(holder) = taken_from {
        let (op, b) = (name.clone(), bench.clone());
        with_store(&state, move |store, _| {
            Ok(store.record(
                &op,
                None,
                "bench.taken_over",
                &format!("bench {b} from {holder}"),
            )?)
        })
        .await?;
    }
    {
        let (op, b) = (name.clone(), bench.clone());
        with_store(&state, move |store, _| {
            Ok(store.record(&op, None, "bench.sign_in", &format!("bench {b}"))?)
        })
        .await?;
    }
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    let mut resp = Json(me_for(&state, name, bench)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a hex token is a valid header"),
    );
    Ok(resp)
}

pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(s) = token_from(&headers).and_then(|t| state.sessions.end(&t)) {
        with_store(&state, move |store, _| {
            Ok(store.record(
                &s.operator,
                None,
                "bench.sign_out",
                &format!("bench {}", s.bench),
            )?)
        })
        .await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("station_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

pub async fn me(State(state): State<Arc<AppState>>, who: SignedIn) -> Json<Me> {
    Json(me_for(&state, who.operator, who.bench))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_verifies_against_its_hash_only() {
        let h = hash_pin("2468").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_pin("2468", &h));
        assert!(!verify_pin("2469", &h));
        assert!(!verify_pin("2468", "not a hash"));
        assert!(hash_pin("12").is_err());
        assert!(hash_pin(" 1234").is_err());
    }

    #[test]
    fn operators_are_checked_at_start() {
        let h = hash_pin("2468").unwrap();
        let op = |name: &str, pin_hash: &str| Operator {
            name: name.into(),
            pin_hash: pin_hash.into(),
        };
        assert!(Operators::from_config(&[]).is_err());
        assert!(Operators::from_config(&[op("小王", "2468")]).is_err());
        assert!(Operators::from_config(&[op("小王", &h), op("小王", &h)]).is_err());
        assert!(Operators::from_config(&[op("小王", &h), op("阿珍", &h)]).is_ok());
    }

    /// Sessions on a clock the test moves by hand: no sleeping, no luck.
    fn on_a_test_clock(idle: Duration) -> (Sessions, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let clock = now.clone();
        (
            Sessions::with_clock(idle, move || *clock.lock().unwrap()),
            now,
        )
    }

    #[test]
    fn wrong_pins_lock_the_name_out_until_the_lockout_expires() {
        let (s, now) = on_a_test_clock(Duration::from_secs(600));
        for _ in 0..FREE_FAILURES - 1 {
            s.failed("小王");
        }
        assert!(s.locked_for("小王").is_none());
        s.failed("小王");
        assert_eq!(s.locked_for("小王"), Some(FIRST_LOCKOUT));
        assert!(s.locked_for("阿珍").is_none());
        // The lockout runs out on its own ...
        *now.lock().unwrap() += FIRST_LOCKOUT - Duration::from_secs(1);
        assert_eq!(s.locked_for("小王"), Some(Duration::from_secs(1)));
        *now.lock().unwrap() += Duration::from_secs(1);
        assert!(s.locked_for("小王").is_none(), "the lockout expired");
        // ... and the next wrong PIN locks for twice as long.
        s.failed("小王");
        assert_eq!(s.locked_for("小王"), Some(FIRST_LOCKOUT * 2));
        s.succeeded("小王");
        assert!(s.locked_for("小王").is_none());
    }

    #[test]
    fn one_browser_per_bench_and_idle_sessions_end() {
        let idle = Duration::from_secs(600);
        let (s, now) = on_a_test_clock(idle);
        let (t, from) = s.start("小王", "1号台", false, None).unwrap();
        assert_eq!((t.len(), from), (64, None));
        // One browser per bench, unless it takes the bench over.
        assert_eq!(
            s.start("阿珍", "1号台", false, None),
            Err("小王".to_string())
        );
        assert_eq!(
            s.touch(&t).unwrap().bench,
            "1号台",
            "a refusal keeps the holder"
        );
        // The same browser signing in again is not in its own way.
        let (t2, from) = s.start("小王", "1号台", false, Some(&t)).unwrap();
        assert_eq!(from, None);
        assert!(s.touch(&t).is_none(), "the browser's old session ended");
        let (t3, from) = s.start("阿珍", "1号台", true, None).unwrap();
        assert_eq!(from.as_deref(), Some("小王"));
        assert!(s.touch(&t2).is_none(), "taken over");
        // Idle just under the limit: alive (and touched again); at it: ended.
        *now.lock().unwrap() += idle - Duration::from_millis(1);
        assert!(s.touch(&t3).is_some());
        *now.lock().unwrap() += idle;
        assert!(s.touch(&t3).is_none(), "an idle session ends");
    }

    #[test]
    fn the_token_is_read_from_any_cookie_header() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("x=y; station_session=abc"),
        );
        assert_eq!(token_from(&h).as_deref(), Some("abc"));
    }
}
