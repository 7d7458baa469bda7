//! `station print`: a print wave (波次) from the queue to PDF files on disk.
//!
//! The steps, each durable before the next starts:
//! 1. **plan** — pick the queued orders (urgent first, then by payment time),
//!    choose each one's courier, allocate every tracking number, and commit the
//!    wave (`store::plan_wave`); nothing has rendered yet;
//! 2. **render** — chunks of `chunk_size` orders become one waybill PDF and one
//!    slip PDF each, rendered in parallel on all cores;
//! 3. **write** — each file goes to a temporary name, is synced, then renamed;
//!    only then is the chunk recorded and its orders marked printed.
//!
//! A crash anywhere leaves an open wave; the next `print` finishes it first
//! with the same numbers and overwrites any half-written chunk. An order that
//! cannot render is set aside with its reason and the rest of its chunk prints.

use crate::config::{Config, Courier, Format};
use crate::intake::State;
use crate::order::Order;
use crate::render::barcode::Dpi;
use crate::render::layout::context::DocInput;
use crate::render::layout::{Rendered, Template};
use crate::store::{ChunkFiles, Store, Wave, WaveOrder, WavePlan};
use anyhow::{Context, Result, bail};
use chrono::Utc;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

/// The templates shipped with the station, used when `templates/NAME.toml`
/// does not exist in the working directory (a shop edits its own copy there).
const BUILTIN_TEMPLATES: &[(&str, &str)] = &[
    (
        "waybill-100x150",
        include_str!("../templates/waybill-100x150.toml"),
    ),
    (
        "waybill-76x130",
        include_str!("../templates/waybill-76x130.toml"),
    ),
    (
        "waybill-100x180",
        include_str!("../templates/waybill-100x180.toml"),
    ),
    ("slip-a6", include_str!("../templates/slip-a6.toml")),
    ("slip-a5", include_str!("../templates/slip-a5.toml")),
    ("manifest-a4", include_str!("../templates/manifest-a4.toml")),
    ("picklist-a4", include_str!("../templates/picklist-a4.toml")),
];

/// Load a template by name or path: an existing file wins, then
/// `templates/NAME.toml`, then the built-in copy.
pub fn load_template(name: &str, dpi: Dpi) -> Result<Template> {
    let as_path = Path::new(name);
    if as_path.extension().is_some() || as_path.exists() {
        return Ok(Template::load(as_path, dpi)?);
    }
    let local = Path::new("templates").join(format!("{name}.toml"));
    if local.exists() {
        return Ok(Template::load(&local, dpi)?);
    }
    match BUILTIN_TEMPLATES.iter().find(|(n, _)| *n == name) {
        Some((n, src)) => Ok(Template::parse(
            n,
            &format!("(built-in) templates/{n}.toml"),
            src,
            dpi,
        )?),
        None => bail!(crate::error::UsageError(format!(
            "no template {name:?}: give a file path or one of {}",
            BUILTIN_TEMPLATES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[derive(Clone, Debug)]
pub struct PrintOptions {
    pub limit: Option<usize>,
    pub courier: Option<String>,
    pub waybill_template: String,
    pub slip_template: String,
    pub out_dir: PathBuf,
    pub chunk_size: usize,
    /// CUPS queues the chunks go to; `None`: the `[printers]` config.
    pub targets: Option<Targets>,
    /// Who hears about print jobs (a progress line per printer); `None`:
    /// a line on stderr when a job waits for a paused printer.
    pub watch: Option<WatchHandle>,
    /// List every printed order in the report (`--json` needs the list; a
    /// count is enough elsewhere, and a 50,000-order list is memory held for
    /// the whole wave).
    pub list_orders: bool,
    /// Write the wave's pick list (`picklist-NNNN.pdf`) with its labels.
    pub picklist: bool,
    /// What the wave's files are (`pdf`, `zpl`, `tspl`); a resumed wave keeps its own.
    pub format: crate::config::Format,
    /// Merge one buyer's orders to one recipient into one parcel (合并发货,
    /// `print.merge`; `--no-merge` turns it off for one print).
    pub merge: bool,
    /// Print only these queued orders, in a wave of their own, and leave any
    /// open wave alone (a split parcel's reprint).
    pub only: Option<Vec<String>>,
}

/// A [`crate::printer::Watch`] shared with the caller.
#[derive(Clone)]
pub struct WatchHandle(pub std::sync::Arc<dyn crate::printer::Watch + Send + Sync>);

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchHandle")
    }
}

/// Which CUPS queues a wave's documents go to. Empty lists: PDF files only
/// (a chunk then counts as printed once its files are on disk). Several
/// queues take the chunks in turn (round-robin by chunk): a big sale's wave
/// spread over several printers.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    pub waybill: Vec<String>,
    pub slip: Vec<String>,
}

impl Targets {
    pub fn from_config(p: &crate::config::PrintersConfig) -> Targets {
        let one = |q: &str| (!q.is_empty()).then(|| q.to_string()).into_iter().collect();
        Targets {
            waybill: one(&p.waybill),
            slip: one(&p.slip),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.waybill.is_empty() && self.slip.is_empty()
    }

    fn for_chunk(list: &[String], chunk: u64) -> Option<&str> {
        (!list.is_empty()).then(|| list[chunk as usize % list.len()].as_str())
    }
}

impl PrintOptions {
    /// The whole queue with the configured templates, written under `out_dir`.
    pub fn from_config(print: &crate::config::PrintConfig, out_dir: PathBuf) -> PrintOptions {
        PrintOptions {
            limit: None,
            courier: None,
            waybill_template: print.waybill_template.clone(),
            slip_template: print.slip_template.clone(),
            out_dir,
            chunk_size: print.chunk_size,
            targets: None,
            watch: None,
            list_orders: true,
            picklist: print.picklist,
            format: print.format,
            merge: print.merge,
            only: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PrintedOrder {
    pub order_id: String,
    pub courier: String,
    pub tracking_no: String,
    pub waybill_file: String,
    pub waybill_page: u64,
    pub slip_file: String,
    pub slip_page: u64,
    /// Its place in the wave (the report lists orders in wave order).
    #[serde(skip)]
    pub seq: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PrintReport {
    pub wave: Option<i64>,
    /// True when this run finished a wave an earlier run left open.
    pub resumed: bool,
    /// Every printed order, in wave order (empty unless `list_orders`).
    pub orders: Vec<PrintedOrder>,
    /// How many orders are printed in this wave (listed or not).
    #[serde(skip)]
    pub printed: usize,
    /// How many labels (parcels) they took: fewer than `printed` when orders
    /// were merged (合并发货).
    pub parcels: usize,
    #[serde(skip)]
    list_orders: bool,
    /// Orders that could not be rendered, with the reason; they stay queued.
    pub failed: Vec<(String, String)>,
    /// Orders printed with a problem to look at (missing glyph, overflowing text).
    pub warnings: Vec<(String, String)>,
    pub files: Vec<String>,
    pub pages: usize,
    pub bytes: u64,
    pub elapsed_ms: u64,
    /// Jobs sent to CUPS (empty without printers), in the order they ended.
    pub jobs: Vec<crate::printer::JobReport>,
    /// Orders whose chunk's job failed or stalled: not printed; the wave stays
    /// open and the next `print` sends them again with the same numbers.
    pub not_printed: Vec<NotPrinted>,
    /// The wave's pick list (拣货单 + 格位表), when one was written.
    pub picklist: Option<String>,
    /// Why the pick list could not be written (the labels are printed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picklist_problem: Option<String>,
    /// How long writing the pick list took.
    #[serde(skip)]
    pub picklist_ms: u64,
}

/// Orders held by a job that did not complete.
#[derive(Clone, Debug, Serialize)]
pub struct NotPrinted {
    pub printer: String,
    pub kind: String,
    pub cups_job: Option<i32>,
    pub orders: Vec<String>,
    pub reason: String,
}

/// "waybill on zebra-2 (job 41): reason"
impl std::fmt::Display for NotPrinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.kind, self.printer)?;
        if let Some(job) = self.cups_job {
            write!(f, " (job {job})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// The courier an order ships with: its own preference when the warehouse
/// ships with that courier, else the configured default.
pub fn courier_for<'c>(order: &Order, config: &'c Config) -> Result<&'c Courier> {
    if let Some(c) = order
        .shipping
        .courier
        .as_deref()
        .and_then(|code| config.courier(code))
    {
        return Ok(c);
    }
    config
        .courier(&config.print.default_courier)
        .with_context(|| {
            format!(
                "print.default_courier {:?} is not one of the configured couriers",
                config.print.default_courier
            )
        })
}

/// What a wave does with an order: ship it with a courier, or set it aside.
pub enum Choice<'c> {
    Ship(&'c Courier),
    /// Every courier it could go with refused it (超区 with no fallback, a bad
    /// address): the reason; it stays queued until the order changes.
    SetAside(String),
}

/// The courier an order ships with, after its e-waybill services' refusals:
/// one that refused this version of the order as out of its area
/// (`unreachable`) hands it to its `fallback`; any other refusal, or one with
/// no fallback, sets the order aside.
pub fn choose_courier<'c>(store: &Store, order: &Order, config: &'c Config) -> Result<Choice<'c>> {
    let mut courier = courier_for(order, config)?;
    let mut tried = vec![courier.code.as_str()];
    loop {
        // Only a service refuses; a pool courier's order needs no look-up.
        if !courier.is_service() {
            return Ok(Choice::Ship(courier));
        }
        let Some((code, message)) =
            store.waybill_refusal(&order.id, order.version, &courier.code)?
        else {
            return Ok(Choice::Ship(courier));
        };
        let next = (code == "unreachable")
            .then(|| config.courier(&courier.fallback))
            .flatten()
            .filter(|c| !tried.contains(&c.code.as_str()));
        match next {
            Some(c) => {
                courier = c;
                tried.push(c.code.as_str());
            }
            None => {
                let hint = if code == "unreachable" {
                    format!(
                        "set `fallback = \"YTO\"` (another courier) on {} in station.toml, or have customer service choose another courier",
                        courier.code
                    )
                } else {
                    "have customer service correct the address; the order prints once the shop sends the new version".into()
                };
                return Ok(Choice::SetAside(format!(
                    "{} ({}) refused it: {code}: {message}; {hint}",
                    courier.name, courier.code
                )));
            }
        }
    }
}

/// Numbers from the e-waybill services for the picked orders of service
/// couriers, before the wave is planned. An order a service refuses goes to
/// its fallback courier (asked in the next round) or is set aside; a service
/// that fails (no balance, down) stops the wave with its error, keeping every
/// number already taken for the next print.
fn take_service_numbers<'c>(
    store: &mut Store,
    config: &'c Config,
    mut picked: Vec<(String, &'c Courier)>,
    set_aside: &mut Vec<(String, String)>,
    operator: &str,
) -> Result<Vec<(String, &'c Courier)>> {
    for _round in 0..=config.couriers.len() {
        let refs: Vec<(&str, &Courier)> = picked.iter().map(|(id, c)| (id.as_str(), *c)).collect();
        let took = crate::courier::take::take_numbers(store, config, &refs, operator)?;
        if let Some((code, e)) = took.failed.into_iter().next() {
            let waiting = picked.iter().filter(|(_, c)| c.code == code).count();
            return Err(anyhow::Error::new(e).context(format!(
                "the wave was not printed: {code}'s e-waybill service gave no numbers ({waiting} orders of {code} in this wave; numbers already taken are kept and used by the next `station print`)"
            )));
        }
        if took.refused.is_empty() {
            break;
        }
        let refused: std::collections::HashSet<&str> =
            took.refused.iter().map(|r| r.order_id.as_str()).collect();
        let mut next = Vec::with_capacity(picked.len());
        for (id, courier) in picked {
            if !refused.contains(id.as_str()) {
                next.push((id, courier));
                continue;
            }
            let Some(stored) = store.order(&id)? else {
                continue;
            };
            match choose_courier(store, &stored.order, config)? {
                Choice::Ship(c) => next.push((id, c)),
                Choice::SetAside(why) => set_aside.push((id, why)),
            }
        }
        picked = next;
    }
    Ok(picked)
}

/// A waybill without its sender's name, phone and address is refused by the
/// courier: no wave or reprint prints one (a usage error naming `sender`).
pub fn check_sender(config: &Config) -> Result<()> {
    let missing = config.sender.missing();
    if missing.is_empty() {
        return Ok(());
    }
    bail!(crate::error::UsageError(format!(
        "sender: the waybill's 寄件人 needs {} (missing: sender.{}); a courier refuses a parcel without them. Set them in station.toml:\n[sender]\nname = \"…\"\nphone = \"…\"\naddress = \"…\"",
        "name, phone and address",
        missing.join(", sender.")
    )))
}

/// Print a wave: finish an open one first, else plan a new one from the queue.
pub fn print(
    store: &mut Store,
    config: &Config,
    opts: &PrintOptions,
    operator: &str,
    progress: &dyn Fn(usize, usize),
) -> Result<PrintReport> {
    check_sender(config)?;
    // At WARN, so the warnings it holds carry it under the default filter.
    let _span = tracing::warn_span!("wave", operator).entered();
    let started = Instant::now();
    let dpi = Dpi(config.print.dpi);
    let targets = opts
        .targets
        .clone()
        .unwrap_or_else(|| Targets::from_config(&config.printers));
    let stderr_watch = crate::printer::StderrWatch::default();
    let watch: &dyn crate::printer::Watch = match &opts.watch {
        Some(w) => &*w.0,
        None => &stderr_watch,
    };
    let mut printing = (!targets.is_empty())
        .then(|| crate::printer::Printing::new(&config.printers, operator, watch));
    if let Some(p) = &printing {
        // A missing or refusing queue is found before anything is planned
        // (raw printers are asked their status before each chunk).
        let queues: Vec<&str> = targets
            .waybill
            .iter()
            .chain(&targets.slip)
            .map(String::as_str)
            .filter(|q| config.printers.raw(q).is_none())
            .collect();
        if !queues.is_empty() {
            p.check(&queues)?;
        }
    }
    check_format(config, &targets, opts.format)?;
    store.set_wave_lease(config.print.lease_secs);
    // Orders no courier takes (refused by its e-waybill service): reported, left queued.
    let mut set_aside: Vec<(String, String)> = Vec::new();
    let open = match opts.only {
        None => store.claim_open_wave()?,
        Some(_) => None,
    };
    let (mut wave, resumed) = match open {
        Some(w) => (w, true),
        None => {
            let mut queue = store.queue_for_wave()?;
            if let Some(only) = &opts.only {
                queue.retain(|id| only.contains(id));
            }
            let mut picked: Vec<(Order, &Courier)> = Vec::new();
            for id in queue {
                let Some(stored) = store.order(&id)? else {
                    continue;
                };
                let courier = match choose_courier(store, &stored.order, config)? {
                    Choice::Ship(c) => c,
                    Choice::SetAside(why) => {
                        set_aside.push((id, why));
                        continue;
                    }
                };
                if opts.courier.as_deref().is_some_and(|c| c != courier.code) {
                    continue;
                }
                if opts.limit.is_some_and(|n| picked.len() >= n) {
                    break;
                }
                picked.push((stored.order, courier));
            }
            // One buyer's orders to one recipient become one parcel (合并发货).
            let mut parcels = crate::parcel::group(picked, opts.merge);
            if !parcels.is_empty() {
                // Load the templates before committing anything: a broken
                // template must not leave a planned wave (or numbers taken
                // from a service) behind.
                load_template(&opts.waybill_template, dpi)?;
                load_template(&opts.slip_template, dpi)?;
                // A parcel's lead takes its number; its orders follow the lead
                // (to its fallback courier too: they go to the same address).
                let leads = parcels
                    .iter()
                    .map(|(ids, c)| (ids[0].clone(), *c))
                    .collect();
                let leads = take_service_numbers(store, config, leads, &mut set_aside, operator)?;
                let mut by_lead: std::collections::HashMap<String, Vec<String>> = parcels
                    .into_iter()
                    .map(|(ids, _)| (ids[0].clone(), ids))
                    .collect();
                parcels = leads
                    .into_iter()
                    .map(|(lead, c)| (by_lead.remove(&lead).unwrap_or_else(|| vec![lead]), c))
                    .collect();
                for (lead, ids) in by_lead {
                    for id in ids.into_iter().skip(1) {
                        let why = format!("merged with order {lead}, which was set aside");
                        set_aside.push((id, why));
                    }
                }
            }
            if parcels.is_empty() {
                return Ok(PrintReport {
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    failed: set_aside,
                    ..Default::default()
                });
            }
            let out_dir = opts.out_dir.display().to_string();
            let plan = WavePlan {
                out_dir: &out_dir,
                waybill_template: &opts.waybill_template,
                slip_template: &opts.slip_template,
                chunk_size: opts.chunk_size.max(1) as u64,
                format: opts.format,
                parcels: parcels
                    .iter()
                    .map(|(ids, c)| (ids.iter().map(String::as_str).collect(), *c))
                    .collect(),
            };
            let planned = store.plan_wave(&plan, operator)?;
            crate::crash::point("wave.planned");
            (planned, false)
        }
    };
    // A wave an earlier print left open is finished in its own format.
    check_format(config, &targets, wave.format)?;
    // The wave's order list is handed over, not borrowed: run_wave drops each
    // chunk's rows once it is printed, so they are not held for the whole wave.
    let orders = std::mem::take(&mut wave.orders);
    let mut report = run_wave(
        store,
        config,
        &wave,
        orders,
        opts.list_orders,
        operator,
        progress,
        &targets,
        printing.as_mut(),
    )?;
    if opts.picklist && report.printed > 0 {
        // The labels are printed whatever happens to the pick list: a problem
        // with it is reported, and `station picklist WAVE` writes it again.
        let t = Instant::now();
        match write_picklist(store, config, wave.id) {
            Ok(path) => report.picklist = Some(path.display().to_string()),
            Err(e) => {
                let why = format!(
                    "the pick list of wave {} was not written: {}; the labels are printed — fix it and run `station picklist {}`",
                    wave.id,
                    crate::error::one_line(&e),
                    wave.id
                );
                tracing::warn!("{why}");
                report.picklist_problem = Some(why);
            }
        }
        report.picklist_ms = t.elapsed().as_millis() as u64;
    }
    report.resumed = resumed;
    report.failed.extend(set_aside);
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Now in the warehouse's time zone, as documents print it ("2026-11-11 09:30").
fn printed_at(config: &Config) -> String {
    Utc::now()
        .with_timezone(&config.tz())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Write (or write again) a wave's pick list next to its labels:
/// `wave-NNNN/picklist-NNNN.pdf`, the pick lines in shelf order then the slot
/// table, for the wave's printed orders. Returns its path.
pub fn write_picklist(store: &Store, config: &Config, wave_id: i64) -> Result<PathBuf> {
    let wave = store.wave(wave_id)?;
    let locations = crate::picking::Locations::from_config(config)?;
    let mut list = crate::picking::PickList::new(&locations);
    // A merged parcel's orders share its lead's slot (they go in one parcel).
    let mut lead: (&str, u64) = ("", 0);
    for o in wave.orders.iter().filter(|o| o.waybill_file.is_some()) {
        if o.tracking_no != lead.0 {
            lead = (&o.tracking_no, o.seq + 1);
        }
        if let Some(stored) = store.order(&o.order_id)? {
            list.add(lead.1, &stored.order, &o.tracking_no);
        }
    }
    let printed_at = printed_at(config);
    let context = list.finish(&wave.id.to_string(), printed_at, &config.print.shop_name);
    let template = load_template(&config.print.picklist_template, Dpi(config.print.dpi))?;
    if template.context_kind() != crate::render::layout::ContextKind::Picklist {
        bail!(crate::error::UsageError(format!(
            "print.picklist_template {:?} is not a pick-list template (it needs `context = \"picklist\"`, like templates/picklist-a4.toml)",
            config.print.picklist_template
        )));
    }
    let rendered = crate::render::layout::render_picklist(&template, &context)?;
    let dir = Path::new(&wave.out_dir).join(format!("wave-{:04}", wave.id));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("picklist-{:04}.pdf", wave.id));
    write_atomically(&path, &rendered.pdf)?;
    Ok(path)
}

/// A raw printer speaks one language: a wave sent to it must be in it.
fn check_format(config: &Config, targets: &Targets, format: crate::config::Format) -> Result<()> {
    for name in targets.waybill.iter().chain(&targets.slip) {
        if let Some(raw) = config.printers.raw(name)
            && Some(raw.language) != format.language()
        {
            bail!(crate::error::UsageError(format!(
                "printer {name} speaks {}, but this wave is {}: print with `--format {}` (or set print.format = \"{}\"), or to a CUPS queue",
                raw.language.name(),
                format.as_str(),
                crate::config::Format::of_language(raw.language).as_str(),
                crate::config::Format::of_language(raw.language).as_str()
            )));
        }
    }
    Ok(())
}

/// The dpi documents for these printers are drawn at: a raw printer's own,
/// else `print.dpi`.
fn dpi_for(config: &Config, printers: &[String]) -> Dpi {
    printers
        .first()
        .and_then(|n| config.printers.raw(n))
        .map_or(Dpi(config.print.dpi), |r| Dpi(r.dpi))
}

/// One chunk ready to render: its orders with their data, in wave order.
struct Job {
    chunk: u64,
    members: Vec<(WaveOrder, Order)>,
}

struct Done {
    chunk: u64,
    /// The job's orders, handed back so the main thread can record them.
    members: Vec<(WaveOrder, Order)>,
    waybills: Rendered,
    slips: Rendered,
    /// Members that rendered (indices into the job's members) — the rest failed.
    ok: Vec<usize>,
    /// Per member of `ok`: the 1-based first page of its parcel's waybill and slip.
    pages: Vec<(u64, u64)>,
    failed: Vec<(String, String)>,
}

// The wave's inputs are each one thing the caller owns; a struct for them
// would only be built to be taken apart here.
#[allow(clippy::too_many_arguments)]
fn run_wave(
    store: &mut Store,
    config: &Config,
    wave: &Wave,
    orders: Vec<WaveOrder>,
    list_orders: bool,
    operator: &str,
    progress: &dyn Fn(usize, usize),
    targets: &Targets,
    mut printing: Option<&mut crate::printer::Printing<'_>>,
) -> Result<PrintReport> {
    let waybill = load_template(&wave.waybill_template, dpi_for(config, &targets.waybill))?;
    let slip = load_template(&wave.slip_template, dpi_for(config, &targets.slip))?;
    let format = wave.format;
    let dir = Path::new(&wave.out_dir).join(format!("wave-{:04}", wave.id));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let total = orders.len();
    let mut report = PrintReport {
        wave: Some(wave.id),
        list_orders,
        ..Default::default()
    };
    // Chunks still to print, as lightweight lists; each chunk's orders are read
    // from the store only when it is about to render, so memory stays flat
    // however large the wave.
    let mut chunks: Vec<(u64, Vec<WaveOrder>)> = Vec::new();
    let mut previous = String::new();
    for o in orders {
        if let (Some(wf), Some(sf)) = (&o.waybill_file, &o.slip_file) {
            let pages = (o.waybill_page.unwrap_or(1), o.slip_page.unwrap_or(1));
            report.printed += 1;
            if o.tracking_no != previous {
                report.parcels += 1;
                previous.clone_from(&o.tracking_no);
            }
            if list_orders {
                report
                    .orders
                    .push(printed(&o, wf.clone(), sf.clone(), pages.0, pages.1));
            }
            continue;
        }
        match chunks.last_mut() {
            Some((c, members)) if *c == o.chunk => members.push(o),
            _ => chunks.push((o.chunk, vec![o])),
        }
    }
    progress(report.printed, total);

    let printed_at = printed_at(config);
    let wave_name = format!("{}", wave.id);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(chunks.len().max(1));
    // Jobs go out through a shared receiver; results come back unbounded, so a
    // worker never blocks on a main thread that stopped on an error. The main
    // thread keeps at most two jobs per worker in flight.
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let (res_tx, res_rx) = mpsc::channel::<Result<Done>>();
    let job_rx = std::sync::Mutex::new(job_rx);
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..workers {
            let res_tx = res_tx.clone();
            let job_rx = &job_rx;
            let (waybill, slip, printed_at, wave_name) = (&waybill, &slip, &printed_at, &wave_name);
            s.spawn(move || {
                loop {
                    let job = job_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = job else { break };
                    let done =
                        render_chunk(job, waybill, slip, config, printed_at, wave_name, format);
                    if res_tx.send(done).is_err() {
                        break;
                    }
                }
            });
        }
        drop(res_tx);
        let job_tx = job_tx;
        let mut pending = chunks.into_iter();
        let mut in_flight = 0;
        // Orders are re-read as their chunk is about to render: one that left
        // the queue (refund, flag moved) or changed since the wave was planned
        // is not printed now; a changed one gets a fresh number in the next wave.
        let mut skipped: Vec<(String, String)> = Vec::new();
        let mut send_next = |store: &Store,
                             in_flight: &mut usize,
                             dispatched: &mut std::collections::VecDeque<u64>,
                             skipped: &mut Vec<(String, String)>|
         -> Result<()> {
            for (chunk, members) in pending.by_ref() {
                let mut loaded = Vec::with_capacity(members.len());
                // A merged parcel's rows are consecutive under one number, its
                // lead first: when the lead cannot print, its riders wait with it.
                let mut held: Option<(String, String)> = None;
                let mut previous: Option<String> = None;
                for o in members {
                    let lead = previous.as_deref() != Some(o.tracking_no.as_str());
                    previous = Some(o.tracking_no.clone());
                    if lead {
                        held = None;
                    } else if let Some((_, lead_id)) = &held {
                        skipped.push((
                            o.order_id.clone(),
                            format!("merged with order {lead_id}, which was not printed; prints in the next wave"),
                        ));
                        continue;
                    }
                    let stored = store.order(&o.order_id)?.with_context(|| {
                        format!("order {} vanished from the database", o.order_id)
                    })?;
                    let why = if !store.is_live_tracking(&o.tracking_no)? {
                        Some(format!(
                            "tracking number {} was voided after the wave was planned; prints in the next wave",
                            o.tracking_no
                        ))
                    } else if stored.state != State::Queued {
                        let why = stored.reason.as_deref().unwrap_or("");
                        Some(format!(
                            "left the queue after the wave was planned ({} {why})",
                            stored.state
                        ))
                    } else if stored.order.version != o.order_version {
                        Some(format!(
                            "changed after the wave was planned (v{} → v{}); prints in the next wave",
                            o.order_version, stored.order.version
                        ))
                    } else {
                        None
                    };
                    match why {
                        Some(why) => {
                            if lead {
                                held = Some((o.tracking_no.clone(), o.order_id.clone()));
                            }
                            skipped.push((o.order_id.clone(), why));
                        }
                        None => loaded.push((o, stored.order)),
                    }
                }
                if !loaded.is_empty() {
                    job_tx
                        .send(Job {
                            chunk,
                            members: loaded,
                        })
                        .ok();
                    *in_flight += 1;
                    dispatched.push_back(chunk);
                    break;
                }
            }
            Ok(())
        };
        // Chunks sent to render, in wave order: their files are written and
        // sent to the printers in this order, whichever finishes rendering first.
        let mut dispatched = std::collections::VecDeque::new();
        let mut ready: std::collections::BTreeMap<u64, Done> = Default::default();
        for _ in 0..workers * 2 {
            send_next(store, &mut in_flight, &mut dispatched, &mut skipped)?;
        }
        // Chunks whose jobs are in CUPS, oldest first, and how many may be.
        let mut in_cups: std::collections::VecDeque<(Written, Sent)> = Default::default();
        let window = {
            let mut queues: Vec<&String> = targets.waybill.iter().collect();
            queues.sort();
            queues.dedup();
            queues.len().max(1)
        };
        while in_flight > 0 {
            let got = res_rx.recv().context("a render worker stopped")??;
            in_flight -= 1;
            send_next(store, &mut in_flight, &mut dispatched, &mut skipped)?;
            ready.insert(got.chunk, got);
            while let Some(done) = dispatched.front().and_then(|c| ready.remove(c)) {
                dispatched.pop_front();
                report.failed.extend(done.failed.iter().cloned());
                if done.ok.is_empty() {
                    continue;
                }
                let ext = format.as_str();
                let waybill_path = dir.join(format!("waybills-{:04}.{ext}", done.chunk + 1));
                let slip_path = dir.join(format!("slips-{:04}.{ext}", done.chunk + 1));
                write_atomically(&waybill_path, &done.waybills.pdf)?;
                write_atomically(&slip_path, &done.slips.pdf)?;
                report.bytes += (done.waybills.pdf.len() + done.slips.pdf.len()) as u64;
                report.pages += done.waybills.pages + done.slips.pages;
                // Orders that failed to render are not part of this chunk's files.
                let written = Written {
                    chunk: done.chunk,
                    members: done.ok.iter().map(|&i| done.members[i].0.clone()).collect(),
                    pages: done.pages.clone(),
                    waybill_path,
                    slip_path,
                    warnings: done
                        .waybills
                        .warnings
                        .iter()
                        .chain(&done.slips.warnings)
                        .cloned()
                        .collect(),
                };
                match printing.as_deref_mut() {
                    None => record_chunk(store, wave, &mut report, &written, operator)?,
                    Some(p) => {
                        let started = start_jobs(p, store, config, wave, targets, &written)?;
                        in_cups.push_back((written, started));
                        // Up to `window` chunks wait in CUPS at once: the next
                        // chunk is queued (and the one after renders) while the
                        // printers print, and several printers print in parallel.
                        while in_cups.len() > window {
                            let (w, started) = in_cups.pop_front().expect("not empty");
                            finish_jobs(p, store, wave, &mut report, w, started, operator)?;
                        }
                    }
                }
                progress(report.printed, total);
            }
        }
        if let Some(p) = printing {
            while let Some((w, started)) = in_cups.pop_front() {
                finish_jobs(p, store, wave, &mut report, w, started, operator)?;
                progress(report.printed, total);
            }
        }
        report.failed.extend(skipped);
        Ok(())
    })?;
    for (id, reason) in &report.failed {
        store.record(operator, Some(id), "print.failed", reason)?;
    }
    if report.not_printed.is_empty() {
        store.close_wave(wave.id, operator)?;
    } else {
        // The wave stays open: the next `print` sends the orders of the jobs
        // that did not complete again, with the same numbers.
        store.release_wave_lease(wave.id)?;
    }
    report.orders.sort_by_key(|o| o.seq);
    Ok(report)
}

/// A chunk whose files are on disk, waiting to be recorded (after its jobs
/// completed, when it goes to printers).
struct Written {
    chunk: u64,
    /// The chunk's orders that rendered, in file order.
    members: Vec<WaveOrder>,
    pages: Vec<(u64, u64)>,
    waybill_path: PathBuf,
    slip_path: PathBuf,
    warnings: Vec<(String, String)>,
}

/// Record a chunk whose files are complete (and whose jobs, if any, completed):
/// its orders count as printed.
fn record_chunk(
    store: &mut Store,
    wave: &Wave,
    report: &mut PrintReport,
    w: &Written,
    operator: &str,
) -> Result<()> {
    let (wf, sf) = (
        w.waybill_path.display().to_string(),
        w.slip_path.display().to_string(),
    );
    let files = ChunkFiles {
        waybill_file: &wf,
        slip_file: &sf,
        pages: w.pages.clone(),
        warnings: &w.warnings,
    };
    let members: Vec<&WaveOrder> = w.members.iter().collect();
    let stale = store.finish_chunk(wave, &members, &files, operator)?;
    // A merged parcel's orders are consecutive under one number.
    let mut previous = "";
    for (o, (wp, sp)) in members.iter().zip(&w.pages) {
        if stale.contains(&o.order_id) {
            let why = "changed while its label rendered: not counted as printed; prints again in the next wave";
            report.failed.push((o.order_id.clone(), why.into()));
            continue;
        }
        report.printed += 1;
        if o.tracking_no != previous {
            report.parcels += 1;
            previous = &o.tracking_no;
        }
        if report.list_orders {
            report
                .orders
                .push(printed(o, wf.clone(), sf.clone(), *wp, *sp));
        }
    }
    report.files.push(wf);
    report.files.push(sf);
    for (id, warning) in &w.warnings {
        report.warnings.push((id.clone(), warning.clone()));
    }
    Ok(())
}

/// Send a chunk's documents to their queues (or find the jobs an interrupted
/// print sent). Both go out before either is waited for, so a waybill
/// printer and a slip printer print at the same time.
fn start_jobs(
    p: &mut crate::printer::Printing<'_>,
    store: &mut Store,
    config: &Config,
    wave: &Wave,
    targets: &Targets,
    w: &Written,
) -> Result<Sent> {
    let ids: Vec<String> = w.members.iter().map(|o| o.order_id.clone()).collect();
    let docs = [
        (
            "waybill",
            Targets::for_chunk(&targets.waybill, w.chunk),
            &w.waybill_path,
        ),
        (
            "slip",
            Targets::for_chunk(&targets.slip, w.chunk),
            &w.slip_path,
        ),
    ];
    let mut sent = Sent::default();
    for (kind, queue, file) in docs {
        let Some(queue) = queue else { continue };
        if let Some(raw) = config.printers.raw(queue) {
            // A raw printer takes the job while we wait: asked its status
            // first (ZPL), then sent; done only when it took every byte.
            if let Err(reason) = send_raw(raw, file) {
                sent.raw_failed.push(NotPrinted {
                    printer: queue.to_string(),
                    kind: kind.to_string(),
                    cups_job: None,
                    orders: ids.clone(),
                    reason,
                });
            }
            continue;
        }
        let doc = crate::printer::Doc {
            kind,
            printer: queue,
            file,
            orders: &ids,
        };
        sent.cups
            .push(p.start(store, Some((wave.id, w.chunk)), &doc)?);
    }
    Ok(sent)
}

/// A chunk's documents on their way: CUPS jobs to follow, and raw sends
/// that already failed.
#[derive(Default)]
struct Sent {
    cups: Vec<crate::printer::Started>,
    raw_failed: Vec<NotPrinted>,
}

/// Send one file to a raw thermal printer; the reason it did not go out.
fn send_raw(raw: &crate::config::RawPrinterConfig, file: &Path) -> Result<(), String> {
    let printer =
        crate::printer::raw::RawPrinter::new(&raw.name, &raw.uri, raw.language, Dpi(raw.dpi));
    if raw.language == crate::render::thermal::Language::Zpl {
        match printer.status() {
            Ok(st) => {
                if let Some(problem) = st.problem() {
                    return Err(format!("{problem}; nothing was sent"));
                }
            }
            Err(e) => return Err(format!("{e}; nothing was sent")),
        }
    }
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    printer.send(&bytes).map_err(|e| e.to_string())
}

/// Follow a chunk's jobs to their end: the chunk counts as printed only when
/// CUPS reports every one of them completed; otherwise its orders are
/// reported not printed and stay in the open wave.
fn finish_jobs(
    p: &mut crate::printer::Printing<'_>,
    store: &mut Store,
    wave: &Wave,
    report: &mut PrintReport,
    w: Written,
    sent: Sent,
    operator: &str,
) -> Result<()> {
    let mut all_out = sent.raw_failed.is_empty();
    report.not_printed.extend(sent.raw_failed);
    for st in sent.cups {
        let r = p.finish(store, st, &mut |s| Ok(s.renew_wave_lease(wave.id)?))?;
        if !r.completed() {
            all_out = false;
            report.not_printed.push(NotPrinted {
                printer: r.printer.clone(),
                kind: r.kind.clone(),
                cups_job: r.cups_job,
                orders: r.orders.clone(),
                reason: r.reason().to_string(),
            });
        }
        report.jobs.push(r);
    }
    if all_out {
        record_chunk(store, wave, report, &w, operator)?;
    }
    Ok(())
}

fn printed(
    o: &WaveOrder,
    waybill_file: String,
    slip_file: String,
    wp: u64,
    sp: u64,
) -> PrintedOrder {
    PrintedOrder {
        order_id: o.order_id.clone(),
        courier: o.courier.clone(),
        tracking_no: o.tracking_no.clone(),
        waybill_file,
        waybill_page: wp,
        slip_file,
        slip_page: sp,
        seq: o.seq,
    }
}

/// 1-based first page of each document, from pages per document.
fn first_pages(per_doc: &[usize]) -> Vec<u64> {
    let mut next = 1u64;
    per_doc
        .iter()
        .map(|&n| {
            let first = next;
            next += n as u64;
            first
        })
        .collect()
}

/// Render documents, containing a panic in the layout code to this one call.
///
/// A panic while laying out an order is a bug in the station, but it is one
/// order's bug: it becomes that render's error (and so, in a chunk rendered
/// one by one, that order's rejection), never the end of the whole wave.
fn render(
    template: &Template,
    inputs: &[DocInput<'_>],
    format: crate::config::Format,
) -> Result<Rendered> {
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for input in inputs {
            crate::crash::render_bug(&input.order.id);
        }
        match format.language() {
            None => crate::render::layout::render(template, inputs).map_err(anyhow::Error::from),
            Some(language) => {
                // One 1-bit raster per label at the template's (the printer's)
                // dpi, each one label of the printer's language, in one file.
                let r = crate::render::layout::render_raster(template, inputs)?;
                let mut bytes = Vec::new();
                for page in &r.pages {
                    bytes.extend(crate::render::thermal::encode(
                        page,
                        language,
                        template.dpi(),
                        crate::render::thermal::ZplData::Z64,
                    ));
                }
                Ok(Rendered {
                    pdf: bytes,
                    pages: r.pages.len(),
                    per_doc_pages: r.per_doc_pages,
                    warnings: r.warnings,
                })
            }
        }
    }));
    attempt.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Err(anyhow::anyhow!(
            "the station crashed laying out this order's {} ({what}); \
             it was set aside and the rest of the wave went on — please report it with the order",
            template.name()
        ))
    })
}

fn render_chunk(
    job: Job,
    waybill: &Template,
    slip: &Template,
    config: &Config,
    printed_at: &str,
    wave: &str,
    format: crate::config::Format,
) -> Result<Done> {
    // A merged parcel's orders are consecutive and share its number: one
    // waybill and one slip (the combined order) for all of them.
    let mut parcels: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, (w, _)) in job.members.iter().enumerate() {
        match parcels.last_mut() {
            Some(r) if job.members[r.start].0.tracking_no == w.tracking_no => r.end = i + 1,
            _ => parcels.push(i..i + 1),
        }
    }
    let combined: Vec<Option<(Order, Vec<crate::parcel::MergedOrder>)>> = parcels
        .iter()
        .map(|r| {
            (r.len() > 1).then(|| {
                let orders: Vec<&Order> = job.members[r.clone()].iter().map(|(_, o)| o).collect();
                (
                    crate::parcel::combined(orders[0], &orders[1..]),
                    orders
                        .iter()
                        .map(|o| crate::parcel::MergedOrder::of(o))
                        .collect(),
                )
            })
        })
        .collect();
    let (waybills, slips, ok, failed) = {
        let inputs: Vec<DocInput<'_>> = parcels
            .iter()
            .zip(&combined)
            .map(|(r, combined)| {
                let (w, own) = &job.members[r.start];
                let (order, merged) = match combined {
                    Some((order, merged)) => (order, merged.as_slice()),
                    None => (own, &[][..]),
                };
                DocInput {
                    order,
                    tracking_no: Some(&w.tracking_no),
                    courier_code: Some(&w.courier),
                    courier_name: config.courier(&w.courier).map(|c| c.name.as_str()),
                    sender: &config.sender,
                    routing: Some(&w.routing),
                    slot: Some(w.seq + 1),
                    merged,
                    printed_at: printed_at.to_string(),
                    wave: Some(wave),
                    hide_prices: config.print.hide_prices || order.wants_no_prices(),
                    shop_name: &config.print.shop_name,
                    mask: config.print.mask,
                    time_zone: config.tz(),
                }
            })
            .collect();
        // Fast path: the whole chunk at once. If any parcel fails, render one
        // by one so a single bad order never stops the others.
        match (
            render(waybill, &inputs, format),
            render(slip, &inputs, format),
        ) {
            (Ok(w), Ok(s)) => (w, s, (0..inputs.len()).collect::<Vec<_>>(), Vec::new()),
            _ => {
                let mut ok = Vec::new();
                let mut failed = Vec::new();
                for (p, input) in inputs.iter().enumerate() {
                    let one = std::slice::from_ref(input);
                    match (render(waybill, one, format), render(slip, one, format)) {
                        (Ok(_), Ok(_)) => ok.push(p),
                        (Err(e), _) | (_, Err(e)) => {
                            for (w, _) in &job.members[parcels[p].clone()] {
                                failed.push((w.order_id.clone(), e.to_string()));
                            }
                        }
                    }
                }
                if ok.is_empty() {
                    let none = || Rendered {
                        pdf: Vec::new(),
                        pages: 0,
                        per_doc_pages: Vec::new(),
                        warnings: Vec::new(),
                    };
                    (none(), none(), ok, failed)
                } else {
                    let good: Vec<DocInput<'_>> = ok.iter().map(|&p| inputs[p].clone()).collect();
                    (
                        render(waybill, &good, format)?,
                        render(slip, &good, format)?,
                        ok,
                        failed,
                    )
                }
            }
        }
    };
    // Every order of a rendered parcel, with its parcel's first pages.
    let firsts = first_pages(&waybills.per_doc_pages)
        .into_iter()
        .zip(first_pages(&slips.per_doc_pages));
    let mut members = Vec::new();
    let mut pages = Vec::new();
    for (p, first) in ok.iter().zip(firsts) {
        for m in parcels[*p].clone() {
            members.push(m);
            pages.push(first);
        }
    }
    Ok(Done {
        chunk: job.chunk,
        members: job.members,
        waybills,
        slips,
        ok: members,
        pages,
        failed,
    })
}

/// Write to a temporary name, sync, then rename: a reader (or a crash) never
/// sees a half-written PDF under the final name.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("pdf.tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    crate::crash::point("wave.pdf.written");
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} into place", tmp.display()))?;
    crate::crash::point("wave.pdf.renamed");
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// A reprint's waybill and slip files, and the render warnings.
type Reprinted = (PathBuf, PathBuf, Vec<(String, String)>);

/// Write a reprint's label and slip under `out_dir/reprints/` and send them
/// to `printer` (else the bench's queue): the documents of `ids` (one order,
/// or a merged parcel's orders, the lead first). Done only when every job
/// completed. Returns the waybill's and the slip's paths and the render warnings.
fn write_reprint(
    store: &mut Store,
    config: &Config,
    input: &DocInput<'_>,
    ids: &[String],
    out_dir: &Path,
    operator: &str,
    printer: Option<&str>,
) -> Result<Reprinted> {
    let order_id = ids[0].as_str();
    let number = input.tracking_no.unwrap_or_default();
    let dpi = Dpi(config.print.dpi);
    let waybill = load_template(&config.print.waybill_template, dpi)?;
    let slip = load_template(&config.print.slip_template, dpi)?;
    let w = render(&waybill, std::slice::from_ref(input), Format::Pdf)?;
    let sl = render(&slip, std::slice::from_ref(input), Format::Pdf)?;
    let dir = out_dir.join("reprints");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stamp = Utc::now().format("%Y%m%d%H%M%S");
    let wf = dir.join(format!("{order_id}-{}-{stamp}-waybill.pdf", number));
    let sf = dir.join(format!("{order_id}-{}-{stamp}-slip.pdf", number));
    write_atomically(&wf, &w.pdf)?;
    write_atomically(&sf, &sl.pdf)?;
    // To a printer (`--printer`, else the bench's queue): the order counts as
    // printed only when CUPS reports both jobs completed.
    let queue = printer
        .filter(|q| !q.is_empty())
        .or((!config.printers.bench.is_empty()).then_some(config.printers.bench.as_str()));
    if let Some(raw) = queue.and_then(|q| config.printers.raw(q)) {
        // A thermal printer without CUPS: the label and slip again in its
        // language at its dpi, beside the PDFs, sent as raw jobs.
        let format = Format::of_language(raw.language);
        let dpi = Dpi(raw.dpi);
        let mut failed = Vec::new();
        for (kind, template) in [
            ("waybill", &config.print.waybill_template),
            ("slip", &config.print.slip_template),
        ] {
            let t = load_template(template, dpi)?;
            let r = render(&t, std::slice::from_ref(input), format)?;
            let file = dir.join(format!(
                "{order_id}-{}-{stamp}-{kind}.{}",
                number,
                format.as_str()
            ));
            write_atomically(&file, &r.pdf)?;
            if let Err(reason) = send_raw(raw, &file) {
                failed.push(format!("{kind} on {}: {reason}", raw.name));
            }
        }
        if !failed.is_empty() {
            bail!(crate::printer::JobFailed(format!(
                "order {order_id}: the reprint did not come out ({}); it is not counted as printed — reprint again when the printer works",
                failed.join("; ")
            )));
        }
    } else if let Some(queue) = queue {
        let watch = crate::printer::StderrWatch::default();
        let mut p = crate::printer::Printing::new(&config.printers, operator, &watch);
        p.check(&[queue])?;
        let mut started = Vec::new();
        for (kind, file) in [("reprint-waybill", &wf), ("reprint-slip", &sf)] {
            let doc = crate::printer::Doc {
                kind,
                printer: queue,
                file,
                orders: ids,
            };
            started.push(p.start(store, None, &doc)?);
        }
        let mut failed = Vec::new();
        for st in started {
            let r = p.finish(store, st, &mut |_| Ok(()))?;
            if !r.completed() {
                failed.push(format!("{} on {}: {}", r.kind, r.printer, r.reason()));
            }
        }
        if !failed.is_empty() {
            bail!(crate::printer::JobFailed(format!(
                "order {order_id}: the reprint did not come out ({}); it is not counted as printed — reprint again when the printer works",
                failed.join("; ")
            )));
        }
    }
    let mut warnings = w.warnings;
    warnings.extend(sl.warnings);
    Ok((wf, sf, warnings))
}

/// Reprint a merged parcel (its orders, the lead first). While every order
/// is still as printed, the same parcel again under its number (a torn or
/// lost label). Otherwise the parcel is split: its number is voided, the
/// orders that refunded or closed stay out, and the rest (changed ones at
/// their new version) are printed now as a parcel again, merged as a wave
/// would merge them, with a new number.
fn reprint_parcel(
    store: &mut Store,
    config: &Config,
    ids: &[String],
    out_dir: &Path,
    operator: &str,
    printer: Option<&str>,
) -> Result<PrintedOrder> {
    let mut orders = Vec::with_capacity(ids.len());
    for id in ids {
        orders.push(
            store
                .order(id)?
                .with_context(|| format!("order {id} vanished from the database"))?,
        );
    }
    let lead = &ids[0];
    let number = store
        .live_number(lead)?
        .with_context(|| format!("the parcel of order {lead} has no live number"))?;
    let printed_at = printed_at(config);
    if orders
        .iter()
        .all(|o| matches!(o.state, State::Printed | State::Packed))
    {
        let riders: Vec<&Order> = orders[1..].iter().map(|o| &o.order).collect();
        let combined = crate::parcel::combined(&orders[0].order, &riders);
        let merged: Vec<crate::parcel::MergedOrder> = orders
            .iter()
            .map(|o| crate::parcel::MergedOrder::of(&o.order))
            .collect();
        let routing = store.routing(&number.number)?;
        let courier = config.courier(&number.courier).with_context(|| {
            format!(
                "courier {} of parcel {} is not in the config",
                number.courier, number.number
            )
        })?;
        let input = DocInput {
            order: &combined,
            tracking_no: Some(&number.number),
            courier_code: Some(&courier.code),
            courier_name: Some(&courier.name),
            sender: &config.sender,
            routing: Some(&routing),
            slot: store.slot_of(lead)?,
            merged: &merged,
            printed_at,
            wave: None,
            hide_prices: config.print.hide_prices || combined.wants_no_prices(),
            shop_name: &config.print.shop_name,
            mask: config.print.mask,
            time_zone: config.tz(),
        };
        let (wf, sf, warnings) =
            write_reprint(store, config, &input, ids, out_dir, operator, printer)?;
        store.record(
            operator,
            Some(lead),
            "print.reprinted",
            &format!(
                "{} {} (same number; parcel of orders {}): {}",
                courier.code,
                number.number,
                ids.join(", "),
                wf.display()
            ),
        )?;
        for (id, warning) in &warnings {
            store.record(operator, Some(id), "print.warning", warning)?;
        }
        return Ok(PrintedOrder {
            order_id: lead.clone(),
            courier: courier.code.clone(),
            tracking_no: number.number,
            waybill_file: wf.display().to_string(),
            waybill_page: 1,
            slip_file: sf.display().to_string(),
            slip_page: 1,
            seq: 1,
        });
    }
    // Split: what changed reprints, what refunded or closed stays out.
    let (keep, out): (Vec<_>, Vec<_>) = orders.iter().partition(|o| {
        matches!(
            o.state,
            State::Printed | State::Packed | State::ChangedAfterPrint
        )
    });
    let why: Vec<String> = orders
        .iter()
        .filter(|o| !matches!(o.state, State::Printed | State::Packed))
        .map(|o| {
            format!(
                "order {} {}{}",
                o.order.id,
                o.state,
                o.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let keep: Vec<String> = keep.iter().map(|o| o.order.id.clone()).collect();
    store.split_parcel(
        &number.number,
        &keep,
        &format!("parcel split: {}", why.join("; ")),
        operator,
    )?;
    if keep.is_empty() {
        bail!(crate::error::UsageError(format!(
            "parcel {}: no order of it can ship ({}): set the parcel aside",
            number.number,
            why.join("; ")
        )));
    }
    // The rest, at once, as a wave of their own (merged again where they still may).
    let queue = printer
        .filter(|q| !q.is_empty())
        .or((!config.printers.bench.is_empty()).then_some(config.printers.bench.as_str()));
    let mut opts = PrintOptions::from_config(&config.print, out_dir.to_path_buf());
    opts.only = Some(keep.clone());
    opts.picklist = false;
    opts.format = Format::Pdf;
    opts.targets = Some(match queue {
        Some(q) => {
            if let Some(raw) = config.printers.raw(q) {
                opts.format = Format::of_language(raw.language);
            }
            Targets {
                waybill: vec![q.to_string()],
                slip: vec![q.to_string()],
            }
        }
        None => Targets::default(),
    });
    let report = print(store, config, &opts, operator, &|_, _| {})?;
    let left_out = out
        .iter()
        .map(|o| o.order.id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    store.record(
        operator,
        Some(lead),
        "print.split",
        &format!(
            "parcel {} split ({}): {} reprinted, {} left out",
            number.number,
            why.join("; "),
            keep.join(", "),
            if left_out.is_empty() {
                "none"
            } else {
                &left_out
            }
        ),
    )?;
    match report.orders.into_iter().min_by_key(|o| o.seq) {
        Some(p) => Ok(p),
        None => {
            let mut reasons: Vec<String> = report
                .failed
                .iter()
                .map(|(id, why)| format!("{id}: {why}"))
                .collect();
            reasons.extend(report.not_printed.iter().map(|n| n.to_string()));
            bail!(crate::printer::JobFailed(format!(
                "parcel {} was split and its orders ({}) went back to the queue, but the new label did not print ({}): run `station print`",
                number.number,
                keep.join(", "),
                reasons.join("; ")
            )))
        }
    }
}

/// `station reprint`: the order's label and slip again, into
/// `out_dir/reprints/`. An unchanged order keeps its number (重打); an order
/// that changed after print gets a new number and the old one is voided, and
/// the new version counts as printed. An intercepted order is refused.
pub fn reprint(
    store: &mut Store,
    config: &Config,
    order_id: &str,
    out_dir: &Path,
    operator: &str,
    printer: Option<&str>,
) -> Result<PrintedOrder> {
    check_sender(config)?;
    let Some(stored) = store.order(order_id)? else {
        bail!(crate::error::UsageError(format!(
            "order {order_id} is not in the database: pull it first"
        )));
    };
    // A merged parcel's orders share one label: it is reprinted whole.
    let parcel = store.parcel_orders(order_id)?;
    if parcel.len() > 1 {
        return reprint_parcel(store, config, &parcel, out_dir, operator, printer);
    }
    match stored.state {
        State::Printed | State::ChangedAfterPrint | State::Packed => {}
        State::Intercept => bail!(crate::error::UsageError(format!(
            "order {order_id} is intercepted ({}): do not ship it, so no new label",
            stored.reason.as_deref().unwrap_or("see station status")
        ))),
        other => bail!(crate::error::UsageError(format!(
            "order {order_id} is {other}, not printed: print it with `station print`"
        ))),
    }
    let courier = match choose_courier(store, &stored.order, config)? {
        Choice::Ship(c) => c.clone(),
        Choice::SetAside(why) => bail!(crate::error::UsageError(format!(
            "order {order_id}: no courier takes it: {why}"
        ))),
    };
    // Committed before rendering, like a wave: the same number for an
    // unchanged order, a new one (and the old voided) for a changed one.
    // A label already printed for this order keeps its number (it may have
    // been uploaded to the shop) unless the order changed after print.
    let live = store
        .tracking_numbers(order_id)?
        .into_iter()
        .find(|t| t.state == "allocated");
    let allocation = match live {
        Some(t) if matches!(stored.state, State::Printed | State::Packed) => {
            crate::store::Allocation {
                order_id: order_id.into(),
                courier: t.courier,
                number: t.number,
                reused: true,
                voided: None,
            }
        }
        _ => {
            if courier.is_service() {
                let took = crate::courier::take::take_numbers(
                    store,
                    config,
                    &[(order_id, &courier)],
                    operator,
                )?;
                if let Some((_, e)) = took.failed.into_iter().next() {
                    return Err(e.into());
                }
                if let Some(r) = took.refused.first() {
                    bail!(crate::error::UsageError(format!(
                        "order {order_id}: {} refused it: {}: {}; run the reprint again to try its fallback courier, or have customer service correct the order",
                        r.courier, r.code, r.message
                    )));
                }
            }
            store.allocate(&[(order_id, &courier)], operator)?.remove(0)
        }
    };
    let routing = store.routing(&allocation.number)?;
    let courier = config
        .courier(&allocation.courier)
        .cloned()
        .unwrap_or(courier);
    let printed_at = printed_at(config);
    let input = DocInput {
        order: &stored.order,
        tracking_no: Some(&allocation.number),
        courier_code: Some(&courier.code),
        courier_name: Some(&courier.name),
        sender: &config.sender,
        routing: Some(&routing),
        slot: store.slot_of(order_id)?,
        merged: &[],
        printed_at,
        wave: None,
        hide_prices: config.print.hide_prices || stored.order.wants_no_prices(),
        shop_name: &config.print.shop_name,
        mask: config.print.mask,
        time_zone: config.tz(),
    };
    let (wf, sf, warnings) = write_reprint(
        store,
        config,
        &input,
        std::slice::from_ref(&order_id.to_string()),
        out_dir,
        operator,
        printer,
    )?;
    store.mark_printed(order_id, operator)?;
    let detail = match (&allocation.voided, allocation.reused) {
        (_, true) => format!(
            "{} {} (same number): {}",
            courier.code,
            allocation.number,
            wf.display()
        ),
        (Some(old), false) => format!(
            "{} {} (new number; {old} voided): {}",
            courier.code,
            allocation.number,
            wf.display()
        ),
        (None, false) => format!(
            "{} {} (new number): {}",
            courier.code,
            allocation.number,
            wf.display()
        ),
    };
    store.record(operator, Some(order_id), "print.reprinted", &detail)?;
    for (id, warning) in &warnings {
        store.record(operator, Some(id), "print.warning", warning)?;
    }
    Ok(PrintedOrder {
        order_id: order_id.into(),
        courier: courier.code,
        tracking_no: allocation.number,
        waybill_file: wf.display().to_string(),
        waybill_page: 1,
        slip_file: sf.display().to_string(),
        slip_page: 1,
        seq: 1,
    })
}
