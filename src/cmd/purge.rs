//! `station purge`: recipients' personal data removed after the retention period.

use super::Ctx;
use anyhow::Result;
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
    let before = (chrono::Utc::now() - chrono::Duration::days(i64::from(days)))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut store = Store::open_existing(&ctx.db)?;
    let purged = store.purge_personal_data(&before, &ctx.operator)?;
    let mut deleted = Vec::new();
    let reprints = std::path::Path::new(&ctx.config.print.out_dir).join("reprints");
    let mut files: Vec<std::path::PathBuf> =
        purged.files.iter().map(std::path::PathBuf::from).collect();
    if let Ok(dir) = std::fs::read_dir(&reprints) {
        for f in dir.flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if purged
                .orders
                .iter()
                .any(|id| name.starts_with(&format!("{id}-")))
            {
                files.push(f.path());
            }
        }
    }
    for f in files {
        match std::fs::remove_file(&f) {
            Ok(()) => deleted.push(f.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("warning: cannot delete {}: {e}", f.display()),
        }
    }
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"before": before, "orders": purged.orders, "deleted_files": deleted})
        );
    } else {
        println!(
            "purged personal data of {} orders handed over before {before}; deleted {} PDF files",
            purged.orders.len(),
            deleted.len()
        );
    }
    Ok(())
}
