//! The servers behind the proxy: for each shard its primary and replicas,
//! each with a connection pool and the flags the health checker sets (up,
//! fit for reads), read lock-free by routing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::conn::Login;
use super::pool::Pool;
use super::topology::Topology;
use crate::config::{Config, Server};
use crate::health::ProbeReport;

/// Which role a server plays in its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRole {
    Primary,
    Replica,
}

impl ServerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerRole::Primary => "primary",
            ServerRole::Replica => "replica",
        }
    }
}

/// One MySQL server.
pub struct Backend {
    pub addr: Arc<str>,
    pub shard: usize,
    pub role: ServerRole,
    pub pool: Arc<Pool>,
    /// Its `zone` from the config.
    pub zone: Option<Arc<str>>,
    /// In the proxy's zone (or the proxy has none): preferred for reads.
    pub local: bool,
    /// Set by the health checker (`down_after` hysteresis); reads skip servers that are down.
    pub up: AtomicBool,
    /// Set by the health checker: replicating with both threads running and
    /// lag within `health.max_replica_lag_s`. Only fit servers serve reads as replicas.
    pub fit: AtomicBool,
    /// The latest probe result (see [`crate::health::latest`]).
    pub probe: ArcSwap<ProbeReport>,
    /// Statements sent to this server. Shared with the `Backend` a rebuild
    /// makes for the same server in the same shard and role (see
    /// [`Cluster::build_with`]), so `shardgate_backend_queries_total` only grows.
    pub queries: Arc<AtomicU64>,
    /// A replaced primary (see [`Topology::fenced`]): probed, never routed to.
    pub fenced: bool,
}

impl Backend {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Up and fit to serve reads as a replica.
    pub fn fit_for_reads(&self) -> bool {
        self.is_up() && self.fit.load(Ordering::Relaxed) && !self.fenced
    }
}

/// One shard's servers.
pub struct ShardNodes {
    pub name: String,
    /// Where writes go.
    pub primary: Arc<Backend>,
    /// Active-active: the second of `primaries`, a hot standby. Probed, and it
    /// serves reads like a replica when fit; writes never go to it yet.
    pub standby: Option<Arc<Backend>>,
    pub replicas: Vec<Arc<Backend>>,
    /// Replaced primaries: probed (to fence them and to rejoin them), never routed to.
    pub fenced: Vec<Arc<Backend>>,
    /// Why writes are refused, if they are (see [`Topology::refused`]).
    pub writes_refused: Option<Arc<str>>,
    /// A planned switchover is under way: statements for the primary wait.
    pub draining: bool,
    /// Read candidates: the replicas, then the standby.
    readers: Vec<Arc<Backend>>,
    next_replica: AtomicUsize,
}

impl ShardNodes {
    /// The shard's servers with their current role: "primary", "standby",
    /// "replica", "fenced" (the `role` shown by the admin port and metrics).
    pub fn servers(&self) -> impl Iterator<Item = (&Arc<Backend>, &'static str)> {
        std::iter::once((&self.primary, "primary"))
            .chain(self.standby.iter().map(|b| (b, "standby")))
            .chain(self.replicas.iter().map(|b| (b, "replica")))
            .chain(self.fenced.iter().map(|b| (b, "fenced")))
    }

    /// The next replica fit for reads, round-robin, preferring the proxy's
    /// zone; `None` when none is fit (reads then go to the primary).
    pub fn pick_replica(&self) -> Option<&Arc<Backend>> {
        self.pick(Backend::fit_for_reads)
    }

    /// A replica that is up but not fit (lagging, or its source is gone):
    /// the last resort for a read when the primary cannot serve it either.
    pub fn pick_stale_replica(&self) -> Option<&Arc<Backend>> {
        self.pick(|b| b.is_up() && !b.fenced)
    }

    fn pick(&self, usable: impl Fn(&Backend) -> bool) -> Option<&Arc<Backend>> {
        let n = self.readers.len();
        if n == 0 {
            return None;
        }
        let start = self.next_replica.fetch_add(1, Ordering::Relaxed);
        let candidates = || (0..n).map(|i| &self.readers[(start + i) % n]).filter(|b| usable(b));
        candidates().find(|b| b.local).or_else(|| candidates().next())
    }

    /// Where a read outside a transaction goes, best first (the second is the
    /// fallback if the first cannot be reached): a fit replica, then the
    /// primary. With none fit: the primary, then an up but stale replica, or
    /// that replica first when the primary is down, so reads keep flowing while
    /// a dead primary is replaced.
    pub fn read_candidates(&self) -> [Option<&Arc<Backend>>; 2] {
        if let Some(r) = self.pick_replica() {
            return [Some(r), Some(&self.primary)];
        }
        match self.pick_stale_replica() {
            Some(r) if !self.primary.is_up() => [Some(r), Some(&self.primary)],
            stale => [Some(&self.primary), stale],
        }
    }
}

/// All shards.
pub struct Cluster {
    pub shards: Vec<ShardNodes>,
}

impl Cluster {
    /// Build from a config, reusing the pools of `previous` for servers whose
    /// address and login did not change (so a reload keeps warm connections),
    /// and their health state.
    pub fn build(cfg: &Config, previous: Option<&Cluster>) -> Cluster {
        Cluster::build_with(cfg, previous, &Topology::default())
    }

    /// Build from a config and the roles failover changed (`topology`).
    pub fn build_with(cfg: &Config, previous: Option<&Cluster>, topology: &Topology) -> Cluster {
        let login = Login {
            user: cfg.backend.user.clone(),
            password: cfg.backend.password.clone(),
            database: cfg.backend.database.clone(),
            connect_timeout: Duration::from_millis(cfg.backend.connect_timeout_ms),
            tls: super::tls::policy(cfg),
        };
        let old: HashMap<&str, &Arc<Backend>> =
            previous.into_iter().flat_map(|p| p.backends()).map(|b| (&*b.addr, b)).collect();
        let wait = Duration::from_millis(cfg.backend.pool_wait_ms);
        let max = cfg.backend.pool_size as usize;
        let proxy_zone = cfg.proxy.zone.as_deref();
        let mk = |server: &Server, shard: usize, role: ServerRole, fenced: bool| -> Arc<Backend> {
            let addr = server.addr.as_str();
            let prev = old.get(addr);
            let pool = match prev {
                Some(b) if b.role == role && b.pool.same_settings(&login, max, wait) => b.pool.clone(),
                _ => Pool::new(Arc::from(addr), login.clone(), max, wait),
            };
            // A new server is up (as before health checking) but not fit for
            // reads until its first probe says so.
            let up = prev.map(|b| b.is_up()).unwrap_or(true);
            let fit = prev.map(|b| b.fit.load(Ordering::Relaxed)).unwrap_or(false);
            let probe = prev.map(|b| b.probe.load_full()).unwrap_or_default();
            Arc::new(Backend {
                addr: Arc::from(addr),
                shard,
                role,
                pool,
                zone: server.zone.as_deref().map(Arc::from),
                local: proxy_zone.is_none_or(|z| server.zone.as_deref() == Some(z)),
                up: AtomicBool::new(up),
                fit: AtomicBool::new(fit),
                probe: ArcSwap::new(probe),
                queries: match prev {
                    Some(b) if b.role == role && b.fenced == fenced && b.shard == shard => b.queries.clone(),
                    _ => Default::default(),
                },
                fenced,
            })
        };
        let shards = cfg
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let layout = topology.layout(s);
                let standby = layout.standby.as_ref().map(|sb| mk(sb, i, ServerRole::Primary, false));
                let replicas: Vec<_> = layout.replicas.iter().map(|r| mk(r, i, ServerRole::Replica, false)).collect();
                ShardNodes {
                    name: s.name.clone(),
                    primary: mk(&layout.primary, i, ServerRole::Primary, false),
                    readers: replicas.iter().chain(&standby).cloned().collect(),
                    standby,
                    replicas,
                    fenced: layout.fenced.iter().map(|f| mk(f, i, ServerRole::Replica, true)).collect(),
                    writes_refused: topology.refused.get(&s.name).map(|r| Arc::from(r.as_str())),
                    draining: topology.draining.contains(&s.name),
                    next_replica: AtomicUsize::new(0),
                }
            })
            .collect();
        Cluster { shards }
    }

    /// Every server: per shard the primary, the standby, the replicas, the fenced.
    pub fn backends(&self) -> impl Iterator<Item = &Arc<Backend>> {
        self.shards.iter().flat_map(|s| s.servers().map(|(b, _)| b))
    }

    /// The server at `addr`, if it is one of this cluster's.
    pub fn backend(&self, addr: &str) -> Option<&Arc<Backend>> {
        self.backends().find(|b| &*b.addr == addr)
    }
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
