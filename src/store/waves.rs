//! Print waves in the store: planning (orders + numbers, committed before any
//! rendering) and recording finished chunks.
//!
//! Architecture invariant: an order is `printed` only after the chunk holding its
//! label was written to a temporary name, synced and renamed into place; a
//! crash in between leaves the chunk unrecorded, and resuming the open wave
//! renders it again with the same tracking numbers.

use super::sql;
use super::sql::{OptionalExtension, params};
use super::{Result, Store, StoreError, event, now, tracking};
use crate::config::Courier;
use serde::Serialize;
use std::path::Path;

#[derive(Clone, Debug, Serialize)]
pub struct WaveOrder {
    pub seq: u64,
    pub order_id: String,
    pub order_version: u64,
    pub tracking_no: String,
    pub courier: String,
    pub chunk: u64,
    pub waybill_file: Option<String>,
    pub slip_file: Option<String>,
    pub waybill_page: Option<u64>,
    pub slip_page: Option<u64>,
    /// The routing printed with its number (empty for a pool's number).
    pub routing: crate::render::Routing,
}

#[derive(Clone, Debug, Serialize)]
pub struct Wave {
    pub id: i64,
    pub out_dir: String,
    pub waybill_template: String,
    pub slip_template: String,
    pub chunk_size: u64,
    pub state: String,
    /// `pdf`, `zpl` or `tspl`: what its files are written as.
    pub format: crate::config::Format,
    pub orders: Vec<WaveOrder>,
}

/// Where one order's label and slip ended up.
#[derive(Clone, Debug)]
pub struct ChunkFiles<'a> {
    pub waybill_file: &'a str,
    pub slip_file: &'a str,
    /// Per order of the chunk, in wave order: 1-based first page in each file.
    pub pages: Vec<(u64, u64)>,
    /// (order id, warning) of the chunk's orders, recorded with the chunk: a
    /// crash after the chunk is recorded must not lose them, since a resumed
    /// wave never renders a recorded chunk again.
    pub warnings: &'a [(String, String)],
}

pub struct WavePlan<'a> {
    pub out_dir: &'a str,
    pub waybill_template: &'a str,
    pub slip_template: &'a str,
    pub chunk_size: u64,
    pub format: crate::config::Format,
    /// Parcels in wave order, each with the courier it ships with: its
    /// orders, the lead first (one order, or a merged parcel: [`crate::parcel`]).
    pub parcels: Vec<(Vec<&'a str>, &'a Courier)>,
}

/// An order (`o`) that no open wave holds.
const NOT_IN_OPEN_WAVE: &str =
    "NOT EXISTS (SELECT 1 FROM wave_orders wo JOIN waves w ON w.id = wo.wave_id
                                WHERE wo.order_id = o.id AND w.state = 'open')";

/// [`Store::split_parcel`] inside a caller's transaction.
pub fn split_parcel_in(
    tx: &sql::Connection,
    number: &str,
    requeue: &[String],
    reason: &str,
    operator: &str,
) -> Result<()> {
    let at = now();
    tracking::void_number(tx, number, reason, operator)?;
    for id in requeue {
        tx.execute(
            "UPDATE orders SET state = 'queued', reason = NULL, updated = ?2
             WHERE id = ?1 AND state IN ('printed', 'packed', 'changed_after_print')",
            params![id, at],
        )?;
        tx.execute(
            "UPDATE bench_sessions SET order_id = NULL, order_version = NULL, updated = ?2 WHERE order_id = ?1",
            params![id, at],
        )?;
        event(
            tx,
            operator,
            Some(id),
            "print.requeued",
            &format!("{number}: {reason}"),
        )?;
    }
    Ok(())
}

/// The condition on a `wave_orders w` row that it is an order riding in the
/// merged parcel of the number `number` (an SQL expression, e.g. `?2`): a
/// printed row under that number, not its holder's, of the order's latest
/// wave, and the order holds no live number of its own.
pub(crate) fn riders(number: &str) -> String {
    format!(
        "w.tracking_no = {number} AND w.printed_at IS NOT NULL
         AND w.order_id <> (SELECT hold.order_id FROM tracking_numbers hold WHERE hold.number = {number})
         AND w.wave_id = (SELECT MAX(x.wave_id) FROM wave_orders x WHERE x.order_id = w.order_id)
         AND NOT EXISTS (SELECT 1 FROM tracking_numbers own
                         WHERE own.order_id = w.order_id AND own.state = 'allocated')"
    )
}

/// How long a wave's lease lasts without a finished chunk renewing it, unless
/// `print.lease_secs` says otherwise ([`Store::set_wave_lease`]).
pub const WAVE_LEASE_SECS: u32 = 60;

/// This machine's name (lower case), or `None` when it has none: lease
/// holders carry it, and `serve`'s self-signed certificate names it.
pub fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it on success (or truncates, then we take what fits).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = std::str::from_utf8(&buf[..end])
        .ok()?
        .trim()
        .to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// This machine's name, as lease holders carry it.
fn host() -> String {
    host_name().unwrap_or_default().replace(':', "_")
}

/// This process's name as a lease holder: its pid, a random tag and its
/// machine (stations on several machines share one PostgreSQL database).
fn lease_holder() -> &'static str {
    static HOLDER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOLDER.get_or_init(|| {
        format!(
            "{}:{:016x}:{}",
            std::process::id(),
            rand::random::<u64>(),
            host()
        )
    })
}

/// Whether the process named in a lease still runs. A print that died leaves
/// its lease behind; it must not block the next print until it runs out. Only
/// a process of this machine can be looked up (Linux: /proc/PID); one of
/// another machine counts as running until its lease runs out.
fn holder_alive(holder: &str) -> bool {
    let mut parts = holder.splitn(3, ':');
    let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
    let _tag = parts.next();
    let same_host = parts.next().is_some_and(|h| h == host());
    match pid {
        Some(pid) if same_host && cfg!(target_os = "linux") => {
            Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => true,
    }
}

fn lease_until(secs: u32) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs.into()))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// The length of the wave leases this store takes (`print.lease_secs`).
    pub fn set_wave_lease(&mut self, secs: u32) {
        self.wave_lease_secs = secs;
    }

    /// Take an open wave left by an interrupted `print`, if any, for this
    /// process. Waves another running print holds (its lease has not run out
    /// and, on this machine, its process lives) are left to it: `None` then,
    /// and this print plans a wave of its own from the orders in no open wave.
    pub fn claim_open_wave(&mut self) -> Result<Option<Wave>> {
        let lease = self.wave_lease_secs;
        let tx = self.write_tx()?;
        let open: Vec<(i64, Option<String>, Option<String>)> = tx
            .prepare(
                "SELECT id, lease_holder, lease_until FROM waves WHERE state = 'open' ORDER BY id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<sql::Result<_>>()?;
        let at = now();
        let free = open
            .into_iter()
            .find(|(_, holder, until)| match (holder, until) {
                (Some(holder), Some(until)) => {
                    holder == lease_holder() || *until <= at || !holder_alive(holder)
                }
                _ => true,
            });
        let Some((id, _, _)) = free else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE waves SET lease_holder = ?2, lease_until = ?3 WHERE id = ?1",
            params![id, lease_holder(), lease_until(lease)],
        )?;
        tx.commit()?;
        self.wave(id).map(Some)
    }

    /// Renew this process's lease on a wave while it waits for a printer (a
    /// paused printer can hold a chunk longer than the lease lasts).
    pub fn renew_wave_lease(&mut self, id: i64) -> Result<()> {
        let lease = self.wave_lease_secs;
        self.conn.execute(
            "UPDATE waves SET lease_until = ?2 WHERE id = ?1 AND lease_holder = ?3",
            params![id, lease_until(lease), lease_holder()],
        )?;
        Ok(())
    }

    /// Let go of a wave's lease (what a print that died leaves behind, for tests).
    pub fn release_wave_lease(&mut self, id: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE waves SET lease_holder = NULL, lease_until = NULL WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    /// Queued orders no open wave holds, in shipping order (urgent first,
    /// then by payment time): what a new wave may take.
    pub fn queue_for_wave(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT o.id FROM orders o WHERE o.state = 'queued' AND {NOT_IN_OPEN_WAVE}
             ORDER BY o.urgent DESC, o.paid_at, o.id"
        ))?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<sql::Result<_>>()?;
        Ok(ids)
    }

    /// The open wave left by an interrupted `print`, if any.
    pub fn open_wave(&self) -> Result<Option<Wave>> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM waves WHERE state = 'open' ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| self.wave(id)).transpose()
    }

    pub fn wave(&self, id: i64) -> Result<Wave> {
        let (out_dir, waybill_template, slip_template, chunk_size, state, format) = self
            .conn
            .query_row(
                "SELECT out_dir, waybill_template, slip_template, chunk_size, state, format FROM waves WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, String>(5)?)),
            )
            .optional()?
            .ok_or(StoreError::UnknownWave(id))?;
        let mut stmt = self.conn.prepare(
            "SELECT w.seq, w.order_id, w.order_version, w.tracking_no, t.courier, w.chunk,
                    w.waybill_file, w.slip_file, w.waybill_page, w.slip_page,
                    t.sort_code, t.short_address, t.package_center
             FROM wave_orders w JOIN tracking_numbers t ON t.number = w.tracking_no
             WHERE w.wave_id = ?1 ORDER BY w.seq",
        )?;
        let orders = stmt
            .query_map([id], |r| {
                Ok(WaveOrder {
                    seq: r.get(0)?,
                    order_id: r.get(1)?,
                    order_version: r.get(2)?,
                    tracking_no: r.get(3)?,
                    courier: r.get(4)?,
                    chunk: r.get(5)?,
                    waybill_file: r.get(6)?,
                    slip_file: r.get(7)?,
                    waybill_page: r.get(8)?,
                    slip_page: r.get(9)?,
                    routing: crate::render::Routing {
                        sort_code: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
                        short_address: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
                        package_center: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
                    },
                })
            })?
            .collect::<sql::Result<_>>()?;
        Ok(Wave {
            id,
            out_dir,
            waybill_template,
            slip_template,
            chunk_size,
            state,
            format: format.parse().unwrap_or_default(),
            orders,
        })
    }

    /// Plan a wave: record it, allocate every order's tracking number, commit.
    pub fn plan_wave(&mut self, plan: &WavePlan<'_>, operator: &str) -> Result<Wave> {
        let lease = self.wave_lease_secs;
        let tx = self.write_tx()?;
        let id: i64 = tx.query_row(
            "INSERT INTO waves (created_at, operator, out_dir, waybill_template, slip_template, chunk_size, state,
                                lease_holder, lease_until, format)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?8, ?9) RETURNING id",
            params![now(), operator, plan.out_dir, plan.waybill_template, plan.slip_template, plan.chunk_size,
                    lease_holder(), lease_until(lease), plan.format.as_str()],
            |r| r.get(0),
        )?;
        // Checked inside the write transaction, so prints at once (on one
        // station or several) plan disjoint waves: an order in another open
        // wave is that wave's.
        let queued = |id: &str| -> Result<bool> {
            Ok(tx
                .prepare_cached(&format!(
                    "SELECT 1 FROM orders o WHERE o.id = ?1 AND o.state = 'queued' AND {NOT_IN_OPEN_WAVE}"
                ))?
                .exists([id])?)
        };
        let mut seq = 0u64;
        // Chunks count labels: a merged parcel's orders stay in one chunk.
        let mut labels = 0u64;
        let mut merged = 0u64;
        for (orders, courier) in &plan.parcels {
            let mut lead: Option<tracking::Allocation> = None;
            for order_id in orders {
                if !queued(order_id)? {
                    continue;
                }
                let number = match &lead {
                    None => {
                        let a = match tracking::allocate_one(&tx, order_id, courier, operator) {
                            // Its service gave no number (refused, or changed since):
                            // not in this wave, nor are the orders that would ride with it.
                            Err(StoreError::NoServiceNumber { .. }) => break,
                            other => other?,
                        };
                        &lead.insert(a).number
                    }
                    Some(a) => {
                        // It rides under the lead's number: a number of its own
                        // (from a print before it changed) is given up.
                        tracking::void_own(
                            &tx,
                            order_id,
                            &format!("merged into parcel {}", a.number),
                            operator,
                        )?;
                        merged += 1;
                        &a.number
                    }
                };
                let version: u64 = tx.query_row(
                    "SELECT version FROM orders WHERE id = ?1",
                    [order_id],
                    |r| r.get(0),
                )?;
                tx.prepare_cached(
                    "INSERT INTO wave_orders (wave_id, seq, order_id, order_version, tracking_no, chunk)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![id, seq, order_id, version, number, labels / plan.chunk_size])?;
                seq += 1;
            }
            if lead.is_some() {
                labels += 1;
            }
        }
        if seq == 0 {
            // Another print planned them all meanwhile: an empty wave, done.
            tx.execute(
                "UPDATE waves SET state = 'done', finished_at = ?2 WHERE id = ?1",
                params![id, now()],
            )?;
        }
        event(
            &tx,
            operator,
            None,
            "wave.planned",
            &if merged > 0 {
                format!("wave {id}: {seq} orders in {labels} parcels ({merged} merged)")
            } else {
                format!("wave {id}: {seq} orders")
            },
        )?;
        crate::crash::point("wave.plan.before_commit");
        tx.commit()?;
        self.wave(id)
    }

    /// Record a chunk whose files are complete on disk, and mark its orders printed.
    /// `members` are the chunk's orders that rendered, in file order.
    pub fn finish_chunk(
        &mut self,
        wave: &Wave,
        members: &[&WaveOrder],
        files: &ChunkFiles<'_>,
        operator: &str,
    ) -> Result<Vec<String>> {
        let lease = self.wave_lease_secs;
        let tx = self.write_tx()?;
        let at = now();
        let mut stale = Vec::new();
        tx.execute(
            "UPDATE waves SET lease_until = ?2 WHERE id = ?1 AND lease_holder = ?3",
            params![wave.id, lease_until(lease), lease_holder()],
        )?;
        // A merged parcel's lead that changed takes its riders with it: they
        // ship under its number, which the next wave replaces.
        let mut stale_number: Option<&str> = None;
        for (i, (o, (wp, sp))) in members.iter().zip(&files.pages).enumerate() {
            let rider = i > 0 && members[i - 1].tracking_no == o.tracking_no;
            if rider && stale_number == Some(o.tracking_no.as_str()) {
                stale.push(o.order_id.clone());
                continue;
            }
            tx.prepare_cached(
                "UPDATE wave_orders SET waybill_file = ?3, slip_file = ?4, waybill_page = ?5, slip_page = ?6, printed_at = ?7
                 WHERE wave_id = ?1 AND seq = ?2",
            )?
            .execute(params![wave.id, o.seq, files.waybill_file, files.slip_file, wp, sp, at])?;
            // The label shows the planned version: an order that changed while
            // its chunk rendered is not marked printed (it prints again later).
            let marked = tx
                .prepare_cached(
                    "UPDATE orders SET state = 'printed', reason = NULL, printed_payload = payload,
                            printed_version = version, updated = ?2
                     WHERE id = ?1 AND version = ?3 AND state IN ('queued', 'changed_after_print')",
                )?
                .execute(params![o.order_id, at, o.order_version])?;
            if marked == 0 {
                stale.push(o.order_id.clone());
                if !rider {
                    stale_number = Some(o.tracking_no.as_str());
                }
                continue;
            }
            event(
                &tx,
                operator,
                Some(&o.order_id),
                "print.printed",
                &format!(
                    "wave {} {} {}: {} p{wp}, {} p{sp}",
                    wave.id, o.courier, o.tracking_no, files.waybill_file, files.slip_file
                ),
            )?;
        }
        for (id, warning) in files.warnings {
            event(&tx, operator, Some(id), "print.warning", warning)?;
        }
        crate::crash::point("wave.chunk.before_commit");
        tx.commit()?;
        crate::crash::point("wave.chunk.committed");
        Ok(stale)
    }

    /// The orders riding under `number` in a merged parcel (合并发货), not
    /// its lead (the number's holder), with the version each was printed at,
    /// in wave order: the printed rows of the latest wave of each order, for
    /// orders that hold no live number of their own. Empty for a parcel of one.
    pub fn parcel_members(&self, number: &str) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT w.order_id, w.order_version FROM wave_orders w WHERE {}
             ORDER BY w.wave_id, w.seq",
            riders("?1")
        ))?;
        let rows = stmt
            .query_map([number], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<sql::Result<_>>()?;
        Ok(rows)
    }

    /// The parcel an order rides in as a member: (number, lead order), when
    /// its latest printed wave put it under another order's live number.
    pub fn parcel_of(&self, order_id: &str) -> Result<Option<(String, String)>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT w.tracking_no, t.order_id FROM wave_orders w
                 JOIN tracking_numbers t ON t.number = w.tracking_no
                 WHERE w.order_id = ?1 AND t.order_id <> ?1 AND t.state = 'allocated'
                   AND w.printed_at IS NOT NULL
                   AND w.wave_id = (SELECT MAX(x.wave_id) FROM wave_orders x WHERE x.order_id = ?1)
                   AND NOT EXISTS (SELECT 1 FROM tracking_numbers o
                                   WHERE o.order_id = ?1 AND o.state = 'allocated')",
            )?
            .query_row([order_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// The live number `order_id` ships under and that number's holder (the
    /// lead): its own, or the merged parcel's it rides in.
    pub fn parcel_number(&self, order_id: &str) -> Result<Option<(String, String)>> {
        Ok(match self.parcel_of(order_id)? {
            Some(found) => Some(found),
            None => self
                .live_number(order_id)?
                .map(|t| (t.number, order_id.to_string())),
        })
    }

    /// Every order of the parcel `order_id` ships in, the lead first: the
    /// order alone when it is in no merged parcel.
    pub fn parcel_orders(&self, order_id: &str) -> Result<Vec<String>> {
        let Some((number, lead)) = self.parcel_number(order_id)? else {
            return Ok(vec![order_id.to_string()]);
        };
        let mut ids = vec![lead];
        ids.extend(self.parcel_members(&number)?.into_iter().map(|(id, _)| id));
        Ok(ids)
    }

    /// Split a merged parcel, in one transaction: its number is voided with
    /// `reason` (the label must not ship; it leaves any open handover batch)
    /// and the orders of `requeue` go back to the queue, off any bench, to
    /// print again (merged again where they still may).
    pub fn split_parcel(
        &mut self,
        number: &str,
        requeue: &[String],
        reason: &str,
        operator: &str,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        split_parcel_in(&tx, number, requeue, reason, operator)?;
        tx.commit()?;
        Ok(())
    }

    /// The order's slot (格位) in the last wave that holds it: its place, 1…N.
    pub fn slot_of(&self, order_id: &str) -> Result<Option<u64>> {
        Ok(self
            .conn
            .prepare_cached(
                // A merged parcel's orders share its lead's slot.
                "SELECT (SELECT MIN(x.seq) FROM wave_orders x
                         WHERE x.wave_id = w.wave_id AND x.tracking_no = w.tracking_no)
                 FROM wave_orders w WHERE w.order_id = ?1 ORDER BY w.wave_id DESC LIMIT 1",
            )?
            .query_row([order_id], |r| r.get::<_, u64>(0))
            .optional()?
            .map(|seq| seq + 1))
    }

    /// Printed, not yet packed orders whose payload mentions `code` (a cheap
    /// text match; the caller checks the items), with their wave and slot,
    /// newest wave first, then by slot: which slot a loose item belongs in.
    pub fn printed_orders_mentioning(
        &self,
        code: &str,
        limit: usize,
    ) -> Result<Vec<(String, String, i64, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, o.payload, wo.wave_id,
                    (SELECT MIN(x.seq) FROM wave_orders x
                     WHERE x.wave_id = wo.wave_id AND x.tracking_no = wo.tracking_no) FROM orders o
             JOIN wave_orders wo ON wo.order_id = o.id AND wo.order_version = o.printed_version
             WHERE o.state = 'printed' AND instr(o.payload, ?1) > 0
             ORDER BY wo.wave_id DESC, wo.seq LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![code, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, u64>(3)? + 1))
            })?
            .collect::<sql::Result<_>>()?;
        Ok(rows)
    }

    pub fn close_wave(&mut self, wave_id: i64, operator: &str) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "UPDATE waves SET state = 'done', finished_at = ?2 WHERE id = ?1",
            params![wave_id, now()],
        )?;
        event(&tx, operator, None, "wave.done", &format!("wave {wave_id}"))?;
        tx.commit()?;
        Ok(())
    }
}
