//! The `station` binary: parse the command line, set up logging, dispatch to
//! the command's file under `cmd/`, and turn the outcome into an exit code.
//! Everything else lives in the library.

mod cmd;

use clap::Parser;
use cmd::{Ctx, runtime};
use station::cli::{Cli, Command, OperatorCommand, PerfCommand, exit};
use station::config::{Config, Overrides};

fn main() {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let code = match run(cli) {
        Ok(()) => exit::OK,
        Err(err) => {
            if station::error::is_broken_pipe(&err) {
                // `station export | head`: the reader has all it wanted.
                exit::OK
            } else {
                eprintln!("error: {}", station::error::one_line(&err));
                station::cli::exit_code(&err)
            }
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> anyhow::Result<()> {
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
        tracing::info!(config = %file.display(), "configuration loaded");
    }
    let ctx = Ctx {
        operator: cli
            .operator
            .clone()
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "station".into()),
        config: loaded.config,
        config_file: loaded.file,
        config_warnings: loaded.warnings,
        json: cli.json,
        db: cli.db,
    };
    // At WARN, so the warnings it holds carry it under the default filter.
    let _span = tracing::warn_span!("command", name = cli.command.name()).entered();
    match cli.command {
        Command::Pull { .. } => runtime()?.block_on(cmd::pull::pull(&ctx)),
        Command::Import { file } => cmd::pull::import(&ctx, &file),
        Command::Print(args) => cmd::print::run(&ctx, args),
        Command::Reprint {
            order,
            out,
            printer,
        } => cmd::reprint::run(&ctx, &order, out, printer),
        Command::Printers => cmd::printers::run(&ctx),
        Command::Picklist { wave, printer } => cmd::picklist::run(&ctx, wave, printer),
        Command::Couriers => runtime()?.block_on(cmd::couriers::run(&ctx)),
        Command::Void { tracking, reason } => cmd::void::run(&ctx, &tracking, &reason),
        Command::Export { excel, .. } => cmd::export::run(&ctx, excel),
        Command::Status => cmd::status::run(&ctx),
        Command::Sync { .. } => runtime()?.block_on(cmd::sync::run(&ctx)),
        Command::ShopSim(args) => runtime()?.block_on(cmd::shop_sim::run(args)),
        Command::WaybillSim(args) => runtime()?.block_on(cmd::waybill_sim::run(args)),
        Command::Generate(args) => cmd::generate::run(args),
        Command::Demo { orders, seed, dir } => runtime()?.block_on(cmd::demo::run(
            &ctx.config,
            &ctx.operator,
            ctx.json,
            orders,
            seed,
            &dir,
        )),
        Command::Scan {
            code,
            bench,
            weight,
        } => runtime()?.block_on(cmd::scan::run(&ctx, &bench, &code, weight.as_deref())),
        Command::Short {
            order,
            sku,
            qty,
            bench,
        } => cmd::short::run(&ctx, &order, &sku, qty, &bench),
        Command::Returns(r) => cmd::returns::run(&ctx, r),
        Command::Show { query } => cmd::show::run(&ctx, &query),
        Command::Report {
            date,
            format,
            excel,
        } => cmd::report::run(&ctx, date, &format, excel),
        Command::Handover(h) => cmd::handover::run(&ctx, h),
        Command::Backup { file } => cmd::backup::run(&ctx, &file),
        Command::MigrateDb { to } => cmd::migrate_db::run(&ctx, &to),
        Command::Purge { older_than } => cmd::purge::run(&ctx, older_than.as_deref()),
        Command::Doctor => cmd::doctor::run(&ctx, &runtime()?),
        Command::Serve { listen } => cmd::serve::run(ctx, listen),
        Command::Operator(OperatorCommand::HashPin) => cmd::operator::hash_pin(),
        Command::Perf(PerfCommand::Wave(a)) | Command::Bench(a) => cmd::perf::wave::run(
            &ctx.config,
            a.orders,
            a.runs,
            a.postgres.as_deref(),
            a.format,
            a.repeat_buyer_rate,
            ctx.json,
        ),
        Command::Perf(PerfCommand::Scan(a)) | Command::BenchScan(a) => cmd::perf::scan::run(
            &ctx.config,
            a.benches,
            a.orders_per_bench,
            std::time::Duration::from_millis(a.interval_ms),
            a.shop_latency_ms,
            &a.dir,
            cmd::perf::scan::Engine {
                servers: a.servers,
                postgres: a.postgres.as_deref(),
            },
            ctx.json,
        ),
        Command::Perf(PerfCommand::Sync(a)) => cmd::perf::sync::run(
            &ctx.config,
            &cmd::perf::sync::Args {
                orders: a.orders,
                shop_latency_ms: a.shop_latency_ms,
                in_flight: &a.in_flight,
                max_per_sec: a.max_per_sec,
                dir: &a.dir,
                json: ctx.json,
            },
        ),
        Command::Completions { shell } => cmd::completions::completions(shell),
        Command::Manpage { dir } => cmd::completions::manpages(&dir),
    }
}

/// Logs go to stderr, with a timestamp and the command's span; colour only at
/// a terminal. `STATION_LOG` (e.g. `debug`) overrides the `-v` count.
fn init_logging(verbose: u8) {
    use std::io::IsTerminal;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // PostgreSQL's client logs every query with its parameters at debug
    // level (recipients' phones, names): never below warn, whatever is asked.
    let quiet = |f: tracing_subscriber::EnvFilter| {
        ["tokio_postgres=warn", "postgres=warn"]
            .into_iter()
            .fold(f, |f, d| {
                f.add_directive(d.parse().expect("a valid directive"))
            })
    };
    let filter = quiet(
        tracing_subscriber::EnvFilter::try_from_env("STATION_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("station={default}"))),
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(cmd::LogWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
