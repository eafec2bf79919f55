//! The command line: `keygate` (serve, the default) and `keygate seed`.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "keygate",
    version,
    about = "An LLM API gateway that rotates a pool of provider API keys"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Import the keys from the environment into the database, then exit.
    Seed,
}
