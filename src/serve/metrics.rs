//! `GET /healthz` and `GET /metrics` (Prometheus text format 0.0.4), answered
//! only to the machine itself (a loopback peer): a monitoring agent on the
//! station's machine scrapes them; the warehouse Wi-Fi never sees them.
//!
//! Scans are counted as they are answered (by verdict, with a latency
//! histogram); everything else is read from the database at scrape time, so
//! what several processes did on one database is counted once, whoever asks.

use super::{AppState, with_store};
use crate::packing::Verdict;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the scan latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// What this process counts itself.
#[derive(Default)]
pub struct Metrics {
    scans_ok: AtomicU64,
    scans_stop: AtomicU64,
    scans_intercept: AtomicU64,
    scans_failed: AtomicU64,
    /// Cumulative counts per bucket, then +Inf.
    latency_buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// One scan answered (`None`: it failed with an error) after `took`.
    pub fn scan(&self, verdict: Option<Verdict>, took: Duration) {
        let counter = match verdict {
            Some(Verdict::Ok) => &self.scans_ok,
            Some(Verdict::Stop) => &self.scans_stop,
            Some(Verdict::Intercept) => &self.scans_intercept,
            None => &self.scans_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let at = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        for b in &self.latency_buckets[at..] {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push_str(
            "# HELP station_scans_total Bench scans answered, by verdict (failed: an error).\n",
        );
        out.push_str("# TYPE station_scans_total counter\n");
        for (verdict, n) in [
            ("ok", get(&self.scans_ok)),
            ("stop", get(&self.scans_stop)),
            ("intercept", get(&self.scans_intercept)),
            ("failed", get(&self.scans_failed)),
        ] {
            let _ = writeln!(out, "station_scans_total{{verdict=\"{verdict}\"}} {n}");
        }
        out.push_str("# HELP station_scan_seconds Time to answer a bench scan.\n");
        out.push_str("# TYPE station_scan_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "station_scan_seconds_bucket{{le=\"{b}\"}} {}",
                get(&self.latency_buckets[i])
            );
        }
        let count = get(&self.latency_buckets[BUCKETS.len()]);
        let _ = writeln!(out, "station_scan_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "station_scan_seconds_sum {}",
            get(&self.latency_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "station_scan_seconds_count {count}");
    }
}

/// Only a peer on this machine may read them.
fn from_loopback(req: &Request) -> bool {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback())
}

fn not_here() -> Response {
    (
        StatusCode::NOT_FOUND,
        "only on the station's own machine (loopback)\n",
    )
        .into_response()
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<Arc<AppState>>, req: Request) -> Response {
    if !from_loopback(&req) {
        return not_here();
    }
    let read = with_store(&state, |store, _| {
        Ok((store.gauges()?, store.outbox_summary()?))
    })
    .await;
    let mut out = String::new();
    state.metrics.write(&mut out);
    match read {
        Ok((g, outbox)) => {
            let family =
                |out: &mut String, name: &str, help: &str, label: &str, rows: &[(String, u64)]| {
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                    for (k, n) in rows {
                        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape(k));
                    }
                };
            family(
                &mut out,
                "station_orders",
                "Orders by state.",
                "state",
                &g.orders,
            );
            family(
                &mut out,
                "station_waves",
                "Print waves by state.",
                "state",
                &g.waves,
            );
            family(
                &mut out,
                "station_print_jobs",
                "Print jobs sent to CUPS, by outcome.",
                "state",
                &g.print_jobs,
            );
            let _ = writeln!(
                out,
                "# HELP station_wave_orders_printed Orders printed in waves.\n# TYPE station_wave_orders_printed gauge\nstation_wave_orders_printed {}",
                g.wave_orders_printed
            );
            let _ = writeln!(
                out,
                "# HELP station_outbox_pending Write-back sends to the shop not yet acknowledged.\n# TYPE station_outbox_pending gauge\nstation_outbox_pending {}",
                outbox.pending
            );
            let _ = writeln!(
                out,
                "# HELP station_outbox_oldest_pending_seconds Age of the oldest pending send (0: none).\n# TYPE station_outbox_oldest_pending_seconds gauge\nstation_outbox_oldest_pending_seconds {}",
                outbox.oldest_pending_secs.unwrap_or(0)
            );
            let _ = writeln!(
                out,
                "# HELP station_outbox_alerts Write-backs stopped for a person to act on.\n# TYPE station_outbox_alerts gauge\nstation_outbox_alerts {}",
                outbox.alerts.len()
            );
            let _ = writeln!(
                out,
                "# HELP station_database_up Whether the database answered.\n# TYPE station_database_up gauge\nstation_database_up 1"
            );
        }
        Err(e) => {
            tracing::warn!(error = %crate::error::one_line(&e), "metrics: the database did not answer");
            let _ = writeln!(
                out,
                "# HELP station_database_up Whether the database answered.\n# TYPE station_database_up gauge\nstation_database_up 0"
            );
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// `GET /healthz`: 200 when the database answers, 503 when it does not; the
/// body says when the shop last answered and how old the oldest pending
/// write-back is, for a person or a probe to judge.
pub async fn healthz(State(state): State<Arc<AppState>>, req: Request) -> Response {
    if !from_loopback(&req) {
        return not_here();
    }
    let read = with_store(&state, |store, _| Ok(store.outbox_summary()?)).await;
    let shop_last_seen = crate::shop::client::last_answer()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let (status, body) = match read {
        Ok(outbox) => (
            StatusCode::OK,
            serde_json::json!({
                "ok": true,
                "database": "ok",
                "shop_token": state.shop.is_some(),
                "shop_last_seen": shop_last_seen,
                "outbox_pending": outbox.pending,
                "outbox_oldest_pending_secs": outbox.oldest_pending_secs,
                "outbox_alerts": outbox.alerts.len(),
            }),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({
                "ok": false,
                "database": crate::error::one_line(&e),
                "shop_token": state.shop.is_some(),
                "shop_last_seen": shop_last_seen,
            }),
        ),
    };
    (status, axum::Json(body)).into_response()
}

/// A label value: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative() {
        let m = Metrics::default();
        m.scan(Some(Verdict::Ok), Duration::from_millis(3));
        m.scan(Some(Verdict::Stop), Duration::from_millis(30));
        m.scan(None, Duration::from_secs(9));
        let mut out = String::new();
        m.write(&mut out);
        assert!(
            out.contains("station_scans_total{verdict=\"ok\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("station_scans_total{verdict=\"failed\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("station_scan_seconds_bucket{le=\"0.005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("station_scan_seconds_bucket{le=\"0.05\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("station_scan_seconds_bucket{le=\"5\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("station_scan_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("station_scan_seconds_count 3\n"), "{out}");
    }
}
