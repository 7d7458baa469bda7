//! `station bench-scan`: how fast a bench scan answers when several benches
//! scan at once, measured end to end over HTTP.
//!
//! It generates orders, serves them from an in-process simulator on loopback,
//! pulls and prints them with the real code, starts the real `serve` router on
//! a loopback port (on its own runtime, so the load generator does not share
//! the server's threads), signs N benches in, and has each pack its share of
//! orders as fast as it can: slip, every item, waybill. Every scan's round trip
//! (request sent → JSON answer read) is timed. Opening an order and packing it
//! include the shop re-read (`GET /v1/orders/{id}`) against the simulator,
//! so the run has two rounds on fresh orders: the shop answering at once, and
//! the shop answering after `--shop-latency-ms` (default 50 ms, a shop on the
//! internet). Any scan that is not OK fails the run (exit 1) after the report.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use station::config::{Config, Operator, Secret};
use station::serve::{AppState, hash_pin, router};
use station::shop::client::{RetryPolicy, ShopClient};
use station::shop::generate::{self, GenerateOptions};
use station::shop::sim::{self, Faults, SimConfig, Simulator};
use station::store::Store;
use station::wave::{self, PrintOptions};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One order's scans, in bench order: slip, items, waybill.
struct Job {
    scans: Vec<(Kind, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Slip,
    Item,
    Waybill,
}

#[derive(Serialize)]
struct Figures {
    scans: usize,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn figures(mut ms: Vec<f64>) -> Figures {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if ms.is_empty() {
            return 0.0;
        }
        // Nearest rank.
        let i = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
        (ms[i] * 100.0).round() / 100.0
    };
    Figures {
        scans: ms.len(),
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    }
}

/// Where the benches' state lives and how many bench servers share it.
pub struct Engine<'a> {
    pub servers: usize,
    /// A PostgreSQL server (a scratch database on it), else SQLite in `dir`.
    pub postgres: Option<&'a str>,
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    config: &Config,
    benches: usize,
    per_bench: usize,
    interval: Duration,
    shop_latency_ms: u64,
    dir: &Path,
    engine: Engine<'_>,
    json: bool,
) -> Result<()> {
    let latencies: Vec<u64> = if shop_latency_ms == 0 {
        vec![0]
    } else {
        vec![0, shop_latency_ms]
    };
    if benches == 0 || per_bench == 0 {
        bail!(station::error::UsageError(
            "give at least one bench and one order per bench".into()
        ));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for name in ["station.db", "station.db-wal", "station.db-shm"] {
        let f = dir.join(name);
        if f.exists() {
            std::fs::remove_file(&f).with_context(|| format!("cannot remove {}", f.display()))?;
        }
    }
    let labels = dir.join("labels");
    if labels.exists() {
        std::fs::remove_dir_all(&labels)
            .with_context(|| format!("cannot remove {}", labels.display()))?;
    }
    let (_scratch, db): (Option<super::ScratchPg>, station::store::Db) = match engine.postgres {
        Some(server) => {
            let (scratch, url) = super::ScratchPg::create(server, 0)?;
            (Some(scratch), url.parse().map_err(anyhow::Error::msg)?)
        }
        None => (None, dir.join("station.db").into()),
    };
    let servers = engine.servers.max(1);
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    // The shop, the pull and the print wave.
    let token = format!("bench-scan-{}", std::process::id());
    let mut config = config.clone();
    let simulator = Simulator::new(
        generate::generate_json(&GenerateOptions {
            count: benches * per_bench * latencies.len(),
            seed: 7,
            ..Default::default()
        }),
        SimConfig {
            token: token.clone(),
            faults: Faults::default(),
        },
    );
    let (jobs, _sim) = client_rt.block_on(async {
        let (addr, server) = sim::spawn(simulator.clone(), "127.0.0.1:0".parse()?).await?;
        config.shop.url = format!("http://{addr}");
        config.shop.token = Secret::new(token.clone());
        if !config.sender.missing().is_empty() {
            config.sender = station::render::Sender::sample();
        }
        config.print.out_dir = labels.display().to_string();
        let client = ShopClient::new(
            &config.shop.url,
            config.shop.token.clone(),
            RetryPolicy::default(),
        )?;
        let mut store = Store::open(&db)?;
        station::pull::pull(&client, &mut store, &config, "bench-scan").await?;
        let opts = PrintOptions {
            // Generated orders: PDF files only, never the configured printers.
            targets: Some(wave::Targets::default()),
            ..PrintOptions::from_config(&config.print, labels.clone())
        };
        let printed = wave::print(&mut store, &config, &opts, "bench-scan", &|_, _| {})?;
        let mut jobs = Vec::new();
        for p in &printed.orders {
            let o = store
                .order(&p.order_id)?
                .with_context(|| format!("order {} vanished", p.order_id))?
                .order;
            let mut scans = vec![(Kind::Slip, o.id.clone())];
            for item in &o.items {
                let code = item.barcode.clone().unwrap_or_else(|| item.sku.clone());
                for _ in 0..item.qty {
                    scans.push((Kind::Item, code.clone()));
                }
            }
            scans.push((Kind::Waybill, p.tracking_no.clone()));
            jobs.push(Job { scans });
        }
        anyhow::Ok((jobs, server))
    })?;

    // The server, on its own runtime and threads.
    let pin = "0000";
    let hash = hash_pin(pin)?;
    config.operators = (1..=benches)
        .map(|i| Operator {
            name: format!("operator-{i}"),
            pin_hash: hash.clone(),
        })
        .collect();
    // One server per `serve` process measured, each on its own runtime and
    // threads, all on the one database.
    let mut bases = Vec::new();
    for _ in 0..servers {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(AppState::new(config.clone(), &db, addr)?);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                let _ = axum::serve(listener, router(state)).await;
            });
        });
        bases.push(format!("http://{addr}"));
    }

    // The benches, spread over the servers: signed in once, then a round per
    // shop latency, each on orders of its own.
    let base_of = |n: usize| bases[n % servers].clone();
    let cookies = client_rt.block_on(async {
        let mut cookies = Vec::new();
        for n in 1..=benches {
            cookies.push(sign_in(&base_of(n), n, pin).await?);
        }
        anyhow::Ok(cookies)
    })?;
    let mut jobs = jobs.into_iter();
    let mut rounds = Vec::new();
    let mut failed = 0;
    for &latency in &latencies {
        simulator.set_faults(Faults {
            latency_ms: latency,
            ..Faults::default()
        });
        let mut shares: Vec<Vec<Job>> = (0..benches).map(|_| Vec::new()).collect();
        for (i, job) in jobs.by_ref().take(benches * per_bench).enumerate() {
            shares[i % benches].push(job);
        }
        let started = Instant::now();
        let results = client_rt.block_on(async {
            let mut tasks = Vec::new();
            for (n, (share, cookie)) in shares.into_iter().zip(&cookies).enumerate() {
                let (base, cookie) = (base_of(n + 1), cookie.clone());
                tasks.push(tokio::spawn(async move {
                    bench(&base, &cookie, share, interval).await
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.push(t.await.context("a bench task failed")??);
            }
            anyhow::Ok(all)
        })?;
        let round = round_report(latency, results, started.elapsed());
        failed +=
            round["scans"].as_u64().unwrap_or(0) - round["verdicts"]["ok"].as_u64().unwrap_or(0);
        rounds.push(round);
    }

    let report = json!({
        "benches": benches,
        "servers": servers,
        "database": if engine.postgres.is_some() { "postgres" } else { "sqlite" },
        "interval_ms": interval.as_millis() as u64,
        "orders_per_round": benches * per_bench,
        "rounds": rounds,
        "not_ok": failed,
    });
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        for round in &rounds {
            writeln!(
                out,
                "bench-scan on {} ({servers} server(s)), shop answering in {} ms: {benches} benches scanning at once ({}), {} orders, {} scans over HTTP in {} s ({} scans/s)",
                report["database"].as_str().unwrap_or(""),
                round["shop_latency_ms"],
                if interval.is_zero() {
                    "flat out".to_string()
                } else {
                    format!("a scan every {} ms each", interval.as_millis())
                },
                report["orders_per_round"],
                round["scans"],
                round["seconds"],
                round["scans_per_second"]
            )?;
            for (name, key) in [
                ("every scan", "all"),
                ("slip (opens the order, re-reads the shop)", "slip"),
                ("item", "item"),
                ("waybill (packs, re-reads the shop)", "waybill"),
            ] {
                let f = &round[key];
                writeln!(
                    out,
                    "  {name:<44} n={:<6} p50 {} ms  p90 {} ms  p99 {} ms  max {} ms",
                    f["scans"], f["p50_ms"], f["p90_ms"], f["p99_ms"], f["max_ms"]
                )?;
            }
            writeln!(out, "  verdicts: {}", round["verdicts"])?;
            for s in round["not_ok_examples"].as_array().into_iter().flatten() {
                writeln!(out, "    e.g. {s}")?;
            }
        }
    }
    out.flush()?;
    if failed > 0 {
        bail!(
            "{failed} scans were not OK (see the verdicts above): the figures do not measure a working bench"
        );
    }
    Ok(())
}

/// The figures of one round.
fn round_report(latency_ms: u64, results: Vec<Vec<Timed>>, wall: Duration) -> Value {
    let mut by_kind: BTreeMap<Kind, Vec<f64>> = BTreeMap::new();
    let mut all = Vec::new();
    let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
    let mut surprises = Vec::new();
    for r in results.into_iter().flatten() {
        by_kind.entry(r.kind).or_default().push(r.ms);
        all.push(r.ms);
        *verdicts.entry(r.verdict.clone()).or_default() += 1;
        if r.verdict != "ok" && surprises.len() < 5 {
            surprises.push(r.message);
        }
    }
    let total = all.len();
    json!({
        "shop_latency_ms": latency_ms,
        "scans": total,
        "seconds": (wall.as_secs_f64() * 100.0).round() / 100.0,
        "scans_per_second": (total as f64 / wall.as_secs_f64()).round(),
        "all": figures(all),
        "slip": figures(by_kind.remove(&Kind::Slip).unwrap_or_default()),
        "item": figures(by_kind.remove(&Kind::Item).unwrap_or_default()),
        "waybill": figures(by_kind.remove(&Kind::Waybill).unwrap_or_default()),
        "verdicts": verdicts,
        "not_ok_examples": surprises,
    })
}

struct Timed {
    kind: Kind,
    ms: f64,
    verdict: String,
    message: String,
}

/// Sign bench `n` in: its session cookie.
async fn sign_in(base: &str, n: usize, pin: &str) -> Result<String> {
    let http = station::shop::client::http()
        .timeout(Duration::from_secs(30))
        .build()?;
    let resp = http
        .post(format!("{base}/api/login"))
        .header("Origin", base)
        .json(&json!({"name": format!("operator-{n}"), "pin": pin, "bench": format!("bench-{n}")}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("bench {n} cannot sign in: {}", resp.text().await?);
    }
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("no session cookie")?
        .to_string();
    Ok(cookie)
}

/// One bench packs every order of its share, timing each scan.
async fn bench(
    base: &str,
    cookie: &str,
    share: Vec<Job>,
    interval: Duration,
) -> Result<Vec<Timed>> {
    let http = station::shop::client::http()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut out = Vec::new();
    for job in share {
        for (kind, code) in job.scans {
            if !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            let t = Instant::now();
            let resp = http
                .post(format!("{base}/api/scan"))
                .header("Origin", base)
                .header("Cookie", cookie)
                .json(&json!({ "code": code }))
                .send()
                .await?;
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let (verdict, message) = if status.is_success() {
                (
                    v["verdict"].as_str().unwrap_or("?").to_string(),
                    format!("{}: {}", v["code"], v["message"]),
                )
            } else {
                (format!("http_{}", status.as_u16()), v.to_string())
            };
            out.push(Timed {
                kind,
                ms,
                verdict,
                message,
            });
        }
    }
    Ok(out)
}
