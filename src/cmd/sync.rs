//! `station sync`: one pass of the write-back to the shop (shipments, green flags, memos).

use super::Ctx;
use anyhow::Result;
use station::shop::client::{Purpose, ShopClient};
use station::store::Store;
use std::io::Write;

pub async fn run(ctx: &Ctx) -> Result<()> {
    let client = ShopClient::from_config(&ctx.config, Purpose::Work)?;
    let mut store = Store::open_existing(&ctx.db)?;
    let report =
        station::outbox::sync_once(&mut store, &client, &ctx.config, &ctx.operator).await?;
    let mut out = std::io::stdout().lock();
    if ctx.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{}", report.summary())?;
    if let Some(problem) = &report.stopped {
        writeln!(
            out,
            "the shop is not answering ({problem}): the pending sends wait; run `station sync` again later"
        )?;
    }
    for a in &report.new_alerts {
        writeln!(out, "ALERT {}  {}", a.id, a.reason)?;
    }
    let c = &report.cancels;
    if c.cancelled > 0 || !c.retrying.is_empty() {
        writeln!(
            out,
            "e-waybill numbers given back: {}, to try again later: {}",
            c.cancelled,
            c.retrying.len()
        )?;
    }
    for (number, why) in &c.alerts {
        writeln!(out, "ALERT waybill {number}  {why}")?;
    }
    Ok(())
}
