//! `station returns receive`: returns intake (退货登记) from the command line.

use super::Ctx;
use anyhow::Result;
use station::cli::ReturnsCommand;
use station::error::UsageError;
use station::returns::{self, Condition, Receive};
use station::store::Store;

pub fn run(ctx: &Ctx, command: ReturnsCommand) -> Result<()> {
    let ReturnsCommand::Receive {
        code,
        items,
        reason,
        condition,
        bench,
    } = command;
    let items = items
        .iter()
        .map(|i| returns::parse_item(i))
        .collect::<Result<Vec<_>, String>>()
        .map_err(UsageError)?;
    let condition = Condition::parse(&condition)
        .ok_or_else(|| UsageError(format!("--condition {condition:?}: ok or damaged")))?;
    let mut store = Store::open_existing(&ctx.db)?;
    let bench = station::packing::Bench {
        name: &bench,
        operator: &ctx.operator,
    };
    let received = returns::receive(
        &mut store,
        &ctx.config,
        &bench,
        &Receive {
            code: &code,
            items: &items,
            reason: &reason,
            condition,
        },
    )?;
    let r = match received {
        Ok(r) => r,
        Err(refusal) => {
            if ctx.json {
                println!("{}", serde_json::to_string(&refusal)?);
            }
            return Err(refusal.into_error());
        }
    };
    if ctx.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        let what: Vec<String> = r
            .lines
            .iter()
            .map(|l| format!("{} {} ×{}", l.sku, l.title, l.qty))
            .collect();
        // Titles are shop text: nothing in them may reach the terminal as a control.
        let line = format!(
            "return #{} of order {} ({} {}) recorded: {}{}; the shop gets flag {} with memo “{}” (`station sync`)",
            r.receipt,
            r.order_id,
            r.courier,
            r.tracking_no,
            what.join(", "),
            if r.condition == Condition::Damaged {
                " — damaged"
            } else {
                ""
            },
            r.returns_flag,
            r.memo
        );
        println!("{}", station::order::terminal_safe(&line));
    }
    Ok(())
}
