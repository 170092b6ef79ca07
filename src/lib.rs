//! shardgate: a MySQL-protocol sharding proxy.
//!
//! See ARCHITECTURE.md for the module map and how one query flows through it.
//! [`start`] runs a proxy in-process (used by `main` and by the tests).

pub mod admin;
pub mod backend;
pub mod config;
pub mod frontend;
pub mod health;
pub mod merge;
pub mod protocol;
pub mod router;
pub mod sql;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use config::{Config, ConfigHandle};
use frontend::Shared;

/// A running proxy.
pub struct Running {
    /// Where clients connect (the bound address, also when the config said port 0).
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    /// Stops only the accept loop (the first step of a drain).
    stop_accepting: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stop accepting clients and stop background tasks.
    pub async fn shutdown(self) {
        let _ = self.stop_accepting.send(true);
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }

    /// Graceful shutdown (SIGTERM): stop accepting and fail `/readyz`; let
    /// running statements and open transactions finish for up to `timeout`,
    /// closing each client with error 1053 as soon as it is idle outside a
    /// transaction; then close whoever is left, and stop. Returns how many
    /// clients had to be cut off at the timeout.
    pub async fn drain(self, timeout: std::time::Duration) -> usize {
        use std::sync::atomic::Ordering;
        let _ = self.stop_accepting.send(true);
        self.shared.start_draining();
        let deadline = tokio::time::Instant::now() + timeout;
        let clients = || self.shared.clients.load(Ordering::Relaxed);
        tracing::info!(clients = clients(), timeout_s = timeout.as_secs(), "draining");
        while clients() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let left = clients();
        if left > 0 {
            tracing::warn!(clients = left, "shutdown_timeout_s reached; closing the remaining clients");
            // Idle ones (in a transaction) close at once; a statement still running is cut
            // off when the process exits.
            self.shared.close_sessions();
            let grace = tokio::time::Instant::now() + std::time::Duration::from_millis(500);
            while clients() > 0 && tokio::time::Instant::now() < grace {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        self.shutdown().await;
        left
    }
}

/// Where the running config was read from, so that it can be reloaded.
pub struct ConfigSource {
    pub path: std::path::PathBuf,
    /// The text that was validated into the config.
    pub text: String,
}

/// Bind the configured addresses and start serving.
pub async fn start(cfg: Config) -> std::io::Result<Running> {
    start_with(cfg, None).await
}

/// [`start`], remembering the config file for reloads (SIGHUP, `POST
/// /reload`, `SHARDGATE RELOAD`, and the file watch when `proxy.watch_config`).
pub async fn start_with(cfg: Config, source: Option<ConfigSource>) -> std::io::Result<Running> {
    let listener = TcpListener::bind(&cfg.proxy.listen).await?;
    let admin = match &cfg.proxy.admin_listen {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    let addr = listener.local_addr()?;
    let admin_addr = admin.as_ref().and_then(|a| a.local_addr().ok());
    let default_shard = cfg.default_shard;
    let tls = frontend::tls::acceptor(&cfg)?;
    backend::tls::check(&cfg).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let watch_config = cfg.proxy.watch_config;
    let shared = Shared::new(ConfigHandle::new(cfg));
    if let Some(src) = &source {
        shared.reload.started_from(&src.path, &src.text);
    }
    if let Some(acceptor) = tls {
        let _ = shared.tls.set(acceptor);
    }
    let cfg = shared.config.load();
    if let Some(path) = &cfg.proxy.rsa_private_key {
        shared.rsa.set(frontend::rsa_auth::load(path)?);
    } else if cfg.users.values().any(|u| u.sha256_stage2.is_none()) {
        // An account known only by its native hash needs full authentication
        // when a caching_sha2_password client logs in without TLS: have the key ready.
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = shared.rsa.get().await {
                tracing::warn!(error = %e, "cannot generate an RSA key pair");
            }
        });
    }
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    // Every backend is probed once (within health.timeout_ms) before clients
    // are served, so the first reads already go to fit replicas only.
    let (ready, probed) = tokio::sync::oneshot::channel();
    tasks.push(tokio::spawn(health::run(shared.clone(), stop_rx.clone(), ready)));
    learn_server_version(&shared, default_shard).await;
    if let Err(e) = shared.refresh_catalog().await {
        tracing::warn!(error = %e, "cannot learn table definitions at startup; will retry");
    }
    let _ = probed.await;
    let (stop_accepting, mut accept_rx) = tokio::sync::watch::channel(false);
    tasks.push(tokio::spawn(frontend::listener::serve(listener, shared.clone(), async move {
        let _ = accept_rx.changed().await;
    })));
    if watch_config && source.is_some() {
        tasks.extend(admin::reload::watch(shared.clone(), stop_rx.clone()));
    }
    tasks.push(tokio::spawn(frontend::xa::run_recovery(shared.clone(), stop.subscribe())));
    tasks.push(tokio::spawn(frontend::close_idle_sessions(shared.clone(), stop.subscribe())));
    if let Some(a) = admin {
        tasks.push(tokio::spawn(admin::serve(a, shared.clone())));
    }
    Ok(Running { addr, admin_addr, shared, stop, stop_accepting, tasks })
}

/// Take the version string clients see from the default shard's primary
/// (`<backend version>-shardgate`). If it is unreachable now, the first
/// backend login later sets it.
async fn learn_server_version(shared: &Arc<Shared>, shard: usize) {
    let cluster = shared.cluster.load_full();
    let Some(nodes) = cluster.shards.get(shard) else { return };
    match nodes.primary.pool.get(0, &backend::state::SessionVars::empty()).await {
        Ok(conn) => {
            shared.note_backend_version(&conn.server_version);
            conn.release();
        }
        Err(e) => tracing::warn!(error = %e, "default shard primary unreachable at startup"),
    }
}
