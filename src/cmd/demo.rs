//! `station demo`: the whole main job on generated orders, with nothing to set
//! up. It starts the shop simulator in-process on a free loopback port, then:
//! pull → print a wave → "customer service" changes one printed order and
//! refunds another → a bench packs every parcel (slip, items, waybill), catching
//! the change (STOP, reprint) and the refund (INTERCEPT) → one handover batch per
//! courier, closed with its manifest → the outbox writes shipments and the green
//! flag back to the shop; one parcel is out of stock (缺货) and goes back to
//! customer service with the exception flag. It prints what happened, the
//! end-of-day report, and where the files are.
//!
//! It runs the same library code as the real commands; only the shop is simulated.

use anyhow::{Context, Result};
use rand::RngExt as _;
use serde::Serialize;
use serde_json::json;
use station::config::{Config, Secret};
use station::courier::sim::{self as courier_sim, WaybillSim};
use station::handover;
use station::outbox;
use station::packing::{self, Bench, ScanOutcome, Verdict};
use station::pull::{self, PullReport};
use station::report::write_status;
use station::shop::client::{RetryPolicy, ShopClient};
use station::shop::generate::{self, GenerateOptions};
use station::shop::sim::{self, Faults, SimConfig, Simulator};
use station::store::Store;
use station::wave::{self, PrintOptions};
use std::collections::BTreeMap;
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
        // Some buyers order twice or three times to one address: merged parcels.
        repeat_buyer_rate: 0.05,
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
    if !config.sender.missing().is_empty() {
        // A courier refuses a waybill without a sender: the demo ships from a sample one.
        config.sender = station::render::Sender::sample();
    }
    // 中通 takes its numbers and routing codes from an e-waybill service (a
    // simulated one here); it does not deliver to Tibet, which 圆通 takes over.
    let waybills = WaybillSim::new(&token, 100_000, Default::default());
    waybills.set_unreachable("ZTO", vec!["西藏自治区".into()]);
    let (waybill_addr, _waybill_server) =
        courier_sim::spawn(waybills.clone(), "127.0.0.1:0".parse()?).await?;
    if let Some(zto) = config.couriers.iter_mut().find(|c| c.code == "ZTO") {
        zto.source = station::config::Source::Service;
        zto.service_url = format!("http://{waybill_addr}");
        zto.token_env = "STATION_ZTO_WAYBILL_TOKEN".into();
        zto.token = Secret::new(token.clone());
        zto.fallback = "YTO".into();
    }
    // Shelves (库位) by SKU prefix, so the pick list walks the warehouse in
    // one pass; gift cards have none (they come last, under 未设库位).
    if config.locations.is_empty() {
        for (prefix, shelf) in [
            ("CL-", "A-01"),
            ("CS-", "A-02"),
            ("HM-", "B-01"),
            ("ST-", "B-03"),
        ] {
            config.locations.push(station::config::Location {
                prefix: prefix.into(),
                location: shelf.into(),
                ..Default::default()
            });
        }
    }
    let client = ShopClient::new(&url, config.shop.token.clone(), RetryPolicy::default())?;
    let mut store = Store::open(&db)?;
    let pulled = pull::pull(&client, &mut store, &config, operator).await?;

    // Print the wave: numbers committed first, then waybills and slips as PDFs.
    let opts = PrintOptions::from_config(&config.print, labels.clone());
    // The wave blocks on the services' answers: off the runtime's workers.
    let printed = tokio::task::block_in_place(|| {
        wave::print(&mut store, &config, &opts, operator, &|_, _| {})
    })?;

    // Customer service acts on the shop after printing: an address change and a
    // refund request. The bench catches both when it re-reads the orders.
    let mut cs_actions = Vec::new();
    // Orders of one-order parcels (a merged parcel's story is in the tests).
    let mut per_number: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &printed.orders {
        *per_number.entry(p.tracking_no.as_str()).or_default() += 1;
    }
    let single: Vec<&str> = printed
        .orders
        .iter()
        .filter(|p| per_number[p.tracking_no.as_str()] == 1)
        .map(|p| p.order_id.as_str())
        .collect();
    if single.len() >= 3 {
        let admin = station::shop::client::http().build()?;
        let (a, b) = (&single[0], &single[1]);
        let changes = [
            (
                a,
                json!({"address": "文三路 88 号 华星科技大厦 12 楼(改地址)",
                "memo": {"text": "改地址: 文三路 88 号", "author": "客服阿珍", "at": chrono::Local::now().fixed_offset().to_rfc3339()}}),
            ),
            (b, json!({"refund": "requested"})),
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
        cs_actions.push(format!("order {a} changed its address after print"));
        cs_actions.push(format!("order {b} asked for a refund after print"));
    }

    // Pack every printed parcel at a bench: slip, each item, waybill.
    let bench_shop = ShopClient::from_config(&config, station::shop::client::Purpose::Check).ok();
    let bench = Bench {
        name: "bench-1",
        operator,
    };
    let mut packed = Packed::default();
    // A merged parcel is packed once (its slip opens all its orders).
    let mut seen = std::collections::HashSet::new();
    for p in &printed.orders {
        if !seen.insert(p.tracking_no.clone()) {
            continue;
        }
        if single.get(2) == Some(&p.order_id.as_str()) {
            // An item of the third one-order parcel is not on the shelf (缺货): set aside,
            // its number voided, the shop gets the exception flag and a memo.
            let order = store
                .order(&p.order_id)?
                .context("printed order vanished")?;
            let sku = order.order.items[0].sku.clone();
            packed.out_of_stock.push(packing::short(
                &mut store,
                &config,
                &bench,
                &p.order_id,
                &sku,
                None,
            )?);
            continue;
        }
        let mut out = pack_one(
            &mut store,
            bench_shop.as_ref(),
            &config,
            &bench,
            &p.order_id,
        )
        .await?;
        if out.can_reprint {
            // STOP: the address changed after print. One key: a new label.
            let re = tokio::task::block_in_place(|| {
                packing::reprint(&mut store, &config, &bench, &p.order_id, &labels)
            })?;
            packed.reprinted.push(format!(
                "{} → {} ({})",
                p.order_id, re.tracking_no, re.waybill_file
            ));
            out = pack_one(
                &mut store,
                bench_shop.as_ref(),
                &config,
                &bench,
                &p.order_id,
            )
            .await?;
        }
        match (out.verdict, out.code) {
            (Verdict::Ok, "packed") => packed.packed += 1,
            (Verdict::Intercept, _) => packed
                .intercepted
                .push(format!("{}: {}", p.order_id, out.message)),
            _ => packed
                .other
                .push(format!("{}: {}", p.order_id, out.message)),
        }
    }

    // The couriers come: one batch each, every packed parcel scanned, closed.
    let mut closed = Vec::new();
    for courier in config.couriers.clone() {
        let waiting: Vec<String> = store
            .waiting_for_courier(&courier.code)?
            .into_iter()
            .filter(|(_, _, state)| state == "packed")
            .map(|(number, _, _)| number)
            .collect();
        if waiting.is_empty() {
            continue;
        }
        let batch = handover::open(&mut store, &config, &courier.code, operator)?;
        for number in &waiting {
            handover::scan(
                &mut store,
                bench_shop.as_ref(),
                &config,
                Some(&batch.id),
                number,
                operator,
            )
            .await?;
        }
        closed.push(
            handover::close(
                &mut store,
                bench_shop.as_ref(),
                &config,
                Some(&batch.id),
                operator,
                &labels,
            )
            .await?,
        );
    }

    // The outbox writes every handover back to the shop: shipment, green flag, memo.
    let synced = outbox::sync_once(&mut store, &client, &config, operator).await?;
    let mut flags: BTreeMap<String, u64> = BTreeMap::new();
    for p in &printed.orders {
        if let Some(o) = simulator.order(&p.order_id) {
            let flag = o["flag"].as_str().unwrap_or("?").to_string();
            *flags.entry(flag).or_default() += 1;
        }
    }
    let status = store.status()?;
    let report = station::report::day_report(&store, &config, None)?;

    let mut out = std::io::stdout().lock();
    if json {
        let v = json!({"shop": url, "orders": orders, "pull": pulled, "print": printed,
            "customer_service": cs_actions, "bench": packed, "handovers": closed,
            "sync": synced, "shop_flags_of_printed_orders": flags, "status": status, "report": report, "database": db});
        serde_json::to_writer(&mut out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "station demo: a simulated shop at {url} with {orders} generated orders\n"
    )?;
    print_pull(&mut out, "pull", &pulled)?;
    writeln!(
        out,
        "print: wave {} with {} orders{}, {} pages in {} ms ({:.1} KB per page)",
        printed.wave.unwrap_or_default(),
        printed.orders.len(),
        if printed.parcels < printed.orders.len() {
            format!(
                " in {} parcels ({} merged into a parcel of the same buyer: 合并发货)",
                printed.parcels,
                printed.orders.len() - printed.parcels
            )
        } else {
            String::new()
        },
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
    if let Some(p) = &printed.picklist {
        writeln!(
            out,
            "  pick list (拣货单 in shelf order, then the 格位 slot table; each slip and waybill shows its slot): {p}"
        )?;
    }
    // With [printers] configured the wave also went to CUPS: say how each job ended.
    for j in &printed.jobs {
        let job = j
            .cups_job
            .map(|n| format!("job {n}"))
            .unwrap_or("no job".into());
        if j.completed() {
            writeln!(
                out,
                "  {} to printer {} ({job}, {} orders): completed",
                j.kind,
                j.printer,
                j.orders.len()
            )?;
        } else {
            writeln!(
                out,
                "  {} to printer {} ({job}, {} orders): NOT PRINTED: {}",
                j.kind,
                j.printer,
                j.orders.len(),
                j.reason()
            )?;
        }
    }
    if !printed.warnings.is_empty() {
        writeln!(
            out,
            "  {} label(s) to look at, e.g. {}",
            printed.warnings.len(),
            printed.warnings[0].1
        )?;
    }
    let service = waybills.state();
    writeln!(
        out,
        "  中通 (ZTO) numbers from its e-waybill service (simulated at http://{waybill_addr}): {} taken, {} given back; the 三段码 and 集包地 are on its labels",
        service["issued"], service["cancelled"]
    )?;
    for a in &cs_actions {
        writeln!(out, "customer service: {a}")?;
    }
    writeln!(
        out,
        "bench: {} parcels packed (slip, items, waybill scanned)",
        packed.packed
    )?;
    for r in &packed.reprinted {
        writeln!(out, "  STOP changed after print, reprinted: {r}")?;
    }
    for i in &packed.intercepted {
        writeln!(out, "  INTERCEPT {i}")?;
    }
    for s in &packed.out_of_stock {
        writeln!(
            out,
            "  OUT OF STOCK {}: {} ×{} — waybill {} voided, shop flag {} with memo “{}”",
            s.order_id,
            s.sku,
            s.qty,
            s.voided.as_deref().unwrap_or("-"),
            s.exception_flag,
            s.memo
        )?;
    }
    for o in &packed.other {
        writeln!(out, "  not packed: {o}")?;
    }
    for c in &closed {
        writeln!(
            out,
            "handover {}: {} parcels, manifest {}",
            c.batch_id, c.count, c.manifest
        )?;
    }
    writeln!(out, "sync: {}", synced.summary())?;
    let counts: Vec<String> = flags.iter().map(|(f, n)| format!("{f} {n}")).collect();
    writeln!(
        out,
        "shop flags of the {} printed orders: {}",
        printed.orders.len(),
        counts.join(", ")
    )?;
    writeln!(out)?;
    write_status(&mut out, &status)?;
    writeln!(out)?;
    station::report::write_text(&mut out, &report)?;
    writeln!(
        out,
        "\nFiles: database {}, labels and manifests under {}",
        db.display(),
        labels.display()
    )?;
    writeln!(out, "Look around: station --db {} status", db.display())?;
    Ok(())
}

#[derive(Debug, Default, Serialize)]
struct Packed {
    packed: u64,
    reprinted: Vec<String>,
    intercepted: Vec<String>,
    out_of_stock: Vec<packing::Shortage>,
    other: Vec<String>,
}

/// Scan one order through a bench the way an operator would: its slip, each
/// item (barcode, else SKU) as many times as ordered, then its waybill. Stops
/// at the first answer that is not OK.
async fn pack_one(
    store: &mut Store,
    shop: Option<&ShopClient>,
    config: &Config,
    bench: &Bench<'_>,
    order_id: &str,
) -> Result<ScanOutcome> {
    let out = packing::scan(store, shop, config, bench, order_id).await?;
    let Some(order) = out.order.clone().filter(|_| out.verdict == Verdict::Ok) else {
        return Ok(out);
    };
    for item in &order.items {
        let code = item.barcode.clone().unwrap_or_else(|| item.sku.clone());
        for _ in item.scanned..item.qty {
            let out = packing::scan(store, shop, config, bench, &code).await?;
            if out.verdict != Verdict::Ok {
                return Ok(out);
            }
        }
    }
    let waybill = order.tracking_no.clone().unwrap_or_default();
    packing::scan(store, shop, config, bench, &waybill).await
}

fn print_pull(out: &mut dyn Write, title: &str, r: &PullReport) -> Result<()> {
    writeln!(out, "{title}: {} ({} ms)", r.summary(), r.elapsed_ms)?;
    Ok(())
}
