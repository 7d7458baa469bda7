//! `station printers`: the CUPS queues, their state, and the roles the config gives them.

use super::Ctx;
use anyhow::Result;

pub fn run(ctx: &Ctx) -> Result<()> {
    let printers = station::printer::Cups::new(&ctx.config.printers).printers()?;
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
