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

/// What one wave measured.
struct Run {
    secs: f64,
    pages: usize,
    bytes_per_page: f64,
    printed: usize,
    /// Labels: fewer than `printed` by the orders merged into another's parcel.
    parcels: usize,
    picklist_secs: f64,
    /// Thermal: seconds from the start of the print to the printer's first byte.
    first_byte_secs: Option<f64>,
}

/// A raw printer in this process: takes every job, notes when its first byte
/// came and keeps the first job (to size one label).
struct Sink {
    port: u16,
    first: std::sync::Arc<std::sync::Mutex<(Option<std::time::Instant>, Vec<u8>)>>,
}

impl Sink {
    fn start() -> Result<Sink> {
        use std::io::Read as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let first: std::sync::Arc<std::sync::Mutex<(Option<std::time::Instant>, Vec<u8>)>> =
            Default::default();
        let shared = first.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut buf = vec![0u8; 64 * 1024];
                let mut job = Vec::new();
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            job.extend_from_slice(&buf[..n]);
                            if job == b"~HS" {
                                // A status query, not a job: all is well.
                                use std::io::Write as _;
                                let answer =
                                    station::printer::raw::host_status_answer(false, false, false);
                                let _ = conn.write_all(&answer);
                                job.clear();
                                continue;
                            }
                            let mut f = shared.lock().unwrap_or_else(|e| e.into_inner());
                            f.0.get_or_insert_with(std::time::Instant::now);
                        }
                    }
                }
                let mut f = shared.lock().unwrap_or_else(|e| e.into_inner());
                if f.1.is_empty() {
                    f.1 = job;
                }
            }
        });
        Ok(Sink { port, first })
    }
}

/// One wave on `store`.
fn one_wave(
    mut store: Store,
    file: &std::path::Path,
    config: &Config,
    labels: std::path::PathBuf,
    sink: Option<&Sink>,
) -> Result<Run> {
    pull::import(file, &mut store, config, "bench")?;
    let mut opts = PrintOptions {
        // Generated orders: files only, never the configured printers.
        targets: Some(wave::Targets::default()),
        // Counted, not listed: as `station print` without --json.
        list_orders: false,
        ..PrintOptions::from_config(&config.print, labels)
    };
    if let Some(sink) = sink {
        *sink.first.lock().unwrap_or_else(|e| e.into_inner()) = (None, Vec::new());
        opts.targets = Some(wave::Targets {
            waybill: vec!["perf-printer".into()],
            slip: Vec::new(),
        });
    }
    let started = std::time::Instant::now();
    let report = wave::print(&mut store, config, &opts, "bench", &|_, _| {})?;
    let first_byte_secs = sink.and_then(|s| {
        s.first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .map(|t| t.duration_since(started).as_secs_f64())
    });
    Ok(Run {
        secs: report.elapsed_ms as f64 / 1000.0,
        pages: report.pages,
        bytes_per_page: report.bytes as f64 / report.pages.max(1) as f64,
        printed: report.printed,
        parcels: report.parcels,
        picklist_secs: report.picklist_ms as f64 / 1000.0,
        first_byte_secs,
    })
}

pub fn run(
    config: &Config,
    orders: usize,
    runs: usize,
    postgres: Option<&str>,
    format: station::config::Format,
    repeat_buyer_rate: f64,
    json: bool,
) -> Result<()> {
    let runs = runs.max(1);
    let mut config = config.clone();
    if !config.sender.missing().is_empty() {
        config.sender = station::render::Sender::sample();
    }
    config.print.format = format;
    let sink = match format.language() {
        None => None,
        Some(language) => {
            let sink = Sink::start()?;
            config.printers.raw = vec![station::config::RawPrinterConfig {
                name: "perf-printer".into(),
                uri: format!("socket://127.0.0.1:{}", sink.port),
                language,
                dpi: config.print.dpi,
            }];
            Some(sink)
        }
    };
    let config = &config;
    let scratch = tempfile::tempdir()?;
    let file = scratch.path().join("orders.jsonl");
    let text: String = generate::generate_json(&GenerateOptions {
        count: orders,
        seed: 7,
        repeat_buyer_rate,
        ..Default::default()
    })
    .iter()
    .map(|o| format!("{o}\n"))
    .collect();
    std::fs::write(&file, text)?; // `text` is moved and freed here, before the runs.
    let mut secs = Vec::new();
    let mut pg_secs = Vec::new();
    let mut per_page = Vec::new();
    let mut picklist = Vec::new();
    let mut first_bytes = Vec::new();
    let mut pages = 0;
    let mut parcels = 0;
    let mut printed_n = 0;
    let mut out = std::io::stderr().lock();
    for run in 1..=runs {
        let dir = scratch.path().join(format!("run{run}"));
        std::fs::create_dir_all(&dir)?;
        let store = Store::open(dir.join("station.db"))?;
        let r = one_wave(store, &file, config, dir.join("labels"), sink.as_ref())?;
        let (s, p, printed) = (r.secs, r.pages, r.printed);
        parcels = r.parcels;
        printed_n = r.printed;
        pages = p;
        secs.push(s);
        per_page.push(r.bytes_per_page);
        picklist.push(r.picklist_secs);
        first_bytes.extend(r.first_byte_secs);
        writeln!(
            out,
            "run {run}: {printed} orders in {} parcels, {p} pages in {s:.2} s (pick list {:.2} s of it){}",
            r.parcels,
            r.picklist_secs,
            r.first_byte_secs
                .map(|f| format!("; the printer had its first byte at {f:.2} s"))
                .unwrap_or_default()
        )?;
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
            let r = one_wave(store, &file, config, dir.join("labels"), sink.as_ref())?;
            let (s, p, printed) = (r.secs, r.pages, r.printed);
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
    let picklist = median(picklist);
    let first_byte = (!first_bytes.is_empty()).then(|| median(first_bytes));
    // One label of the first job, sized as ZPL hex and as Z64.
    let label_sizes = sink.as_ref().and_then(|sink| {
        let job = sink
            .first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone();
        let language = format.language()?;
        let labels = station::render::thermal::decode(&job, language).ok()?;
        let one = labels.first()?;
        Some((
            station::render::thermal::zpl_sizes(one),
            station::render::thermal::encode(
                one,
                station::render::thermal::Language::Tspl,
                station::render::barcode::Dpi(config.print.dpi),
                station::render::thermal::ZplData::Z64,
            )
            .len(),
        ))
    });
    if json {
        let mut v = json!({"orders": orders, "runs": runs, "pages": pages, "format": format.as_str(),
            "first_run_secs": first, "first_run_orders_per_sec": orders as f64 / first,
            "median_secs": s, "orders_per_sec": orders as f64 / s,
            "bytes_per_page": bytes, "picklist_median_secs": picklist, "peak_rss_mb": rss,
            "parcels": parcels, "labels_saved_by_merging": printed_n.saturating_sub(parcels)});
        if let Some(p) = pg {
            v["postgres_median_secs"] = json!(p);
            v["postgres_orders_per_sec"] = json!(orders as f64 / p);
            v["postgres_to_sqlite"] = json!(p / s);
        }
        if let Some(f) = first_byte {
            v["first_label_byte_median_secs"] = json!(f);
        }
        if let Some((zpl, tspl)) = &label_sizes {
            v["label_bytes"] = json!({"zpl_hex": zpl.hex, "zpl_z64": zpl.z64, "tspl": tspl});
        }
        println!("{v}");
    } else {
        println!(
            "print wave, {orders} orders ({pages} pages): first run (fonts loaded, as one `station print`) {first:.2} s, {:.0} orders/s; median of {runs}: {s:.2} s, {:.0} orders/s; {:.1} KB per page, peak RSS {rss:.0} MB (whole bench process, generating the orders included; `/usr/bin/time station print` measures a wave alone)",
            orders as f64 / first,
            orders as f64 / s,
            bytes / 1024.0
        );
        println!("of which the pick list (拣货单 + 格位表): median {picklist:.2} s");
        println!(
            "merged parcels (合并发货): {printed_n} orders in {parcels} parcels, {} labels saved (repeat buyers: {:.0}% of orders)",
            printed_n.saturating_sub(parcels),
            repeat_buyer_rate * 100.0
        );
        if let Some(f) = first_byte {
            println!(
                "{} to a raw printer: its first byte came {f:.2} s after the print started (median)",
                format.as_str()
            );
        }
        if let Some((zpl, tspl)) = &label_sizes {
            println!(
                "one waybill label at {} dpi: ZPL hex {} bytes, ZPL Z64 {} bytes ({:.1}× smaller), TSPL {} bytes",
                config.print.dpi,
                zpl.hex,
                zpl.z64,
                zpl.hex as f64 / zpl.z64.max(1) as f64,
                tspl
            );
        }
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
