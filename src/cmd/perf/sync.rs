//! `station perf sync`: how fast the write-back keeps up. N generated orders
//! are pulled from an in-process simulator, printed (PDF files only) and
//! handed over through the real handover code; then, for each `--in-flight`
//! value, a fresh copy of that database and a fresh shop (answering after
//! `--shop-latency-ms`) are synced until nothing is pending, and the time is
//! reported. Every value runs on the same orders in one process, so the
//! figures compare side by side.

use anyhow::{Context, Result, bail};
use serde_json::json;
use station::config::{Config, Secret};
use station::handover;
use station::outbox;
use station::shop::client::{RetryPolicy, ShopClient};
use station::shop::generate::{self, GenerateOptions};
use station::shop::sim::{self, Faults, SimConfig, Simulator};
use station::store::Store;
use station::wave::{self, PrintOptions};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Args<'a> {
    pub orders: usize,
    pub shop_latency_ms: u64,
    pub in_flight: &'a [usize],
    pub max_per_sec: u32,
    pub dir: &'a Path,
    pub json: bool,
}

pub fn run(config: &Config, a: &Args<'_>) -> Result<()> {
    if a.orders == 0 || a.in_flight.is_empty() || a.in_flight.contains(&0) {
        bail!(station::error::UsageError(
            "give at least one order and in-flight values of at least 1 (--in-flight 1,16)".into()
        ));
    }
    if a.dir.exists() {
        std::fs::remove_dir_all(a.dir)
            .with_context(|| format!("cannot remove {}", a.dir.display()))?;
    }
    std::fs::create_dir_all(a.dir).with_context(|| format!("cannot create {}", a.dir.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let orders = generate::generate_json(&GenerateOptions {
        count: a.orders,
        seed: 13,
        ..Default::default()
    });
    let token = format!("perf-sync-{}", std::process::id());
    let mut config = config.clone();
    config.shop.token = Secret::new(token.clone());
    config.handover.require_packed = false;
    if !config.sender.missing().is_empty() {
        config.sender = station::render::Sender::sample();
    }
    let labels = a.dir.join("labels");
    config.print.out_dir = labels.display().to_string();
    let setup_db = a.dir.join("handed-over.db");

    // The orders handed over, once.
    let started = Instant::now();
    rt.block_on(async {
        let shop = Simulator::new(
            orders.clone(),
            SimConfig {
                token: token.clone(),
                faults: Faults::default(),
            },
        );
        let (addr, _server) = sim::spawn(shop, "127.0.0.1:0".parse()?).await?;
        config.shop.url = format!("http://{addr}");
        let client = ShopClient::new(
            &config.shop.url,
            config.shop.token.clone(),
            RetryPolicy::default(),
        )?;
        let mut store = Store::open(&setup_db)?;
        station::pull::pull(&client, &mut store, &config, "perf-sync").await?;
        let opts = PrintOptions {
            targets: Some(wave::Targets::default()),
            ..PrintOptions::from_config(&config.print, labels.clone())
        };
        let printed = wave::print(&mut store, &config, &opts, "perf-sync", &|_, _| {})?;
        let mut couriers: Vec<&str> = printed.orders.iter().map(|p| p.courier.as_str()).collect();
        couriers.sort_unstable();
        couriers.dedup();
        for courier in couriers {
            let batch = handover::open(&mut store, &config, courier, "perf-sync")?;
            for p in printed.orders.iter().filter(|p| p.courier == courier) {
                handover::scan(
                    &mut store,
                    None,
                    &config,
                    Some(&batch.id),
                    &p.tracking_no,
                    "perf-sync",
                )
                .await?;
            }
            handover::close(
                &mut store,
                None,
                &config,
                Some(&batch.id),
                "perf-sync",
                &labels,
            )
            .await?;
        }
        anyhow::Ok(())
    })?;
    let setup_secs = started.elapsed().as_secs_f64();

    // One sync per in-flight value, each on its own copy and its own shop.
    let mut runs = Vec::new();
    for (i, &k) in a.in_flight.iter().enumerate() {
        let db = a.dir.join(format!("run-{}.db", i + 1));
        std::fs::copy(&setup_db, &db)
            .with_context(|| format!("cannot copy the database to {}", db.display()))?;
        let mut run_config = config.clone();
        run_config.outbox.max_in_flight = k;
        run_config.outbox.max_per_sec = a.max_per_sec;
        let (sends, secs) = rt.block_on(async {
            let shop = Simulator::new(
                orders.clone(),
                SimConfig {
                    token: token.clone(),
                    faults: Faults {
                        latency_ms: a.shop_latency_ms,
                        ..Faults::default()
                    },
                },
            );
            let (addr, _server) = sim::spawn(shop, "127.0.0.1:0".parse()?).await?;
            let client = ShopClient::new(
                &format!("http://{addr}"),
                run_config.shop.token.clone(),
                RetryPolicy::default(),
            )?;
            let mut store = Store::open(&db)?;
            let started = Instant::now();
            let mut sends = 0;
            loop {
                let r = outbox::sync_once(&mut store, &client, &run_config, "perf-sync").await?;
                sends += r.sent;
                if r.outbox.pending == 0 {
                    break;
                }
                if r.sent == 0 {
                    bail!("the sync made no progress: {}", r.summary());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            anyhow::Ok((sends, started.elapsed().as_secs_f64()))
        })?;
        runs.push((k, sends, secs));
    }

    let first = runs[0].2;
    if a.json {
        let list: Vec<_> = runs
            .iter()
            .map(|&(k, sends, secs)| {
                json!({"in_flight": k, "sends": sends, "secs": secs,
                       "sends_per_sec": sends as f64 / secs, "speedup": first / secs})
            })
            .collect();
        println!(
            "{}",
            json!({"orders": a.orders, "shop_latency_ms": a.shop_latency_ms,
                   "max_per_sec": a.max_per_sec, "setup_secs": setup_secs, "runs": list})
        );
    } else {
        println!(
            "write-back of {} handed-over orders, shop answering in {} ms{} (setup: pull, print, hand over: {setup_secs:.1} s)",
            a.orders,
            a.shop_latency_ms,
            if a.max_per_sec > 0 {
                format!(", at most {} requests/s", a.max_per_sec)
            } else {
                String::new()
            }
        );
        println!("  in flight   sends   seconds   sends/s   vs first");
        for (k, sends, secs) in &runs {
            println!(
                "  {k:>9} {sends:>7} {secs:>9.2} {:>9.1} {:>9.2}×",
                *sends as f64 / secs,
                first / secs
            );
        }
    }
    Ok(())
}
