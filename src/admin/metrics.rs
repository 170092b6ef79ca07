//! Prometheus metrics, served in the text exposition format on the admin
//! port's `GET /metrics` ([`render`]).
//!
//! Each [`Shared`] owns one [`Metrics`] with its own [`Registry`] (tests run
//! many proxies in one process; the crate's global registry is never used).
//!
//! Where counting happens, and what it costs:
//! - Per statement (COM_QUERY, COM_STMT_EXECUTE; not COM_STMT_PREPARE):
//!   `execute::com_query` and `prepared::com_stmt_execute` read the clock once
//!   at the start, and at the end count the statement and observe its
//!   duration under the [`StmtClass`] that `run_action` / `run_plan` left in
//!   the session ([`Metrics::statement`]). The label combinations are resolved
//!   to child handles once, here, and indexed by enum: one counter increment and
//!   one histogram observe, no label hashing, no lock.
//! - Errors ([`Metrics::error`]): `Session::send_err`, which writes every ERR
//!   the proxy sends itself (its own errors and backend errors it re-sends),
//!   and `relay_one`, which copies backend ERR packets through unchanged.
//! - Pool waits: `Pool::get_observed` observes only when the pool was full and
//!   the statement had to wait (the fast path reads no clock).
//! - Statements per backend: the `queries` counter each `Backend` already had,
//!   read at scrape time (see [`Tracked`]).
//! - Failovers: `health::failover` ([`Metrics::failover`]).
//! - Config reloads: [`Metrics::config_reloaded`], called by the reload code.
//! - Everything else (client connections, backend health and roles, pool
//!   sizes, replica lag, the [`crate::frontend::Stats`] counters) is read at
//!   scrape time from the atomics and the current cluster snapshot, so it costs
//!   nothing between scrapes and removed backends disappear.
//!
//! Label values are bounded: fixed words, and shard names and server
//! addresses from the config. Never a query text or a client address.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use super::unix_now;
use crate::frontend::Shared;

#[path = "metrics_labels.rs"]
mod labels;
pub use labels::{ErrorSource, FailoverResult, Kind, Route, StmtClass};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Seconds, for statement durations and pool waits: 50 µs to 10 s.
const LATENCY_BUCKETS: [f64; 17] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Seconds, for failovers: 100 ms to 2 min.
const FAILOVER_BUCKETS: [f64; 11] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0];

/// A [`crate::frontend::Stats`] counter exported as it is.
type StatRead = fn(&Shared) -> u64;

/// Every metric of one proxy.
pub struct Metrics {
    registry: Registry,
    /// `shardgate_queries_total`, by [`Kind`] then [`Route`].
    queries: [[IntCounter; 4]; 5],
    /// `shardgate_query_duration_seconds`, by [`Route`].
    durations: [Histogram; 4],
    /// `shardgate_query_errors_total`, by [`ErrorSource`].
    errors: [IntCounter; 3],
    /// `shardgate_pool_wait_seconds`: given to `Pool::get_observed`.
    pub pool_wait: Histogram,
    failovers: IntCounterVec,
    failover_duration: Histogram,
    /// `shardgate_config_reloads_total`: ok, error.
    reloads: [IntCounter; 2],
    last_reload: Gauge,
    // Set at scrape time.
    clients: IntGauge,
    stats: Vec<(IntCounter, StatRead)>,
    backend_up: IntGaugeVec,
    backend_queries: IntCounterVec,
    pool_connections: IntGaugeVec,
    replica_lag: GaugeVec,
    /// Held while a scrape updates and gathers (one scrape at a time).
    scrape: Mutex<Vec<Tracked>>,
}

/// A backend's statement counter as the last scrape saw it.
///
/// `Backend::queries` counts statements sent to that server; `Cluster::build_with`
/// hands the same counter to the rebuilt `Backend` while the server keeps its
/// shard, role and pool (failover elsewhere, a config reload), so it is
/// monotonic across rebuilds. A server that changes role (promoted, fenced,
/// rejoined) gets a fresh counter. The exported counter for (shard, addr, role)
/// grows by each counter's increase since the previous scrape, so it never
/// goes back; a replaced counter is followed until it stops moving (sessions
/// may still hold the old `Backend`), then dropped.
struct Tracked {
    counter: Arc<AtomicU64>,
    labels: [String; 3],
    child: IntCounter,
    last: u64,
}

fn register<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry.register(Box::new(c.clone())).expect("metric names are unique");
    c
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::new(name, help).expect("valid metric"))
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(registry, IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

fn histogram(registry: &Registry, opts: HistogramOpts) -> Histogram {
    register(registry, Histogram::with_opts(opts).expect("valid metric"))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric. The initial config load counts as a
    /// successful load (timestamp set), not as a reload.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let queries = counter_vec(
            &r,
            "shardgate_queries_total",
            "Client statements (COM_QUERY and COM_STMT_EXECUTE), by kind (read, write, ddl, tx, other) and route \
             (single: one shard, multi: several, all: every shard, admin: answered by the proxy itself).",
            &["kind", "route"],
        );
        let durations = register(
            &r,
            prometheus::HistogramVec::new(
                HistogramOpts::new(
                    "shardgate_query_duration_seconds",
                    "Time from a client statement arriving to its whole response being queued for the client, by route.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["route"],
            )
            .expect("valid metric"),
        );
        let errors = counter_vec(
            &r,
            "shardgate_query_errors_total",
            "Errors sent to clients, by source: client (the request was wrong or refused, e.g. 1235, parse errors, \
             access denied), backend (a MySQL server's own error), proxy (the proxy failed: backend unreachable, \
             connection lost, pool timeout, merge over budget ...).",
            &["source"],
        );
        let reloads = counter_vec(
            &r,
            "shardgate_config_reloads_total",
            "Configuration reloads, by result (ok, error); the initial load is not counted.",
            &["result"],
        );
        let build_info =
            gauge_vec(&r, "shardgate_build_info", "Always 1; the shardgate version as a label.", &["version"]);
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let last_reload = register(
            &r,
            Gauge::new(
                "shardgate_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful configuration load (startup or reload).",
            )
            .expect("valid metric"),
        );
        last_reload.set(unix_now());
        let stat = |name: &str, help: &str, read: StatRead| (counter(&r, name, help), read);
        let stats: Vec<(IntCounter, StatRead)> = vec![
            stat("shardgate_client_connections_total", "Client connections accepted.", |s| {
                s.stats.clients_total.load(Ordering::Relaxed)
            }),
            stat(
                "shardgate_unparsed_statements_total",
                "Statements sqlparser could not parse (forwarded to one shard as written, or refused).",
                |s| s.stats.unparsed.load(Ordering::Relaxed),
            ),
            stat("shardgate_auth_failures_total", "Failed client logins (wrong credentials, TLS required).", |s| {
                s.stats.auth_failures.load(Ordering::Relaxed)
            }),
            stat(
                "shardgate_failover_waits_total",
                "Statements that waited for a shard's primary (failover buffering, planned switchover).",
                |s| s.stats.failover_waits.load(Ordering::Relaxed),
            ),
            stat(
                "shardgate_failover_wait_timeouts_total",
                "Statements that gave up waiting for a shard's primary after health.failover_buffer_ms.",
                |s| s.stats.failover_wait_timeouts.load(Ordering::Relaxed),
            ),
            stat(
                "shardgate_errant_fenced_total",
                "Replaced primaries left fenced because they hold transactions the new primary lacks (errant GTIDs).",
                |s| s.stats.errant_fenced.load(Ordering::Relaxed),
            ),
        ];
        Metrics {
            queries: std::array::from_fn(|k| {
                std::array::from_fn(|rt| queries.with_label_values(&[Kind::ALL[k].label(), Route::ALL[rt].label()]))
            }),
            durations: std::array::from_fn(|rt| durations.with_label_values(&[Route::ALL[rt].label()])),
            errors: std::array::from_fn(|s| errors.with_label_values(&[ErrorSource::ALL[s].label()])),
            pool_wait: histogram(
                &r,
                HistogramOpts::new(
                    "shardgate_pool_wait_seconds",
                    "Time a statement waited for a pooled backend connection because the pool was full (statements \
                     that found one free are not observed); a wait that timed out is observed too.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            ),
            failovers: counter_vec(
                &r,
                "shardgate_failovers_total",
                "Failovers of a shard's primary, by result: ok (writes go to a new primary), refused (no replica \
                 qualified), failed (a promotion did not complete; retried).",
                &["shard", "result"],
            ),
            failover_duration: histogram(
                &r,
                HistogramOpts::new(
                    "shardgate_failover_duration_seconds",
                    "Time from the failover logic finding a shard's primary dead to writes going to the new primary \
                     (promotions and active-active flips that succeeded).",
                )
                .buckets(FAILOVER_BUCKETS.to_vec()),
            ),
            reloads: [reloads.with_label_values(&["ok"]), reloads.with_label_values(&["error"])],
            last_reload,
            clients: register(
                &r,
                IntGauge::new(
                    "shardgate_client_connections",
                    "Client connections open now (including those still logging in).",
                )
                .expect("valid metric"),
            ),
            stats,
            backend_up: gauge_vec(
                &r,
                "shardgate_backend_up",
                "1 if the health checker sees the server up, else 0; role: primary, standby, replica, fenced.",
                &["shard", "addr", "role"],
            ),
            backend_queries: counter_vec(
                &r,
                "shardgate_backend_queries_total",
                "Client statements sent to the server, by its role when they were sent.",
                &["shard", "addr", "role"],
            ),
            pool_connections: gauge_vec(
                &r,
                "shardgate_pool_connections",
                "Pooled backend connections open now, by state (idle, active: leased to a statement or held by a \
                 session).",
                &["shard", "addr", "state"],
            ),
            replica_lag: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "shardgate_replica_lag_seconds",
                        "Seconds_Behind_Master at the server's last health probe (servers that replicate and report it).",
                    ),
                    &["shard", "addr"],
                )
                .expect("valid metric"),
            ),
            scrape: Mutex::new(Vec::new()),
            registry: r,
        }
    }

    /// One client statement ended: count it and observe how long it took.
    #[inline]
    pub fn statement(&self, class: StmtClass, started: Instant) {
        self.queries[class.kind as usize][class.route as usize].inc();
        self.durations[class.route as usize].observe(started.elapsed().as_secs_f64());
    }

    /// An error reached a client.
    #[inline]
    pub fn error(&self, source: ErrorSource) {
        self.errors[source as usize].inc();
    }

    /// A failover of `shard` ended with `result`; `took`: from finding the
    /// primary dead to writes going to the new one.
    pub fn failover(&self, shard: &str, result: FailoverResult, took: Option<Duration>) {
        self.failovers.with_label_values(&[shard, result.label()]).inc();
        if let Some(d) = took {
            self.failover_duration.observe(d.as_secs_f64());
        }
    }

    /// A configuration reload ended: counts it by result and, when it took
    /// effect, sets `shardgate_config_last_reload_success_timestamp_seconds`
    /// to now. (The initial load set the timestamp and is not counted.)
    pub fn config_reloaded(&self, ok: bool) {
        self.reloads[usize::from(!ok)].inc();
        if ok {
            self.last_reload.set(unix_now());
        }
    }

    /// Bring the scrape-time metrics up to date (under the scrape lock).
    fn update(&self, shared: &Shared, tracked: &mut Vec<Tracked>) {
        self.clients.set(i64::try_from(shared.clients.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        for (c, read) in &self.stats {
            // Exported as the atomic's value: the only writer is this scrape.
            c.reset();
            c.inc_by(read(shared));
        }
        self.backend_up.reset();
        self.pool_connections.reset();
        self.replica_lag.reset();
        let cluster = shared.cluster.load();
        let mut live: Vec<&Arc<AtomicU64>> = Vec::new();
        for nodes in &cluster.shards {
            for (b, role) in nodes.servers() {
                let (shard, addr) = (nodes.name.as_str(), &*b.addr);
                self.backend_up.with_label_values(&[shard, addr, role]).set(i64::from(b.is_up()));
                let pool = [("idle", b.pool.idle_count()), ("active", b.pool.in_use())];
                for (state, n) in pool {
                    self.pool_connections.with_label_values(&[shard, addr, state]).set(n as i64);
                }
                let report = crate::health::latest(b);
                if let crate::health::Replication::Replica(r) = &report.replication {
                    if let Some(lag) = r.seconds_behind {
                        self.replica_lag.with_label_values(&[shard, addr]).set(lag as f64);
                    }
                }
                let labels = [shard.to_owned(), addr.to_owned(), role.to_owned()];
                match tracked.iter_mut().find(|t| Arc::ptr_eq(&t.counter, &b.queries)) {
                    // (An active-active flip keeps the pool, and so the counter,
                    // of a server going from standby to primary: later
                    // increases count for its new role.)
                    Some(t) if t.labels != labels => {
                        t.child = self.backend_queries.with_label_values(&labels);
                        t.labels = labels;
                    }
                    Some(_) => {}
                    None => tracked.push(Tracked {
                        counter: b.queries.clone(),
                        child: self.backend_queries.with_label_values(&labels),
                        labels,
                        last: 0,
                    }),
                }
                live.push(&b.queries);
            }
            for result in FailoverResult::ALL {
                // Present at 0 from the start, so rate() and alerts see the first one.
                self.failovers.with_label_values(&[nodes.name.as_str(), result.label()]);
            }
        }
        tracked.retain_mut(|t| {
            let now = t.counter.load(Ordering::Relaxed);
            let moved = now.saturating_sub(t.last);
            t.child.inc_by(moved);
            t.last = now;
            moved > 0 || live.iter().any(|c| Arc::ptr_eq(c, &t.counter))
        });
    }
}

/// The body of `GET /metrics`: every metric in the text exposition format
/// ([`CONTENT_TYPE`]).
pub fn render(shared: &Shared) -> String {
    let m = &shared.metrics;
    let mut tracked = m.scrape.lock().unwrap_or_else(|e| e.into_inner());
    m.update(shared, &mut tracked);
    let mut out = String::new();
    if let Err(e) = TextEncoder::new().encode_utf8(&m.registry.gather(), &mut out) {
        tracing::warn!(error = %e, "cannot encode metrics");
    }
    out
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
