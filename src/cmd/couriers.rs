//! `station couriers`: each courier's number source, its e-waybill service's
//! balance, and today's numbers taken, used and given back.

use super::Ctx;
use anyhow::Result;
use chrono::{SecondsFormat, TimeZone as _, Utc};
use serde::Serialize;
use station::config::Source;
use station::courier::{self, api};
use station::store::{CourierDay, Store};

#[derive(Serialize)]
struct Line {
    code: String,
    name: String,
    source: &'static str,
    /// The service's balance (面单余额); `None` for a pool, or when it did not answer.
    balance: Option<u64>,
    /// Why there is no balance for a service courier.
    #[serde(skip_serializing_if = "Option::is_none")]
    balance_problem: Option<String>,
    fallback: Option<String>,
    today: CourierDay,
}

pub async fn run(ctx: &Ctx) -> Result<()> {
    let config = &ctx.config;
    let tz = config.tz();
    let today = Utc::now().with_timezone(&tz).date_naive();
    let bound = |d: chrono::NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .map(|t| {
                t.with_timezone(&Utc)
                    .to_rfc3339_opts(SecondsFormat::Millis, true)
            })
            .unwrap_or_default()
    };
    let (from, to) = (bound(today), bound(today.succ_opt().unwrap_or(today)));
    let days = match Store::open_existing(&ctx.db) {
        Ok(store) => store.courier_days(&from, &to)?,
        Err(station::store::StoreError::Missing(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let patience = api::Patience {
        request_timeout: std::time::Duration::from_secs(5),
        total: std::time::Duration::from_secs(8),
    };
    let mut lines = Vec::new();
    for c in &config.couriers {
        let (balance, balance_problem) = match c.source {
            Source::Pool => (None, None),
            Source::Service => match courier::service_for(c, patience) {
                Ok(s) => match s.balance().await {
                    Ok(n) => (Some(n), None),
                    Err(e) => (None, Some(e.to_string())),
                },
                Err(e) => (None, Some(e.to_string())),
            },
        };
        lines.push(Line {
            code: c.code.clone(),
            name: c.name.clone(),
            source: c.source.as_str(),
            balance,
            balance_problem,
            fallback: (!c.fallback.is_empty()).then(|| c.fallback.clone()),
            today: days
                .iter()
                .find(|d| d.courier == c.code)
                .cloned()
                .unwrap_or_else(|| CourierDay {
                    courier: c.code.clone(),
                    ..CourierDay::default()
                }),
        });
    }
    if ctx.json {
        println!("{}", serde_json::to_string(&lines)?);
        return Ok(());
    }
    println!(
        "{:<6} {:<10} {:<8} {:>9}  {:>6} {:>6} {:>6} {:>10}  fallback",
        "code", "name", "source", "balance", "taken", "used", "voided", "given back"
    );
    for l in &lines {
        let balance = match (l.balance, l.source) {
            (Some(n), _) => n.to_string(),
            (None, "pool") => "-".into(),
            (None, _) => "?".into(),
        };
        let d = &l.today;
        let back = if l.source == "service" {
            format!(
                "{}/{}",
                d.cancelled,
                d.cancelled + d.cancel_pending + d.cancel_alerts
            )
        } else {
            "-".into()
        };
        println!(
            "{:<6} {:<10} {:<8} {:>9}  {:>6} {:>6} {:>6} {:>10}  {}",
            l.code,
            l.name,
            l.source,
            balance,
            d.taken,
            d.used,
            d.voided,
            back,
            l.fallback.as_deref().unwrap_or("-")
        );
        if let Some(p) = &l.balance_problem {
            println!("       {}: {p}", l.code);
        }
        if d.cancel_alerts > 0 {
            println!(
                "       {}: {} voided numbers could not be given back (already used or unknown at the service): see `station status`",
                l.code, d.cancel_alerts
            );
        }
    }
    println!(
        "(today in {}: taken = numbers issued, used = on a printed parcel, given back = cancelled at the service / voided)",
        config.time_zone
    );
    Ok(())
}
