//! Printing through CUPS over IPP (the `ipp` crate, `http://localhost:631` by
//! default): list queues, send a PDF as one job, and follow a job until CUPS
//! says how it ended.
//!
//! A job counts as printed only when CUPS reports it `completed`. A job that
//! CUPS cancels or aborts has failed; a job that makes no progress for
//! `printers.job_timeout_secs` while its printer is not paused has stalled,
//! and is cancelled so that it can never come out later (the station prints
//! those orders again, with the same numbers, on the next `print`). A paused
//! printer (`cupsdisable`, a paper change) is waited for, up to
//! `printers.paused_wait_secs`: the job is held, not lost.
//!
//! Why IPP and not `lp`/`lpstat`: the job's state is an IPP enum (pending,
//! held, processing, stopped, canceled, aborted, completed) with reasons;
//! `lpstat`'s text lists aborted and cancelled jobs among the "completed"
//! ones and is translated per locale.
//!
//! The `ipp` crate encodes and parses the requests; they travel over one
//! HTTP client kept on one runtime thread for the whole run ([`IppLine`]).
//! The station calls the printer from plain threads and from
//! `spawn_blocking` inside `serve`, which block on the answer: never a
//! nested `block_on`.

use crate::config::PrintersConfig;
use anyhow::{Context, Result, anyhow, bail};
use ipp::prelude::*;
use serde::Serialize;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub mod raw;

/// A print job that failed or stalled: its documents did not come out
/// (exit code 8, `cli::exit::PRINTER`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobFailed(pub String);

/// How a CUPS job stands (RFC 8011 `job-state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Held,
    Processing,
    Stopped,
    Canceled,
    Aborted,
    Completed,
    /// CUPS no longer knows the job (purged from its history).
    Unknown,
}

impl JobState {
    fn from_ipp(v: i32) -> JobState {
        match v {
            3 => JobState::Pending,
            4 => JobState::Held,
            5 => JobState::Processing,
            6 => JobState::Stopped,
            7 => JobState::Canceled,
            8 => JobState::Aborted,
            9 => JobState::Completed,
            _ => JobState::Unknown,
        }
    }

    /// Canceled, aborted or completed: CUPS will do nothing more with it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Canceled | JobState::Aborted | JobState::Completed | JobState::Unknown
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobState::Pending => "pending",
            JobState::Held => "held",
            JobState::Processing => "processing",
            JobState::Stopped => "stopped",
            JobState::Canceled => "canceled",
            JobState::Aborted => "aborted",
            JobState::Completed => "completed",
            JobState::Unknown => "unknown",
        })
    }
}

/// One job as CUPS reports it.
#[derive(Clone, Debug, Serialize)]
pub struct JobStatus {
    pub id: i32,
    pub state: JobState,
    pub reasons: Vec<String>,
    /// Pages the printer reports done (`job-impressions-completed`), if known.
    pub pages_done: Option<i32>,
}

/// One queue as CUPS reports it (`station printers`).
#[derive(Clone, Debug, Serialize)]
pub struct PrinterInfo {
    pub name: String,
    /// idle, printing or stopped.
    pub state: String,
    pub accepting: bool,
    /// `printer-state-reasons`, without "none" (e.g. "paused").
    pub reasons: Vec<String>,
    pub message: String,
    pub queued_jobs: i32,
    pub device: String,
}

impl PrinterInfo {
    /// Stopped by an operator (`cupsdisable`): jobs wait until it is enabled.
    pub fn paused(&self) -> bool {
        self.state == "stopped"
    }
}

/// How a followed job ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    /// Canceled or aborted by CUPS (or by someone at the printer), or refused.
    Failed {
        reason: String,
    },
    /// No progress within the timeout; the job was cancelled.
    Stalled {
        reason: String,
    },
}

/// What a caller sees while a job is followed (for progress lines).
pub trait Watch {
    /// A job waits (a paused printer); `what` says so for a person.
    fn waiting(&self, _printer: &str, _job: i32, _what: &str) {}
    /// CUPS accepted a job holding `orders` orders' documents.
    fn sent(&self, _printer: &str, _job: i32, _orders: usize) {}
    /// A job ended (completed, failed or stalled).
    fn ended(&self, _printer: &str, _job: Option<i32>, _orders: usize, _completed: bool) {}
}

impl Watch for () {}

/// A connection to the CUPS scheduler. Clones share one [`IppLine`].
#[derive(Clone)]
pub struct Cups {
    base: String,
    user: String,
    request_timeout: Duration,
    line: Arc<OnceLock<Result<IppLine, String>>>,
}

/// One HTTP client on one runtime thread for every IPP request of a `Cups`
/// and its clones (a print run, a `serve`): started at the first request,
/// stopped when the last clone is dropped. Callers block on the answer, so
/// plain threads and `spawn_blocking` can use it (never a nested `block_on`),
/// and requests from several threads run at once on the one client.
struct IppLine {
    calls: tokio::sync::mpsc::UnboundedSender<IppCall>,
}

struct IppCall {
    url: String,
    body: Vec<u8>,
    timeout: Duration,
    reply: std::sync::mpsc::Sender<Result<Vec<u8>, String>>,
}

impl IppLine {
    fn start() -> Result<IppLine, String> {
        let (calls, mut rx) = tokio::sync::mpsc::unbounded_channel::<IppCall>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the IPP runtime: {e}"))?;
        let client = crate::shop::client::http()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("station/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the IPP client: {e}"))?;
        std::thread::Builder::new()
            .name("ipp".into())
            .spawn(move || {
                rt.block_on(async move {
                    while let Some(call) = rx.recv().await {
                        let client = client.clone();
                        tokio::spawn(async move {
                            let answer = async {
                                let resp = client
                                    .post(&call.url)
                                    .header("content-type", "application/ipp")
                                    .timeout(call.timeout)
                                    .body(call.body)
                                    .send()
                                    .await
                                    .map_err(|e| e.without_url().to_string())?;
                                if !resp.status().is_success() {
                                    return Err(format!("HTTP {}", resp.status().as_u16()));
                                }
                                let body = resp
                                    .bytes()
                                    .await
                                    .map_err(|e| e.without_url().to_string())?;
                                Ok(body.to_vec())
                            }
                            .await;
                            let _ = call.reply.send(answer);
                        });
                    }
                })
            })
            .map_err(|e| format!("cannot start the IPP thread: {e}"))?;
        Ok(IppLine { calls })
    }
}

/// The HTTP address of an IPP URI (`ipp://host/…` is `http://host:631/…`).
fn http_url(uri: &Uri) -> String {
    let (scheme, port) = match uri.scheme_str() {
        Some("ipps") => ("https", 443),
        Some("ipp") => ("http", 631),
        _ => return uri.to_string(),
    };
    let Some(authority) = uri.authority() else {
        return uri.to_string();
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or_default();
    match authority.port_u16() {
        Some(_) => format!("{scheme}://{authority}{path}"),
        None => format!("{scheme}://{authority}:{port}{path}"),
    }
}

/// The name of the account this process runs as, from its uid's passwd
/// entry; the uid as a number when it has none.
///
/// CUPS checks a job's owner against `requesting-user-name`, and a CUPS
/// whose authorisation check crashes on a name that is not a user of the
/// machine (Debian's 2.4.2-3+deb12u10 segfaults on Cancel-Job) must never be
/// handed a made-up one: not `$USER` (unset under CI and systemd, and
/// anyone's to set), not a default like "station".
pub fn account_name() -> String {
    // SAFETY: getpwuid_r writes only into the buffers we pass, and the
    // strings it points `pw` at live in `buf`, which outlives their use.
    unsafe {
        let uid = libc::getuid();
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let mut buf = vec![0 as libc::c_char; 4096];
        loop {
            let rc = libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found);
            if rc == libc::ERANGE && buf.len() < 1 << 20 {
                buf.resize(buf.len() * 4, 0);
                continue;
            }
            if rc == 0 && !found.is_null() && !pw.pw_name.is_null() {
                let name = std::ffi::CStr::from_ptr(pw.pw_name).to_string_lossy();
                if !name.is_empty() {
                    return name.into_owned();
                }
            }
            return uid.to_string();
        }
    }
}

impl Cups {
    pub fn new(config: &PrintersConfig) -> Cups {
        Cups {
            base: config.cups_url.trim_end_matches('/').to_string(),
            user: account_name(),
            request_timeout: Duration::from_secs(10),
            line: Arc::new(OnceLock::new()),
        }
    }

    fn uri(&self, path: &str) -> Result<Uri> {
        format!("{}{path}", self.base)
            .parse()
            .with_context(|| format!("printers.cups_url {:?} is not a URL", self.base))
    }

    fn printer_uri(&self, printer: &str) -> Result<Uri> {
        if printer.is_empty() || !printer.chars().all(|c| c.is_ascii_graphic() && c != '/') {
            bail!(crate::error::UsageError(format!(
                "{printer:?} is not a CUPS queue name"
            )));
        }
        self.uri(&format!("/printers/{printer}"))
    }

    /// Send one request on the shared IPP line and wait for the answer.
    fn send(&self, uri: Uri, req: IppRequestResponse) -> Result<IppRequestResponse> {
        let shown = uri.to_string();
        let answer = (|| -> Result<IppRequestResponse> {
            let line = self
                .line
                .get_or_init(IppLine::start)
                .as_ref()
                .map_err(|e| anyhow!("{e}"))?;
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut req.into_read(), &mut body)?;
            let (reply, answer) = std::sync::mpsc::channel();
            line.calls
                .send(IppCall {
                    url: http_url(&uri),
                    body,
                    timeout: self.request_timeout,
                    reply,
                })
                .map_err(|_| anyhow!("the IPP thread stopped"))?;
            let bytes = answer
                .recv()
                .map_err(|_| anyhow!("the IPP thread stopped"))?
                .map_err(|e| anyhow!("{e}"))?;
            Ok(
                ipp::parser::IppParser::new(ipp::reader::IppReader::new(std::io::Cursor::new(
                    bytes,
                )))
                .parse()?,
            )
        })()
        .with_context(|| format!("CUPS at {shown} did not answer (is cupsd running?)"))?;
        let status = answer.header().status_code();
        if !status.is_success() {
            bail!(
                "CUPS at {shown} refused the request: {status:?}{}",
                attr_str(answer.attributes(), "status-message")
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            );
        }
        Ok(answer)
    }

    fn request(&self, op: Operation, printer_uri: Option<Uri>) -> Result<IppRequestResponse> {
        let mut req = IppRequestResponse::new(IppVersion::v1_1(), op, printer_uri)?;
        add(
            &mut req,
            "requesting-user-name",
            IppValue::new_name_without_language(&self.user)?,
        )?;
        Ok(req)
    }

    /// Every queue CUPS has, with its state.
    pub fn printers(&self) -> Result<Vec<PrinterInfo>> {
        let req = self.request(Operation::CupsGetPrinters, None)?;
        let answer = self.send(self.uri("/")?, req)?;
        let mut out: Vec<PrinterInfo> = answer
            .attributes()
            .groups_of(DelimiterTag::PrinterAttributes)
            .map(printer_info)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One queue's state; an error naming the queue when CUPS has no such queue.
    pub fn printer(&self, name: &str) -> Result<PrinterInfo> {
        let uri = self.printer_uri(name)?;
        let req = self.request(Operation::GetPrinterAttributes, Some(uri.clone()))?;
        let answer = self.send(uri, req).with_context(|| {
            format!("printer {name:?}: not a CUPS queue here (see `station printers`)")
        })?;
        answer
            .attributes()
            .groups_of(DelimiterTag::PrinterAttributes)
            .next()
            .map(printer_info)
            .with_context(|| format!("printer {name:?}: CUPS sent no printer attributes"))
    }

    /// Send a PDF as one job; returns CUPS's job id.
    pub fn submit(&self, printer: &str, title: &str, pdf: Vec<u8>) -> Result<i32> {
        let uri = self.printer_uri(printer)?;
        let mut req = self.request(Operation::PrintJob, Some(uri.clone()))?;
        add(
            &mut req,
            "job-name",
            IppValue::new_name_without_language(title)?,
        )?;
        add(
            &mut req,
            "document-format",
            IppValue::new_mime_media_type("application/pdf")?,
        )?;
        *req.payload_mut() = IppPayload::new(std::io::Cursor::new(pdf));
        let answer = self
            .send(uri, req)
            .with_context(|| format!("printer {printer}: job {title:?} was not accepted"))?;
        attr_int(answer.attributes(), "job-id").with_context(|| {
            format!("printer {printer}: CUPS accepted {title:?} but sent no job id")
        })
    }

    /// A job's state now.
    pub fn job(&self, printer: &str, id: i32) -> Result<JobStatus> {
        let uri = self.printer_uri(printer)?;
        let mut req = self.request(Operation::GetJobAttributes, Some(uri.clone()))?;
        add(&mut req, "job-id", IppValue::Integer(id))?;
        match self.send(uri, req) {
            Ok(answer) => Ok(job_status(id, answer.attributes())),
            Err(e) if format!("{e:#}").contains("ClientErrorNotFound") => Ok(JobStatus {
                id,
                state: JobState::Unknown,
                reasons: vec!["CUPS no longer knows this job".into()],
                pages_done: None,
            }),
            Err(e) => Err(e.context(format!("printer {printer}: cannot read job {id}"))),
        }
    }

    /// A job of ours on `printer` with exactly this title, if CUPS has one
    /// (any state): how a print that died between sending a job and
    /// recording its id finds it again.
    pub fn find_job(&self, printer: &str, title: &str) -> Result<Option<i32>> {
        let uri = self.printer_uri(printer)?;
        let mut req = self.request(Operation::GetJobs, Some(uri.clone()))?;
        add(&mut req, "which-jobs", IppValue::new_keyword("all")?)?;
        add(&mut req, "my-jobs", IppValue::Boolean(true))?;
        add(
            &mut req,
            "requested-attributes",
            IppValue::Array(vec![
                IppValue::new_keyword("job-id")?,
                IppValue::new_keyword("job-name")?,
            ]),
        )?;
        let answer = self.send(uri, req)?;
        let mut unnamed = Vec::new();
        let mut found = None;
        for g in answer.attributes().groups_of(DelimiterTag::JobAttributes) {
            let Some(id) = g
                .get("job-id")
                .and_then(|a| a.value().as_integer().copied())
            else {
                continue;
            };
            match g.get("job-name").and_then(|a| value_str(a.value())) {
                Some(name) if name == title => found = found.max(Some(id)),
                Some(_) => {}
                None => unnamed.push(id),
            }
        }
        if found.is_some() {
            return Ok(found);
        }
        // CUPS leaves a finished job's name out of Get-Jobs once it has put
        // the job's attributes away; asking for the job itself loads them.
        // Newest first, and only so many: the job was sent moments before.
        unnamed.sort_unstable_by(|a, b| b.cmp(a));
        for id in unnamed.into_iter().take(200) {
            let uri = self.printer_uri(printer)?;
            let mut req = self.request(Operation::GetJobAttributes, Some(uri.clone()))?;
            add(&mut req, "job-id", IppValue::Integer(id))?;
            add(
                &mut req,
                "requested-attributes",
                IppValue::new_keyword("job-name")?,
            )?;
            let answer = self.send(uri, req)?;
            if attr_str(answer.attributes(), "job-name").as_deref() == Some(title) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// Cancel a job (so a stalled job cannot come out after its orders were
    /// given back to the queue).
    pub fn cancel(&self, printer: &str, id: i32) -> Result<()> {
        let uri = self.printer_uri(printer)?;
        let mut req = self.request(Operation::CancelJob, Some(uri.clone()))?;
        add(&mut req, "job-id", IppValue::Integer(id))?;
        self.send(uri, req)
            .with_context(|| format!("printer {printer}: cannot cancel job {id}"))?;
        Ok(())
    }

    /// Follow a job until it ends: completed, failed (canceled/aborted), or
    /// stalled past the timeout (then cancelled). `tick` runs at every poll
    /// (the wave renews its lease there).
    pub fn follow(
        &self,
        printer: &str,
        id: i32,
        config: &PrintersConfig,
        watch: &dyn Watch,
        tick: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Outcome> {
        let poll = Duration::from_millis(config.poll_ms.max(20));
        let stall = Duration::from_secs(config.job_timeout_secs);
        let paused_limit = Duration::from_secs(config.paused_wait_secs);
        let mut last_change = Instant::now();
        let mut paused_since: Option<Instant> = None;
        let mut last: Option<(JobState, Option<i32>)> = None;
        loop {
            let job = self.job(printer, id)?;
            match job.state {
                JobState::Completed => return Ok(Outcome::Completed),
                JobState::Canceled | JobState::Aborted | JobState::Unknown => {
                    let info = self.printer(printer).ok();
                    let mut why = format!("job {id} {}", job.state);
                    if !job.reasons.is_empty() {
                        why.push_str(&format!(" ({})", job.reasons.join(", ")));
                    }
                    if let Some(m) = info.map(|i| i.message).filter(|m| !m.is_empty()) {
                        why.push_str(&format!(": {m}"));
                    }
                    return Ok(Outcome::Failed { reason: why });
                }
                _ => {}
            }
            let now = (job.state, job.pages_done);
            if last != Some(now) {
                last = Some(now);
                last_change = Instant::now();
            }
            let info = self.printer(printer)?;
            // A long chunk on a printer that reports no page counts is still
            // progress while CUPS says it is printing and the printer reports
            // no problem (`*-error` reasons, media-empty, offline, ...).
            if job.state == JobState::Processing
                && info.state == "printing"
                && !info.reasons.iter().any(|r| printer_trouble(r))
            {
                last_change = Instant::now();
            }
            if info.paused() || job.state == JobState::Held {
                let since = *paused_since.get_or_insert_with(Instant::now);
                watch.waiting(
                    printer,
                    id,
                    &format!(
                        "printer {printer} is paused ({}): job {id} waits; `cupsenable {printer}` resumes it",
                        if info.message.is_empty() { info.reasons.join(", ") } else { info.message.clone() }
                    ),
                );
                if since.elapsed() >= paused_limit {
                    return self.give_up(
                        printer,
                        id,
                        format!(
                            "printer {printer} stayed paused for {}s (printers.paused_wait_secs)",
                            paused_limit.as_secs()
                        ),
                    );
                }
                // Time spent paused is not a stall.
                last_change = Instant::now();
            } else {
                paused_since = None;
                if last_change.elapsed() >= stall {
                    let mut why = format!(
                        "job {id} made no progress for {}s (printers.job_timeout_secs), still {}",
                        stall.as_secs(),
                        job.state
                    );
                    if !info.message.is_empty() {
                        why.push_str(&format!("; printer says: {}", info.message));
                    }
                    return self.give_up(printer, id, why);
                }
            }
            tick()?;
            std::thread::sleep(poll);
        }
    }

    fn give_up(&self, printer: &str, id: i32, why: String) -> Result<Outcome> {
        match self.cancel(printer, id) {
            Ok(()) => Ok(Outcome::Stalled {
                reason: format!("{why}; job cancelled"),
            }),
            // It may have finished in the meantime: ask once more.
            Err(e) => match self.job(printer, id)?.state {
                JobState::Completed => Ok(Outcome::Completed),
                s if s.is_final() => Ok(Outcome::Stalled {
                    reason: format!("{why}; job {s}"),
                }),
                _ => Err(e.context(format!(
                    "{why}, and it could not be cancelled: cancel it by hand (`cancel {printer}-{id}`) before printing again, or the labels may come out twice"
                ))),
            },
        }
    }
}

/// One document to print as one job.
pub struct Doc<'a> {
    /// waybill | slip | reprint-waybill | reprint-slip | manifest
    pub kind: &'a str,
    pub printer: &'a str,
    pub file: &'a std::path::Path,
    /// The orders whose documents the file holds.
    pub orders: &'a [String],
}

/// How one job went, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct JobReport {
    pub kind: String,
    pub printer: String,
    /// CUPS's job id (none when the job never reached CUPS).
    pub cups_job: Option<i32>,
    pub orders: Vec<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Found again after an interrupted print instead of being sent again.
    pub resumed: bool,
}

impl JobReport {
    pub fn completed(&self) -> bool {
        self.outcome == Outcome::Completed
    }
    pub fn reason(&self) -> &str {
        match &self.outcome {
            Outcome::Completed => "completed",
            Outcome::Failed { reason } | Outcome::Stalled { reason } => reason,
        }
    }
}

/// A job that is sent (or was found again) and still to follow.
pub enum Started {
    Waiting {
        row: i64,
        printer: String,
        job: i32,
        kind: String,
        orders: Vec<String>,
        resumed: bool,
    },
    Done(JobReport),
}

/// Jobs recorded in the store and followed in CUPS: the station's side of a
/// print job (what `print`, `reprint` and `handover close` use).
pub struct Printing<'a> {
    pub cups: Cups,
    pub config: &'a PrintersConfig,
    pub operator: &'a str,
    pub watch: &'a dyn Watch,
    /// Printers that failed a job in this run: nothing more is sent to them.
    broken: std::collections::HashMap<String, String>,
}

impl<'a> Printing<'a> {
    pub fn new(config: &'a PrintersConfig, operator: &'a str, watch: &'a dyn Watch) -> Self {
        Printing {
            cups: Cups::new(config),
            config,
            operator,
            watch,
            broken: Default::default(),
        }
    }

    /// Check that each queue exists and accepts jobs, before anything is planned.
    pub fn check(&self, printers: &[&str]) -> Result<()> {
        for p in printers {
            let info = self
                .cups
                .printer(p)
                .map_err(|e| crate::error::UsageError(format!("{e:#}")))?;
            if !info.accepting {
                bail!(crate::error::UsageError(format!(
                    "printer {p} is not accepting jobs ({}): `cupsaccept {p}`, or print to another queue",
                    if info.message.is_empty() {
                        info.reasons.join(", ")
                    } else {
                        info.message
                    }
                )));
            }
        }
        Ok(())
    }

    /// Send one document as a job — or, for a wave chunk, find the job an
    /// interrupted print already sent (recorded in the store) and follow that
    /// one instead of printing the labels twice.
    pub fn start(
        &mut self,
        store: &mut crate::store::Store,
        chunk: Option<(i64, u64)>,
        doc: &Doc<'_>,
    ) -> Result<Started> {
        let report = |outcome, cups_job, resumed| {
            Started::Done(JobReport {
                kind: doc.kind.into(),
                printer: doc.printer.into(),
                cups_job,
                orders: doc.orders.to_vec(),
                outcome,
                resumed,
            })
        };
        if let Some((wave, c)) = chunk
            && let Some(prev) = store
                .chunk_print_jobs(wave, c)?
                .into_iter()
                .find(|j| j.kind == doc.kind)
        {
            let covers = doc.orders.iter().all(|o| prev.orders.contains(o));
            let mut found = prev.cups_job.filter(|_| prev.state == "sent");
            if prev.state == "sending" {
                // Not knowing is not "not sent": an error here stops the
                // print rather than risk the labels coming out twice.
                found = self
                    .cups
                    .find_job(&prev.printer, &prev.title)
                    .with_context(|| {
                        format!(
                            "cannot ask CUPS whether {:?} was sent before the last print stopped",
                            prev.title
                        )
                    })?;
                match found {
                    Some(id) => store.print_job_sent(prev.id, id)?,
                    None => store.print_job_ended(
                        prev.id,
                        false,
                        "never reached CUPS (the print stopped while sending it)",
                        self.operator,
                    )?,
                }
            }
            match (prev.state.as_str(), found) {
                ("completed", _) if covers => {
                    return Ok(report(Outcome::Completed, prev.cups_job, true));
                }
                (_, Some(job)) if covers => {
                    return Ok(Started::Waiting {
                        row: prev.id,
                        printer: prev.printer,
                        job,
                        kind: doc.kind.into(),
                        orders: prev.orders,
                        resumed: true,
                    });
                }
                _ => {}
            }
        }
        if let Some(why) = self.broken.get(doc.printer) {
            return Ok(report(
                Outcome::Failed {
                    reason: format!(
                        "not sent: printer {} failed earlier in this run ({why})",
                        doc.printer
                    ),
                },
                None,
                false,
            ));
        }
        let row = store.begin_print_job(
            &crate::store::NewPrintJob {
                wave_id: chunk.map(|c| c.0),
                chunk: chunk.map(|c| c.1),
                kind: doc.kind,
                printer: doc.printer,
                file: &doc.file.display().to_string(),
                orders: doc.orders,
            },
            self.operator,
        )?;
        let sent = std::fs::read(doc.file)
            .with_context(|| format!("cannot read {}", doc.file.display()))
            .and_then(|pdf| self.cups.submit(doc.printer, &row.title, pdf));
        match sent {
            Ok(job) => {
                store.print_job_sent(row.id, job)?;
                self.watch.sent(doc.printer, job, doc.orders.len());
                Ok(Started::Waiting {
                    row: row.id,
                    printer: doc.printer.into(),
                    job,
                    kind: doc.kind.into(),
                    orders: doc.orders.to_vec(),
                    resumed: false,
                })
            }
            Err(e) => {
                let why = format!("{e:#}");
                store.print_job_ended(row.id, false, &why, self.operator)?;
                self.broken.insert(doc.printer.into(), why.clone());
                Ok(report(Outcome::Failed { reason: why }, None, false))
            }
        }
    }

    /// Follow a started job to its end and record how it ended. `tick` runs
    /// at every poll (a wave renews its lease there).
    pub fn finish(
        &mut self,
        store: &mut crate::store::Store,
        started: Started,
        tick: &mut dyn FnMut(&mut crate::store::Store) -> Result<()>,
    ) -> Result<JobReport> {
        let (row, printer, job, kind, orders, resumed) = match started {
            Started::Done(r) => return Ok(r),
            Started::Waiting {
                row,
                printer,
                job,
                kind,
                orders,
                resumed,
            } => (row, printer, job, kind, orders, resumed),
        };
        // A job queued behind one that failed on the same printer is not
        // waited for: cancelled, unless it already came out.
        let outcome = if let Some(why) = self.broken.get(&printer).cloned() {
            match self.cups.job(&printer, job)?.state {
                JobState::Completed => Outcome::Completed,
                _ => {
                    let cancelled = self.cups.cancel(&printer, job);
                    match self.cups.job(&printer, job)?.state {
                        JobState::Completed => Outcome::Completed,
                        s if cancelled.is_ok() || s.is_final() => Outcome::Failed {
                            reason: format!(
                                "job {job} {s}: printer {printer} failed earlier in this run ({why})"
                            ),
                        },
                        // Still live and the cancel refused: counting its
                        // orders unprinted would print their labels twice once
                        // the printer comes back.
                        s => {
                            let e = cancelled
                                .err()
                                .unwrap_or_else(|| anyhow::anyhow!("job {job} is {s}"));
                            return Err(e.context(format!(
                                "printer {printer} failed earlier in this run ({why}) and job {job} queued behind it could not be cancelled: cancel it by hand (`cancel {printer}-{job}`) before printing again, or the labels may come out twice"
                            )));
                        }
                    }
                }
            }
        } else {
            self.follow_one(&printer, job, &mut || tick(store))?
        };
        let report = JobReport {
            kind,
            printer: printer.clone(),
            cups_job: Some(job),
            orders,
            outcome,
            resumed,
        };
        store.print_job_ended(row, report.completed(), report.reason(), self.operator)?;
        self.watch.ended(
            &report.printer,
            report.cups_job,
            report.orders.len(),
            report.completed(),
        );
        if !report.completed() {
            self.broken.insert(printer, report.reason().to_string());
        }
        Ok(report)
    }

    fn follow_one(
        &self,
        printer: &str,
        job: i32,
        tick: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Outcome> {
        self.cups
            .follow(printer, job, self.config, self.watch, tick)
    }

    /// Send one document and follow it to its end (reprints, manifests).
    pub fn print_one(
        &mut self,
        store: &mut crate::store::Store,
        doc: &Doc<'_>,
    ) -> Result<JobReport> {
        let started = self.start(store, None, doc)?;
        self.finish(store, started, &mut |_| Ok(()))
    }
}

/// Watch that tells a person at the terminal (stderr) when a job waits,
/// once per new message.
#[derive(Default)]
pub struct StderrWatch {
    last: std::sync::Mutex<String>,
}

impl Watch for StderrWatch {
    fn waiting(&self, _printer: &str, _job: i32, what: &str) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if *last != what {
            eprintln!("{what}");
            *last = what.to_string();
        }
    }
}

/// A `printer-state-reasons` keyword that means the printer cannot go on by
/// itself (RFC 8011 severity suffixes; `-report` and `-warning` are fine).
fn printer_trouble(reason: &str) -> bool {
    if reason.ends_with("-report") || reason.ends_with("-warning") {
        return false;
    }
    reason.ends_with("-error")
        || [
            "media-empty",
            "media-jam",
            "media-needed",
            "offline",
            "connecting-to-device",
            "door-open",
            "cover-open",
            "toner-empty",
            "marker-supply-empty",
            "shutdown",
            "timed-out",
        ]
        .contains(&reason)
}

fn add(req: &mut IppRequestResponse, name: &str, value: IppValue) -> Result<()> {
    req.attributes_mut().add(
        DelimiterTag::OperationAttributes,
        IppAttribute::with_name(name, value)?,
    );
    Ok(())
}

fn value_str(v: &IppValue) -> Option<String> {
    match v {
        IppValue::TextWithoutLanguage(_)
        | IppValue::NameWithoutLanguage(_)
        | IppValue::TextWithLanguage { .. }
        | IppValue::NameWithLanguage { .. }
        | IppValue::Keyword(_)
        | IppValue::Uri(_) => Some(v.to_string()),
        _ => None,
    }
}

fn values(v: &IppValue) -> Vec<String> {
    match v {
        IppValue::Array(items) => items.iter().filter_map(value_str).collect(),
        one => value_str(one).into_iter().collect(),
    }
}

fn attr_str(attrs: &IppAttributes, name: &str) -> Option<String> {
    attrs
        .groups()
        .iter()
        .find_map(|g| g.get(name))
        .and_then(|a| value_str(a.value()))
}

fn attr_int(attrs: &IppAttributes, name: &str) -> Option<i32> {
    attrs
        .groups()
        .iter()
        .find_map(|g| g.get(name))
        .and_then(|a| match a.value() {
            IppValue::Integer(i) | IppValue::Enum(i) => Some(*i),
            _ => None,
        })
}

fn job_status(id: i32, attrs: &IppAttributes) -> JobStatus {
    let reasons = attrs
        .groups()
        .iter()
        .find_map(|g| g.get("job-state-reasons"))
        .map(|a| values(a.value()))
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r != "none")
        .collect();
    JobStatus {
        id,
        state: attr_int(attrs, "job-state").map_or(JobState::Unknown, JobState::from_ipp),
        reasons,
        pages_done: attr_int(attrs, "job-impressions-completed"),
    }
}

fn printer_info(g: &IppAttributeGroup) -> PrinterInfo {
    let s = |n: &str| {
        g.get(n)
            .and_then(|a| value_str(a.value()))
            .unwrap_or_default()
    };
    let state = match g.get("printer-state").map(|a| a.value()) {
        Some(IppValue::Enum(3)) => "idle",
        Some(IppValue::Enum(4)) => "printing",
        Some(IppValue::Enum(5)) => "stopped",
        _ => "unknown",
    };
    PrinterInfo {
        name: s("printer-name"),
        state: state.into(),
        accepting: matches!(
            g.get("printer-is-accepting-jobs").map(|a| a.value()),
            Some(IppValue::Boolean(true))
        ),
        reasons: g
            .get("printer-state-reasons")
            .map(|a| values(a.value()))
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r != "none")
            .collect(),
        message: s("printer-state-message"),
        queued_jobs: g
            .get("queued-job-count")
            .and_then(|a| a.value().as_integer().copied())
            .unwrap_or(0),
        device: s("device-uri"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_states_map_from_ipp_enums() {
        assert_eq!(JobState::from_ipp(9), JobState::Completed);
        assert_eq!(JobState::from_ipp(8), JobState::Aborted);
        assert_eq!(JobState::from_ipp(7), JobState::Canceled);
        assert_eq!(JobState::from_ipp(6), JobState::Stopped);
        assert_eq!(JobState::from_ipp(4), JobState::Held);
        assert_eq!(JobState::from_ipp(42), JobState::Unknown);
        assert!(JobState::Aborted.is_final());
        assert!(!JobState::Held.is_final());
    }

    #[test]
    fn trouble_reasons_stop_the_clock_warnings_do_not() {
        assert!(printer_trouble("media-empty"));
        assert!(printer_trouble("media-jam-error"));
        assert!(printer_trouble("offline"));
        assert!(!printer_trouble("media-low-warning"));
        assert!(!printer_trouble("media-empty-report"));
        assert!(!printer_trouble("paused"));
    }

    #[test]
    fn a_queue_name_with_a_slash_is_refused() {
        let c = Cups::new(&PrintersConfig::default());
        assert!(c.printer_uri("a/b").is_err());
        assert!(c.printer_uri("").is_err());
        assert_eq!(
            c.printer_uri("station-waybill").unwrap().to_string(),
            "http://localhost:631/printers/station-waybill"
        );
    }
}
