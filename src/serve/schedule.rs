//! `station serve`'s schedule: pull the shop every `schedule.pull_every_minutes`
//! and, when `schedule.auto_wave_every_minutes` is set, print the queued orders
//! as a wave (the hourly auto-wave), in the background.
//!
//! Invariants:
//! - It never stops serve: a failed pull or wave is logged, recorded (an
//!   event, and the last outcome the page shows) and tried again at its next
//!   turn; a panic inside one turn is caught the same way.
//! - One pull at a time: a single loop on its own thread and runtime runs the
//!   turns one after another (a slow pull delays the next turn, never overlaps it).
//! - The auto-wave prints only what `station print` would: the queued orders
//!   (finishing a wave an interrupted print left open first), with the
//!   `[print]` settings; it never touches a printed, packed or set-aside order.
//! - It runs the same code as `station pull` and `station print`.

use crate::config::Config;
use crate::shop::client::ShopClient;
use crate::store::Store;
use crate::wave::{self, PrintOptions};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The outcome of one scheduled pull or wave, for the page.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// RFC 3339, UTC.
    pub at: String,
    pub ok: bool,
    /// What happened ("3 new, …") or what went wrong.
    pub summary: String,
}

/// What the schedule has done and will do, shared with `/api/queue`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Status {
    /// Minutes between scheduled pulls; 0 = off.
    pub pull_every_minutes: u64,
    /// Minutes between auto-waves; 0 = off.
    pub auto_wave_every_minutes: u64,
    /// Why the schedule is not running although configured (no shop token).
    pub inactive: Option<String>,
    pub last_pull: Option<Outcome>,
    pub last_wave: Option<Outcome>,
    pub next_pull_at: Option<String>,
    pub next_wave_at: Option<String>,
    /// A pull or wave is running now.
    pub running: Option<&'static str>,
}

pub type Shared = Arc<Mutex<Status>>;

pub fn new_status(config: &Config) -> Shared {
    Arc::new(Mutex::new(Status {
        pull_every_minutes: config.schedule.pull_every_minutes,
        auto_wave_every_minutes: config.schedule.auto_wave_every_minutes,
        ..Status::default()
    }))
}

fn update(status: &Shared, f: impl FnOnce(&mut Status)) {
    f(&mut status.lock().unwrap_or_else(|e| e.into_inner()));
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn after(d: Duration) -> String {
    rfc3339(chrono::Utc::now() + chrono::Duration::from_std(d).unwrap_or_default())
}

/// Everything the schedule's thread needs.
pub struct Schedule {
    pub db: crate::store::Db,
    pub config: Config,
    pub operator: String,
    pub out_dir: PathBuf,
    pub status: Shared,
}

/// Start the schedule on its own thread and runtime (like the outbox worker).
/// `None` when nothing is scheduled or there is no shop token (said in the
/// status, so the page shows it).
pub fn start(s: Schedule, stop: watch::Receiver<bool>) -> Option<std::thread::JoinHandle<()>> {
    let pull_every = s.config.schedule.pull_every();
    let wave_every = s.config.schedule.auto_wave_every();
    if pull_every.is_none() && wave_every.is_none() {
        return None;
    }
    let client = match pull_every.map(|_| {
        crate::shop::client::ShopClient::from_config(&s.config, crate::shop::client::Purpose::Work)
    }) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            let why = e.to_string();
            eprintln!("warning: scheduled pulls are off (no shop token): pull with `station pull`");
            update(&s.status, |st| st.inactive = Some(why));
            None
        }
        None => None,
    };
    if client.is_none() && wave_every.is_none() {
        return None;
    }
    let spawned = std::thread::Builder::new()
        .name("schedule".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("schedule: cannot start: {e}");
                    return;
                }
            };
            rt.block_on(run(s, client, stop));
        });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            eprintln!("error: cannot start the schedule: {e}");
            None
        }
    }
}

/// The loop: wait for the next due turn (or stop), run it, record it.
async fn run(s: Schedule, client: Option<ShopClient>, mut stop: watch::Receiver<bool>) {
    let pull_every = client.as_ref().and(s.config.schedule.pull_every());
    let wave_every = s.config.schedule.auto_wave_every();
    let start = tokio::time::Instant::now();
    let mut next_pull = pull_every.map(|d| start + d);
    let mut next_wave = wave_every.map(|d| start + d);
    update(&s.status, |st| {
        st.next_pull_at = pull_every.map(after);
        st.next_wave_at = wave_every.map(after);
    });
    let mut store: Option<Store> = None;
    loop {
        let due = [next_pull, next_wave].into_iter().flatten().min();
        let Some(due) = due else { return };
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let now = tokio::time::Instant::now();
        // Pull first when both are due, so the wave prints what just came in.
        if let (Some(at), Some(every), Some(client)) = (next_pull, pull_every, client.as_ref())
            && at <= now
        {
            update(&s.status, |st| st.running = Some("pull"));
            let outcome = tokio::select! {
                o = pull_turn(&s, client, &mut store) => o,
                _ = stop.changed() => return,
            };
            next_pull = Some(tokio::time::Instant::now() + every);
            update(&s.status, |st| {
                st.running = None;
                st.last_pull = Some(outcome);
                st.next_pull_at = Some(after(every));
            });
        }
        if let (Some(at), Some(every)) = (next_wave, wave_every)
            && at <= tokio::time::Instant::now()
        {
            update(&s.status, |st| st.running = Some("wave"));
            let outcome = wave_turn(&s, &mut store).await;
            next_wave = Some(tokio::time::Instant::now() + every);
            update(&s.status, |st| {
                st.running = None;
                st.last_wave = Some(outcome);
                st.next_wave_at = Some(after(every));
            });
        }
    }
}

/// The store, opened on first use and again after a failure.
fn store_for<'a>(s: &Schedule, store: &'a mut Option<Store>) -> anyhow::Result<&'a mut Store> {
    if store.is_none() {
        *store = Some(Store::open(&s.db)?);
    }
    Ok(store.as_mut().expect("just opened"))
}

/// Record a failed turn in the audit trail (best effort: the failure may be
/// the database itself) and drop the store, so the next turn opens a fresh one.
fn failed(s: &Schedule, store: &mut Option<Store>, action: &str, message: &str) {
    tracing::error!("schedule: {action}: {message}");
    if let Ok(st) = store_for(s, store)
        && let Err(e) = st.record(&s.operator, None, action, message)
    {
        tracing::error!("schedule: cannot record {action}: {e}");
    }
    *store = None;
}

async fn pull_turn(s: &Schedule, client: &ShopClient, store: &mut Option<Store>) -> Outcome {
    let at = rfc3339(chrono::Utc::now());
    let result = match store_for(s, store) {
        Ok(st) => {
            // A panic in one pull must not end the schedule.
            let fut = crate::pull::pull(client, st, &s.config, &s.operator);
            match futures_catch(fut).await {
                Ok(Ok(report)) => Ok(report.summary()),
                Ok(Err(e)) => Err(crate::error::one_line(&anyhow::Error::from(e))),
                Err(panic) => Err(format!("the pull panicked: {panic}")),
            }
        }
        Err(e) => Err(format!("{e:#}")),
    };
    match result {
        Ok(summary) => {
            tracing::info!("schedule: pulled: {summary}");
            Outcome {
                at,
                ok: true,
                summary,
            }
        }
        Err(message) => {
            failed(s, store, "schedule.pull_failed", &message);
            Outcome {
                at,
                ok: false,
                summary: message,
            }
        }
    }
}

async fn wave_turn(s: &Schedule, store: &mut Option<Store>) -> Outcome {
    let at = rfc3339(chrono::Utc::now());
    let result = match store_for(s, store) {
        Ok(st) => {
            let opts = PrintOptions::from_config(&s.config.print, s.out_dir.clone());
            let unfinished = st.open_wave().map(|w| w.is_some()).unwrap_or(false);
            match st.queue() {
                Ok(q) if q.is_empty() && !unfinished => Ok("nothing queued".to_string()),
                Ok(_) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    wave::print(st, &s.config, &opts, &s.operator, &|_, _| {})
                }))
                .map_err(|p| format!("the wave panicked: {}", panic_text(&*p)))
                .and_then(|r| r.map_err(|e| crate::error::one_line(&e)))
                .and_then(|r| {
                    // A job that failed or stalled in CUPS: its orders did not
                    // come out, which the bench must see as a failed wave.
                    if r.not_printed.is_empty() {
                        Ok(wave_summary(&r))
                    } else {
                        Err(format!("{}; {}", wave_summary(&r), not_printed_text(&r)))
                    }
                }),
                Err(e) => Err(format!("{e:#}")),
            }
        }
        Err(e) => Err(format!("{e:#}")),
    };
    match result {
        Ok(summary) => {
            tracing::info!("schedule: auto-wave: {summary}");
            Outcome {
                at,
                ok: true,
                summary,
            }
        }
        Err(message) => {
            failed(s, store, "schedule.wave_failed", &message);
            Outcome {
                at,
                ok: false,
                summary: message,
            }
        }
    }
}

fn wave_summary(r: &wave::PrintReport) -> String {
    match r.wave {
        None => "nothing queued".into(),
        Some(w) => {
            let mut s = format!("wave {w}: {} printed", r.printed);
            if !r.failed.is_empty() {
                s.push_str(&format!(
                    ", {} could not be printed (still queued)",
                    r.failed.len()
                ));
            }
            if !r.warnings.is_empty() {
                s.push_str(&format!(", {} to look at", r.warnings.len()));
            }
            s
        }
    }
}

/// "N orders not printed: waybill on Q (job J): reason; …" for a wave whose
/// jobs did not all complete in CUPS.
fn not_printed_text(r: &wave::PrintReport) -> String {
    let orders: usize = r.not_printed.iter().map(|n| n.orders.len()).sum();
    let jobs: Vec<String> = r.not_printed.iter().map(|n| n.to_string()).collect();
    format!(
        "{orders} orders NOT PRINTED, still queued in the open wave: {}",
        jobs.join("; ")
    )
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Run a future, turning a panic inside it into an error.
async fn futures_catch<F: std::future::Future>(fut: F) -> Result<F::Output, String> {
    use std::panic::AssertUnwindSafe;
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(p) => std::task::Poll::Ready(Err(panic_text(&*p))),
        }
    })
    .await
}
