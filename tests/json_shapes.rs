//! The shape of every command's `--json` output, pinned: scripts read these,
//! so a key renamed, dropped or turned from a number into a string must be a
//! deliberate change. One scripted run (pull → print → bench → handover →
//! sync, plus the other commands) records each output's shape — its keys and
//! their types, not their values — and compares it with
//! `tests/snapshots/json-shapes.json`.
//!
//! After a deliberate change: `UPDATE_SNAPSHOTS=1 cargo test --test json_shapes`
//! rewrites the file; review its diff like code.

mod common;

use common::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const SNAPSHOT: &str = "tests/snapshots/json-shapes.json";

/// A value's shape: objects keep their keys, arrays the merged shape of their
/// elements, scalars become their type's name.
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => {
            let merged = items.iter().map(shape).reduce(merge);
            json!([merged.unwrap_or(json!("empty"))])
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

/// Two shapes of one place as one: objects by key, arrays by element; scalar
/// types that differ (a value that is sometimes null) as "a|b".
fn merge(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut x), Value::Object(y)) => {
            for (k, v) in y {
                let merged = match x.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                x.insert(k, merged);
            }
            Value::Object(x)
        }
        (Value::Array(x), Value::Array(y)) => {
            let one = |mut v: Vec<Value>| v.pop().unwrap_or(json!("empty"));
            match (one(x), one(y)) {
                (Value::String(e), other) | (other, Value::String(e)) if e == "empty" => {
                    json!([other])
                }
                (p, q) => json!([merge(p, q)]),
            }
        }
        (a, b) if a == b => a,
        (a, b) => {
            let mut kinds: Vec<String> = [a, b]
                .iter()
                .flat_map(|v| match v {
                    Value::String(s) => s.split('|').map(str::to_string).collect(),
                    other => vec![other.to_string()],
                })
                .collect();
            kinds.sort();
            kinds.dedup();
            json!(kinds.join("|"))
        }
    }
}

struct Run {
    st: Station,
    sim: Sim,
    shapes: BTreeMap<String, Value>,
}

impl Run {
    /// Run `station --json ARGS`, which must exit with `code`, and record the
    /// shape of what it printed under `name`.
    fn record(&mut self, name: &str, args: &[&str], code: i32) -> Value {
        let out = self
            .st
            .cmd_with_shop(&self.sim)
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: --json printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        let s = shape(&v);
        let merged = match self.shapes.remove(name) {
            Some(old) => merge(old, s),
            None => s,
        };
        self.shapes.insert(name.to_string(), merged);
        v
    }
}

#[test]
fn every_json_output_keeps_its_shape() {
    let st = Station::new();
    // The day's cut-off at midnight has always passed, so the lists it fills
    // (`dispatch.after_cutoff`) have the same shape whatever the hour the test
    // runs at; with the default 17:00 they were empty before 17:00 and full after.
    st.write("station.toml", "[dispatch]\ncutoff = \"00:00\"\n");
    let all = read_json(&data("orders-200.json"));
    let mut orders: Vec<Value> = all.as_array().unwrap()[..8].to_vec();
    // A character in no font (private use): the print's warnings have their shape.
    let nick = orders[4]["buyer"]["nick"].as_str().unwrap().to_string();
    orders[4]["buyer"]["nick"] = json!(format!("{nick}\u{e000}"));
    let mut bad = orders[0].clone();
    bad["id"] = json!("BAD-QTY-1");
    bad["items"][0]["qty"] = json!(0);
    let served: String = orders[..6]
        .iter()
        .chain([&bad])
        .map(|o| format!("{o}\n"))
        .collect();
    let file = st.write("orders.jsonl", &served);
    let imported: String = orders[6..].iter().map(|o| format!("{o}\n")).collect();
    let import_file = st.write("more.jsonl", &imported);
    let sim = Sim::start(&file, "shape-token", &[]);
    let mut run = Run {
        st,
        sim,
        shapes: BTreeMap::new(),
    };

    run.record("pull", &["pull"], 0);
    run.record("import", &["import", import_file.to_str().unwrap()], 0);
    let printed = run.record("print", &["print"], 0);
    let parcels: Vec<(String, String, String)> = printed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("order_id"), s("courier"), s("tracking_no"))
        })
        .collect();
    run.record("status", &["status"], 0);

    // The bench: slip, items, waybill; then a wrong item (STOP, exit 7).
    let (id, courier, tracking) = parcels[0].clone();
    run.record("scan", &["scan", &id], 0);
    let order = orders.iter().find(|o| o["id"] == id.as_str()).unwrap();
    for item in order["items"].as_array().unwrap() {
        let code = item["barcode"].as_str().or(item["sku"].as_str()).unwrap();
        for _ in 0..item["qty"].as_u64().unwrap() {
            run.record("scan", &["scan", code], 0);
        }
    }
    run.record("scan", &["scan", &tracking], 0);
    let (other, _, _) = parcels[1].clone();
    run.record("scan", &["scan", &other], 0);
    run.record("scan", &["scan", "NOT-AN-ITEM-0000"], 7);

    // Handover of the packed parcel, then the write-back.
    run.record(
        "handover open",
        &["handover", "open", "--courier", &courier],
        0,
    );
    run.record("handover scan", &["handover", "scan", &tracking], 0);
    run.record("handover show", &["handover", "show"], 0);
    run.record("handover close", &["handover", "close"], 0);
    run.record("sync", &["sync"], 0);
    run.record("couriers", &["couriers"], 0);
    // The parcel comes back (退货登记); then one more than it held (refused).
    let returned = order["items"][0]["sku"].as_str().unwrap();
    let held = order["items"][0]["qty"].as_u64().unwrap();
    let all = format!("{returned}:{held}");
    let receive = [
        "returns",
        "receive",
        &id,
        "--item",
        &all,
        "--reason",
        "质量问题",
    ];
    run.record("returns receive", &receive, 0);
    run.record("returns receive", &receive, 7);
    run.record("show", &["show", &id], 0);

    // Exceptions: out of stock, a voided number, a reprint.
    let (short_id, _, _) = parcels[2].clone();
    let short_order = orders
        .iter()
        .find(|o| o["id"] == short_id.as_str())
        .unwrap();
    let sku = short_order["items"][0]["sku"].as_str().unwrap();
    run.record("short", &["short", &short_id, sku], 0);
    let (void_id, _, void_no) = parcels[3].clone();
    run.record("void", &["void", &void_no], 0);
    run.record("reprint", &["reprint", &void_id], 0);

    run.record("report", &["report"], 0);
    // A PostgreSQL station is backed up with the server's tools (pg_dump).
    if run.st.sqlite_only("station backup copies a SQLite file") {
        let backup = run.st.dir.path().join("copy.db");
        run.record("backup", &["backup", backup.to_str().unwrap()], 0);
    }
    run.record("purge", &["purge", "--older-than", "90d"], 0);

    let shapes = Value::Object(run.shapes.into_iter().collect::<Map<_, _>>());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
    let text = serde_json::to_string_pretty(&shapes).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() && run.st.pg.is_none() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let mut pinned: Value = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 writes it)", path.display())),
    )
    .unwrap();
    if run.st.pg.is_some() {
        // On PostgreSQL: the same shapes, but for the backup, not run there.
        pinned.as_object_mut().unwrap().remove("backup");
    }
    if pinned != shapes {
        let (Value::Object(p), Value::Object(n)) = (&pinned, &shapes) else {
            unreachable!()
        };
        let mut changed = Vec::new();
        for k in p.keys().chain(n.keys()) {
            if p.get(k) != n.get(k) && !changed.contains(k) {
                changed.push(k.clone());
            }
        }
        panic!(
            "the --json output of {changed:?} changed shape; scripts depend on it. If that is deliberate, run UPDATE_SNAPSHOTS=1 cargo test --test json_shapes and review the diff of {SNAPSHOT}.\nnow:\n{text}"
        );
    }
}

#[test]
fn shapes_merge_optional_values_and_array_elements() {
    let a = shape(&json!({"n": 1, "xs": [{"a": null}, {"a": "x", "b": true}], "e": []}));
    assert_eq!(
        a,
        json!({"n": "number", "xs": [{"a": "null|string", "b": "bool"}], "e": ["empty"]})
    );
    let b = merge(a.clone(), shape(&json!({"n": 2, "xs": [], "e": [3]})));
    assert_eq!(
        b,
        json!({"n": "number", "xs": [{"a": "null|string", "b": "bool"}], "e": ["number"]})
    );
}
