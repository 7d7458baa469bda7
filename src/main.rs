//! The `station` binary: parse the command line, set up logging, run, and turn
//! the outcome into an exit code. Everything else lives in the library.

use clap::Parser;
use station::cli::{Cli, exit};

fn main() {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let code = match station::app::run(cli) {
        Ok(()) => exit::OK,
        Err(err) => {
            // Error types often name their cause already; print each link of
            // the chain only when it adds something.
            let mut msg = err.to_string();
            for cause in err.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!("error: {msg}");
            station::app::exit_code(&err)
        }
    };
    std::process::exit(code);
}

/// Logs go to stderr; `STATION_LOG` (e.g. `debug`) overrides the `-v` count.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STATION_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("station={default}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
