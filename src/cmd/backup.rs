//! `station backup`: a consistent copy of the database while the station works.

use super::Ctx;
use anyhow::{Context, Result, bail};
use station::error::UsageError;
use station::store::Store;
use std::path::Path;

pub fn run(ctx: &Ctx, file: &Path) -> Result<()> {
    let store = Store::open_existing(&ctx.db)?;
    let db_file = ctx
        .db
        .sqlite_path()
        .and_then(|p| std::path::absolute(p).ok());
    if std::path::absolute(file).ok() == db_file {
        bail!(UsageError(format!(
            "{} is the database itself: back up to another file",
            file.display()
        )));
    }
    store
        .backup_to(file)
        .with_context(|| format!("backing up to {}", file.display()))?;
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    if ctx.json {
        println!("{}", serde_json::json!({"backup": file, "bytes": bytes}));
    } else {
        println!("{} ({bytes} bytes)", file.display());
    }
    Ok(())
}
