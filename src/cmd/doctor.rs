//! `station doctor`: is this station set up to work? Checks the configuration,
//! the database (SQLite's integrity check), the embedded fonts, the templates
//! the config names, and whether the shop answers with this token, and says
//! what it found and what to do about each problem.

use super::Ctx;
use anyhow::bail;
use serde::Serialize;
use station::config::Config;
use station::render::barcode::Dpi;
use station::render::fonts::FontChain;
use station::shop::client::{ListFilter, Purpose, ShopClient};
use station::store::Store;
use std::path::Path;

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &'static str, result: Result<String, String>) -> Check {
    match result {
        Ok(detail) => Check {
            name,
            ok: true,
            detail,
        },
        Err(detail) => Check {
            name,
            ok: false,
            detail,
        },
    }
}

/// Run every check; none stops the others.
/// `station doctor`: every check, as text or `--json`; exit 1 when any failed.
pub fn run(ctx: &Ctx, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let checks = runtime.block_on(checks(
        &ctx.config,
        ctx.config_file.as_deref(),
        &ctx.config_warnings,
        &ctx.db,
    ));
    if ctx.json {
        println!("{}", serde_json::to_string(&checks)?);
    } else {
        write_text(&mut std::io::stdout().lock(), &checks)?;
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        bail!("{failed} of {} checks failed (see above)", checks.len());
    }
    Ok(())
}

async fn checks(
    config: &Config,
    config_file: Option<&Path>,
    warnings: &[String],
    db: &station::store::Db,
) -> Vec<Check> {
    let mut out = Vec::new();
    let source = config_file.map_or("built-in defaults (no station.toml)".to_string(), |f| {
        f.display().to_string()
    });
    out.push(check(
        "config",
        if warnings.is_empty() {
            Ok(format!("{source}: no problems"))
        } else {
            Err(format!("{source}: {}", warnings.join("; ")))
        },
    ));

    let missing = config.sender.missing();
    out.push(check(
        "sender",
        if missing.is_empty() {
            Ok(format!("{} · {}", config.sender.name, config.sender.address))
        } else {
            Err(format!(
                "[sender] has no {}: `station print` refuses waybills without the sender's name, phone and address",
                missing.join(", ")
            ))
        },
    ));

    out.push(check(
        "database",
        match Store::open_existing(db).and_then(|s| s.integrity_check()) {
            Ok(lines) if lines == ["ok"] => Ok(format!("{db}: integrity check ok")),
            Ok(lines) => Err(format!(
                "{db}: integrity check found problems: {}. Restore the newest `station backup` copy",
                lines.join("; ")
            )),
            Err(e @ station::store::StoreError::Missing(_)) => Err(e.to_string()),
            Err(e) => Err(format!("{db}: {e}")),
        },
    ));

    let chain = FontChain::embedded();
    let samples = ['王', '明', '㙟', '𠮷', 'A', '9', '￥'];
    let missing: Vec<char> = samples.into_iter().filter(|c| !chain.covers(*c)).collect();
    out.push(check(
        "fonts",
        if missing.is_empty() {
            Ok("embedded fonts cover Chinese, rare characters (㙟 𠮷), Latin and digits".into())
        } else {
            Err(format!(
                "embedded fonts miss {missing:?}: the binary was built without the committed fonts"
            ))
        },
    ));

    let p = &config.print;
    let dpi = Dpi(p.dpi);
    let mut loaded = Vec::new();
    let mut broken = Vec::new();
    for name in [&p.waybill_template, &p.slip_template, &p.manifest_template] {
        match station::wave::load_template(name, dpi) {
            Ok(_) => loaded.push(name.as_str()),
            Err(e) => broken.push(format!("{name}: {e:#}")),
        }
    }
    out.push(check(
        "templates",
        if broken.is_empty() {
            Ok(format!("{} load and check", loaded.join(", ")))
        } else {
            Err(broken.join("; "))
        },
    ));

    out.push(check("shop", shop(config).await));
    out
}

/// One list request with page size 1, a short timeout, no long retrying.
async fn shop(config: &Config) -> Result<String, String> {
    if config.shop.token.is_empty() {
        return Err(format!(
            "STATION_SHOP_TOKEN is not set: pulls and write-backs to {} cannot work",
            config.shop.url
        ));
    }
    let client = ShopClient::from_config(config, Purpose::Probe).map_err(|e| e.to_string())?;
    let mut pages = client.pages(
        ListFilter {
            status: Some("paid".into()),
            flag: None,
            page_size: 1,
        },
        client.deadline(),
    );
    match pages.next().await {
        Ok(_) => Ok(format!("{} answers with this token", config.shop.url)),
        Err(e) => Err(e.to_string()),
    }
}

fn write_text(out: &mut dyn std::io::Write, checks: &[Check]) -> std::io::Result<()> {
    for c in checks {
        writeln!(
            out,
            "{:<5} {:<10} {}",
            if c.ok { "ok" } else { "FAIL" },
            c.name,
            c.detail
        )?;
    }
    Ok(())
}
