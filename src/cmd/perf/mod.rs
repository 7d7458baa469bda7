//! `station perf wave|scan|sync`: measurements that print figures (medians of
//! several runs), kept out of the timed tests. `bench` / `bench-scan` are the
//! old names, hidden, for one release.

pub mod scan;
pub mod sync;
pub mod wave;

use anyhow::Result;

/// A database of its own on the PostgreSQL `server` for one run: its URL,
/// and the guard that drops it.
pub(super) struct ScratchPg {
    server: String,
    name: String,
}

impl ScratchPg {
    pub(super) fn create(server: &str, run: usize) -> Result<(ScratchPg, String)> {
        let name = format!("station_perf_{}_{run}", std::process::id());
        let (head, _) = server
            .rsplit_once('/')
            .ok_or_else(|| anyhow::anyhow!("--postgres {server}: a URL ending in /dbname"))?;
        let url = format!("{head}/{name}");
        let sql = format!("CREATE DATABASE {name}");
        pg_admin(server, sql)?;
        Ok((
            ScratchPg {
                server: server.to_string(),
                name,
            },
            url,
        ))
    }
}

impl Drop for ScratchPg {
    fn drop(&mut self) {
        let _ = pg_admin(
            &self.server,
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// One statement on the server's own database (on a thread: the client
/// blocks on a runtime of its own).
fn pg_admin(server: &str, sql: String) -> Result<()> {
    let server = server.to_string();
    std::thread::spawn(move || -> Result<()> {
        let mut c = postgres::Client::connect(&server, postgres::NoTls)?;
        c.batch_execute(&sql)?;
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the PostgreSQL admin thread panicked"))?
}
