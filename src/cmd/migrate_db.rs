//! `station migrate-db --to postgres://…`: a SQLite station moves to PostgreSQL
//! with its whole history.

use super::Ctx;
use anyhow::{Result, bail};
use station::error::UsageError;
use station::store::{Db, Store};

pub fn run(ctx: &Ctx, to: &Db) -> Result<()> {
    if ctx.db.is_postgres() {
        bail!(UsageError(format!(
            "--db {} is already PostgreSQL: migrate-db copies a SQLite station (--db FILE)",
            ctx.db
        )));
    }
    if !to.is_postgres() {
        bail!(UsageError(format!(
            "--to {to} is not a PostgreSQL URL: give postgres://user@host:5432/dbname"
        )));
    }
    let source = Store::open_existing(&ctx.db)?;
    let mut dest = Store::open(to)?;
    let done = source.migrate_to(&mut dest, &ctx.operator)?;
    if ctx.json {
        println!("{}", serde_json::to_string(&done)?);
    } else {
        for t in &done.tables {
            println!("{:<18} {:>8} rows", t.table, t.rows);
        }
        println!(
            "copied {} into {} and checked every row: point the stations at it with --db {} (or STATION_DB)",
            done.from, done.to, done.to
        );
    }
    Ok(())
}
