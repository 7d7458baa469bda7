//! `station scan`: one scan at a packing bench (验货), for scripts and terminals.

use super::Ctx;
use anyhow::Result;
use station::shop::client::{Purpose, ShopClient};
use station::store::Store;

pub async fn run(ctx: &Ctx, bench: &str, code: &str, weight: Option<&str>) -> Result<()> {
    let weight_g = weight
        .map(|w| {
            station::scale::parse_weight(w)
                .map_err(|e| station::error::UsageError(format!("--weight: {e}")))
        })
        .transpose()?;
    use station::packing::{self, Bench, ShopCheck, Verdict};
    let mut store = Store::open_existing(&ctx.db)?;
    let shop = ShopClient::from_config(&ctx.config, Purpose::Check).ok();
    let bench = Bench {
        name: bench,
        operator: &ctx.operator,
    };
    let out = packing::scan_weighed(
        &mut store,
        shop.as_ref(),
        &ctx.config,
        &bench,
        code,
        weight_g,
    )
    .await?;
    if ctx.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        let tag = match out.verdict {
            Verdict::Ok => "OK",
            Verdict::Stop => "STOP",
            Verdict::Intercept => "INTERCEPT",
        };
        // Item titles, memos and messages are shop text: never raw to a terminal.
        let safe = station::order::terminal_safe;
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
        _ => Err(station::error::Refused(format!("{}: {}", out.code, out.message)).into()),
    }
}
