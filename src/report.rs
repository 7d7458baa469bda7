//! The end of the day: `station report` (and the report page of `serve`), and
//! the dispatch warnings `status`, the bench page and the report share —
//! parcels still waiting after the courier's cut-off, orders about to break
//! (or past) the ship promise, oldest payment first.
//!
//! A day is cut at local midnight in the configured time zone. Counts of what
//! happened (pulled, printed, packed, handed over, intercepted, out of stock,
//! changed after print, rejected) come from the audit trail and the packing and
//! handover tables within the day; what is still open (parcels printed but not
//! handed over, pending write-backs, dispatch warnings) is as of now.

use crate::config::Config;
use crate::store::{BatchCount, InWarehouse, StatusReport, Store};
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

/// One order the dispatch rules warn about.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Warning {
    pub order_id: String,
    pub state: String,
    pub tracking_no: Option<String>,
    pub courier: Option<String>,
    /// Local time, `YYYY-MM-DD HH:MM`.
    pub paid_at: String,
    /// When the ship promise runs out, local time.
    pub due_at: String,
    /// Hours left until `due_at`; negative when the promise is already broken.
    pub hours_left: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Dispatch {
    /// Today's cut-off, local `HH:MM`.
    pub cutoff: String,
    pub cutoff_passed: bool,
    /// Paid before today's cut-off, still in the warehouse after it: they
    /// leave tomorrow unless the courier comes back.
    pub after_cutoff: Vec<Warning>,
    /// Past the ship promise and not handed over.
    pub promise_broken: Vec<Warning>,
    /// Within `dispatch.warn_hours` of breaking the promise.
    pub promise_at_risk: Vec<Warning>,
}

impl Dispatch {
    pub fn is_quiet(&self) -> bool {
        self.after_cutoff.is_empty()
            && self.promise_broken.is_empty()
            && self.promise_at_risk.is_empty()
    }
}

/// The dispatch warnings for the orders in the warehouse at `now`. Only
/// parcels that are meant to ship count (not intercepted, not out of stock).
pub fn dispatch(config: &Config, orders: &[InWarehouse], now: DateTime<Utc>) -> Dispatch {
    let tz = config.tz();
    let d = &config.dispatch;
    let local_now = now.with_timezone(&tz);
    let cutoff = tz
        .from_local_datetime(&local_now.date_naive().and_time(d.cutoff_time()))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    let cutoff_passed = now >= cutoff;
    let promise = Duration::hours(i64::from(d.promise_hours));
    let warn = Duration::hours(i64::from(d.warn_hours));
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let mut out = Dispatch {
        cutoff: d.cutoff.clone(),
        cutoff_passed,
        after_cutoff: Vec::new(),
        promise_broken: Vec::new(),
        promise_at_risk: Vec::new(),
    };
    for o in orders {
        if !matches!(
            o.state.as_str(),
            "queued" | "printed" | "packed" | "changed_after_print"
        ) {
            continue;
        }
        let Some(paid) = o
            .paid_at
            .as_deref()
            .and_then(|p| DateTime::parse_from_rfc3339(p).ok())
            .map(|p| p.with_timezone(&Utc))
        else {
            continue;
        };
        let due = paid + promise;
        let left = due - now;
        let w = Warning {
            order_id: o.order_id.clone(),
            state: o.state.clone(),
            tracking_no: o.tracking_no.clone(),
            courier: o.courier.clone(),
            paid_at: local(paid),
            due_at: local(due),
            hours_left: (left.num_minutes() as f64 / 6.0).round() / 10.0,
        };
        if cutoff_passed && paid <= cutoff {
            out.after_cutoff.push(w.clone());
        }
        if left < Duration::zero() {
            out.promise_broken.push(w);
        } else if left <= warn {
            out.promise_at_risk.push(w);
        }
    }
    out
}

/// The dispatch warnings now, from the store.
pub fn dispatch_now(store: &Store, config: &Config) -> Result<Dispatch> {
    Ok(dispatch(config, &store.in_warehouse()?, Utc::now()))
}

#[derive(Clone, Debug, Serialize)]
pub struct CourierHandover {
    pub courier: String,
    pub courier_name: String,
    pub parcels: u64,
    pub batches: Vec<BatchCount>,
}

/// A parcel with a label that has not left, and why.
#[derive(Clone, Debug, Serialize)]
pub struct NotHandedOver {
    pub order_id: String,
    pub tracking_no: Option<String>,
    pub courier: Option<String>,
    pub state: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Recall {
    pub order_id: String,
    pub batch_id: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rate {
    pub name: String,
    pub parcels: u64,
    /// Parcels per hour between the first and the last packing of the day
    /// (at least one hour, so one quick parcel is not "60 an hour").
    pub per_hour: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DayReport {
    /// The local date reported on, `YYYY-MM-DD`.
    pub date: String,
    pub time_zone: String,
    /// The day as UTC instants [from, to).
    pub from: String,
    pub to: String,
    pub pulled: u64,
    pub printed: u64,
    pub reprinted: u64,
    pub packed: u64,
    pub handed_over: u64,
    pub handed_over_by_courier: Vec<CourierHandover>,
    pub intercepted: Vec<String>,
    pub out_of_stock: Vec<String>,
    pub changed_after_print: Vec<String>,
    /// Returned items received this day (退货登记), one entry per SKU of a receipt.
    pub returns: Vec<crate::store::ReturnEntry>,
    pub rejected: u64,
    pub write_backs_pending: u64,
    pub oldest_pending_secs: Option<u64>,
    pub write_back_alerts: u64,
    /// As of now: parcels the courier has that were refunded or closed after
    /// handover — ask the courier to intercept them (拦截).
    pub recall_from_courier: Vec<Recall>,
    /// As of now: printed parcels still in the warehouse, with the reason.
    pub not_handed_over: Vec<NotHandedOver>,
    pub per_bench: Vec<Rate>,
    pub per_operator: Vec<Rate>,
    /// As of now.
    pub dispatch: Dispatch,
}

/// The report for one local date (`None`: today).
pub fn day_report(store: &Store, config: &Config, date: Option<NaiveDate>) -> Result<DayReport> {
    let tz = config.tz();
    let now = Utc::now();
    let date = date.unwrap_or_else(|| now.with_timezone(&tz).date_naive());
    let start = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| format!("{d} has no local midnight in {}", config.time_zone))
    };
    let from = start(date)?;
    let to = start(date.succ_opt().context("date out of range")?)?;
    let (f, t) = (
        from.to_rfc3339_opts(SecondsFormat::Millis, true),
        to.to_rfc3339_opts(SecondsFormat::Millis, true),
    );
    let count = |action: &str, has: Option<&str>| -> Result<Vec<String>> {
        Ok(store.orders_with_event(action, has, &f, &t)?)
    };
    let changed_to =
        |state: &str| -> Result<Vec<String>> { Ok(store.orders_changed_to(Some(state), &f, &t)?) };

    let batches = store.batches_closed_between(&f, &t)?;
    let mut by_courier: BTreeMap<String, CourierHandover> = BTreeMap::new();
    for b in batches {
        let c = by_courier
            .entry(b.courier.clone())
            .or_insert_with(|| CourierHandover {
                courier: b.courier.clone(),
                courier_name: config
                    .courier(&b.courier)
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| b.courier.clone()),
                parcels: 0,
                batches: Vec::new(),
            });
        c.parcels += b.parcels;
        c.batches.push(b);
    }

    let rates = store.pack_rates(&f, &t)?;
    let rate = |parcels: u64, first: &str, last: &str| {
        let span = match (
            DateTime::parse_from_rfc3339(first),
            DateTime::parse_from_rfc3339(last),
        ) {
            (Ok(a), Ok(b)) => (b - a).num_seconds() as f64 / 3600.0,
            _ => 0.0,
        };
        (parcels as f64 / span.max(1.0) * 10.0).round() / 10.0
    };
    let group = |key: &dyn Fn(&crate::store::PackRate) -> String| {
        let mut m: BTreeMap<String, (u64, String, String)> = BTreeMap::new();
        for r in &rates {
            let e = m
                .entry(key(r))
                .or_insert((0, r.first.clone(), r.last.clone()));
            e.0 += r.parcels;
            if r.first < e.1 {
                e.1 = r.first.clone();
            }
            if r.last > e.2 {
                e.2 = r.last.clone();
            }
        }
        m.into_iter()
            .map(|(name, (parcels, first, last))| Rate {
                per_hour: rate(parcels, &first, &last),
                name,
                parcels,
            })
            .collect::<Vec<_>>()
    };

    let in_warehouse = store.in_warehouse()?;
    let not_handed_over = in_warehouse
        .iter()
        .filter(|o| o.state != "queued")
        .map(|o| NotHandedOver {
            order_id: o.order_id.clone(),
            tracking_no: o.tracking_no.clone(),
            courier: o.courier.clone(),
            state: o.state.clone(),
            reason: match o.state.as_str() {
                "printed" => "printed, not packed yet".to_string(),
                "packed" => "packed, not scanned into a handover batch".to_string(),
                other => match &o.reason {
                    Some(r) => format!("{other}: {r}"),
                    None => other.to_string(),
                },
            },
        })
        .collect();
    let outbox = store.outbox_summary()?;
    Ok(DayReport {
        date: date.to_string(),
        time_zone: config.time_zone.clone(),
        from: f.clone(),
        to: t.clone(),
        pulled: store.orders_changed_to(None, &f, &t)?.len() as u64,
        printed: count("print.printed", None)?.len() as u64,
        reprinted: count("print.reprinted", None)?.len() as u64,
        packed: rates.iter().map(|r| r.parcels).sum(),
        handed_over: by_courier.values().map(|c| c.parcels).sum(),
        handed_over_by_courier: by_courier.into_values().collect(),
        intercepted: changed_to("intercept")?,
        out_of_stock: changed_to("out_of_stock")?,
        changed_after_print: changed_to("changed_after_print")?,
        returns: store.returns_between(&f, &t)?,
        recall_from_courier: store
            .recall_from_courier()?
            .into_iter()
            .map(|(order_id, reason, batch_id)| Recall {
                order_id,
                reason: reason.unwrap_or_default(),
                batch_id,
            })
            .collect(),
        rejected: store.rejections_between(&f, &t)?,
        write_backs_pending: outbox.pending,
        oldest_pending_secs: outbox.oldest_pending_secs,
        write_back_alerts: outbox.alerts.len() as u64,
        not_handed_over,
        per_bench: group(&|r| r.bench.clone()),
        per_operator: group(&|r| r.operator.clone()),
        dispatch: dispatch(config, &in_warehouse, now),
    })
}

/// The dispatch warnings as text (shared by `status` and `report`).
pub fn write_dispatch(out: &mut dyn Write, d: &Dispatch) -> std::io::Result<()> {
    let lists = [
        (
            format!(
                "Still here after today's cut-off {} (leave tomorrow)",
                d.cutoff
            ),
            &d.after_cutoff,
        ),
        ("Ship promise broken".to_string(), &d.promise_broken),
        (
            "Ship promise about to break".to_string(),
            &d.promise_at_risk,
        ),
    ];
    for (title, list) in lists {
        if list.is_empty() {
            continue;
        }
        writeln!(out, "\n{title}: {}", list.len())?;
        for w in list {
            writeln!(
                out,
                "  {}  {}  paid {}  due {} ({:+.1} h){}",
                w.order_id,
                w.state,
                w.paid_at,
                w.due_at,
                w.hours_left,
                w.tracking_no
                    .as_deref()
                    .map(|t| format!("  {t}"))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(())
}

pub fn write_text(out: &mut dyn Write, r: &DayReport) -> std::io::Result<()> {
    writeln!(out, "Day report {} ({})", r.date, r.time_zone)?;
    writeln!(out, "  pulled              {:>6}", r.pulled)?;
    writeln!(out, "  printed             {:>6}", r.printed)?;
    writeln!(out, "  reprinted           {:>6}", r.reprinted)?;
    writeln!(out, "  packed              {:>6}", r.packed)?;
    writeln!(out, "  handed over         {:>6}", r.handed_over)?;
    for c in &r.handed_over_by_courier {
        let ids: Vec<&str> = c.batches.iter().map(|b| b.batch_id.as_str()).collect();
        writeln!(
            out,
            "    {} {} {:>5} parcels in {}",
            pad(&c.courier, 4),
            pad(&format!("{}:", c.courier_name), 8),
            c.parcels,
            ids.join(", ")
        )?;
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!("  ({})", v.join(", "))
        }
    };
    writeln!(
        out,
        "  intercepted         {:>6}{}",
        r.intercepted.len(),
        list(&r.intercepted)
    )?;
    writeln!(
        out,
        "  out of stock        {:>6}{}",
        r.out_of_stock.len(),
        list(&r.out_of_stock)
    )?;
    writeln!(
        out,
        "  changed after print {:>6}{}",
        r.changed_after_print.len(),
        list(&r.changed_after_print)
    )?;
    let returned: u64 = r.returns.iter().map(|x| x.qty).sum();
    writeln!(
        out,
        "  returns received    {:>6}{}",
        receipts(&r.returns),
        if returned > 0 {
            format!("  ({returned} items)")
        } else {
            String::new()
        }
    )?;
    writeln!(out, "  rejected            {:>6}", r.rejected)?;
    match r.oldest_pending_secs {
        Some(age) if r.write_backs_pending > 0 => writeln!(
            out,
            "  write-backs pending {:>6}  (oldest {age} s)",
            r.write_backs_pending
        )?,
        _ => writeln!(out, "  write-backs pending {:>6}", r.write_backs_pending)?,
    }
    if r.write_back_alerts > 0 {
        writeln!(out, "  write-back alerts   {:>6}", r.write_back_alerts)?;
    }
    if !r.recall_from_courier.is_empty() {
        writeln!(
            out,
            "\nAsk the courier to intercept (拦截, refunded after handover): {}",
            r.recall_from_courier.len()
        )?;
        for x in &r.recall_from_courier {
            writeln!(out, "  {}  batch {}  {}", x.order_id, x.batch_id, x.reason)?;
        }
    }
    if !r.returns.is_empty() {
        writeln!(out, "\nReturns received (退货登记)")?;
        for x in &r.returns {
            writeln!(
                out,
                "  #{:<4} {}  {} ×{}  {}{}  {} @ {}",
                x.receipt,
                x.order_id,
                crate::order::terminal_safe(&x.sku),
                x.qty,
                x.condition,
                if x.reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", crate::order::terminal_safe(&x.reason))
                },
                crate::order::terminal_safe(&x.operator),
                x.bench
            )?;
        }
    }
    writeln!(
        out,
        "\nPrinted but not handed over (now): {}",
        r.not_handed_over.len()
    )?;
    for p in &r.not_handed_over {
        writeln!(
            out,
            "  {}  {} {}  {}",
            p.order_id,
            p.courier.as_deref().unwrap_or("-"),
            p.tracking_no.as_deref().unwrap_or("-"),
            p.reason
        )?;
    }
    for (title, rates) in [
        ("Per bench", &r.per_bench),
        ("Per operator", &r.per_operator),
    ] {
        if rates.is_empty() {
            continue;
        }
        writeln!(out, "\n{title} (parcels packed, per hour)")?;
        for x in rates {
            writeln!(
                out,
                "  {} {:>5}  {:>6.1}/h",
                pad(&crate::order::terminal_safe(&x.name), 16),
                x.parcels,
                x.per_hour
            )?;
        }
    }
    write_dispatch(out, &r.dispatch)?;
    Ok(())
}

/// How many receipts (receives) the returned lines come from.
fn receipts(lines: &[crate::store::ReturnEntry]) -> u64 {
    let mut ids: Vec<u64> = lines.iter().map(|x| x.receipt).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len() as u64
}

/// The report as CSV rows `section,key,count,detail` (one header line).
pub fn write_csv(out: &mut dyn Write, r: &DayReport) -> std::io::Result<()> {
    use self::csv_field as q;
    writeln!(out, "section,key,count,detail")?;
    let mut row = |section: &str, key: &str, count: String, detail: &str| {
        writeln!(out, "{},{},{},{}", q(section), q(key), count, q(detail))
    };
    row("day", &r.date, String::new(), &r.time_zone)?;
    for (k, v) in [
        ("pulled", r.pulled),
        ("printed", r.printed),
        ("reprinted", r.reprinted),
        ("packed", r.packed),
        ("handed_over", r.handed_over),
        ("intercepted", r.intercepted.len() as u64),
        ("out_of_stock", r.out_of_stock.len() as u64),
        ("changed_after_print", r.changed_after_print.len() as u64),
        ("returns_received", receipts(&r.returns)),
        ("rejected", r.rejected),
        ("write_backs_pending", r.write_backs_pending),
        ("write_back_alerts", r.write_back_alerts),
    ] {
        row("total", k, v.to_string(), "")?;
    }
    if let Some(age) = r.oldest_pending_secs {
        row("total", "oldest_pending_secs", age.to_string(), "")?;
    }
    for c in &r.handed_over_by_courier {
        row(
            "courier",
            &c.courier,
            c.parcels.to_string(),
            &c.courier_name,
        )?;
        for b in &c.batches {
            row("batch", &b.batch_id, b.parcels.to_string(), &c.courier)?;
        }
    }
    for (section, ids) in [
        ("intercepted", &r.intercepted),
        ("out_of_stock", &r.out_of_stock),
        ("changed_after_print", &r.changed_after_print),
    ] {
        for id in ids {
            row(section, id, String::new(), "")?;
        }
    }
    for x in &r.returns {
        row(
            "return",
            &x.order_id,
            x.qty.to_string(),
            &format!(
                "#{} {} {} {} {} {}",
                x.receipt, x.sku, x.condition, x.reason, x.operator, x.bench
            ),
        )?;
    }
    for x in &r.recall_from_courier {
        row(
            "recall_from_courier",
            &x.order_id,
            String::new(),
            &format!("{} {}", x.batch_id, x.reason),
        )?;
    }
    for p in &r.not_handed_over {
        row(
            "not_handed_over",
            &p.order_id,
            String::new(),
            &format!(
                "{} {} {}",
                p.courier.as_deref().unwrap_or("-"),
                p.tracking_no.as_deref().unwrap_or("-"),
                p.reason
            ),
        )?;
    }
    for x in &r.per_bench {
        row(
            "bench",
            &x.name,
            x.parcels.to_string(),
            &format!("{:.1}/h", x.per_hour),
        )?;
    }
    for x in &r.per_operator {
        row(
            "operator",
            &x.name,
            x.parcels.to_string(),
            &format!("{:.1}/h", x.per_hour),
        )?;
    }
    for (section, list) in [
        ("after_cutoff", &r.dispatch.after_cutoff),
        ("promise_broken", &r.dispatch.promise_broken),
        ("promise_at_risk", &r.dispatch.promise_at_risk),
    ] {
        for w in list {
            row(
                section,
                &w.order_id,
                String::new(),
                &format!(
                    "paid {} due {} ({:+.1} h)",
                    w.paid_at, w.due_at, w.hours_left
                ),
            )?;
        }
    }
    Ok(())
}

/// `station status` as text: orders by state, the write-back, and the lists to act on.
pub fn write_status(out: &mut dyn Write, s: &StatusReport) -> Result<()> {
    writeln!(out, "Orders by state")?;
    for (state, n) in &s.counts {
        writeln!(out, "  {state:<22}{n:>7}")?;
    }
    let o = &s.outbox;
    match o.oldest_pending_secs {
        Some(age) if o.pending > 0 => {
            writeln!(
                out,
                "\nWrite-back to the shop: {} sends pending for {} orders, oldest waiting {age}s (`station sync` sends them)",
                o.pending, o.pending_orders
            )?;
            if let Some(problem) = &o.last_error {
                writeln!(out, "  last problem: {problem}")?;
            }
        }
        _ => writeln!(
            out,
            "\nWrite-back to the shop: nothing pending ({} orders done)",
            o.done_orders
        )?,
    }
    let lists = [
        ("Rejected (fix on the shop, then pull again)", &s.rejected),
        (
            "Changed after print (needs a new label)",
            &s.changed_after_print,
        ),
        ("Intercept (do not ship)", &s.intercept),
        ("Left the queue", &s.left_queue),
        ("Printed, but look at the label", &s.attention),
        (
            "Write-back alerts (not marked done on the shop; act on each)",
            &s.outbox.alerts,
        ),
    ];
    for (title, list) in lists {
        if list.is_empty() {
            continue;
        }
        writeln!(out, "\n{title}: {}", list.len())?;
        for item in list {
            // Ids and reasons carry shop text (a rejected id is as the shop sent it).
            let line = format!("  {}  {}", item.id, item.reason);
            writeln!(out, "{}", crate::order::terminal_safe(&line))?;
        }
    }
    Ok(())
}

/// `s` padded with spaces to `width` terminal columns: a Chinese character
/// takes two, so names line up in columns with ASCII ones (`{:<16}` counts
/// characters, not columns).
pub fn pad(s: &str, width: usize) -> String {
    let w = unicode_width::UnicodeWidthStr::width(s);
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

/// Excel reads a CSV file as the machine's legacy code page (GBK on a
/// Chinese Windows) unless it starts with this mark (`--excel`).
pub const UTF8_BOM: &str = "\u{feff}";

/// A CSV field, quoted when it needs to be.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(id: &str, state: &str, paid: &str) -> InWarehouse {
        InWarehouse {
            order_id: id.into(),
            state: state.into(),
            reason: None,
            paid_at: Some(paid.into()),
            tracking_no: None,
            courier: None,
        }
    }

    #[test]
    fn cutoff_and_promise_warn_oldest_first_and_only_for_parcels_meant_to_ship() {
        let config = Config::default(); // Asia/Shanghai, cut-off 17:00, 24 h promise, warn 4 h
        // 2026-11-11 18:00 in Shanghai.
        let now = DateTime::parse_from_rfc3339("2026-11-11T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let orders = [
            // Paid 2026-11-10 09:00 local: promise broken (due 11-11 09:00).
            waiting("OLD", "packed", "2026-11-10T01:00:00Z"),
            // Paid 2026-11-10 20:00 local: due 11-11 20:00, 2 h left.
            waiting("RISK", "printed", "2026-11-10T12:00:00Z"),
            // Paid 2026-11-11 16:00 local: before the cut-off, plenty of time.
            waiting("FRESH", "queued", "2026-11-11T08:00:00Z"),
            // Paid after the cut-off: tomorrow's work, no warning.
            waiting("LATE", "queued", "2026-11-11T09:30:00Z"),
            // Intercepted: not meant to ship, never warned about.
            waiting("STOP", "intercept", "2026-11-09T01:00:00Z"),
        ];
        let d = dispatch(&config, &orders, now);
        assert!(d.cutoff_passed);
        let ids = |v: &[Warning]| v.iter().map(|w| w.order_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&d.after_cutoff), ["OLD", "RISK", "FRESH"]);
        assert_eq!(ids(&d.promise_broken), ["OLD"]);
        assert_eq!(ids(&d.promise_at_risk), ["RISK"]);
        assert_eq!(d.promise_at_risk[0].hours_left, 2.0);
        assert_eq!(d.promise_broken[0].hours_left, -9.0);
        assert_eq!(d.promise_at_risk[0].due_at, "2026-11-11 20:00");

        // Before the cut-off nothing is "after the cut-off".
        let morning = DateTime::parse_from_rfc3339("2026-11-11T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let d = dispatch(&config, &orders, morning);
        assert!(!d.cutoff_passed && d.after_cutoff.is_empty());
    }

    #[test]
    fn columns_line_up_by_display_width() {
        let rows = [pad("1号台", 8), pad("bench-2", 8), pad("小王", 8)];
        for r in &rows {
            assert_eq!(
                unicode_width::UnicodeWidthStr::width(r.as_str()),
                8,
                "{r:?}"
            );
        }
        assert_eq!(pad("很长很长的名字", 4), "很长很长的名字");
    }
}
