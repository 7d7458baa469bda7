//! Arbitrary scanner input at the packing bench, through `packing::scan` — the
//! same call the bench page and `station scan` make — against a real store
//! holding a printed wave. One setup per process: five fixture orders are
//! imported and printed into a template database; each run copies it, so every
//! input starts from the same state and a crash reproduces.
//!
//! Input: lines, one scan each (at most 12). A line `@N` stands for the N-th
//! code the station knows (order ids, item barcodes and SKUs, tracking
//! numbers), so the fuzzer reaches opened orders, ticked items and packing
//! without guessing numbers; a line starting `2>` is scanned at a second bench.
//! Every scan must give an outcome (never a panic, never an error): a scan is
//! operator input, and the bench shows STOP with a reason for anything wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;
use station::config::Config;
use station::packing::{self, Bench};
use station::store::Store;
use station::wave::{self, PrintOptions};
use std::path::PathBuf;
use std::sync::OnceLock;

const FIXTURE: &str = include_str!("../../tests/data/orders-200.json");

struct Setup {
    _dir: tempfile::TempDir,
    template: PathBuf,
    work: PathBuf,
    config: Config,
    known: Vec<String>,
    rt: tokio::runtime::Runtime,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm")
        } else {
            tempfile::tempdir()
        }
        .unwrap();
        let template = dir.path().join("template.db");
        let work = dir.path().join("work.db");
        let mut config = Config::default();
        config.sender = station::render::Sender::sample();
        let all: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        let chosen: Vec<&serde_json::Value> = all.as_array().unwrap().iter().take(5).collect();
        let orders = dir.path().join("orders.jsonl");
        let lines: String = chosen.iter().map(|o| format!("{o}\n")).collect();
        std::fs::write(&orders, lines).unwrap();
        let mut known: Vec<String> = Vec::new();
        for o in &chosen {
            known.push(o["id"].as_str().unwrap().to_string());
            for i in o["items"].as_array().unwrap() {
                for key in ["barcode", "sku"] {
                    if let Some(code) = i[key].as_str() {
                        known.push(code.to_string());
                    }
                }
            }
        }
        {
            let mut store = Store::open(&template).unwrap();
            station::pull::import(&orders, &mut store, &config, "fuzz").unwrap();
            let opts = PrintOptions::from_config(&config.print, dir.path().join("labels"));
            let report = wave::print(&mut store, &config, &opts, "fuzz", &|_, _| {}).unwrap();
            assert_eq!(report.orders.len(), chosen.len(), "{:?}", report.failed);
            known.extend(report.orders.iter().map(|o| o.tracking_no.clone()));
        }
        for suffix in ["-wal", "-shm"] {
            assert!(
                !dir.path().join(format!("template.db{suffix}")).exists(),
                "the template database was not checkpointed on close"
            );
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Setup {
            _dir: dir,
            template,
            work,
            config,
            known,
            rt,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    let text = String::from_utf8_lossy(data);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", s.work.display()));
    }
    std::fs::copy(&s.template, &s.work).unwrap();
    let mut store = Store::open(&s.work).unwrap();
    for line in text.split('\n').take(12) {
        let (bench_name, line) = match line.strip_prefix("2>") {
            Some(rest) => ("b2", rest),
            None => ("b1", line),
        };
        let code = match line
            .strip_prefix('@')
            .and_then(|n| n.trim().parse::<usize>().ok())
        {
            Some(n) => s.known[n % s.known.len()].clone(),
            None => line.to_string(),
        };
        let bench = Bench {
            name: bench_name,
            operator: "fuzz",
        };
        let outcome =
            s.rt.block_on(packing::scan(&mut store, None, &s.config, &bench, &code));
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => panic!("scan {code:?} at {bench_name} failed: {e:#}"),
        };
        assert!(!outcome.code.is_empty() && !outcome.message.is_empty());
    }
});
