//! Privacy retention (个人信息保留期限): after `privacy.retention_days`, the
//! personal data of shipped orders is removed from the database *and* from
//! every file the station wrote about them.
//!
//! The database part is [`Store::purge_personal_data`]. The files:
//! - a wave file (waybills or slips of one chunk) whose every order is purged
//!   is deleted;
//! - a wave file shared with orders still kept (an intercepted order waiting
//!   in the same chunk) has the purged orders' pages blanked: each page keeps
//!   its place, so the kept orders' page numbers stay true, and what only the
//!   blanked pages used is dropped from the file;
//! - reprints (`DIR/reprints/ORDER-…pdf`) of purged orders are deleted;
//! - handover manifests holding a purged order are written again from the
//!   purged data (the masked name goes; ids, numbers and counts stay).
//!
//! Every rewrite goes to a temporary name first and is renamed into place, so
//! a crash leaves the old or the new file, never half of one; running the
//! purge again finishes the job (blanking is idempotent).

use crate::config::Config;
use crate::store::Store;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a purge did.
#[derive(Debug, Default, Serialize)]
pub struct PurgeReport {
    /// Handed over before this instant (UTC).
    pub before: String,
    /// Orders whose personal data was removed now.
    pub orders: Vec<String>,
    /// Files deleted (wave files of purged orders only, reprints).
    pub deleted_files: Vec<String>,
    /// Wave files kept for other orders, with the purged orders' pages blanked.
    pub blanked_files: Vec<String>,
    /// Manifests written again without the purged data.
    pub rewritten_manifests: Vec<String>,
    /// Files that could not be cleaned, with why: the purge must be run again.
    pub failed: Vec<String>,
}

/// Purge the personal data of orders handed over more than `days` days ago.
pub fn purge(store: &mut Store, config: &Config, days: u32, operator: &str) -> Result<PurgeReport> {
    let before = (chrono::Utc::now() - chrono::Duration::days(i64::from(days)))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let purged = store.purge_personal_data(&before, operator)?;
    let mut report = PurgeReport {
        before,
        orders: purged.orders.clone(),
        ..PurgeReport::default()
    };
    let mut delete: Vec<PathBuf> = purged.files.iter().map(PathBuf::from).collect();
    let mut dirs: BTreeSet<PathBuf> = purged.out_dirs.iter().map(PathBuf::from).collect();
    dirs.insert(PathBuf::from(&config.print.out_dir));
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir.join("reprints")) else {
            continue;
        };
        for f in entries.flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if purged
                .all_purged
                .iter()
                .any(|id| name.starts_with(&format!("{id}-")))
            {
                delete.push(f.path());
            }
        }
    }
    for f in delete {
        match std::fs::remove_file(&f) {
            Ok(()) => report.deleted_files.push(f.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => report
                .failed
                .push(format!("cannot delete {}: {e}", f.display())),
        }
    }
    for mixed in &purged.mixed {
        let path = Path::new(&mixed.file);
        match blank(path, mixed) {
            Ok(true) => report.blanked_files.push(mixed.file.clone()),
            Ok(false) => {}
            Err(e) => report.failed.push(format!("{}: {e:#}", mixed.file)),
        }
    }
    for batch in &purged.batches {
        match crate::handover::rewrite_manifest(store, config, batch) {
            Ok(Some(path)) => report.rewritten_manifests.push(path.display().to_string()),
            Ok(None) => {}
            Err(e) => report
                .failed
                .push(format!("the manifest of batch {batch}: {e:#}")),
        }
    }
    let detail = format!(
        "files: {} deleted, {} blanked, {} manifests rewritten, {} failed",
        report.deleted_files.len(),
        report.blanked_files.len(),
        report.rewritten_manifests.len(),
        report.failed.len()
    );
    store.record(operator, None, "privacy.files", &detail)?;
    Ok(report)
}

/// Blank the purged orders' pages of one shared wave file; `false` when the
/// file is gone (nothing to clean).
fn blank(path: &Path, mixed: &crate::store::MixedFile) -> Result<bool> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let pages = crate::render::pdf::page_count(&bytes).context("not a readable PDF")?;
    let drop = mixed.purged_pages(pages);
    let blanked =
        crate::render::pdf::blank_pages(&bytes, &drop).context("cannot rewrite the PDF")?;
    crate::wave::write_atomically(path, &blanked)?;
    Ok(true)
}
