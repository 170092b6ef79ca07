//! The servers behind the proxy: for each shard its primary and replicas,
//! each with a connection pool and an up/down flag the health checker sets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::conn::Login;
use super::pool::Pool;
use crate::config::Config;

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
    /// Set by the health checker; reads skip replicas that are down.
    pub up: AtomicBool,
    /// Statements sent to this server.
    pub queries: AtomicU64,
}

/// One shard's servers.
pub struct ShardNodes {
    pub name: String,
    pub primary: Arc<Backend>,
    pub replicas: Vec<Arc<Backend>>,
    next_replica: AtomicUsize,
}

impl ShardNodes {
    /// The next healthy replica, round-robin; `None` when none is up.
    pub fn pick_replica(&self) -> Option<&Arc<Backend>> {
        let n = self.replicas.len();
        if n == 0 {
            return None;
        }
        let start = self.next_replica.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| &self.replicas[(start + i) % n]).find(|b| b.up.load(Ordering::Relaxed))
    }
}

/// All shards.
pub struct Cluster {
    pub shards: Vec<ShardNodes>,
}

impl Cluster {
    /// Build from a config, reusing the pools of `previous` for servers whose
    /// address and login did not change (so a reload keeps warm connections).
    pub fn build(cfg: &Config, previous: Option<&Cluster>) -> Cluster {
        let login = Login {
            user: cfg.backend.user.clone(),
            password: cfg.backend.password.clone(),
            database: cfg.backend.database.clone(),
            connect_timeout: Duration::from_millis(cfg.backend.connect_timeout_ms),
        };
        let mut old: HashMap<&str, &Arc<Backend>> = HashMap::new();
        if let Some(prev) = previous {
            for s in &prev.shards {
                old.insert(&s.primary.addr, &s.primary);
                for r in &s.replicas {
                    old.insert(&r.addr, r);
                }
            }
        }
        let wait = Duration::from_millis(cfg.backend.pool_wait_ms);
        let max = cfg.backend.pool_size as usize;
        let mk = |addr: &str, shard: usize, role: ServerRole| -> Arc<Backend> {
            let pool = match old.get(addr) {
                Some(b) if b.role == role => b.pool.clone(),
                _ => Pool::new(Arc::from(addr), login.clone(), max, wait),
            };
            let up = old.get(addr).map(|b| b.up.load(Ordering::Relaxed)).unwrap_or(true);
            Arc::new(Backend {
                addr: Arc::from(addr),
                shard,
                role,
                pool,
                up: AtomicBool::new(up),
                queries: AtomicU64::new(0),
            })
        };
        let shards = cfg
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| ShardNodes {
                name: s.name.clone(),
                primary: mk(&s.primary.addr, i, ServerRole::Primary),
                replicas: s.replicas.iter().map(|r| mk(&r.addr, i, ServerRole::Replica)).collect(),
                next_replica: AtomicUsize::new(0),
            })
            .collect();
        Cluster { shards }
    }

    /// Every server, primaries first.
    pub fn backends(&self) -> impl Iterator<Item = &Arc<Backend>> {
        self.shards.iter().flat_map(|s| std::iter::once(&s.primary).chain(s.replicas.iter()))
    }
}
