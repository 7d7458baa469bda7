//! `station backup` while the station works, and `station doctor`.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn a_backup_taken_during_a_wave_is_a_sound_database_and_doctor_says_so() {
    let st = Station::new();
    let orders = st.write("orders.jsonl", &fixture_lines(&[]));
    let sim = Sim::start(&orders, "doc-token", &[]);
    ok(&st.pull(&sim, &[]));

    // Back up while a wave prints into the same database.
    let mut wave = st.cmd().args(["print"]).spawn().unwrap();
    let backup = st.dir.path().join("backup.db");
    ok(&st.cmd().arg("backup").arg(&backup).output().unwrap());
    assert!(wave.wait().unwrap().success());

    // The copy opens, passes SQLite's integrity check, and holds every order.
    let doctor = |db: &std::path::Path| {
        on().arg("--db")
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
    // Backing up onto the database itself is refused.
    let out = st.cmd().arg("backup").arg(st.db()).output().unwrap();
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
