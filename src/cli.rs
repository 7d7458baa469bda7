//! The command line: clap's raw flags, and the exit codes that are the CLI's
//! contract with scripts (documented in the README; treat them as API).

use crate::config::ConfigError;
use crate::pull::PullError;
use crate::shop::client::ShopError;
use crate::store::StoreError;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Exit codes. 2 is also what clap uses for usage errors.
pub mod exit {
    pub const OK: i32 = 0;
    /// Something unexpected; the message says what.
    pub const FAILURE: i32 = 1;
    /// Bad command line or configuration.
    pub const USAGE: i32 = 2;
    /// The shop could not be reached in time (down, slow, wrong URL): try again later.
    pub const SHOP_UNREACHABLE: i32 = 3;
    /// The shop refused a request or answered outside the contract (bad token, broken paging).
    pub const SHOP_REFUSED: i32 = 4;
    /// The database could not be opened or written.
    pub const DATABASE: i32 = 5;
    /// An input file could not be read or parsed.
    pub const INPUT: i32 = 6;
    /// A scan was answered STOP or INTERCEPT, a parcel was refused at handover,
    /// or a return was refused: the reason is on stderr (and in the JSON with --json).
    pub const REFUSED: i32 = 7;
    /// A print job failed or stalled in CUPS: the orders it held are listed and
    /// not counted as printed (the next `station print` sends them again).
    pub const PRINTER: i32 = 8;
    /// A courier's e-waybill service could not give numbers (no balance left,
    /// down, a refused token): nothing of the wave was printed; the numbers
    /// already taken are kept for the next `station print`.
    pub const WAYBILL_SERVICE: i32 = 9;
}

/// The exit code for an error, by what went wrong (see `cli::exit`).
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<crate::error::Refused>() {
            return exit::REFUSED;
        }
        if cause.is::<crate::printer::JobFailed>() {
            return exit::PRINTER;
        }
        if cause.is::<crate::courier::ServiceError>() {
            return exit::WAYBILL_SERVICE;
        }
        if cause.is::<ConfigError>()
            || cause.is::<crate::error::UsageError>()
            || cause.is::<crate::render::layout::TemplateError>()
            || matches!(
                cause.downcast_ref::<StoreError>(),
                Some(
                    StoreError::PoolExhausted { .. }
                        | StoreError::AlreadyVoided(_)
                        | StoreError::UnknownTracking(_)
                        | StoreError::NotOnPostgres { .. }
                        | StoreError::MigrateRefused(_)
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
        if cause.is::<StoreError>() {
            return exit::DATABASE;
        }
    }
    exit::FAILURE
}

fn shop_code(e: &ShopError) -> i32 {
    match e {
        ShopError::GaveUp { .. } => exit::SHOP_UNREACHABLE,
        ShopError::BadUrl { .. } | ShopError::NoToken => exit::USAGE,
        _ => exit::SHOP_REFUSED,
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "station",
    version,
    about = "Warehouse print-and-dispatch station: pulls paid, yellow-flagged orders from the shop, prints waybills and packing slips, checks parcels at the packing bench, hands them to the courier and moves them to the green flag on the shop",
    after_help = "Start with `station demo`. The shop token is read from STATION_SHOP_TOKEN only.\nExit codes: 0 ok, 1 failure, 2 usage/config, 3 shop unreachable, 4 shop refused, 5 database, 6 input file, 7 scan refused (STOP/INTERCEPT), 8 print job failed or stalled."
)]
pub struct Cli {
    /// The database: a SQLite file (the default), or a PostgreSQL database that
    /// several stations share: postgres://user@host:5432/dbname.
    #[arg(long, global = true, env = "STATION_DB", default_value = "station.db")]
    pub db: crate::store::Db,
    /// Config file (default: ./station.toml when it exists, else built-in defaults).
    #[arg(long, global = true, env = "STATION_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting, recorded with every change (default: $USER).
    #[arg(long, global = true, env = "STATION_OPERATOR")]
    pub operator: Option<String>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull paid orders from the shop; queue those on the pull flag, reject invalid ones with reasons.
    Pull {
        /// Shop API base URL (else STATION_SHOP_URL, else shop.url in the config).
        #[arg(long)]
        shop_url: Option<String>,
    },
    /// Import orders from a file (a JSON array or JSON Lines), under the same rules as pull.
    Import {
        /// The file to read.
        file: PathBuf,
    },
    /// Print a wave: the queued orders (urgent first, then by payment time) become waybill and packing-slip PDFs.
    Print(PrintArgs),
    /// Print one order's label and slip again (重打): same number, or a new one (old voided) if it changed after print.
    Reprint {
        /// The order id.
        order: String,
        /// Directory for the files (default: print.out_dir); they go under reprints/.
        #[arg(long)]
        out: Option<PathBuf>,
        /// CUPS queue to print to (default: printers.bench; none: files only).
        #[arg(long)]
        printer: Option<String>,
    },
    /// Write a wave's pick list (拣货单: SKUs summed in shelf order, then the 格位 slot table) again, and print it.
    Picklist {
        /// The wave number.
        wave: i64,
        /// A CUPS queue to print it on (default: printers.manifest, the A4 printer).
        #[arg(long)]
        printer: Option<String>,
    },
    /// The CUPS queues: state (idle, printing, stopped), whether they accept jobs, and why.
    Printers,
    /// The couriers: where their numbers come from (pool or e-waybill service), the service's balance, and today's numbers taken, used and given back.
    Couriers,
    /// Measurements: a print wave (`perf wave`) and bench scans over HTTP (`perf scan`).
    #[command(subcommand)]
    Perf(PerfCommand),
    /// Old name of `perf wave` (kept for one release).
    #[command(hide = true)]
    Bench(PerfWaveArgs),
    /// Void a tracking number so it is never used again (作废).
    Void {
        /// The tracking number.
        tracking: String,
        /// Why, for the audit trail.
        #[arg(long, default_value = "voided by operator")]
        reason: String,
    },
    /// Export order id, courier and tracking number of printed orders (批量发货 upload).
    Export {
        /// Output format.
        #[arg(long, default_value = "csv", value_parser = ["csv"])]
        format: String,
        /// Start with a UTF-8 byte-order mark, so Excel shows Chinese courier names.
        #[arg(long)]
        excel: bool,
    },
    /// Counts by state; rejected, changed-after-print, intercepted and left-queue orders with reasons; pending write-backs; cut-off and ship-promise warnings.
    Status,
    /// Send the queued write-back (shipments, done flags with the 已交接 memo) to the shop: one pass. Exits 0 even when some sends must wait; says how many are pending.
    Sync {
        /// Shop API base URL (else STATION_SHOP_URL, else shop.url in the config).
        #[arg(long)]
        shop_url: Option<String>,
    },
    /// Run the shop platform simulator (Shop API v1) for demos and tests.
    ShopSim(ShopSimArgs),
    /// Run a courier's e-waybill service simulator (Waybill API v1), for demos and tests.
    WaybillSim(WaybillSimArgs),
    /// Write generated, realistic orders as JSON Lines (to stdout or --out).
    Generate(GenerateArgs),
    /// Run the whole station on generated orders against an in-process simulator. Nothing to set up.
    Demo {
        /// How many orders to generate.
        #[arg(long, default_value_t = 500)]
        orders: usize,
        /// Seed for the generated orders.
        #[arg(long, default_value_t = 11)]
        seed: u64,
        /// Where the demo writes its database (wiped at the start of each demo run).
        #[arg(long, default_value = "station-demo")]
        dir: PathBuf,
    },
    /// One scan at a packing bench (验货): a packing slip opens its order, item barcodes tick it off, the waybill packs it.
    Scan {
        /// The scanned code: packing-slip QR (order id), item barcode or SKU, or waybill number.
        code: String,
        /// Which bench scans (each bench has one open order).
        #[arg(long, default_value = "cli")]
        bench: String,
        /// The parcel's weight with its waybill scan (称重): 1.25kg or 1250g.
        /// Checked against the items' weights; sent to the shop with the shipment.
        #[arg(long)]
        weight: Option<String>,
    },
    /// Out of stock (缺货): set an order aside because an item is missing; its number is voided and the shop gets the exception flag with a memo.
    Short {
        /// The order id.
        order: String,
        /// The missing item's SKU (or barcode).
        sku: String,
        /// How many are missing (default 1).
        #[arg(long)]
        qty: Option<u64>,
        /// The bench reporting it (recorded with the operator).
        #[arg(long, default_value = "cli")]
        bench: String,
    },
    /// Returns intake (退货登记): record what came back in a returned parcel; the order moves to the returns flag with a memo.
    #[command(subcommand)]
    Returns(ReturnsCommand),
    /// Where is this order? State, waves, tracking numbers (current and void), packing, handover, pending write-backs and the audit timeline.
    Show {
        /// An order id, a tracking number, or a buyer's nick (every order of that buyer).
        query: String,
    },
    /// The end-of-day report: pulled, printed, packed, handed over per courier, intercepted, out of stock, pending write-backs, parcels not handed over, parcels per hour per bench and operator, cut-off and ship-promise warnings.
    Report {
        /// Local date in the configured time zone (default: today).
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// Output format (`--json` also gives JSON).
        #[arg(long, default_value = "text", value_parser = ["text", "json", "csv"])]
        format: String,
        /// With `--format csv`: start with a UTF-8 byte-order mark, for Excel.
        #[arg(long)]
        excel: bool,
    },
    /// Courier handover (交接): open a batch, scan parcels into it, close it and print the manifest.
    #[command(subcommand)]
    Handover(HandoverCommand),
    /// Copy the database to FILE through SQLite's online backup API, while the station keeps working.
    Backup {
        /// Where the copy goes (replaced if it exists).
        file: PathBuf,
    },
    /// Copy this SQLite station (--db FILE: every table, the audit trail, the pools' positions) into an empty PostgreSQL database and check the copy row by row.
    MigrateDb {
        /// The PostgreSQL database: postgres://user@host:5432/dbname (empty; the tables are created).
        #[arg(long)]
        to: crate::store::Db,
    },
    /// Remove recipient personal data of orders handed over before the retention period (database, WAL, wave PDFs).
    Purge {
        /// Age, e.g. 90d (default: privacy.retention_days).
        #[arg(long)]
        older_than: Option<String>,
    },
    /// Check the setup: config, database integrity, fonts, templates, and whether the shop answers.
    Doctor,
    /// Run the packing-bench web app (验货打包, 交接) for browsers at the benches.
    Serve {
        /// Address to listen on (default: serve.listen, 127.0.0.1:8080). Off loopback only with TLS ([serve] tls).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Operators who sign in at the benches.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Shell completions on stdout: `station completions bash > /etc/bash_completion.d/station`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Man pages (station.1 and one per command) written into DIR.
    Manpage {
        /// Where the pages go (created if missing).
        #[arg(default_value = "man")]
        dir: PathBuf,
    },
    /// Old name of `perf scan` (kept for one release).
    #[command(hide = true)]
    BenchScan(PerfScanArgs),
}

impl Command {
    /// The command's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Pull { .. } => "pull",
            Command::Import { .. } => "import",
            Command::Print(_) => "print",
            Command::Reprint { .. } => "reprint",
            Command::Printers => "printers",
            Command::Picklist { .. } => "picklist",
            Command::Couriers => "couriers",
            Command::Perf(PerfCommand::Wave(_)) | Command::Bench(_) => "perf wave",
            Command::Perf(PerfCommand::Scan(_)) | Command::BenchScan(_) => "perf scan",
            Command::Perf(PerfCommand::Sync(_)) => "perf sync",
            Command::Void { .. } => "void",
            Command::Export { .. } => "export",
            Command::Status => "status",
            Command::Sync { .. } => "sync",
            Command::ShopSim(_) => "shop-sim",
            Command::WaybillSim(_) => "waybill-sim",
            Command::Generate(_) => "generate",
            Command::Demo { .. } => "demo",
            Command::Scan { .. } => "scan",
            Command::Short { .. } => "short",
            Command::Returns(_) => "returns",
            Command::Show { .. } => "show",
            Command::Report { .. } => "report",
            Command::Handover(_) => "handover",
            Command::Backup { .. } => "backup",
            Command::MigrateDb { .. } => "migrate-db",
            Command::Purge { .. } => "purge",
            Command::Doctor => "doctor",
            Command::Serve { .. } => "serve",
            Command::Operator(_) => "operator",
            Command::Completions { .. } => "completions",
            Command::Manpage { .. } => "manpage",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ReturnsCommand {
    /// Record a returned parcel: who received which items, why and in what condition. Refused (exit 7) for an unknown code, an item not in the order, or more than the parcel held.
    Receive {
        /// The parcel's tracking number (our waybill) or its order id.
        code: String,
        /// An item that came back: SKU or barcode, with `:QTY` when more than one (`--item SKU-1:2`); repeat for each.
        #[arg(long = "item", value_name = "SKU[:QTY]")]
        items: Vec<String>,
        /// Why it came back (the buyer's reason, as after-sales gave it).
        #[arg(long, default_value = "")]
        reason: String,
        /// ok (resellable) or damaged (破损).
        #[arg(long, default_value = "ok", value_parser = ["ok", "damaged"])]
        condition: String,
        /// The bench receiving it (recorded with the operator).
        #[arg(long, default_value = "cli")]
        bench: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum HandoverCommand {
    /// Open a batch for a courier (an open batch of that courier is reused).
    Open {
        /// Courier code: ZTO, YTO, STO, YD, SF, EMS, JD, JT, or one configured in [[couriers]].
        #[arg(long)]
        courier: String,
    },
    /// Scan one parcel's waybill into the batch; a refused parcel exits 7 with the reason.
    Scan {
        /// The waybill's tracking number.
        code: String,
        /// The batch (default: the only open batch, or the open batch of the parcel's courier).
        #[arg(long)]
        batch: Option<String>,
    },
    /// Close the batch: hand its orders over, queue the shop write-back, print the manifest (交接单).
    Close {
        /// The batch (default: the only open batch).
        #[arg(long)]
        batch: Option<String>,
        /// Directory for the manifest (default: print.out_dir); it goes under handovers/.
        #[arg(long)]
        out: Option<PathBuf>,
        /// CUPS queue for the manifest (default: printers.manifest; none: file only).
        #[arg(long)]
        printer: Option<String>,
    },
    /// Show the open batches (or one batch): parcels scanned and parcels still waiting.
    Show {
        /// A batch id (default: every open batch).
        batch: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct PrintArgs {
    /// At most this many orders.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Only orders shipping with this courier (ZTO, SF, ...).
    #[arg(long)]
    pub courier: Option<String>,
    /// Waybill template: a name from templates/ or a file (default: print.waybill_template).
    #[arg(long)]
    pub template: Option<String>,
    /// Packing-slip template (default: print.slip_template).
    #[arg(long)]
    pub slip_template: Option<String>,
    /// Directory for the waves' files (default: print.out_dir).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// CUPS queue (or `[[printers.raw]]` name) for the waybills (default:
    /// printers.waybill); give it several times to spread the chunks over
    /// several printers in turn.
    #[arg(long)]
    pub printer: Vec<String>,
    /// CUPS queue (or raw printer) for the packing slips (default: printers.slip,
    /// else the waybills' printer when --printer is given); may be repeated.
    #[arg(long)]
    pub slip_printer: Vec<String>,
    /// The files' format: pdf, or zpl / tspl for thermal printers (one 1-bit
    /// raster per label at the printer's dpi). Default: print.format.
    #[arg(long)]
    pub format: Option<crate::config::Format>,
    /// Print every order as a parcel of its own this time (no 合并发货;
    /// default: print.merge).
    #[arg(long)]
    pub no_merge: bool,
}

#[derive(Debug, Subcommand)]
pub enum PerfCommand {
    /// Measure a print wave end to end (allocation + render + write) on generated orders.
    Wave(PerfWaveArgs),
    /// Measure packing-bench scan round trips over HTTP: N benches scanning at once against `serve` and an in-process simulator.
    Scan(PerfScanArgs),
    /// Measure the write-back: N handed-over orders synced to an in-process shop with a latency, for each --in-flight value side by side.
    Sync(PerfSyncArgs),
}

#[derive(Debug, Args)]
pub struct PerfSyncArgs {
    /// Handed-over orders (two sends each: shipment, then the done flag).
    #[arg(long, default_value_t = 2000)]
    pub orders: usize,
    /// How long the simulated shop takes to answer, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub shop_latency_ms: u64,
    /// Sends in flight at once (outbox.max_in_flight), comma separated: each value is one run on the same orders.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub in_flight: Vec<usize>,
    /// At most this many requests a second (outbox.max_per_sec; 0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_per_sec: u32,
    /// Where the run writes its databases and labels (wiped at the start).
    #[arg(long, default_value = "station-perf-sync")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct PerfWaveArgs {
    /// Orders per run.
    #[arg(long, default_value_t = 10_000)]
    pub orders: usize,
    /// Runs; the figures are medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Also run each wave on PostgreSQL, beside the SQLite one: a server URL
    /// (postgres://user@host:5432/postgres) on which each run creates a
    /// database of its own and drops it after.
    #[arg(long)]
    pub postgres: Option<String>,
    /// zpl or tspl: the waybills go to a raw printer in this process (a TCP
    /// listener); the time to its first byte and the bytes per label are measured.
    #[arg(long, default_value = "pdf")]
    pub format: crate::config::Format,
    /// Fraction of orders whose buyer ordered again (merged parcels, 合并发货):
    /// the report says how many labels merging saved.
    #[arg(long, default_value_t = 0.05)]
    pub repeat_buyer_rate: f64,
}

#[derive(Debug, Args)]
pub struct PerfScanArgs {
    /// Benches (browser sessions) scanning at once.
    #[arg(long, default_value_t = 8)]
    pub benches: usize,
    /// Orders each bench packs.
    #[arg(long, default_value_t = 25)]
    pub orders_per_bench: usize,
    /// Pause between one bench's scans, in milliseconds (0: flat out, the worst case;
    /// a person with a hand scanner manages a scan every 300 ms or so).
    #[arg(long, default_value_t = 0)]
    pub interval_ms: u64,
    /// How long the simulated shop takes to answer, in milliseconds. Opening
    /// an order and packing it re-read the order from the shop, so their
    /// figures depend on it: the run measures a round with an instant shop
    /// and a round with this latency (0: only the instant round).
    #[arg(long, default_value_t = 50)]
    pub shop_latency_ms: u64,
    /// Where the run writes its database and labels (wiped at the start).
    #[arg(long, default_value = "station-bench-scan")]
    pub dir: PathBuf,
    /// `serve` processes' worth of bench servers on the one database; the
    /// benches are spread over them.
    #[arg(long, default_value_t = 1)]
    pub servers: usize,
    /// Keep the state on this PostgreSQL server instead of SQLite
    /// (postgres://user@host:5432/postgres): a database of its own for the
    /// run, dropped after.
    #[arg(long)]
    pub postgres: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Read a PIN from stdin and print its Argon2id hash for `pin_hash` in [[operators]].
    HashPin,
}

#[derive(Debug, Args)]
pub struct ShopSimArgs {
    /// Serve the orders in this file (JSON array or JSON Lines), served exactly as written.
    #[arg(long, conflicts_with = "generate")]
    pub orders: Option<PathBuf>,
    /// Serve this many generated orders instead.
    #[arg(long)]
    pub generate: Option<usize>,
    /// Seed for generated orders and for fault draws.
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub listen: SocketAddr,
    /// Bearer token clients must send (else STATION_SHOP_TOKEN).
    #[arg(long, env = "STATION_SHOP_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Fraction of requests answered 503.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Fraction of requests answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    pub rate_limit: f64,
    /// Seconds in the Retry-After header of a 429.
    #[arg(long, default_value_t = 1)]
    pub retry_after: u64,
    /// Send Retry-After as an HTTP-date (now + --retry-after) instead of seconds.
    #[arg(long)]
    pub retry_after_date: bool,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// List pages overlap by this many orders.
    #[arg(long, default_value_t = 0)]
    pub overlap: usize,
    /// Misbehave: repeat the same cursor forever.
    #[arg(long)]
    pub repeat_cursor: bool,
    /// This 1-based list page always answers 503.
    #[arg(long)]
    pub fail_page: Option<u32>,
    /// Fraction of writes (PUT, POST) carried out and then answered 503 anyway (the answer is lost).
    #[arg(long, default_value_t = 0.0)]
    pub lost_answer_rate: f64,
    /// The shop is down (every request answers 503) for this many seconds after start-up.
    #[arg(long, default_value_t = 0)]
    pub outage_secs: u64,
    /// Answer every request with this HTTP status (e.g. 403), to see what a client retries.
    #[arg(long)]
    pub force_status: Option<u16>,
}

#[derive(Debug, Args)]
pub struct WaybillSimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8701")]
    pub listen: SocketAddr,
    /// Bearer token clients must send (else STATION_WAYBILL_TOKEN).
    #[arg(long, env = "STATION_WAYBILL_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Numbers each courier's branch can take (面单余额) at start.
    #[arg(long, default_value_t = 1_000_000)]
    pub balance: u64,
    /// A courier's out-of-area places (超区), answered `unreachable`: COURIER=PLACE,PLACE (repeatable).
    #[arg(long)]
    pub unreachable: Vec<String>,
    /// Seed for fault draws.
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Fraction of requests answered 503.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Fraction of requests answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    pub rate_limit: f64,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Fraction of takes carried out and then answered 503 anyway (the answer is lost).
    #[arg(long, default_value_t = 0.0)]
    pub lost_answer_rate: f64,
    /// The service is down (every request answers 503) for this many seconds after start-up.
    #[arg(long, default_value_t = 0)]
    pub outage_secs: u64,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// How many orders.
    #[arg(default_value_t = 200)]
    pub count: usize,
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Fraction of orders that break the contract on purpose.
    #[arg(long, default_value_t = 0.0)]
    pub invalid_rate: f64,
    /// Fraction of orders not for the warehouse yet (other flags, unpaid).
    #[arg(long, default_value_t = 0.0)]
    pub off_queue_rate: f64,
    /// Fraction of orders whose buyer ordered again, once or twice, mostly to
    /// the same recipient (what merged parcels, 合并发货, are made of).
    #[arg(long, default_value_t = 0.0)]
    pub repeat_buyer_rate: f64,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}
