//! `station demo`: the whole station on generated orders, with nothing to set
//! up. It starts the shop simulator in-process on a free loopback port, pulls,
//! lets "customer service" change two orders on the shop, pulls again, and
//! prints what happened and where the files are.
//!
//! It runs the same library code as the real commands; only the shop is simulated.

use crate::app::write_status;
use crate::config::{Config, Secret};
use crate::pull::{self, PullReport};
use crate::shop::client::{RetryPolicy, ShopClient};
use crate::shop::generate::{self, GenerateOptions};
use crate::shop::sim::{self, Faults, SimConfig, Simulator};
use crate::store::Store;
use crate::wave::{self, PrintOptions};
use anyhow::{Context, Result};
use rand::RngExt as _;
use serde_json::json;
use std::io::Write;
use std::path::Path;

pub async fn run(
    config: &Config,
    operator: &str,
    json: bool,
    orders: usize,
    seed: u64,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the demo directory {}", dir.display()))?;
    let db = dir.join("station.db");
    let labels = dir.join("labels");
    if labels.exists() {
        std::fs::remove_dir_all(&labels)
            .with_context(|| format!("cannot remove the old demo labels {}", labels.display()))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let f = dir.join(format!("station.db{suffix}"));
        if f.exists() {
            std::fs::remove_file(&f)
                .with_context(|| format!("cannot remove the old demo file {}", f.display()))?;
        }
    }

    // A realistic shop: mostly yellow-flagged paid orders, some waiting for
    // customer service or payment, and a few that break the contract.
    let opts = GenerateOptions {
        count: orders,
        seed,
        invalid_rate: 0.02,
        off_queue_rate: 0.05,
        ..Default::default()
    };
    let raw = generate::generate_json(&opts);
    let token: String = (0..32)
        .map(|_| char::from(b"0123456789abcdef"[rand::rng().random_range(0..16)]))
        .collect();
    let simulator = Simulator::new(
        raw,
        SimConfig {
            token: token.clone(),
            faults: Faults {
                seed,
                ..Faults::default()
            },
        },
    );
    let (addr, _server) = sim::spawn(simulator.clone(), "127.0.0.1:0".parse()?).await?;
    let url = format!("http://{addr}");

    let mut config = config.clone();
    config.shop.url = url.clone();
    config.shop.token = Secret::new(token.clone());
    let client = ShopClient::new(&url, config.shop.token.clone(), RetryPolicy::default())?;
    let mut store = Store::open(&db)?;
    let first = pull::pull(&client, &mut store, &config, operator).await?;

    // Customer service acts on the shop after the first pull: an address change
    // and a refund request. The second pull must pick both up.
    let queue = store.queue()?;
    let mut cs_actions = Vec::new();
    if queue.len() >= 2 {
        let admin = reqwest::Client::new();
        let changes = [
            (
                &queue[0],
                json!({"address": "文三路 88 号 华星科技大厦 12 楼(改地址)",
                "memo": {"text": "改地址: 文三路 88 号", "author": "客服阿珍", "at": chrono::Local::now().fixed_offset().to_rfc3339()}}),
            ),
            (&queue[1], json!({"refund": "requested"})),
        ];
        for (id, body) in changes {
            admin
                .post(format!("{url}/admin/orders/{id}/mutate"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await?
                .error_for_status()?;
        }
        cs_actions.push(format!("order {} changed its address", queue[0]));
        cs_actions.push(format!("order {} asked for a refund", queue[1]));
    }
    let second = pull::pull(&client, &mut store, &config, operator).await?;

    // Print the wave: numbers committed first, then waybills and slips as PDFs.
    let opts = PrintOptions::from_config(&config.print, dir.join("labels"));
    let printed = wave::print(&mut store, &config, &opts, operator, &|_, _| {})?;
    let status = store.status()?;

    let mut out = std::io::stdout().lock();
    if json {
        let v = json!({"shop": url, "orders": orders, "pulls": [first, second], "customer_service": cs_actions, "print": printed, "status": status, "database": db});
        serde_json::to_writer(&mut out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "station demo: a simulated shop at {url} with {orders} generated orders\n"
    )?;
    print_pull(&mut out, "pull 1", &first)?;
    for a in &cs_actions {
        writeln!(out, "customer service: {a}")?;
    }
    print_pull(&mut out, "pull 2", &second)?;
    writeln!(
        out,
        "print: wave {} with {} orders, {} pages in {} ms ({:.1} KB per page)",
        printed.wave.unwrap_or_default(),
        printed.orders.len(),
        printed.pages,
        printed.elapsed_ms,
        printed.bytes as f64 / 1024.0 / printed.pages.max(1) as f64
    )?;
    for f in printed.files.iter().take(4) {
        writeln!(out, "  {f}")?;
    }
    if printed.files.len() > 4 {
        writeln!(out, "  … and {} more files", printed.files.len() - 4)?;
    }
    if !printed.warnings.is_empty() {
        writeln!(
            out,
            "  {} label(s) to look at, e.g. {}",
            printed.warnings.len(),
            printed.warnings[0].1
        )?;
    }
    writeln!(out)?;
    write_status(&mut out, &status)?;
    writeln!(out, "\nFiles: database {}", db.display())?;
    writeln!(out, "Look around: station --db {} status", db.display())?;
    Ok(())
}

fn print_pull(out: &mut dyn Write, title: &str, r: &PullReport) -> Result<()> {
    writeln!(out, "{title}: {} ({} ms)", r.summary(), r.elapsed_ms)?;
    Ok(())
}
