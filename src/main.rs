//! The shardgate binary: parse arguments, load the config, run the proxy.

use std::path::PathBuf;

use clap::Parser;

/// A MySQL-protocol sharding proxy.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Path to the TOML config.
    #[arg(long, short, default_value = "conf/shardgate.toml")]
    config: PathBuf,
    /// Validate the config and exit (0 if valid).
    #[arg(long)]
    check: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SHARDGATE_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let cfg = match shardgate::config::validate::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shardgate: invalid config {}: {e}", args.config.display());
            return std::process::ExitCode::from(2);
        }
    };
    if args.check {
        println!(
            "{}: OK ({} shards, {} table rules, {} users)",
            args.config.display(),
            cfg.shards.len(),
            cfg.tables.len(),
            cfg.users.len()
        );
        return std::process::ExitCode::SUCCESS;
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if cfg.proxy.workers > 0 {
        builder.worker_threads(cfg.proxy.workers.into());
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shardgate: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let running = match shardgate::start(cfg).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("shardgate: cannot listen: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        tracing::info!(listen = %running.addr, admin = ?running.admin_addr, "shardgate is serving");
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        std::process::ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
