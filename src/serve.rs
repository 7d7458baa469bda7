//! `station serve`: the packing-bench web app. Operators sign in at a bench in a
//! browser and work the parcel flow with a barcode scanner: open an order by
//! its packing slip, tick off items, pair the waybill, and hand parcels over to
//! a courier. The page (HTML, CSS, JS) is embedded in the binary.
//!
//! This module owns HTTP only: every decision about an order is made by
//! `packing` and `handover`, exactly as the CLI's `station scan` makes it.
//!
//! Architecture invariants:
//! - Every request's `Host` is one the station answers to (DNS rebinding), and
//!   every state-changing request carries an allowed `Origin` (CSRF); both are
//!   checked before routing, in [`guard`].
//! - Every `/api` call except sign-in runs as a signed-in operator at a bench;
//!   the operator and the bench go with every action into the audit trail.
//! - The page renders data from the server with `textContent` only, and the
//!   Content-Security-Policy allows no inline script: a buyer's message is text,
//!   never markup.
//! - No lock is held across a shop request: each request checks a `Store` out
//!   of a small pool and runs on a blocking thread.

mod api;
mod auth;
mod guard;
pub mod metrics;
mod scale;
mod schedule;
pub mod tls;

use crate::config::{Config, ConfigError};
use crate::shop::client::ShopClient;
use crate::store::{Db, Store};
use anyhow::{Context, Result};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use auth::{hash_pin, verify_pin};

/// Everything a request handler needs. Shared by all requests.
pub struct AppState {
    pub config: Config,
    pool: StorePool,
    /// The short-timeout client for the bench's re-reads; `None` without a token.
    shop: Option<ShopClient>,
    sessions: auth::Sessions,
    operators: auth::Operators,
    allowed: guard::Allowed,
    /// Where reprints and handover manifests are written.
    out_dir: PathBuf,
    /// Wakes the outbox worker when a handover closes, so the shop hears at once.
    outbox_wake: Arc<tokio::sync::Notify>,
    /// What the background schedule (pulls, auto-waves) did last and does next.
    schedule: schedule::Shared,
    /// Scans counted for `/metrics`.
    metrics: metrics::Metrics,
    /// Each bench's latest answered scans by the page's scan id, so that a
    /// scan the page sends again (its answer was lost) is answered again,
    /// not counted twice.
    recent_scans: api::RecentScans<crate::packing::ScanOutcome>,
    recent_handover_scans: api::RecentScans<crate::handover::HandoverScan>,
    recent_receives: api::RecentScans<crate::returns::Received>,
    /// The bench scale's latest reading (`[bench.scale]`), when there is one.
    scale: Option<Arc<scale::Live>>,
    /// Served over TLS: the session cookie is then `Secure`.
    tls: bool,
}

impl AppState {
    /// State for a server bound to `addr` (the real port, after binding).
    pub fn new(config: Config, db: &Db, addr: SocketAddr) -> Result<AppState> {
        let operators = auth::Operators::from_config(&config.operators)?;
        let allowed = guard::Allowed::new(addr, &config.serve.allowed_hosts)?;
        // Open once now: a wrong path or a failed migration stops the start,
        // not the first scan.
        let pool = StorePool::new(db);
        pool.put(Store::open(db)?);
        Ok(AppState {
            shop: crate::shop::client::ShopClient::from_config(
                &config,
                crate::shop::client::Purpose::Check,
            )
            .ok(),
            sessions: auth::Sessions::new(std::time::Duration::from_secs(
                config.serve.session_idle_minutes.max(1) * 60,
            )),
            operators,
            allowed,
            // Absolute, so the page shows where a manifest or reprint really is.
            out_dir: std::path::absolute(&config.print.out_dir)
                .unwrap_or_else(|_| PathBuf::from(&config.print.out_dir)),
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            schedule: schedule::new_status(&config),
            metrics: metrics::Metrics::default(),
            recent_scans: api::RecentScans::default(),
            recent_handover_scans: api::RecentScans::default(),
            recent_receives: api::RecentScans::default(),
            scale: config.bench.scale.clone().map(scale::Live::new),
            tls: false,
            pool,
            config,
        })
    }

    /// The host names this server answers to.
    pub fn allowed_hosts(&self) -> &[String] {
        self.allowed.hosts()
    }
}

/// A few open SQLite connections, handed out one per request. `Store` is
/// `Send` but not `Sync`, so each request owns one for its duration; more are
/// opened when every idle one is in use, and at most `MAX_IDLE` are kept.
struct StorePool {
    db: Db,
    idle: Mutex<Vec<Store>>,
}

const MAX_IDLE: usize = 16;

impl StorePool {
    fn new(db: &Db) -> StorePool {
        StorePool {
            db: db.clone(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> Result<Store> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(s) => Ok(s),
            None => Ok(Store::open(&self.db)?),
        }
    }

    fn put(&self, store: Store) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(store);
        }
    }
}

/// Run `f` with a pooled `Store` on a blocking thread (SQLite calls block;
/// they must not stall the async workers). The store goes back to the pool
/// afterwards, unless `f` panicked.
async fn with_store<T, F>(state: &Arc<AppState>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Store, &AppState) -> Result<T> + Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = state.pool.take()?;
        let out = f(&mut store, &state);
        state.pool.put(store);
        out
    })
    .await
    .context("the request's worker thread failed")?
}

const PAGE_HTML: &str = include_str!("serve/bench.html");
const PAGE_JS: &str = include_str!("serve/bench.js");
const PAGE_CSS: &str = include_str!("serve/bench.css");

/// The whole app: page, API, guards.
pub fn router(state: Arc<AppState>) -> Router {
    let static_file = |body: &'static str, ctype: &'static str| {
        move || async move { ([(header::CONTENT_TYPE, ctype)], body) }
    };
    Router::new()
        .route("/", get(static_file(PAGE_HTML, "text/html; charset=utf-8")))
        .route(
            "/bench.js",
            get(static_file(PAGE_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/bench.css",
            get(static_file(PAGE_CSS, "text/css; charset=utf-8")),
        )
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/healthz", get(metrics::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/login", post(auth::login))
        .route("/api/logout", post(auth::logout))
        .route("/api/me", get(auth::me))
        .route("/api/scan", post(api::scan))
        .route("/api/bench", get(api::bench))
        .route("/api/reprint", post(api::reprint))
        .route("/api/handover", get(api::handover_list))
        .route("/api/handover/open", post(api::handover_open))
        .route("/api/handover/scan", post(api::handover_scan))
        .route("/api/handover/close", post(api::handover_close))
        .route("/api/short", post(api::short))
        .route("/api/returns/parcel", get(api::returns_parcel))
        .route("/api/returns", post(api::returns_receive))
        .route("/api/scale", get(api::scale))
        .route("/api/show", get(api::show))
        .route("/api/report", get(api::report))
        .route("/api/dispatch", get(api::dispatch))
        .route("/api/queue", get(api::queue))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no such page", "没有这个页面")
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check,
        ))
        .with_state(state)
}

/// An error answer: `{"error": "...", "error_zh": "..."}` with a status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    message_zh: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>, zh: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            message_zh: zh.into(),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    /// A mistake the operator can fix (unknown order, wrong courier, …) is a
    /// 400 with the domain's message; anything else is a 500, logged.
    fn from(err: anyhow::Error) -> ApiError {
        let message = crate::error::one_line(&err);
        if crate::cli::exit_code(&err) == crate::cli::exit::USAGE {
            ApiError::new(StatusCode::BAD_REQUEST, message.clone(), message)
        } else if crate::cli::exit_code(&err) == crate::cli::exit::PRINTER {
            // The bench printer did not print (F2): nothing is counted as printed.
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                message.clone(),
                format!("打印机没有打出，未计为已打印：{message}"),
            )
        } else {
            tracing::error!("request failed: {message}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the station failed: {message}"),
                format!("系统错误：{message}"),
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({"error": self.message, "error_zh": self.message_zh})),
        )
            .into_response()
    }
}

/// `station serve`: bind, say where, serve until Ctrl-C or SIGTERM.
pub fn run(
    mut config: Config,
    operator: String,
    db: &Db,
    listen: Option<SocketAddr>,
) -> Result<()> {
    let listen = match listen {
        Some(a) => a,
        None => config
            .serve
            .listen
            .parse()
            .map_err(|_| ConfigError::Invalid {
                origin: "settings".into(),
                message: format!(
                    "serve.listen {:?} is not an address like 127.0.0.1:8080",
                    config.serve.listen
                ),
            })?,
    };
    config.serve.listen = listen.to_string();
    if let Some(path) = db.sqlite_path().filter(|p| !p.exists()) {
        return Err(crate::store::StoreError::Missing(path.display().to_string()).into());
    }
    if db.is_postgres() {
        // A database without the station's tables is no station yet.
        Store::open_existing(db)?;
    }
    let tls_mode = tls::Mode::from_config(&config.serve, &db.dir());
    tls_mode.check_address(listen)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let names = tls::names_for(addr, &config.serve.allowed_hosts);
        let loaded = tls::load(&tls_mode, &names)?;
        let mut state = AppState::new(config, db, addr)?;
        state.tls = loaded.is_some();
        let state = Arc::new(state);
        let scheme = if state.tls { "https" } else { "http" };
        if !addr.ip().is_loopback() && state.config.serve.allowed_hosts.is_empty() {
            eprintln!(
                "warning: listening on {addr} but serve.allowed_hosts is empty: browsers must use {scheme}://{addr}/ exactly; add the name the benches type (e.g. \"station.lan:{}\")",
                addr.port()
            );
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let scheduled = schedule::start(
            schedule::Schedule {
                db: db.clone(),
                config: state.config.clone(),
                operator: operator.clone(),
                out_dir: state.out_dir.clone(),
                status: state.schedule.clone(),
            },
            stopped.clone(),
        );
        let weighing = match &state.scale {
            Some(live) => Some(scale::start(live.clone(), stopped.clone())?),
            None => None,
        };
        let worker = start_outbox(&state, db, operator, stopped);
        // Tests and scripts wait for this line: it means the port is open.
        println!(
            "station serve listening on {scheme}://{addr} (answers to {})",
            state.allowed_hosts().join(", ")
        );
        if let Some(cert) = &loaded {
            // The second line: what a bench compares with the certificate its
            // browser shows before trusting it.
            println!(
                "TLS certificate {} ({}) SHA-256 fingerprint {}",
                cert.cert_path.display(),
                if cert.made { "self-signed, made now" } else { "loaded" },
                cert.fingerprint
            );
        }
        std::io::stdout().flush()?;
        // With the peer's address, so /healthz and /metrics answer loopback only.
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        let served = match loaded {
            None => axum::serve(listener, app)
                .with_graceful_shutdown(shutdown())
                .await
                .map_err(anyhow::Error::from),
            Some(cert) => {
                let handle = axum_server::Handle::new();
                let stopping = handle.clone();
                tokio::spawn(async move {
                    shutdown().await;
                    // Requests in flight get a few seconds to finish.
                    stopping.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
                });
                let config = axum_server::tls_rustls::RustlsConfig::from_config(cert.server);
                axum_server::from_tcp_rustls(listener.into_std()?, config)?
                    .handle(handle)
                    .serve(app)
                    .await
                    .map_err(anyhow::Error::from)
            }
        };
        let _ = stop.send(true);
        if let Some(w) = worker {
            // A pass in flight finishes its send (bounded by the send timeout).
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        if let Some(w) = scheduled {
            // A pull in flight is dropped at once; a wave being rendered finishes.
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        if let Some(w) = weighing {
            // It looks at the stop signal at least once a second.
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        served?;
        Ok(())
    })
}

/// The outbox worker, on its own thread and runtime: its SQLite work never
/// stalls a scan, and a scan never delays a write-back. `None` without a shop
/// token (then nothing can be sent, and `station sync` says the same).
fn start_outbox(
    state: &Arc<AppState>,
    db: &Db,
    operator: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<std::thread::JoinHandle<()>> {
    let client = match crate::shop::client::ShopClient::from_config(
        &state.config,
        crate::shop::client::Purpose::Work,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "warning: {e:#}. Without it the bench will not re-read orders before packing, and handed-over parcels wait in the outbox until `station sync` runs with a token"
            );
            return None;
        }
    };
    let (db, config, wake) = (db.clone(), state.config.clone(), state.outbox_wake.clone());
    let spawned = std::thread::Builder::new()
        .name("outbox".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("outbox worker: cannot start: {e}");
                    return;
                }
            };
            if let Err(e) = rt.block_on(crate::outbox::run_forever(db, client, config, operator, stop, wake)) {
                tracing::error!("outbox worker stopped: {e:#}");
                eprintln!("error: the outbox worker stopped: {e:#}; handed-over parcels wait until `station sync` or a restart");
            }
        });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            eprintln!("error: cannot start the outbox worker: {e}");
            None
        }
    }
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
