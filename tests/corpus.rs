//! The nastiest inputs we could think of, through the whole flow: pull (with
//! overlapping pages and conflicting duplicate copies) → print → bench scan →
//! handover → sync, with the real binary and the real simulator.
//!
//! The corpus is `tests/data/corpus/nasty.jsonl` (written by `gen_corpus.py`
//! next to it) and its expectations `nasty.expect.json`: each order is either
//! printed — and then its text is read back from the PDFs with `pdftotext` —
//! or rejected with a reason naming the order and the field. This test adds the
//! inputs too big or too repetitive for a file: an order of 1,000 items and
//! the same ids served several times (a newer copy, a stale copy, a conflicting
//! copy at the same version). Nothing may panic, and every valid order is
//! printed, packed, handed over and shipped exactly once.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

fn corpus(name: &str) -> std::path::PathBuf {
    data("corpus").join(name)
}

fn no_panic(what: &str, out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked at"), "{what} panicked:\n{err}");
    assert_ne!(out.status.code(), Some(101), "{what} panicked:\n{err}");
}

/// A valid order (the corpus's own base) under a new id.
fn base(id: &str) -> Value {
    let first = std::fs::read_to_string(corpus("nasty.jsonl")).unwrap();
    let mut o: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    o["id"] = json!(id);
    o["recipient"]["address"] = json!("科技园路32号紫薇苑18栋1单元2502室");
    o
}

fn pdftotext(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(out.status.success(), "pdftotext {}", pdf.display());
    String::from_utf8(out.stdout).unwrap()
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn the_nastiest_inputs_are_printed_correctly_or_rejected_by_field() {
    let st = Station::new();
    let expect: BTreeMap<String, Value> =
        serde_json::from_value(read_json(&corpus("nasty.expect.json"))).unwrap();
    let mut lines: Vec<String> = std::fs::read_to_string(corpus("nasty.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();

    // Generated: 1,000 items in one order.
    let mut big = base("N-ITEMS-1000");
    let items: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"sku": format!("SKU-{i:04}"), "title": format!("商品{i}"), "spec": null,
                   "qty": 1, "unit_price": "1.00", "barcode": null, "weight_g": 10})
        })
        .collect();
    big["items"] = json!(items);
    // Duplicate ids across pages: a newer copy later, a stale copy later, and a
    // conflicting copy at the same version.
    let mut up1 = base("N-DUP-NEWER");
    up1["recipient"]["address"] = json!("旧地址路 1 号");
    let mut up2 = up1.clone();
    up2["version"] = json!(2);
    up2["recipient"]["address"] = json!("新地址路 2 号");
    let mut stale2 = base("N-DUP-STALE");
    stale2["version"] = json!(2);
    stale2["recipient"]["address"] = json!("最新地址街 9 号");
    let mut stale1 = stale2.clone();
    stale1["version"] = json!(1);
    stale1["recipient"]["address"] = json!("过期地址街 1 号");
    let conflict1 = base("N-DUP-CONFLICT");
    let mut conflict2 = conflict1.clone();
    conflict2["recipient"]["address"] = json!("同版本不同地址");
    lines.insert(0, big.to_string());
    lines.insert(1, up1.to_string());
    lines.insert(2, stale2.to_string());
    lines.insert(3, conflict1.to_string());
    for late in [&up2, &stale1, &conflict2] {
        lines.push(late.to_string());
    }
    let file = st.write("served.jsonl", &(lines.join("\n") + "\n"));

    let mut printed_expect: BTreeMap<String, Value> = expect
        .iter()
        .filter(|(_, e)| e["outcome"] == "printed")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    printed_expect.insert(
        "N-ITEMS-1000".into(),
        json!({"texts": ["SKU-0999", "商品999"]}),
    );
    printed_expect.insert("N-DUP-NEWER".into(), json!({"texts": ["新地址路"]}));
    printed_expect.insert("N-DUP-STALE".into(), json!({"texts": ["最新地址街"]}));
    // The first copy is kept; the conflicting one is reported (below).
    printed_expect.insert("N-DUP-CONFLICT".into(), json!({"texts": []}));
    let rejected_expect: BTreeMap<&String, &str> = expect
        .iter()
        .filter(|(_, e)| e["outcome"] == "rejected")
        .map(|(k, e)| (k, e["field"].as_str().unwrap()))
        .collect();

    st.write(
        "station.toml",
        "[shop]\npage_size = 7\n\n[bench]\nrequire_item_scans = false\n\n[outbox]\nsend_timeout_secs = 2\nretry_first_secs = 1\nretry_max_secs = 2\n",
    );
    let sim = Sim::start(&file, "corpus-token", &["--overlap", "2"]);
    let run = |args: &[&str]| -> Output {
        let out = st
            .cmd()
            .args(args)
            .env("STATION_SHOP_URL", &sim.url)
            .env("STATION_SHOP_TOKEN", &sim.token)
            .output()
            .unwrap();
        no_panic(&format!("{args:?}"), &out);
        out
    };
    let json = |args: &[&str]| -> Value {
        let out = run(args);
        serde_json::from_str(&ok(&out)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    };
    let mut table: Vec<(String, String)> = Vec::new();

    // Pull.
    let pulled = json(&["--json", "pull"]);
    assert_eq!(
        pulled["new"].as_u64(),
        Some(printed_expect.len() as u64),
        "{pulled}"
    );
    assert!(pulled["duplicates"].as_u64().unwrap() >= 3, "{pulled}");
    // The copy of N-DUP-CONFLICT at the same version with another address is
    // named, not dropped silently (and only it: overlap copies are identical).
    let conflicts = pulled["conflicting_copies"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{pulled}");
    assert!(
        conflicts[0].as_str().unwrap().starts_with(
            "order \"N-DUP-CONFLICT\": the shop sent two different copies of version 1"
        ),
        "{pulled}"
    );

    // Every rejection names the order (or its place) and the field.
    let status = st.status();
    let rejected: BTreeMap<String, String> = status["rejected"]
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
    for (id, field) in &rejected_expect {
        let reason = rejected
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{id:?} not rejected: {rejected:#?}"));
        assert!(reason.contains(field), "{id}: {reason:?} lacks {field:?}");
        let named = if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            reason.starts_with(&format!("order {id}:"))
        } else {
            reason.starts_with(&format!("order {id:?}:"))
        };
        assert!(named, "{id}: {reason}");
        table.push((id.to_string(), format!("rejected: {reason}")));
    }
    // The payload with no id: rejected by its place on the page. (The
    // entries that are not objects have no status, so the shop's paid list
    // never carries them; `import` below meets them.)
    let by_place: Vec<&String> = rejected.keys().filter(|k| k.starts_with("page ")).collect();
    assert_eq!(by_place.len(), 1, "{rejected:#?}");
    for k in &by_place {
        let reason = &rejected[*k];
        assert!(reason.contains("id is required"), "{reason}");
        table.push((k.to_string(), format!("rejected: {reason}")));
    }
    assert_eq!(
        rejected.len(),
        rejected_expect.len() + by_place.len(),
        "{rejected:#?}"
    );

    // Print: every valid order once.
    // Every nasty order is one buyer's to one address: printed apart, each on its own.
    let printed = json(&["--json", "print", "--out", "labels", "--no-merge"]);
    assert_eq!(printed["failed"], json!([]), "{printed}");
    let printed_ids: Vec<&str> = printed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["order_id"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = printed_ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        printed_ids.len(),
        "printed twice: {printed_ids:?}"
    );
    assert_eq!(
        unique,
        printed_expect.keys().map(String::as_str).collect(),
        "{printed}"
    );
    let warnings: BTreeMap<String, Vec<String>> = printed["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .fold(BTreeMap::new(), |mut m, w| {
            m.entry(w[0].as_str().unwrap().to_string())
                .or_default()
                .push(w[1].as_str().unwrap().to_string());
            m
        });

    // Read the documents back.
    let mut text = String::new();
    for f in printed["files"].as_array().unwrap() {
        let path = st.dir.path().join(f.as_str().unwrap());
        if path.extension().is_some_and(|e| e == "pdf") {
            text.push_str(&pdftotext(&path));
        }
    }
    let flat = compact(&text);
    for (id, e) in &printed_expect {
        for t in e["texts"].as_array().unwrap() {
            let t = t.as_str().unwrap();
            assert!(
                flat.contains(&compact(t)),
                "{id}: {t:?} not in the printed text ({:?})",
                warnings.get(id)
            );
        }
        // Text cut to its box is flagged for a person, never cut silently.
        if let Some(warned) = e["warned"].as_str() {
            let said = warnings.get(id).map(|w| w.join(" ")).unwrap_or_default();
            assert!(
                said.contains(warned),
                "{id}: not flagged {warned:?}: {said}"
            );
        }
        // Characters no font has are reported, never dropped silently.
        if let Some(may_miss) = e["may_miss"].as_str() {
            let said = warnings.get(id).map(|w| w.join(" ")).unwrap_or_default();
            for ch in may_miss.chars() {
                assert!(
                    flat.contains(ch)
                        || said.contains(ch)
                        || said.contains(&format!("U+{:04X}", ch as u32)),
                    "{id}: {ch:?} (U+{:04X}) neither printed nor reported: {said}",
                    ch as u32
                );
            }
        }
        let w = warnings.get(id).map(|w| w.join("; ")).unwrap_or_default();
        table.push((
            id.clone(),
            if w.is_empty() {
                "printed, text checked".into()
            } else {
                format!("printed, text checked; warned: {w}")
            },
        ));
    }
    // Injected template text is printed as it is, never evaluated, and the
    // controls never reach the page.
    assert!(!flat.contains("{{7*7}}49"), "template evaluated");
    for c in ['\u{0}', '\u{7}', '\u{202e}'] {
        assert!(!text.contains(c), "{c:?} reached the page");
    }
    // The newest copy of a duplicated order was printed, not the stale one.
    assert!(!flat.contains("旧地址路") && !flat.contains("过期地址街"));

    // Bench: open with the slip, (scan the very long SKU), pack with the waybill.
    let mut scanned_text = None;
    for p in printed["orders"].as_array().unwrap() {
        let id = p["order_id"].as_str().unwrap();
        let tracking = p["tracking_no"].as_str().unwrap();
        if id == "N-ANSI" {
            // In text, as an operator at a terminal sees it: titles and memo
            // come from the shop.
            let text = ok(&run(&["scan", "--bench", "b1", id]));
            assert!(text.starts_with("OK order_opened"), "{text}");
            assert!(text.contains("伞\\u{1b}[8m隐藏"), "{text}");
            scanned_text = Some(text);
        } else {
            let opened = json(&["--json", "scan", "--bench", "b1", id]);
            assert_eq!(opened["code"], "order_opened", "{id}: {opened}");
        }
        if id == "N-LONG-SKU" {
            let sku = format!("SKU-{}", "X".repeat(496));
            let item = json(&["--json", "scan", "--bench", "b1", &sku]);
            assert_eq!(item["verdict"], "ok", "{item}");
        }
        let packed = json(&["--json", "scan", "--bench", "b1", tracking]);
        assert_eq!(packed["code"], "packed", "{id}: {packed}");
    }
    // Handover, one batch per courier, and the write-back.
    let mut by_courier: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in printed["orders"].as_array().unwrap() {
        by_courier
            .entry(p["courier"].as_str().unwrap())
            .or_default()
            .push(p["tracking_no"].as_str().unwrap());
    }
    for (courier, numbers) in &by_courier {
        let batch = json(&["--json", "handover", "open", "--courier", courier])["id"]
            .as_str()
            .unwrap()
            .to_string();
        for n in numbers {
            json(&["--json", "handover", "scan", "--batch", &batch, n]);
        }
        let closed = json(&["--json", "handover", "close", "--batch", &batch]);
        assert_eq!(closed["count"], numbers.len(), "{closed}");
    }
    let synced = json(&["--json", "sync"]);
    assert_eq!(synced["outbox"]["pending"], 0, "{synced}");
    assert_eq!(synced["outbox"]["alerts"], json!([]), "{synced}");
    let status = st.status();
    assert_eq!(
        status["counts"]["shipped"].as_u64(),
        Some(printed_expect.len() as u64),
        "{status}"
    );
    // `status`, `show` and `scan` in text cope with every order, and shop
    // text never sends an escape sequence or a bidi override to the terminal.
    let terminal_safe = |what: &str, text: &str| {
        assert!(
            !text.contains(['\u{1b}', '\u{9b}', '\u{7}', '\u{0}', '\u{202e}']),
            "{what} wrote raw controls to the terminal: {text:?}"
        );
    };
    terminal_safe("status", &ok(&run(&["status"])));
    for id in printed_expect.keys() {
        terminal_safe(&format!("show {id}"), &ok(&run(&["show", id])));
    }
    let shown = ok(&run(&["show", "N-ANSI"]));
    assert!(
        shown.contains("\\u{1b}[1;31m"),
        "escaped, not dropped: {shown}"
    );
    terminal_safe("scan", &scanned_text.expect("N-ANSI was scanned"));

    // The same file imported: the lines that are not orders at all are
    // rejected by record number, the rest as above.
    let other = Station::new();
    let out = other
        .cmd()
        .args(["--json", "import"])
        .arg(corpus("nasty.jsonl"))
        .output()
        .unwrap();
    no_panic("import", &out);
    let imported: Value = serde_json::from_str(&ok(&out)).unwrap();
    let reasons: Vec<&str> = imported["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let not_objects: Vec<&&str> = reasons
        .iter()
        .filter(|r| r.contains("nasty.jsonl record") && r.contains("not a JSON object"))
        .collect();
    assert_eq!(not_objects.len(), 3, "{reasons:#?}");
    for r in not_objects {
        table.push(("(import) non-object line".into(), format!("rejected: {r}")));
    }
    assert_eq!(
        imported["new"].as_u64(),
        Some(
            expect
                .values()
                .filter(|e| e["outcome"] == "printed")
                .count() as u64
        ),
        "{imported}"
    );

    eprintln!("\n| corpus input | outcome |\n|---|---|");
    for (id, outcome) in &table {
        let outcome: String = outcome.chars().take(160).collect();
        eprintln!("| {} | {} |", id.escape_debug(), outcome.escape_debug());
    }
}
