//! Pick lists (拣货单) and slots (格位): the real binary prints a wave from the
//! shop simulator; the pick list is read back with poppler and zbar.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

fn text_of(pdf: &Path, layout: bool) -> String {
    let mut c = Command::new("pdftotext");
    if layout {
        c.arg("-layout");
    }
    let out = c
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every barcode zbar reads on the PDF's pages (rendered at 300 dpi).
fn barcodes(pdf: &Path, dir: &Path) -> BTreeSet<String> {
    let prefix = dir.join("page");
    let out = Command::new("pdftoppm")
        .args(["-r", "300", "-gray", "-png"])
        .arg(pdf)
        .arg(&prefix)
        .output()
        .expect("pdftoppm (poppler-utils)");
    assert!(out.status.success(), "{out:?}");
    let mut found = BTreeSet::new();
    for page in std::fs::read_dir(dir).unwrap() {
        let page = page.unwrap().path();
        if !page.to_string_lossy().ends_with(".png") {
            continue;
        }
        let out = Command::new("zbarimg")
            .args(["--raw", "-q", "-Scode128.enable=1"])
            .arg(&page)
            .output()
            .expect("zbarimg (zbar-tools)");
        found.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
        );
    }
    found
}

#[test]
fn a_wave_writes_a_pick_list_in_shelf_order_that_sums_its_items_and_scans() {
    let st = Station::new();
    let all = read_json(&data("orders-200.json"));
    let orders: Vec<Value> = all.as_array().unwrap()[..80].to_vec();
    let file = st.write("orders.json", &serde_json::to_string(&orders).unwrap());
    let sim = Sim::start(&file, "tok", &[]);
    st.write("locations.csv", "sku,location\nHM-CABLE,C-10\n");
    st.write(
        "station.toml",
        "[picking]\nlocations_csv = \"locations.csv\"\n\n[[locations]]\nprefix = \"HM-\"\nlocation = \"C-2\"\n\n[[locations]]\nprefix = \"CS-\"\nlocation = \"A-07\"\n",
    );
    ok(&st.pull(&sim, &[]));
    let out = st.cmd().args(["print", "--json"]).output().unwrap();
    let printed: Value = serde_json::from_str(&ok(&out)).unwrap();
    let pick = st
        .dir
        .path()
        .join(printed["picklist"].as_str().expect("a pick list"));

    // What the wave holds, from the shop's own orders.
    let ids: BTreeSet<&str> = printed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 80);
    let mut want: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut codes = BTreeSet::new();
    for o in &orders {
        let mut seen = BTreeSet::new();
        for i in o["items"].as_array().unwrap() {
            let sku = i["sku"].as_str().unwrap().to_string();
            let e = want.entry(sku.clone()).or_default();
            e.0 += i["qty"].as_u64().unwrap();
            if seen.insert(sku.clone()) {
                e.1 += 1;
            }
            codes.insert(i["barcode"].as_str().unwrap_or(&sku).to_string());
        }
    }
    let total: u64 = want.values().map(|v| v.0).sum();

    // Each SKU's line: its shelf first, then quantity and order count last.
    let text = text_of(&pick, true);
    assert!(text.contains(&format!("{} 单", ids.len())), "{text}");
    assert!(text.contains(&format!("共 {total} 件")), "{text}");
    let mut shelves = Vec::new();
    for (sku, (qty, n)) in &want {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == sku))
            .unwrap_or_else(|| panic!("{sku} is not on the pick list:\n{text}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let shelf = words[0];
        let expected_shelf = if sku == "HM-CABLE" {
            "C-10"
        } else if sku.starts_with("HM-") {
            "C-2"
        } else if sku.starts_with("CS-") {
            "A-07"
        } else {
            "未设库位"
        };
        assert_eq!(shelf, expected_shelf, "{line}");
        assert_eq!(
            &words[words.len() - 2..],
            &[qty.to_string().as_str(), n.to_string().as_str()],
            "{sku}: {line}"
        );
        let at = text.find(line).unwrap();
        shelves.push((at, shelf.to_string()));
    }
    // In walking order: A-07, then C-2 before C-10, unknown shelves last.
    shelves.sort();
    let order: Vec<&str> = shelves.iter().map(|(_, s)| s.as_str()).collect();
    let mut dedup = order.clone();
    dedup.dedup();
    assert_eq!(dedup, ["A-07", "C-2", "C-10", "未设库位"], "{order:?}");

    // Every line's barcode scans (zbar on the rendered pages).
    let pages = tempfile::tempdir().unwrap();
    let read = barcodes(&pick, pages.path());
    assert_eq!(read, codes, "barcodes on the pick list");

    // The slot table: every order with its slot 1…N, in wave order; each
    // order's slip shows its slot.
    let plain = text_of(&pick, false);
    assert!(plain.contains("分拣格位表"), "{plain}");
    for (slot, o) in printed["orders"].as_array().unwrap().iter().enumerate() {
        let id = o["order_id"].as_str().unwrap();
        // A 64-character id wraps in its column: its start is on the row.
        let start: String = id.chars().take(16).collect();
        let row = text
            .lines()
            .find(|l| l.contains(&start))
            .unwrap_or_else(|| panic!("{id} not in the slot table"));
        assert_eq!(
            row.split_whitespace().next(),
            Some((slot + 1).to_string().as_str()),
            "{row}"
        );
    }
    let first = &printed["orders"][0];
    let slip = Command::new("pdftotext")
        .args(["-f", "1", "-l", "1"])
        .arg(st.dir.path().join(first["slip_file"].as_str().unwrap()))
        .arg("-")
        .output()
        .unwrap();
    let slip = String::from_utf8_lossy(&slip.stdout);
    assert!(
        slip.lines().any(|l| l.trim() == "1"),
        "slot 1 on the slip:\n{slip}"
    );

    // A loose item scanned with no order open says which slot needs it.
    let first_id = first["order_id"].as_str().unwrap();
    let first_order = orders.iter().find(|o| o["id"] == first_id).unwrap();
    let item = &first_order["items"][0];
    let code = item["barcode"].as_str().or(item["sku"].as_str()).unwrap();
    let out = st.cmd().args(["scan", code]).output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{said}");
    assert!(
        said.contains(&format!("slot 1 (order {first_id}, wave 1)")),
        "{said}"
    );

    // `station picklist 1` writes it again, the same lines.
    let again = ok(&st.cmd().args(["picklist", "1"]).output().unwrap());
    assert_eq!(
        Path::new(again.trim()),
        pick.strip_prefix(st.dir.path()).unwrap_or(&pick)
    );
    let text2 = text_of(&pick, true);
    let body = |t: &str| {
        t.lines()
            .filter(|l| !l.contains("打印时间"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(body(&text2), body(&text));
}
