//! `station export`: order id, courier and tracking number of printed orders (批量发货 upload).

use super::Ctx;
use anyhow::Result;
use station::report::csv_field;
use station::store::Store;
use std::io::Write;

pub fn run(ctx: &Ctx, excel: bool) -> Result<()> {
    let store = Store::open_existing(&ctx.db)?;
    let mut out = std::io::stdout().lock();
    if excel {
        out.write_all(station::report::UTF8_BOM.as_bytes())?;
    }
    writeln!(out, "order_id,courier,tracking_no")?;
    for (id, courier, number) in store.live_tracking()? {
        writeln!(
            out,
            "{},{},{}",
            csv_field(&id),
            csv_field(&courier),
            csv_field(&number)
        )?;
    }
    Ok(())
}
