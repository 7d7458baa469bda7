//! A warehouse day, scripted end to end against the real simulator: pull,
//! print, some parcels packed, some handed over, one intercept, one out of
//! stock (缺货), one changed after print, one rejected order — then the
//! end-of-day report checked in all three formats, and the out-of-stock order
//! followed through the shop and back into the queue.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Command, Output};

struct Day {
    st: Station,
    sim: Sim,
    orders: HashMap<String, Value>,
}

impl Day {
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

    fn scan(&self, code: &str) -> Value {
        let out = self.run(&["--json", "scan", code]);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Slip, every item, waybill.
    fn pack(&self, id: &str, tracking: &str) {
        assert_eq!(self.scan(id)["code"], "order_opened");
        for i in self.orders[id]["items"].as_array().unwrap() {
            let code = i["barcode"].as_str().or(i["sku"].as_str()).unwrap();
            for _ in 0..i["qty"].as_u64().unwrap() {
                assert_eq!(self.scan(code)["verdict"], "ok");
            }
        }
        let out = self.scan(tracking);
        assert_eq!(out["code"], "packed", "{out}");
    }
}

fn start(n: usize) -> Day {
    let st = Station::new();
    let all = read_json(&data("orders-200.json"));
    let mut chosen: Vec<Value> = all.as_array().unwrap()[..n].to_vec();
    // One order that breaks the contract: rejected with its reason.
    let mut bad = chosen[0].clone();
    bad["id"] = json!("BAD-QTY-1");
    bad["items"][0]["qty"] = json!(0);
    chosen.push(bad);
    let text: String = chosen.iter().map(|o| format!("{o}\n")).collect();
    let file = st.write("orders.jsonl", &text);
    let sim = Sim::start(&file, "day-token", &[]);
    let orders = chosen
        .into_iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o))
        .collect();
    Day { st, sim, orders }
}

#[test]
fn a_scripted_day_adds_up_in_every_report_format() {
    let day = start(8);
    ok(&day.st.pull(&day.sim, &[]));
    let printed = day.json(&["--json", "print"]);
    let printed: Vec<(String, String)> = printed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["courier"] == "ZTO")
        .map(|p| {
            (
                p["order_id"].as_str().unwrap().to_string(),
                p["tracking_no"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(printed.len() >= 7, "{printed:?}");
    let [a, b, c, i, s, x, ..] = &printed[..] else {
        unreachable!()
    };

    // a, b, c packed; a and b handed over; c waits for the courier.
    for (id, t) in [a, b, c] {
        day.pack(id, t);
    }
    ok(&day.run(&["handover", "open", "--courier", "ZTO"]));
    for (_, t) in [a, b] {
        ok(&day.run(&["handover", "scan", t]));
    }
    let closed = day.json(&["--json", "handover", "close"]);
    let batch = closed["batch_id"].as_str().unwrap().to_string();

    // i: refunded → INTERCEPT at the bench.
    day.sim.mutate(&i.0, json!({"refund": "requested"}));
    assert_eq!(day.scan(&i.0)["verdict"], "intercept");

    // s: an item is missing at the bench (缺货).
    let sku = day.orders[&s.0]["items"][0]["sku"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(day.scan(&s.0)["code"], "order_opened");
    let short = day.json(&["--json", "short", &s.0, &sku]);
    assert_eq!(short["voided"], s.1.as_str(), "{short}");

    // x: the address changed after print, seen by the next pull.
    day.sim
        .mutate(&x.0, json!({"address": "文三路 100 号 改地址"}));
    ok(&day.st.pull(&day.sim, &[]));

    let report = day.json(&["report", "--format", "json"]);
    assert_eq!(report["pulled"], 8, "{report}");
    assert_eq!(report["printed"], 8);
    assert_eq!(report["packed"], 3);
    assert_eq!(report["handed_over"], 2);
    assert_eq!(report["handed_over_by_courier"][0]["courier"], "ZTO");
    assert_eq!(
        report["handed_over_by_courier"][0]["batches"][0]["batch_id"],
        batch.as_str()
    );
    assert_eq!(report["intercepted"], json!([i.0]));
    assert_eq!(report["out_of_stock"], json!([s.0]));
    assert_eq!(report["changed_after_print"], json!([x.0]));
    assert_eq!(report["rejected"], 1);
    // Two handed-over orders (shipment + flag each) and one exception flag wait.
    assert_eq!(report["write_backs_pending"], 5, "{report}");
    let not_over: HashMap<&str, &str> = report["not_handed_over"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["order_id"].as_str().unwrap(),
                p["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        not_over[c.0.as_str()].contains("packed, not scanned"),
        "{not_over:?}"
    );
    assert!(not_over[i.0.as_str()].contains("refund"), "{not_over:?}");
    assert!(not_over[s.0.as_str()].contains("缺货"), "{not_over:?}");
    assert!(
        not_over[x.0.as_str()].contains("changed_after_print"),
        "{not_over:?}"
    );
    assert!(!not_over.contains_key(a.0.as_str()));
    assert_eq!(report["per_operator"][0]["name"], "测试员");
    assert_eq!(report["per_operator"][0]["parcels"], 3);
    assert_eq!(report["per_bench"][0]["name"], "cli");

    // The CSV says the same.
    let csv = ok(&day.run(&["report", "--format", "csv"]));
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0], ["section", "key", "count", "detail"]);
    let total = |k: &str| {
        rows.iter()
            .find(|r| r[0] == "total" && r[1] == k)
            .unwrap_or_else(|| panic!("no total {k} in\n{csv}"))[2]
            .to_string()
    };
    for (k, v) in [
        ("pulled", "8"),
        ("printed", "8"),
        ("packed", "3"),
        ("handed_over", "2"),
        ("intercepted", "1"),
        ("out_of_stock", "1"),
        ("changed_after_print", "1"),
        ("rejected", "1"),
        ("write_backs_pending", "5"),
    ] {
        assert_eq!(total(k), v, "{k}");
    }
    assert!(
        rows.iter()
            .any(|r| r[0] == "batch" && r[1] == batch && r[2] == "2")
    );
    assert!(rows.iter().any(|r| r[0] == "out_of_stock" && r[1] == s.0));

    // And the text.
    let text = ok(&day.run(&["report"]));
    for line in [
        "pulled                   8",
        "packed                   3",
        "handed over              2",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert!(text.contains(&batch) && text.contains(&s.0) && text.contains(&i.0));

    // A date with nothing on it reports zeros.
    let empty = day.json(&["report", "--format", "json", "--date", "2020-01-01"]);
    assert_eq!(
        (empty["pulled"].as_u64(), empty["packed"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn an_out_of_stock_order_goes_back_to_customer_service_and_flows_again() {
    let day = start(3);
    ok(&day.st.pull(&day.sim, &[]));
    let printed = day.json(&["--json", "print"]);
    let first = &printed["orders"][0];
    let (id, number) = (
        first["order_id"].as_str().unwrap().to_string(),
        first["tracking_no"].as_str().unwrap().to_string(),
    );
    let sku = day.orders[&id]["items"][0]["sku"]
        .as_str()
        .unwrap()
        .to_string();

    // A wrong SKU is refused, naming the order and the field.
    let out = day.run(&["short", &id, "NO-SUCH-SKU"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&id) && err.contains("NO-SUCH-SKU"), "{err}");

    let short = day.json(&[
        "--json",
        "--operator",
        "小王",
        "short",
        &id,
        &sku,
        "--qty",
        "1",
    ]);
    assert_eq!(short["state"], "out_of_stock", "{short}");
    assert_eq!(short["voided"], number.as_str());

    // It cannot be packed or handed over now.
    assert_eq!(day.scan(&id)["code"], "out_of_stock");
    ok(&day.run(&["handover", "open", "--courier", "ZTO"]));
    let out = day.run(&["handover", "scan", &number]);
    assert_eq!(out.status.code(), Some(7));

    // A newer version from before the shop has the exception flag (a memo,
    // still yellow) must not put it back in the queue.
    day.sim.mutate(
        &id,
        json!({"memo": {"text": "买家催单", "author": "客服", "at": "2026-11-11T10:00:00+08:00"}}),
    );
    ok(&day.st.pull(&day.sim, &[]));
    assert_eq!(day.st.status()["counts"]["out_of_stock"], 1);

    // The outbox tells the shop: the exception flag with one memo, no shipment.
    let sync = day.json(&["--json", "sync"]);
    assert_eq!(sync["outbox"]["pending"], 0, "{sync}");
    let shop: Value = day.sim_order(&id);
    assert_eq!(shop["flag"], "blue", "{shop}");
    let memos: Vec<&str> = shop["memos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    let ours: Vec<&&str> = memos.iter().filter(|m| m.starts_with("缺货")).collect();
    assert_eq!(ours.len(), 1, "{memos:?}");
    assert!(
        ours[0].starts_with(&format!("缺货: {sku} ×1 · 小王 · ")),
        "{ours:?}"
    );
    // A second sync sends nothing again.
    ok(&day.run(&["sync"]));
    let shop = day.sim_order(&id);
    let again = shop["memos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["text"].as_str().unwrap().starts_with("缺货"))
        .count();
    assert_eq!(again, 1);
    let shipments = day.sim_shipments();
    assert!(
        !shipments.iter().any(|s| s["order_id"] == id.as_str()),
        "{shipments:?}"
    );

    // Customer service restocks and puts it back on yellow: it flows again with a new number.
    day.sim.mutate(&id, json!({"flag": "yellow"}));
    ok(&day.st.pull(&day.sim, &[]));
    let again = day.json(&["--json", "print"]);
    let reprinted = again["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["order_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not printed again: {again}"));
    assert_ne!(reprinted["tracking_no"], number.as_str());
}

impl Day {
    /// The order as the shop has it now.
    fn sim_order(&self, id: &str) -> Value {
        admin_get(&self.sim, &format!("/v1/orders/{id}"))
    }

    fn sim_shipments(&self) -> Vec<Value> {
        admin_get(&self.sim, "/admin/shipments")
            .as_array()
            .unwrap()
            .clone()
    }
}

fn admin_get(sim: &Sim, path: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        station::shop::client::http()
            .build()
            .unwrap()
            .get(format!("{}{}", sim.url, path))
            .bearer_auth(&sim.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

/// The day report's day is a local day of the configured time zone: the
/// same wave, printed a moment ago, is "today" in each zone's own date and
/// in no other date. Two zones 25 hours apart (UTC+14 and UTC−11) never
/// share a date, so each one's today is the other's yesterday or tomorrow.
#[test]
fn the_report_day_follows_the_configured_time_zone() {
    use chrono_tz::Tz;
    let st = Station::new();
    let all = read_json(&data("orders-200.json"));
    let text: String = all.as_array().unwrap()[..3]
        .iter()
        .map(|o| format!("{o}\n"))
        .collect();
    let file = st.write("orders.jsonl", &text);
    ok(&st.cmd().arg("import").arg(&file).output().unwrap());
    ok(&st.cmd().arg("print").output().unwrap());
    let printed_on = |zone: &str, date: chrono::NaiveDate| -> (u64, String) {
        st.write("station.toml", &format!("time_zone = \"{zone}\"\n"));
        let out = st
            .cmd()
            .args(["--json", "report", "--date", &date.to_string()])
            .output()
            .unwrap();
        let v: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        assert_eq!(v["time_zone"], zone, "{v}");
        (
            v["printed"].as_u64().unwrap(),
            v["from"].as_str().unwrap().to_string(),
        )
    };
    let now = chrono::Utc::now();
    let east: Tz = "Pacific/Kiritimati".parse().unwrap();
    let west: Tz = "Pacific/Pago_Pago".parse().unwrap();
    let east_today = now.with_timezone(&east).date_naive();
    let west_today = now.with_timezone(&west).date_naive();
    assert_ne!(east_today, west_today);
    let (n, from) = printed_on("Pacific/Kiritimati", east_today);
    assert_eq!(n, 3, "east's today holds the wave");
    // Its day starts at local midnight: 10:00 UTC the day before.
    assert!(from.ends_with("T10:00:00.000Z"), "{from}");
    assert_eq!(printed_on("Pacific/Kiritimati", west_today).0, 0);
    let (n, from) = printed_on("Pacific/Pago_Pago", west_today);
    assert_eq!(n, 3, "west's today holds the wave");
    assert!(from.ends_with("T11:00:00.000Z"), "{from}");
    assert_eq!(printed_on("Pacific/Pago_Pago", east_today).0, 0);
}
