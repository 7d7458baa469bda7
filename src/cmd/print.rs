//! `station print`: a wave of waybills and packing slips, to files and to the printers.

use super::Ctx;
use anyhow::Result;
use station::cli::PrintArgs;
use station::store::Store;
use station::wave::{self, PrintOptions};
use std::io::Write;
use std::time::Duration;

pub fn run(ctx: &Ctx, args: PrintArgs) -> Result<()> {
    let p = &ctx.config.print;
    // Flags override the [printers] queues; with --printer and no
    // slip queue anywhere, the slips go to the waybills' printers.
    let mut targets = wave::Targets::from_config(&ctx.config.printers);
    if !args.printer.is_empty() {
        targets.waybill = args.printer;
        if targets.slip.is_empty() {
            targets.slip = targets.waybill.clone();
        }
    }
    if !args.slip_printer.is_empty() {
        targets.slip = args.slip_printer;
    }
    let opts = PrintOptions {
        limit: args.limit,
        courier: args.courier,
        waybill_template: args.template.unwrap_or_else(|| p.waybill_template.clone()),
        slip_template: args
            .slip_template
            .unwrap_or_else(|| p.slip_template.clone()),
        targets: Some(targets),
        format: args.format.unwrap_or(p.format),
        merge: p.merge && !args.no_merge,
        ..PrintOptions::from_config(p, args.out.unwrap_or_else(|| p.out_dir.clone().into()))
    };
    print(ctx, &opts)
}

fn print(ctx: &Ctx, opts: &PrintOptions) -> Result<()> {
    use std::io::IsTerminal;
    let mut store = Store::open_existing(&ctx.db)?;
    // A progress bar on stderr, only for a person at a terminal (never with
    // --json, never into a log file).
    let live = !ctx.json && std::io::stderr().is_terminal();
    let multi = super::bars().clone();
    let bar = if live {
        multi.add(indicatif::ProgressBar::new(0))
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} orders, {per_sec}, eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message("printing");
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    // With printers, a live line per printer under the bar (at a terminal;
    // elsewhere a line on stderr when a printer is paused).
    let lines = std::sync::Arc::new(PrinterLines {
        multi: multi.clone(),
        lines: Default::default(),
    });
    let mut opts = opts.clone();
    // The text summary counts orders; only --json lists each one.
    opts.list_orders = ctx.json;
    if live {
        opts.watch = Some(wave::WatchHandle(lines.clone()));
    }
    let report = wave::print(&mut store, &ctx.config, &opts, &ctx.operator, &progress);
    bar.finish_and_clear();
    lines.clear();
    let report = report?;
    let mut out = std::io::stdout().lock();
    if ctx.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
        return not_printed(&report);
    }
    let Some(id) = report.wave else {
        if report.failed.is_empty() {
            writeln!(
                out,
                "nothing to print: the queue is empty (run `station pull` first)"
            )?;
        } else {
            writeln!(out, "nothing printed; set aside:")?;
            for (id, why) in &report.failed {
                writeln!(out, "  {id}  {why}")?;
            }
        }
        return Ok(());
    };
    let resumed = if report.resumed {
        " (finished an interrupted wave)"
    } else {
        ""
    };
    let merged = if report.parcels < report.printed {
        format!(
            " in {} parcels ({} merged: 合并发货)",
            report.parcels,
            report.printed - report.parcels
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "wave {id}{resumed}: {} orders{merged}, {} pages, {} files, {:.1} KB per page, {} ms",
        report.printed,
        report.pages,
        report.files.len(),
        report.bytes as f64 / 1024.0 / report.pages.max(1) as f64,
        report.elapsed_ms
    )?;
    for f in &report.files {
        writeln!(out, "  {f}")?;
    }
    if let Some(p) = &report.picklist {
        writeln!(out, "  pick list (拣货单, then the 格位 slot table): {p}")?;
    }
    if let Some(p) = &report.picklist_problem {
        writeln!(out, "  {p}")?;
    }
    if !report.failed.is_empty() {
        writeln!(out, "not printed:")?;
        for (id, why) in &report.failed {
            writeln!(out, "  {id}  {why}")?;
        }
    }
    if !report.warnings.is_empty() {
        writeln!(out, "printed, but look at these labels:")?;
        for (_, w) in &report.warnings {
            writeln!(out, "  {w}")?;
        }
    }
    let completed = report.jobs.iter().filter(|j| j.completed()).count();
    if !report.jobs.is_empty() {
        writeln!(
            out,
            "{completed} of {} print jobs completed in CUPS",
            report.jobs.len()
        )?;
    }
    for n in &report.not_printed {
        writeln!(out, "NOT PRINTED: {n}\n  orders: {}", n.orders.join(" "))?;
    }
    not_printed(&report)
}

/// One progress line per printer during `station print` (indicatif).
struct PrinterLines {
    multi: indicatif::MultiProgress,
    /// Per printer: its line and the orders whose jobs completed.
    lines: std::sync::Mutex<std::collections::BTreeMap<String, (indicatif::ProgressBar, usize)>>,
}

impl PrinterLines {
    fn with(&self, printer: &str, f: impl FnOnce(&indicatif::ProgressBar, &mut usize)) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let (bar, done) = lines.entry(printer.to_string()).or_insert_with(|| {
            let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
            bar.set_style(
                indicatif::ProgressStyle::with_template("  {prefix:>20} {spinner} {msg}")
                    .expect("a valid template"),
            );
            bar.set_prefix(printer.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            (bar, 0)
        });
        f(bar, done);
    }

    fn clear(&self) {
        for (bar, _) in self
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            bar.finish_and_clear();
        }
    }
}

impl station::printer::Watch for PrinterLines {
    fn waiting(&self, printer: &str, _job: i32, what: &str) {
        self.with(printer, |bar, _| bar.set_message(what.to_string()));
    }
    fn sent(&self, printer: &str, job: i32, orders: usize) {
        self.with(printer, |bar, done| {
            bar.set_message(format!(
                "job {job} ({orders} orders) printing · {done} documents out"
            ))
        });
    }
    fn ended(&self, printer: &str, job: Option<i32>, orders: usize, completed: bool) {
        self.with(printer, |bar, done| {
            let job = job.map(|j| format!("job {j} ")).unwrap_or_default();
            if completed {
                *done += orders;
                bar.set_message(format!("{job}completed · {done} documents out"));
            } else {
                bar.set_message(format!("{job}DID NOT PRINT · {done} documents out"));
            }
        });
    }
}

/// A wave with jobs that did not come out ends in an error (exit 8) after
/// its report was printed.
fn not_printed(report: &wave::PrintReport) -> Result<()> {
    if report.not_printed.is_empty() {
        return Ok(());
    }
    let mut orders: Vec<&str> = report
        .not_printed
        .iter()
        .flat_map(|n| n.orders.iter().map(String::as_str))
        .collect();
    orders.sort_unstable();
    orders.dedup();
    Err(station::printer::JobFailed(format!(
        "{} print jobs did not complete; {} orders are not printed ({}); wave {} stays open: run `station print` again (with a working printer) to print them with the same tracking numbers",
        report.not_printed.len(),
        orders.len(),
        orders.join(" "),
        report.wave.unwrap_or(0)
    ))
    .into())
}
