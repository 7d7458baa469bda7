//! `station pull` and `station import`: orders into the queue, under the intake rules.

use super::Ctx;
use anyhow::Result;
use station::pull::{self, PullReport};
use station::shop::client::{Purpose, ShopClient};
use station::store::Store;
use std::io::Write;
use std::path::Path;

pub async fn pull(ctx: &Ctx) -> Result<()> {
    let client = ShopClient::from_config(&ctx.config, Purpose::Work)?;
    let mut store = Store::open(&ctx.db)?;
    let report = pull::pull(&client, &mut store, &ctx.config, &ctx.operator).await?;
    print_pull(ctx.json, &report)
}

pub fn import(ctx: &Ctx, file: &Path) -> Result<()> {
    let mut store = Store::open(&ctx.db)?;
    let report = pull::import(file, &mut store, &ctx.config, &ctx.operator)?;
    print_pull(ctx.json, &report)
}

fn print_pull(json: bool, report: &PullReport) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{}: {}", report.source, report.summary())?;
    if !report.rejections.is_empty() {
        writeln!(
            out,
            "rejected (not stored, never printed; fix them on the shop and pull again):"
        )?;
        for r in &report.rejections {
            writeln!(out, "  {}", station::order::terminal_safe(r))?;
        }
    }
    if !report.conflicting_copies.is_empty() {
        writeln!(out, "conflicting copies (report them to the platform):")?;
        for c in &report.conflicting_copies {
            writeln!(out, "  {}", station::order::terminal_safe(c))?;
        }
    }
    Ok(())
}
