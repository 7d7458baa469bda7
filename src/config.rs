//! Settings: built-in defaults, then `station.toml`, then `STATION_*` environment
//! variables, then command-line flags — each layer overrides the one before.
//!
//! Unknown keys in the file are warned about (a typo must not silently fall back
//! to a default). The shop token is read from `STATION_SHOP_TOKEN` only, never
//! from the file, and lives in a [`Secret`] that cannot be printed.

use crate::order::Flag;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A value that must never reach a log, a terminal or a file. `Debug` and
/// `Display` print `[redacted]`; the only way out is [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub shop: ShopConfig,
    pub flags: FlagConfig,
    /// IANA time zone the warehouse works in (dates on labels, day cut-off).
    pub time_zone: String,
    pub sender: Sender,
    pub print: PrintConfig,
    /// Which CUPS queue prints which document (none by default: PDF files only).
    pub printers: PrintersConfig,
    pub bench: BenchConfig,
    /// The courier handover (交接).
    pub handover: HandoverConfig,
    pub dispatch: DispatchConfig,
    pub privacy: PrivacyConfig,
    /// The write-back outbox worker (`station sync`, `station serve`).
    pub outbox: OutboxConfig,
    /// `station serve`'s scheduled pulls and auto-waves.
    pub schedule: ScheduleConfig,
    pub couriers: Vec<Courier>,
    /// Where SKUs are shelved (the pick list's order).
    pub picking: PickingConfig,
    pub locations: Vec<Location>,
    /// `station serve`: the packing-bench web app.
    pub serve: ServeConfig,
    /// Who may sign in at a bench (name + hashed PIN). None by default: a
    /// default PIN would be a PIN everybody knows.
    pub operators: Vec<Operator>,
}

/// `station serve`: where it listens and which names it answers to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on (`--listen` overrides). Loopback unless the
    /// benches are other machines.
    pub listen: String,
    /// `Host` names (with port) the server answers to, e.g.
    /// `"station.lan:8080"`. Empty: the listen address, plus `localhost:PORT`
    /// on loopback. Anything else is refused (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// A bench session ends after this many minutes without a request.
    pub session_idle_minutes: u64,
    /// TLS for the benches: `""` (the default: TLS when `tls_cert` and
    /// `tls_key` are set, else plain HTTP, allowed on loopback only),
    /// `"self-signed"` (a certificate made at first start, kept in `tls_cert`
    /// and `tls_key` or beside the database) or `"off"`.
    pub tls: String,
    /// PEM files: the certificate (chain) and its private key.
    pub tls_cert: String,
    pub tls_key: String,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            listen: "127.0.0.1:8080".into(),
            allowed_hosts: Vec::new(),
            session_idle_minutes: 12 * 60,
            tls: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}

/// An operator who may sign in at a bench. `pin_hash` is an Argon2id PHC
/// string from `station operator hash-pin`; the PIN itself is never stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    pub name: String,
    pub pin_hash: String,
}

impl fmt::Debug for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operator")
            .field("name", &self.name)
            .field("pin_hash", &"[hash]")
            .finish()
    }
}

/// The write-back outbox worker (`station sync`, and `station serve` in a loop).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// One send to the shop, with its quick retries, gives up after this long;
    /// the send then waits for a later pass and the pass ends.
    pub send_timeout_secs: u64,
    /// A send that could not go through waits this long before its next try,
    /// doubling with every failed try ...
    pub retry_first_secs: u64,
    /// ... up to this.
    pub retry_max_secs: u64,
    /// `station serve` runs a pass this often.
    pub interval_secs: u64,
    /// Sends in flight at once (each order's own sends still go one after the
    /// other: shipment, then its flag). 1 sends one at a time.
    pub max_in_flight: usize,
    /// At most this many requests a second to the shop from one pass (0: no
    /// limit but the shop's own 429s, which pause every send in flight).
    pub max_per_sec: u32,
}

impl Default for OutboxConfig {
    fn default() -> OutboxConfig {
        OutboxConfig {
            send_timeout_secs: 10,
            retry_first_secs: 2,
            retry_max_secs: 300,
            interval_secs: 5,
            max_in_flight: 16,
            max_per_sec: 0,
        }
    }
}

/// `station serve`'s background schedule: pull the shop every N minutes, and
/// optionally print the queued orders as a wave every M minutes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Pull the shop this often while `serve` runs; 0 = never (pull by hand).
    pub pull_every_minutes: u64,
    /// Print the queued orders as a wave this often (the hourly auto-wave is
    /// 60); 0 = never (print by hand).
    pub auto_wave_every_minutes: u64,
    /// How many seconds one schedule "minute" lasts: 60, except in tests,
    /// which set `STATION_SCHEDULE_MINUTE_SECS` to see a schedule run in
    /// seconds. Not a file setting.
    #[serde(skip)]
    pub minute_secs: u64,
}

impl Default for ScheduleConfig {
    fn default() -> ScheduleConfig {
        ScheduleConfig {
            pull_every_minutes: 10,
            auto_wave_every_minutes: 0,
            minute_secs: 60,
        }
    }
}

impl ScheduleConfig {
    /// The pull interval; `None` when scheduled pulls are off.
    pub fn pull_every(&self) -> Option<std::time::Duration> {
        self.every(self.pull_every_minutes)
    }

    /// The auto-wave interval; `None` when the auto-wave is off.
    pub fn auto_wave_every(&self) -> Option<std::time::Duration> {
        self.every(self.auto_wave_every_minutes)
    }

    fn every(&self, minutes: u64) -> Option<std::time::Duration> {
        (minutes > 0).then(|| {
            std::time::Duration::from_secs(minutes.saturating_mul(self.minute_secs.max(1)))
        })
    }
}

/// How long recipients' personal data is kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// `station purge` removes recipient and buyer personal data of orders
    /// handed over more than this many days ago.
    pub retention_days: u32,
}

impl Default for PrivacyConfig {
    fn default() -> PrivacyConfig {
        PrivacyConfig { retention_days: 90 }
    }
}

/// The day's rhythm: the courier's cut-off and the shop's ship promise.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    /// The courier's last pickup of the day (截单时间), local `HH:MM`. After it,
    /// parcels still in the warehouse leave tomorrow.
    pub cutoff: String,
    /// The ship promise: hand over within this many hours of payment.
    pub promise_hours: u32,
    /// Warn this many hours before an order would break the promise.
    pub warn_hours: u32,
}

impl Default for DispatchConfig {
    fn default() -> DispatchConfig {
        DispatchConfig {
            cutoff: "17:00".into(),
            promise_hours: 24,
            warn_hours: 4,
        }
    }
}

impl DispatchConfig {
    /// The cut-off as a time of day (`check` validated it at load).
    pub fn cutoff_time(&self) -> chrono::NaiveTime {
        chrono::NaiveTime::parse_from_str(&self.cutoff, "%H:%M")
            .unwrap_or(chrono::NaiveTime::from_hms_opt(17, 0, 0).expect("valid"))
    }
}

/// The packing bench (验货打包).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BenchConfig {
    /// Every item must be scanned before the waybill packs the parcel; `false`
    /// lets a bench pack with the slip and the waybill alone.
    pub require_item_scans: bool,
    /// How long the bench waits for the shop when it re-reads an order before
    /// packing; past it, the bench goes on with the last known state and says so.
    pub shop_check_timeout_ms: u64,
    /// A weighed parcel may differ from its items' `weight_g` sum by this
    /// share of the sum plus `weight_tolerance_g` (packing, tape, the slip);
    /// further off is a STOP (a missing or extra item). Items without a
    /// weight skip the check.
    pub weight_tolerance_pct: u32,
    pub weight_tolerance_g: u64,
    /// `[bench.scale]`: a scale on a serial port of the machine `serve` runs on.
    pub scale: Option<ScaleConfig>,
}

impl Default for BenchConfig {
    fn default() -> BenchConfig {
        BenchConfig {
            require_item_scans: true,
            shop_check_timeout_ms: 1500,
            weight_tolerance_pct: 15,
            weight_tolerance_g: 50,
            scale: None,
        }
    }
}

/// Every key a config file may have: those of the defaults, plus the optional
/// tables and keys that are absent by default (and so not in the defaults).
fn known_keys() -> toml::Table {
    let mut known = toml::Table::try_from(Config::default()).expect("defaults serialise");
    let mut scale = toml::Table::try_from(ScaleConfig::default()).expect("defaults serialise");
    scale.insert("bench".into(), toml::Value::String(String::new()));
    if let Some(toml::Value::Table(bench)) = known.get_mut("bench") {
        bench.insert("scale".into(), toml::Value::Table(scale));
    }
    known
}

/// `[bench.scale]`: a bench scale sending its reading continuously over a
/// serial port (`ST,GS,+0001.25kg`, `+  1.250 kg`, …). `serve` reads it, the
/// page shows the live weight, and a waybill scan at that bench packs with
/// the latest steady reading.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScaleConfig {
    /// The serial port: `/dev/ttyUSB0`, `/dev/ttyS0`, `/dev/serial/by-id/…`.
    pub device: String,
    pub baud: u32,
    /// The bench the scale stands at; absent: every bench of this `serve`.
    pub bench: Option<String>,
    /// A reading older than this is not used (the scale stopped sending).
    pub max_age_ms: u64,
}

impl Default for ScaleConfig {
    fn default() -> ScaleConfig {
        ScaleConfig {
            device: String::new(),
            baud: 9600,
            bench: None,
            max_age_ms: 2000,
        }
    }
}

/// `[handover]`: what a parcel needs before it goes into a courier's batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HandoverConfig {
    /// Only parcels checked at a packing bench (slip, items, waybill) may be
    /// handed over; `false` for shops that do not check at a bench.
    pub require_packed: bool,
}

impl Default for HandoverConfig {
    fn default() -> HandoverConfig {
        HandoverConfig {
            require_packed: true,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrintConfig {
    /// Printed on packing slips.
    pub shop_name: String,
    /// Courier for orders without a preference (or preferring one not configured).
    pub default_courier: String,
    /// Label printer resolution: barcodes snap to whole dots (203 or 300).
    pub dpi: u32,
    /// Template names (`templates/NAME.toml`, else built in) or file paths.
    pub waybill_template: String,
    pub slip_template: String,
    /// The handover manifest (交接单).
    pub manifest_template: String,
    /// Waves are written under this directory, one `wave-NNNN/` each.
    pub out_dir: String,
    /// Orders per PDF file (one waybill file and one slip file per chunk).
    pub chunk_size: usize,
    /// A wave's lease, in seconds: renewed with every chunk; a print that
    /// died on another machine holds its wave this long before another
    /// station's `print` finishes it (one on this machine: at once).
    pub lease_secs: u32,
    /// Privacy waybill masking: `standard` (GB/T 41833-2022) or `strict`.
    pub mask: crate::render::mask::MaskLevel,
    /// No prices on any packing slip (no price column, no total). Per order,
    /// the shop's `hide_prices` or a buyer message or memo asking for it
    /// ("不要价格", "#无价格", a gift) hides them too.
    pub hide_prices: bool,
    /// What a wave's files are: `pdf`, or `zpl` / `tspl` for thermal printers
    /// (one 1-bit raster per label at the printer's dpi; `--format` overrides).
    pub format: Format,
    /// The pick list (拣货单) written with every wave: `picklist-NNNN.pdf`.
    pub picklist: bool,
    pub picklist_template: String,
    /// Merged parcels (合并发货): a buyer's orders to one recipient (same
    /// courier, service and urgency) printed in one wave ship as one parcel.
    pub merge: bool,
}

/// A wave's file format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Pdf,
    Zpl,
    Tspl,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Zpl => "zpl",
            Format::Tspl => "tspl",
        }
    }

    /// The printer language, for a thermal format.
    pub fn language(self) -> Option<crate::render::thermal::Language> {
        match self {
            Format::Pdf => None,
            Format::Zpl => Some(crate::render::thermal::Language::Zpl),
            Format::Tspl => Some(crate::render::thermal::Language::Tspl),
        }
    }

    pub fn of_language(l: crate::render::thermal::Language) -> Format {
        match l {
            crate::render::thermal::Language::Zpl => Format::Zpl,
            crate::render::thermal::Language::Tspl => Format::Tspl,
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pdf" => Ok(Format::Pdf),
            "zpl" => Ok(Format::Zpl),
            "tspl" => Ok(Format::Tspl),
            other => Err(format!("{other:?} is not a format: pdf, zpl or tspl")),
        }
    }
}

/// `[picking]`: where the goods are, for the pick list's walking order.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PickingConfig {
    /// A CSV file of `sku,location` lines (a header line is allowed), read
    /// after the `[[locations]]` entries (which win for the same SKU).
    pub locations_csv: String,
}

/// `[[locations]]`: a shelf (库位) for a SKU (`sku`, exact) or for every SKU
/// starting with `prefix`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Location {
    pub sku: String,
    pub prefix: String,
    pub location: String,
}

impl Default for PrintConfig {
    fn default() -> PrintConfig {
        PrintConfig {
            shop_name: "我的小店".into(),
            default_courier: "ZTO".into(),
            dpi: 203,
            waybill_template: "waybill-100x150".into(),
            slip_template: "slip-a6".into(),
            manifest_template: "manifest-a4".into(),
            out_dir: "labels".into(),
            chunk_size: 100,
            lease_secs: 60,
            mask: crate::render::mask::MaskLevel::Standard,
            hide_prices: false,
            format: Format::Pdf,
            picklist: true,
            picklist_template: "picklist-a4".into(),
            merge: true,
        }
    }
}

/// Printing through CUPS. A document kind whose queue is empty is written as
/// PDF files only (and counts as printed once the file is on disk, as
/// without any printer); with a queue, it counts as printed only when CUPS
/// reports its job completed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrintersConfig {
    /// The CUPS scheduler (IPP over HTTP).
    pub cups_url: String,
    /// Queue for the waves' waybills (`station print --printer` overrides).
    pub waybill: String,
    /// Queue for the waves' packing slips (`--slip-printer` overrides).
    pub slip: String,
    /// Queue for handover manifests (`station handover close --printer`).
    pub manifest: String,
    /// Queue for reprints at a bench (F2) and `station reprint` (`--printer` overrides).
    pub bench: String,
    /// A job that makes no progress this long — not printing (or printing
    /// while the printer reports trouble: media-empty, offline, an `-error`
    /// reason), its printer not paused — is cancelled and its orders
    /// reported not printed.
    pub job_timeout_secs: u64,
    /// How long a job waits for a paused printer (`cupsdisable`, a paper change).
    pub paused_wait_secs: u64,
    /// How often a job's state is asked.
    pub poll_ms: u64,
    /// Thermal printers driven directly (no CUPS): named like queues in
    /// `--printer` and the roles above.
    pub raw: Vec<RawPrinterConfig>,
}

/// `[[printers.raw]]`: a ZPL or TSPL label printer on a raw TCP port
/// (JetDirect, `socket://HOST:9100`) or a USB device (`usb:///dev/usb/lp0`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrinterConfig {
    pub name: String,
    pub uri: String,
    /// `zpl` or `tspl`.
    pub language: crate::render::thermal::Language,
    /// 203 or 300.
    #[serde(default = "default_raw_dpi")]
    pub dpi: u32,
}

fn default_raw_dpi() -> u32 {
    203
}

impl PrintersConfig {
    /// The raw printer of that name, if it is one.
    pub fn raw(&self, name: &str) -> Option<&RawPrinterConfig> {
        self.raw.iter().find(|r| r.name == name)
    }
}

impl Default for PrintersConfig {
    fn default() -> PrintersConfig {
        PrintersConfig {
            cups_url: "http://localhost:631".into(),
            waybill: String::new(),
            slip: String::new(),
            manifest: String::new(),
            bench: String::new(),
            job_timeout_secs: 120,
            paused_wait_secs: 1800,
            poll_ms: 300,
            raw: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShopConfig {
    pub url: String,
    /// Never read from the file; see [`Config::load`].
    #[serde(skip)]
    pub token: Secret,
    pub page_size: u32,
    /// One HTTP request may take this long before it counts as a timeout.
    pub request_timeout_secs: u64,
    /// A whole pull (all pages and retries) gives up after this long.
    pub total_timeout_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlagConfig {
    /// Orders carrying this flag (and paid) are pulled into the print queue.
    pub pull: Flag,
    /// Handed-over orders are moved to this flag.
    pub done: Flag,
    /// Orders set aside at the bench (out of stock, 缺货) are moved to this flag,
    /// so customer service can call the buyer.
    pub exception: Flag,
    /// Orders whose parcel came back at returns intake (退货登记) are moved to
    /// this flag (the after-sales flag) with a memo saying what came back.
    pub returns: Flag,
}

/// `[sender]`: who ships (printed on every waybill). Defined by `render`, which prints it.
pub use crate::render::Sender;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Courier {
    /// Contract code: ZTO, YTO, STO, YD, SF, EMS, JD, JT, or a shop's own.
    pub code: String,
    /// Name printed on labels (中通).
    pub name: String,
    /// Where this courier's tracking numbers come from: its `pool` (the
    /// default), or its e-waybill service (`service`, Waybill API v1).
    #[serde(default)]
    pub source: Source,
    #[serde(default)]
    pub pool: Pool,
    /// The e-waybill service's base URL (`source = "service"`).
    #[serde(default)]
    pub service_url: String,
    /// The environment variable holding the service's token (never the token itself).
    #[serde(default)]
    pub token_env: String,
    /// The token, read from `token_env` at load; never printed or serialised.
    #[serde(skip)]
    pub token: Secret,
    /// Calls to the service in flight at once (each takes up to 10 numbers).
    #[serde(default = "default_service_in_flight")]
    pub max_in_flight: usize,
    /// The courier that takes an order this one refuses as out of its area
    /// (超区, `unreachable`); empty: such an order is set aside.
    #[serde(default)]
    pub fallback: String,
}

fn default_service_in_flight() -> usize {
    4
}

/// Where a courier's numbers come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A range or a file of numbers the courier issued (`[couriers.pool]`).
    #[default]
    Pool,
    /// The courier's e-waybill service (电子面单), asked per parcel.
    Service,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Pool => "pool",
            Source::Service => "service",
        }
    }
}

impl Courier {
    /// A courier whose numbers come from a pool (the default set-up).
    pub fn with_pool(code: &str, name: &str, pool: Pool) -> Courier {
        Courier {
            code: code.into(),
            name: name.into(),
            source: Source::Pool,
            pool,
            service_url: String::new(),
            token_env: String::new(),
            token: Secret::default(),
            max_in_flight: default_service_in_flight(),
            fallback: String::new(),
        }
    }

    pub fn is_service(&self) -> bool {
        self.source == Source::Service
    }
}

/// A courier's tracking numbers (运单号): either a range (`prefix` followed by
/// `start..=end` zero-padded to `digits`), or, when `file` is set, the numbers
/// the courier issued, one per line, used in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pool {
    pub prefix: String,
    pub start: u64,
    pub end: u64,
    pub digits: u32,
    /// A file of numbers issued by the courier; overrides the range when set.
    pub file: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            shop: ShopConfig::default(),
            flags: FlagConfig::default(),
            time_zone: "Asia/Shanghai".into(),
            sender: Sender::default(),
            print: PrintConfig::default(),
            printers: PrintersConfig::default(),
            bench: BenchConfig::default(),
            handover: HandoverConfig::default(),
            dispatch: DispatchConfig::default(),
            privacy: PrivacyConfig::default(),
            outbox: OutboxConfig::default(),
            schedule: ScheduleConfig::default(),
            couriers: [
                ("ZTO", "中通"),
                ("YTO", "圆通"),
                ("STO", "申通"),
                ("YD", "韵达"),
                ("SF", "顺丰"),
                ("EMS", "邮政EMS"),
                ("JD", "京东"),
                ("JT", "极兔"),
            ]
            .into_iter()
            .enumerate()
            .map(|(i, (code, name))| {
                // Demo ranges, one distinct prefix per courier; a warehouse
                // replaces them with the ranges or files its couriers issue,
                // or with its couriers' e-waybill services.
                Courier::with_pool(
                    code,
                    name,
                    Pool {
                        prefix: format!("99{}", 10 + i),
                        start: 1,
                        end: 99_999_999,
                        digits: 8,
                        file: String::new(),
                    },
                )
            })
            .collect(),
            picking: PickingConfig::default(),
            locations: Vec::new(),
            serve: ServeConfig::default(),
            operators: Vec::new(),
        }
    }
}

impl Default for ShopConfig {
    fn default() -> ShopConfig {
        ShopConfig {
            url: "http://127.0.0.1:8700".into(),
            token: Secret::default(),
            page_size: 100,
            request_timeout_secs: 10,
            total_timeout_secs: 120,
        }
    }
}

impl Default for FlagConfig {
    fn default() -> FlagConfig {
        FlagConfig {
            pull: Flag::Yellow,
            done: Flag::Green,
            exception: Flag::Blue,
            returns: Flag::Blue,
        }
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config {origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// Values given on the command line; `None` means "not given".
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub shop_url: Option<String>,
}

/// Where the settings came from, for `--verbose` and error messages.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    pub file: Option<PathBuf>,
    pub warnings: Vec<String>,
}

/// A config file holding operators' PIN hashes must not be readable by every
/// user of the machine (the hashes could be attacked offline).
fn refuse_world_readable_pins(path: &Path, config: &Config) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let holds_pins = config.operators.iter().any(|o| !o.pin_hash.is_empty());
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        if holds_pins && mode & 0o004 != 0 {
            return Err(ConfigError::Invalid {
                origin: path.display().to_string(),
                message: format!(
                    "this file holds operators' PIN hashes and every user can read it (mode {:o}): run `chmod 600 {}`",
                    mode & 0o777,
                    path.display()
                ),
            });
        }
    }
    let _ = (path, config);
    Ok(())
}

impl Config {
    /// Load the layered configuration. `explicit` is `--config PATH`: it must
    /// exist. Without it, `./station.toml` is used when present.
    pub fn load(
        explicit: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<Loaded, ConfigError> {
        let default_path = Path::new("station.toml");
        let file = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None if default_path.exists() => Some(default_path.to_path_buf()),
            None => None,
        };
        let mut warnings = Vec::new();
        let mut config = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let config = Config::from_toml(&text, path, &mut warnings)?;
                refuse_world_readable_pins(path, &config)?;
                config
            }
            None => Config::default(),
        };

        // Environment.
        if let Some(url) = env("STATION_SHOP_URL") {
            config.shop.url = url;
        }
        if let Some(token) = env("STATION_SHOP_TOKEN") {
            config.shop.token = Secret::new(token);
        }
        for (var, slot) in [
            ("STATION_PULL_FLAG", &mut config.flags.pull),
            ("STATION_DONE_FLAG", &mut config.flags.done),
            ("STATION_EXCEPTION_FLAG", &mut config.flags.exception),
            ("STATION_RETURNS_FLAG", &mut config.flags.returns),
        ] {
            if let Some(v) = env(var) {
                *slot = Flag::parse(&v).ok_or_else(|| ConfigError::Invalid {
                    origin: var.into(),
                    message: format!(
                        "{v:?} is not a flag (none, red, yellow, green, blue, purple)"
                    ),
                })?;
            }
        }
        // Each e-waybill service's token, from the variable its courier names.
        for c in &mut config.couriers {
            if !c.token_env.is_empty()
                && let Some(token) = env(&c.token_env)
            {
                c.token = Secret::new(token);
            }
        }
        if let Some(tz) = env("STATION_TIME_ZONE") {
            config.time_zone = tz;
        }
        if let Some(url) = env("STATION_CUPS_URL") {
            config.printers.cups_url = url;
        }
        // For tests only: a schedule "minute" of this many seconds.
        if let Some(v) = env("STATION_SCHEDULE_MINUTE_SECS") {
            config.schedule.minute_secs =
                v.trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConfigError::Invalid {
                        origin: "STATION_SCHEDULE_MINUTE_SECS".into(),
                        message: format!("{v:?} is not a whole number of seconds (1 or more)"),
                    })?;
        }

        // Flags.
        if let Some(url) = &overrides.shop_url {
            config.shop.url = url.clone();
        }

        config.check()?;
        Ok(Loaded {
            config,
            file,
            warnings,
        })
    }

    /// Parse a config file's text. Unknown keys become warnings, not errors:
    /// the file is read with the unknown keys removed.
    pub fn from_toml(
        text: &str,
        path: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<Config, ConfigError> {
        let mut value: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Some(shop) = value.get_mut("shop").and_then(|v| v.as_table_mut())
            && shop.remove("token").is_some()
        {
            warnings.push(format!(
                "{}: shop.token is ignored; give the token in the environment variable STATION_SHOP_TOKEN so it never sits in a file",
                path.display()
            ));
        }
        prune_unknown(&mut value, &known_keys(), "", path, warnings);
        Config::deserialize(toml::Value::Table(value)).map_err(|e| ConfigError::Invalid {
            origin: path.display().to_string(),
            message: e.to_string().trim().to_string(),
        })
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            origin: "settings".into(),
            message,
        };
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(invalid(format!(
                "time_zone {:?} is not an IANA time zone (e.g. Asia/Shanghai)",
                self.time_zone
            )));
        }
        if !(1..=500).contains(&self.shop.page_size) {
            return Err(invalid(format!(
                "shop.page_size must be 1..500, got {}",
                self.shop.page_size
            )));
        }
        if !self.shop.url.starts_with("http://") && !self.shop.url.starts_with("https://") {
            return Err(invalid(format!(
                "shop.url must start with http:// or https://, got {:?}",
                self.shop.url
            )));
        }
        if self.print.dpi < 100 || self.print.dpi > 1200 {
            return Err(invalid(format!(
                "print.dpi must be a printer resolution like 203 or 300, got {}",
                self.print.dpi
            )));
        }
        if !(5..=3600).contains(&self.print.lease_secs) {
            return Err(invalid(format!(
                "print.lease_secs must be between 5 and 3600 seconds, got {}",
                self.print.lease_secs
            )));
        }
        if self.print.chunk_size == 0 {
            return Err(invalid("print.chunk_size must be at least 1".into()));
        }
        if self.courier(&self.print.default_courier).is_none() {
            return Err(invalid(format!(
                "print.default_courier {:?} is not one of the configured [[couriers]]",
                self.print.default_courier
            )));
        }
        for c in &self.couriers {
            let origin = format!("couriers {}", c.code);
            let bad = |message: String| ConfigError::Invalid {
                origin: origin.clone(),
                message,
            };
            if c.is_service() {
                if !c.service_url.starts_with("http://") && !c.service_url.starts_with("https://") {
                    return Err(bad(format!(
                        "source = \"service\" needs service_url, the e-waybill service's address (http:// or https://), got {:?}",
                        c.service_url
                    )));
                }
                if c.token_env.trim().is_empty() {
                    return Err(bad(
                        "source = \"service\" needs token_env, the environment variable that holds the service's token (e.g. \"STATION_ZTO_WAYBILL_TOKEN\")".into(),
                    ));
                }
                if !(1..=64).contains(&c.max_in_flight) {
                    return Err(bad(format!(
                        "max_in_flight must be 1..64, got {}",
                        c.max_in_flight
                    )));
                }
            }
            let fb = &c.fallback;
            if !fb.is_empty() && (fb == &c.code || self.courier(fb).is_none()) {
                return Err(bad(format!(
                    "fallback {fb:?} must be another of the configured [[couriers]]"
                )));
            }
        }
        if self.flags.exception == self.flags.pull {
            return Err(invalid(format!(
                "flags.exception and flags.pull are both {}: out-of-stock orders would be pulled again at once",
                self.flags.pull
            )));
        }
        let serve = &self.serve;
        if !["", "off", "self-signed"].contains(&serve.tls.as_str()) {
            return Err(invalid(format!(
                "serve.tls must be \"self-signed\" or \"off\" (or left out: TLS from tls_cert and tls_key when they are set), got {:?}",
                serve.tls
            )));
        }
        if serve.tls_cert.trim().is_empty() != serve.tls_key.trim().is_empty() {
            return Err(invalid(
                "serve.tls_cert and serve.tls_key go together: give both PEM files (the certificate and its private key), or neither".into(),
            ));
        }
        if serve.tls == "off" && !serve.tls_cert.trim().is_empty() {
            return Err(invalid(
                "serve.tls is \"off\" but serve.tls_cert is set: remove one of them".into(),
            ));
        }
        if !(1..=256).contains(&self.outbox.max_in_flight) {
            return Err(invalid(format!(
                "outbox.max_in_flight must be 1..256, got {}",
                self.outbox.max_in_flight
            )));
        }
        if let Some(scale) = &self.bench.scale {
            if scale.device.trim().is_empty() {
                return Err(invalid(
                    "bench.scale.device must name the scale's serial port, e.g. \"/dev/ttyUSB0\""
                        .into(),
                ));
            }
            if scale.baud == 0 || scale.max_age_ms == 0 {
                return Err(invalid(
                    "bench.scale.baud and bench.scale.max_age_ms must be positive".into(),
                ));
            }
        }
        if self.flags.returns == self.flags.pull {
            return Err(invalid(format!(
                "flags.returns and flags.pull are both {}: returned orders would be pulled and printed again",
                self.flags.pull
            )));
        }
        if chrono::NaiveTime::parse_from_str(&self.dispatch.cutoff, "%H:%M").is_err() {
            return Err(invalid(format!(
                "dispatch.cutoff must be a local time like \"17:00\", got {:?}",
                self.dispatch.cutoff
            )));
        }
        if self.dispatch.promise_hours == 0 {
            return Err(invalid("dispatch.promise_hours must be at least 1".into()));
        }
        if self.flags.pull == self.flags.done {
            return Err(invalid(format!(
                "flags.pull and flags.done are both {}: handed-over orders would be pulled again",
                self.flags.pull
            )));
        }
        if self.shop.request_timeout_secs == 0 || self.shop.total_timeout_secs == 0 {
            return Err(invalid("shop timeouts must be at least 1 second".into()));
        }
        let p = &self.printers;
        if p.job_timeout_secs < 5 {
            return Err(invalid(format!(
                "printers.job_timeout_secs must be at least 5 (seconds a job may show no progress \
                 before it is cancelled as stalled), got {}",
                p.job_timeout_secs
            )));
        }
        for r in &p.raw {
            if !r.uri.starts_with("socket://") && !r.uri.starts_with("usb://") {
                return Err(invalid(format!(
                    "printers.raw {:?}: uri must be socket://HOST:PORT (raw TCP, port 9100) or usb:///dev/usb/lp0, got {:?}",
                    r.name, r.uri
                )));
            }
            if !(100..=1200).contains(&r.dpi) {
                return Err(invalid(format!(
                    "printers.raw {:?}: dpi must be the printer's resolution (203 or 300), got {}",
                    r.name, r.dpi
                )));
            }
        }
        if p.paused_wait_secs == 0 {
            return Err(invalid(
                "printers.paused_wait_secs must be at least 1 (seconds a job waits for a paused printer)"
                    .into(),
            ));
        }
        let s = &self.schedule;
        for (key, minutes) in [
            ("schedule.pull_every_minutes", s.pull_every_minutes),
            (
                "schedule.auto_wave_every_minutes",
                s.auto_wave_every_minutes,
            ),
        ] {
            if minutes > 7 * 24 * 60 {
                return Err(invalid(format!(
                    "{key} must be 0 (off) or a number of minutes up to a week (10080), got {minutes}"
                )));
            }
        }
        let o = &self.outbox;
        if [o.send_timeout_secs, o.retry_first_secs, o.interval_secs].contains(&0) {
            return Err(invalid(
                "outbox.send_timeout_secs, outbox.retry_first_secs and outbox.interval_secs must be at least 1".into(),
            ));
        }
        if o.retry_max_secs < o.retry_first_secs {
            return Err(invalid(format!(
                "outbox.retry_max_secs ({}) must be at least outbox.retry_first_secs ({})",
                o.retry_max_secs, o.retry_first_secs
            )));
        }
        Ok(())
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        // `check` ran at load time.
        self.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai)
    }

    pub fn courier(&self, code: &str) -> Option<&Courier> {
        self.couriers.iter().find(|c| c.code == code)
    }
}

/// Remove keys that the defaults do not have, warning about each. Arrays of
/// tables are checked against the first element of the default array.
fn prune_unknown(
    table: &mut toml::Table,
    known: &toml::Table,
    prefix: &str,
    path: &Path,
    warnings: &mut Vec<String>,
) {
    let mut unknown = Vec::new();
    for (key, value) in table.iter_mut() {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (value, known.get(key)) {
            (_, None) if key == "token" && prefix == "shop" => {}
            (_, None) => unknown.push((key.clone(), full)),
            (toml::Value::Table(t), Some(toml::Value::Table(k))) => {
                prune_unknown(t, k, &full, path, warnings)
            }
            (toml::Value::Array(items), Some(toml::Value::Array(k))) => {
                if let Some(toml::Value::Table(shape)) = k.first() {
                    for (i, item) in items.iter_mut().enumerate() {
                        if let toml::Value::Table(t) = item {
                            prune_unknown(t, shape, &format!("{full}[{i}]"), path, warnings);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for (key, full) in unknown {
        warnings.push(format!(
            "{}: unknown key `{full}` ignored (check its spelling)",
            path.display()
        ));
        table.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)], o: Overrides) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("station.toml");
        std::fs::write(&path, text).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(
            Some(&path),
            &|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            &o,
        )
    }

    #[test]
    fn layers_override_in_order() {
        let l = load(
            "[shop]\nurl = \"http://file:1\"\npage_size = 50\n[flags]\npull = \"purple\"\n",
            &[
                ("STATION_SHOP_URL", "http://env:2"),
                ("STATION_SHOP_TOKEN", "s3cret"),
            ],
            Overrides {
                shop_url: Some("http://flag:3".into()),
            },
        )
        .unwrap();
        assert_eq!(l.config.shop.url, "http://flag:3");
        assert_eq!(l.config.shop.page_size, 50);
        assert_eq!(l.config.flags.pull, Flag::Purple);
        assert_eq!(l.config.flags.done, Flag::Green);
        assert_eq!(l.config.shop.token.expose(), "s3cret");
        assert_eq!(
            format!("{:?}", l.config),
            format!("{:?}", l.config).replace("s3cret", "?")
        );

        let l = load(
            "[shop]\nurl = \"http://file:1\"\n",
            &[("STATION_SHOP_URL", "http://env:2")],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(l.config.shop.url, "http://env:2");
    }

    #[test]
    fn unknown_keys_warn_and_token_in_file_is_ignored() {
        let l = load(
            "tme_zone = \"UTC\"\n[shop]\ntoken = \"leak\"\nurll = \"x\"\n[[couriers]]\ncode = \"ZTO\"\nname = \"中通\"\ncolour = \"red\"\n",
            &[],
            Overrides::default(),
        )
        .unwrap();
        let w = l.warnings.join("\n");
        assert!(w.contains("`tme_zone`"), "{w}");
        assert!(w.contains("`shop.urll`"), "{w}");
        assert!(w.contains("`couriers[0].colour`"), "{w}");
        assert!(w.contains("STATION_SHOP_TOKEN"), "{w}");
        assert!(!w.contains("leak"));
        assert!(l.config.shop.token.is_empty());
        assert_eq!(l.config.couriers.len(), 1);
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = load("time_zone = \"Mars/Base\"\n", &[], Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("time_zone"), "{e}");
        let e = load("[print]\nlease_secs = 1\n", &[], Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("print.lease_secs"), "{e}");
        let l = load("[print]\nlease_secs = 30\n", &[], Overrides::default()).unwrap();
        assert_eq!(l.config.print.lease_secs, 30);
        let e = load("[flags]\npull = \"orange\"\n", &[], Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("orange"), "{e}");
        let e = load("[shop\n", &[], Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not valid TOML"), "{e}");
        for (toml, key) in [
            (
                "[printers]\njob_timeout_secs = 0\n",
                "printers.job_timeout_secs",
            ),
            (
                "[printers]\npaused_wait_secs = 0\n",
                "printers.paused_wait_secs",
            ),
        ] {
            let e = load(toml, &[], Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn the_sample_file_is_the_defaults_and_has_no_unknown_keys() {
        let text = include_str!("../station.example.toml");
        let mut warnings = Vec::new();
        let c = Config::from_toml(text, Path::new("station.example.toml"), &mut warnings).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let d = Config::default();
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
        // Its commented-out scale, switched on, is a known table with known keys.
        let on = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with("[bench.scale]")
                        || l.starts_with("# device")
                        || l.starts_with("# baud")
                        || l.starts_with("# bench =")
                        || l.starts_with("# max_age_ms") =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::from_toml(&on, Path::new("station.example.toml"), &mut warnings).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let scale = c.bench.scale.expect("[bench.scale] read");
        assert_eq!(
            (
                scale.device.as_str(),
                scale.baud,
                scale.bench.as_deref(),
                scale.max_age_ms
            ),
            ("/dev/ttyUSB0", 9600, Some("1号台"), 2000)
        );
    }
}
