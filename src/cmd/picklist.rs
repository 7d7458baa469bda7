//! `station picklist WAVE`: write a wave's pick list (拣货单 + 格位表) again,
//! and send it to a printer.

use super::Ctx;
use anyhow::{Result, bail};
use station::store::Store;

pub fn run(ctx: &Ctx, wave: i64, printer: Option<String>) -> Result<()> {
    let mut store = Store::open_existing(&ctx.db)?;
    let path = station::wave::write_picklist(&store, &ctx.config, wave)?;
    store.record(
        &ctx.operator,
        None,
        "print.picklist",
        &format!("wave {wave}: {}", path.display()),
    )?;
    let queue = printer
        .filter(|q| !q.is_empty())
        .or_else(|| Some(ctx.config.printers.manifest.clone()).filter(|q| !q.is_empty()));
    if let Some(queue) = &queue {
        let watch = station::printer::StderrWatch::default();
        let mut p = station::printer::Printing::new(&ctx.config.printers, &ctx.operator, &watch);
        p.check(&[queue.as_str()])?;
        let doc = station::printer::Doc {
            kind: "picklist",
            printer: queue,
            file: &path,
            orders: &[],
        };
        let started = p.start(&mut store, None, &doc)?;
        let r = p.finish(&mut store, started, &mut |_| Ok(()))?;
        if !r.completed() {
            bail!(station::printer::JobFailed(format!(
                "the pick list of wave {wave} did not come out on {queue}: {}; it is at {}",
                r.reason(),
                path.display()
            )));
        }
    }
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"wave": wave, "picklist": path, "printer": queue})
        );
    } else {
        println!("{}", path.display());
    }
    Ok(())
}
