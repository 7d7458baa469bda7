//! Merged parcels (合并发货): generated repeat buyers go through the real
//! binary against the shop simulator — pull, print, bench, handover, sync —
//! and the slips are read back with poppler.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;

/// The merge rule, written out from the issue: the same buyer, the same
/// recipient (spaces and full-width characters aside), the same courier and
/// service, the same urgency.
fn merge_key(o: &Value, courier: &str) -> String {
    let norm = |v: &Value| -> String {
        v.as_str()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap(),
                c => c,
            })
            .collect()
    };
    let r = &o["recipient"];
    let newest_memo_flag = o["memos"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|m| {
            chrono::DateTime::parse_from_rfc3339(m["at"].as_str().unwrap())
                .unwrap()
                .timestamp()
        })
        .map(|m| m["flag"].clone())
        .unwrap_or(Value::Null);
    let urgent = o["shipping"]["service"] == "express"
        || o["flag"] == "purple"
        || newest_memo_flag == "purple";
    format!(
        "{}|{}|{}|{}{}{}{}|{courier}|{}|{urgent}",
        o["buyer"]["nick"],
        norm(&r["name"]),
        norm(&r["phone"]),
        norm(&r["province"]),
        norm(&r["city"]),
        norm(&r["district"]),
        norm(&r["address"]),
        o["shipping"]["service"]
    )
}

fn pdf_text(path: &std::path::Path, page: u64) -> String {
    let out = Command::new("pdftotext")
        .args(["-f", &page.to_string(), "-l", &page.to_string()])
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn repeat_buyers_ship_one_parcel_each_and_every_order_is_written_back() {
    let st = Station::new();
    let generated =
        station::shop::generate::generate_json(&station::shop::generate::GenerateOptions {
            count: 150,
            seed: 16,
            repeat_buyer_rate: 0.1,
            ..Default::default()
        });
    let text: String = generated.iter().map(|o| format!("{o}\n")).collect();
    let file = st.write("orders.jsonl", &text);
    let orders: HashMap<String, Value> = generated
        .into_iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o))
        .collect();
    let sim = Sim::start(&file, "merge-token", &[]);
    // Most parcels go to the courier straight from print; the ones under
    // test are packed at a bench first.
    st.write("station.toml", "[handover]\nrequire_packed = false\n");
    ok(&st.pull(&sim, &[]));
    let printed: Value =
        serde_json::from_str(&ok(&st.cmd().args(["--json", "print"]).output().unwrap())).unwrap();
    let rows = printed["orders"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 150);

    // One parcel per group of the merge rule, and no other sharing.
    let mut by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by_number: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut number_of: HashMap<String, String> = HashMap::new();
    for r in &rows {
        let id = r["order_id"].as_str().unwrap().to_string();
        let courier = r["courier"].as_str().unwrap();
        let no = r["tracking_no"].as_str().unwrap().to_string();
        by_key
            .entry(merge_key(&orders[&id], courier))
            .or_default()
            .insert(id.clone());
        by_number.entry(no.clone()).or_default().insert(id.clone());
        number_of.insert(id, no);
    }
    let groups: BTreeSet<&BTreeSet<String>> = by_key.values().collect();
    let parcels: BTreeSet<&BTreeSet<String>> = by_number.values().collect();
    assert_eq!(
        parcels, groups,
        "parcels are exactly the merge rule's groups"
    );
    let merged: Vec<&BTreeSet<String>> = parcels.iter().copied().filter(|p| p.len() > 1).collect();
    assert!(merged.len() >= 8, "repeat buyers merged: {merged:?}");
    assert!(merged.iter().any(|p| p.len() == 3), "{merged:?}");
    // Repeat buyers the rule keeps apart (another address or courier) exist too.
    let mut by_nick: BTreeMap<&str, BTreeSet<&String>> = BTreeMap::new();
    for (id, o) in &orders {
        by_nick
            .entry(o["buyer"]["nick"].as_str().unwrap())
            .or_default()
            .insert(&number_of[id]);
    }
    assert!(
        by_nick.values().any(|numbers| numbers.len() > 1),
        "a repeat buyer with two parcels"
    );
    assert_eq!(
        printed["parcels"].as_u64(),
        Some(by_number.len() as u64),
        "{printed}"
    );

    // One slip per parcel, listing every order; the waybill names them too.
    let slip_of = |id: &str| {
        let r = rows.iter().find(|r| r["order_id"] == id).unwrap();
        pdf_text(
            &st.dir.path().join(r["slip_file"].as_str().unwrap()),
            r["slip_page"].as_u64().unwrap(),
        )
    };
    let three = *merged.iter().find(|p| p.len() == 3).unwrap();
    let lead = rows
        .iter()
        .map(|r| r["order_id"].as_str().unwrap())
        .find(|id| three.contains(*id))
        .unwrap()
        .to_string();
    let slip = slip_of(&lead).replace(char::is_whitespace, "");
    assert!(slip.contains("合并3单"), "{slip}");
    for id in three {
        assert!(slip.contains(id.as_str()), "{id} on the slip:\n{slip}");
    }
    let total: u64 = three
        .iter()
        .map(|id| item_codes(&orders[id]).len() as u64)
        .sum();
    assert!(slip.contains(&format!("合计：{total}件")), "{slip}");

    // The slip's QR is the lead's id (the bench opens the parcel with it).
    let r = rows
        .iter()
        .find(|r| r["order_id"] == lead.as_str())
        .unwrap();
    let png = st.dir.path().join("slip");
    let out = Command::new("pdftoppm")
        .args(["-r", "200", "-png", "-singlefile"])
        .args([
            "-f",
            &r["slip_page"].to_string(),
            "-l",
            &r["slip_page"].to_string(),
        ])
        .arg(st.dir.path().join(r["slip_file"].as_str().unwrap()))
        .arg(&png)
        .output()
        .expect("pdftoppm (poppler-utils)");
    assert!(out.status.success(), "{out:?}");
    let out = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(png.with_extension("png"))
        .output()
        .expect("zbarimg (zbar-tools)");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), lead);

    // The pick list sums every order's items, merged or not.
    let pick = Command::new("pdftotext")
        .arg(st.dir.path().join(printed["picklist"].as_str().unwrap()))
        .arg("-")
        .output()
        .unwrap();
    let pick = String::from_utf8_lossy(&pick.stdout).replace(char::is_whitespace, "");
    let all_items: usize = orders.values().map(|o| item_codes(o).len()).sum();
    assert!(pick.contains("150单"), "{pick}");
    assert!(pick.contains(&format!("共{all_items}件")), "{pick}");

    // The bench: a rider's id opens the whole parcel; every item of every
    // order, then the one waybill, packs all three.
    let bench = |code: &str| -> Value {
        json_of(
            &st.cmd_with_shop(&sim)
                .args(["--json", "scan", "--bench", "b1", code])
                .output()
                .unwrap(),
        )
    };
    let rider = three.iter().find(|id| **id != lead).unwrap();
    let opened = bench(rider);
    assert_eq!(opened["code"], "order_opened", "{opened}");
    assert_eq!(opened["order"]["id"], lead.as_str());
    let in_parcel: BTreeSet<String> = opened["order"]["parcel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(&in_parcel, three);
    for id in three {
        for code in item_codes(&orders[id]) {
            let out = bench(&code);
            assert_eq!(out["verdict"], "ok", "{out}");
        }
    }
    let packed = bench(&number_of[&lead]);
    assert_eq!(packed["code"], "packed", "{packed}");
    let state = |id: &str| -> String {
        json_of(&st.cmd().args(["--json", "show", id]).output().unwrap())[0]["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for id in three {
        assert_eq!(state(id), "packed", "{id}");
    }

    // A refund of one order of another parcel: the bench stops the whole
    // parcel (拦截), and the reprint ships the rest under a new number.
    let two = *merged
        .iter()
        .find(|p| p.len() >= 2 && *p != &three)
        .unwrap();
    let two_lead = rows
        .iter()
        .map(|r| r["order_id"].as_str().unwrap())
        .find(|id| two.contains(*id))
        .unwrap()
        .to_string();
    let refunded = two.iter().find(|id| **id != two_lead).unwrap().clone();
    sim.mutate(&refunded, json!({"refund": "requested"}));
    let stop = bench(&two_lead);
    assert_eq!(
        (stop["verdict"].as_str(), stop["code"].as_str()),
        (Some("intercept"), Some("intercept")),
        "{stop}"
    );
    assert!(
        stop["message"].as_str().unwrap().contains(&refunded),
        "{stop}"
    );
    assert_eq!(stop["can_reprint"], true, "{stop}");
    let two_courier = rows
        .iter()
        .find(|r| r["order_id"] == two_lead.as_str())
        .unwrap()["courier"]
        .as_str()
        .unwrap()
        .to_string();
    let open_batch = |courier: &str| -> String {
        json_of(
            &st.cmd()
                .args(["--json", "handover", "open", "--courier", courier])
                .output()
                .unwrap(),
        )["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let two_batch = open_batch(&two_courier);
    let handover_refused = json_of(
        &st.cmd_with_shop(&sim)
            .args(["--json", "handover", "scan", &number_of[&two_lead]])
            .output()
            .unwrap(),
    );
    assert_eq!(
        (
            handover_refused["accepted"].as_bool(),
            handover_refused["code"].as_str()
        ),
        (Some(false), Some("intercept")),
        "{handover_refused}"
    );
    assert!(
        handover_refused["message"]
            .as_str()
            .unwrap()
            .contains(&refunded),
        "{handover_refused}"
    );
    let re = json_of(
        &st.cmd()
            .args(["--json", "reprint", &two_lead])
            .output()
            .unwrap(),
    );
    let new_number = re["tracking_no"].as_str().unwrap().to_string();
    assert_ne!(new_number, number_of[&two_lead], "{re}");
    let rest: BTreeSet<String> = two.iter().filter(|id| **id != refunded).cloned().collect();
    for id in &rest {
        assert_eq!(state(id), "printed", "{id}");
        number_of.insert(id.clone(), new_number.clone());
    }
    assert_eq!(state(&refunded), "intercept");
    let old = json_of(
        &st.cmd()
            .args(["--json", "show", &two_lead])
            .output()
            .unwrap(),
    );
    assert!(old.to_string().contains(&new_number), "{old}");

    // A third parcel: one of its orders is refunded after its scan into the
    // batch; the close re-reads every order and takes the whole parcel out.
    let late = *merged.iter().find(|p| *p != &three && *p != &two).unwrap();
    let late_number = number_of[late.iter().next().unwrap()].clone();
    let late_lead = rows
        .iter()
        .map(|r| r["order_id"].as_str().unwrap())
        .find(|id| late.contains(*id))
        .unwrap()
        .to_string();
    let late_rider = late.iter().find(|id| **id != late_lead).unwrap().clone();

    // The couriers take every parcel: one scan each, closed, written back.
    let mut expected_parcels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, no) in &number_of {
        if *id != refunded && !late.contains(id) {
            expected_parcels
                .entry(no.clone())
                .or_default()
                .insert(id.clone());
        }
    }
    let mut couriers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut scanned = expected_parcels.clone();
    scanned.insert(late_number.clone(), late.clone());
    for (no, ids) in &scanned {
        let id = ids.iter().next().unwrap();
        let courier = rows.iter().find(|r| r["order_id"] == id.as_str()).unwrap()["courier"]
            .as_str()
            .unwrap()
            .to_string();
        couriers.entry(courier).or_default().push(no.clone());
    }
    let mut manifest_checked = false;
    for (courier, numbers) in &couriers {
        let batch = if *courier == two_courier {
            two_batch.clone()
        } else {
            open_batch(courier)
        };
        for no in numbers {
            let v = json_of(
                &st.cmd_with_shop(&sim)
                    .args(["--json", "handover", "scan", no, "--batch", &batch])
                    .output()
                    .unwrap(),
            );
            assert_eq!(v["accepted"], true, "{no}: {v}");
        }
        let holds_late = numbers.contains(&late_number);
        if holds_late {
            sim.mutate(&late_rider, json!({"refund": "requested"}));
        }
        let closed = json_of(
            &st.cmd_with_shop(&sim)
                .args(["--json", "handover", "close", "--batch", &batch])
                .output()
                .unwrap(),
        );
        assert_eq!(
            closed["count"].as_u64(),
            Some(numbers.len() as u64 - u64::from(holds_late)),
            "{closed}"
        );
        if holds_late {
            let removed = &closed["removed"][0];
            assert_eq!(removed["order_id"], late_lead.as_str(), "{closed}");
            assert!(
                removed["reason"].as_str().unwrap().contains(&late_rider),
                "{closed}"
            );
        }
        // The manifest: one row per parcel; a merged one says how many orders.
        if numbers.contains(&number_of[&lead]) {
            let manifest = Command::new("pdftotext")
                .arg(st.dir.path().join(closed["manifest"].as_str().unwrap()))
                .arg("-")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&manifest.stdout).replace(char::is_whitespace, "");
            assert!(text.contains(&format!("{lead}等3单")), "{text}");
            manifest_checked = true;
        }
    }
    assert!(manifest_checked);
    ok(&st.cmd_with_shop(&sim).args(["sync"]).output().unwrap());

    // Each order: one shipment naming its parcel's number, a green flag and its own memo.
    let shipments = sim.shipments();
    let mut shipped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in shipments.as_array().unwrap() {
        shipped
            .entry(s["order_id"].as_str().unwrap().to_string())
            .or_default()
            .push(s["tracking_no"].as_str().unwrap().to_string());
    }
    for (no, ids) in &expected_parcels {
        for id in ids {
            assert_eq!(shipped.get(id), Some(&vec![no.clone()]), "{id}");
            let o = sim.order(id);
            assert_eq!(o["flag"], "green", "{id}: {o}");
            let memo = o["memos"].as_array().unwrap().last().unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(memo.contains(no.as_str()), "{id}: {memo}");
        }
    }
    assert!(!shipped.contains_key(&refunded));
    for id in late {
        assert!(!shipped.contains_key(id), "{id} of the parcel taken out");
    }
    assert_eq!(
        shipped.len(),
        149 - late.len(),
        "every order but the refunded ones' parcels shipped once"
    );

    // The bulk-shipping export lists every order with its parcel's number.
    let csv = ok(&st
        .cmd()
        .args(["export", "--format", "csv"])
        .output()
        .unwrap());
    let exported: BTreeMap<String, String> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect();
    // Not the two refunded orders (intercepted); the late parcel's others
    // are still printed under its number.
    assert_eq!(csv.lines().count(), 1 + 148, "{csv}");
    for (no, ids) in &expected_parcels {
        for id in ids {
            assert_eq!(exported.get(id), Some(no), "{id}");
        }
    }

    // `--no-merge`: the same orders, a parcel each.
    let apart = Station::new();
    let fresh = Sim::start(&file, "merge-token", &[]);
    ok(&apart.pull(&fresh, &[]));
    let alone: Value = serde_json::from_str(&ok(&apart
        .cmd()
        .args(["--json", "print", "--no-merge"])
        .output()
        .unwrap()))
    .unwrap();
    let numbers: BTreeSet<&str> = alone["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["tracking_no"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), alone["orders"].as_array().unwrap().len());
}
