//! `station status`: counts by state, what waits, and what to act on.

use super::Ctx;
use anyhow::Result;
use station::store::Store;
use std::io::Write;

pub fn run(ctx: &Ctx) -> Result<()> {
    let store = Store::open_existing(&ctx.db)?;
    let status = store.status()?;
    let dispatch = station::report::dispatch_now(&store, &ctx.config)?;
    let mut out = std::io::stdout().lock();
    if ctx.json {
        let mut v = serde_json::to_value(&status)?;
        v["dispatch"] = serde_json::to_value(&dispatch)?;
        serde_json::to_writer(&mut out, &v)?;
        writeln!(out)?;
    } else {
        station::report::write_status(&mut out, &status)?;
        station::report::write_dispatch(&mut out, &dispatch)?;
    }
    Ok(())
}
