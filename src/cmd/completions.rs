//! `station completions SHELL` and `station manpage DIR`: generated from the
//! command-line definition, so they never drift from `station --help`.

use anyhow::{Context, Result};
use clap::CommandFactory;
use station::cli::Cli;
use std::path::Path;

pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "station", &mut std::io::stdout().lock());
    Ok(())
}

pub fn manpages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
    println!("{}", dir.join("station.1").display());
    Ok(())
}
