//! The bench scale (`[bench.scale]`): a thread reads the serial port line by
//! line (`crate::scale::parse_line`) and keeps the latest reading, which the
//! page shows (`GET /api/scale`) and a waybill scan at that bench packs with.
//!
//! A scale that is unplugged, switched off or sends nothing is not an error
//! of the station: the reading goes stale, the page says so, and packing
//! goes on without a weight (as without a scale); the port is opened again
//! every two seconds until the scale is back.

use crate::config::ScaleConfig;
use crate::scale::{Reading, parse_line};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the scale last said, shared between the reader and the requests.
pub struct Live {
    config: ScaleConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    reading: Option<(Reading, Instant)>,
    /// Why there is no fresh reading (the port could not be opened, it closed).
    problem: Option<String>,
}

/// `GET /api/scale`: the live weight for the page.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Shown {
    pub device: String,
    /// The latest reading, when it is fresh (within `max_age_ms`).
    pub grams: Option<u64>,
    /// The scale says it is steady: this is what a waybill scan packs with.
    pub stable: bool,
    pub problem: Option<String>,
}

impl Live {
    pub fn new(config: ScaleConfig) -> Arc<Live> {
        Arc::new(Live {
            config,
            state: Mutex::default(),
        })
    }

    /// Whether `bench` weighs with this scale.
    pub fn serves(&self, bench: &str) -> bool {
        self.config.bench.as_deref().is_none_or(|b| b == bench)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self) -> Option<Reading> {
        let max_age = Duration::from_millis(self.config.max_age_ms);
        self.lock()
            .reading
            .filter(|(_, at)| at.elapsed() <= max_age)
            .map(|(r, _)| r)
    }

    /// The weight a waybill scan packs with: a fresh, steady reading.
    pub fn steady_grams(&self) -> Option<u64> {
        self.fresh().filter(|r| r.stable).map(|r| r.grams)
    }

    pub fn shown(&self) -> Shown {
        let fresh = self.fresh();
        let problem = match (&fresh, &self.lock().problem) {
            (Some(_), _) => None,
            (None, Some(p)) => Some(p.clone()),
            (None, None) => Some(format!(
                "no reading from {} in the last {} ms",
                self.config.device, self.config.max_age_ms
            )),
        };
        Shown {
            device: self.config.device.clone(),
            grams: fresh.map(|r| r.grams),
            stable: fresh.is_some_and(|r| r.stable),
            problem,
        }
    }

    fn record(&self, line: &str) {
        if let Some(r) = parse_line(line) {
            let mut st = self.lock();
            st.reading = Some((r, Instant::now()));
            st.problem = None;
        }
    }

    fn trouble(&self, problem: String) {
        let mut st = self.lock();
        if st.problem.as_deref() != Some(problem.as_str()) {
            tracing::warn!(device = %self.config.device, "{problem}");
        }
        st.problem = Some(problem);
    }
}

/// Read the scale until `stop` is set (checked at least once a second).
pub fn start(
    live: Arc<Live>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("bench-scale".into())
        .spawn(move || {
            while !*stop.borrow() {
                let port = serialport::new(&live.config.device, live.config.baud)
                    .timeout(Duration::from_secs(1))
                    .open();
                let port = match port {
                    Ok(p) => p,
                    Err(e) => {
                        live.trouble(format!(
                            "cannot open the scale at {}: {e}",
                            live.config.device
                        ));
                        std::thread::sleep(Duration::from_secs(2));
                        continue;
                    }
                };
                let mut lines = BufReader::new(port);
                let mut line = Vec::new();
                while !*stop.borrow() {
                    line.clear();
                    match lines.read_until(b'\n', &mut line) {
                        Ok(0) => {
                            live.trouble(format!("the scale at {} closed", live.config.device));
                            break;
                        }
                        Ok(_) => live.record(&String::from_utf8_lossy(&line)),
                        // Nothing within the timeout: look at `stop`, read on.
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(e) => {
                            live.trouble(format!(
                                "reading the scale at {}: {e}",
                                live.config.device
                            ));
                            break;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(bench: Option<&str>) -> Arc<Live> {
        Live::new(ScaleConfig {
            device: "/dev/null-scale".into(),
            bench: bench.map(str::to_string),
            ..ScaleConfig::default()
        })
    }

    #[test]
    fn only_a_fresh_steady_reading_packs() {
        let l = live(None);
        assert_eq!(l.steady_grams(), None);
        assert!(l.shown().problem.is_some());
        l.record("US,GS,+0001.20kg\r\n");
        assert_eq!(l.steady_grams(), None, "unstable");
        assert_eq!(l.shown().grams, Some(1200));
        l.record("ST,GS,+0001.25kg\r\n");
        assert_eq!(l.steady_grams(), Some(1250));
        l.record("garbage");
        assert_eq!(l.steady_grams(), Some(1250), "a bad line changes nothing");
        // Stale: the scale stopped sending.
        l.lock().reading.as_mut().unwrap().1 = Instant::now() - Duration::from_secs(5);
        assert_eq!(l.steady_grams(), None);
        assert!(l.shown().problem.unwrap().contains("no reading"));
    }

    #[test]
    fn a_scale_belongs_to_its_bench() {
        assert!(live(None).serves("1号台"));
        assert!(live(Some("1号台")).serves("1号台"));
        assert!(!live(Some("1号台")).serves("2号台"));
    }
}
