//! End to end: the real binary pulls from the real simulator over loopback HTTP.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

/// Which field each kind of broken fixture order must be rejected for.
fn expected_field(tag: &str) -> &'static str {
    match tag {
        "invalid:qty_zero" => ".qty must be ≥ 1",
        "invalid:nonstring_phone" => "recipient.phone must be a string",
        "invalid:illformed_price" => ".unit_price must be",
        "invalid:negative_price" => ".unit_price must be",
        "invalid:missing_recipient" => "recipient is required",
        "invalid:unknown_flag" => ".flag must be one of",
        "invalid:unknown_order_flag" => ": flag must be one of",
        "invalid:empty_items" => "items must hold at least one item",
        "invalid:bad_id_chars" => "id must be 1..64 characters",
        other => panic!("unknown tag {other}"),
    }
}

fn valid_ids() -> HashSet<String> {
    read_json(&data("orders-200.json"))
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn fixtures_pull_every_valid_order_once_and_reject_each_invalid_one_by_field() {
    let st = Station::new();
    let orders = st.write("orders.jsonl", &fixture_lines(&[]));
    let sim = Sim::start(&orders, "t0ken-fixtures", &[]);
    let out = ok(&st.pull(&sim, &["--json"]));
    let report: Value = serde_json::from_str(&out).expect("pull --json prints one JSON object");
    assert_eq!(report["new"], 200, "{report}");
    assert_eq!(report["rejected"], 20, "{report}");

    let status = st.status();
    assert_eq!(status["counts"]["queued"], 200, "{status}");
    assert_eq!(status["counts"]["rejected"], 20, "{status}");
    let rejected: HashMap<String, String> = status["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let tags = read_json(&data("orders-invalid.tags.json"));
    for (id, tag) in tags.as_object().unwrap() {
        let reason = rejected
            .get(id)
            .unwrap_or_else(|| panic!("{id} ({tag}) not rejected"));
        assert!(
            reason.contains(id.as_str()),
            "reason must name the order: {reason}"
        );
        assert!(
            reason.contains(expected_field(tag.as_str().unwrap())),
            "{id} {tag}: {reason}"
        );
    }

    // A second pull changes nothing and stores nothing twice.
    let again: Value = serde_json::from_str(&ok(&st.pull(&sim, &["--json"]))).unwrap();
    assert_eq!(again["new"], 0);
    assert_eq!(again["unchanged"], 200);
    assert_eq!(st.status()["counts"]["queued"], 200);
}

#[test]
fn a_faulty_shop_still_yields_every_order_exactly_once_at_its_highest_version() {
    let st = Station::new();
    // Ten orders appear twice in the list: an old copy after the newest one,
    // as on a platform whose pages overlap while orders change.
    let fixtures = read_json(&data("orders-200.json"));
    let mut extra = Vec::new();
    let mut newest = HashMap::new();
    let mut lines = String::new();
    for (i, o) in fixtures.as_array().unwrap().iter().enumerate() {
        let mut o = o.clone();
        if i % 20 == 0 {
            let mut old = o.clone();
            o["version"] = json!(3);
            o["recipient"]["address"] = json!(format!(
                "{} (v3)",
                o["recipient"]["address"].as_str().unwrap()
            ));
            old["version"] = json!(1);
            old["id"] = o["id"].clone();
            extra.push(old);
            newest.insert(o["id"].as_str().unwrap().to_string(), o.clone());
        }
        lines.push_str(&o.to_string());
        lines.push('\n');
    }
    for o in &extra {
        lines.push_str(&o.to_string());
        lines.push('\n');
    }
    let orders = st.write("orders.jsonl", &lines);
    let sim = Sim::start(
        &orders,
        "t0ken-faults",
        &[
            "--fail-rate",
            "0.2",
            "--latency-ms",
            "30",
            "--overlap",
            "7",
            "--rate-limit",
            "0.1",
            "--retry-after",
            "1",
            "--seed",
            "7",
        ],
    );
    st.write(
        "station.toml",
        "[shop]\npage_size = 25\ntotal_timeout_secs = 120\n",
    );
    let out = ok(&st.pull(&sim, &["--json"]));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["new"], 200, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");

    // The faults really happened: the simulator answered 503 and 429.
    let log = sim.log();
    let codes: Vec<u64> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["status"].as_u64())
        .collect();
    assert!(codes.contains(&503), "no 503 in the simulator log");
    assert!(codes.contains(&429), "no 429 in the simulator log");

    let store = st.store();
    let status = store.status().unwrap();
    assert_eq!(status.counts["queued"], 200);
    for id in valid_ids() {
        let events = store.events(Some(&id)).unwrap();
        let queued = events
            .iter()
            .filter(|e| e.action == "intake.queued")
            .count();
        assert_eq!(queued, 1, "order {id} was stored {queued} times");
        let o = store.order(&id).unwrap().unwrap().order;
        if let Some(n) = newest.get(&id) {
            assert_eq!(o.version, 3, "order {id} not at its highest version");
            assert_eq!(
                o.recipient.address,
                n["recipient"]["address"].as_str().unwrap()
            );
        }
    }
}

#[test]
fn the_token_never_appears_in_output_logs_or_the_database() {
    let canary = "CANARY-7f3a9c-do-not-print";
    let st = Station::new();
    let orders = st.write("orders.jsonl", &fixture_lines(&[]));
    let sim = Sim::start(&orders, canary, &["--fail-rate", "0.3", "--seed", "3"]);
    let out = st.pull(&sim, &["-vv"]);
    ok(&out);
    let wrong = st
        .cmd()
        .args(["pull", "--shop-url", &sim.url])
        .env("STATION_SHOP_TOKEN", format!("{canary}-wrong"))
        .env("STATION_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(4), "a refused token exits 4");
    let status = st
        .cmd()
        .args(["status"])
        .env("STATION_SHOP_TOKEN", canary)
        .output()
        .unwrap();
    let mut seen = Vec::new();
    for o in [&out, &wrong, &status] {
        seen.extend_from_slice(&o.stdout);
        seen.extend_from_slice(&o.stderr);
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains("refused the token"),
        "the 401 is explained: {text}"
    );
    assert!(
        text.contains("retrying"),
        "-vv shows retries, so the logs were really exercised"
    );
    assert!(!text.contains("CANARY"), "token leaked to output:\n{text}");
    for entry in std::fs::read_dir(st.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "token found in {}",
            path.display()
        );
    }
}

#[test]
fn orders_changed_on_the_shop_after_pull_are_updated_marked_or_dropped() {
    let st = Station::new();
    let orders = st.write("orders.jsonl", &fixture_lines(&[]));
    let sim = Sim::start(&orders, "t0ken-mutate", &[]);
    ok(&st.pull(&sim, &[]));
    let ids: Vec<String> = {
        let store = st.store();
        store.queue().unwrap().into_iter().take(5).collect()
    };
    // Not yet printed: an address change replaces it; a flag moved off yellow
    // takes it out of the queue; a closed order leaves the shop's paid list.
    sim.mutate(&ids[0], json!({"address": "文三路 88 号 12 楼"}));
    sim.mutate(&ids[1], json!({"flag": "red"}));
    sim.mutate(&ids[2], json!({"status": "closed"}));
    // Printed (the print wave arrives in a later issue; mark it through the library).
    {
        let mut store = st.store();
        store.mark_printed(&ids[3], "打单员").unwrap();
        store.mark_printed(&ids[4], "打单员").unwrap();
    }
    sim.mutate(&ids[3], json!({"address": "改了地址 1 号"}));
    sim.mutate(&ids[4], json!({"refund": "requested"}));
    ok(&st.pull(&sim, &[]));

    let store = st.store();
    let o0 = store.order(&ids[0]).unwrap().unwrap();
    assert_eq!(o0.state.as_str(), "queued");
    assert_eq!(o0.order.recipient.address, "文三路 88 号 12 楼");
    assert!(o0.order.version >= 2);
    let state = |id: &str| store.order(id).unwrap().unwrap();
    assert_eq!(state(&ids[1]).state.as_str(), "left_queue");
    assert_eq!(
        state(&ids[1]).reason.as_deref(),
        Some("flag is red (pull flag is yellow)")
    );
    assert_eq!(state(&ids[2]).state.as_str(), "left_queue");
    assert_eq!(state(&ids[2]).reason.as_deref(), Some("status is closed"));
    assert_eq!(state(&ids[3]).state.as_str(), "changed_after_print");
    assert!(state(&ids[3]).reason.unwrap().contains("recipient.address"));
    assert_eq!(state(&ids[4]).state.as_str(), "intercept");

    let status = st.status();
    assert_eq!(status["counts"]["queued"], 196, "{status}");
    assert_eq!(status["counts"]["changed_after_print"], 1);
    assert_eq!(status["counts"]["intercept"], 1);
    assert_eq!(status["intercept"][0]["id"], ids[4].as_str());
    assert_eq!(status["intercept"][0]["reason"], "refund requested");

    // Every change is audited with the operator.
    let events = store.events(Some(&ids[4])).unwrap();
    assert!(events.iter().any(|e| e.action == "intake.marked"
        && e.operator == "测试员"
        && e.detail.contains("refund requested")));
    // The closed order was read directly, since it left the shop's paid list.
    let log = sim.log().to_string();
    assert!(
        log.contains(&format!("/v1/orders/{}", ids[2])),
        "closed order not read directly"
    );
}

#[test]
fn a_fixed_order_clears_its_rejection() {
    let st = Station::new();
    let bad = r#"{"id":"FIX-1","version":1,"status":"paid","refund":"none","flag":"yellow","created_at":"2026-11-11T00:00:00+08:00","paid_at":"2026-11-11T00:01:00+08:00","updated_at":"2026-11-11T00:02:00+08:00","buyer":{"nick":"n"},"recipient":{"name":"王小明","phone":"13812345678","province":"浙江省","city":"杭州市","address":"文三路1号"},"items":[{"sku":"A","title":"伞","qty":0,"unit_price":"45.00"}],"memos":[]}"#;
    let file = st.write("bad.jsonl", &format!("{bad}\nnot json at all\n"));
    let out = ok(&st.cmd().args(["import"]).arg(&file).output().unwrap());
    assert!(
        out.contains("order FIX-1: items[0].qty must be ≥ 1, got 0"),
        "{out}"
    );
    assert!(out.contains("bad.jsonl record 2: not valid JSON"), "{out}");
    assert_eq!(st.status()["counts"]["rejected"], 2);

    let fixed = bad
        .replace(r#""qty":0"#, r#""qty":1"#)
        .replace(r#""version":1"#, r#""version":2"#);
    let file = st.write("bad.jsonl", &format!("{fixed}\n"));
    ok(&st.cmd().args(["import"]).arg(&file).output().unwrap());
    let status = st.status();
    assert_eq!(status["counts"]["rejected"], 0, "{status}");
    assert_eq!(status["counts"]["queued"], 1);
}

#[test]
fn a_broken_platform_fails_loudly_never_as_an_empty_list() {
    let st = Station::new();
    let orders = st.write("orders.jsonl", &fixture_lines(&[]));
    st.write(
        "station.toml",
        "[shop]\npage_size = 20\ntotal_timeout_secs = 2\n",
    );

    let sim = Sim::start(&orders, "t0ken-broken", &["--repeat-cursor"]);
    let out = st.pull(&sim, &[]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("paging is broken"));
    drop(sim);

    let sim = Sim::start(&orders, "t0ken-broken", &["--fail-page", "3"]);
    let out = st.pull(&sim, &[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("list page 3") && err.contains("STATION_SHOP_URL"),
        "{err}"
    );
    assert!(
        err.contains("2 page(s) read before the failure were stored"),
        "{err}"
    );
    drop(sim);

    // Nobody listening at all.
    let out = st
        .cmd()
        .args(["pull", "--shop-url", "http://127.0.0.1:9"])
        .env("STATION_SHOP_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn usage_and_config_errors_exit_2_and_say_what_to_fix() {
    let st = Station::new();
    let out = st.cmd().args(["pull"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("STATION_SHOP_TOKEN"));

    st.write("station.toml", "[flags]\npull = \"orange\"\n");
    let out = st.cmd().args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("orange"));

    // A typo in the config is a warning; a mistyped --db is not an empty station.
    st.write("station.toml", "[shop]\nurll = \"typo\"\n");
    let out = st.cmd().args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown key `shop.urll`"), "{err}");
    assert!(err.contains("no database at"), "{err}");
    if st.pg.is_none() {
        assert!(!st.db().exists());
    }
}

#[test]
fn demo_runs_with_nothing_set_up() {
    let st = Station::new();
    let out = ok(&st
        .cmd()
        .args(["demo", "--orders", "120", "--dir", "demo"])
        .output()
        .unwrap());
    for part in [
        "pull:",
        "print: wave 1",
        "bench:",
        "STOP changed after print, reprinted",
        "INTERCEPT",
        "OUT OF STOCK",
        "handover ZTO-",
        "sync: sent",
        "Rejected",
        "Day report",
    ] {
        assert!(out.contains(part), "the demo shows {part:?}: {out}");
    }
    assert!(st.dir.path().join("demo/station.db").exists());
    let json = ok(&st
        .cmd()
        .args(["--json", "demo", "--orders", "120", "--dir", "demo"])
        .output()
        .unwrap());
    let v: Value = serde_json::from_str(&json).unwrap();
    // Everything valid and for the warehouse was printed, into files that exist.
    let printed = v["print"]["orders"].as_array().unwrap().len() as u64;
    assert!(printed > 90, "{v}");
    assert_eq!(v["status"]["counts"]["queued"], 0, "{v}");
    for f in v["print"]["files"].as_array().unwrap() {
        assert!(st.dir.path().join(f.as_str().unwrap()).exists(), "{f}");
    }
    // Every parcel but the intercepted and the out-of-stock one went to the
    // courier and is green on the shop; the out-of-stock one is blue.
    let counts = &v["status"]["counts"];
    assert_eq!(counts["intercept"], 1, "{v}");
    assert_eq!(counts["out_of_stock"], 1, "{v}");
    assert_eq!(counts["shipped"].as_u64(), Some(printed - 2), "{v}");
    let flags = &v["shop_flags_of_printed_orders"];
    assert_eq!(flags["green"].as_u64(), Some(printed - 2), "{v}");
    assert_eq!(flags["blue"], 1, "{v}");
    assert_eq!(v["sync"]["outbox"]["pending"], 0, "{v}");
    for h in v["handovers"].as_array().unwrap() {
        assert!(
            st.dir.path().join(h["manifest"].as_str().unwrap()).exists(),
            "{h}"
        );
    }
    // Repeat buyers' orders went as merged parcels: the report counts parcels.
    let parcels = v["print"]["parcels"].as_u64().unwrap();
    assert!(parcels < printed, "{v}");
    assert_eq!(v["report"]["handed_over"].as_u64(), Some(parcels - 2));
}

#[test]
fn an_intercept_survives_a_newer_invalid_version_and_rejections_do_not_repeat() {
    let st = Station::new();
    let orders = st.write("orders.jsonl", &fixture_lines(&[]));
    let sim = Sim::start(&orders, "t0ken-intercept", &[]);
    ok(&st.pull(&sim, &[]));
    let id = {
        let mut store = st.store();
        let id = store.queue().unwrap()[0].clone();
        store.mark_printed(&id, "打单员").unwrap();
        id
    };
    sim.mutate(&id, json!({"refund": "requested"}));
    ok(&st.pull(&sim, &[]));
    sim.mutate(&id, json!({"phone": 13800000000u64}));
    ok(&st.pull(&sim, &[]));
    let store = st.store();
    let o = store.order(&id).unwrap().unwrap();
    assert_eq!(o.state.as_str(), "intercept", "{:?}", o.reason);
    assert!(o.reason.unwrap().starts_with("refund requested"));
    // Pulling again re-reads the same 21 rejected payloads without new events.
    let before = store
        .events(None)
        .unwrap()
        .iter()
        .filter(|e| e.action == "intake.rejected")
        .count();
    ok(&st.pull(&sim, &[]));
    let after = store
        .events(None)
        .unwrap()
        .iter()
        .filter(|e| e.action == "intake.rejected")
        .count();
    assert_eq!(before, after);
}

#[test]
fn orders_a_shop_lost_for_one_pull_come_back() {
    let st = Station::new();
    let all = st.write("all.jsonl", &fixture_lines(&[]));
    let lines: Vec<&str> = std::fs::read_to_string(&all)
        .unwrap()
        .leak()
        .lines()
        .collect();
    let fewer = st.write("fewer.jsonl", &(lines[50..].join("\n") + "\n"));
    let full = Sim::start(&all, "t0ken-lost", &[]);
    ok(&st.pull(&full, &[]));
    let partial = Sim::start(&fewer, "t0ken-lost", &[]);
    ok(&st.pull(&partial, &[]));
    assert_eq!(st.status()["counts"]["queued"], 150);
    assert_eq!(st.status()["counts"]["left_queue"], 50);
    ok(&st.pull(&full, &[]));
    let status = st.status();
    assert_eq!(status["counts"]["queued"], 200, "{status}");
    assert_eq!(status["counts"]["left_queue"], 0, "{status}");
}

#[test]
fn import_reads_bom_arrays_and_single_pretty_orders_and_refuses_non_json() {
    let st = Station::new();
    let fixtures = read_json(&data("orders-200.json"));
    let two = json!([fixtures[0], fixtures[1]]);
    let file = st.write(
        "bom.json",
        &format!("\u{feff}{}", serde_json::to_string_pretty(&two).unwrap()),
    );
    let out: Value = serde_json::from_str(&ok(&st
        .cmd()
        .args(["--json", "import"])
        .arg(&file)
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(out["new"], 2, "{out}");
    let file = st.write(
        "one.json",
        &serde_json::to_string_pretty(&fixtures[2]).unwrap(),
    );
    let out: Value = serde_json::from_str(&ok(&st
        .cmd()
        .args(["--json", "import"])
        .arg(&file)
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(out["new"], 1, "{out}");
    let file = st.write("page.html", "<html>\n<body>login</body>\n</html>\n");
    let out = st.cmd().args(["import"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no line is JSON"));
}
