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
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stop accepting clients and stop background tasks.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

/// Bind the configured addresses and start serving.
pub async fn start(cfg: Config) -> std::io::Result<Running> {
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
    let shared = Shared::new(ConfigHandle::new(cfg));
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
    let mut rx = stop_rx;
    tasks.push(tokio::spawn(frontend::listener::serve(listener, shared.clone(), async move {
        let _ = rx.changed().await;
    })));
    tasks.push(tokio::spawn(frontend::xa::run_recovery(shared.clone(), stop.subscribe())));
    tasks.push(tokio::spawn(frontend::close_idle_sessions(shared.clone(), stop.subscribe())));
    if let Some(a) = admin {
        tasks.push(tokio::spawn(admin::serve(a, shared.clone())));
    }
    Ok(Running { addr, admin_addr, shared, stop, tasks })
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
