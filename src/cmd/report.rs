//! `station report`: the end-of-day report in text, JSON or CSV.

use super::Ctx;
use anyhow::Result;
use station::store::Store;
use std::io::Write;

pub fn run(ctx: &Ctx, date: Option<chrono::NaiveDate>, format: &str, excel: bool) -> Result<()> {
    let store = Store::open_existing(&ctx.db)?;
    let report = station::report::day_report(&store, &ctx.config, date)?;
    let mut out = std::io::stdout().lock();
    match (ctx.json, format) {
        (true, _) | (_, "json") => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        (_, "csv") => {
            if excel {
                out.write_all(station::report::UTF8_BOM.as_bytes())?;
            }
            station::report::write_csv(&mut out, &report)?
        }
        _ => station::report::write_text(&mut out, &report)?,
    }
    Ok(())
}
