//! Printing through a real CUPS with the cups-pdf virtual printer
//! (`tests/cups/setup.sh` installs and starts it): what the station sends
//! comes out the other end as PDFs, read back with zbarimg and pdfinfo; a job
//! that fails or waits too long is reported with its orders, which stay
//! unprinted until a later print prints them once.
//!
//! Each test makes its own queues (so pausing one printer never touches
//! another test) and removes them afterwards. Without a reachable CUPS (or
//! not as root, who may add queues) each test says why and returns, unless
//! `STATION_REQUIRE_CUPS` is set (CI), where that fails the test.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the tests need from the machine, or why they cannot run.
struct Cups {
    /// Where cups-pdf writes its PDFs (`Out` in /etc/cups/cups-pdf.conf).
    out: PathBuf,
    ppd: PathBuf,
}

fn cups() -> Result<Cups, String> {
    let sched = Command::new("lpstat")
        .arg("-r")
        .output()
        .map_err(|e| format!("lpstat: {e} (install cups-client)"))?;
    if !String::from_utf8_lossy(&sched.stdout).contains("is running") {
        return Err("the CUPS scheduler is not running (bash tests/cups/setup.sh)".into());
    }
    if !Path::new("/usr/lib/cups/backend/cups-pdf").exists() {
        return Err("no cups-pdf backend (apt-get install printer-driver-cups-pdf)".into());
    }
    let conf = std::fs::read_to_string("/etc/cups/cups-pdf.conf")
        .map_err(|e| format!("/etc/cups/cups-pdf.conf: {e}"))?;
    let out = conf
        .lines()
        .find_map(|l| l.strip_prefix("Out "))
        .map(|s| PathBuf::from(s.trim()))
        .filter(|p| !p.to_string_lossy().contains('$'))
        .ok_or("cups-pdf writes to a per-user directory: run tests/cups/setup.sh")?;
    let ppd = PathBuf::from("/usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd");
    if !ppd.exists() {
        return Err(format!("{} is missing", ppd.display()));
    }
    let have = |t: &str| Command::new(t).arg("-v").output().is_ok();
    if !(have("pdfinfo") && have("zbarimg") && have("pdftoppm")) {
        return Err("install poppler-utils zbar-tools".into());
    }
    Ok(Cups { out, ppd })
}

/// Skip with the reason — unless `STATION_REQUIRE_CUPS` is set (CI, after
/// tests/cups/setup.sh), where a missing CUPS is a failure, not a silent pass.
fn skip(why: &str) {
    assert!(
        std::env::var_os("STATION_REQUIRE_CUPS").is_none(),
        "CUPS not available: {why} (STATION_REQUIRE_CUPS is set)"
    );
    eprintln!("CUPS not available: {why} — skipped");
}

macro_rules! cups_or_skip {
    () => {
        match cups() {
            Ok(c) => c,
            Err(why) => {
                skip(&why);
                return;
            }
        }
    };
}

/// A queue of this test's own, deleted on drop.
struct Queue(String);

impl Queue {
    fn new(cups: &Cups, tag: &str, device: &str) -> Result<Queue, String> {
        let name = format!("station-t{}-{tag}", std::process::id());
        let out = Command::new("lpadmin")
            .args(["-p", &name, "-v", device, "-P"])
            .arg(&cups.ppd)
            .args(["-E", "-o", "printer-error-policy=abort-job"])
            .output()
            .map_err(|e| format!("lpadmin: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "lpadmin cannot add a queue: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Queue(name))
    }

    fn disable(&self) {
        assert!(
            Command::new("cupsdisable")
                .arg(&self.0)
                .status()
                .unwrap()
                .success()
        );
    }

    fn enable(&self) {
        assert!(
            Command::new("cupsenable")
                .arg(&self.0)
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let _ = Command::new("cancel").args(["-a", &self.0]).output();
        let _ = Command::new("lpadmin").args(["-x", &self.0]).output();
    }
}

macro_rules! queue_or_skip {
    ($cups:expr, $tag:expr, $device:expr) => {
        match Queue::new(&$cups, $tag, $device) {
            Ok(q) => q,
            Err(why) => {
                skip(&why);
                return;
            }
        }
    };
}

/// A station with `n` generated orders imported and a config.
fn station_with_orders(n: usize, seed: u64, config: &str) -> Station {
    let st = Station::new();
    let orders = st.dir.path().join("orders.jsonl");
    ok(&st
        .cmd()
        .args([
            "generate",
            &n.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(&orders)
        .output()
        .unwrap());
    st.write("station.toml", config);
    ok(&st.cmd().arg("import").arg(&orders).output().unwrap());
    st
}

fn config(extra: &str) -> String {
    // Parcels go to the courier without a bench check here: printing is the subject.
    format!(
        "[handover]\nrequire_packed = false\n\n[print]\nchunk_size = 3\n\n[printers]\npoll_ms = 100\n{extra}\n"
    )
}

/// The PDF cups-pdf wrote for a CUPS job: `job_N-title.pdf`, or
/// `title-job_N.pdf` (cups-pdf labels a job of a user it does not know at the end).
fn output_of(cups: &Cups, job: i64) -> Option<PathBuf> {
    let (prefix, suffix) = (format!("job_{job}-"), format!("-job_{job}.pdf"));
    std::fs::read_dir(&cups.out)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&prefix) || n.ends_with(&suffix)
            })
        })
}

fn pages(pdf: &Path) -> usize {
    let out = Command::new("pdfinfo").arg(pdf).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("pdfinfo cannot read {}", pdf.display()))
}

/// Every barcode on every page of a PDF, as "TYPE:data".
fn barcodes(pdf: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("pdftoppm")
        .args(["-r", "200", "-png"])
        .arg(pdf)
        .arg(dir.path().join("p"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "pdftoppm {}", pdf.display());
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    pngs.sort();
    let out = Command::new("zbarimg")
        .arg("-q")
        .args(&pngs)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Read a running station's stderr on a thread; returns once a line holds
/// `needle` (panics after 30 s), and the thread hands back all of stderr.
fn wait_on_stderr(
    child: &mut std::process::Child,
    needle: &str,
) -> std::thread::JoinHandle<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the station never said {needle:?}"));
        if line.contains(needle) {
            return reader;
        }
    }
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Wait for a job to show up in the cups-pdf directory (cups-pdf writes it
/// before the job completes, but allow the file system a moment).
fn wait_output(cups: &Cups, job: i64) -> PathBuf {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(p) = output_of(cups, job) {
            return p;
        }
        assert!(
            Instant::now() < until,
            "cups-pdf wrote nothing for job {job}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The QR codes on every page cups-pdf wrote for the waybill jobs of a
/// print report's `jobs`.
fn waybill_qr_codes(cups: &Cups, jobs: &[Value]) -> Vec<String> {
    let mut codes = Vec::new();
    for j in jobs.iter().filter(|j| j["kind"] == "waybill") {
        codes.extend(
            barcodes(&wait_output(cups, j["cups_job"].as_i64().unwrap()))
                .into_iter()
                .filter(|c| c.starts_with("QR-Code:")),
        );
    }
    codes
}

#[test]
fn a_wave_prints_waybills_and_slips_on_two_queues_and_the_pdfs_that_come_out_scan() {
    let cups = cups_or_skip!();
    let w = queue_or_skip!(cups, "waybill", "cups-pdf:/");
    let s = queue_or_skip!(cups, "slip", "cups-pdf:/");
    let st = station_with_orders(
        5,
        21,
        &config(&format!("waybill = \"{}\"\nslip = \"{}\"", w.0, s.0)),
    );

    let listed = ok(&st.cmd().arg("printers").output().unwrap());
    let line = |q: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(q))
            .unwrap_or_else(|| panic!("{q} not in `station printers`:\n{listed}"))
            .to_string()
    };
    assert!(
        line(&w.0).contains("idle") && line(&w.0).contains("[waybill]"),
        "{listed}"
    );
    assert!(
        line(&s.0).contains("accepting") && line(&s.0).contains("[slip]"),
        "{listed}"
    );

    let out = st.cmd().args(["--json", "print"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    let printed = report["orders"].as_array().unwrap();
    assert_eq!(printed.len(), 5);
    let jobs = report["jobs"].as_array().unwrap();
    // 5 orders in chunks of 3: two chunks, a waybill job and a slip job each.
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    let mut seen_numbers = BTreeSet::new();
    let mut seen_orders = BTreeSet::new();
    for job in jobs {
        assert_eq!(job["outcome"], "completed", "{job}");
        let id = job["cups_job"].as_i64().unwrap();
        let pdf = wait_output(&cups, id);
        let held: Vec<&str> = job["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        let codes = barcodes(&pdf);
        match (
            job["kind"].as_str().unwrap(),
            job["printer"].as_str().unwrap(),
        ) {
            ("waybill", q) if q == w.0 => {
                // One 100×150 label per order, each with its number as QR and Code128.
                assert_eq!(pages(&pdf), held.len(), "{}", pdf.display());
                for id in &held {
                    let number =
                        printed.iter().find(|o| o["order_id"] == *id).unwrap()["tracking_no"]
                            .as_str()
                            .unwrap();
                    assert!(codes.contains(&format!("QR-Code:{number}")), "{codes:?}");
                    assert!(codes.contains(&format!("CODE-128:{number}")), "{codes:?}");
                    seen_numbers.insert(number.to_string());
                }
            }
            ("slip", q) if q == s.0 => {
                assert!(pages(&pdf) >= held.len(), "{}", pdf.display());
                for id in &held {
                    assert!(codes.contains(&format!("QR-Code:{id}")), "{codes:?}");
                    seen_orders.insert(id.to_string());
                }
            }
            other => panic!("job on the wrong queue: {other:?}"),
        }
    }
    assert_eq!(seen_numbers.len(), 5);
    assert_eq!(seen_orders.len(), 5);
    assert_eq!(st.status()["counts"]["printed"], 5);
}

#[test]
fn a_failing_printer_leaves_its_orders_unprinted_and_a_later_print_prints_them_once() {
    let cups = cups_or_skip!();
    if !Path::new("/usr/lib/cups/backend/station-fail").exists() {
        skip("no station-fail test backend (bash tests/cups/setup.sh)");
        return;
    }
    let broken = queue_or_skip!(cups, "broken", "station-fail:/");
    let good = queue_or_skip!(cups, "good", "cups-pdf:/");
    let st = station_with_orders(5, 22, &config(&format!("slip = \"{}\"", good.0)));

    let out = st
        .cmd()
        .args(["--json", "print", "--printer", &broken.0])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["orders"].as_array().unwrap().len(), 0, "{report}");
    let failed = report["not_printed"].as_array().unwrap();
    let held: HashSet<&str> = failed
        .iter()
        .flat_map(|n| n["orders"].as_array().unwrap())
        .map(|o| o.as_str().unwrap())
        .collect();
    assert_eq!(held.len(), 5, "every order is named: {failed:?}");
    assert!(
        failed
            .iter()
            .all(|n| n["kind"] == "waybill" && n["printer"] == broken.0.as_str())
    );
    // The first chunk's job reached CUPS and was aborted there; the second was
    // not sent to a printer that had just failed.
    assert!(
        failed[0]["reason"].as_str().unwrap().contains("aborted"),
        "{failed:?}"
    );
    assert!(failed[0]["cups_job"].is_i64());
    assert!(String::from_utf8_lossy(&out.stderr).contains("5 orders are not printed"));
    let status = st.status();
    assert_eq!(status["counts"]["printed"], 0);
    assert_eq!(status["counts"]["queued"], 5);
    // Each order's number, planned for the wave (committed before anything printed).
    let numbers_of = |id: &str| -> Vec<String> {
        let v = json(&st.cmd().args(["--json", "show", id]).output().unwrap());
        v[0]["tracking_numbers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["number"].as_str().unwrap().to_string())
            .collect()
    };
    let before: Vec<(String, Vec<String>)> = held
        .iter()
        .map(|id| (id.to_string(), numbers_of(id)))
        .collect();
    assert!(before.iter().all(|(_, n)| n.len() == 1), "{before:?}");

    // The slips came out on the good queue: the next print does not send them again.
    let slip_jobs: Vec<i64> = report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "slip")
        .map(|j| {
            assert_eq!(j["outcome"], "completed");
            j["cups_job"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(slip_jobs.len(), 2);

    let out = st
        .cmd()
        .args(["--json", "print", "--printer", &good.0])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = json(&out);
    assert_eq!(again["resumed"], true);
    assert_eq!(again["orders"].as_array().unwrap().len(), 5);
    let jobs = again["jobs"].as_array().unwrap();
    let sent: Vec<&Value> = jobs.iter().filter(|j| j["resumed"] == false).collect();
    assert_eq!(
        sent.len(),
        2,
        "only the two waybill jobs are sent again: {jobs:?}"
    );
    assert!(
        sent.iter()
            .all(|j| j["kind"] == "waybill" && j["outcome"] == "completed")
    );
    let resumed: Vec<i64> = jobs
        .iter()
        .filter(|j| j["resumed"] == true)
        .map(|j| j["cups_job"].as_i64().unwrap())
        .collect();
    assert_eq!(resumed.len(), 2);
    assert_eq!(
        resumed.iter().collect::<HashSet<_>>(),
        slip_jobs.iter().collect::<HashSet<_>>()
    );
    // Same numbers as planned the first time: nothing re-allocated or voided.
    for (id, numbers) in &before {
        assert_eq!(&numbers_of(id), numbers, "order {id}");
        let printed = again["orders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["order_id"] == id.as_str())
            .unwrap();
        assert_eq!(printed["tracking_no"], numbers[0].as_str());
    }
    let mut numbers = Vec::new();
    for j in &sent {
        numbers.extend(barcodes(&wait_output(
            &cups,
            j["cups_job"].as_i64().unwrap(),
        )));
    }
    let qr: Vec<&String> = numbers
        .iter()
        .filter(|c| c.starts_with("QR-Code:"))
        .collect();
    assert_eq!(qr.len(), 5, "each label once: {numbers:?}");
    assert_eq!(st.status()["counts"]["printed"], 5);
}

#[test]
fn a_paused_printer_is_waited_for_and_a_job_held_too_long_is_cancelled_not_printed_later() {
    let cups = cups_or_skip!();
    let q = queue_or_skip!(cups, "paused", "cups-pdf:/");
    let st = station_with_orders(
        4,
        23,
        &config(&format!(
            "waybill = \"{0}\"\nslip = \"{0}\"\npaused_wait_secs = 1",
            q.0
        )),
    );

    // Paused longer than printers.paused_wait_secs: the job is cancelled, its
    // orders are not printed, and it never comes out afterwards.
    q.disable();
    let out = st.cmd().args(["--json", "print"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    let failed = report["not_printed"].as_array().unwrap();
    assert!(
        failed[0]["reason"].as_str().unwrap().contains("paused"),
        "{failed:?}"
    );
    let cancelled = failed[0]["cups_job"].as_i64().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("is paused"));
    assert_eq!(st.status()["counts"]["printed"], 0);
    q.enable();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        output_of(&cups, cancelled).is_none(),
        "a cancelled job came out"
    );

    // Paused during the print, resumed (a paper change): the print waits and
    // every label comes out once.
    st.write(
        "station.toml",
        &config(&format!(
            "waybill = \"{0}\"\nslip = \"{0}\"\npaused_wait_secs = 60",
            q.0
        )),
    );
    q.disable();
    let mut child = st
        .cmd()
        .args(["--json", "print"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Resume once the station says it waits for the paused printer.
    let reader = wait_on_stderr(&mut child, &format!("printer {} is paused", q.0));
    std::thread::sleep(Duration::from_millis(300));
    q.enable();
    let out = child.wait_with_output().unwrap();
    let err = reader.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{err}");
    let report = json(&out);
    assert_eq!(report["orders"].as_array().unwrap().len(), 4);
    let jobs = report["jobs"].as_array().unwrap();
    assert!(jobs.iter().all(|j| j["outcome"] == "completed"), "{jobs:?}");
    let numbers = waybill_qr_codes(&cups, jobs);
    let unique: HashSet<&String> = numbers.iter().collect();
    assert_eq!((numbers.len(), unique.len()), (4, 4), "{numbers:?}");
    assert_eq!(st.status()["counts"]["printed"], 4);
}

#[test]
fn a_print_killed_while_its_job_waits_is_resumed_by_asking_cups_not_by_printing_again() {
    let cups = cups_or_skip!();
    let q = queue_or_skip!(cups, "crash", "cups-pdf:/");
    let st = station_with_orders(
        5,
        24,
        &config(&format!("waybill = \"{0}\"\nslip = \"{0}\"", q.0)),
    );
    q.disable();
    let mut child = st
        .cmd()
        .args(["--json", "print"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Both chunks' jobs wait in the paused queue (the second chunk is queued
    // while the first is waited for): kill the print.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let jobs = Command::new("lpstat").args(["-o", &q.0]).output().unwrap();
        if String::from_utf8_lossy(&jobs.stdout).lines().count() >= 4 {
            break;
        }
        assert!(Instant::now() < until, "the jobs never reached the queue");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let waiting = Command::new("lpstat").args(["-o", &q.0]).output().unwrap();
    let waiting = String::from_utf8_lossy(&waiting.stdout).lines().count();
    assert_eq!(waiting, 4);
    assert_eq!(st.status()["counts"]["printed"], 0);
    // Make one job look as if the print died between CUPS accepting it and
    // recording its id: the next print must find it by its title.
    {
        let db = st.store().into_connection();
        let n = db
            .execute(
                "UPDATE print_jobs SET state = 'sending', cups_job = NULL
                 WHERE id = (SELECT min(id) FROM print_jobs)",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    q.enable();

    let out = st.cmd().args(["--json", "print"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["resumed"], true);
    assert_eq!(report["orders"].as_array().unwrap().len(), 5);
    let jobs = report["jobs"].as_array().unwrap();
    // The jobs sent before the kill were found again, not sent twice.
    let resumed = jobs.iter().filter(|j| j["resumed"] == true).count();
    assert_eq!(
        (jobs.len(), resumed),
        (4, waiting),
        "{jobs:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let numbers = waybill_qr_codes(&cups, jobs);
    let unique: HashSet<&String> = numbers.iter().collect();
    assert_eq!((numbers.len(), unique.len()), (5, 5), "{numbers:?}");
    assert_eq!(st.status()["counts"]["printed"], 5);
    // CUPS saw four jobs on this queue in all, not six.
    let done = Command::new("lpstat")
        .args(["-W", "completed", "-o", &q.0])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&done.stdout).lines().count(), 4);
}

#[test]
fn a_big_wave_spread_over_two_printers_waits_for_one_paused_for_a_paper_change() {
    let cups = cups_or_skip!();
    let a = queue_or_skip!(cups, "rr-a", "cups-pdf:/");
    let b = queue_or_skip!(cups, "rr-b", "cups-pdf:/");
    let st = station_with_orders(7, 25, &config(""));
    // Printer B is out of paper when the wave starts.
    b.disable();
    let mut child = st
        .cmd()
        .args(["--json", "print", "--printer", &a.0, "--printer", &b.0])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Resume B once the station says it waits for it (a paper change).
    let reader = wait_on_stderr(&mut child, &format!("printer {} is paused", b.0));
    std::thread::sleep(Duration::from_millis(300));
    b.enable();
    let out = child.wait_with_output().unwrap();
    let err = reader.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{err}");
    let report = json(&out);
    assert_eq!(report["orders"].as_array().unwrap().len(), 7);
    let jobs = report["jobs"].as_array().unwrap();
    // 7 orders in chunks of 3: chunks 1 and 3 on A, chunk 2 on B, slips with them.
    let on = |q: &str, kind: &str| {
        jobs.iter()
            .filter(|j| j["printer"] == q && j["kind"] == kind)
            .count()
    };
    assert_eq!(
        (on(&a.0, "waybill"), on(&b.0, "waybill")),
        (2, 1),
        "{jobs:?}"
    );
    assert_eq!((on(&a.0, "slip"), on(&b.0, "slip")), (2, 1), "{jobs:?}");
    for j in jobs.iter().filter(|j| j["kind"] == "waybill") {
        assert_eq!(j["outcome"], "completed");
    }
    let numbers = waybill_qr_codes(&cups, jobs);
    let unique: HashSet<&String> = numbers.iter().collect();
    assert_eq!((numbers.len(), unique.len()), (7, 7), "{numbers:?}");
    assert_eq!(st.status()["counts"]["printed"], 7);
}

#[test]
fn reprint_and_the_handover_manifest_go_to_their_printers() {
    let cups = cups_or_skip!();
    let bench = queue_or_skip!(cups, "bench", "cups-pdf:/");
    let manifest = queue_or_skip!(cups, "manifest", "cups-pdf:/");
    let st = station_with_orders(4, 26, &config(&format!("bench = \"{}\"", bench.0)));
    // The wave itself goes to files only (no waybill or slip queue).
    let report = json(&st.cmd().args(["--json", "print"]).output().unwrap());
    assert_eq!(report["jobs"].as_array().unwrap().len(), 0);
    let first = &report["orders"][0];
    let (id, number) = (
        first["order_id"].as_str().unwrap(),
        first["tracking_no"].as_str().unwrap(),
    );

    // `station reprint` prints to the bench's queue: the same number comes out.
    let out = st.cmd().args(["--json", "reprint", id]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["tracking_no"], number);
    let done = Command::new("lpstat")
        .args(["-W", "completed", "-o", &bench.0])
        .output()
        .unwrap();
    let jobs: Vec<i64> = String::from_utf8_lossy(&done.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .next()?
                .rsplit('-')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(jobs.len(), 2, "a waybill and a slip: {jobs:?}");
    let codes: Vec<String> = jobs
        .iter()
        .flat_map(|j| barcodes(&wait_output(&cups, *j)))
        .collect();
    assert!(codes.contains(&format!("QR-Code:{number}")), "{codes:?}");
    assert!(codes.contains(&format!("QR-Code:{id}")), "{codes:?}");

    // A reprint whose job fails says so (exit 8) and names the order.
    if !Path::new("/usr/lib/cups/backend/station-fail").exists() {
        skip("no station-fail test backend (bash tests/cups/setup.sh)");
        return;
    }
    let broken = queue_or_skip!(cups, "bench-broken", "station-fail:/");
    let out = st
        .cmd()
        .args(["reprint", id, "--printer", &broken.0])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    assert!(
        err.contains(&format!("order {id}: the reprint did not come out")),
        "{err}"
    );
    assert!(err.contains("aborted"), "{err}");

    // The handover manifest to a queue that fails: the batch is closed (the
    // parcels left with the courier), the failed manifest is an error naming
    // the batch (exit 8), and closing it again prints it on a good queue.
    let courier = first["courier"].as_str().unwrap();
    ok(&st
        .cmd()
        .args(["handover", "open", "--courier", courier])
        .output()
        .unwrap());
    ok(&st
        .cmd()
        .args(["handover", "scan", number])
        .output()
        .unwrap());
    let out = st
        .cmd()
        .args(["handover", "close", "--printer", &broken.0])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    let batch = err
        .lines()
        .find_map(|l| l.strip_prefix("closed "))
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no closed batch in: {err}"))
        .to_string();
    assert!(
        err.contains(&format!(
            "batch {batch}: the manifest did not print on {}",
            broken.0
        )),
        "{err}"
    );
    let out = st
        .cmd()
        .args([
            "handover",
            "close",
            "--batch",
            &batch,
            "--printer",
            &manifest.0,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("already closed {batch}")), "{err}");
    let job: i64 = err
        .split(&format!("manifest printed on {} (CUPS job ", manifest.0))
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no manifest job in: {err}"));
    let pdf = wait_output(&cups, job);
    assert!(pages(&pdf) >= 1);
    assert!(
        barcodes(&pdf)
            .iter()
            .any(|c| c.starts_with("QR-Code:") && c.contains(courier)),
        "the manifest's batch QR"
    );
}

/// `station demo` with a waybill and a slip queue configured prints its wave
/// there too: the demo says how each job ended, and the PDFs that come out of
/// cups-pdf hold every page of the wave.
#[test]
fn the_demo_prints_its_wave_to_the_configured_printers() {
    let cups = cups_or_skip!();
    let labels = queue_or_skip!(cups, "demo-w", "cups-pdf:/");
    let slips = queue_or_skip!(cups, "demo-s", "cups-pdf:/");
    let st = Station::new();
    st.write(
        "station.toml",
        &format!(
            "[printers]\npoll_ms = 100\nwaybill = \"{}\"\nslip = \"{}\"\n",
            labels.0, slips.0
        ),
    );
    let out = ok(&st
        .cmd()
        .args(["demo", "--orders", "12", "--dir", "demo"])
        .output()
        .unwrap());
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("to printer ")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    let mut printed_pages = 0;
    for (line, queue) in lines.iter().zip([&labels.0, &slips.0]) {
        assert!(
            line.contains(queue.as_str()) && line.ends_with("completed"),
            "{line}"
        );
        let job: i64 = line
            .split("(job ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no job id in {line:?}"));
        printed_pages += pages(&wait_output(&cups, job));
    }
    let wave = out
        .lines()
        .find(|l| l.starts_with("print: wave"))
        .unwrap_or_else(|| panic!("{out}"));
    let pages_in_wave: usize = wave
        .split(" pages")
        .next()
        .and_then(|h| h.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{wave}"));
    assert_eq!(printed_pages, pages_in_wave, "{wave}");
}
