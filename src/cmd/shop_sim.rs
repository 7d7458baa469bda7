//! `station shop-sim`: the Shop API v1 simulator, for demos and tests.

use anyhow::{Context, Result, bail};
use station::cli::ShopSimArgs;
use station::error::UsageError;
use station::pull::PullError;
use station::shop::generate::{self, GenerateOptions};
use station::shop::sim::{self, Faults, SimConfig, Simulator};
use std::io::Write;

pub async fn run(args: ShopSimArgs) -> Result<()> {
    let orders = match (&args.orders, args.generate) {
        (Some(path), _) => sim::load_orders(path).map_err(|e| PullError::Input {
            path: path.display().to_string(),
            message: format!("{e:#}"),
        })?,
        (None, Some(n)) => generate::generate_json(&GenerateOptions {
            count: n,
            seed: args.seed,
            ..Default::default()
        }),
        (None, None) => bail!(UsageError("give --orders FILE or --generate N".into())),
    };
    if args.token.is_empty() {
        bail!(UsageError(
            "give --token T or set STATION_SHOP_TOKEN".into()
        ));
    }
    let faults = Faults {
        unavailable_rate: args.fail_rate,
        rate_limit_rate: args.rate_limit,
        retry_after_secs: args.retry_after,
        retry_after_date: args.retry_after_date,
        latency_ms: args.latency_ms,
        overlap: args.overlap,
        repeat_cursor: args.repeat_cursor,
        fail_page: args.fail_page,
        lost_answer_rate: args.lost_answer_rate,
        outage_ms: args.outage_secs.saturating_mul(1000),
        force_status: args.force_status,
        seed: args.seed,
    };
    let count = orders.len();
    let simulator = Simulator::new(
        orders,
        SimConfig {
            token: args.token,
            faults,
        },
    );
    let (addr, handle) = sim::spawn(simulator, args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // Tests wait for this line: it means the port is open.
    println!("shop-sim listening on http://{addr} with {count} orders");
    std::io::stdout().flush()?;
    tokio::select! {
        _ = handle => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
