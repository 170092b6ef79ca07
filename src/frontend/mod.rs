//! The client side: accepting connections ([`listener`]), one [`session::Session`]
//! per client running the command loop, statement execution ([`execute`],
//! [`relay`], [`txn`], [`setvars`]), prepared statements ([`prepared`]),
//! ids for global sequences ([`sequence`]),
//! proxy-generated results ([`local`]) and the one place errors become ERR packets ([`errors`]).

pub mod admin_sql;
pub mod auth;
pub mod catalog;
pub mod diagnostics;
pub mod errors;
pub mod execute;
pub mod interpolate;
pub mod listener;
pub mod local;
pub mod merge;
pub mod plan_cache;
pub mod prepared;
pub mod relay;
pub mod rsa_auth;
pub mod sequence;
pub mod session;
pub mod setvars;
pub mod tls;
pub mod txn;
pub mod xa;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use crate::backend::cluster::Cluster;
use crate::backend::topology::Topology;
use crate::config::ConfigHandle;

/// State shared by all sessions. Everything on the query path is read
/// lock-free (arc-swap snapshots and atomics).
pub struct Shared {
    pub config: ConfigHandle,
    pub cluster: ArcSwap<Cluster>,
    /// `<backend version>-shardgate`, learned from the first backend login.
    pub server_version: ArcSwap<String>,
    next_conn_id: AtomicU32,
    pub clients: AtomicUsize,
    pub stats: Stats,
    /// Learned table definitions (column order of sharded tables).
    pub catalog: ArcSwap<crate::router::catalog::Catalog>,
    /// Router results shared by statements that differ only in literals.
    pub plan_cache: plan_cache::PlanCache,
    /// Live sessions, for KILL.
    pub sessions: Mutex<HashMap<u32, Arc<SessionHandle>>>,
    /// Roles failover changed; only the health task writes it, never the query path.
    pub topology: Mutex<Topology>,
    /// Signalled by the health checker when a backend goes down or up.
    pub health_changed: Notify,
    /// Weight of a space per collation name (`None`: NO PAD), learned when a
    /// merge first orders text in that collation.
    pub pad_weights: Mutex<HashMap<String, Option<Arc<[u8]>>>>,
    /// XA transaction ids of this process.
    pub xa: xa::XaIds,
    /// Client-facing TLS (from proxy.tls_cert / tls_key), set once at startup.
    pub tls: std::sync::OnceLock<tokio_rustls::TlsAcceptor>,
    /// The RSA key pair of caching_sha2_password logins without TLS.
    pub rsa: rsa_auth::RsaKeys,
    /// Ids this process reserved from the global sequences.
    pub sequences: sequence::Sequences,
    /// The config file and how its reloads went.
    pub reload: crate::admin::reload::ReloadState,
    /// SIGTERM: no new clients; sessions close once their transaction ends.
    draining: std::sync::atomic::AtomicBool,
    /// Prometheus metrics (the admin port's `GET /metrics`), one registry per proxy.
    pub metrics: crate::admin::metrics::Metrics,
}

/// Counters (exported as metrics by `admin::metrics` at scrape time).
#[derive(Default)]
pub struct Stats {
    pub clients_total: AtomicU64,
    pub queries: AtomicU64,
    pub unparsed: AtomicU64,
    pub auth_failures: AtomicU64,
    /// Statements that waited for a shard's primary (failover buffering).
    pub failover_waits: AtomicU64,
    /// ... and gave up after `health.failover_buffer_ms`.
    pub failover_wait_timeouts: AtomicU64,
    /// Primaries replaced (promotion, follow, active-active flip).
    pub failovers: AtomicU64,
    /// Failovers refused (no candidate qualified, e.g. RPO = 0 mode).
    pub failovers_refused: AtomicU64,
    /// Replaced primaries left fenced because they hold errant transactions.
    pub errant_fenced: AtomicU64,
}

/// What another session needs to KILL this one.
pub struct SessionHandle {
    pub kill: Notify,
    /// The backend statement currently running: (server address, thread id).
    pub running: Mutex<Option<(Arc<str>, u32)>>,
    /// Who is connected, once logged in (for the admin port's /sessions).
    pub info: Mutex<Option<SessionInfo>>,
    /// The proxy is shutting down: close after the running transaction.
    pub shutdown: std::sync::atomic::AtomicBool,
    /// KILL, wait_timeout or the end of a drain: close at once, even inside a transaction.
    pub killed: std::sync::atomic::AtomicBool,
    /// Milliseconds on [`clock_ms`] since the session started waiting for its
    /// next command; 0 while a command runs.
    pub idle_since_ms: AtomicU64,
    /// The session's wait_timeout in seconds (MySQL's default 28800).
    pub wait_timeout_s: AtomicU64,
}

/// Milliseconds since the process started (monotonic), never 0.
pub fn clock_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64 + 1
}

/// Close client connections idle for longer than their wait_timeout, as
/// MySQL does (checked every second; statements that run are never idle).
pub async fn close_idle_sessions(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        let now = clock_ms();
        let handles = shared.session_handles();
        for h in handles {
            let since = h.idle_since_ms.load(std::sync::atomic::Ordering::Relaxed);
            let limit = h.wait_timeout_s.load(std::sync::atomic::Ordering::Relaxed).saturating_mul(1000);
            if since != 0 && now.saturating_sub(since) > limit {
                h.close();
            }
        }
    }
}

impl SessionHandle {
    /// Make the session close as soon as it waits for its next command
    /// (KILL, wait_timeout), even inside a transaction.
    pub fn close(&self) {
        self.killed.store(true, std::sync::atomic::Ordering::Relaxed);
        self.kill.notify_one();
    }
}

/// A logged-in client, as the admin port shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionInfo {
    pub id: u32,
    pub user: String,
    pub peer: String,
    pub tls: bool,
    /// Connection attributes the client sent (_client_name, _client_version, program_name ...).
    pub attributes: Vec<(String, String)>,
    /// Seconds since the Unix epoch at login.
    pub connected_at: u64,
}

fn host_name() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_owned())
}

impl Shared {
    pub fn new(config: ConfigHandle) -> Arc<Shared> {
        let cluster = Cluster::build(&config.load(), None);
        let name = config.load().proxy.name.clone().or_else(host_name).unwrap_or_else(|| "shardgate".into());
        Arc::new(Shared {
            config,
            cluster: ArcSwap::from_pointee(cluster),
            server_version: ArcSwap::from_pointee("10.11.0-MariaDB-shardgate".to_string()),
            next_conn_id: AtomicU32::new(1),
            clients: AtomicUsize::new(0),
            stats: Stats::default(),
            sessions: Mutex::new(HashMap::new()),
            topology: Mutex::new(Topology::default()),
            health_changed: Notify::new(),
            pad_weights: Mutex::new(HashMap::new()),
            xa: xa::XaIds::new(&name),
            tls: std::sync::OnceLock::new(),
            rsa: Default::default(),
            sequences: Default::default(),
            reload: Default::default(),
            draining: Default::default(),
            catalog: ArcSwap::from_pointee(Default::default()),
            plan_cache: Default::default(),
            metrics: crate::admin::metrics::Metrics::new(),
        })
    }

    /// Advertise `<backend version>-shardgate` to new clients.
    pub fn note_backend_version(&self, backend_version: &str) {
        // Called per leased connection: compare without building the string.
        let current = self.server_version.load();
        if current.strip_suffix("-shardgate") != Some(backend_version) {
            self.server_version.store(Arc::new(format!("{backend_version}-shardgate")));
        }
    }

    /// Record a change of roles and rebuild the cluster from (config, topology).
    /// Pools of servers whose role did not change are kept.
    pub fn set_topology(&self, change: impl FnOnce(&mut Topology)) {
        let mut topo = self.topology.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut topo);
        let rebuilt = Cluster::build_with(&self.config.load(), Some(&self.cluster.load()), &topo);
        self.cluster.store(Arc::new(rebuilt));
    }

    /// The live sessions' handles (a copy: the lock is not held while they are used).
    pub fn session_handles(&self) -> Vec<Arc<SessionHandle>> {
        self.sessions.lock().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// Start draining: every session closes (with error 1053) when it is
    /// idle outside a transaction; new clients are no longer accepted.
    pub fn start_draining(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Relaxed);
        for h in self.session_handles() {
            h.shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
            h.kill.notify_one();
        }
    }

    /// Close every session as soon as it waits for a command (the end of a drain).
    pub fn close_sessions(&self) {
        for h in self.session_handles() {
            h.close();
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A connection id no live session uses (wraps around, skipping 0).
    pub fn new_conn_id(&self) -> u32 {
        loop {
            let id = self.next_conn_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if id != 0 && !self.sessions.lock().map(|s| s.contains_key(&id)).unwrap_or(false) {
                return id;
            }
        }
    }
}
