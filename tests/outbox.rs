//! The write-back outbox end to end: the real binary and the real simulator
//! over loopback. Parcels are pulled, printed and handed over with the CLI
//! (`station handover open|scan|close`); `station sync` then writes every order
//! back to the shop — through a shop that answers 503 for a while and a station
//! killed (SIGKILL) in the middle of its syncs — and the shop must end with
//! exactly one shipment and one 已交接 memo per order, every order green.

mod common;

use common::*;
use serde_json::{Value, json};
use station::store::SendKind;
use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Fast retries, so a test spends seconds, not minutes, waiting out backoffs.
const CONFIG: &str = "[shop]\nrequest_timeout_secs = 1\n\n[outbox]\nsend_timeout_secs = 1\nretry_first_secs = 1\nretry_max_secs = 2\n\n[handover]\nrequire_packed = false\n";

struct Shop {
    st: Station,
    sim: Sim,
}

impl Shop {
    /// `n` fixture orders on the simulator; the station configured for it.
    fn start(n: usize) -> Shop {
        let st = Station::new();
        let all = read_json(&data("orders-200.json"));
        let text: String = all.as_array().unwrap()[..n]
            .iter()
            .map(|o| format!("{o}\n"))
            .collect();
        let file = st.write("orders.jsonl", &text);
        st.write("station.toml", CONFIG);
        let sim = Sim::start(&file, "outbox-token", &[]);
        Shop { st, sim }
    }

    fn cmd(&self) -> Command {
        self.st.cmd_with_shop(&self.sim)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        serde_json::from_str(&ok(&out)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Pull, print, and hand every printed parcel over (one batch per courier,
    /// closed). Returns order id → tracking number.
    fn hand_everything_over(&self) -> BTreeMap<String, String> {
        ok(&self.st.pull(&self.sim, &[]));
        let printed = self.json(&["--json", "print"]);
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
            let opened = self.json(&["--json", "handover", "open", "--courier", &courier]);
            let batch = opened["id"].as_str().unwrap().to_string();
            for (_, tracking) in &parcels {
                ok(&self.run(&["handover", "scan", "--batch", &batch, tracking]));
            }
            let closed = self.json(&["--json", "handover", "close", "--batch", &batch]);
            assert_eq!(closed["count"], parcels.len(), "{closed}");
            handed.extend(parcels);
        }
        handed
    }

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

    /// The order on the shop, read with the faults off (admin reads are never faulted,
    /// but `/v1` reads are).
    fn shop_order(&self, id: &str) -> Value {
        let order = self.get(&format!("/v1/orders/{id}"));
        assert_eq!(order["id"], id, "{order}");
        order
    }

    /// The station's 已交接 memos on a shop order.
    fn handover_memos(order: &Value) -> Vec<Value> {
        order["memos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["author"] == "测试员" && m["text"].as_str().unwrap().starts_with("已交接")
            })
            .cloned()
            .collect()
    }

    fn shipments(&self) -> Vec<Value> {
        self.get("/admin/shipments").as_array().unwrap().clone()
    }
}

#[test]
fn every_order_ends_green_once_through_outages_and_kills() {
    let shop = Shop::start(10);
    let handed = shop.hand_everything_over();
    assert_eq!(handed.len(), 10);

    // The shop is down when the batches close: a sync ends quickly, exits 0 and
    // says what waits.
    shop.sim.set_faults(json!({"unavailable_rate": 1.0}));
    let asked_before = shop.sim.log().as_array().unwrap().len();
    let down = shop.run(&["sync"]);
    let text = ok(&down);
    // It gives up on the pass after one send's retries, instead of trying
    // every pending send against a shop that is down.
    let asked = shop.sim.log().as_array().unwrap()[asked_before..]
        .iter()
        .filter(|e| e["path"].as_str().unwrap_or("").starts_with("/v1/"))
        .count();
    assert!(
        (1..=8).contains(&asked),
        "{asked} requests to a shop that is down"
    );
    assert!(text.starts_with("sent 0, pending 20 (oldest "), "{text}");
    assert!(text.contains("alerts 0"), "{text}");
    assert!(text.contains("the shop is not answering"), "{text}");
    let status = shop.st.status();
    assert_eq!(status["outbox"]["pending"], 20, "{status}");
    assert_eq!(status["counts"]["handed_over"], 10, "{status}");
    let status_text = ok(&shop.run(&["status"]));
    assert!(
        status_text.contains("Write-back to the shop: 20 sends pending for 10 orders"),
        "{status_text}"
    );

    // Then it limps: slow, and one request in three fails. Syncs are killed
    // (SIGKILL) mid-pass, again and again, and restarted: each kill aimed at
    // a point of the sync's progress (the N-th send about to go out, the N-th
    // answer in but not recorded), never at a time.
    shop.sim.set_faults(
        json!({"unavailable_rate": 0.3, "rate_limit_rate": 0.05, "retry_after_secs": 0, "latency_ms": 80, "seed": 4}),
    );
    // Each run is aimed at a kind still pending: the second shipment (or
    // flag) answered but not recorded, or about to go out.
    let mut kills = Vec::new();
    for run in 0..6 {
        // Every pending send due now (as if its backoff or a killed sync's
        // lease had run out), so what the sync reaches does not depend on time.
        let due = all_due(shop.st.store());
        let count = |k: SendKind| due.iter().filter(|d| **d == k).count();
        let stage = if run % 2 == 0 { "answered" } else { "sending" };
        let at = if count(SendKind::Shipment) >= 2 {
            format!("outbox.shipment.{stage}@2")
        } else if count(SendKind::Flag) >= 2 {
            format!("outbox.flag.{stage}@2")
        } else {
            break;
        };
        let out = shop
            .cmd()
            .arg("sync")
            .env("STATION_CRASH_AT", &at)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code().is_none() && err.contains("SIGKILL"),
            "the sync was not killed at {at}: {err}"
        );
        kills.push(at);
    }
    assert!(kills.len() >= 4, "{kills:?}");
    // The kills cut passes short: some sends went through, some still wait.
    let mid = shop.st.status();
    let pending = mid["outbox"]["pending"].as_u64().unwrap();
    assert!((1..20).contains(&pending), "{}", mid["outbox"]);

    // Then writes are carried out but their answers are lost (all of them):
    // the station must send again, and only the shop's idempotency (the same
    // tracking number; if_version and the identical memo) keeps it at one.
    // Sync until a write's answer was lost (sends a killed sync had claimed
    // come back when their lease runs out): the loop ends on that event.
    let from = shop.sim.log().as_array().unwrap().len();
    shop.sim
        .set_faults(json!({"lost_answer_rate": 1.0, "seed": 9}));
    let lost = |method: &str| {
        shop.sim.log().as_array().unwrap()[from..]
            .iter()
            .filter(|e| e["method"] == method && e["status"] == 503)
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while lost("POST") + lost("PUT") == 0 {
        let report = shop.json(&["--json", "sync"]);
        assert_eq!(report["outbox"]["alerts"], json!([]), "{report}");
        assert_ne!(report["outbox"]["pending"], 0, "{report}");
        assert!(Instant::now() < deadline, "no send went out: {report}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (lost_posts, lost_puts) = (lost("POST"), lost("PUT"));
    eprintln!("answers lost after the write: {lost_posts} shipments, {lost_puts} flags");

    // The shop recovers; syncs run to the end until nothing is pending (killed
    // claims come back when their lease runs out).
    shop.sim.set_faults(json!({}));
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let report = shop.json(&["--json", "sync"]);
        assert_eq!(report["outbox"]["alerts"], json!([]), "{report}");
        if report["outbox"]["pending"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still pending: {report}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // Exactly one shipment and one memo per order; every order green and shipped.
    let shipments = shop.shipments();
    let mut per_order: HashMap<String, Vec<String>> = HashMap::new();
    for s in &shipments {
        per_order
            .entry(s["order_id"].as_str().unwrap().into())
            .or_default()
            .push(s["tracking_no"].as_str().unwrap().into());
    }
    for (id, tracking) in &handed {
        assert_eq!(
            per_order.get(id),
            Some(&vec![tracking.clone()]),
            "{shipments:?}"
        );
        let order = shop.shop_order(id);
        assert_eq!(order["status"], "shipped", "{order}");
        assert_eq!(order["flag"], "green", "{order}");
        let memos = Shop::handover_memos(&order);
        assert_eq!(memos.len(), 1, "{id}: {memos:?}");
        let text = memos[0]["text"].as_str().unwrap();
        assert!(text.contains(tracking.as_str()), "{text}");
    }
    assert_eq!(shipments.len(), handed.len());
    let status = shop.st.status();
    assert_eq!(status["counts"]["shipped"], 10, "{status}");
    assert_eq!(status["outbox"]["done_orders"], 10, "{status}");

    // The shop really was down and busy: 503s were answered and retried.
    let log = shop.sim.log();
    let failed = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == 503)
        .count();
    assert!(failed >= 2, "{failed} 503s");

    // Lost answers really happened and were sent again (a 409 or a repeated
    // 200 for each), yet the shop holds one shipment and one memo per order.
    assert!(lost_posts + lost_puts >= 1, "{lost_posts} + {lost_puts}");

    // Nothing more goes out.
    let before = shop.sim.log().as_array().unwrap().len();
    let report = shop.json(&["--json", "sync"]);
    assert_eq!(
        (
            report["sent"].as_u64(),
            report["outbox"]["pending"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let after = shop.sim.log().as_array().unwrap().len();
    assert_eq!(before + 1, after, "only the log read itself");
}

#[test]
fn a_refund_after_close_is_an_intercept_alert_not_a_green_flag() {
    let shop = Shop::start(3);
    let handed = shop.hand_everything_over();
    let (refunded, tracking) = handed.iter().next().unwrap();
    shop.sim.mutate(refunded, json!({"refund": "requested"}));

    let text = ok(&shop.run(&["sync"]));
    assert!(text.starts_with("sent 4, pending 0, alerts 1"), "{text}");
    assert!(text.contains(&format!("ALERT {refunded}")), "{text}");

    let order = shop.shop_order(refunded);
    assert_ne!(order["flag"], "green", "{order}");
    assert_eq!(order["status"], "paid");
    assert!(Shop::handover_memos(&order).is_empty(), "{order}");
    assert!(
        !shop
            .shipments()
            .iter()
            .any(|s| s["order_id"] == refunded.as_str()),
        "no shipment for the refunded order"
    );
    for id in handed.keys().filter(|id| *id != refunded) {
        assert_eq!(shop.shop_order(id)["flag"], "green");
    }

    let status = shop.st.status();
    let alerts = status["outbox"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{status}");
    assert_eq!(alerts[0]["id"], refunded.as_str());
    let reason = alerts[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("refund") && reason.contains("拦截") && reason.contains(tracking.as_str()),
        "{reason}"
    );
    let intercepts: Vec<&str> = status["intercept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(intercepts, [refunded.as_str()], "{status}");
    assert_eq!(status["counts"]["shipped"], 2, "{status}");
    let status_text = ok(&shop.run(&["status"]));
    assert!(status_text.contains("Write-back alerts"), "{status_text}");

    // Syncing again neither retries nor greens it.
    let report = shop.json(&["--json", "sync"]);
    assert_eq!(report["sent"], 0, "{report}");
    assert_ne!(shop.shop_order(refunded)["flag"], "green");
}

/// Make every pending send of the station's outbox due now; the kinds of
/// those that can go out now (a flag only after its shipment).
fn all_due(mut store: station::store::Store) -> Vec<SendKind> {
    let far = chrono::Utc::now() + chrono::Duration::days(1);
    let mut claimed = Vec::new();
    while let Some(s) = store.outbox_claim_due(far, Duration::from_secs(1)).unwrap() {
        claimed.push((s.id, s.kind));
    }
    for (id, _) in &claimed {
        let past = chrono::Utc::now() - chrono::Duration::seconds(1);
        store
            .outbox_retry_later(*id, past, "test: due now")
            .unwrap();
    }
    claimed.into_iter().map(|(_, k)| k).collect()
}
