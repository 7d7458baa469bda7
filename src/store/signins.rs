//! Bench sessions and wrong-PIN counts (`serve`'s sign-in), shared by every
//! `serve` on this database. The policy (how long a session idles, how long a
//! lockout lasts) is `serve::auth`'s; this file only keeps the rows.
//! Times are Unix milliseconds from the caller's clock, so tests move it by hand.

use super::sql::{OptionalExtension, params};
use super::{Result, Store, now};

/// A live session: who is signed in, and at which bench.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub operator: String,
    pub bench: String,
}

/// A sign-in to record.
#[derive(Clone, Copy, Debug)]
pub struct NewSignin<'a> {
    pub token_sha256: &'a str,
    pub operator: &'a str,
    pub bench: &'a str,
    pub now_ms: i64,
    pub idle_ms: i64,
    /// End another browser's session on the bench instead of refusing.
    pub take_over: bool,
    /// This browser's own session: it never holds the bench against the new
    /// one, and ends once the new one is in.
    pub replacing: Option<&'a str>,
}

/// A sign-in refused because another browser's live session holds the bench.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchHolder(pub String);

impl Store {
    /// Start a session (see [`NewSignin`]). Sessions idle for `idle_ms` or
    /// more are gone first. Another live session on the bench refuses the
    /// sign-in (`Err(holder)`), unless `take_over` ends it: `Ok(Some(operator))`
    /// names whom the bench was taken from.
    pub fn session_start(
        &mut self,
        new: &NewSignin<'_>,
    ) -> Result<Result<Option<String>, BenchHolder>> {
        let NewSignin {
            token_sha256,
            operator,
            bench,
            now_ms,
            idle_ms,
            take_over,
            replacing,
        } = *new;
        let tx = self.write_tx()?;
        tx.execute(
            "DELETE FROM signins WHERE last_seen_ms <= ?1",
            [now_ms - idle_ms],
        )?;
        let holder: Option<String> = tx
            .query_row(
                "SELECT operator FROM signins
                 WHERE bench = ?1 AND token_sha256 IS DISTINCT FROM ?2 LIMIT 1",
                params![bench, replacing],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(h) = &holder {
            if !take_over {
                return Ok(Err(BenchHolder(h.clone())));
            }
            tx.execute("DELETE FROM signins WHERE bench = ?1", [bench])?;
        }
        if let Some(old) = replacing {
            tx.execute("DELETE FROM signins WHERE token_sha256 = ?1", [old])?;
        }
        tx.execute(
            "INSERT INTO signins (token_sha256, operator, bench, started_at, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![token_sha256, operator, bench, now(), now_ms],
        )?;
        tx.commit()?;
        Ok(Ok(holder))
    }

    /// The live session of `token_sha256`; `None` when unknown or idle for
    /// `idle_ms` (then it is gone). Its last-seen time is written only when
    /// older than `refresh_after_ms`: a bench polling every half second must
    /// not cost a disk flush per request.
    pub fn session_touch(
        &mut self,
        token_sha256: &str,
        now_ms: i64,
        idle_ms: i64,
        refresh_after_ms: i64,
    ) -> Result<Option<SessionRow>> {
        let found: Option<(String, String, i64)> = self
            .conn
            .query_row(
                "SELECT operator, bench, last_seen_ms FROM signins WHERE token_sha256 = ?1",
                [token_sha256],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((operator, bench, last_seen)) = found else {
            return Ok(None);
        };
        if now_ms - last_seen >= idle_ms {
            let tx = self.write_tx()?;
            tx.execute(
                "DELETE FROM signins WHERE token_sha256 = ?1 AND last_seen_ms = ?2",
                params![token_sha256, last_seen],
            )?;
            tx.commit()?;
            return Ok(None);
        }
        if now_ms - last_seen >= refresh_after_ms {
            let tx = self.write_tx()?;
            // Another `serve` may have ended it (sign-out, take-over) since the
            // read: then it stays ended.
            let alive = tx.execute(
                "UPDATE signins SET last_seen_ms = CASE WHEN last_seen_ms > ?2 THEN last_seen_ms ELSE ?2 END
                 WHERE token_sha256 = ?1",
                params![token_sha256, now_ms],
            )?;
            tx.commit()?;
            if alive == 0 {
                return Ok(None);
            }
        }
        Ok(Some(SessionRow { operator, bench }))
    }

    /// End the session of `token_sha256` (sign-out): who it was, if it lived.
    pub fn session_end(&mut self, token_sha256: &str) -> Result<Option<SessionRow>> {
        let tx = self.write_tx()?;
        let row = tx
            .query_row(
                "DELETE FROM signins WHERE token_sha256 = ?1 RETURNING operator, bench",
                [token_sha256],
                |r| {
                    Ok(SessionRow {
                        operator: r.get(0)?,
                        bench: r.get(1)?,
                    })
                },
            )
            .optional()?;
        tx.commit()?;
        Ok(row)
    }

    /// Until when (Unix ms) `name` is locked out after wrong PINs, if it is.
    pub fn pin_locked_until(&self, name: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT locked_until_ms FROM pin_failures WHERE name = ?1",
                [name],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Count one more wrong PIN for `name`; `lock(count)` says until when the
    /// name is then locked out (`None`: not yet). One transaction, so wrong
    /// PINs tried at once on several `serve`s all count.
    pub fn pin_failed(&mut self, name: &str, lock: impl Fn(u32) -> Option<i64>) -> Result<u32> {
        let tx = self.write_tx()?;
        let count: u32 = tx.query_row(
            "INSERT INTO pin_failures (name, count) VALUES (?1, 1)
             ON CONFLICT (name) DO UPDATE SET count = pin_failures.count + 1
             RETURNING count",
            [name],
            |r| r.get(0),
        )?;
        if let Some(until) = lock(count) {
            tx.execute(
                "UPDATE pin_failures SET locked_until_ms = ?2 WHERE name = ?1",
                params![name, until],
            )?;
        }
        tx.commit()?;
        Ok(count)
    }

    /// A right PIN: `name`'s wrong ones are forgotten.
    pub fn pin_succeeded(&mut self, name: &str) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute("DELETE FROM pin_failures WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(())
    }
}
