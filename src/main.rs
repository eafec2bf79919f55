//! keygate's binary: parse the command line and configuration, start
//! logging, then serve until SIGINT/SIGTERM (or run a one-shot command).

use anyhow::Context;
use clap::Parser;
use keygate::cli::{Cli, Command, StoreCommand};
use keygate::config::Config;
use keygate::startup::{Application, open_vault_and_import};
use keygate::{commands, demo};
use keygate::{env_file, telemetry};
use std::path::Path;

/// jemalloc, with background threads that give freed memory back to the
/// system even when keygate is idle: blocks of 8 MiB and more at once, the
/// rest over its decay time (10 s). glibc's malloc kept it: after four
/// 32 MiB conversions RSS stayed at 110-220 MB (0.4-2.2 GB with the old
/// conversion), where jemalloc is back under 100 MB within about 5 s;
/// mimalloc gave it back only at later allocation activity, and peaked
/// higher (`tests/chaos/memory.rs`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Demo { port, host, data }) = cli.command {
        // The demo builds its own configuration; `.env` is not read. Its
        // console shows alerts, failed attempts and start-up, not one line
        // per request.
        telemetry::init(
            false,
            Some("warn,keygate::alerts=info,keygate::startup=info,keygate=warn"),
        );
        let options = demo::DemoOptions {
            host,
            port,
            data,
            pace: demo::Pace::default(),
        };
        return demo::run(options, shutdown_signal())
            .await
            .context("the demo cannot start");
    }
    let dotenv = env_file::load(Path::new(".env"))?;
    let config = Config::from_env(&dotenv)?;
    let command = cli.command.unwrap_or(Command::Serve);
    // The key commands' stdout is their result, often piped: logs go to
    // stderr there. Serving and seeding log to stdout as they always have.
    if matches!(command, Command::Serve | Command::Seed) {
        telemetry::init(config.json_logs, config.log_filter.as_deref());
    } else {
        telemetry::init_on_stderr(config.json_logs, config.log_filter.as_deref());
    }

    match command {
        Command::Serve => {
            let app = Application::build(config)
                .await
                .context("keygate cannot start")?;
            app.run_until_stopped(shutdown_signal()).await?;
        }
        // Dispatched above, before `.env` was read.
        Command::Demo { .. } => {}
        Command::Seed => {
            let (_vault, _loaded) = open_vault_and_import(&config)
                .await
                .context("seeding failed")?;
        }
        Command::Keys(command) => {
            commands::keys::run(&config, command, &mut std::io::stdout()).await?;
        }
        Command::Store(StoreCommand::Copy { from, to }) => {
            commands::store_copy::run(&config, &from, &to, &mut std::io::stdout()).await?;
        }
        Command::RotateEncryptionKey { new_key } => {
            commands::rotate::run(&config, &new_key, &mut std::io::stdout()).await?;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: finishing requests in flight");
}
