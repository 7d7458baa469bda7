//! Several stations on one PostgreSQL database, at once: each is the real
//! binary in its own directory with its own `station.toml`, all pointed at
//! one database with `--db postgres://…`. (Every other end-to-end suite runs
//! on PostgreSQL too under `STATION_TEST_PG`; see tests/common.)
//!
//! Needs a PostgreSQL server: `STATION_TEST_PG`'s, else 127.0.0.1:5432. Where
//! there is none the test says "skipped"; `STATION_REQUIRE_POSTGRES=1` (CI)
//! makes that a failure.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Output, Stdio};

fn spawn(st: &Station, sim: &Sim, args: &[&str]) -> Child {
    st.cmd_with_shop(sim)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn json(out: Output) -> Value {
    serde_json::from_str(&ok(&out)).unwrap()
}

/// Two stations pull at once, print at once while a third print killed
/// mid-wave is finished by one of them, hand over from both, and sync at
/// once: every order is stored once, printed once under one live number, and
/// reaches the shop as one shipment and one memo.
#[test]
fn two_stations_on_one_postgres_share_a_big_sale_and_finish_a_killed_wave() {
    let Some(base) = pg::server_or_skip("two_stations_on_one_postgres") else {
        return;
    };
    let db = pg::TestDb::create(&base);
    let config = "[print]\nchunk_size = 10\n[handover]\nrequire_packed = false\n";
    let (a, b) = (Station::on(&db), Station::on(&db));
    a.write("station.toml", config);
    b.write("station.toml", config);
    let orders = a.write("orders.jsonl", &fixture_lines(&[]));
    let sim = Sim::start(&orders, "pg-token", &[]);

    // Both pull the same 200 orders at the same time: each stored once.
    let pulls = [spawn(&a, &sim, &["pull"]), spawn(&b, &sim, &["pull"])];
    for p in pulls {
        ok(&p.wait_with_output().unwrap());
    }
    let status = a.status();
    assert_eq!(status["counts"]["queued"], 200, "{status}");
    let store = a.store();
    let taken_in = events_per_order(&store, "intake.queued");
    assert_eq!(taken_in.len(), 200);
    assert!(taken_in.values().all(|&n| n == 1), "{taken_in:?}");

    // Station A dies in the middle of a wave of 80, two chunks in.
    let killed = a
        .cmd()
        .args(["print", "--limit", "80"])
        .env("STATION_CRASH_AT", "wave.chunk.committed@2")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&killed.stderr);
    assert!(said.contains("crash point wave.chunk.committed"), "{said}");
    let waves = store
        .open_wave()
        .unwrap()
        .expect("the killed print left its wave open");
    let planned: BTreeMap<String, String> = waves
        .orders
        .iter()
        .map(|o| (o.order_id.clone(), o.tracking_no.clone()))
        .collect();
    assert_eq!(planned.len(), 80);

    // Both print at once: one finishes the killed wave with its numbers, the
    // other plans a wave of its own from the orders no open wave holds.
    let prints = [
        spawn(&a, &sim, &["--json", "print"]),
        spawn(&b, &sim, &["--json", "print"]),
    ];
    let reports: Vec<Value> = prints
        .into_iter()
        .map(|p| json(p.wait_with_output().unwrap()))
        .collect();
    let mut printed: BTreeMap<String, (String, String)> = BTreeMap::new();
    for r in &reports {
        for p in r["orders"].as_array().unwrap() {
            let id = p["order_id"].as_str().unwrap().to_string();
            let parcel = (
                p["courier"].as_str().unwrap().to_string(),
                p["tracking_no"].as_str().unwrap().to_string(),
            );
            assert!(
                printed.insert(id.clone(), parcel).is_none(),
                "{id} printed twice"
            );
        }
    }
    let per_order = events_per_order(&store, "print.printed");
    assert_eq!(per_order.len(), 200, "every order printed");
    assert!(per_order.values().all(|&n| n == 1), "{per_order:?}");
    for (id, number) in &planned {
        let live = live_numbers(&store, id);
        assert_eq!(live.len(), 1, "{id}");
        assert_eq!(
            &live[0].number, number,
            "{id}: the killed wave's number is kept"
        );
    }
    let numbers: HashSet<String> = per_order
        .keys()
        .map(|id| {
            let live = live_numbers(&store, id);
            assert_eq!(live.len(), 1, "{id}: one live number");
            live[0].number.clone()
        })
        .collect();
    assert_eq!(numbers.len(), 200, "tracking numbers are unique");
    assert!(store.open_wave().unwrap().is_none(), "no wave left open");
    let status = b.status();
    assert_eq!(status["counts"]["printed"], 200, "{status}");

    // Handover: A opens a batch per courier, A and B scan the parcels at the
    // same time (alternately), B closes the batches.
    let mut by_courier: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (courier, number) in printed.values() {
        by_courier
            .entry(courier.clone())
            .or_default()
            .push(number.clone());
    }
    for (courier, numbers) in &by_courier {
        let opened = json(
            a.cmd()
                .args(["--json", "handover", "open", "--courier", courier])
                .output()
                .unwrap(),
        );
        let batch = opened["id"].as_str().unwrap().to_string();
        std::thread::scope(|s| {
            for (k, st) in [&a, &b].into_iter().enumerate() {
                let (batch, sim) = (&batch, &sim);
                s.spawn(move || {
                    for n in numbers.iter().skip(k).step_by(2) {
                        ok(&st
                            .cmd_with_shop(sim)
                            .args(["handover", "scan", "--batch", batch, n])
                            .output()
                            .unwrap());
                    }
                });
            }
        });
        let closed = json(
            b.cmd_with_shop(&sim)
                .args(["--json", "handover", "close", "--batch", &batch])
                .output()
                .unwrap(),
        );
        assert_eq!(closed["count"], numbers.len(), "{closed}");
    }

    // Both drain the outbox at once: each send claimed by one.
    let syncs = [spawn(&a, &sim, &["sync"]), spawn(&b, &sim, &["sync"])];
    for s in syncs {
        ok(&s.wait_with_output().unwrap());
    }
    let shipments = sim.shipments();
    let mut shipped: HashMap<String, Vec<String>> = HashMap::new();
    for s in shipments.as_array().unwrap() {
        shipped
            .entry(s["order_id"].as_str().unwrap().into())
            .or_default()
            .push(s["tracking_no"].as_str().unwrap().into());
    }
    for (id, (_, number)) in &printed {
        assert_eq!(shipped.get(id), Some(&vec![number.clone()]), "{id}");
        let order = sim.order(id);
        assert_eq!(order["flag"], "green", "{order}");
        let memos: Vec<&Value> = order["memos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["text"].as_str().unwrap().starts_with("已交接"))
            .collect();
        assert_eq!(memos.len(), 1, "{id}: {memos:?}");
    }
    assert_eq!(a.status()["counts"]["shipped"], 200);
}

/// The schema is created once when stations start on an empty database at
/// the same time, and a database without the station's tables is "no
/// database" for a command that only reads.
#[test]
fn stations_starting_at_once_migrate_an_empty_database_once() {
    let Some(base) = pg::server_or_skip("stations_starting_at_once") else {
        return;
    };
    let db = pg::TestDb::create(&base);
    let st = Station::on(&db);
    let out = st.cmd().arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without the station's tables"), "{err}");
    let orders = st.write("orders.jsonl", &fixture_lines(&[]));
    let imports: Vec<Child> = (0..4)
        .map(|_| {
            st.cmd()
                .arg("import")
                .arg(&orders)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for i in imports {
        ok(&i.wait_with_output().unwrap());
    }
    assert_eq!(st.status()["counts"]["queued"], 200);
}

/// A SQLite station with a day behind it moves to PostgreSQL: a copy killed
/// before its commit leaves the destination empty, the next one copies every
/// table and checks it; the station then answers the same on PostgreSQL and
/// its number pool goes on where it was (no number issued twice).
#[test]
fn migrate_db_moves_a_sqlite_station_with_its_history() {
    let Some(base) = pg::server_or_skip("migrate_db_moves_a_sqlite_station") else {
        return;
    };
    let dest = pg::TestDb::create(&base);
    // The SQLite station, whatever STATION_TEST_PG says.
    let st = Station {
        dir: tempfile::tempdir().unwrap(),
        pg: None,
    };
    st.write("station.toml", "[handover]\nrequire_packed = false\n");
    let fixtures = read_json(&data("orders-200.json"));
    let lines: String = fixtures.as_array().unwrap()[..30]
        .iter()
        .map(|o| format!("{o}\n"))
        .collect();
    let sim = Sim::start(&st.write("orders.jsonl", &lines), "mig-token", &[]);
    ok(&st.pull(&sim, &[]));
    let printed = json(
        st.cmd_with_shop(&sim)
            .args(["--json", "print", "--limit", "20"])
            .output()
            .unwrap(),
    );
    let first = &printed["orders"][0];
    let courier = first["courier"].as_str().unwrap();
    let opened = json(
        st.cmd()
            .args(["--json", "handover", "open", "--courier", courier])
            .output()
            .unwrap(),
    );
    let batch = opened["id"].as_str().unwrap();
    ok(&st
        .cmd_with_shop(&sim)
        .args(["handover", "scan", "--batch", batch])
        .arg(first["tracking_no"].as_str().unwrap())
        .output()
        .unwrap());
    ok(&st
        .cmd_with_shop(&sim)
        .args(["handover", "close", "--batch", batch])
        .output()
        .unwrap());
    ok(&st.cmd_with_shop(&sim).arg("sync").output().unwrap());

    // Killed before its commit: nothing in the destination.
    let killed = st
        .cmd()
        .args(["migrate-db", "--to", &dest.url])
        .env("STATION_CRASH_AT", "migrate.before_commit")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&killed.stderr);
    assert!(said.contains("crash point migrate.before_commit"), "{said}");
    // The same station's directory and config, on the PostgreSQL database.
    let moved = Station::on(&dest);
    moved.write("station.toml", "[handover]\nrequire_packed = false\n");
    let on_pg = |args: &[&str]| moved.cmd_with_shop(&sim).args(args).output().unwrap();
    let status = on_pg(&["--json", "status"]);
    assert_eq!(status.status.code(), Some(0), "the schema is there");
    let empty: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(empty["counts"]["queued"], 0, "{empty}");

    // The copy, checked.
    let done = json(
        st.cmd()
            .args(["--json", "migrate-db", "--to", &dest.url])
            .output()
            .unwrap(),
    );
    assert_eq!(done["checked"], true, "{done}");
    let rows = |t: &str| {
        done["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["table"] == t)
            .unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows("orders"), 30);
    assert_eq!(rows("tracking_numbers"), 20);
    assert!(
        rows("events") > 30 && rows("outbox") == 2 && rows("pool_cursors") >= 1,
        "{done}"
    );

    // The same answers on both engines.
    for args in [
        &["--json", "status"][..],
        &["--json", "export"][..],
        &["--json", "show", first["order_id"].as_str().unwrap()][..],
    ] {
        let lite = ok(&st.cmd_with_shop(&sim).args(args).output().unwrap());
        let pg = ok(&on_pg(args));
        assert_eq!(lite, pg, "{args:?}");
    }
    // A second copy into it is refused: it is not empty.
    let again = st
        .cmd()
        .args(["migrate-db", "--to", &dest.url])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // On PostgreSQL the pool goes on: the other 10 get new, distinct numbers.
    let before: HashSet<String> = printed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tracking_no"].as_str().unwrap().to_string())
        .collect();
    let rest = json(on_pg(&["--json", "print"]));
    let after: HashSet<String> = rest["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tracking_no"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(after.len(), 10, "{rest}");
    assert!(before.is_disjoint(&after), "{before:?} {after:?}");
    let events = json(on_pg(&[
        "--json",
        "show",
        first["order_id"].as_str().unwrap(),
    ]));
    assert!(events.to_string().contains("handover"), "{events}");
}

/// PostgreSQL goes away in the middle of a wave and during a sync, and a
/// long-lived connection meets the outage: each command stops with an error
/// naming the database (exit 5, no panic), the open connection reconnects when
/// the server is back, and the work then finishes with nothing lost or done
/// twice. The outage is a relay the test cuts (`pg::Proxy`), not a sleep.
#[test]
fn postgres_going_away_mid_wave_and_mid_sync_loses_and_doubles_nothing() {
    let Some(base) = pg::server_or_skip("postgres_going_away") else {
        return;
    };
    let db = pg::TestDb::create(&base);
    let proxy = pg::Proxy::to(&db);
    let st = Station::on(&db.via(proxy.url(&db)));
    st.write(
        "station.toml",
        "[print]\nchunk_size = 10\n[handover]\nrequire_packed = false\n",
    );
    let fixtures = read_json(&data("orders-200.json"));
    let lines: String = fixtures.as_array().unwrap()[..60]
        .iter()
        .map(|o| format!("{o}\n"))
        .collect();
    let sim = Sim::start(&st.write("orders.jsonl", &lines), "outage-token", &[]);
    ok(&st.pull(&sim, &[]));
    let named = |out: &Output| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{err}");
        assert!(
            err.contains(&format!("127.0.0.1:{}", proxy.port)),
            "the database is named: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    };

    // The wave: held after its first chunk is committed, the database goes
    // away, the wave goes on and stops at its next write.
    let pause = st.dir.path().join("pause");
    std::fs::create_dir(&pause).unwrap();
    let mut print = st
        .cmd_with_shop(&sim)
        .arg("print")
        .env("STATION_PAUSE_AT", "wave.chunk.committed")
        .env("STATION_PAUSE_DIR", &pause)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_paused(&pause, &mut print);
    proxy.down();
    release_pause(&pause);
    named(&print.wait_with_output().unwrap());
    named(&st.cmd().arg("status").output().unwrap());
    // A bench scan in the outage: the same clear refusal, nothing recorded.
    let first_id = fixtures[0]["id"].as_str().unwrap();
    named(
        &st.cmd_with_shop(&sim)
            .args(["scan", first_id])
            .output()
            .unwrap(),
    );

    // A connection that lives through the outage (as `serve`'s do).
    proxy.up();
    let proxied: station::store::Db = proxy.url(&db).parse().unwrap();
    let mut store = station::store::Store::open(proxied).unwrap();
    let before = store.status().unwrap();
    proxy.down();
    let err = store.status().unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{}", proxy.port)), "{err}");
    assert!(
        store
            .record("测试员", None, "test.during_outage", "not recorded")
            .is_err(),
        "a write while the database is away fails"
    );
    proxy.up();
    assert_eq!(
        store.status().unwrap().counts,
        before.counts,
        "the same connection works again"
    );

    // Back: the next print finishes the wave; every order printed once.
    let done = json(
        st.cmd_with_shop(&sim)
            .args(["--json", "print"])
            .output()
            .unwrap(),
    );
    let printed: Vec<(String, String, String)> = {
        let store = st.store();
        let per_order = events_per_order(&store, "print.printed");
        assert_eq!(per_order.len(), 60, "{done}");
        assert!(per_order.values().all(|&n| n == 1), "{per_order:?}");
        assert!(
            !store
                .events(None)
                .unwrap()
                .iter()
                .any(|e| e.action == "test.during_outage")
        );
        per_order
            .keys()
            .map(|id| {
                let live = live_numbers(&store, id);
                assert_eq!(live.len(), 1, "{id}");
                (id.clone(), live[0].courier.clone(), live[0].number.clone())
            })
            .collect()
    };

    // The bench scan again, the database back: the slip opens its order.
    let opened = json(
        st.cmd_with_shop(&sim)
            .args(["--json", "scan", first_id])
            .output()
            .unwrap(),
    );
    assert_eq!(
        (&opened["code"], &opened["order"]["id"]),
        (&Value::from("order_opened"), &Value::from(first_id)),
        "{opened}"
    );

    // Hand five parcels over; the database goes away before the sync.
    let (courier, five): (String, Vec<&(String, String, String)>) = {
        let c = printed[0].1.clone();
        let five = printed.iter().filter(|p| p.1 == c).take(5).collect();
        (c, five)
    };
    let opened = json(
        st.cmd()
            .args(["--json", "handover", "open", "--courier", &courier])
            .output()
            .unwrap(),
    );
    let batch = opened["id"].as_str().unwrap();
    for (_, _, number) in &five {
        ok(&st
            .cmd_with_shop(&sim)
            .args(["handover", "scan", "--batch", batch, number])
            .output()
            .unwrap());
    }
    ok(&st
        .cmd_with_shop(&sim)
        .args(["handover", "close", "--batch", batch])
        .output()
        .unwrap());
    proxy.down();
    named(&st.cmd_with_shop(&sim).arg("sync").output().unwrap());
    assert_eq!(
        sim.shipments().as_array().unwrap().len(),
        0,
        "nothing sent without the database"
    );
    proxy.up();
    ok(&st.cmd_with_shop(&sim).arg("sync").output().unwrap());
    let shipments = sim.shipments();
    let mut per_order: HashMap<String, Vec<String>> = HashMap::new();
    for s in shipments.as_array().unwrap() {
        per_order
            .entry(s["order_id"].as_str().unwrap().into())
            .or_default()
            .push(s["tracking_no"].as_str().unwrap().into());
    }
    assert_eq!(per_order.len(), 5, "{shipments}");
    for (id, _, number) in &five {
        assert_eq!(per_order.get(id), Some(&vec![number.clone()]), "{id}");
        assert_eq!(sim.order(id)["flag"], "green");
    }
}
