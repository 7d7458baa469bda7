//! The commands: one file each. A command turns its settings into calls on the
//! library (`station::…`) and renders the result as text for people or as
//! `--json` for scripts. Data goes to stdout; progress and warnings to stderr.
//!
//! This is the top of the house: it calls down into the library and nothing
//! in the library calls up into it (the library cannot even name it: `cmd`
//! belongs to the binary).

pub mod backup;
pub mod completions;
pub mod couriers;
pub mod demo;
pub mod doctor;
pub mod export;
pub mod generate;
pub mod handover;
pub mod migrate_db;
pub mod operator;
pub mod perf;
pub mod picklist;
pub mod print;
pub mod printers;
pub mod pull;
pub mod purge;
pub mod report;
pub mod reprint;
pub mod returns;
pub mod scan;
pub mod serve;
pub mod shop_sim;
pub mod short;
pub mod show;
pub mod status;
pub mod sync;
pub mod void;
pub mod waybill_sim;

use anyhow::Result;
use station::config::Config;
use std::path::PathBuf;

/// What every command is given: the loaded settings and who acts.
pub struct Ctx {
    pub config: Config,
    /// Where the configuration came from (`None`: built-in defaults).
    pub config_file: Option<PathBuf>,
    /// What loading the configuration warned about (shown once, at start).
    pub config_warnings: Vec<String>,
    /// Who is acting, recorded with every change.
    pub operator: String,
    /// `--json`: machine-readable output on stdout.
    pub json: bool,
    /// `--db`: the database.
    pub db: station::store::Db,
}

/// The progress bars of this process (`station print`'s wave and printer
/// lines). Log lines are written through it (`LogWriter`), so a log line
/// never tears a bar: the bars step aside, the line is written, they redraw.
pub fn bars() -> &'static indicatif::MultiProgress {
    static BARS: std::sync::OnceLock<indicatif::MultiProgress> = std::sync::OnceLock::new();
    BARS.get_or_init(indicatif::MultiProgress::new)
}

/// Where log lines go: stderr, around the progress bars.
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        bars().suspend(|| std::io::stderr().lock().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}

/// The runtime for a command that talks to the network.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
