//! Keeping the database healthy: an online backup and an integrity check.

use super::{Result, Store};
use std::path::Path;
use std::time::Duration;

impl Store {
    /// Copy the whole database to `dest` through SQLite's online backup API,
    /// while the station keeps working (pages copied in steps; writers are not
    /// blocked for the whole copy). `dest` is replaced.
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        let mut out = rusqlite::Connection::open(dest)?;
        let backup = rusqlite::backup::Backup::new(&self.conn, &mut out)?;
        backup.run_to_completion(256, Duration::from_millis(5), None)?;
        Ok(())
    }

    /// `PRAGMA integrity_check`: `["ok"]` when the database is sound, else the
    /// problems SQLite found.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
