//! `station generate`: realistic orders as JSON Lines.

use anyhow::{Context, Result};
use station::cli::GenerateArgs;
use station::shop::generate::{self, GenerateOptions};
use std::io::Write;

pub fn run(args: GenerateArgs) -> Result<()> {
    let opts = GenerateOptions {
        count: args.count,
        seed: args.seed,
        invalid_rate: args.invalid_rate,
        off_queue_rate: args.off_queue_rate,
        repeat_buyer_rate: args.repeat_buyer_rate,
        ..Default::default()
    };
    let orders = generate::generate_json(&opts);
    let mut text = String::new();
    for o in &orders {
        text.push_str(&serde_json::to_string(o)?);
        text.push('\n');
    }
    match args.out {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}
