//! Couriers' e-waybill services (电子面单) end to end: the real binary against
//! the shop simulator and the Waybill API simulator (`station waybill-sim`),
//! both over loopback.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const SHOP_TOKEN: &str = "shop-token";
const WAYBILL_TOKEN: &str = "waybill-secret-7f3a";

/// A shop with the first `n` fixture orders.
fn shop(st: &Station, n: usize) -> Sim {
    let all = read_json(&data("orders-200.json"));
    let some: Vec<Value> = all.as_array().unwrap().iter().take(n).cloned().collect();
    let file = st.write("orders.json", &serde_json::to_string(&some).unwrap());
    Sim::start(&file, SHOP_TOKEN, &[])
}

/// ZTO from the service (out of its area: 圆通 takes over), YTO and SF from pools.
fn config(wb: &WaybillSim) -> String {
    format!(
        "[print]\ndefault_courier = \"ZTO\"\n\n{}\n[[couriers]]\ncode = \"YTO\"\nname = \"圆通\"\n[couriers.pool]\nprefix = \"YT\"\nstart = 1\nend = 99999999\ndigits = 10\n\n[[couriers]]\ncode = \"SF\"\nname = \"顺丰\"\n[couriers.pool]\nprefix = \"SF\"\nstart = 1\nend = 99999999\ndigits = 10\n",
        wb.courier_toml("ZTO", "中通", "YTO")
    )
}

fn cmd(st: &Station, sim: &Sim, wb: &WaybillSim) -> Command {
    let mut c = st.cmd_with_shop(sim);
    let (var, token) = wb.env("ZTO");
    c.env(var, token);
    c
}

fn run_json(st: &Station, sim: &Sim, wb: &WaybillSim, args: &[&str]) -> Value {
    let out = cmd(st, sim, wb).args(args).arg("--json").output().unwrap();
    serde_json::from_str(&ok(&out)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Every number the service issued, with the order it was for.
fn issued(wb: &WaybillSim) -> BTreeMap<String, String> {
    wb.state()["numbers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, v)| (n.clone(), v["order_ids"][0].as_str().unwrap().to_string()))
        .collect()
}

/// The text of one page of a PDF (poppler's pdftotext).
fn page_text(file: &Path, page: u64) -> String {
    let out = Command::new("pdftotext")
        .args(["-f", &page.to_string(), "-l", &page.to_string()])
        .arg(file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(
        out.status.success(),
        "pdftotext {}: {out:?}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_wave_prints_service_numbers_with_routing_beside_pools_and_gives_voided_ones_back() {
    let st = Station::new();
    let sim = shop(&st, 60);
    let wb = WaybillSim::start(WAYBILL_TOKEN, &["--unreachable", "ZTO=新疆维吾尔自治区"]);
    st.write("station.toml", &config(&wb));
    ok(&st.pull(&sim, &[]));
    let printed = run_json(&st, &sim, &wb, &["print"]);
    let orders = printed["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 60, "{printed}");

    let shop_orders: BTreeMap<String, Value> = read_json(&st.dir.path().join("orders.json"))
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o.clone()))
        .collect();
    let store = st.store();
    let mut zto = BTreeMap::new();
    for o in orders {
        let id = o["order_id"].as_str().unwrap();
        let number = o["tracking_no"].as_str().unwrap();
        let courier = o["courier"].as_str().unwrap();
        let shop_order = &shop_orders[id];
        let province = shop_order["recipient"]["province"].as_str().unwrap();
        let wants = shop_order["shipping"]["courier"].as_str();
        match courier {
            "ZTO" => {
                assert_ne!(
                    province, "新疆维吾尔自治区",
                    "{id} went to ZTO out of its area"
                );
                let routing = store.routing(number).unwrap();
                assert!(
                    !routing.sort_code.is_empty() && routing.package_center.ends_with("转运中心"),
                    "{id}: {routing:?}"
                );
                zto.insert(number.to_string(), id.to_string());
            }
            "YTO" => {
                assert_eq!(province, "新疆维吾尔自治区", "{id} left ZTO for no reason");
                assert!(number.starts_with("YT"), "{number}");
                // It asked ZTO once, was refused, and the refusal is on record.
                let refusal = store
                    .waybill_refusal(id, shop_order["version"].as_u64().unwrap(), "ZTO")
                    .unwrap();
                assert_eq!(refusal.map(|r| r.0).as_deref(), Some("unreachable"));
            }
            "SF" => {
                assert_eq!(wants, Some("SF"));
                assert!(number.starts_with("SF"), "{number}");
            }
            other => panic!("{id}: courier {other}"),
        }
    }
    let xinjiang = shop_orders
        .values()
        .filter(|o| {
            o["recipient"]["province"] == "新疆维吾尔自治区" && o["shipping"]["courier"] != "SF"
        })
        .count();
    assert!(xinjiang > 0 && zto.len() > 20, "{xinjiang} {}", zto.len());
    // The service issued exactly the numbers the wave printed: none lost, none doubled.
    assert_eq!(issued(&wb), zto);

    // The routing is on the label as the service gave it.
    let first = orders.iter().find(|o| o["courier"] == "ZTO").unwrap();
    let number = first["tracking_no"].as_str().unwrap();
    let routing = store.routing(number).unwrap();
    let text = page_text(
        &st.dir.path().join(first["waybill_file"].as_str().unwrap()),
        first["waybill_page"].as_u64().unwrap(),
    );
    for shown in [&routing.sort_code, &routing.package_center] {
        assert!(
            text.contains(shown.as_str()),
            "{shown:?} not on the label:\n{text}"
        );
    }
    let short = routing.short_address.split_whitespace().next().unwrap();
    assert!(text.contains(short), "{short:?} not on the label:\n{text}");
    drop(store);

    // A voided number goes back to the service; one the courier already
    // scanned cannot, and becomes an alert, not a retry loop.
    let mut numbers = zto.keys();
    let (back, used) = (
        numbers.next().unwrap().clone(),
        numbers.next().unwrap().clone(),
    );
    wb.mark_used(&used);
    for n in [&back, &used] {
        ok(&cmd(&st, &sim, &wb)
            .args(["void", n, "--reason", "面单损坏"])
            .output()
            .unwrap());
    }
    let synced = ok(&cmd(&st, &sim, &wb).arg("sync").output().unwrap());
    assert!(
        synced.contains("given back: 1") && synced.contains(&format!("ALERT waybill {used}")),
        "{synced}"
    );
    let state = wb.state();
    assert_eq!(state["numbers"][&back]["state"], "cancelled", "{state}");
    assert_eq!(state["numbers"][&used]["state"], "used");
    // A second sync sends nothing again.
    let again = run_json(&st, &sim, &wb, &["sync"]);
    assert_eq!(
        again["cancels"],
        json!({"cancelled": 0, "alerts": [], "retrying": []})
    );

    // A change after print: the reprint takes a new number from the service
    // and the old one goes back.
    let (changed_number, changed) = zto.iter().nth(2).unwrap();
    sim.mutate(changed, json!({"address": "文三路 90 号 (改)"}));
    ok(&st.pull(&sim, &[]));
    let re = run_json(&st, &sim, &wb, &["reprint", changed]);
    let new_number = re["tracking_no"].as_str().unwrap();
    assert_ne!(new_number, changed_number);
    assert!(issued(&wb).contains_key(new_number));
    ok(&cmd(&st, &sim, &wb).arg("sync").output().unwrap());
    assert_eq!(wb.state()["numbers"][changed_number]["state"], "cancelled");

    // `station couriers`: source, balance and today's numbers.
    let couriers = run_json(&st, &sim, &wb, &["couriers"]);
    let line = |code: &str| {
        couriers
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["code"] == code)
            .unwrap()
            .clone()
    };
    let z = line("ZTO");
    assert_eq!(z["source"], "service");
    assert_eq!(z["fallback"], "YTO");
    assert_eq!(z["today"]["taken"], zto.len() as u64 + 1);
    assert_eq!(z["today"]["cancelled"], 2);
    assert_eq!(z["today"]["cancel_alerts"], 1);
    assert_eq!(z["today"]["voided"], 3);
    let balance = wb.state()["balances"]["ZTO"].as_u64().unwrap();
    assert_eq!(z["balance"], balance);
    assert_eq!(line("YTO")["source"], "pool");
    assert_eq!(line("YTO")["balance"], Value::Null);
    // The token never shows.
    let text = ok(&cmd(&st, &sim, &wb).arg("couriers").output().unwrap());
    assert!(
        text.contains("service") && !text.contains(WAYBILL_TOKEN),
        "{text}"
    );
}

#[test]
fn a_print_killed_while_taking_numbers_loses_and_doubles_none() {
    // Each kill point of the allocation, and a service that loses answers and
    // fails calls: every parcel ends with one number, the service issued each
    // number once, and every number it issued is the parcel's.
    // (name, the crash point armed in the first print, the service's faults)
    let worlds: [(&str, Option<&str>, Value); 4] = [
        (
            "requests",
            Some("waybill.requests.before_commit"),
            json!({}),
        ),
        ("calling", Some("waybill.calling"), json!({})),
        (
            "answers",
            Some("waybill.answers.before_commit@2"),
            json!({}),
        ),
        (
            "lost answers",
            None,
            json!({"lost_answer_rate": 0.5, "unavailable_rate": 0.2, "seed": 3}),
        ),
    ];
    std::thread::scope(|s| {
        for (name, crash_at, faults) in &worlds {
            s.spawn(move || {
                let st = Station::new();
                let sim = shop(&st, 36);
                let wb = WaybillSim::start(WAYBILL_TOKEN, &[]);
                // Every parcel from the service, two calls in flight at once.
                st.write(
                    "station.toml",
                    &format!(
                        "[print]\ndefault_courier = \"ZTO\"\nchunk_size = 8\n\n{}max_in_flight = 2\n",
                        wb.courier_toml("ZTO", "中通", "")
                    ),
                );
                wb.set_faults(faults.clone());
                ok(&st.pull(&sim, &[]));
                let mut first = cmd(&st, &sim, &wb);
                first.arg("print");
                if let Some(point) = crash_at {
                    first.env("STATION_CRASH_AT", point);
                }
                let out = first.output().unwrap();
                if crash_at.is_some() {
                    assert!(out.status.code().is_none(), "{name}: not killed: {out:?}");
                }
                wb.set_faults(json!({}));
                let printed = run_json(&st, &sim, &wb, &["print"]);
                let again = run_json(&st, &sim, &wb, &["print"]);
                assert_eq!(again["orders"], json!([]), "{name}: {again}");
                let store = st.store();
                let mut live = BTreeMap::new();
                for id in (0..36).map(|i| {
                    read_json(&st.dir.path().join("orders.json"))[i]["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                }) {
                    let numbers = live_numbers(&store, &id);
                    assert_eq!(numbers.len(), 1, "{name}: {id} holds {numbers:?}");
                    live.insert(numbers[0].number.clone(), id);
                }
                assert_eq!(issued(&wb), live, "{name}: the service's numbers vs the parcels'");
                let requests: BTreeSet<String> = wb.state()["numbers"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|n| n["request_id"].as_str().unwrap().to_string())
                    .collect();
                assert_eq!(requests.len(), 36, "{name}");
                assert!(printed["orders"].as_array().unwrap().len() <= 36);
            });
        }
    });
}

#[test]
fn a_service_out_of_numbers_stops_the_wave_naming_the_courier_and_its_balance() {
    let st = Station::new();
    let sim = shop(&st, 12);
    let wb = WaybillSim::start(WAYBILL_TOKEN, &["--balance", "0"]);
    st.write(
        "station.toml",
        &format!(
            "[print]\ndefault_courier = \"ZTO\"\n\n{}",
            wb.courier_toml("ZTO", "中通", "")
        ),
    );
    ok(&st.pull(&sim, &[]));
    let out = cmd(&st, &sim, &wb).arg("print").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert!(
        err.contains("ZTO")
            && err.contains("quota_exhausted")
            && err.contains("balance 0")
            && err.contains("not printed"),
        "{err}"
    );
    assert!(!err.contains(WAYBILL_TOKEN));
    assert_eq!(st.status()["counts"]["queued"], 12);

    // Without a token the service is not even asked.
    let out = st.cmd_with_shop(&sim).arg("print").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert!(err.contains("STATION_ZTO_WAYBILL_TOKEN"), "{err}");

    // Topped up, the same orders print.
    wb.set_balance("ZTO", 100);
    let printed = run_json(&st, &sim, &wb, &["print"]);
    assert_eq!(printed["orders"].as_array().unwrap().len(), 12);
    assert_eq!(wb.state()["balances"]["ZTO"], 88);
}

#[test]
fn an_order_out_of_the_area_with_no_fallback_is_set_aside_until_it_changes() {
    let st = Station::new();
    let sim = shop(&st, 40);
    let wb = WaybillSim::start(WAYBILL_TOKEN, &["--unreachable", "ZTO=新疆维吾尔自治区"]);
    st.write(
        "station.toml",
        &format!(
            "[print]\ndefault_courier = \"ZTO\"\n\n{}",
            wb.courier_toml("ZTO", "中通", "")
        ),
    );
    ok(&st.pull(&sim, &[]));
    let printed = run_json(&st, &sim, &wb, &["print"]);
    let orders: Vec<Value> = read_json(&st.dir.path().join("orders.json"))
        .as_array()
        .unwrap()
        .clone();
    let xinjiang: BTreeSet<String> = orders
        .iter()
        .filter(|o| o["recipient"]["province"] == "新疆维吾尔自治区")
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!xinjiang.is_empty());
    let set_aside: BTreeMap<String, String> = printed["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f[0].as_str().unwrap().to_string(),
                f[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        set_aside.keys().cloned().collect::<BTreeSet<_>>(),
        xinjiang,
        "{printed}"
    );
    for why in set_aside.values() {
        assert!(
            why.contains("unreachable") && why.contains("fallback"),
            "{why}"
        );
    }
    assert_eq!(
        printed["orders"].as_array().unwrap().len(),
        40 - xinjiang.len()
    );
    assert_eq!(st.status()["counts"]["queued"], xinjiang.len() as u64);

    // Printing again sets them aside again without asking the service again.
    let calls = wb.state()["take_calls"].clone();
    let again = run_json(&st, &sim, &wb, &["print"]);
    assert_eq!(again["failed"].as_array().unwrap().len(), xinjiang.len());
    assert_eq!(wb.state()["take_calls"], calls);

    // The courier now delivers there and customer service touches one order:
    // its new version is asked again and prints.
    wb.set_unreachable("ZTO", &[]);
    let one = xinjiang.iter().next().unwrap();
    sim.mutate(one, json!({"address": "友好北路 1 号 (核实)"}));
    ok(&st.pull(&sim, &[]));
    let third = run_json(&st, &sim, &wb, &["print"]);
    let printed_now: Vec<&str> = third["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(printed_now, vec![one.as_str()], "{third}");
}
