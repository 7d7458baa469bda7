//! A table of shop faults, each run against the real binary and the real
//! simulator over loopback HTTP: what the simulator does wrong, what the
//! station does, and what must come out. Every row prints one line
//! (`cargo test --test faults -- --nocapture` shows the table):
//!
//! | scenario | shop fault | station | outcome |
//!
//! The invariants checked throughout: a pull never skips an order (the ids
//! stored are compared with the simulator's full list), a failed or broken
//! pull never claims completeness, the outbox converges after an outage with
//! exactly one shipment and one 已交接 memo per order, and nothing is retried
//! that must not be (requests are counted in the simulator's log).

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::{Duration, Instant};

/// Prints one row of the scenario table.
fn row(scenario: &str, fault: &str, station: &str, outcome: &str) {
    println!("| {scenario:<24} | {fault:<34} | {station:<22} | {outcome} |");
}

/// The first `n` fixture orders, as a JSON Lines file in the station's directory.
fn orders_file(st: &Station, n: usize) -> std::path::PathBuf {
    let all = read_json(&data("orders-200.json"));
    let text: String = all.as_array().unwrap()[..n]
        .iter()
        .map(|o| format!("{o}\n"))
        .collect();
    st.write("orders.jsonl", &text)
}

fn fixture_ids(n: usize) -> BTreeSet<String> {
    read_json(&data("orders-200.json")).as_array().unwrap()[..n]
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every order id the station holds, in any state.
fn stored_ids(st: &Station) -> BTreeSet<String> {
    let conn = st.store().into_connection();
    let mut stmt = conn.prepare("SELECT id FROM orders").unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn events(st: &Station, action: &str) -> Vec<String> {
    let store = st.store();
    store
        .events(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| e.detail)
        .collect()
}

fn entries(sim: &Sim) -> Vec<Value> {
    sim.log().as_array().unwrap().clone()
}

/// `/v1` requests in the log (the admin ones are the test's own).
fn v1(log: &[Value]) -> Vec<&Value> {
    log.iter()
        .filter(|e| e["path"].as_str().unwrap().starts_with("/v1/"))
        .collect()
}

fn status_count(log: &[Value], status: u64) -> usize {
    v1(log).iter().filter(|e| e["status"] == status).count()
}

fn pull_json(st: &Station, sim: &Sim) -> Value {
    serde_json::from_str(&ok(&st.pull(sim, &["--json"]))).expect("pull --json")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn no_panic(out: &Output) {
    let err = stderr(out);
    assert!(!err.contains("panicked at"), "{err}");
}

#[test]
fn unavailable_20_percent() {
    let st = Station::new();
    let file = orders_file(&st, 100);
    st.write("station.toml", "[shop]\npage_size = 5\n");
    let sim = Sim::start(&file, "faults-503", &["--fail-rate", "0.2", "--seed", "5"]);
    let started = Instant::now();
    let report = pull_json(&st, &sim);
    let log = entries(&sim);
    let (failed, total) = (status_count(&log, 503), v1(&log).len());
    assert_eq!(report["new"], 100, "{report}");
    assert_eq!(stored_ids(&st), fixture_ids(100), "no order skipped");
    assert!(failed >= 1, "the fault happened: {log:?}");
    assert_eq!(events(&st, "pull.finished").len(), 1);
    row(
        "20% 503",
        "--fail-rate 0.2 (100 orders, 20 pages)",
        "pull",
        &format!(
            "100/100 stored; {failed} of {total} requests were 503, each retried; {} ms",
            started.elapsed().as_millis()
        ),
    );
}

#[test]
fn latency_300_ms() {
    let st = Station::new();
    let file = orders_file(&st, 30);
    st.write(
        "station.toml",
        "[shop]\npage_size = 10\nrequest_timeout_secs = 2\n",
    );
    let sim = Sim::start(&file, "faults-slow", &["--latency-ms", "300"]);
    let started = Instant::now();
    let report = pull_json(&st, &sim);
    let took = started.elapsed();
    assert_eq!(report["new"], 30, "{report}");
    assert_eq!(stored_ids(&st), fixture_ids(30));
    let requests = v1(&entries(&sim)).len();
    assert_eq!(
        requests, 3,
        "3 pages, no retry: a slow answer is not a failure"
    );
    assert!(took >= Duration::from_millis(900), "{took:?}");
    row(
        "300 ms latency",
        "--latency-ms 300 (30 orders, 3 pages)",
        "pull",
        &format!(
            "30/30 stored; {requests} requests, none retried; {} ms",
            took.as_millis()
        ),
    );
}

#[test]
fn overlapping_pages() {
    let st = Station::new();
    let file = orders_file(&st, 60);
    st.write("station.toml", "[shop]\npage_size = 10\n");
    let sim = Sim::start(&file, "faults-overlap", &["--overlap", "4"]);
    let report = pull_json(&st, &sim);
    assert_eq!(report["new"], 60, "{report}");
    let dups = report["duplicates"].as_u64().unwrap();
    assert!(dups >= 20, "pages really overlapped: {report}");
    assert_eq!(stored_ids(&st), fixture_ids(60));
    // Each order was taken in once, not once per copy.
    let store = st.store();
    for id in fixture_ids(60) {
        let queued = store
            .events(Some(&id))
            .unwrap()
            .iter()
            .filter(|e| e.action == "intake.queued")
            .count();
        assert_eq!(queued, 1, "{id}");
    }
    row(
        "overlapping pages",
        "--overlap 4 (60 orders, page 10)",
        "pull",
        &format!(
            "60/60 stored once each; {dups} repeated copies dropped over {} pages",
            report["pages"]
        ),
    );
}

#[test]
fn repeating_cursor() {
    let st = Station::new();
    let file = orders_file(&st, 30);
    st.write(
        "station.toml",
        "[shop]\npage_size = 10\ntotal_timeout_secs = 5\n",
    );
    let sim = Sim::start(&file, "faults-cursor", &[]);
    ok(&st.pull(&sim, &[]));
    assert_eq!(st.status()["counts"]["queued"], 30);
    let before = entries(&sim).len();
    let finished_before = events(&st, "pull.finished").len();

    sim.set_faults(json!({"repeat_cursor": true}));
    let out = st.pull(&sim, &[]);
    no_panic(&out);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("paging is broken") && err.contains("page 2"),
        "{err}"
    );
    let log = entries(&sim);
    let new: Vec<&Value> = v1(&log[before..]).into_iter().collect();
    // Page 1, then page 2 whose cursor repeats: the pull stops there, and it
    // never concludes anything from the orders it did not see.
    assert_eq!(new.len(), 2, "{new:?}");
    assert!(
        new.iter()
            .all(|e| e["path"].as_str().unwrap().starts_with("/v1/orders?")),
        "no direct reads of 'missing' orders: {new:?}"
    );
    assert_eq!(events(&st, "pull.finished").len(), finished_before);
    let failed = events(&st, "pull.failed");
    assert!(
        failed.last().unwrap().contains("paging is broken"),
        "{failed:?}"
    );
    let status = st.status();
    assert_eq!(
        status["counts"]["queued"], 30,
        "nothing left the queue: {status}"
    );
    assert_eq!(
        status["counts"]["left_queue"].as_u64().unwrap_or(0),
        0,
        "{status}"
    );

    // On a fresh station the first page is kept, and no more.
    let fresh = Station::new();
    fresh.write(
        "station.toml",
        "[shop]\npage_size = 10\ntotal_timeout_secs = 5\n",
    );
    let out = fresh.pull(&sim, &[]);
    assert_eq!(out.status.code(), Some(4));
    let kept = stored_ids(&fresh);
    assert_eq!(kept.len(), 10, "{kept:?}");
    assert!(kept.is_subset(&fixture_ids(30)));
    row(
        "repeating cursor",
        "repeat_cursor (30 orders, page 10)",
        "pull",
        "exit 4 'paging is broken … page 2'; 2 requests; page 1 kept (10), no pull.finished, nothing marked gone",
    );
}

#[test]
fn a_page_failing_mid_pull() {
    let st = Station::new();
    let file = orders_file(&st, 50);
    st.write(
        "station.toml",
        "[shop]\npage_size = 10\ntotal_timeout_secs = 2\n",
    );
    let sim = Sim::start(&file, "faults-page", &["--fail-page", "3"]);
    let out = st.pull(&sim, &[]);
    no_panic(&out);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("list page 3"), "{err}");
    assert_eq!(stored_ids(&st).len(), 20, "pages 1 and 2 kept");
    assert!(events(&st, "pull.finished").is_empty());
    let log = entries(&sim);
    let tries = status_count(&log, 503);
    assert!(
        tries >= 2,
        "a 503 page is retried until the deadline: {tries}"
    );

    sim.set_faults(json!({}));
    let report = pull_json(&st, &sim);
    assert_eq!(report["new"], 30, "{report}");
    assert_eq!(stored_ids(&st), fixture_ids(50), "nothing skipped");
    row(
        "page fails mid-pull",
        "--fail-page 3 (50 orders, page 10)",
        "pull, then pull again",
        &format!("exit 3 naming list page 3 after {tries} tries; 20 kept; next pull: +30 = 50/50"),
    );
}

#[test]
fn rate_limited_429_with_retry_after() {
    let st = Station::new();
    let file = orders_file(&st, 20);
    st.write(
        "station.toml",
        "[shop]\npage_size = 5\ntotal_timeout_secs = 60\n",
    );
    let sim = Sim::start(
        &file,
        "faults-429",
        &["--rate-limit", "0.4", "--retry-after", "1", "--seed", "3"],
    );
    let report = pull_json(&st, &sim);
    assert_eq!(report["new"], 20, "{report}");
    assert_eq!(stored_ids(&st), fixture_ids(20));
    let log = entries(&sim);
    let reqs = v1(&log);
    let at = |e: &Value| chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap();
    let mut gaps = Vec::new();
    for pair in reqs.windows(2) {
        if pair[0]["status"] == 429 {
            gaps.push((at(pair[1]) - at(pair[0])).num_milliseconds());
        }
    }
    assert!(!gaps.is_empty(), "no 429 happened: {log:?}");
    // Retry-After is a floor: never sooner.
    assert!(gaps.iter().all(|&g| g >= 1000), "{gaps:?}");
    row(
        "429 + Retry-After: 1",
        "--rate-limit 0.4 --retry-after 1",
        "pull",
        &format!(
            "20/20 stored; {} 429s, next request after {}..{} ms (floor 1000)",
            gaps.len(),
            gaps.iter().min().unwrap(),
            gaps.iter().max().unwrap()
        ),
    );
}

/// `Retry-After` as an HTTP-date (RFC 9110 allows both forms). The date has
/// whole seconds, so "2 s from now" means a wait of more than 1 s.
#[test]
fn rate_limited_429_with_retry_after_as_a_date() {
    let st = Station::new();
    let file = orders_file(&st, 15);
    st.write(
        "station.toml",
        "[shop]\npage_size = 5\ntotal_timeout_secs = 60\n",
    );
    let sim = Sim::start(&file, "faults-429-date", &[]);
    sim.set_faults(
        json!({"rate_limit_rate": 0.4, "retry_after_secs": 2, "retry_after_date": true, "seed": 3}),
    );
    let report = pull_json(&st, &sim);
    assert_eq!(report["new"], 15, "{report}");
    let log = entries(&sim);
    let reqs = v1(&log);
    let at = |e: &Value| chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap();
    let gaps: Vec<i64> = reqs
        .windows(2)
        .filter(|p| p[0]["status"] == 429)
        .map(|p| (at(p[1]) - at(p[0])).num_milliseconds())
        .collect();
    assert!(!gaps.is_empty(), "no 429 happened: {log:?}");
    assert!(
        gaps.iter().all(|&g| g >= 1000),
        "the date was not honoured: {gaps:?}"
    );
    row(
        "429 + Retry-After: date",
        "retry_after_date, 2 s ahead",
        "pull",
        &format!(
            "15/15 stored; {} 429s, next request after {}..{} ms (floor 1000)",
            gaps.len(),
            gaps.iter().min().unwrap(),
            gaps.iter().max().unwrap()
        ),
    );
}

#[test]
fn an_order_changed_between_pages_is_not_skipped() {
    let st = Station::new();
    let file = orders_file(&st, 60);
    st.write("station.toml", "[shop]\npage_size = 10\n");
    let sim = Sim::start(&file, "faults-mutate", &[]);
    let ids: Vec<String> = read_json(&data("orders-200.json")).as_array().unwrap()[..60]
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    // The pull is held right after it stored page 1 (a test pause point), the
    // shop changes orders behind and ahead of the cursor and moves one off the
    // pull flag, then the pull goes on: the change falls between two pages by
    // construction, not by timing.
    let pause = st.dir.path().join("pause");
    std::fs::create_dir(&pause).unwrap();
    let mut child = st
        .cmd()
        .args(["--json", "pull", "--shop-url", &sim.url])
        .env("STATION_SHOP_TOKEN", &sim.token)
        .env("STATION_PAUSE_AT", "pull.page.stored")
        .env("STATION_PAUSE_DIR", &pause)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_paused(&pause, &mut child);
    sim.mutate(&ids[3], json!({"address": "已读页上改的地址 1 号"}));
    sim.mutate(&ids[55], json!({"address": "未读页上改的地址 2 号"}));
    sim.mutate(&ids[5], json!({"flag": "red"}));
    release_pause(&pause);
    let out = child.wait_with_output().unwrap();
    let report: Value = serde_json::from_str(&ok(&out)).unwrap();
    let log = entries(&sim);
    let lists_before_mutation = log
        .iter()
        .take_while(|e| !e["path"].as_str().unwrap().starts_with("/admin/orders"))
        .filter(|e| e["path"].as_str().unwrap().starts_with("/v1/orders?"))
        .count();
    let lists = log
        .iter()
        .filter(|e| e["path"].as_str().unwrap().starts_with("/v1/orders?"))
        .count();
    assert!(
        lists_before_mutation >= 1 && lists_before_mutation < lists,
        "the change fell between pages: {lists_before_mutation} of {lists}"
    );
    let store = st.store();
    assert_eq!(stored_ids(&st), fixture_ids(60), "{report}");
    let o55 = store.order(&ids[55]).unwrap().unwrap();
    assert_eq!(o55.order.recipient.address, "未读页上改的地址 2 号");
    // The order changed behind the cursor was seen at its old version; the
    // next pull brings the change, and the flag change takes it out.
    ok(&st.pull(&sim, &[]));
    let o3 = store.order(&ids[3]).unwrap().unwrap();
    assert_eq!(o3.order.recipient.address, "已读页上改的地址 1 号");
    assert_eq!(
        store.order(&ids[5]).unwrap().unwrap().state.as_str(),
        "left_queue"
    );
    assert_eq!(st.status()["counts"]["queued"], 59);
    row(
        "mutations while pulling",
        "3 orders changed after page 1",
        "pull, then pull again",
        &format!(
            "60/60 stored; change ahead of cursor taken at once, behind it on the next pull (changed after {lists_before_mutation} of {lists} pages)"
        ),
    );
}

#[test]
fn refusals_are_not_retried_by_pull() {
    let mut outcomes = Vec::new();
    for status in [400u16, 401, 403, 404, 409] {
        let st = Station::new();
        let file = orders_file(&st, 5);
        let sim = Sim::start(
            &file,
            "faults-4xx",
            &["--force-status", &status.to_string()],
        );
        let out = st.pull(&sim, &[]);
        no_panic(&out);
        let err = stderr(&out);
        assert!(!out.status.success(), "{status}: {err}");
        let requests = v1(&entries(&sim)).len();
        assert_eq!(
            requests, 1,
            "HTTP {status} was retried ({requests} requests): {err}"
        );
        let said = match status {
            401 => err.contains("refused the token"),
            403 => err.contains("HTTP 403") && err.contains("permissions"),
            404 => err.contains("HTTP 404") && err.contains("STATION_SHOP_URL"),
            _ => err.contains(&format!("HTTP {status}")),
        };
        assert!(said, "{status}: {err}");
        assert!(stored_ids(&st).is_empty());
        outcomes.push(format!("{status}→exit {}", out.status.code().unwrap()));
    }
    row(
        "4xx on the list",
        "--force-status 400/401/403/404/409",
        "pull",
        &format!("1 request each, never retried: {}", outcomes.join(", ")),
    );
}

/// Fast retries and a 1-second outbox worker, so a scaled outage takes seconds.
fn outbox_config(extra: &str) -> String {
    format!(
        "[shop]\nrequest_timeout_secs = 1\n\n[outbox]\nsend_timeout_secs = 1\nretry_first_secs = 1\nretry_max_secs = 4\ninterval_secs = 1\n\n[handover]\nrequire_packed = false\n\n{extra}"
    )
}

/// Pull, print and hand every parcel over with the CLI. Returns id → tracking number.
fn hand_over(st: &Station, sim: &Sim) -> BTreeMap<String, String> {
    let run = |args: &[&str]| -> Value {
        let out = st
            .cmd()
            .args(args)
            .env("STATION_SHOP_URL", &sim.url)
            .env("STATION_SHOP_TOKEN", &sim.token)
            .output()
            .unwrap();
        serde_json::from_str(&ok(&out)).unwrap()
    };
    ok(&st.pull(sim, &[]));
    let printed = run(&["--json", "print"]);
    let mut by_courier: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for p in printed["orders"].as_array().unwrap() {
        by_courier
            .entry(p["courier"].as_str().unwrap().into())
            .or_default()
            .push((
                p["order_id"].as_str().unwrap().into(),
                p["tracking_no"].as_str().unwrap().into(),
            ));
    }
    let mut handed = BTreeMap::new();
    for (courier, parcels) in by_courier {
        let batch = run(&["--json", "handover", "open", "--courier", &courier])["id"]
            .as_str()
            .unwrap()
            .to_string();
        for (_, tracking) in &parcels {
            run(&["--json", "handover", "scan", "--batch", &batch, tracking]);
        }
        run(&["--json", "handover", "close", "--batch", &batch]);
        handed.extend(parcels);
    }
    handed
}

fn shop_get(sim: &Sim, path: &str) -> Value {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            station::shop::client::http()
                .build()
                .unwrap()
                .get(format!("{}{path}", sim.url))
                .bearer_auth(&sim.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
}

/// One shipment with the right number and one 已交接 memo per order, green.
fn exactly_once_on_the_shop(sim: &Sim, handed: &BTreeMap<String, String>) {
    let shipments = shop_get(sim, "/admin/shipments");
    let mut per_order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in shipments.as_array().unwrap() {
        per_order
            .entry(s["order_id"].as_str().unwrap().into())
            .or_default()
            .push(s["tracking_no"].as_str().unwrap().into());
    }
    for (id, tracking) in handed {
        assert_eq!(
            per_order.get(id),
            Some(&vec![tracking.clone()]),
            "{shipments}"
        );
        let order = shop_get(sim, &format!("/v1/orders/{id}"));
        assert_eq!(order["flag"], "green", "{order}");
        let memos = order["memos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["text"].as_str().unwrap().starts_with("已交接"))
            .count();
        assert_eq!(memos, 1, "{order}");
    }
    assert_eq!(per_order.len(), handed.len());
}

/// A 10-minute outage with the outbox's 300-second cap, scaled 1:75: the shop
/// is down for 8 s while `serve`'s outbox worker retries with a 4-second cap.
#[test]
fn an_outage_during_sync_backs_off_and_converges_once() {
    let st = Station::new();
    let file = orders_file(&st, 6);
    st.write(
        "station.toml",
        &outbox_config(&operators_toml(&[("小王", "2468")])),
    );
    let sim = Sim::start(&file, "faults-outage", &[]);
    let handed = hand_over(&st, &sim);
    assert_eq!(handed.len(), 6);
    let outage = Duration::from_secs(8);
    let from = entries(&sim).len();
    sim.set_faults(json!({"outage_ms": outage.as_millis() as u64}));
    let down_since = Instant::now();
    let serve = Serve::start(&st, Some(&sim));
    let deadline = down_since + outage + Duration::from_secs(20);
    let converged = loop {
        let status = st.status();
        if status["outbox"]["pending"] == 0 {
            break down_since.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "not converged: {}",
            status["outbox"]
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(serve);
    assert!(converged >= outage, "sent during the outage? {converged:?}");
    let log = entries(&sim);
    let during: Vec<&Value> = v1(&log[from..])
        .into_iter()
        .filter(|e| e["status"] == 503)
        .collect();
    let after = v1(&log[from..]).len() - during.len();
    // Backing off: without it a 1-second worker with 1-second sends and client
    // retries every 100-400 ms would send ~5 requests a second (~40 in 8 s).
    assert!(
        !during.is_empty() && during.len() <= 25,
        "{} requests during the outage",
        during.len()
    );
    exactly_once_on_the_shop(&sim, &handed);
    let status = st.status();
    assert_eq!(status["counts"]["shipped"], 6, "{status}");
    assert_eq!(status["outbox"]["alerts"], json!([]), "{status}");
    row(
        "10-min outage in sync",
        "outage_ms 8000 (scaled 1:75), 6 parcels",
        "serve's outbox worker",
        &format!(
            "{} requests in 8 s of outage (backed off), converged {:.1} s after it ended with {after} requests; 6 shipments, 6 green flags, 1 memo each",
            during.len(),
            (converged - outage).as_secs_f64()
        ),
    );
}

#[test]
fn refusals_are_not_retried_by_sync() {
    let st = Station::new();
    let file = orders_file(&st, 2);
    st.write("station.toml", &outbox_config(""));
    let sim = Sim::start(&file, "faults-sync-4xx", &[]);
    let handed = hand_over(&st, &sim);
    sim.set_faults(json!({"force_status": 403}));
    let from = entries(&sim).len();
    let out = st
        .cmd()
        .args(["--json", "sync"])
        .env("STATION_SHOP_URL", &sim.url)
        .env("STATION_SHOP_TOKEN", &sim.token)
        .output()
        .unwrap();
    no_panic(&out);
    let report: Value = serde_json::from_str(&ok(&out)).unwrap();
    let log = entries(&sim);
    let posts: Vec<&Value> = v1(&log[from..]);
    // One POST per shipment, none repeated, and no flag (it waits for its shipment).
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(posts.iter().all(|e| e["method"] == "POST"), "{posts:?}");
    let alerts = report["outbox"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2, "{report}");
    for a in alerts {
        let reason = a["reason"].as_str().unwrap();
        assert!(reason.contains("HTTP 403"), "{reason}");
        assert!(handed.contains_key(a["id"].as_str().unwrap()));
    }
    // Syncing again sends nothing: an alert waits for a person.
    let before = entries(&sim).len();
    ok(&st
        .cmd()
        .args(["sync"])
        .env("STATION_SHOP_URL", &sim.url)
        .env("STATION_SHOP_TOKEN", &sim.token)
        .output()
        .unwrap());
    assert_eq!(v1(&entries(&sim)[before..]).len(), 0);
    row(
        "403 on write-back",
        "--force-status 403, 2 parcels",
        "sync, then sync again",
        "1 POST per shipment, 0 retries, 2 alerts naming HTTP 403; next sync sends nothing",
    );
}
