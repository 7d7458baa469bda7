//! `station handover open|scan|close|show`: the courier handover (交接) and its manifest.

use super::Ctx;
use anyhow::{Result, bail};
use station::shop::client::{Purpose, ShopClient};
use station::store::Store;
use std::path::Path;

pub fn run(ctx: &Ctx, cmd: station::cli::HandoverCommand) -> Result<()> {
    use station::cli::HandoverCommand;
    use station::handover;
    let mut store = Store::open_existing(&ctx.db)?;
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
            let shop = ShopClient::from_config(&ctx.config, Purpose::Check).ok();
            let s = super::runtime()?.block_on(handover::scan(
                &mut store,
                shop.as_ref(),
                &ctx.config,
                batch.as_deref(),
                &code,
                &ctx.operator,
            ))?;
            if ctx.json {
                println!("{}", serde_json::to_string(&s)?);
            } else if s.accepted {
                println!("OK {}", s.message);
            }
            if s.accepted {
                Ok(())
            } else {
                Err(station::error::Refused(format!("refused {}: {}", s.code, s.message)).into())
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
                let watch = station::printer::StderrWatch::default();
                station::printer::Printing::new(&ctx.config.printers, &ctx.operator, &watch)
                    .check(&[queue])?;
            }
            let shop = ShopClient::from_config(&ctx.config, Purpose::Check).ok();
            let c = super::runtime()?.block_on(handover::close(
                &mut store,
                shop.as_ref(),
                &ctx.config,
                batch.as_deref(),
                &ctx.operator,
                &out_dir,
            ))?;
            if ctx.json {
                println!("{}", serde_json::to_string(&c)?);
            } else {
                for r in &c.removed {
                    eprintln!(
                        "TAKE OUT {} (order {}): {} — it is not handed over",
                        r.tracking_no, r.order_id, r.reason
                    );
                }
                if c.shop == station::pull::ShopCheck::Unreachable {
                    eprintln!(
                        "the shop did not answer before the close: {} closed on their last known state: {}",
                        if c.unchecked.len() == 1 {
                            "this order"
                        } else {
                            "these orders"
                        },
                        c.unchecked.join(", ")
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
                let watch = station::printer::StderrWatch::default();
                let mut p =
                    station::printer::Printing::new(&ctx.config.printers, &ctx.operator, &watch);
                let orders: Vec<String> = Vec::new();
                let r = p.print_one(
                    &mut store,
                    &station::printer::Doc {
                        kind: "manifest",
                        printer: &queue,
                        file: Path::new(&c.manifest),
                        orders: &orders,
                    },
                )?;
                if !r.completed() {
                    bail!(station::printer::JobFailed(format!(
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
