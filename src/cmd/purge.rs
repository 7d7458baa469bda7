//! `station purge`: recipients' personal data removed after the retention
//! period, from the database and from the files ([`station::retention`]).

use super::Ctx;
use anyhow::{Result, bail};
use station::error::UsageError;
use station::store::Store;

pub fn run(ctx: &Ctx, older_than: Option<&str>) -> Result<()> {
    let days = match older_than {
        None => ctx.config.privacy.retention_days,
        Some(t) => t
            .trim()
            .trim_end_matches('d')
            .parse()
            .map_err(|_| UsageError(format!("--older-than {t:?}: give days, e.g. 90d")))?,
    };
    let mut store = Store::open_existing(&ctx.db)?;
    let r = station::retention::purge(&mut store, &ctx.config, days, &ctx.operator)?;
    if ctx.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "purged personal data of {} orders handed over before {}; deleted {} PDF files, blanked their pages in {} shared wave files, rewrote {} manifests",
            r.orders.len(),
            r.before,
            r.deleted_files.len(),
            r.blanked_files.len(),
            r.rewritten_manifests.len()
        );
    }
    if !r.failed.is_empty() {
        bail!(
            "some files still hold personal data; fix the cause and run `station purge` again: {}",
            r.failed.join("; ")
        );
    }
    Ok(())
}
