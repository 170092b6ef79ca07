//! What the proxy knows about its shards and servers, gathered once for
//! `GET /status`, `GET /readyz` and the SQL statements `SHOW SHARDGATE
//! BACKENDS / SHARDS / POOLS` (which show the same rows as tables).

use serde::Serialize;

use crate::frontend::Shared;
use crate::health::Replication;

/// One backend server.
#[derive(Debug, Clone, Serialize)]
pub struct BackendRow {
    pub shard: String,
    pub addr: String,
    /// primary, standby, replica or fenced.
    pub role: &'static str,
    pub up: bool,
    /// Serves reads (replicas and standby).
    pub fit_for_reads: bool,
    pub read_only: Option<bool>,
    /// `Seconds_Behind_Master`, for servers that replicate.
    pub lag_seconds: Option<u64>,
    pub gtid_position: Option<String>,
    /// Why the last probe failed, or why a replica is not fit for reads.
    pub problem: Option<String>,
    pub zone: Option<String>,
    pub pool_open: usize,
    pub pool_idle: usize,
    pub pool_active: usize,
    pub pool_max: usize,
    /// Statements sent to it.
    pub queries: u64,
}

/// One shard.
#[derive(Debug, Clone, Serialize)]
pub struct ShardRow {
    pub name: String,
    pub primary: String,
    pub primary_up: bool,
    pub replicas: usize,
    pub fit_replicas: usize,
    /// Why writes are refused (failover could not choose safely), if they are.
    pub writes_refused: Option<String>,
    /// A planned switchover is moving writes.
    pub switching: bool,
}

pub fn backends(shared: &Shared) -> Vec<BackendRow> {
    let cluster = shared.cluster.load();
    let pool_max = shared.config.load().backend.pool_size as usize;
    let mut rows = Vec::new();
    for s in &cluster.shards {
        for (b, role) in s.servers() {
            let r = crate::health::latest(b);
            let (lag, problem) = match &r.replication {
                Replication::Replica(st) => (
                    st.seconds_behind,
                    (!st.io_running || !st.sql_running).then(|| {
                        let err = [st.last_io_error.as_str(), st.last_sql_error.as_str()].join(" ");
                        format!("replication IO {} SQL {} {}", st.io_state, st.sql_running, err.trim())
                    }),
                ),
                _ => (None, None),
            };
            let open = b.pool.open();
            let idle = b.pool.idle_count();
            rows.push(BackendRow {
                shard: s.name.clone(),
                addr: b.addr.to_string(),
                role,
                up: b.is_up(),
                fit_for_reads: b.fit_for_reads(),
                read_only: r.read_only,
                lag_seconds: lag,
                gtid_position: r.gtid_executed.clone(),
                problem: r.error.clone().or(problem),
                zone: b.zone.as_deref().map(str::to_owned),
                pool_open: open,
                pool_idle: idle,
                pool_active: open.saturating_sub(idle),
                pool_max,
                queries: b.queries.load(std::sync::atomic::Ordering::Relaxed),
            });
        }
    }
    rows
}

pub fn shards(shared: &Shared) -> Vec<ShardRow> {
    let cluster = shared.cluster.load();
    cluster
        .shards
        .iter()
        .map(|s| ShardRow {
            name: s.name.clone(),
            primary: s.primary.addr.to_string(),
            primary_up: s.primary.is_up(),
            replicas: s.replicas.len() + usize::from(s.standby.is_some()),
            fit_replicas: s.replicas.iter().chain(&s.standby).filter(|b| b.fit_for_reads()).count(),
            writes_refused: s.writes_refused.as_deref().map(str::to_owned),
            switching: s.draining,
        })
        .collect()
}

/// Why the proxy should not get traffic now (`None`: ready).
pub fn not_ready(shared: &Shared) -> Option<String> {
    if shared.is_draining() {
        return Some("shutting down".into());
    }
    let cluster = shared.cluster.load();
    let down: Vec<String> = cluster
        .shards
        .iter()
        .filter(|s| !s.primary.is_up() || s.writes_refused.is_some())
        .map(|s| format!("shard {} has no reachable primary ({} down)", s.name, s.primary.addr))
        .collect();
    (!down.is_empty()).then(|| down.join("; "))
}

#[derive(Serialize)]
struct Status {
    version: &'static str,
    ready: bool,
    not_ready: Option<String>,
    config: crate::admin::reload::Status,
    config_file: Option<String>,
    clients: usize,
    shards: Vec<ShardRow>,
    backends: Vec<BackendRow>,
}

/// `GET /status`.
pub fn json(shared: &Shared) -> String {
    let not_ready = not_ready(shared);
    let s = Status {
        version: env!("CARGO_PKG_VERSION"),
        ready: not_ready.is_none(),
        not_ready,
        config: shared.reload.status(),
        config_file: shared.reload.path().map(|p| p.display().to_string()),
        clients: shared.clients.load(std::sync::atomic::Ordering::Relaxed),
        shards: shards(shared),
        backends: backends(shared),
    };
    let mut out = serde_json::to_string_pretty(&s).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    out.push('\n');
    out
}
