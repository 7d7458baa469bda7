//! `station show`: where is this order? Its whole story.

use super::Ctx;
use anyhow::{Result, bail};
use station::error::UsageError;
use station::store::Store;

pub fn run(ctx: &Ctx, query: &str) -> Result<()> {
    let store = Store::open_existing(&ctx.db)?;
    let stories = station::show::show(&store, query)?;
    if stories.is_empty() {
        bail!(UsageError(format!(
            "no order, tracking number or buyer nick {query:?} in the database"
        )));
    }
    if ctx.json {
        println!("{}", serde_json::to_string(&stories)?);
    } else {
        station::show::write_text(&mut std::io::stdout().lock(), &stories)?;
    }
    Ok(())
}
