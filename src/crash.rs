//! Named crash points: places where the crash tests (`tests/crash.rs`) make the
//! station die abruptly, to prove that each step which hands out or records
//! something survives a power cut or a `kill -9` right there.
//!
//! Compiled in only with the `failpoints` feature, which `cargo test` turns on
//! (through the crate's own dev-dependency) and `cargo build` never does; without
//! it [`point`] is an empty inline function. With it, a point does nothing
//! unless `STATION_CRASH_AT` names it: `STATION_CRASH_AT=wave.pdf.renamed` kills
//! the process the first time it passes there, `wave.pdf.renamed@3` the third
//! time. The process kills itself with SIGKILL: no unwinding, no destructors, no
//! flushed buffers, no SQLite rollback — exactly what a power cut leaves behind.

/// Every crash point, so the tests can go through all of them. Each is named
/// after the step it interrupts; the one-line `crash::point` calls sit where
/// the comment says.
pub const POINTS: &[&str] = &[
    // store::tracking::allocate_one: a number inserted, its transaction not committed.
    "tracking.allocated",
    // store::Store::plan_wave: every number of the wave allocated, before the commit.
    "wave.plan.before_commit",
    // wave::print: the plan (numbers) committed, nothing rendered yet.
    "wave.planned",
    // wave::write_atomically: the PDF written to its .tmp name, not synced or renamed.
    "wave.pdf.written",
    // wave::write_atomically: the PDF renamed into place, the chunk not recorded.
    "wave.pdf.renamed",
    // store::Store::finish_chunk: orders marked printed, before the commit.
    "wave.chunk.before_commit",
    // store::Store::finish_chunk: the chunk committed, the wave not closed.
    "wave.chunk.committed",
    // store::Store::mark_packed: the parcel marked packed, before the commit.
    "bench.pack.before_commit",
    // store::Store::mark_packed: packed and committed, the answer not shown.
    "bench.packed",
    // store::Store::close_handover: orders handed over and write-backs queued, before the commit.
    "handover.close.before_commit",
    // handover::close: the batch closed and committed, no manifest written.
    "handover.closed",
    // handover::close: the manifest written, its path not recorded.
    "handover.manifest.written",
    // outbox: a send claimed, before the HTTP request goes out (per kind).
    "outbox.shipment.sending",
    "outbox.flag.sending",
    "outbox.exception.sending",
    "outbox.return.sending",
    // outbox::sync_once: the shop answered, before the acknowledgement is recorded.
    "outbox.shipment.answered",
    "outbox.flag.answered",
    "outbox.exception.answered",
    "outbox.return.answered",
    // store::Store::migrate_to: every row copied into PostgreSQL, before the commit.
    "migrate.before_commit",
    // store::Store::waybill_requests: e-waybill requests recorded, before the commit.
    "waybill.requests.before_commit",
    // courier::take: requests committed, before the call to the service.
    "waybill.calling",
    // store::Store::record_waybill_answers: the service's numbers recorded, before the commit.
    "waybill.answers.before_commit",
];

/// The environment variable that arms one point: `NAME` or `NAME@N`.
pub const ENV: &str = "STATION_CRASH_AT";

/// The environment variables that hold the process at a point instead of
/// killing it: `STATION_PAUSE_AT=NAME` and `STATION_PAUSE_DIR=DIR`. At the
/// point's first hit the process creates `DIR/reached` and waits until
/// `DIR/go` exists, so a test can do something exactly there (take a backup
/// in the middle of a wave) and then let it go on; no timing involved.
pub const PAUSE_ENV: &str = "STATION_PAUSE_AT";
pub const PAUSE_DIR_ENV: &str = "STATION_PAUSE_DIR";

/// Hold here if `STATION_PAUSE_AT` names this point (its first hit only).
/// Every crash point is also a pause point; a pause-only point (like
/// `pull.page.stored`) is not a crash point.
#[cfg(feature = "failpoints")]
pub fn pause(name: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static PAUSED: AtomicBool = AtomicBool::new(false);
    if std::env::var(PAUSE_ENV).ok().as_deref() != Some(name) || PAUSED.swap(true, Ordering::SeqCst)
    {
        return;
    }
    let Some(dir) = std::env::var_os(PAUSE_DIR_ENV).map(std::path::PathBuf::from) else {
        return;
    };
    std::fs::write(dir.join("reached"), name).expect("the pause directory is writable");
    // Polling a file the test creates: the wait ends on the test's event.
    while !dir.join("go").exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Die here if `STATION_CRASH_AT` names this point (and this is its N-th hit).
#[cfg(feature = "failpoints")]
pub fn point(name: &str) {
    pause(name);
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    debug_assert!(
        POINTS.contains(&name),
        "crash point {name:?} is not in POINTS"
    );
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var(ENV).ok()?;
        let (point, nth) = match spec.split_once('@') {
            Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        };
        Some((point, nth.max(1)))
    });
    let Some((armed, nth)) = armed else { return };
    if armed != name || HITS.fetch_add(1, Ordering::SeqCst) + 1 != *nth {
        return;
    }
    // stderr is unbuffered: the test sees where the process died.
    eprintln!("crash point {name} (hit {nth}): SIGKILL");
    // SAFETY: raising a signal at the calling thread has no memory-safety
    // preconditions; SIGKILL cannot be caught, so this does not return.
    unsafe {
        libc::raise(libc::SIGKILL);
    }
    std::process::abort();
}

/// Without the `failpoints` feature a pause point is nothing at all.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn pause(_name: &str) {}

/// Without the `failpoints` feature a crash point is nothing at all.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn point(_name: &str) {}

/// The outbox's points, per kind of send (`shipment`, `flag`, `exception`) and
/// stage (`sending`, `answered`): `outbox.KIND.STAGE`.
#[inline(always)]
pub fn outbox(kind: &str, stage: &str) {
    #[cfg(feature = "failpoints")]
    point(&format!("outbox.{kind}.{stage}"));
    #[cfg(not(feature = "failpoints"))]
    let _ = (kind, stage);
}

/// The environment variable that plants a bug: `STATION_RENDER_BUG=ORDER_ID`
/// makes laying out that order panic, as a bug in the layout code would.
pub const RENDER_BUG_ENV: &str = "STATION_RENDER_BUG";

/// Panic if `STATION_RENDER_BUG` names this order (tests of the wave's panic
/// containment: one order's bug must not end the wave).
#[cfg(feature = "failpoints")]
pub fn render_bug(order_id: &str) {
    if std::env::var(RENDER_BUG_ENV).is_ok_and(|id| id == order_id) {
        panic!("planted layout bug for order {order_id} ({RENDER_BUG_ENV})");
    }
}

/// Without the `failpoints` feature nothing is planted.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn render_bug(_order_id: &str) {}
