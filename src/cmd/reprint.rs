//! `station reprint`: one order's label and slip again (重打).

use super::Ctx;
use anyhow::Result;
use station::store::Store;
use station::wave;
use std::path::PathBuf;

pub fn run(ctx: &Ctx, order: &str, out: Option<PathBuf>, printer: Option<String>) -> Result<()> {
    let mut store = Store::open_existing(&ctx.db)?;
    let out_dir = out.unwrap_or_else(|| ctx.config.print.out_dir.clone().into());
    let p = wave::reprint(
        &mut store,
        &ctx.config,
        order,
        &out_dir,
        &ctx.operator,
        printer.as_deref(),
    )?;
    if ctx.json {
        println!("{}", serde_json::to_string(&p)?);
    } else {
        println!(
            "reprinted order {} with {} {}: {} and {}",
            p.order_id, p.courier, p.tracking_no, p.waybill_file, p.slip_file
        );
    }
    Ok(())
}
