//! Jobs sent to CUPS (`009_print_jobs.sql`): written before a job is sent,
//! given its CUPS job id as soon as CUPS accepts it, ended completed or
//! failed. What a print that died while a job printed finds again.

use super::sql;
use super::sql::{OptionalExtension, params};
use super::{Result, Store, event, now};
use serde::Serialize;

/// One job as the station recorded it.
#[derive(Clone, Debug, Serialize)]
pub struct PrintJob {
    pub id: i64,
    pub wave_id: Option<i64>,
    pub chunk: Option<u64>,
    pub kind: String,
    pub printer: String,
    pub title: String,
    pub file: String,
    pub orders: Vec<String>,
    pub cups_job: Option<i32>,
    pub state: String,
    pub detail: Option<String>,
}

/// A job about to be sent.
pub struct NewPrintJob<'a> {
    pub wave_id: Option<i64>,
    pub chunk: Option<u64>,
    pub kind: &'a str,
    pub printer: &'a str,
    pub file: &'a str,
    pub orders: &'a [String],
}

fn row(r: &sql::Row<'_>) -> sql::Result<PrintJob> {
    let orders: String = r.get(7)?;
    Ok(PrintJob {
        id: r.get(0)?,
        wave_id: r.get(1)?,
        chunk: r.get(2)?,
        kind: r.get(3)?,
        printer: r.get(4)?,
        title: r.get(5)?,
        file: r.get(6)?,
        orders: serde_json::from_str(&orders).unwrap_or_default(),
        cups_job: r.get(8)?,
        state: r.get(9)?,
        detail: r.get(10)?,
    })
}

const COLUMNS: &str =
    "id, wave_id, chunk, kind, printer, title, file, orders, cups_job, state, detail";

impl Store {
    /// Record a job before it is sent; its title (unique: it carries the row
    /// id) lets a later print find it in CUPS if this one dies before the job
    /// id is recorded.
    pub fn begin_print_job(&mut self, job: &NewPrintJob<'_>, operator: &str) -> Result<PrintJob> {
        let tx = self.write_tx()?;
        let at = now();
        let orders = serde_json::to_string(job.orders).unwrap_or_else(|_| "[]".into());
        let id: i64 = tx.query_row(
            "INSERT INTO print_jobs (wave_id, chunk, kind, printer, title, file, orders, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, '', ?5, ?6, 'sending', ?7, ?7) RETURNING id",
            params![job.wave_id, job.chunk, job.kind, job.printer, job.file, orders, at],
            |r| r.get(0),
        )?;
        let title = match (job.wave_id, job.chunk) {
            (Some(w), Some(c)) => format!("station wave {w} {}s {} #{id}", job.kind, c + 1),
            _ => format!(
                "station {} {} #{id}",
                job.kind,
                job.orders.first().map_or("", String::as_str)
            ),
        };
        tx.execute(
            "UPDATE print_jobs SET title = ?2 WHERE id = ?1",
            params![id, title],
        )?;
        event(
            &tx,
            operator,
            None,
            "print.job_sending",
            &format!("{title} → {} ({} orders)", job.printer, job.orders.len()),
        )?;
        let out = tx.query_row(
            &format!("SELECT {COLUMNS} FROM print_jobs WHERE id = ?1"),
            [id],
            row,
        )?;
        tx.commit()?;
        Ok(out)
    }

    /// CUPS accepted the job: record its id before waiting for it.
    pub fn print_job_sent(&mut self, id: i64, cups_job: i32) -> Result<()> {
        self.conn.execute(
            "UPDATE print_jobs SET cups_job = ?2, state = 'sent', updated_at = ?3 WHERE id = ?1",
            params![id, cups_job, now()],
        )?;
        Ok(())
    }

    /// How the job ended: `completed`, or `failed` with the reason.
    pub fn print_job_ended(
        &mut self,
        id: i64,
        completed: bool,
        detail: &str,
        operator: &str,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        let state = if completed { "completed" } else { "failed" };
        tx.execute(
            "UPDATE print_jobs SET state = ?2, detail = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, state, detail, now()],
        )?;
        let (title, printer, orders): (String, String, String) = tx.query_row(
            "SELECT title, printer, orders FROM print_jobs WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let orders: Vec<String> = serde_json::from_str(&orders).unwrap_or_default();
        if completed {
            event(
                &tx,
                operator,
                None,
                "print.job_completed",
                &format!("{title} on {printer}: {} orders", orders.len()),
            )?;
        } else {
            // Per order, so `station show ORDER` tells why its label did not come out.
            for o in &orders {
                event(
                    &tx,
                    operator,
                    Some(o),
                    "print.job_failed",
                    &format!("{title} on {printer}: {detail}"),
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The newest job of each kind for one chunk of a wave.
    pub fn chunk_print_jobs(&self, wave_id: i64, chunk: u64) -> Result<Vec<PrintJob>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM print_jobs p WHERE wave_id = ?1 AND chunk = ?2
               AND id = (SELECT max(id) FROM print_jobs q WHERE q.wave_id = p.wave_id
                         AND q.chunk = p.chunk AND q.kind = p.kind)
             ORDER BY id"
        ))?;
        let out = stmt
            .query_map(params![wave_id, chunk], row)?
            .collect::<sql::Result<_>>()?;
        Ok(out)
    }

    pub fn print_job(&self, id: i64) -> Result<Option<PrintJob>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM print_jobs WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }

    /// Every job recorded for a wave, oldest first.
    pub fn wave_print_jobs(&self, wave_id: i64) -> Result<Vec<PrintJob>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM print_jobs WHERE wave_id = ?1 ORDER BY id"
        ))?;
        let out = stmt
            .query_map([wave_id], row)?
            .collect::<sql::Result<_>>()?;
        Ok(out)
    }
}
