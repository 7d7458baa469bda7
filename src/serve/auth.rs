//! Sign-in at a bench: operators and their PINs (Argon2id hashes from
//! `[[operators]]`), and the sessions behind the bench cookie.
//!
//! Sessions live in the database (only each token's SHA-256), so a restarted
//! `serve`, or another `serve` on the same database, knows a bench's sign-in.
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other
//! site's page sends it) and, over TLS, `Secure`; its value is 256 random bits.
//! Wrong PINs lock the name out for a while, doubling, because a four-digit PIN
//! is otherwise guessed in minutes; the count is shared by every `serve`.

use super::{ApiError, AppState, with_store};
use crate::config::{ConfigError, Operator};
use crate::store::{BenchHolder, NewSignin, SessionRow, Store};
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
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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

/// Bench sessions and wrong-PIN lockouts, kept in the database (every `serve`
/// on it shares them) under this policy: sessions end after `idle` without a
/// request; five wrong PINs lock a name out for a minute, doubling up to 15.
pub struct Sessions {
    idle: Duration,
    /// What time it is, in Unix milliseconds: the wall clock, or a test's
    /// hand-moved one.
    clock: Box<dyn Fn() -> i64 + Send + Sync>,
}

/// The SHA-256 of a cookie token, as stored: the token itself never is.
fn token_sha256(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions::with_clock(idle, || chrono::Utc::now().timestamp_millis())
    }

    fn with_clock(idle: Duration, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Sessions {
        Sessions {
            idle,
            clock: Box::new(clock),
        }
    }

    fn idle_ms(&self) -> i64 {
        millis(self.idle).max(1)
    }

    /// How stale a session's last-seen time may get before a request writes
    /// it again: a tenth of the idle time, at most a minute.
    fn refresh_ms(&self) -> i64 {
        (self.idle_ms() / 10).clamp(1, 60_000)
    }

    /// Sign a browser in at `bench`. A bench is one browser's: while another
    /// live session holds it, the answer is `Err(who holds it)`, unless
    /// `take_over` ends that session (its next request must sign in again).
    /// `replacing`: this browser's own session, which it leaves by signing in
    /// again (it never holds the bench against itself), only once the new one
    /// starts. `Ok` gives the new token and whom it took the bench from.
    fn start(
        &self,
        store: &mut Store,
        operator: &str,
        bench: &str,
        take_over: bool,
        replacing: Option<&str>,
    ) -> Result<Result<(String, Option<String>), String>> {
        let bytes: [u8; 32] = rand::rng().random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let replacing = replacing.map(token_sha256);
        let started = store.session_start(&NewSignin {
            token_sha256: &token_sha256(&token),
            operator,
            bench,
            now_ms: (self.clock)(),
            idle_ms: self.idle_ms(),
            take_over,
            replacing: replacing.as_deref(),
        })?;
        Ok(started
            .map(|taken_from| (token, taken_from))
            .map_err(|BenchHolder(holder)| holder))
    }

    /// The session for a token, refreshed; `None` when unknown or idle too long.
    fn touch(&self, store: &mut Store, token: &str) -> Result<Option<SessionRow>> {
        Ok(store.session_touch(
            &token_sha256(token),
            (self.clock)(),
            self.idle_ms(),
            self.refresh_ms(),
        )?)
    }

    fn end(&self, store: &mut Store, token: &str) -> Result<Option<SessionRow>> {
        Ok(store.session_end(&token_sha256(token))?)
    }

    /// How long `name` must still wait after too many wrong PINs.
    fn locked_for(&self, store: &Store, name: &str) -> Result<Option<Duration>> {
        let left = store
            .pin_locked_until(name)?
            .map(|until| until - (self.clock)())
            .filter(|left| *left > 0);
        Ok(left.map(|ms| Duration::from_millis(ms as u64)))
    }

    fn failed(&self, store: &mut Store, name: &str) -> Result<()> {
        let now = (self.clock)();
        store.pin_failed(name, |count| {
            (count >= FREE_FAILURES).then(|| {
                let doublings = (count - FREE_FAILURES).min(8);
                now + millis((FIRST_LOCKOUT * 2u32.pow(doublings)).min(MAX_LOCKOUT))
            })
        })?;
        Ok(())
    }

    fn succeeded(&self, store: &mut Store, name: &str) -> Result<()> {
        Ok(store.pin_succeeded(name)?)
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
        let session = match token_from(&parts.headers) {
            Some(token) => {
                with_store(state, move |store, state| {
                    state.sessions.touch(store, &token)
                })
                .await?
            }
            None => None,
        };
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
    let locked = async |name: &str| -> Result<(), ApiError> {
        let who = name.to_string();
        let wait = with_store(&state, move |store, state| {
            state.sessions.locked_for(store, &who)
        })
        .await?;
        match wait {
            None => Ok(()),
            Some(wait) => {
                // Whole seconds, rounded up: never "wait 0 s" while locked.
                let secs = wait.as_millis().div_ceil(1000);
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many wrong PINs for {name}: wait {secs} s, or ask the manager"),
                    format!("{name} 的 PIN 错误次数过多：请等 {secs} 秒，或找主管"),
                ))
            }
        }
    };
    locked(&name).await?;
    // At most two PIN checks run at once (each Argon2id check takes ~19 MiB and
    // a few ms of CPU), and the lockout is checked again once it is this
    // attempt's turn: parallel guesses queue behind each other instead of all
    // slipping past the lockout before the first failure is recorded.
    let _permit = PIN_CHECKS
        .acquire()
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down", "正在关闭"))?;
    locked(&name).await?;
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
        let who = name.clone();
        with_store(&state, move |store, state| {
            state.sessions.failed(store, &who)
        })
        .await?;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong name or PIN",
            "姓名或 PIN 不正确",
        ));
    }
    // This browser signing in again leaves its old session, once the new
    // one is granted (a refused sign-in keeps it signed in where it was).
    let old = token_from(&headers);
    let (op, b, take_over) = (name.clone(), bench.clone(), req.take_over);
    let started = with_store(&state, move |store, state| {
        state.sessions.succeeded(store, &op)?;
        state
            .sessions
            .start(store, &op, &b, take_over, old.as_deref())
    })
    .await?;
    let (token, taken_from) = started.map_err(|holder| {
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
    let cookie = format!("{COOKIE}={token}; {}", cookie_attributes(&state));
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
    if let Some(token) = token_from(&headers) {
        with_store(&state, move |store, state| {
            let Some(s) = state.sessions.end(store, &token)? else {
                return Ok(());
            };
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
    let cleared = format!("{COOKIE}=; {}; Max-Age=0", cookie_attributes(&state));
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cleared).expect("a valid header"),
    );
    Ok(resp)
}

/// The cookie's attributes: no script reads it, no other site's page sends
/// it, and over TLS no plain-HTTP request carries it.
fn cookie_attributes(state: &AppState) -> &'static str {
    if state.tls {
        "Path=/; HttpOnly; SameSite=Strict; Secure"
    } else {
        "Path=/; HttpOnly; SameSite=Strict"
    }
}

pub async fn me(State(state): State<Arc<AppState>>, who: SignedIn) -> Json<Me> {
    Json(me_for(&state, who.operator, who.bench))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

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

    /// Sessions on a clock the test moves by hand (no sleeping, no luck), kept
    /// in a real store.
    fn on_a_test_clock(idle: Duration) -> (Sessions, Arc<Mutex<i64>>, Store, tempfile::TempDir) {
        let now = Arc::new(Mutex::new(1_800_000_000_000));
        let clock = now.clone();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("station.db")).unwrap();
        (
            Sessions::with_clock(idle, move || *clock.lock().unwrap()),
            now,
            store,
            dir,
        )
    }

    fn advance(now: &Mutex<i64>, by: Duration) {
        *now.lock().unwrap() += millis(by);
    }

    #[test]
    fn wrong_pins_lock_the_name_out_until_the_lockout_expires() {
        let (s, now, mut st, _dir) = on_a_test_clock(Duration::from_secs(600));
        for _ in 0..FREE_FAILURES - 1 {
            s.failed(&mut st, "小王").unwrap();
        }
        assert!(s.locked_for(&st, "小王").unwrap().is_none());
        s.failed(&mut st, "小王").unwrap();
        assert_eq!(s.locked_for(&st, "小王").unwrap(), Some(FIRST_LOCKOUT));
        assert!(s.locked_for(&st, "阿珍").unwrap().is_none());
        // The lockout runs out on its own ...
        advance(&now, FIRST_LOCKOUT - Duration::from_secs(1));
        assert_eq!(
            s.locked_for(&st, "小王").unwrap(),
            Some(Duration::from_secs(1))
        );
        advance(&now, Duration::from_secs(1));
        assert!(
            s.locked_for(&st, "小王").unwrap().is_none(),
            "the lockout expired"
        );
        // ... and the next wrong PIN locks for twice as long, on every `serve`
        // of this database.
        let mut other = st.reopen().unwrap();
        s.failed(&mut other, "小王").unwrap();
        assert_eq!(s.locked_for(&st, "小王").unwrap(), Some(FIRST_LOCKOUT * 2));
        s.succeeded(&mut st, "小王").unwrap();
        assert!(s.locked_for(&other, "小王").unwrap().is_none());
    }

    #[test]
    fn one_browser_per_bench_and_idle_sessions_end() {
        let idle = Duration::from_secs(600);
        let (s, now, mut st, _dir) = on_a_test_clock(idle);
        let (t, from) = s
            .start(&mut st, "小王", "1号台", false, None)
            .unwrap()
            .unwrap();
        assert_eq!((t.len(), from), (64, None));
        // One browser per bench, unless it takes the bench over.
        assert_eq!(
            s.start(&mut st, "阿珍", "1号台", false, None).unwrap(),
            Err("小王".to_string())
        );
        assert_eq!(
            s.touch(&mut st, &t).unwrap().unwrap().bench,
            "1号台",
            "a refusal keeps the holder"
        );
        // The same browser signing in again is not in its own way.
        let (t2, from) = s
            .start(&mut st, "小王", "1号台", false, Some(&t))
            .unwrap()
            .unwrap();
        assert_eq!(from, None);
        assert!(
            s.touch(&mut st, &t).unwrap().is_none(),
            "the browser's old session ended"
        );
        // Another `serve` on the same database knows the session ...
        let mut other = st.reopen().unwrap();
        assert_eq!(
            s.touch(&mut other, &t2).unwrap(),
            Some(SessionRow {
                operator: "小王".into(),
                bench: "1号台".into()
            })
        );
        let (t3, from) = s
            .start(&mut other, "阿珍", "1号台", true, None)
            .unwrap()
            .unwrap();
        assert_eq!(from.as_deref(), Some("小王"));
        // ... and a take-over there ends it here.
        assert!(s.touch(&mut st, &t2).unwrap().is_none(), "taken over");
        // The token itself is not stored, only its hash.
        let stored: Vec<String> = st
            .conn_for_tests()
            .prepare("SELECT token_sha256 FROM signins")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored, vec![token_sha256(&t3)]);
        assert_ne!(token_sha256(&t3), t3);
        // Idle just under the limit: alive (and touched again); at it: ended.
        advance(&now, idle - Duration::from_millis(1));
        assert!(s.touch(&mut st, &t3).unwrap().is_some());
        advance(&now, idle);
        assert!(
            s.touch(&mut st, &t3).unwrap().is_none(),
            "an idle session ends"
        );
        // Signing out ends a session once.
        let (t4, _) = s
            .start(&mut st, "阿珍", "2号台", false, None)
            .unwrap()
            .unwrap();
        assert_eq!(s.end(&mut other, &t4).unwrap().unwrap().operator, "阿珍");
        assert!(s.end(&mut st, &t4).unwrap().is_none());
        assert!(s.touch(&mut st, &t4).unwrap().is_none());
    }

    #[test]
    fn a_polling_bench_writes_its_last_seen_time_rarely() {
        let idle = Duration::from_secs(600);
        let (s, now, mut st, _dir) = on_a_test_clock(idle);
        let (t, _) = s
            .start(&mut st, "小王", "1号台", false, None)
            .unwrap()
            .unwrap();
        let last_seen = |st: &Store| -> i64 {
            st.conn_for_tests()
                .query_row("SELECT last_seen_ms FROM signins", [], |r| r.get(0))
                .unwrap()
        };
        let started = last_seen(&st);
        // Requests every half second for 59 s: the row is not written.
        for _ in 0..118 {
            advance(&now, Duration::from_millis(500));
            assert!(s.touch(&mut st, &t).unwrap().is_some());
        }
        assert_eq!(last_seen(&st), started);
        // Once a minute (a tenth of the idle time, here 60 s) has passed, it is.
        advance(&now, Duration::from_secs(1));
        assert!(s.touch(&mut st, &t).unwrap().is_some());
        assert_eq!(last_seen(&st), *now.lock().unwrap());
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
