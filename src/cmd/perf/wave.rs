//! `station bench`: a print wave measured end to end — tracking-number
//! allocation, rendering and writing — on generated orders, in a scratch
//! directory. Prints each run, the first run on its own (it loads the fonts
//! and templates that later runs in this process reuse: what one `station
//! print` pays) and the median (shared machines are noisy).

use super::ScratchPg;
use anyhow::Result;
use serde_json::json;
use station::config::Config;
use station::pull;
use station::shop::generate::{self, GenerateOptions};
use station::store::Store;
use station::wave::{self, PrintOptions};
use std::io::Write;

/// Peak resident memory of this process so far, in KB (Linux only).
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One wave on `store`: seconds, pages, bytes per page.
fn one_wave(
    mut store: Store,
    file: &std::path::Path,
    config: &Config,
    labels: std::path::PathBuf,
) -> Result<(f64, usize, f64, usize)> {
    pull::import(file, &mut store, config, "bench")?;
    let opts = PrintOptions {
        // Generated orders: PDF files only, never the configured printers.
        targets: Some(wave::Targets::default()),
        // Counted, not listed: as `station print` without --json.
        list_orders: false,
        ..PrintOptions::from_config(&config.print, labels)
    };
    let report = wave::print(&mut store, config, &opts, "bench", &|_, _| {})?;
    Ok((
        report.elapsed_ms as f64 / 1000.0,
        report.pages,
        report.bytes as f64 / report.pages.max(1) as f64,
        report.printed,
    ))
}

pub fn run(
    config: &Config,
    orders: usize,
    runs: usize,
    postgres: Option<&str>,
    json: bool,
) -> Result<()> {
    let runs = runs.max(1);
    let mut config = config.clone();
    if !config.sender.missing().is_empty() {
        config.sender = station::render::Sender::sample();
    }
    let config = &config;
    let scratch = tempfile::tempdir()?;
    let file = scratch.path().join("orders.jsonl");
    let text: String = generate::generate_json(&GenerateOptions {
        count: orders,
        seed: 7,
        ..Default::default()
    })
    .iter()
    .map(|o| format!("{o}\n"))
    .collect();
    std::fs::write(&file, text)?; // `text` is moved and freed here, before the runs.
    let mut secs = Vec::new();
    let mut pg_secs = Vec::new();
    let mut per_page = Vec::new();
    let mut pages = 0;
    let mut out = std::io::stderr().lock();
    for run in 1..=runs {
        let dir = scratch.path().join(format!("run{run}"));
        std::fs::create_dir_all(&dir)?;
        let store = Store::open(dir.join("station.db"))?;
        let (s, p, b, printed) = one_wave(store, &file, config, dir.join("labels"))?;
        pages = p;
        secs.push(s);
        per_page.push(b);
        writeln!(out, "run {run}: {printed} orders, {p} pages in {s:.2} s")?;
        // Free the disk between runs: a 50k wave is a few hundred MB.
        std::fs::remove_dir_all(&dir)?;
        if let Some(server) = postgres {
            // The same wave on PostgreSQL, right after: side by side.
            std::fs::create_dir_all(&dir)?;
            let (_db, url) = ScratchPg::create(server, run)?;
            let store = Store::open(
                url.parse::<station::store::Db>()
                    .map_err(anyhow::Error::msg)?,
            )?;
            let (s, p, _, printed) = one_wave(store, &file, config, dir.join("labels"))?;
            pg_secs.push(s);
            writeln!(
                out,
                "run {run} on PostgreSQL: {printed} orders, {p} pages in {s:.2} s"
            )?;
            std::fs::remove_dir_all(&dir)?;
        }
    }
    let first = secs[0];
    let s = median(secs);
    let bytes = median(per_page);
    let rss = peak_rss_kb().unwrap_or(0) as f64 / 1024.0;
    let pg = (!pg_secs.is_empty()).then(|| median(pg_secs));
    if json {
        let mut v = json!({"orders": orders, "runs": runs, "pages": pages,
            "first_run_secs": first, "first_run_orders_per_sec": orders as f64 / first,
            "median_secs": s, "orders_per_sec": orders as f64 / s,
            "bytes_per_page": bytes, "peak_rss_mb": rss});
        if let Some(p) = pg {
            v["postgres_median_secs"] = json!(p);
            v["postgres_orders_per_sec"] = json!(orders as f64 / p);
            v["postgres_to_sqlite"] = json!(p / s);
        }
        println!("{v}");
    } else {
        println!(
            "print wave, {orders} orders ({pages} pages): first run (fonts loaded, as one `station print`) {first:.2} s, {:.0} orders/s; median of {runs}: {s:.2} s, {:.0} orders/s; {:.1} KB per page, peak RSS {rss:.0} MB (whole bench process, generating the orders included; `/usr/bin/time station print` measures a wave alone)",
            orders as f64 / first,
            orders as f64 / s,
            bytes / 1024.0
        );
        if let Some(p) = pg {
            println!(
                "on PostgreSQL, each run right after its SQLite twin: median {p:.2} s, {:.0} orders/s, {:.2}× SQLite's median",
                orders as f64 / p,
                p / s
            );
        }
    }
    Ok(())
}
