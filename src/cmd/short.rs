//! `station short`: out of stock (缺货): the order is set aside and customer service told.

use super::Ctx;
use anyhow::Result;
use station::store::Store;

pub fn run(ctx: &Ctx, order: &str, sku: &str, qty: Option<u64>, bench: &str) -> Result<()> {
    let mut store = Store::open_existing(&ctx.db)?;
    let bench = station::packing::Bench {
        name: bench,
        operator: &ctx.operator,
    };
    let s = station::packing::short(&mut store, &ctx.config, &bench, order, sku, qty)?;
    if ctx.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "order {} set aside: {} ×{} out of stock{}; the shop gets flag {} with memo “{}” (`station sync`)",
            s.order_id,
            s.sku,
            s.qty,
            s.voided
                .as_deref()
                .map(|v| format!(", waybill {v} voided"))
                .unwrap_or_default(),
            s.exception_flag,
            s.memo
        );
    }
    Ok(())
}
