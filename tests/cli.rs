//! What users of good command-line tools expect: completions and man pages,
//! old command names that still work, CSV Excel can read, and quiet exits
//! into a closed pipe.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn completions_and_man_pages_come_from_the_command_line_definition() {
    let st = Station::new();
    let bash = ok(&st.cmd().args(["completions", "bash"]).output().unwrap());
    assert!(bash.contains("_station()"), "{bash}");
    for word in ["handover", "perf", "completions"] {
        assert!(bash.contains(word), "no {word} in the bash completions");
    }
    let dir = st.dir.path().join("man");
    ok(&st.cmd().arg("manpage").arg(&dir).output().unwrap());
    let page = std::fs::read_to_string(dir.join("station.1")).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH station"),
        "{page}"
    );
    assert!(dir.join("station-handover.1").exists());
}

#[test]
fn the_benchmarks_are_perf_and_the_old_names_still_answer() {
    let st = Station::new();
    let help = ok(&st.cmd().arg("--help").output().unwrap());
    assert!(help.contains("perf"), "{help}");
    assert!(
        !help.contains("bench-scan"),
        "hidden aliases are not listed: {help}"
    );
    for args in [
        ["perf", "wave"],
        ["perf", "scan"],
        ["bench", "--help"],
        ["bench-scan", "--help"],
    ] {
        let mut a = args.to_vec();
        if !a.contains(&"--help") {
            a.push("--help");
        }
        let out = ok(&st.cmd().args(&a).output().unwrap());
        assert!(out.contains("--"), "{a:?}: {out}");
    }
}

#[test]
fn export_for_excel_starts_with_a_byte_order_mark() {
    let st = Station::new();
    let orders = read_json(&data("orders-200.json")).as_array().unwrap()[..5].to_vec();
    let file = st.write("orders.json", &serde_json::Value::Array(orders).to_string());
    ok(&st.cmd().arg("import").arg(&file).output().unwrap());
    ok(&st
        .cmd()
        .args(["print", "--out", "labels"])
        .output()
        .unwrap());
    let plain = st.cmd().arg("export").output().unwrap();
    assert!(plain.stdout.starts_with(b"order_id,courier,tracking_no\n"));
    let excel = st.cmd().args(["export", "--excel"]).output().unwrap();
    assert!(excel.status.success());
    assert!(excel.stdout.starts_with("\u{feff}order_id,".as_bytes()));
    assert_eq!(&excel.stdout[3..], &plain.stdout[..]);
    let csv = st
        .cmd()
        .args(["report", "--format", "csv", "--excel"])
        .output()
        .unwrap();
    assert!(csv.stdout.starts_with("\u{feff}section,".as_bytes()));
}

#[test]
fn writing_into_a_closed_pipe_exits_quietly() {
    let st = Station::new();
    // 3,000 generated orders are megabytes: far more than a pipe holds.
    let mut child = st
        .cmd()
        .args(["generate", "3000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'), "{first}");
    // The reader is gone (like `| head -1`).
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
