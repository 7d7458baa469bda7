//! Keeping the database healthy: an online backup and an integrity check.

use super::sql;
use super::{Result, Store, StoreError};
use std::path::Path;
use std::time::Duration;

impl Store {
    /// Copy the whole database to `dest` through SQLite's online backup API,
    /// while the station keeps working (pages copied in steps; writers are not
    /// blocked for the whole copy). `dest` is replaced.
    /// On PostgreSQL the server's own tools do this: [`StoreError::NotOnPostgres`].
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        let sql::Connection::Lite(conn) = &self.conn else {
            return Err(StoreError::NotOnPostgres {
                what: "station backup",
                instead: "back the database up with pg_dump (or the server's own backups)",
            });
        };
        let mut out = rusqlite::Connection::open(dest).map_err(sql::Error::from)?;
        let backup = rusqlite::backup::Backup::new(conn, &mut out).map_err(sql::Error::from)?;
        backup
            .run_to_completion(256, Duration::from_millis(5), None)
            .map_err(sql::Error::from)?;
        Ok(())
    }

    /// `PRAGMA integrity_check`: `["ok"]` when the database is sound, else the
    /// problems SQLite found. On PostgreSQL (which checks its pages itself):
    /// `["ok"]` once the station's tables answer.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        if self.conn.is_postgres() {
            self.conn
                .query_row("SELECT COUNT(*) FROM station_schema", [], |r| {
                    r.get::<_, i64>(0)
                })?;
            return Ok(vec!["ok".into()]);
        }
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<sql::Result<_>>()?)
    }
}
