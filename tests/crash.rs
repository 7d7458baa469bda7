//! Crash tests: the real binary, killed where it hurts, then restarted.
//!
//! 1. Every named crash point (`station::crash::POINTS`): a fresh station and
//!    simulator, the step run with the point armed (`STATION_CRASH_AT`, the
//!    process SIGKILLs itself there), then the same step again without it.
//! 2. SIGKILL at random moments (seeded; the seed is printed) during a
//!    2,000-order wave, then during a handover close and during a sync,
//!    restarting each time until the work is done.
//!
//! After the restarts the same checks hold every time: no tracking number lost
//! or issued twice, every order printed exactly once (and only from complete,
//! valid PDFs), every shipment and done flag written to the shop exactly once
//! (the simulator's own records), and the audit trail complete.
//!
//! The crash points are compiled in because `cargo test` builds the binary with
//! the `failpoints` feature (the crate's dev-dependency on itself).

mod common;

use common::*;
use rand::{RngExt as _, SeedableRng as _, rngs::StdRng};
use serde_json::{Value, json};
use station::crash::POINTS;
use station::store::sql::Connection;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Small chunks (several files per wave), fast outbox retries and leases
/// (`send_timeout_secs = 1`: a killed claim is free again after 3 s), and no
/// item scans at the bench (slip, then waybill, packs).
const CONFIG: &str = "[shop]\nrequest_timeout_secs = 1\n\n[outbox]\nsend_timeout_secs = 1\nretry_first_secs = 1\nretry_max_secs = 1\n\n[print]\nchunk_size = 4\n\n[bench]\nrequire_item_scans = false\n\n[handover]\nrequire_packed = false\n";

struct World {
    st: Station,
    sim: Sim,
}

impl World {
    /// The first `n` fixture orders on a fresh simulator, pulled into a fresh
    /// station. The second buyer's nick ends in a character no font has
    /// (private use), so a wave prints with a warning to keep in the audit.
    fn fixtures(n: usize, config: &str) -> World {
        let st = Station::new();
        let mut all = read_json(&data("orders-200.json"));
        if let Some(nick) = all[1]["buyer"]["nick"].as_str() {
            all[1]["buyer"]["nick"] = json!(format!("{nick}\u{e000}"));
        }
        let text: String = all.as_array().unwrap()[..n]
            .iter()
            .map(|o| format!("{o}\n"))
            .collect();
        let file = st.write("orders.jsonl", &text);
        World::start(st, &file, config)
    }

    /// `n` generated orders (`station generate`), pulled into a fresh station.
    fn generated(n: usize, seed: u64, config: &str) -> World {
        let st = Station::new();
        let file = st.dir.path().join("orders.jsonl");
        let n = n.to_string();
        let seed = seed.to_string();
        ok(&st
            .cmd()
            .args(["generate", &n, "--seed", &seed, "--out"])
            .arg(&file)
            .output()
            .unwrap());
        World::start(st, &file, config)
    }

    /// The first `n` fixture orders, where orders 0, 3 and 7 are one buyer's
    /// to one recipient, and so are 2 and 5: two merged parcels (合并发货).
    fn merged(n: usize, config: &str) -> World {
        let st = Station::new();
        let mut all = read_json(&data("orders-200.json"));
        for (lead, again) in [(0, 3), (0, 7), (2, 5)] {
            for i in [lead, again] {
                all[i]["memos"] = json!([]);
                all[i]["flag"] = json!("yellow");
                all[i]["shipping"] = json!({"courier": null, "service": "standard"});
            }
            for field in ["buyer", "recipient"] {
                all[again][field] = all[lead][field].clone();
            }
        }
        let text: String = all.as_array().unwrap()[..n]
            .iter()
            .map(|o| format!("{o}\n"))
            .collect();
        let file = st.write("orders.jsonl", &text);
        World::start(st, &file, config)
    }

    fn start(st: Station, file: &Path, config: &str) -> World {
        st.write("station.toml", config);
        let sim = Sim::start(file, "crash-token", &[]);
        ok(&st.pull(&sim, &[]));
        World { st, sim }
    }

    fn cmd(&self) -> Command {
        self.st.cmd_with_shop(&self.sim)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        serde_json::from_str(&ok(&out)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Run a step with one crash point armed: it must die there, by SIGKILL.
    fn crash(&self, point: &str, args: &[&str]) {
        let out = self
            .cmd()
            .env(station::crash::ENV, point)
            .args(args)
            .output()
            .unwrap();
        let name = point.split('@').next().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{args:?} with {point} armed was not killed there: exit {:?}\n{stderr}",
            out.status.code()
        );
        assert!(
            stderr.contains(&format!("crash point {name} ")),
            "{point}: {stderr}"
        );
    }

    /// The station's database, on either engine (`STATION_TEST_PG`).
    fn db(&self) -> Connection {
        self.st.store().into_connection()
    }

    /// A path the station recorded (relative to its working directory).
    fn path(&self, recorded: &str) -> PathBuf {
        self.st.dir.path().join(recorded)
    }

    fn labels(&self) -> PathBuf {
        self.st.dir.path().join("labels")
    }

    /// order id → (courier, live tracking number) of every printed order.
    fn live(&self) -> BTreeMap<String, (String, String)> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT order_id, courier, number FROM tracking_numbers WHERE state = 'allocated'",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn count(&self, sql: &str, param: &str) -> u64 {
        self.db().query_row(sql, [param], |r| r.get(0)).unwrap()
    }

    fn events(&self, order: &str, action: &str) -> u64 {
        self.db()
            .query_row(
                "SELECT COUNT(*) FROM events WHERE order_id = ?1 AND action = ?2",
                [order, action],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// Open one batch per courier, scan the given parcels in; returns the batch ids.
    fn scan_in(&self, parcels: &BTreeMap<String, (String, String)>) -> Vec<String> {
        let mut by_courier: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (courier, number) in parcels.values() {
            by_courier.entry(courier).or_default().push(number);
        }
        let mut batches = Vec::new();
        for (courier, numbers) in by_courier {
            let opened = self.json(&["handover", "open", "--courier", courier]);
            let batch = opened["id"].as_str().unwrap().to_string();
            for n in numbers {
                ok(&self.run(&["handover", "scan", "--batch", &batch, n]));
            }
            batches.push(batch);
        }
        batches
    }

    /// `station sync` until nothing is pending (a killed claim comes back
    /// when its lease runs out).
    fn sync_until_done(&self) {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let report = self.json(&["sync"]);
            assert_eq!(report["outbox"]["alerts"], json!([]), "{report}");
            if report["outbox"]["pending"] == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "still pending: {report}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn have_tools() -> bool {
    let have = |t: &str| Command::new(t).arg("--version").output().is_ok();
    let ok = have("pdftotext") && have("qpdf");
    assert!(
        ok || std::env::var_os("STATION_REQUIRE_TOOLS").is_none(),
        "install poppler-utils qpdf"
    );
    if !ok {
        eprintln!("skipped the PDF checks of the crash tests: install poppler-utils qpdf");
    }
    ok
}

fn qpdf_check(pdf: &Path) {
    let out = Command::new("qpdf")
        .arg("--check")
        .arg(pdf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} is not a valid PDF: {}",
        pdf.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn pdf_pages(pdf: &Path) -> Vec<String> {
    let out = Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success(), "pdftotext {}", pdf.display());
    String::from_utf8_lossy(&out.stdout)
        .split('\u{c}')
        .map(str::to_string)
        .collect()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The tracking-number checks: every issued number is the live number of
/// exactly one order or void with a reason; each order has at most one live
/// number; each courier's range was issued without a gap.
fn check_numbers(w: &World) {
    let db = w.db();
    let mut stmt = db
        .prepare("SELECT number, courier, order_id, state, void_reason FROM tracking_numbers")
        .unwrap();
    let rows: Vec<(String, String, String, String, Option<String>)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut live_per_order: HashMap<&str, u32> = HashMap::new();
    let mut per_courier: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (number, courier, order, state, reason) in &rows {
        match state.as_str() {
            "allocated" => *live_per_order.entry(order).or_default() += 1,
            "voided" => assert!(
                reason.as_deref().is_some_and(|r| !r.is_empty()),
                "{number} voided without a reason"
            ),
            other => panic!("{number}: state {other}"),
        }
        // Demo pools: a 4-digit prefix and an 8-digit serial.
        per_courier
            .entry(courier)
            .or_default()
            .push(number[number.len() - 8..].parse().unwrap());
    }
    for (order, n) in &live_per_order {
        assert_eq!(*n, 1, "order {order} holds {n} live numbers");
    }
    for (courier, mut serials) in per_courier {
        serials.sort();
        let expect: Vec<u64> = (1..=serials.len() as u64).collect();
        assert_eq!(serials, expect, "{courier}: numbers lost or issued twice");
    }
    let cursors: Vec<(String, u64)> = db
        .prepare("SELECT courier, next FROM pool_cursors")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (courier, next) in cursors {
        let issued = rows.iter().filter(|r| r.1 == courier).count() as u64;
        assert_eq!(
            next,
            issued + 1,
            "{courier}: the pool cursor skipped numbers"
        );
    }
}

/// Everything a finished wave must show after any crash and restart. Returns
/// the printed orders (id → courier, number).
fn check_printed(w: &World, expect_orders: usize) -> BTreeMap<String, (String, String)> {
    check_numbers(w);
    let db = w.db();
    let queued: u64 = db
        .query_row(
            "SELECT COUNT(*) FROM orders WHERE state = 'queued'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(queued, 0, "orders left unprinted");
    let open: u64 = db
        .query_row("SELECT COUNT(*) FROM waves WHERE state = 'open'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(open, 0, "a wave was left open");
    let live = w.live();
    assert_eq!(live.len(), expect_orders, "printed orders");

    // Each order printed exactly once, with its live number, and recorded.
    let mut rows = db
        .prepare(
            "SELECT order_id, tracking_no, waybill_file, waybill_page, slip_file
             FROM wave_orders WHERE printed_at IS NOT NULL",
        )
        .unwrap();
    let printed: Vec<(String, String, String, u64, String)> = rows
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut per_order: HashMap<&str, u32> = HashMap::new();
    for (order, number, ..) in &printed {
        *per_order.entry(order).or_default() += 1;
        assert_eq!(
            live[order].1, *number,
            "order {order} printed with a dead number"
        );
    }
    for order in live.keys() {
        assert_eq!(
            per_order.get(order.as_str()),
            Some(&1),
            "order {order} printed"
        );
        assert_eq!(w.events(order, "print.printed"), 1, "{order}: print events");
        assert_eq!(
            w.events(order, "tracking.allocated"),
            1,
            "{order}: allocations"
        );
        let state: String = db
            .query_row("SELECT state FROM orders WHERE id = ?1", [order], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(
            ["printed", "packed", "handed_over", "shipped"].contains(&state.as_str()),
            "{order}: {state}"
        );
    }

    // Only complete files under their final names; every recorded file valid,
    // each order's number on its recorded page, and each number in one
    // waybill file only.
    let files = files_under(&w.labels());
    assert!(
        !files.iter().any(|f| !f.to_string_lossy().ends_with(".pdf")),
        "partial files left: {files:?}"
    );
    if have_tools() {
        let recorded: BTreeSet<&str> = printed
            .iter()
            .flat_map(|p| [p.2.as_str(), p.4.as_str()])
            .collect();
        for f in &recorded {
            qpdf_check(&w.path(f));
        }
        let mut found: HashMap<String, Vec<String>> = HashMap::new();
        let mut texts: HashMap<String, Vec<String>> = HashMap::new();
        for f in files.iter().filter(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("waybills-")
        }) {
            let pages = pdf_pages(f);
            let all = pages.concat();
            for (_, number) in live.values() {
                if all.contains(number.as_str()) {
                    found
                        .entry(number.clone())
                        .or_default()
                        .push(f.display().to_string());
                }
            }
            texts.insert(f.display().to_string(), pages);
        }
        for (order, number, file, page, _) in &printed {
            let pages = &texts[&w.path(file).display().to_string()];
            assert!(
                pages[*page as usize - 1].contains(number.as_str()),
                "{order}: {number} not on page {page} of {file}"
            );
            assert_eq!(
                found[number].len(),
                1,
                "{number} printed in {:?}",
                found[number]
            );
        }
    }
    live
}

/// After handover and sync: every order handed over is shipped, with exactly one
/// shipment and one 已交接 memo on the shop, green, and a complete trail.
fn check_shipped(w: &World, handed: &BTreeMap<String, (String, String)>) {
    let shipments = w.get("/admin/shipments");
    let mut per_order: HashMap<&str, Vec<&str>> = HashMap::new();
    for s in shipments.as_array().unwrap() {
        per_order
            .entry(s["order_id"].as_str().unwrap())
            .or_default()
            .push(s["tracking_no"].as_str().unwrap());
    }
    assert_eq!(per_order.len(), handed.len(), "shipments: {shipments}");
    let log = w.sim.log();
    for (order, (_, number)) in handed {
        assert_eq!(
            per_order.get(order.as_str()),
            Some(&vec![number.as_str()]),
            "{order}: shipments"
        );
        let shop = w.get(&format!("/v1/orders/{order}"));
        assert_eq!(shop["flag"], "green", "{shop}");
        let memos: Vec<&Value> = shop["memos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["text"].as_str().unwrap().starts_with("已交接"))
            .collect();
        assert_eq!(memos.len(), 1, "{order}: {memos:?}");
        assert!(memos[0]["text"].as_str().unwrap().contains(number.as_str()));
        // The simulator's log: at least one accepted shipment and flag write.
        let accepted = |method: &str| {
            log.as_array()
                .unwrap()
                .iter()
                .filter(|e| {
                    e["method"] == method
                        && e["status"] == 200
                        && e["path"]
                            .as_str()
                            .is_some_and(|p| p.contains(order.as_str()))
                })
                .count()
        };
        assert!(
            accepted("POST") >= 1 && accepted("PUT") >= 1,
            "{order}: log"
        );

        let state: String = w
            .db()
            .query_row("SELECT state FROM orders WHERE id = ?1", [order], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(state, "shipped", "{order}");
        for (action, n) in [
            ("tracking.allocated", 1),
            ("print.printed", 1),
            ("handover.handed_over", 1),
            ("outbox.enqueued", 1),
            ("outbox.sent", 2),
            ("outbox.done", 1),
        ] {
            assert_eq!(w.events(order, action), n, "{order}: {action} events");
        }
        assert_eq!(
            w.count(
                "SELECT COUNT(*) FROM outbox WHERE order_id = ?1 AND state = 'done'",
                order
            ),
            2,
            "{order}: outbox rows"
        );
    }
}

/// A closed batch: its manifest written, valid and listing every parcel; its
/// orders handed over once, each with its two write-backs queued once.
fn check_closed(w: &World, batch: &str, parcels: &BTreeMap<String, (String, String)>) {
    let db = w.db();
    let (state, manifest): (String, Option<String>) = db
        .query_row(
            "SELECT state, manifest FROM handovers WHERE id = ?1",
            [batch],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(state, "closed", "{batch}");
    let manifest = manifest.unwrap_or_else(|| panic!("{batch}: no manifest recorded"));
    let manifest = w.path(&manifest);
    assert!(manifest.exists(), "{}", manifest.display());
    assert_eq!(
        w.count(
            "SELECT COUNT(*) FROM events WHERE action = 'handover.closed' AND detail LIKE ?1 || '%'",
            batch
        ),
        1,
        "{batch}: closed events"
    );
    if have_tools() {
        qpdf_check(&manifest);
        let text = pdf_pages(&manifest).concat();
        for (_, number) in parcels.values() {
            assert!(
                text.contains(number.as_str()),
                "{number} not in {}",
                manifest.display()
            );
        }
    }
    for order in parcels.keys() {
        assert_eq!(w.events(order, "handover.handed_over"), 1, "{order}");
        assert_eq!(
            w.count("SELECT COUNT(*) FROM outbox WHERE order_id = ?1", order),
            2,
            "{order}: outbox rows"
        );
    }
    let leftovers: Vec<PathBuf> = files_under(&w.labels())
        .into_iter()
        .filter(|f| !f.to_string_lossy().ends_with(".pdf"))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
}

impl World {
    fn get(&self, path: &str) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            station::shop::client::http()
                .build()
                .unwrap()
                .get(format!("{}{path}", self.sim.url))
                .bearer_auth(&self.sim.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    }
}

/// Orders in the per-point worlds: enough for three chunks of four.
const N: usize = 10;

/// The wave's points, each with the hit it dies on.
const WAVE_POINTS: &[&str] = &[
    "tracking.allocated@4",
    "wave.plan.before_commit",
    "wave.planned",
    "wave.pdf.written@3",
    "wave.pdf.renamed@4",
    "wave.chunk.before_commit@2",
    "wave.chunk.committed@1",
    "wave.chunk.committed@2",
    "wave.chunk.committed@3",
];

const BENCH_POINTS: &[&str] = &["bench.pack.before_commit", "bench.packed"];

const HANDOVER_POINTS: &[&str] = &[
    "handover.close.before_commit",
    "handover.closed",
    "handover.manifest.written",
];

const OUTBOX_POINTS: &[&str] = &[
    "outbox.shipment.sending@3",
    "outbox.shipment.answered@3",
    "outbox.flag.sending@2",
    "outbox.flag.answered@2",
];

const EXCEPTION_POINTS: &[&str] = &["outbox.exception.sending", "outbox.exception.answered"];

const RETURN_POINTS: &[&str] = &["outbox.return.sending", "outbox.return.answered"];

/// Tested in tests/postgres.rs (`migrate_db_moves_a_sqlite_station_with_its_history`):
/// the copy needs a PostgreSQL server.
const MIGRATE_POINTS: &[&str] = &["migrate.before_commit"];

/// Tested in tests/couriers.rs (`a_print_killed_while_taking_numbers_loses_and_doubles_none`):
/// they need the e-waybill service simulator.
const WAYBILL_POINTS: &[&str] = &[
    "waybill.requests.before_commit",
    "waybill.calling",
    "waybill.answers.before_commit",
];

#[test]
fn every_crash_point_has_a_test() {
    let tested: BTreeSet<&str> = [
        WAVE_POINTS,
        BENCH_POINTS,
        HANDOVER_POINTS,
        OUTBOX_POINTS,
        EXCEPTION_POINTS,
        RETURN_POINTS,
        MIGRATE_POINTS,
        WAYBILL_POINTS,
    ]
    .concat()
    .iter()
    .map(|p| p.split('@').next().unwrap())
    .collect();
    let all: BTreeSet<&str> = POINTS.iter().copied().collect();
    assert_eq!(tested, all);
}

/// Run `f` for each point on its own thread (each with its own world), so the
/// waits (leases, processes) overlap.
fn each(points: &[&'static str], f: impl Fn(&'static str) + Sync) {
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = points.iter().map(|&p| (p, s.spawn(move || f(p)))).collect();
        for (p, h) in handles {
            if let Err(e) = h.join() {
                panic!("crash point {p}: {:?}", e.downcast_ref::<String>());
            }
        }
    });
}

/// What the audit trail says about each order's printing: (order, action) →
/// how many events.
fn print_audit(w: &World) -> BTreeMap<(String, String), u64> {
    let db = w.db();
    let mut stmt = db
        .prepare(
            "SELECT order_id, action, COUNT(*) FROM events WHERE order_id IS NOT NULL
               AND action IN ('tracking.allocated', 'tracking.voided', 'print.printed', 'print.warning', 'print.failed')
             GROUP BY order_id, action",
        )
        .unwrap();
    stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_wave_killed_at_each_point_is_finished_by_the_next_print() {
    // The same orders printed without a crash: the audit trail every crashed
    // and finished wave must match (including the order printed with a
    // warning: a character in no font, see `World::fixtures`).
    let twin = World::fixtures(N, CONFIG);
    ok(&twin.run(&["print"]));
    let expected = print_audit(&twin);
    assert!(
        expected.keys().any(|(_, a)| a == "print.warning"),
        "the fixtures print with no warning: {expected:?}"
    );
    drop(twin);
    each(WAVE_POINTS, |point| {
        let w = World::fixtures(N, CONFIG);
        let queued = w.st.status()["counts"]["queued"].as_u64().unwrap() as usize;
        w.crash(point, &["print"]);
        let resumed = w.json(&["print"]);
        assert!(
            !resumed["orders"].as_array().unwrap().is_empty(),
            "{point}: {resumed}"
        );
        let again = w.json(&["print"]);
        assert_eq!(
            again["orders"],
            json!([]),
            "{point}: printed twice: {again}"
        );
        check_printed(&w, queued);
        assert_eq!(print_audit(&w), expected, "{point}: the audit trail");
    });
}

#[test]
fn a_merged_wave_killed_at_each_point_prints_each_parcel_once() {
    let fixtures = read_json(&data("orders-200.json"));
    let id = |i: usize| fixtures[i]["id"].as_str().unwrap().to_string();
    let parcels: BTreeSet<BTreeSet<String>> = [
        vec![0, 3, 7],
        vec![2, 5],
        vec![1],
        vec![4],
        vec![6],
        vec![8],
        vec![9],
    ]
    .into_iter()
    .map(|p| p.into_iter().map(id).collect())
    .collect();
    each(
        &[
            "wave.plan.before_commit",
            "wave.chunk.before_commit@2",
            "wave.chunk.committed@1",
        ],
        |point| {
            let w = World::merged(N, CONFIG);
            w.crash(point, &["print"]);
            let resumed = w.json(&["print"]);
            assert!(
                !resumed["orders"].as_array().unwrap().is_empty(),
                "{point}: {resumed}"
            );
            let again = w.json(&["print"]);
            assert_eq!(
                again["orders"],
                json!([]),
                "{point}: printed twice: {again}"
            );
            // Every order printed once; each parcel under one live number of its lead.
            let db = w.db();
            let rows: Vec<(String, String)> = db
                .prepare(
                    "SELECT order_id, tracking_no FROM wave_orders WHERE printed_at IS NOT NULL",
                )
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(rows.len(), N, "{point}: {rows:?}");
            let mut by_number: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (order, number) in rows {
                by_number.entry(number).or_default().insert(order);
            }
            let got: BTreeSet<BTreeSet<String>> = by_number.values().cloned().collect();
            assert_eq!(got, parcels, "{point}");
            let live = w.live();
            assert_eq!(
                live.len(),
                parcels.len(),
                "{point}: one live number per parcel"
            );
            for (number, orders) in &by_number {
                assert!(
                    live.iter()
                        .any(|(o, (_, n))| n == number && orders.contains(o)),
                    "{point}: {number} is not live for one of {orders:?}"
                );
            }
            let queued: u64 = db
                .query_row(
                    "SELECT COUNT(*) FROM orders WHERE state = 'queued'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(queued, 0, "{point}");
        },
    );
}

#[test]
fn a_bench_killed_while_packing_packs_once() {
    each(BENCH_POINTS, |point| {
        let w = World::fixtures(3, CONFIG);
        let printed = w.json(&["print"]);
        let first = &printed["orders"][0];
        let (order, number) = (
            first["order_id"].as_str().unwrap(),
            first["tracking_no"].as_str().unwrap(),
        );
        let opened = w.json(&["scan", order]);
        assert_eq!(opened["code"], "order_opened", "{opened}");
        w.crash(point, &["scan", number]);
        // The operator scans the slip and the waybill again.
        let slip = w.json(&["scan", order]);
        let waybill = w.run(&["--json", "scan", number]);
        let after: Value = serde_json::from_slice(&waybill.stdout).unwrap();
        assert!(
            ["order_opened", "already_packed"].contains(&slip["code"].as_str().unwrap()),
            "{point}: {slip}"
        );
        assert!(
            ["packed", "already_packed"].contains(&after["code"].as_str().unwrap()),
            "{point}: {after}"
        );
        let state: String = w
            .db()
            .query_row("SELECT state FROM orders WHERE id = ?1", [order], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(state, "packed", "{point}");
        assert_eq!(w.events(order, "bench.packed"), 1, "{point}");
        assert_eq!(
            w.count("SELECT COUNT(*) FROM packings WHERE order_id = ?1", order),
            1
        );
    });
}

#[test]
fn a_handover_killed_while_closing_closes_once_with_its_manifest() {
    each(HANDOVER_POINTS, |point| {
        let w = World::fixtures(N, CONFIG);
        ok(&w.run(&["print"]));
        let live = w.live();
        let (courier, _) = live.values().next().unwrap().clone();
        let parcels: BTreeMap<String, (String, String)> = live
            .into_iter()
            .filter(|(_, (c, _))| *c == courier)
            .collect();
        let batch = w.scan_in(&parcels).remove(0);
        w.crash(point, &["handover", "close", "--batch", &batch]);
        let closed = w.json(&["handover", "close", "--batch", &batch]);
        assert_eq!(closed["count"], parcels.len(), "{point}: {closed}");
        check_closed(&w, &batch, &parcels);
        // And the write-back goes out once.
        w.sync_until_done();
        check_shipped(&w, &parcels);
    });
}

#[test]
fn a_sync_killed_at_each_send_writes_to_the_shop_once() {
    each(OUTBOX_POINTS, |point| {
        let w = World::fixtures(6, CONFIG);
        ok(&w.run(&["print"]));
        let live = w.live();
        let batches = w.scan_in(&live);
        for b in &batches {
            ok(&w.run(&["handover", "close", "--batch", b]));
        }
        w.crash(point, &["sync"]);
        w.sync_until_done();
        check_printed(&w, live.len());
        check_shipped(&w, &live);
    });
}

#[test]
fn an_out_of_stock_flag_killed_mid_send_reaches_the_shop_once() {
    each(EXCEPTION_POINTS, |point| {
        let w = World::fixtures(3, CONFIG);
        let printed = w.json(&["print"]);
        let order = printed["orders"][0]["order_id"]
            .as_str()
            .unwrap()
            .to_string();
        let shop = w.get(&format!("/v1/orders/{order}"));
        let sku = shop["items"][0]["sku"].as_str().unwrap().to_string();
        let short = w.json(&["short", &order, &sku]);
        assert!(short.is_object(), "{short}");
        w.crash(point, &["sync"]);
        w.sync_until_done();
        let shop = w.get(&format!("/v1/orders/{order}"));
        assert_eq!(shop["flag"], "blue", "{point}: {shop}");
        let ours: Vec<&Value> = shop["memos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["author"] == "测试员")
            .collect();
        assert_eq!(ours.len(), 1, "{point}: {ours:?}");
        assert_eq!(w.events(&order, "outbox.sent"), 1, "{point}");
        assert_eq!(w.events(&order, "bench.short"), 1, "{point}");
        check_numbers(&w);
    });
}

#[test]
fn a_returns_flag_killed_mid_send_reaches_the_shop_once() {
    each(RETURN_POINTS, |point| {
        let w = World::fixtures(3, CONFIG);
        ok(&w.run(&["print"]));
        let live = w.live();
        let (order, (courier, _)) = live.iter().next().unwrap();
        let parcel: BTreeMap<String, (String, String)> =
            [(order.clone(), live[order].clone())].into();
        let batch = w.scan_in(&parcel).remove(0);
        ok(&w.run(&["handover", "close", "--batch", &batch]));
        w.sync_until_done();
        let shop = w.get(&format!("/v1/orders/{order}"));
        let sku = shop["items"][0]["sku"].as_str().unwrap().to_string();
        let got = w.json(&["returns", "receive", order, "--item", &sku]);
        let memo = got["memo"].as_str().unwrap_or_else(|| panic!("{got}"));
        w.crash(point, &["sync"]);
        w.sync_until_done();
        let shop = w.get(&format!("/v1/orders/{order}"));
        assert_eq!(shop["flag"], "blue", "{point} ({courier}): {shop}");
        let ours: Vec<&Value> = shop["memos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["text"] == memo)
            .collect();
        assert_eq!(ours.len(), 1, "{point}: {shop}");
        // Shipment, done flag, returns flag: each acknowledged once.
        assert_eq!(w.events(order, "outbox.sent"), 3, "{point}");
        assert_eq!(w.events(order, "returns.received"), 1, "{point}");
    });
}

/// Start `args` and kill it (SIGKILL) after `after`: `None` when it was
/// killed while running, else how long it took to finish (successfully).
fn kill_after(w: &World, args: &[&str], after: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut child = w
        .cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = started + after;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    finished_or_killed(child, args, started)
}

/// Start `station print` and kill it (SIGKILL) `jitter` after the wave has at
/// least `target` orders printed: `None` when it was killed while running,
/// else how long it took to finish.
fn kill_print_at(w: &World, target: u64, jitter: Duration) -> Option<Duration> {
    kill_at_progress(w, &["print"], printed_in_waves, target, jitter)
}

/// Start `args` and kill it (SIGKILL) `jitter` after `progress` (read from
/// the database) reaches `target`: `None` when it was killed while running,
/// else how long it took to finish. Aimed at progress, not at a time, a kill
/// lands wherever the machine's speed puts the work.
fn kill_at_progress(
    w: &World,
    args: &[&str],
    progress: fn(&Connection) -> station::store::sql::Result<u64>,
    target: u64,
    jitter: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let mut child = w
        .cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let db = w.db();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if progress(&db).unwrap_or(0) >= target {
            std::thread::sleep(jitter);
            child.kill().unwrap();
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{args:?} made no progress"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    finished_or_killed(child, args, started)
}

/// Sends to the shop begun so far (each counted before its request goes out).
fn sends_begun(db: &Connection) -> station::store::sql::Result<u64> {
    db.query_row(
        "SELECT CAST(COALESCE(SUM(attempts), 0) AS BIGINT) FROM outbox",
        [],
        |r| r.get(0),
    )
}

/// Orders printed so far in the station's waves.
fn printed_in_waves(db: &Connection) -> station::store::sql::Result<u64> {
    db.query_row(
        "SELECT COUNT(*) FROM wave_orders WHERE printed_at IS NOT NULL",
        [],
        |r| r.get(0),
    )
}

/// Wait for a child that finished or was just sent SIGKILL: `None` when the
/// kill ended it, else how long it ran (it must have succeeded). A child
/// that ended on its own just before the kill counts as finished.
fn finished_or_killed(
    child: std::process::Child,
    args: &[&str],
    started: Instant,
) -> Option<Duration> {
    let out = child.wait_with_output().unwrap();
    if out.status.signal() == Some(9) {
        return None;
    }
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(started.elapsed())
}

#[test]
fn random_kills_during_a_2000_order_wave_a_handover_and_a_sync() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("random kills: seed {seed} (rerun with CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let config = CONFIG.replace("chunk_size = 4", "chunk_size = 20");
    let w = World::generated(2000, 5, &config);
    let queued = w.st.status()["counts"]["queued"].as_u64().unwrap() as usize;
    assert!(queued >= 1900, "{queued} queued");

    // The wave: 20 kills while it is unfinished, then print to the end. Each
    // kill is aimed at a random point of the wave's progress — a number of
    // orders printed, drawn between where the last run left it and its fair
    // share of what is left — plus a random 0–60 ms, so the kills land in
    // every step (start-up, resuming, rendering, writing, committing) all
    // through the wave, and never run out of wave however fast the machine
    // (a timed window did, once dependencies were built optimised).
    let mut kills = 0u64;
    let mut last = 0u64;
    let end = queued as u64 - 200;
    while kills < 20 {
        let share = end.saturating_sub(last) / (20 - kills);
        let target = last + rng.random_range(0..=share);
        let jitter = Duration::from_millis(rng.random_range(0..=60));
        let finished = kill_print_at(&w, target, jitter);
        assert!(
            finished.is_none(),
            "the wave finished after {kills} kills (aimed at {target} orders + {jitter:?})"
        );
        kills += 1;
        last = printed_in_waves(&w.db()).unwrap();
    }
    let wave_kills = kills;
    let wave_done_at = Instant::now();
    let rest = w.json(&["print"]);
    assert!(rest["resumed"] == true, "{}", rest["resumed"]);
    let finish = wave_done_at.elapsed();
    let live = check_printed(&w, queued);
    eprintln!(
        "wave: {wave_kills} kills, {last} of {queued} orders printed by the killed runs; the last run took {finish:?}"
    );

    // Handovers of three couriers' parcels (20 each), each close killed 2-4
    // times at random moments (in a window as long as a close takes here),
    // then closed.
    let mut couriers: Vec<String> = live.values().map(|(c, _)| c.clone()).collect();
    couriers.dedup();
    let mut parcels: BTreeMap<String, (String, String)> = BTreeMap::new();
    for courier in couriers.iter().take(3) {
        parcels.extend(
            live.iter()
                .filter(|(_, (c, _))| c == courier)
                .take(20)
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    let batches = w.scan_in(&parcels);
    let mut close_kills = 0;
    let mut max_ms = 300u64;
    for batch in &batches {
        let close = ["handover", "close", "--batch", batch.as_str()];
        for _ in 0..rng.random_range(2..=4) {
            let ms = rng.random_range(5..=max_ms);
            match kill_after(&w, &close, Duration::from_millis(ms)) {
                None => close_kills += 1,
                Some(took) => max_ms = (took.as_millis() as u64).max(10),
            }
        }
        let closed = w.json(&close);
        assert_eq!(closed["batch_id"], batch.as_str(), "{closed}");
    }
    for batch in &batches {
        let courier = w
            .db()
            .query_row(
                "SELECT courier FROM handovers WHERE id = ?1",
                [batch],
                |r| r.get::<_, String>(0),
            )
            .unwrap();
        let mine = parcels
            .iter()
            .filter(|(_, (c, _))| *c == courier)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        check_closed(&w, batch, &mine);
    }

    // The sync, killed six times, then run until nothing is pending. Like the
    // wave's, each kill is aimed at a point of the sync's progress (sends
    // begun, drawn between where the last run left it and its fair share of
    // what is left, 40 sends short of the end) plus 0–10 ms, so the kills
    // land in start-up, claiming, sending and acknowledging whatever the
    // machine's speed: a timed window once let the first sync finish the
    // whole outbox, and every later one then found nothing to kill.
    let mut sync_kills = 0u64;
    let sends = 2 * parcels.len() as u64;
    let end = sends - 40;
    let mut last = 0u64;
    for k in 0..6u64 {
        let share = end.saturating_sub(last) / (6 - k);
        let target = last + rng.random_range(0..=share);
        let jitter = Duration::from_millis(rng.random_range(0..=10));
        let finished = kill_at_progress(&w, &["sync"], sends_begun, target, jitter);
        assert!(
            finished.is_none(),
            "the sync finished after {sync_kills} kills (aimed at {target} of {sends} sends + {jitter:?})"
        );
        sync_kills += 1;
        last = sends_begun(&w.db()).unwrap();
    }
    w.sync_until_done();
    check_shipped(&w, &parcels);
    eprintln!(
        "random kills (seed {seed}): {wave_kills} during the wave, {close_kills} during the closes, {sync_kills} during the sync; {:?} in all",
        started.elapsed()
    );
    assert!(
        close_kills >= 1 && sync_kills >= 1,
        "{close_kills} {sync_kills}"
    );
}
