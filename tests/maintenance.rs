//! `station backup` while the station works, and `station doctor`.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn a_backup_taken_during_a_wave_is_a_sound_database_and_doctor_says_so() {
    let st = Station::new();
    if !st.sqlite_only("station backup copies a SQLite file (PostgreSQL: pg_dump)") {
        return;
    }
    let orders = st.write("orders.jsonl", &fixture_lines(&[]));
    let sim = Sim::start(&orders, "doc-token", &[]);
    ok(&st.pull(&sim, &[]));

    // Back up in the middle of a wave: the wave is held right after its
    // first chunk committed (a test pause point), the backup runs, then the
    // wave goes on.
    let pause = st.dir.path().join("pause");
    std::fs::create_dir(&pause).unwrap();
    let mut wave = st
        .cmd()
        .args(["print"])
        .env("STATION_PAUSE_AT", "wave.chunk.committed")
        .env("STATION_PAUSE_DIR", &pause)
        .spawn()
        .unwrap();
    wait_paused(&pause, &mut wave);
    let backup = st.dir.path().join("backup.db");
    ok(&st.cmd().arg("backup").arg(&backup).output().unwrap());
    release_pause(&pause);
    assert!(wave.wait().unwrap().success());
    // The copy holds the wave half printed: open, some orders printed, the
    // rest planned with their numbers.
    {
        let copy = station::store::Store::open(&backup).unwrap();
        let counts = copy.status().unwrap().counts;
        let printed = counts.get("printed").copied().unwrap_or(0);
        assert!(printed > 0 && printed < 180, "mid-wave: {counts:?}");
    }

    // The copy opens, passes SQLite's integrity check, and holds every order.
    let doctor = |db: &std::path::Path| {
        // In the station's directory: its station.toml names the sender.
        on().current_dir(st.dir.path())
            .arg("--db")
            .arg(db)
            .args(["--json", "doctor"])
            .env("STATION_SHOP_URL", &sim.url)
            .env("STATION_SHOP_TOKEN", &sim.token)
            .output()
            .unwrap()
    };
    let out = doctor(&backup);
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{checks}");
    for c in checks.as_array().unwrap() {
        assert_eq!(c["ok"], true, "{c}");
    }
    let copy = station::store::Store::open(&backup).unwrap();
    assert_eq!(copy.status().unwrap().counts["rejected"], 20);
    let total: u64 = copy
        .status()
        .unwrap()
        .counts
        .iter()
        .filter(|(k, _)| k.as_str() != "rejected")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(total, 200);

    // A damaged database and a wrong token are named, with what to do.
    let bad = st.write("damaged.db", "this is not a database");
    let out = on()
        .current_dir(st.dir.path())
        .arg("--db")
        .arg(&bad)
        .args(["--json", "doctor"])
        .env("STATION_SHOP_URL", &sim.url)
        .env("STATION_SHOP_TOKEN", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["database", "shop"], "{checks}");
    assert!(
        checks.to_string().contains("STATION_SHOP_TOKEN"),
        "{checks}"
    );
    // Backing up onto the database itself is refused; on PostgreSQL a
    // backup is the server's (pg_dump), refused as a usage error too.
    let target = match st.pg {
        Some(_) => st.dir.path().join("copy.db"),
        None => st.db(),
    };
    let out = st.cmd().arg("backup").arg(target).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A station command on another database file than the test's own.
fn on() -> std::process::Command {
    let mut c = std::process::Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("STATION_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn purge_removes_recipients_of_shipped_orders_from_the_database_and_the_pdfs() {
    let st = Station::new();
    let all = read_json(&data("orders-200.json"));
    let chosen: Vec<Value> = all.as_array().unwrap()[..6].to_vec();
    let text: String = chosen.iter().map(|o| format!("{o}\n")).collect();
    let file = st.write("orders.jsonl", &text);
    let sim = Sim::start(&file, "purge-token", &[]);
    // Purging is the subject: parcels go to the courier without a bench check.
    st.write("station.toml", "[handover]\nrequire_packed = false\n");
    ok(&st.pull(&sim, &[]));
    let printed: Value =
        serde_json::from_str(&ok(&st.cmd().args(["--json", "print"]).output().unwrap())).unwrap();
    let zto: Vec<&Value> = printed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["courier"] == "ZTO")
        .collect();
    ok(&st
        .cmd()
        .args(["handover", "open", "--courier", "ZTO"])
        .output()
        .unwrap());
    for p in &zto {
        ok(&st
            .cmd()
            .args(["handover", "scan", p["tracking_no"].as_str().unwrap()])
            .output()
            .unwrap());
    }
    ok(&st.cmd().args(["handover", "close"]).output().unwrap());
    let wave_files: Vec<std::path::PathBuf> = printed["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| st.dir.path().join(f.as_str().unwrap()))
        .collect();
    assert!(wave_files.iter().all(|f| f.exists()));

    // Nothing is old enough under the default 90 days.
    let out: Value =
        serde_json::from_str(&ok(&st.cmd().args(["--json", "purge"]).output().unwrap())).unwrap();
    assert_eq!(out["orders"], serde_json::json!([]));

    let out: Value = serde_json::from_str(&ok(&st
        .cmd()
        .args(["--json", "purge", "--older-than", "0d"])
        .output()
        .unwrap()))
    .unwrap();
    let purged: Vec<&str> = out["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(purged.len(), zto.len(), "{out}");

    // No handed-over recipient's phone or name is left anywhere in the database
    // files; orders not handed over keep theirs.
    // (On PostgreSQL: the rows as the server returns them.)
    let mut bytes = Vec::new();
    if st.sqlite_only("the database's own files are read for leftovers") {
        bytes = std::fs::read(st.db()).unwrap();
        for suffix in ["-wal", "-shm"] {
            if let Ok(b) = std::fs::read(format!("{}{suffix}", st.db().display())) {
                bytes.extend(b);
            }
        }
    } else {
        let store = st.store();
        for o in &chosen {
            let id = o["id"].as_str().unwrap();
            if let Some(s) = store.order(id).unwrap() {
                bytes.extend(serde_json::to_vec(&s.order).unwrap());
            }
            for e in store.events(Some(id)).unwrap() {
                bytes.extend(e.detail.into_bytes());
            }
        }
    }
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    for o in &chosen {
        let id = o["id"].as_str().unwrap();
        let phone = o["recipient"]["phone"].as_str().unwrap();
        let name = o["recipient"]["name"].as_str().unwrap();
        if purged.contains(&id) {
            assert!(
                !contains(phone),
                "{id}: phone {phone} still in the database"
            );
            assert!(!contains(name), "{id}: name {name} still in the database");
        } else {
            assert!(contains(phone), "{id} was not handed over: kept");
        }
    }
    // The wave files that held only purged orders are gone; ids, numbers and
    // the audit trail stay.
    let store = st.store();
    for id in &purged {
        assert_eq!(store.tracking_numbers(id).unwrap().len(), 1);
        let events = store.events(Some(id)).unwrap();
        assert!(events.iter().any(|e| e.action == "handover.handed_over"));
        assert!(events.iter().any(|e| e.action == "privacy.purged"));
    }
    let deleted = out["deleted_files"].as_array().unwrap().len();
    if zto.len() == printed["orders"].as_array().unwrap().len() {
        assert_eq!(deleted, wave_files.len(), "{out}");
    }
}

#[test]
fn a_config_with_pin_hashes_readable_by_everyone_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let st = Station::new();
    let cfg = st.write("station.toml", &operators_toml(&[("小王", "2468")]));
    // Owner-only: accepted (status only complains that there is no database yet).
    let out = st.cmd().args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = st.cmd().args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
}

/// Logs are for operators and support: a whole day's flow at the most verbose
/// level never prints a recipient's phone number or the shop token.
#[test]
fn verbose_logs_never_show_phone_numbers_or_the_token() {
    let st = Station::new();
    let all = read_json(&data("orders-200.json"));
    let chosen: Vec<Value> = all.as_array().unwrap()[..8].to_vec();
    let text: String = chosen.iter().map(|o| format!("{o}\n")).collect();
    let file = st.write("orders.jsonl", &text);
    let token = "canary-token-5f1e2d";
    let sim = Sim::start(&file, token, &[]);
    let mut logs = String::new();
    let mut run = |args: &[&str]| {
        let out = st
            .cmd()
            .args(["-vv"])
            .args(args)
            .env("STATION_LOG", "debug")
            .env("STATION_SHOP_URL", &sim.url)
            .env("STATION_SHOP_TOKEN", token)
            .output()
            .unwrap();
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
        logs.push_str(&String::from_utf8_lossy(&out.stdout));
        out
    };
    run(&["pull"]);
    let out = run(&["--json", "print"]);
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &printed["orders"][0];
    let id = first["order_id"].as_str().unwrap().to_string();
    let number = first["tracking_no"].as_str().unwrap().to_string();
    sim.mutate(&id, serde_json::json!({"phone": "13900001111"}));
    run(&["scan", &id]);
    run(&["reprint", &id]);
    run(&["status"]);
    run(&[
        "handover",
        "open",
        "--courier",
        first["courier"].as_str().unwrap(),
    ]);
    run(&["handover", "scan", &number]);
    run(&["sync"]);
    run(&["report"]);
    assert!(
        logs.contains("DEBUG") || logs.contains("INFO"),
        "no log at all?\n{logs}"
    );
    assert!(!logs.contains(token), "the token is in the logs");
    for o in &chosen {
        let phone = o["recipient"]["phone"].as_str().unwrap();
        assert!(!logs.contains(phone), "phone {phone} in the logs:\n{logs}");
    }
    assert!(!logs.contains("13900001111"));
}

/// Every file under a directory, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A purge leaves no trace of a purged order's address, buyer message or
/// nickname in any file of the station: the database and its WAL, the wave
/// files (deleted, or, shared with an order still kept, with the purged pages
/// blanked), reprints and the handover manifest. A unique canary string in
/// each order is searched in every file (PDFs through pdftotext, everything
/// as raw bytes too). The order still kept keeps its pages where they were.
#[test]
fn a_purge_leaves_no_canary_in_any_file() {
    let have = |t: &str| std::process::Command::new(t).arg("-v").output().is_ok();
    if !have("pdftotext") {
        assert!(
            std::env::var_os("STATION_REQUIRE_TOOLS").is_none(),
            "install poppler-utils"
        );
        eprintln!("skipped: pdftotext not installed");
        return;
    }
    let st = Station::new();
    let all = read_json(&data("orders-200.json"));
    let letters = ["甲", "乙", "丙", "丁", "戊", "己"];
    let chosen: Vec<Value> = all.as_array().unwrap()[..6]
        .iter()
        .zip(letters)
        .map(|(o, l)| {
            let mut o = o.clone();
            o["shipping"]["courier"] = "ZTO".into();
            o["recipient"]["address"] = format!("金丝雀大道{l}段").into();
            o["buyer"]["message"] = format!("金丝雀留言{l}").into();
            o["buyer"]["nick"] = format!("金丝雀买家{l}").into();
            o
        })
        .collect();
    let canaries = |o: &Value| -> Vec<String> {
        vec![
            o["recipient"]["address"].as_str().unwrap().to_string(),
            o["buyer"]["message"].as_str().unwrap().to_string(),
            o["buyer"]["nick"].as_str().unwrap().to_string(),
        ]
    };
    // The shop's own copy lives outside the station's directory, which is
    // searched whole.
    let shop_dir = tempfile::tempdir().unwrap();
    let file = shop_dir.path().join("orders.jsonl");
    let text: String = chosen.iter().map(|o| format!("{o}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let sim = Sim::start(&file, "canary-token", &[]);
    st.write("station.toml", "[handover]\nrequire_packed = false\n");
    ok(&st.pull(&sim, &[]));
    let printed: Value =
        serde_json::from_str(&ok(&st.cmd().args(["--json", "print"]).output().unwrap())).unwrap();
    let orders = printed["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 6, "{printed}");
    // One order stays (not handed over): its wave files are shared.
    let kept = &orders[2];
    let kept_id = kept["order_id"].as_str().unwrap();
    // A purged order was reprinted once.
    let reprinted = orders[0]["order_id"].as_str().unwrap();
    ok(&st.cmd().args(["reprint", reprinted]).output().unwrap());
    ok(&st
        .cmd()
        .args(["handover", "open", "--courier", "ZTO"])
        .output()
        .unwrap());
    for p in orders.iter().filter(|p| p["order_id"] != kept_id) {
        ok(&st
            .cmd()
            .args(["handover", "scan", p["tracking_no"].as_str().unwrap()])
            .output()
            .unwrap());
    }
    ok(&st.cmd().args(["handover", "close"]).output().unwrap());

    // Every canary is somewhere before the purge (so the search can find them).
    let text_of = |p: &std::path::Path| -> String {
        let mut text = String::from_utf8_lossy(&std::fs::read(p).unwrap()).to_string();
        if p.extension().is_some_and(|e| e == "pdf") {
            let out = std::process::Command::new("pdftotext")
                .args(["-enc", "UTF-8"])
                .arg(p)
                .arg("-")
                .output()
                .unwrap();
            text.push_str(&String::from_utf8_lossy(&out.stdout));
        }
        text.split_whitespace().collect()
    };
    let everything = || -> Vec<(String, String)> {
        files_under(st.dir.path())
            .iter()
            .map(|p| (p.display().to_string(), text_of(p)))
            .collect()
    };
    let before = everything();
    for o in &chosen {
        let address = &canaries(o)[0];
        assert!(
            before.iter().any(|(_, t)| t.contains(address.as_str())),
            "{address} is on no label before the purge"
        );
    }

    // The retention boundary: batches closed just now are not a day old.
    let none: Value = serde_json::from_str(&ok(&st
        .cmd()
        .args(["--json", "purge", "--older-than", "1d"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(none["orders"], serde_json::json!([]), "{none}");

    let out: Value = serde_json::from_str(&ok(&st
        .cmd()
        .args(["--json", "purge", "--older-than", "0d"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(out["orders"].as_array().unwrap().len(), 5, "{out}");
    assert!(
        !out["blanked_files"].as_array().unwrap().is_empty(),
        "{out}"
    );
    assert!(
        !out["rewritten_manifests"].as_array().unwrap().is_empty(),
        "{out}"
    );
    assert_eq!(out["failed"], serde_json::json!([]), "{out}");

    let after = everything();
    for o in &chosen {
        let id = o["id"].as_str().unwrap();
        for canary in canaries(o) {
            let holders: Vec<&str> = after
                .iter()
                .filter(|(_, t)| t.contains(canary.as_str()))
                .map(|(f, _)| f.as_str())
                .collect();
            if id == kept_id {
                continue;
            }
            assert!(holders.is_empty(), "{id}: {canary} is still in {holders:?}");
        }
    }
    // The kept order's waybill is where the database says, still readable.
    let waybills = st.dir.path().join(kept["waybill_file"].as_str().unwrap());
    let page = kept["waybill_page"].as_u64().unwrap().to_string();
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8", "-f", &page, "-l", &page])
        .arg(&waybills)
        .arg("-")
        .output()
        .unwrap();
    let text: String = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect();
    let kept_order = chosen.iter().find(|o| o["id"] == kept_id).unwrap();
    assert!(text.contains(&canaries(kept_order)[0]), "{text}");
}
