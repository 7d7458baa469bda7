//! Running the commands: turns validated settings into calls on the library and
//! renders the results for people (text) or scripts (`--json`). Data goes to
//! stdout; progress and warnings go to stderr.

use crate::cli::{Cli, Command, GenerateArgs, ShopSimArgs, exit};
use crate::config::{Config, ConfigError, Overrides};
use crate::pull::{self, PullError, PullReport};
use crate::shop::client::{RetryPolicy, ShopClient, ShopError};
use crate::shop::generate::{self, GenerateOptions};
use crate::shop::sim::{self, Faults, SimConfig, Simulator};
use crate::store::{StatusReport, Store, StoreError};
use crate::wave::{self, PrintOptions};
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// The exit code for an error, by what went wrong (see `cli::exit`).
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<Refused>() {
            return exit::REFUSED;
        }
        if cause.is::<crate::printer::JobFailed>() {
            return exit::PRINTER;
        }
        if cause.is::<ConfigError>()
            || cause.is::<UsageError>()
            || cause.is::<crate::render::layout::TemplateError>()
            || matches!(
                cause.downcast_ref::<StoreError>(),
                Some(
                    StoreError::PoolExhausted { .. }
                        | StoreError::AlreadyVoided(_)
                        | StoreError::UnknownTracking(_)
                )
            )
        {
            return exit::USAGE;
        }
        if let Some(e) = cause.downcast_ref::<PullError>() {
            return match e {
                PullError::Shop { source, .. } => shop_code(source),
                PullError::Store(_) => exit::DATABASE,
                PullError::Input { .. } => exit::INPUT,
            };
        }
        if let Some(e) = cause.downcast_ref::<ShopError>() {
            return shop_code(e);
        }
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            return match e {
                StoreError::WaveOpen(_) | StoreError::WaveBusy { .. } => exit::FAILURE,
                _ => exit::DATABASE,
            };
        }
    }
    exit::FAILURE
}

fn shop_code(e: &ShopError) -> i32 {
    match e {
        ShopError::GaveUp { .. } => exit::SHOP_UNREACHABLE,
        ShopError::BadUrl { .. } => exit::USAGE,
        _ => exit::SHOP_REFUSED,
    }
}

/// A mistake in how the station was invoked, beyond what clap checks.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

struct Ctx {
    config: Config,
    operator: String,
    json: bool,
}

pub fn run(cli: Cli) -> Result<()> {
    let shop_url = match &cli.command {
        Command::Pull { shop_url } | Command::Sync { shop_url } => shop_url.clone(),
        _ => None,
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let loaded = Config::load(cli.config.as_deref(), &env, &Overrides { shop_url })?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(file) = &loaded.file {
        tracing::info!("config from {}", file.display());
    }
    let operator = cli
        .operator
        .clone()
        .or_else(|| env("USER"))
        .unwrap_or_else(|| "station".into());
    let (config_file, config_warnings) = (loaded.file.clone(), loaded.warnings.clone());
    let ctx = Ctx {
        config: loaded.config,
        operator,
        json: cli.json,
    };

    match cli.command {
        Command::Pull { .. } => runtime()?.block_on(cmd_pull(&ctx, &cli.db)),
        Command::Import { file } => cmd_import(&ctx, &cli.db, &file),
        Command::Status => cmd_status(&ctx, &cli.db),
        Command::Sync { .. } => runtime()?.block_on(cmd_sync(&ctx, &cli.db)),
        Command::Print {
            limit,
            courier,
            template,
            slip_template,
            out,
            printer,
            slip_printer,
        } => {
            let p = &ctx.config.print;
            // Flags override the [printers] queues; with --printer and no
            // slip queue anywhere, the slips go to the waybills' printers.
            let mut targets = wave::Targets::from_config(&ctx.config.printers);
            if !printer.is_empty() {
                targets.waybill = printer;
                if targets.slip.is_empty() {
                    targets.slip = targets.waybill.clone();
                }
            }
            if !slip_printer.is_empty() {
                targets.slip = slip_printer;
            }
            let opts = PrintOptions {
                limit,
                courier,
                waybill_template: template.unwrap_or_else(|| p.waybill_template.clone()),
                slip_template: slip_template.unwrap_or_else(|| p.slip_template.clone()),
                targets: Some(targets),
                ..PrintOptions::from_config(p, out.unwrap_or_else(|| p.out_dir.clone().into()))
            };
            cmd_print(&ctx, &cli.db, &opts)
        }
        Command::Printers => {
            let printers = crate::printer::Cups::new(&ctx.config.printers).printers()?;
            if ctx.json {
                println!("{}", serde_json::to_string(&printers)?);
            } else if printers.is_empty() {
                println!(
                    "CUPS at {} has no queues (add one with lpadmin)",
                    ctx.config.printers.cups_url
                );
            } else {
                let p = &ctx.config.printers;
                for q in &printers {
                    let mut roles: Vec<&str> = Vec::new();
                    for (role, name) in [
                        ("waybill", &p.waybill),
                        ("slip", &p.slip),
                        ("manifest", &p.manifest),
                        ("bench", &p.bench),
                    ] {
                        if *name == q.name {
                            roles.push(role);
                        }
                    }
                    let why = [q.reasons.join(", "), q.message.clone()]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(": ");
                    println!(
                        "{:<20} {:<8} {:<13} {:>3} jobs  {}{}",
                        q.name,
                        q.state,
                        if q.accepting {
                            "accepting"
                        } else {
                            "not accepting"
                        },
                        q.queued_jobs,
                        if roles.is_empty() {
                            String::new()
                        } else {
                            format!("[{}] ", roles.join(", "))
                        },
                        why
                    );
                }
            }
            Ok(())
        }
        Command::Reprint {
            order,
            out,
            printer,
        } => {
            let mut store = Store::open_existing(&cli.db)?;
            let out_dir = out.unwrap_or_else(|| ctx.config.print.out_dir.clone().into());
            let p = wave::reprint(
                &mut store,
                &ctx.config,
                &order,
                &out_dir,
                &ctx.operator,
                printer.as_deref(),
            )?;
            if ctx.json {
                println!("{}", serde_json::to_string(&p)?);
            } else {
                println!(
                    "reprinted order {} with {} {}: {} and {}",
                    p.order_id, p.courier, p.tracking_no, p.waybill_file, p.slip_file
                );
            }
            Ok(())
        }
        Command::Bench { orders, runs } => crate::bench::run(&ctx.config, orders, runs, ctx.json),
        Command::Void { tracking, reason } => {
            let mut store = Store::open_existing(&cli.db)?;
            let t = store.void(&tracking, &reason, &ctx.operator)?;
            if ctx.json {
                println!("{}", serde_json::to_string(&t)?);
            } else {
                println!("voided {} ({} order {})", t.number, t.courier, t.order_id);
            }
            Ok(())
        }
        Command::Export { .. } => {
            let store = Store::open_existing(&cli.db)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "order_id,courier,tracking_no")?;
            for (id, courier, number) in store.live_tracking()? {
                writeln!(
                    out,
                    "{},{},{}",
                    csv_field(&id),
                    csv_field(&courier),
                    csv_field(&number)
                )?;
            }
            Ok(())
        }
        Command::ShopSim(args) => runtime()?.block_on(cmd_shop_sim(args)),
        Command::Generate(args) => cmd_generate(args),
        Command::Demo { orders, seed, dir } => runtime()?.block_on(crate::demo::run(
            &ctx.config,
            &ctx.operator,
            ctx.json,
            orders,
            seed,
            &dir,
        )),
        Command::Scan { code, bench } => {
            runtime()?.block_on(cmd_scan(&ctx, &cli.db, &bench, &code))
        }
        Command::Handover(h) => cmd_handover(&ctx, &cli.db, h),
        Command::Backup { file } => {
            let store = Store::open_existing(&cli.db)?;
            if std::path::absolute(&file).ok() == std::path::absolute(&cli.db).ok() {
                bail!(UsageError(format!(
                    "{} is the database itself: back up to another file",
                    file.display()
                )));
            }
            store
                .backup_to(&file)
                .with_context(|| format!("backing up to {}", file.display()))?;
            let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            if ctx.json {
                println!("{}", serde_json::json!({"backup": file, "bytes": bytes}));
            } else {
                println!("{} ({bytes} bytes)", file.display());
            }
            Ok(())
        }
        Command::Purge { older_than } => {
            let days =
                match older_than.as_deref() {
                    None => ctx.config.privacy.retention_days,
                    Some(t) => t.trim().trim_end_matches('d').parse().map_err(|_| {
                        UsageError(format!("--older-than {t:?}: give days, e.g. 90d"))
                    })?,
                };
            let before = (chrono::Utc::now() - chrono::Duration::days(i64::from(days)))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let mut store = Store::open_existing(&cli.db)?;
            let purged = store.purge_personal_data(&before, &ctx.operator)?;
            let mut deleted = Vec::new();
            let reprints = std::path::Path::new(&ctx.config.print.out_dir).join("reprints");
            let mut files: Vec<std::path::PathBuf> =
                purged.files.iter().map(std::path::PathBuf::from).collect();
            if let Ok(dir) = std::fs::read_dir(&reprints) {
                for f in dir.flatten() {
                    let name = f.file_name().to_string_lossy().to_string();
                    if purged
                        .orders
                        .iter()
                        .any(|id| name.starts_with(&format!("{id}-")))
                    {
                        files.push(f.path());
                    }
                }
            }
            for f in files {
                match std::fs::remove_file(&f) {
                    Ok(()) => deleted.push(f.display().to_string()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => eprintln!("warning: cannot delete {}: {e}", f.display()),
                }
            }
            if ctx.json {
                println!(
                    "{}",
                    serde_json::json!({"before": before, "orders": purged.orders, "deleted_files": deleted})
                );
            } else {
                println!(
                    "purged personal data of {} orders handed over before {before}; deleted {} PDF files",
                    purged.orders.len(),
                    deleted.len()
                );
            }
            Ok(())
        }
        Command::Doctor => {
            let checks = runtime()?.block_on(crate::doctor::run(
                &ctx.config,
                config_file.as_deref(),
                &config_warnings,
                &cli.db,
            ));
            if ctx.json {
                println!("{}", serde_json::to_string(&checks)?);
            } else {
                crate::doctor::write_text(&mut std::io::stdout().lock(), &checks)?;
            }
            let failed = checks.iter().filter(|c| !c.ok).count();
            if failed > 0 {
                bail!("{failed} of {} checks failed (see above)", checks.len());
            }
            Ok(())
        }
        Command::Short {
            order,
            sku,
            qty,
            bench,
        } => {
            let mut store = Store::open_existing(&cli.db)?;
            let bench = crate::packing::Bench {
                name: &bench,
                operator: &ctx.operator,
            };
            let s = crate::packing::short(&mut store, &ctx.config, &bench, &order, &sku, qty)?;
            if ctx.json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                println!(
                    "order {} set aside: {} ×{} out of stock{}; the shop gets flag {} with memo “{}” (`station sync`)",
                    s.order_id,
                    s.sku,
                    s.qty,
                    s.voided
                        .as_deref()
                        .map(|v| format!(", waybill {v} voided"))
                        .unwrap_or_default(),
                    s.exception_flag,
                    s.memo
                );
            }
            Ok(())
        }
        Command::Report { date, format } => {
            let store = Store::open_existing(&cli.db)?;
            let report = crate::report::day_report(&store, &ctx.config, date)?;
            let mut out = std::io::stdout().lock();
            match (ctx.json, format.as_str()) {
                (true, _) | (_, "json") => writeln!(out, "{}", serde_json::to_string(&report)?)?,
                (_, "csv") => crate::report::write_csv(&mut out, &report)?,
                _ => crate::report::write_text(&mut out, &report)?,
            }
            Ok(())
        }
        Command::Show { query } => {
            let store = Store::open_existing(&cli.db)?;
            let stories = crate::show::show(&store, &query)?;
            if stories.is_empty() {
                bail!(UsageError(format!(
                    "no order, tracking number or buyer nick {query:?} in the database"
                )));
            }
            if ctx.json {
                println!("{}", serde_json::to_string(&stories)?);
            } else {
                crate::show::write_text(&mut std::io::stdout().lock(), &stories)?;
            }
            Ok(())
        }
        Command::Serve { listen } => {
            crate::serve::cmd_serve(ctx.config, ctx.operator, &cli.db, listen)
        }
        Command::Operator(crate::cli::OperatorCommand::HashPin) => crate::serve::cmd_hash_pin(),
        Command::BenchScan {
            benches,
            orders_per_bench,
            interval_ms,
            dir,
        } => crate::serve::loadtest::run(
            &ctx.config,
            benches,
            orders_per_bench,
            std::time::Duration::from_millis(interval_ms),
            &dir,
            ctx.json,
        ),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

pub fn client_for(config: &Config) -> Result<ShopClient> {
    if config.shop.token.is_empty() {
        return Err(UsageError(
            "no shop token: set STATION_SHOP_TOKEN to the shop's API token (it is read from the environment only)".into(),
        )
        .into());
    }
    let policy = RetryPolicy {
        request_timeout: Duration::from_secs(config.shop.request_timeout_secs),
        total: Duration::from_secs(config.shop.total_timeout_secs),
        ..RetryPolicy::default()
    };
    Ok(ShopClient::new(
        &config.shop.url,
        config.shop.token.clone(),
        policy,
    )?)
}

async fn cmd_pull(ctx: &Ctx, db: &Path) -> Result<()> {
    let client = client_for(&ctx.config)?;
    let mut store = Store::open(db)?;
    let report = pull::pull(&client, &mut store, &ctx.config, &ctx.operator).await?;
    print_pull(ctx.json, &report)
}

fn cmd_import(ctx: &Ctx, db: &Path, file: &Path) -> Result<()> {
    let mut store = Store::open(db)?;
    let report = pull::import(file, &mut store, &ctx.config, &ctx.operator)?;
    print_pull(ctx.json, &report)
}

fn print_pull(json: bool, report: &PullReport) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{}: {}", report.source, report.summary())?;
    if !report.rejections.is_empty() {
        writeln!(
            out,
            "rejected (not stored, never printed; fix them on the shop and pull again):"
        )?;
        for r in &report.rejections {
            writeln!(out, "  {}", crate::order::terminal_safe(r))?;
        }
    }
    if !report.conflicting_copies.is_empty() {
        writeln!(out, "conflicting copies (report them to the platform):")?;
        for c in &report.conflicting_copies {
            writeln!(out, "  {}", crate::order::terminal_safe(c))?;
        }
    }
    Ok(())
}

fn cmd_status(ctx: &Ctx, db: &Path) -> Result<()> {
    let store = Store::open_existing(db)?;
    let status = store.status()?;
    let dispatch = crate::report::dispatch_now(&store, &ctx.config)?;
    let mut out = std::io::stdout().lock();
    if ctx.json {
        let mut v = serde_json::to_value(&status)?;
        v["dispatch"] = serde_json::to_value(&dispatch)?;
        serde_json::to_writer(&mut out, &v)?;
        writeln!(out)?;
    } else {
        write_status(&mut out, &status)?;
        crate::report::write_dispatch(&mut out, &dispatch)?;
    }
    Ok(())
}

async fn cmd_sync(ctx: &Ctx, db: &Path) -> Result<()> {
    let client = client_for(&ctx.config)?;
    let mut store = Store::open_existing(db)?;
    let report = crate::outbox::sync_once(&mut store, &client, &ctx.config, &ctx.operator).await?;
    let mut out = std::io::stdout().lock();
    if ctx.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{}", report.summary())?;
    if let Some(problem) = &report.stopped {
        writeln!(
            out,
            "the shop is not answering ({problem}): the pending sends wait; run `station sync` again later"
        )?;
    }
    for a in &report.new_alerts {
        writeln!(out, "ALERT {}  {}", a.id, a.reason)?;
    }
    Ok(())
}

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

async fn cmd_shop_sim(args: ShopSimArgs) -> Result<()> {
    let orders = match (&args.orders, args.generate) {
        (Some(path), _) => sim::load_orders(path).map_err(|e| PullError::Input {
            path: path.display().to_string(),
            message: format!("{e:#}"),
        })?,
        (None, Some(n)) => generate::generate_json(&GenerateOptions {
            count: n,
            seed: args.seed,
            ..Default::default()
        }),
        (None, None) => bail!(UsageError("give --orders FILE or --generate N".into())),
    };
    if args.token.is_empty() {
        bail!(UsageError(
            "give --token T or set STATION_SHOP_TOKEN".into()
        ));
    }
    let faults = Faults {
        unavailable_rate: args.fail_rate,
        rate_limit_rate: args.rate_limit,
        retry_after_secs: args.retry_after,
        retry_after_date: args.retry_after_date,
        latency_ms: args.latency_ms,
        overlap: args.overlap,
        repeat_cursor: args.repeat_cursor,
        fail_page: args.fail_page,
        lost_answer_rate: args.lost_answer_rate,
        outage_ms: args.outage_secs.saturating_mul(1000),
        force_status: args.force_status,
        seed: args.seed,
    };
    let count = orders.len();
    let simulator = Simulator::new(
        orders,
        SimConfig {
            token: args.token,
            faults,
        },
    );
    let (addr, handle) = sim::spawn(simulator, args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // Tests wait for this line: it means the port is open.
    println!("shop-sim listening on http://{addr} with {count} orders");
    std::io::stdout().flush()?;
    tokio::select! {
        _ = handle => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

fn cmd_generate(args: GenerateArgs) -> Result<()> {
    let opts = GenerateOptions {
        count: args.count,
        seed: args.seed,
        invalid_rate: args.invalid_rate,
        off_queue_rate: args.off_queue_rate,
        ..Default::default()
    };
    let orders = generate::generate_json(&opts);
    let mut text = String::new();
    for o in &orders {
        text.push_str(&serde_json::to_string(o)?);
        text.push('\n');
    }
    match args.out {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

fn cmd_print(ctx: &Ctx, db: &Path, opts: &PrintOptions) -> Result<()> {
    use std::io::IsTerminal;
    let mut store = Store::open_existing(db)?;
    // A progress bar on stderr, only for a person at a terminal (never with
    // --json, never into a log file).
    let live = !ctx.json && std::io::stderr().is_terminal();
    let multi = indicatif::MultiProgress::new();
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
        writeln!(
            out,
            "nothing to print: the queue is empty (run `station pull` first)"
        )?;
        return Ok(());
    };
    let resumed = if report.resumed {
        " (finished an interrupted wave)"
    } else {
        ""
    };
    writeln!(
        out,
        "wave {id}{resumed}: {} orders, {} pages, {} files, {:.1} KB per page, {} ms",
        report.printed,
        report.pages,
        report.files.len(),
        report.bytes as f64 / 1024.0 / report.pages.max(1) as f64,
        report.elapsed_ms
    )?;
    for f in &report.files {
        writeln!(out, "  {f}")?;
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

impl crate::printer::Watch for PrinterLines {
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
    Err(crate::printer::JobFailed(format!(
        "{} print jobs did not complete; {} orders are not printed ({}); wave {} stays open: run `station print` again (with a working printer) to print them with the same tracking numbers",
        report.not_printed.len(),
        orders.len(),
        orders.join(" "),
        report.wave.unwrap_or(0)
    ))
    .into())
}

/// A CSV field, quoted when it needs to be.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A refusal that scripts must see as a non-zero exit, after the answer was printed.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

async fn cmd_scan(ctx: &Ctx, db: &Path, bench: &str, code: &str) -> Result<()> {
    use crate::packing::{self, Bench, ShopCheck, Verdict};
    let mut store = Store::open_existing(db)?;
    let shop = packing::shop_client(&ctx.config);
    let bench = Bench {
        name: bench,
        operator: &ctx.operator,
    };
    let out = packing::scan(&mut store, shop.as_ref(), &ctx.config, &bench, code).await?;
    if ctx.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        let tag = match out.verdict {
            Verdict::Ok => "OK",
            Verdict::Stop => "STOP",
            Verdict::Intercept => "INTERCEPT",
        };
        // Item titles, memos and messages are shop text: never raw to a terminal.
        let safe = crate::order::terminal_safe;
        println!("{tag} {}: {}", out.code, safe(&out.message));
        if let Some(o) = &out.order {
            for i in &o.items {
                let line = format!(
                    "  [{}/{}] {} {}{}",
                    i.scanned,
                    i.qty,
                    i.barcode.as_deref().unwrap_or(&i.sku),
                    i.title,
                    i.spec
                        .as_deref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                );
                println!("{}", safe(&line));
            }
            if let Some(m) = &o.memo {
                println!("  memo: {}", safe(m));
            }
        }
        if out.shop == ShopCheck::Unreachable {
            println!("  (the shop did not answer: went on with the last known state)");
        }
        if out.can_reprint {
            println!(
                "  reprint with: station reprint {}",
                out.order.as_ref().map_or("", |o| &o.id)
            );
        }
    }
    match out.verdict {
        Verdict::Ok => Ok(()),
        _ => Err(Refused(format!("{}: {}", out.code, out.message)).into()),
    }
}

fn cmd_handover(ctx: &Ctx, db: &Path, cmd: crate::cli::HandoverCommand) -> Result<()> {
    use crate::cli::HandoverCommand;
    use crate::handover;
    let mut store = Store::open_existing(db)?;
    let print_batch = |b: &handover::BatchView| {
        println!(
            "{} {} ({}) {}: {} parcels scanned, {} waiting",
            b.id,
            b.courier,
            b.courier_name,
            b.state,
            b.count,
            b.waiting.len()
        );
    };
    match cmd {
        HandoverCommand::Open { courier } => {
            let b = handover::open(&mut store, &ctx.config, &courier, &ctx.operator)?;
            if ctx.json {
                println!("{}", serde_json::to_string(&b)?);
            } else {
                print_batch(&b);
            }
            Ok(())
        }
        HandoverCommand::Scan { code, batch } => {
            let s = handover::scan(
                &mut store,
                &ctx.config,
                batch.as_deref(),
                &code,
                &ctx.operator,
            )?;
            if ctx.json {
                println!("{}", serde_json::to_string(&s)?);
            } else if s.accepted {
                println!("OK {}", s.message);
            }
            if s.accepted {
                Ok(())
            } else {
                Err(Refused(format!("refused {}: {}", s.code, s.message)).into())
            }
        }
        HandoverCommand::Close {
            batch,
            out,
            printer,
        } => {
            let out_dir = out.unwrap_or_else(|| ctx.config.print.out_dir.clone().into());
            let flag_queue = printer.clone().filter(|q| !q.is_empty());
            let queue = flag_queue
                .clone()
                .or_else(|| Some(ctx.config.printers.manifest.clone()).filter(|q| !q.is_empty()));
            // A queue that does not exist or refuses jobs is found out before
            // the batch closes (a closed batch cannot be undone).
            if let Some(queue) = &queue {
                let watch = crate::printer::StderrWatch::default();
                crate::printer::Printing::new(&ctx.config.printers, &ctx.operator, &watch)
                    .check(&[queue])?;
            }
            let c = handover::close(
                &mut store,
                &ctx.config,
                batch.as_deref(),
                &ctx.operator,
                &out_dir,
            )?;
            if ctx.json {
                println!("{}", serde_json::to_string(&c)?);
            } else {
                for r in &c.removed {
                    eprintln!(
                        "TAKE OUT {} (order {}): {} — it is not handed over",
                        r.tracking_no, r.order_id, r.reason
                    );
                }
                println!("{}", c.manifest);
                eprintln!(
                    "{} {}: {} parcels handed over; the shop write-back is queued (`station sync`)",
                    if c.already_closed {
                        "already closed"
                    } else {
                        "closed"
                    },
                    c.batch_id,
                    c.count
                );
            }
            // The manifest to a printer (`--printer`, else printers.manifest):
            // the batch is closed either way; a job that did not come out is
            // an error to see (exit 8), and `handover close` again prints it again.
            if let Some(queue) = queue {
                let watch = crate::printer::StderrWatch::default();
                let mut p =
                    crate::printer::Printing::new(&ctx.config.printers, &ctx.operator, &watch);
                let orders: Vec<String> = Vec::new();
                let r = p.print_one(
                    &mut store,
                    &crate::printer::Doc {
                        kind: "manifest",
                        printer: &queue,
                        file: Path::new(&c.manifest),
                        orders: &orders,
                    },
                )?;
                if !r.completed() {
                    bail!(crate::printer::JobFailed(format!(
                        "batch {}: the manifest did not print on {queue}: {} (the file is {}; `station handover close --batch {}{}` prints it again)",
                        c.batch_id,
                        r.reason(),
                        c.manifest,
                        c.batch_id,
                        flag_queue
                            .as_ref()
                            .map(|q| format!(" --printer {q}"))
                            .unwrap_or_default()
                    )));
                }
                eprintln!(
                    "manifest printed on {queue} (CUPS job {})",
                    r.cups_job.unwrap_or(0)
                );
            }
            Ok(())
        }
        HandoverCommand::Show { batch } => {
            let batches = match batch {
                Some(id) => vec![handover::view(&store, &ctx.config, &id)?],
                None => handover::open_batches(&store, &ctx.config)?,
            };
            if ctx.json {
                println!("{}", serde_json::to_string(&batches)?);
            } else if batches.is_empty() {
                println!("no handover batch is open");
            } else {
                for b in &batches {
                    print_batch(b);
                    for p in &b.parcels {
                        println!(
                            "  {:>3} {} {} ({} {})",
                            p.seq, p.tracking_no, p.order_id, p.scanned_by, p.scanned_at
                        );
                    }
                    for w in &b.waiting {
                        println!("  waiting {} {} ({})", w.tracking_no, w.order_id, w.state);
                    }
                }
            }
            Ok(())
        }
    }
}
