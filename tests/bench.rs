//! End to end at the packing bench and the courier handover, through the CLI
//! (`station scan`, `station handover ...`) against the real simulator: slips,
//! items and waybills scanned, STOP and INTERCEPT caught, parcels handed over,
//! and the manifest read back with real decoders.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Command, Output};

/// The first `n` fixture orders plus the first SF one, so two couriers are printed.
fn orders_file(st: &Station, n: usize) -> (std::path::PathBuf, HashMap<String, Value>) {
    let all = read_json(&data("orders-200.json"));
    let all = all.as_array().unwrap();
    let mut chosen: Vec<Value> = all[..n].to_vec();
    let sf = all
        .iter()
        .find(|o| o["shipping"]["courier"] == "SF")
        .expect("an SF order in the fixture");
    chosen.push(sf.clone());
    let text: String = chosen.iter().map(|o| format!("{o}\n")).collect();
    let by_id = chosen
        .into_iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o))
        .collect();
    (st.write("orders.jsonl", &text), by_id)
}

struct Bench<'a> {
    st: &'a Station,
    sim: &'a Sim,
}

impl Bench<'_> {
    fn cmd(&self) -> Command {
        self.st.cmd_with_shop(self.sim)
    }

    /// `station --json scan CODE`: the outcome, and the exit code.
    fn scan(&self, code: &str) -> (Value, i32) {
        let out = self
            .cmd()
            .args(["--json", "scan", "--bench", "b1", code])
            .output()
            .unwrap();
        (json_of(&out), out.status.code().unwrap())
    }

    /// Pack a parcel: slip, every item, waybill.
    fn pack(&self, id: &str, number: &str, order: &Value) {
        assert_eq!(self.scan(id).0["code"], "order_opened");
        for code in item_codes(order) {
            assert_eq!(self.scan(&code).0["verdict"], "ok");
        }
        let (out, _) = self.scan(number);
        assert_eq!(out["code"], "packed", "{out}");
    }

    fn handover(&self, args: &[&str]) -> Output {
        self.cmd()
            .arg("--json")
            .arg("handover")
            .args(args)
            .output()
            .unwrap()
    }
}

#[test]
fn a_bench_packs_stops_intercepts_and_hands_over() {
    let st = Station::new();
    let (file, orders) = orders_file(&st, 8);
    let sim = Sim::start(&file, "bench-token", &[]);
    ok(&st.pull(&sim, &[]));
    let printed: Value =
        serde_json::from_str(&ok(&st.cmd().args(["--json", "print"]).output().unwrap())).unwrap();
    let printed = printed["orders"].as_array().unwrap().clone();
    assert_eq!(printed.len(), 9);
    let number: HashMap<String, String> = printed
        .iter()
        .map(|p| {
            (
                p["order_id"].as_str().unwrap().into(),
                p["tracking_no"].as_str().unwrap().into(),
            )
        })
        .collect();
    let zto: Vec<String> = printed
        .iter()
        .filter(|p| p["courier"] == "ZTO")
        .map(|p| p["order_id"].as_str().unwrap().to_string())
        .collect();
    let sf = printed.iter().find(|p| p["courier"] == "SF").unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(zto.len() >= 5, "{zto:?}");
    let bench = Bench { st: &st, sim: &sim };

    // A: a multi-item order, packed item by item, with a wrong item, one too
    // many, and another order's waybill on the way.
    let a = zto
        .iter()
        .find(|id| item_codes(&orders[*id]).len() >= 2)
        .expect("a multi-item order")
        .clone();
    let b = zto.iter().find(|id| **id != a).unwrap().clone();
    let (out, code) = bench.scan(&a);
    assert_eq!(
        (code, out["verdict"].as_str(), out["code"].as_str()),
        (0, Some("ok"), Some("order_opened")),
        "{out}"
    );
    assert_eq!(out["shop"], "checked");
    assert_eq!(
        out["order"]["tracking_no"].as_str(),
        Some(number[&a].as_str())
    );

    let (out, code) = bench.scan("6900000000000");
    assert_eq!(
        (code, out["verdict"].as_str(), out["code"].as_str()),
        (7, Some("stop"), Some("wrong_item")),
        "{out}"
    );

    // The waybill before the items: not yet.
    let (out, code) = bench.scan(&number[&a]);
    assert_eq!(
        (code, out["code"].as_str()),
        (7, Some("items_missing")),
        "{out}"
    );

    let codes = item_codes(&orders[&a]);
    for (n, c) in codes.iter().enumerate() {
        let (out, code) = bench.scan(c);
        let want = if n + 1 == codes.len() {
            "items_complete"
        } else {
            "item_ok"
        };
        assert_eq!((code, out["code"].as_str()), (0, Some(want)), "{out}");
    }
    let (out, code) = bench.scan(&codes[0]);
    assert_eq!(
        (code, out["verdict"].as_str(), out["code"].as_str()),
        (7, Some("stop"), Some("too_many")),
        "{out}"
    );

    // Slip ↔ waybill pairing: B's label on A's parcel is STOP.
    let (out, code) = bench.scan(&number[&b]);
    assert_eq!(
        (code, out["code"].as_str()),
        (7, Some("wrong_waybill")),
        "{out}"
    );
    assert!(out["message"].as_str().unwrap().contains(&b), "{out}");

    let (out, code) = bench.scan(&number[&a]);
    assert_eq!(
        (code, out["verdict"].as_str(), out["code"].as_str()),
        (0, Some("ok"), Some("packed")),
        "{out}"
    );
    assert_eq!(out["order"]["state"], "packed");

    // B and the SF order: packed the same way.
    for id in [&b, &sf] {
        assert_eq!(bench.scan(id).1, 0);
        for c in item_codes(&orders[id]) {
            assert_eq!(bench.scan(&c).1, 0);
        }
        let (out, code) = bench.scan(&number[id]);
        assert_eq!((code, out["code"].as_str()), (0, Some("packed")), "{out}");
    }

    // C: refunded on the shop after print → INTERCEPT at the slip.
    let c = zto
        .iter()
        .find(|id| **id != a && **id != b)
        .unwrap()
        .clone();
    sim.mutate(&c, json!({"refund": "requested"}));
    let (out, code) = bench.scan(&c);
    assert_eq!(
        (code, out["verdict"].as_str(), out["code"].as_str()),
        (7, Some("intercept"), Some("intercept")),
        "{out}"
    );
    assert!(
        out["message_zh"].as_str().unwrap().contains("拦截"),
        "{out}"
    );

    // D: address changed after print → STOP with a reprint; the new label packs,
    // the old number is void.
    let d = zto
        .iter()
        .find(|id| ![&a, &b, &c].contains(id))
        .unwrap()
        .clone();
    sim.mutate(&d, json!({"address": "文三路 90 号 改地址"}));
    let (out, code) = bench.scan(&d);
    assert_eq!(
        (code, out["code"].as_str(), out["can_reprint"].as_bool()),
        (7, Some("changed_after_print"), Some(true)),
        "{out}"
    );
    let re: Value = serde_json::from_str(&ok(&bench
        .cmd()
        .args(["--json", "reprint", &d])
        .output()
        .unwrap()))
    .unwrap();
    let d_new = re["tracking_no"].as_str().unwrap().to_string();
    assert_ne!(d_new, number[&d]);
    assert_eq!(bench.scan(&d).1, 0);
    for code in item_codes(&orders[&d]) {
        assert_eq!(bench.scan(&code).1, 0);
    }
    let (out, code) = bench.scan(&number[&d]);
    assert_eq!(
        (code, out["code"].as_str()),
        (7, Some("voided_waybill")),
        "{out}"
    );
    let (out, code) = bench.scan(&d_new);
    assert_eq!((code, out["code"].as_str()), (0, Some("packed")), "{out}");

    // E: the shop is unreachable → the bench goes on with the last known state and says so.
    let e = zto
        .iter()
        .find(|id| ![&a, &b, &c, &d].contains(id))
        .unwrap()
        .clone();
    let out = st
        .cmd()
        .env("STATION_SHOP_URL", "http://127.0.0.1:9")
        .env("STATION_SHOP_TOKEN", "x")
        .args(["--json", "scan", "--bench", "b2", &e])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(
        (out.status.code(), v["code"].as_str(), v["shop"].as_str()),
        (Some(0), Some("order_opened"), Some("unreachable")),
        "{v}"
    );

    // ── Handover ─────────────────────────────────────────────────────────────
    let opened = json_of(&ok_out(bench.handover(&["open", "--courier", "ZTO"])));
    let batch = opened["id"].as_str().unwrap().to_string();
    assert!(batch.starts_with("ZTO-"), "{batch}");
    let waiting: Vec<&str> = opened["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["order_id"].as_str().unwrap())
        .collect();
    assert!(
        waiting.contains(&a.as_str()) && !waiting.contains(&c.as_str()),
        "{opened}"
    );

    for id in [&a, &b] {
        let v = json_of(&ok_out(bench.handover(&["scan", &number[id]])));
        assert_eq!(v["accepted"], true, "{v}");
    }
    let v = json_of(&ok_out(bench.handover(&["scan", &d_new])));
    assert_eq!(v["batch"]["count"], 3, "{v}");

    let refused = |code: &str, want: &str| {
        let out = bench.handover(&["scan", code]);
        assert_eq!(
            out.status.code(),
            Some(7),
            "{code}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let v = json_of(&out);
        assert_eq!(
            (v["accepted"].as_bool(), v["code"].as_str()),
            (Some(false), Some(want)),
            "{v}"
        );
        // Without --json the reason is on stderr.
        let plain = bench
            .cmd()
            .args(["handover", "scan", code])
            .output()
            .unwrap();
        assert_eq!(plain.status.code(), Some(7));
        assert!(
            String::from_utf8_lossy(&plain.stderr).contains(want),
            "{plain:?}"
        );
    };
    refused(&number[&a], "duplicate");
    refused("123456789", "unknown_number");
    refused(&number[&sf], "other_courier");
    refused(&number[&c], "intercept");
    refused(&number[&d], "voided");

    let closed = json_of(&ok_out(bench.handover(&["close"])));
    assert_eq!(closed["batch_id"], batch.as_str());
    assert_eq!(closed["count"], 3);
    let mut numbers: Vec<&str> = closed["tracking_numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    numbers.sort();
    let mut want = vec![number[&a].as_str(), number[&b].as_str(), d_new.as_str()];
    want.sort();
    assert_eq!(numbers, want);
    let manifest = st.dir.path().join(closed["manifest"].as_str().unwrap());
    assert!(manifest.exists(), "{manifest:?}");

    // A closed batch is immutable.
    let out = bench.handover(&["scan", "--batch", &batch, &number[&e]]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("closed"));

    // The orders are handed over and their write-back waits in the outbox.
    let status = st.status();
    assert_eq!(status["counts"]["handed_over"], 3, "{status}");
    assert_eq!(status["counts"]["intercept"], 1, "{status}");

    // The manifest: every number and order id as text, the batch id as a QR.
    if decoders() {
        let text = Command::new("pdftotext")
            .args(["-layout"])
            .arg(&manifest)
            .arg("-")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        for n in &want {
            assert!(text.contains(n), "{n} missing from the manifest:\n{text}");
        }
        for id in [&a, &b, &d] {
            assert!(text.contains(id.as_str()), "{id} missing from the manifest");
        }
        assert!(text.contains("交接单") && text.contains(&batch), "{text}");
        let png = st.dir.path().join("manifest");
        let r = Command::new("pdftoppm")
            .args(["-r", "200", "-png", "-f", "1", "-l", "1"])
            .arg(&manifest)
            .arg(&png)
            .status()
            .unwrap();
        assert!(r.success());
        let page = std::fs::read_dir(st.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.to_string_lossy().contains("manifest-")
                    && p.extension().is_some_and(|x| x == "png")
            })
            .unwrap();
        let z = Command::new("zbarimg")
            .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
            .arg(&page)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&z.stdout).trim(), batch);
    }

    // Where is order D? Both its numbers (the first void), its batch, its timeline.
    let shown: Value = serde_json::from_str(&ok(&st
        .cmd()
        .args(["--json", "show", &number[&d]])
        .output()
        .unwrap()))
    .unwrap();
    let story = &shown[0];
    assert_eq!(
        (story["id"].as_str(), story["state"].as_str()),
        (Some(d.as_str()), Some("handed_over")),
        "{story}"
    );
    let tracking: Vec<(&str, &str)> = story["tracking_numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["number"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tracking,
        [
            (number[&d].as_str(), "voided"),
            (d_new.as_str(), "allocated")
        ]
    );
    assert_eq!(story["handover"][0]["batch_id"], batch.as_str());
    assert_eq!(story["write_backs"].as_array().unwrap().len(), 2, "{story}");
    assert!(
        story["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "tracking.voided")
    );
    // By the buyer's nick too.
    let nick = orders[&d]["buyer"]["nick"].as_str().unwrap();
    let by_nick: Value = serde_json::from_str(&ok(&st
        .cmd()
        .args(["--json", "show", nick])
        .output()
        .unwrap()))
    .unwrap();
    assert!(
        by_nick
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == d.as_str())
    );
    let out = st.cmd().args(["show", "no-such-thing"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    // Every scan was recorded with who did it.
    let store = st.store();
    let events = store.events(Some(&a)).unwrap();
    for action in [
        "bench.opened",
        "bench.item",
        "bench.packed",
        "handover.scanned",
        "handover.handed_over",
    ] {
        assert!(
            events
                .iter()
                .any(|e| e.action == action && e.operator == "测试员"),
            "{action} missing: {events:#?}"
        );
    }
}

fn ok_out(out: Output) -> Output {
    ok(&out);
    out
}

fn decoders() -> bool {
    let have = |t: &str| Command::new(t).arg("-v").output().is_ok();
    let ok = have("pdftoppm") && have("zbarimg") && have("pdftotext");
    assert!(
        ok || std::env::var_os("STATION_REQUIRE_TOOLS").is_none(),
        "install poppler-utils zbar-tools"
    );
    if !ok {
        eprintln!("skipped the manifest decoder checks: install poppler-utils zbar-tools");
    }
    ok
}

/// Review regressions: an order updated under the bench, a parcel relabelled
/// after it was scanned into a batch, and a batch whose every parcel had to be
/// taken out.
#[test]
fn changes_under_the_bench_and_the_batch_are_caught() {
    let st = Station::new();
    let (file, orders) = orders_file(&st, 6);
    let sim = Sim::start(&file, "bench-token-2", &[]);
    ok(&st.pull(&sim, &[]));
    let printed: Value =
        serde_json::from_str(&ok(&st.cmd().args(["--json", "print"]).output().unwrap())).unwrap();
    let zto: Vec<(String, String)> = printed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["courier"] == "ZTO")
        .map(|p| {
            (
                p["order_id"].as_str().unwrap().into(),
                p["tracking_no"].as_str().unwrap().into(),
            )
        })
        .collect();
    let bench = Bench { st: &st, sim: &sim };

    // 1. A memo arrives (and is pulled) while the order is open at the bench:
    //    the next scan is STOP order_updated, then counting starts over.
    let (a, a_no) = &zto[0];
    assert_eq!(bench.scan(a).0["code"], "order_opened");
    let codes = item_codes(&orders[a]);
    assert_eq!(bench.scan(&codes[0]).0["verdict"], "ok");
    sim.mutate(
        a,
        json!({"memo": {"text": "别放赠品", "author": "客服", "at": "2026-11-11T10:00:00+08:00"}}),
    );
    ok(&st.pull(&sim, &[]));
    let (out, code) = bench.scan(&codes[0]);
    assert_eq!(
        (code, out["code"].as_str()),
        (7, Some("order_updated")),
        "{out}"
    );
    assert_eq!(out["order"]["memo"], "别放赠品 · 客服");
    for c in &codes {
        assert_eq!(bench.scan(c).0["verdict"], "ok");
    }
    assert_eq!(bench.scan(a_no).0["code"], "packed");

    // 2. A parcel scanned into a batch is then relabelled (address change,
    //    reprint): the old label leaves the batch, the new one goes in.
    let (b, b_no) = &zto[1];
    let (c, c_no) = &zto[2];
    bench.pack(b, b_no, &orders[b]);
    bench.pack(c, c_no, &orders[c]);
    ok(&bench.handover(&["open", "--courier", "ZTO"]));
    ok(&bench.handover(&["scan", b_no]));
    ok(&bench.handover(&["scan", c_no]));
    sim.mutate(b, json!({"address": "文三路 120 号 改地址"}));
    ok(&st.pull(&sim, &[]));
    let re: Value = serde_json::from_str(&ok(&bench
        .cmd()
        .args(["--json", "reprint", b])
        .output()
        .unwrap()))
    .unwrap();
    let b_new = re["tracking_no"].as_str().unwrap();
    // The new label is checked at the bench like any parcel before it goes in.
    bench.pack(b, b_new, &orders[b]);
    let v = json_of(&ok_out(bench.handover(&["scan", b_new])));
    assert_eq!(
        (v["accepted"].as_bool(), v["batch"]["count"].as_u64()),
        (Some(true), Some(2)),
        "{v}"
    );

    // 3. C is refunded after it was scanned in, then B is voided: at close
    //    both come out, nothing is left, and the batch stays open.
    sim.mutate(c, json!({"refund": "requested"}));
    ok(&st.pull(&sim, &[]));
    ok(&bench.cmd().args(["void", b_new]).output().unwrap());
    let out = bench.handover(&["close"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("was not closed") && err.contains(c), "{err}");
    let shown = json_of(&ok_out(bench.handover(&["show"])));
    assert_eq!(shown[0]["state"], "open", "{shown}");
    assert_eq!(shown[0]["count"], 0, "{shown}");
}

/// A printed parcel: order id, courier, tracking number.
type Printed = (String, String, String);

/// Printed orders of one station, and the orders by id.
fn printed_bench(n: usize) -> (Station, Sim, Vec<Printed>, HashMap<String, Value>) {
    let st = Station::new();
    let (file, orders) = orders_file(&st, n);
    let sim = Sim::start(&file, "bench-token", &[]);
    ok(&st.pull(&sim, &[]));
    let printed: Value =
        serde_json::from_str(&ok(&st.cmd().args(["--json", "print"]).output().unwrap())).unwrap();
    let printed = printed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("order_id"), s("courier"), s("tracking_no"))
        })
        .collect();
    (st, sim, printed, orders)
}

#[test]
fn an_intercepted_order_leaves_the_bench_at_once() {
    let (st, sim, printed, orders) = printed_bench(4);
    let bench = Bench { st: &st, sim: &sim };
    let (x, _, x_no) = &printed[0];
    let (y, _, _) = &printed[1];
    assert_eq!(bench.scan(x).0["code"], "order_opened");
    for code in item_codes(&orders[x]) {
        assert_eq!(bench.scan(&code).1, 0);
    }
    // The buyer asks for a refund while X is on the bench: its waybill is an INTERCEPT.
    sim.mutate(x, json!({"refund": "requested"}));
    let (out, code) = bench.scan(x_no);
    assert_eq!(
        (out["verdict"].as_str(), code),
        (Some("intercept"), 7),
        "{out}"
    );
    // The very next slip opens the next order, not X's INTERCEPT again.
    let (out, code) = bench.scan(y);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["code"], "order_opened", "{out}");
    assert_eq!(out["order"]["id"], y.as_str(), "{out}");
    // And the audit files that scan under Y.
    let store = st.store();
    let last = store
        .events(None)
        .unwrap()
        .into_iter()
        .rfind(|e| e.action == "bench.scan")
        .unwrap();
    assert_eq!(last.order_id.as_deref(), Some(y.as_str()), "{last:?}");
}

#[test]
fn a_handover_takes_only_packed_parcels_and_asks_the_shop_first() {
    let (st, sim, printed, orders) = printed_bench(8);
    let bench = Bench { st: &st, sim: &sim };
    let zto: Vec<&(String, String, String)> = printed.iter().filter(|p| p.1 == "ZTO").collect();
    assert!(zto.len() >= 5, "{zto:?}");
    ok(&bench.handover(&["open", "--courier", "ZTO"]));

    // Never packed at a bench: refused, naming the bench step that is missing.
    let (_, _, u_no) = zto[0];
    let out = bench.handover(&["scan", u_no]);
    assert_eq!(out.status.code(), Some(7));
    let v = json_of(&out);
    assert_eq!(v["code"], "not_packed", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("packing bench"),
        "{v}"
    );
    assert!(
        v["message_zh"].as_str().unwrap().contains("打包台验货"),
        "{v}"
    );

    // Packed, then refunded on the shop (the station has not pulled since):
    // the handover scan re-reads the shop and refuses it.
    let (x, _, x_no) = zto[1];
    bench.pack(x, x_no, &orders[x]);
    sim.mutate(x, json!({"refund": "requested"}));
    let out = bench.handover(&["scan", x_no]);
    assert_eq!(out.status.code(), Some(7));
    let v = json_of(&out);
    assert_eq!(
        (v["code"].as_str(), v["shop"].as_str()),
        (Some("intercept"), Some("checked")),
        "{v}"
    );

    // Packed and scanned in, then refunded: the close re-reads every order and
    // takes it out; the rest is handed over.
    let (y, _, y_no) = zto[2];
    let (z, _, z_no) = zto[3];
    bench.pack(y, y_no, &orders[y]);
    bench.pack(z, z_no, &orders[z]);
    for n in [y_no, z_no] {
        let v = json_of(&ok_out(bench.handover(&["scan", n])));
        assert_eq!(v["shop"], "checked", "{v}");
    }
    sim.mutate(y, json!({"refund": "requested"}));
    let closed = json_of(&ok_out(bench.handover(&["close"])));
    assert_eq!(closed["count"], 1, "{closed}");
    assert_eq!(closed["order_ids"], json!([z]), "{closed}");
    assert_eq!(closed["removed"][0]["order_id"], y.as_str(), "{closed}");
    assert_eq!(closed["shop"], "checked", "{closed}");
    assert_eq!(closed["unchecked"], json!([]), "{closed}");

    // The shop down at a handover scan: the parcel goes in on the last known
    // state, and the answer says so.
    let (w, _, w_no) = zto[4];
    bench.pack(w, w_no, &orders[w]);
    ok(&bench.handover(&["open", "--courier", "ZTO"]));
    sim.set_faults(json!({"force_status": 503}));
    let v = json_of(&ok_out(bench.handover(&["scan", w_no])));
    assert_eq!(
        (v["accepted"].as_bool(), v["shop"].as_str()),
        (Some(true), Some("unreachable")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("did not answer"),
        "{v}"
    );
    sim.set_faults(json!({}));

    // A warehouse that does not check at a bench says so in its config.
    st.write("station.toml", "[handover]\nrequire_packed = false\n");
    let v = json_of(&ok_out(bench.handover(&["scan", u_no])));
    assert_eq!(v["accepted"], true, "{v}");

    // Closed while the shop is down: the batch closes on the last known
    // state, and the answer names every order it could not check.
    sim.set_faults(json!({"force_status": 503}));
    let closed = json_of(&ok_out(bench.handover(&["close"])));
    sim.set_faults(json!({}));
    assert_eq!(closed["shop"], "unreachable", "{closed}");
    let mut unchecked = vec![w.as_str(), zto[0].0.as_str()];
    unchecked.sort();
    assert_eq!(closed["unchecked"], json!(unchecked), "{closed}");
}

/// What a scanner types under a Chinese input method, as the code it read.
fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap(),
            c => c,
        })
        .collect()
}

#[test]
fn a_scanner_under_a_chinese_input_method_still_scans() {
    let (st, sim, printed, orders) = printed_bench(4);
    let bench = Bench { st: &st, sim: &sim };
    // An order of several units whose first SKU has letters, so that both
    // the lower-case scan and the Tab-terminated ones are exercised.
    let units_of = |id: &str| -> u64 {
        orders[id]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["qty"].as_u64().unwrap())
            .sum()
    };
    let (id, courier, number) = printed
        .iter()
        .find(|(id, _, _)| {
            units_of(id) >= 2
                && orders[id.as_str()]["items"][0]["sku"]
                    .as_str()
                    .unwrap()
                    .bytes()
                    .any(|b| b.is_ascii_alphabetic())
        })
        .expect("the printed wave has an order of two or more units with a lettered SKU");
    // The slip's QR with its AIM identifier, in full-width digits (an IME in
    // full-width mode) and CR LF.
    let (out, code) = bench.scan(&format!("]Q1{}\r\n", full_width(id)));
    assert_eq!(
        (out["code"].as_str(), code),
        (Some("order_opened"), 0),
        "{out}"
    );
    // Items: the first by its SKU in lower case (Caps Lock), the rest by
    // barcode with Tab as the suffix.
    let mut units = Vec::new();
    for item in orders[id]["items"].as_array().unwrap() {
        for _ in 0..item["qty"].as_u64().unwrap() {
            units.push(item);
        }
    }
    for (n, item) in units.iter().enumerate() {
        let sku = item["sku"].as_str().unwrap();
        let scanned = if n == 0 {
            sku.to_lowercase()
        } else {
            format!("{}\t", item["barcode"].as_str().unwrap_or(sku))
        };
        if n == 0 {
            assert_ne!(scanned, sku, "the first unit is scanned in lower case");
        }
        let (out, code) = bench.scan(&scanned);
        assert_eq!(
            (out["verdict"].as_str(), code),
            (Some("ok"), 0),
            "{scanned:?}: {out}"
        );
    }
    // Letters eaten by Pinyin composition: not a wrong item, a keyboard to switch.
    let (out, code) = bench.scan("是否一二");
    assert_eq!(code, 7);
    assert_eq!(out["code"], "unreadable_code", "{out}");
    assert!(
        out["message_zh"]
            .as_str()
            .unwrap()
            .contains("切换到英文半角输入"),
        "{out}"
    );
    // The waybill in full width packs it; the handover takes it the same way.
    let (out, _) = bench.scan(&full_width(number));
    assert_eq!(out["code"], "packed", "{out}");
    // Scanned again (a double read): not a red STOP, just "already packed".
    let (out, code) = bench.scan(number);
    assert_eq!(
        (out["verdict"].as_str(), out["code"].as_str(), code),
        (Some("ok"), Some("already_packed"), 0),
        "{out}"
    );
    ok(&bench.handover(&["open", "--courier", courier]));
    let v = json_of(&ok_out(
        bench.handover(&["scan", &format!(" {}\r\n", full_width(number))]),
    ));
    assert_eq!(v["accepted"], true, "{v}");
    assert_eq!(v["tracking_no"], number.as_str(), "{v}");
}

#[test]
fn weighing_catches_a_missing_item_and_the_weight_reaches_the_shop() {
    let (st, sim, printed, orders) = printed_bench(4);
    let bench = Bench { st: &st, sim: &sim };
    let (id, courier, number) = &printed[0];
    let expected: u64 = orders[id]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["weight_g"].as_u64().unwrap() * i["qty"].as_u64().unwrap())
        .sum();
    assert_eq!(bench.scan(id).0["code"], "order_opened");
    for code in item_codes(&orders[id]) {
        assert_eq!(bench.scan(&code).0["verdict"], "ok");
    }
    let weighed = |w: &str| {
        let out = bench
            .cmd()
            .args(["--json", "scan", "--bench", "b1", number, "--weight", w])
            .output()
            .unwrap();
        (json_of(&out), out.status.code().unwrap())
    };
    // Something extra in the box (an item packed twice, a wrong item): the
    // scale says so (STOP, both weights named), nothing packed.
    let heavy = format!("{}g", expected * 2 + 300);
    let (out, code) = weighed(&heavy);
    assert_eq!(
        (out["code"].as_str(), code),
        (Some("weight_mismatch"), 7),
        "{out}"
    );
    let msg = out["message_zh"].as_str().unwrap();
    assert!(msg.contains("包裹重") && msg.contains("商品应重"), "{out}");
    // Not a weight: a usage error naming the option.
    let bad = bench
        .cmd()
        .args(["scan", "--bench", "b1", number, "--weight", "heavy"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--weight"));
    // Within 15% + 50 g (the box, the tape): packed with its weight.
    let right = format!("{:.3}kg", (expected + 40) as f64 / 1000.0);
    let (out, code) = weighed(&right);
    assert_eq!((out["code"].as_str(), code), (Some("packed"), 0), "{out}");
    let story = json_of(&ok_out(
        bench.cmd().args(["--json", "show", id]).output().unwrap(),
    ));
    assert_eq!(
        story[0]["packings"][0]["weight_g"],
        expected + 40,
        "{story}"
    );

    // Handed over and synced: the shop's shipment carries the weight (v1.1).
    ok(&bench.handover(&["open", "--courier", courier]));
    ok_out(bench.handover(&["scan", number]));
    let closed = json_of(&ok_out(bench.handover(&["close"])));
    // The manifest (交接单) prints the weighed weight, not the catalogue's.
    if decoders() {
        let manifest = st.dir.path().join(closed["manifest"].as_str().unwrap());
        let out = Command::new("pdftotext")
            .args(["-layout"])
            .arg(&manifest)
            .arg("-")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let kg = format!("{:.2}", (expected + 40) as f64 / 1000.0);
        assert!(text.contains(&kg), "{kg} not on the manifest:\n{text}");
    }
    ok(&bench.cmd().args(["sync"]).output().unwrap());
    let shipments = sim.shipments();
    let ours = shipments
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tracking_no"] == number.as_str())
        .unwrap_or_else(|| panic!("no shipment for {number}: {shipments}"));
    assert_eq!(ours["weight_g"], expected + 40, "{ours}");
}

/// The handover's two refusals that need history: a parcel already handed
/// over in another batch, and one whose order changed on the shop after its
/// label was printed (found by the handover's own re-read of the shop).
#[test]
fn a_handover_refuses_a_parcel_of_another_batch_and_a_changed_order() {
    let (st, sim, printed, orders) = printed_bench(8);
    let bench = Bench { st: &st, sim: &sim };
    let zto: Vec<&(String, String, String)> = printed.iter().filter(|p| p.1 == "ZTO").collect();
    assert!(zto.len() >= 2, "{zto:?}");
    let (p, _, p_no) = zto[0];
    let (q, _, q_no) = zto[1];
    bench.pack(p, p_no, &orders[p]);
    bench.pack(q, q_no, &orders[q]);

    // P goes out in batch 1.
    ok(&bench.handover(&["open", "--courier", "ZTO"]));
    let first = json_of(&ok_out(bench.handover(&["scan", p_no])));
    let batch_one = first["batch"]["id"].as_str().unwrap().to_string();
    ok(&bench.handover(&["close"]));

    // Scanned again into batch 2: refused, naming batch 1.
    ok(&bench.handover(&["open", "--courier", "ZTO"]));
    let out = bench.handover(&["scan", p_no]);
    assert_eq!(out.status.code(), Some(7));
    let v = json_of(&out);
    assert_eq!(v["code"], "in_other_batch", "{v}");
    assert!(v["message"].as_str().unwrap().contains(&batch_one), "{v}");
    assert!(
        v["message_zh"].as_str().unwrap().contains(&batch_one),
        "{v}"
    );

    // Q's address changes on the shop after packing: the handover scan reads
    // the new version and refuses the old label.
    sim.mutate(q, json!({"address": "改过的地址 88 号"}));
    let out = bench.handover(&["scan", q_no]);
    assert_eq!(out.status.code(), Some(7));
    let v = json_of(&out);
    assert_eq!(
        (v["code"].as_str(), v["shop"].as_str()),
        (Some("changed_after_print"), Some("checked")),
        "{v}"
    );
    assert!(v["message_zh"].as_str().unwrap().contains("重打"), "{v}");
    // Neither went into batch 2; both refusals are in the audit trail.
    let batch = json_of(&ok_out(bench.handover(&["show"])));
    assert_eq!(batch[0]["count"], 0, "{batch}");
    let story = json_of(&ok_out(
        st.cmd().args(["--json", "show", q]).output().unwrap(),
    ));
    assert!(story.to_string().contains("handover.refused"), "{story}");
}

/// Returns intake (退货登记): a parcel the courier took comes back. What came
/// back is recorded with who, why and in what condition; an unknown code, an
/// item not in the parcel, more than it held and an order that never left are
/// refused; the shop's order moves to the returns flag with the memo, after
/// its green flag, and even when the buyer was refunded meanwhile.
#[test]
fn a_returned_parcel_is_received_and_the_shop_gets_the_returns_flag() {
    let (st, sim, printed, orders) = printed_bench(8);
    let bench = Bench { st: &st, sim: &sim };
    let zto: Vec<&Printed> = printed.iter().filter(|p| p.1 == "ZTO").collect();
    assert!(zto.len() >= 3, "{zto:?}");
    let ((a, courier, a_no), (b, _, b_no)) = (zto[0], zto[1]);
    let (never, _, never_no) = zto[2];
    bench.pack(a, a_no, &orders[a]);
    bench.pack(b, b_no, &orders[b]);
    ok(&bench.handover(&["open", "--courier", courier]));
    ok_out(bench.handover(&["scan", a_no]));
    ok_out(bench.handover(&["scan", b_no]));
    ok_out(bench.handover(&["close"]));

    let receive = |code: &str, args: &[&str]| -> (Value, i32) {
        let out = bench
            .cmd()
            .args([
                "--json",
                "--operator",
                "退货员小李",
                "returns",
                "receive",
                code,
            ])
            .args(args)
            .output()
            .unwrap();
        (json_of(&out), out.status.code().unwrap())
    };
    let item = &orders[a]["items"][0];
    let sku = item["sku"].as_str().unwrap();
    let qty = item["qty"].as_u64().unwrap();
    let code_of_item = item["barcode"].as_str().unwrap_or(sku);

    // Refusals name what is wrong, exit 7, and record nothing.
    let (out, code) = receive("NOT-OURS-123", &["--item", sku]);
    assert_eq!((out["code"].as_str(), code), (Some("unknown_code"), 7));
    let (out, code) = receive(never_no, &["--item", sku]);
    assert_eq!((out["code"].as_str(), code), (Some("not_shipped"), 7));
    assert!(out["message"].as_str().unwrap().contains(never.as_str()));
    let (out, code) = receive(a_no, &["--item", "NOT-IN-THE-ORDER"]);
    assert_eq!((out["code"].as_str(), code), (Some("unknown_item"), 7));
    let too_many = format!("{code_of_item}:{}", qty + 1);
    let (out, code) = receive(a_no, &["--item", &too_many]);
    assert_eq!((out["code"].as_str(), code), (Some("too_many"), 7), "{out}");
    let (out, code) = receive(a_no, &[]);
    assert_eq!((out["code"].as_str(), code), (Some("no_items"), 7), "{out}");

    // Received by its waybill, the item by its barcode, damaged, with a reason.
    let all = format!("{code_of_item}:{qty}");
    let (got, code) = receive(
        a_no,
        &[
            "--item",
            &all,
            "--reason",
            "质量问题",
            "--condition",
            "damaged",
            "--bench",
            "r1",
        ],
    );
    assert_eq!(code, 0, "{got}");
    assert_eq!(got["order_id"], a.as_str());
    assert_eq!(got["lines"][0]["sku"], sku);
    assert_eq!(got["lines"][0]["qty"], qty);
    let memo = got["memo"].as_str().unwrap().to_string();
    for part in [
        format!("退货已收 #{}", got["receipt"]),
        format!("{sku} ×{qty}"),
        "破损".into(),
        "质量问题".into(),
        "退货员小李".into(),
    ] {
        assert!(memo.contains(&part), "{part:?} not in {memo:?}");
    }
    // All of that SKU is back: one more is more than the parcel held.
    let (out, code) = receive(a, &["--item", sku]);
    assert_eq!((out["code"].as_str(), code), (Some("too_many"), 7), "{out}");

    // `show` and the day report list it, with who and where.
    let story = json_of(&ok_out(
        bench.cmd().args(["--json", "show", a]).output().unwrap(),
    ));
    let r = &story[0]["returns"];
    assert_eq!(r.as_array().unwrap().len(), 1, "{story}");
    assert_eq!(
        (
            r[0]["sku"].as_str(),
            r[0]["qty"].as_u64(),
            r[0]["condition"].as_str()
        ),
        (Some(sku), Some(qty), Some("damaged"))
    );
    assert_eq!(
        (r[0]["operator"].as_str(), r[0]["bench"].as_str()),
        (Some("退货员小李"), Some("r1"))
    );
    assert!(
        story[0]["summary"].as_str().unwrap().contains("came back"),
        "{story}"
    );
    let report = json_of(&ok_out(
        bench.cmd().args(["--json", "report"]).output().unwrap(),
    ));
    assert_eq!(report["returns"][0]["order_id"], a.as_str(), "{report}");
    let text = ok(&bench.cmd().args(["report"]).output().unwrap());
    assert!(
        text.contains("returns received") && text.contains(sku),
        "{text}"
    );

    // The write-back: the handover's shipment and green flag first, then the
    // returns flag with its memo, one of each.
    ok(&bench.cmd().args(["sync"]).output().unwrap());
    let shop = sim.order(a);
    assert_eq!(shop["flag"], "blue", "{shop}");
    let memos: Vec<&str> = shop["memos"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    let done = memos.iter().position(|m| m.starts_with("已交接"));
    let back = memos.iter().position(|m| *m == memo);
    assert!(done.is_some() && back.is_some() && done < back, "{memos:?}");
    assert_eq!(memos.iter().filter(|m| **m == memo).count(), 1, "{memos:?}");

    // B shipped and synced, then refunded on the shop (the buyer returned it):
    // the return is still received and the returns flag still set.
    sim.mutate(b, json!({"refund": "refunded"}));
    let b_item = orders[b]["items"][0]["sku"].as_str().unwrap();
    let (got, code) = receive(b, &["--item", b_item]);
    assert_eq!(code, 0, "{got}");
    ok(&bench.cmd().args(["sync"]).output().unwrap());
    let shop = sim.order(b);
    assert_eq!(shop["flag"], "blue", "{shop}");
    let last = shop["memos"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["text"], got["memo"], "{shop}");
    let status = st.status();
    assert_eq!(status["outbox"]["pending"], 0, "{status}");
}
