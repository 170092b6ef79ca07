//! Backend health checking: one task per backend probes it every
//! `health.interval_ms` over a kept connection, bounded by `health.timeout_ms`
//! ([`probe`]: read_only, GTID position, semi-sync and replication state in one
//! round trip). The result goes through a hysteresis state machine ([`state`])
//! and is published on the [`Backend`] for routing, lock-free:
//! - `up`: down after `down_after` consecutive failed probes (its pooled
//!   connections are dropped), up after as many consecutive successes;
//! - `fit`: a replica with both replication threads running and lag within
//!   `max_replica_lag_s`; only fit replicas serve reads;
//! - `probe`: the latest [`ProbeReport`], for failover and admin ([`latest`]).
//!
//! [`run`] also reloads the learned table definitions now and then.

mod failover;
pub mod gtid;
mod probe;
mod state;
pub mod switchover;

pub use failover::admin_login;
pub use probe::{ProbeReport, Prober, ReplicaStatus, Replication, SemiSync, Unfit};
pub use state::{Change, HealthState};

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::{AbortHandle, JoinSet};

use crate::backend::cluster::{Backend, ServerRole};
use crate::backend::conn::Login;
use crate::config::Config;
use crate::frontend::Shared;

/// How often the learned table definitions are reloaded.
const CATALOG_REFRESH: Duration = Duration::from_secs(10);

/// The latest probe result of a backend (a default, never-probed report
/// before its first probe). Lock-free: one atomic pointer load.
pub fn latest(backend: &Backend) -> Arc<ProbeReport> {
    backend.probe.load_full()
}

/// Probe every backend once (in parallel, each within `health.timeout_ms`),
/// send `ready`, then keep one probing task per backend until `shutdown` fires.
pub async fn run(
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    // Dropping the set (shutdown, or this task aborted) aborts every probing task.
    let mut tasks = JoinSet::new();
    let mut watched: HashMap<Arc<str>, AbortHandle> = HashMap::new();
    let mut first = JoinSet::new();
    for b in shared.cluster.load().backends() {
        let mut w = Watcher::new(b.addr.clone());
        let shared = shared.clone();
        first.spawn(async move {
            w.probe_once(&shared).await;
            w
        });
    }
    while let Some(joined) = first.join_next().await {
        if let Ok(w) = joined {
            watched.insert(w.addr.clone(), tasks.spawn(w.run(shared.clone())));
        }
    }
    let _ = ready.send(());
    let mut last_catalog = Instant::now();
    let mut failover = failover::Failover::default();
    loop {
        failover.tick(&shared).await;
        if last_catalog.elapsed() >= CATALOG_REFRESH {
            // DDL can come through another proxy: re-learn table definitions now and then.
            last_catalog = Instant::now();
            let _ = shared.refresh_catalog().await;
        }
        // A reload may add or remove servers.
        let cluster = shared.cluster.load_full();
        watched.retain(|addr, task| {
            let keep = cluster.backend(addr).is_some() && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for b in cluster.backends() {
            if !watched.contains_key(&b.addr) {
                let w = Watcher::new(b.addr.clone());
                watched.insert(b.addr.clone(), tasks.spawn(w.run(shared.clone())));
            }
        }
        while tasks.try_join_next().is_some() {}
        let interval = Duration::from_millis(shared.config.load().health.interval_ms);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            // A backend went down or up: act now, not at the next tick.
            _ = shared.health_changed.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One backend's probing: its kept connection and its health state. The
/// state lives here, keyed by address, so it survives a cluster rebuild.
struct Watcher {
    addr: Arc<str>,
    prober: Prober,
    state: HealthState,
}

impl Watcher {
    fn new(addr: Arc<str>) -> Self {
        Watcher { addr, prober: Prober::default(), state: HealthState::default() }
    }

    /// Probe every `health.interval_ms` (from the start of one probe to the
    /// next) until the backend leaves the cluster.
    async fn run(mut self, shared: Arc<Shared>) {
        let mut last = Instant::now();
        loop {
            let interval = Duration::from_millis(shared.config.load().health.interval_ms);
            tokio::time::sleep(interval.saturating_sub(last.elapsed())).await;
            last = Instant::now();
            if !self.probe_once(&shared).await {
                return;
            }
        }
    }

    /// One probe, published on the backend. False if the backend is no longer in the cluster.
    async fn probe_once(&mut self, shared: &Shared) -> bool {
        let cfg = shared.config.load();
        let timeout = Duration::from_millis(cfg.health.timeout_ms);
        let report = self.prober.probe(&self.addr, &login(&cfg, timeout), cfg.backend.flavor, timeout).await;
        let cluster = shared.cluster.load();
        let Some(b) = cluster.backend(&self.addr) else { return false };
        self.publish(shared, b, report, &cfg);
        true
    }

    fn publish(&mut self, shared: &Shared, b: &Backend, report: ProbeReport, cfg: &Config) {
        let initial = !self.state.probed();
        let fitness = report.fit_for_reads(cfg.health.max_replica_lag_s);
        let changes = self.state.observe(report.reachable, fitness, cfg.health.down_after);
        let error = report.error.clone().unwrap_or_default();
        // The report first, so whoever sees a flag change finds the report behind it.
        b.probe.store(Arc::new(report));
        b.fit.store(self.state.fit(), Ordering::Relaxed);
        b.up.store(self.state.up(), Ordering::Relaxed);
        let (addr, role, shard) = (&b.addr, b.role.as_str(), b.shard);
        if changes.iter().any(|c| matches!(c, Change::Down | Change::Up)) {
            shared.health_changed.notify_one();
        }
        for change in changes {
            match change {
                Change::Down => {
                    b.pool.invalidate();
                    tracing::warn!(backend = %addr, role, shard, error = %error, "backend is down");
                }
                Change::Up if initial => tracing::debug!(backend = %addr, role, shard, "backend is up"),
                Change::Up => tracing::info!(backend = %addr, role, shard, "backend is up"),
                Change::Fit if initial => {}
                Change::Fit => tracing::info!(backend = %addr, role, shard, "back in the read rotation"),
                // A primary is not a replica: nothing to say at startup.
                Change::Unfit(_) if initial && b.role == ServerRole::Primary => {}
                Change::Unfit(why) => {
                    tracing::warn!(backend = %addr, role, shard, reason = %why, "out of the read rotation")
                }
            }
        }
    }
}

/// How the probe connection logs in: the admin account (`backend.admin_user`), connect bounded by the probe timeout.
fn login(cfg: &Config, timeout: Duration) -> Login {
    let (user, password) = cfg.backend.admin_account();
    Login {
        user: user.to_owned(),
        password: password.to_owned(),
        database: cfg.backend.database.clone(),
        connect_timeout: timeout,
        tls: crate::backend::tls::policy(cfg),
    }
}
