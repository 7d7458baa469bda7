//! `station void`: a tracking number that must never be used again (作废).

use super::Ctx;
use anyhow::Result;
use station::store::Store;

pub fn run(ctx: &Ctx, tracking: &str, reason: &str) -> Result<()> {
    let mut store = Store::open_existing(&ctx.db)?;
    let t = store.void(tracking, reason, &ctx.operator)?;
    if ctx.json {
        println!("{}", serde_json::to_string(&t)?);
    } else {
        println!("voided {} ({} order {})", t.number, t.courier, t.order_id);
    }
    Ok(())
}
