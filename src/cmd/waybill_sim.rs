//! `station waybill-sim`: the Waybill API v1 simulator, for demos and tests.

use anyhow::{Context, Result, bail};
use station::cli::WaybillSimArgs;
use station::courier::sim::{self, Faults, WaybillSim};
use station::error::UsageError;
use std::io::Write;

pub async fn run(args: WaybillSimArgs) -> Result<()> {
    if args.token.is_empty() {
        bail!(UsageError(
            "give --token T or set STATION_WAYBILL_TOKEN".into()
        ));
    }
    let faults = Faults {
        unavailable_rate: args.fail_rate,
        rate_limit_rate: args.rate_limit,
        latency_ms: args.latency_ms,
        lost_answer_rate: args.lost_answer_rate,
        outage_ms: args.outage_secs.saturating_mul(1000),
        seed: args.seed,
    };
    let simulator = WaybillSim::new(&args.token, args.balance, faults);
    for spec in &args.unreachable {
        let (courier, places) = spec.split_once('=').with_context(|| {
            format!("--unreachable {spec:?}: write COURIER=PLACE,PLACE (e.g. ZTO=西藏自治区,新疆维吾尔自治区)")
        })?;
        simulator.set_unreachable(
            courier.trim(),
            places.split(',').map(|p| p.trim().to_string()).collect(),
        );
    }
    let (addr, handle) = sim::spawn(simulator, args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // Tests wait for this line: it means the port is open.
    println!(
        "waybill-sim listening on http://{addr} with {} numbers per courier",
        args.balance
    );
    std::io::stdout().flush()?;
    tokio::select! {
        _ = handle => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
