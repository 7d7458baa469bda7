//! `station operator hash-pin`: the Argon2id hash of a PIN for `[[operators]]`.

use anyhow::{Result, bail};
use std::io::{BufRead, IsTerminal, Write};

pub fn hash_pin() -> Result<()> {
    let stdin = std::io::stdin();
    let pin = if stdin.is_terminal() {
        // At a terminal the PIN is typed without echo; from a pipe it is the first line.
        rpassword::prompt_password("PIN (not shown; then Enter): ")?
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if pin.is_empty() {
        bail!(station::error::UsageError("the PIN is empty".into()));
    }
    let hash = station::serve::hash_pin(&pin)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{hash}")?;
    if std::io::stderr().is_terminal() {
        eprintln!("add to station.toml:\n[[operators]]\nname = \"…\"\npin_hash = \"{hash}\"");
    }
    Ok(())
}
