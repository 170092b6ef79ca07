//! The shardgate binary: parse arguments, load the config, run the proxy.
//!
//! Signals: SIGHUP reloads the config file; SIGTERM (and Ctrl-C) drains
//! (see [`shardgate::Running::drain`]) and exits 0.

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
    /// Ask the shardgate running with this config to reload it (POST /reload on
    /// its admin_listen, with its admin token), print the answer, exit 0 if applied.
    #[arg(long)]
    reload: bool,
    /// With --reload: apply a change that moves rows of tables that have rows
    /// (as `proxy.allow_reshard = true` does), after you moved the data yourself.
    #[arg(long, requires = "reload")]
    force: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("shardgate: cannot read {}: {e}", args.config.display());
            return std::process::ExitCode::from(2);
        }
    };
    if args.reload {
        return reload_running(&text, args.force);
    }
    let cfg = match shardgate::config::validate::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            let line = match &e {
                shardgate::config::ConfigError::Invalid { key, .. } => {
                    shardgate::config::diff::line_of(&text, key).map(|l| format!(" (line {l})")).unwrap_or_default()
                }
                _ => String::new(),
            };
            eprintln!("shardgate: invalid config {}: {e}{line}", args.config.display());
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
    init_logging(cfg.proxy.log_format);
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
        let source = shardgate::ConfigSource { path: args.config.clone(), text };
        let running = match shardgate::start_with(cfg, Some(source)).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("shardgate: cannot start: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        tracing::info!(listen = %running.addr, admin = ?running.admin_addr, "shardgate is serving");
        wait_for_termination(&running.shared).await;
        let timeout = std::time::Duration::from_secs(running.shared.config.load().proxy.shutdown_timeout_s);
        let cut = running.drain(timeout).await;
        tracing::info!(clients_cut_off = cut, "shut down");
        std::process::ExitCode::SUCCESS
    })
}

/// Logs to stderr as text or JSON (`proxy.log_format`), filtered by `SHARDGATE_LOG`
/// (an env-filter, default "info"). Lines a client session causes carry its
/// connection id (the `conn` span).
fn init_logging(format: shardgate::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHARDGATE_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        shardgate::config::LogFormat::Text => builder.init(),
        shardgate::config::LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).init(),
    }
}

/// Serve until SIGTERM or Ctrl-C; reload the config on every SIGHUP meanwhile.
async fn wait_for_termination(shared: &std::sync::Arc<shardgate::frontend::Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
        tracing::warn!("cannot install signal handlers; stop with Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = hup.recv() => {
                // The outcome is logged and shown in /status by the reload itself.
                let _ = shardgate::admin::reload::reload(shared, false, "SIGHUP").await;
            }
        }
    }
}

/// `--reload [--force]`: POST /reload to the running proxy. Its address and token
/// come from the file (read with the schema only: the proxy validates it fully and
/// answers with what is wrong).
fn reload_running(text: &str, force: bool) -> std::process::ExitCode {
    use std::io::{Read, Write};
    let fail = |msg: String| {
        eprintln!("shardgate --reload: {msg}");
        std::process::ExitCode::from(2)
    };
    let file: shardgate::config::schema::ConfigFile = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => return fail(format!("the config does not parse, so the proxy would refuse it too: {e}")),
    };
    let Some(admin) = file.proxy.admin_listen.as_deref() else {
        return fail("the config has no proxy.admin_listen to send the reload to".into());
    };
    let Ok(mut addr) = admin.parse::<std::net::SocketAddr>() else {
        return fail(format!("proxy.admin_listen {admin:?} is not ip:port"));
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let token = match file.proxy.admin_token() {
        Ok(Some(t)) => t,
        Ok(None) => return fail("the config has no proxy.admin_token (or admin_token_file)".into()),
        Err(e) => return fail(e),
    };
    let target = if force { "/reload?force=1" } else { "/reload" };
    let request = format!("POST {target} HTTP/1.0\r\nHost: shardgate\r\nAuthorization: Bearer {token}\r\n\r\n");
    let mut response = String::new();
    let sent = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5)).and_then(|mut s| {
        s.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
        s.write_all(request.as_bytes())?;
        s.read_to_string(&mut response)
    });
    if let Err(e) = sent {
        return fail(format!("cannot reach shardgate's admin port at {addr}: {e}"));
    }
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    print!("{body}");
    if head.lines().next().is_some_and(|l| l.contains(" 200 ")) {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
