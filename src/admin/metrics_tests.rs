//! Statement classification, error sources, and the exposition a scrape returns.

use std::collections::BTreeMap;

use super::*;
use crate::backend::BackendError;
use crate::config::validate::parse;
use crate::config::{Config, ConfigHandle};
use crate::frontend::errors::MyErr;
use crate::health::{ProbeReport, ReplicaStatus, Replication};
use crate::router::{Action, SessionView, Targets};

/// Two shards (s0, s1), a replica each; `users` sharded by `user_id`.
const CONFIG: &str = "[proxy]\nlisten = \"127.0.0.1:0\"\ndefault_shard = \"s0\"\n\
     [backend]\nuser = \"app\"\ndatabase = \"app\"\n\
     [[users]]\nname = \"app\"\npassword = \"app\"\n\
     [[shards]]\nname = \"s0\"\nprimary = \"p0:1\"\nreplicas = [\"r0:1\"]\n\
     [[shards]]\nname = \"s1\"\nprimary = \"p1:1\"\nreplicas = [\"r1:1\"]\n\
     [[tables]]\nname = \"users\"\nshard_key = \"user_id\"\nalgorithm = \"hash\"\n";

fn config() -> Config {
    parse(CONFIG).expect("test config")
}

/// How a statement is counted when it is routed outside a transaction.
fn class(sql: &str) -> StmtClass {
    let cfg = config();
    let view =
        SessionView { in_transaction: false, autocommit: true, pinned: false, database: Some("app"), catalog: None };
    match crate::router::route(sql, &cfg, &view) {
        Action::Query(plan) => StmtClass::of_plan(&plan, cfg.shards.len()),
        action => StmtClass::of_action(&action, sql, 0, cfg.shards.len()).expect("a session action"),
    }
}

fn c(kind: Kind, route: Route) -> StmtClass {
    StmtClass { kind, route }
}

#[test]
fn statements_are_classified_by_the_router_plan() {
    let cases = [
        ("SELECT name FROM users WHERE user_id = 7", c(Kind::Read, Route::Single)),
        ("SELECT name FROM users", c(Kind::Read, Route::All)),
        ("SELECT COUNT(*) FROM users", c(Kind::Read, Route::All)),
        ("SHOW TABLES", c(Kind::Read, Route::Single)),
        ("INSERT INTO users (user_id, name) VALUES (1, 'a')", c(Kind::Write, Route::Single)),
        ("UPDATE users SET name = 'b' WHERE user_id = 1", c(Kind::Write, Route::Single)),
        ("DELETE FROM users", c(Kind::Write, Route::All)),
        ("CREATE TABLE t_metrics (id INT PRIMARY KEY)", c(Kind::Ddl, Route::Single)),
        ("CREATE TABLE users (user_id INT PRIMARY KEY)", c(Kind::Ddl, Route::All)),
        ("BEGIN", c(Kind::Tx, Route::Admin)),
        ("COMMIT", c(Kind::Tx, Route::Admin)),
        ("SAVEPOINT a", c(Kind::Tx, Route::Admin)),
        ("SET @x = 1", c(Kind::Other, Route::Admin)),
        ("SET NAMES utf8mb4", c(Kind::Other, Route::Admin)),
        ("USE app", c(Kind::Other, Route::Single)),
        ("SHOW SHARDGATE ROUTE SELECT 1", c(Kind::Read, Route::Admin)),
        ("SELECT LAST_INSERT_ID()", c(Kind::Read, Route::Admin)),
        ("SELECT ROW_COUNT()", c(Kind::Read, Route::Admin)),
        ("PREPARE s FROM 'SELECT 1'", c(Kind::Other, Route::Admin)),
        // Refused by the router: the proxy answers, the kind comes from the first keyword.
        ("XA START 'x'", c(Kind::Tx, Route::Admin)),
        ("SELEC nonsense", c(Kind::Other, Route::Admin)),
    ];
    for (sql, want) in cases {
        assert_eq!(class(sql), want, "{sql}");
    }
    // SQL EXECUTE is counted as the statement it runs; plans are classified by run_plan.
    let execute = Action::SqlExecute { name: "s".into(), using: vec![] };
    assert_eq!(StmtClass::of_action(&execute, "EXECUTE s", 0, 2), None);
}

#[test]
fn transaction_ends_count_the_shards_they_reach() {
    let commit = Action::EndTransaction { commit: true };
    assert_eq!(StmtClass::of_action(&commit, "COMMIT", 0, 3).unwrap().route, Route::Admin);
    assert_eq!(StmtClass::of_action(&commit, "COMMIT", 1, 3).unwrap().route, Route::Single);
    assert_eq!(StmtClass::of_action(&commit, "COMMIT", 2, 3).unwrap().route, Route::Multi);
    assert_eq!(StmtClass::of_action(&Action::Savepoint, "SAVEPOINT a", 3, 3).unwrap(), c(Kind::Tx, Route::All));
}

#[test]
fn routes_by_target_count() {
    assert_eq!(Route::of_targets(&Targets::Shard(1), 4), Route::Single);
    assert_eq!(Route::of_targets(&Targets::AnyShard, 4), Route::Single);
    assert_eq!(Route::of_targets(&Targets::Shards(vec![2]), 4), Route::Single);
    assert_eq!(Route::of_targets(&Targets::Shards(vec![0, 2]), 4), Route::Multi);
    assert_eq!(Route::of_targets(&Targets::Shards(vec![0, 1, 2, 3]), 4), Route::All);
    assert_eq!(Route::of_targets(&Targets::All, 4), Route::All);
    assert_eq!(Route::of_targets(&Targets::All, 1), Route::All);
}

#[test]
fn kind_of_refused_text_skips_comments() {
    assert_eq!(Kind::of_text("  /* shardgate:shard=s1 */ select 1"), Kind::Read);
    assert_eq!(Kind::of_text("-- note\n# more\n(SELECT 1) UNION (SELECT 2)"), Kind::Read);
    assert_eq!(Kind::of_text("replace into t values (1)"), Kind::Write);
    assert_eq!(Kind::of_text("TRUNCATE t"), Kind::Ddl);
    assert_eq!(Kind::of_text("xa recover"), Kind::Tx);
    assert_eq!(Kind::of_text("START TRANSACTION"), Kind::Tx);
    assert_eq!(Kind::of_text("SELECTX"), Kind::Other);
    assert_eq!(Kind::of_text("/* unterminated"), Kind::Other);
    assert_eq!(Kind::of_text(""), Kind::Other);
}

#[test]
fn error_sources() {
    let server = BackendError::Server(crate::protocol::wire::ErrInfo {
        code: 1062,
        sqlstate: *b"23000",
        message: "Duplicate entry".into(),
    });
    assert_eq!(ErrorSource::of(&MyErr::from_backend(&server)), ErrorSource::Backend);
    // A server's parse error is still the server's.
    let parse_err = crate::protocol::wire::ErrInfo { code: 1064, sqlstate: *b"42000", message: "syntax".into() };
    assert_eq!(ErrorSource::of(&MyErr::from_server(parse_err)), ErrorSource::Backend);
    assert_eq!(ErrorSource::of(&MyErr::not_supported("cross-shard thing")), ErrorSource::Client);
    assert_eq!(ErrorSource::of(&MyErr::access_denied("u", "h", true)), ErrorSource::Client);
    assert_eq!(ErrorSource::of(&MyErr::malformed("x")), ErrorSource::Client);
    assert_eq!(ErrorSource::of(&MyErr::packet_too_large(10)), ErrorSource::Client);
    let addr: Arc<str> = Arc::from("p0:1");
    let unreachable = BackendError::Connect { addr: addr.clone(), reason: "refused".into() };
    assert_eq!(ErrorSource::of(&MyErr::from_backend(&unreachable)), ErrorSource::Proxy);
    let lost = BackendError::Lost { addr: addr.clone(), reason: "eof".into() };
    assert_eq!(ErrorSource::of(&MyErr::from_backend(&lost)), ErrorSource::Proxy);
    let timeout = BackendError::PoolTimeout { addr, waited: Duration::from_millis(5), size: 1 };
    assert_eq!(ErrorSource::of(&MyErr::from_backend(&timeout)), ErrorSource::Proxy);
    assert_eq!(ErrorSource::of(&MyErr::new(1038, "HY001", "merge over budget")), ErrorSource::Proxy);
    assert_eq!(ErrorSource::of(&MyErr::writes_refused("s0", "why")), ErrorSource::Proxy);
}

/// One sample line: its labels and value.
type Sample = (BTreeMap<String, String>, f64);

/// Sample lines by name.
fn samples(text: &str) -> BTreeMap<String, Vec<Sample>> {
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split(',')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("label=value");
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        out.entry(name.to_owned()).or_default().push((labels, value.parse().expect("a number")));
    }
    out
}

fn value(all: &BTreeMap<String, Vec<Sample>>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    all.get(name)
        .and_then(|v| v.iter().find(|(l, _)| *l == want))
        .unwrap_or_else(|| panic!("no sample {name}{want:?}"))
        .1
}

fn shared() -> Arc<Shared> {
    Shared::new(ConfigHandle::new(config()))
}

#[test]
fn the_exposition_has_every_metric_with_its_type() {
    let shared = shared();
    let replica = shared.cluster.load().backend("r1:1").unwrap().clone();
    let lagging = Replication::Replica(ReplicaStatus { seconds_behind: Some(3), ..Default::default() });
    replica.probe.store(Arc::new(ProbeReport { replication: lagging, ..Default::default() }));
    let text = render(&shared);
    let types = [
        ("shardgate_client_connections", "gauge"),
        ("shardgate_client_connections_total", "counter"),
        ("shardgate_queries_total", "counter"),
        ("shardgate_query_errors_total", "counter"),
        ("shardgate_query_duration_seconds", "histogram"),
        ("shardgate_backend_up", "gauge"),
        ("shardgate_backend_queries_total", "counter"),
        ("shardgate_pool_connections", "gauge"),
        ("shardgate_pool_wait_seconds", "histogram"),
        ("shardgate_replica_lag_seconds", "gauge"),
        ("shardgate_failovers_total", "counter"),
        ("shardgate_failover_duration_seconds", "histogram"),
        ("shardgate_config_reloads_total", "counter"),
        ("shardgate_config_last_reload_success_timestamp_seconds", "gauge"),
        ("shardgate_unparsed_statements_total", "counter"),
        ("shardgate_auth_failures_total", "counter"),
        ("shardgate_failover_waits_total", "counter"),
        ("shardgate_failover_wait_timeouts_total", "counter"),
        ("shardgate_errant_fenced_total", "counter"),
        ("shardgate_build_info", "gauge"),
    ];
    for (name, ty) in types {
        assert!(text.contains(&format!("\n# TYPE {name} {ty}\n")), "no TYPE line for {name} ({ty}) in\n{text}");
        assert!(text.contains(&format!("# HELP {name} ")), "no HELP for {name}");
    }
    let s = samples(&text);
    assert_eq!(value(&s, "shardgate_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    assert_eq!(value(&s, "shardgate_replica_lag_seconds", &[("shard", "s1"), ("addr", "r1:1")]), 3.0);
    for (shard, addr, role) in [("s0", "p0:1", "primary"), ("s0", "r0:1", "replica"), ("s1", "r1:1", "replica")] {
        let labels = [("shard", shard), ("addr", addr), ("role", role)];
        assert_eq!(value(&s, "shardgate_backend_up", &labels), 1.0, "{addr}");
        assert_eq!(value(&s, "shardgate_backend_queries_total", &labels), 0.0, "{addr}");
        for state in ["idle", "active"] {
            let labels = [("shard", shard), ("addr", addr), ("state", state)];
            assert_eq!(value(&s, "shardgate_pool_connections", &labels), 0.0);
        }
    }
    assert_eq!(value(&s, "shardgate_failovers_total", &[("shard", "s1"), ("result", "refused")]), 0.0);
    let started = value(&s, "shardgate_config_last_reload_success_timestamp_seconds", &[]);
    assert!(started > 1.6e9, "the initial load sets the timestamp: {started}");
    assert_eq!(value(&s, "shardgate_config_reloads_total", &[("result", "ok")]), 0.0, "startup is no reload");
}

#[test]
fn labels_stay_within_their_fixed_sets() {
    let shared = shared();
    let m = &shared.metrics;
    for kind in Kind::ALL {
        for route in Route::ALL {
            m.statement(StmtClass { kind, route }, Instant::now());
        }
    }
    for source in ErrorSource::ALL {
        m.error(source);
    }
    let s = samples(&render(&shared));
    let queries = &s["shardgate_queries_total"];
    assert_eq!(queries.len(), 20, "kind × route, every combination from the start");
    for (labels, v) in queries {
        assert_eq!(labels.keys().collect::<Vec<_>>(), ["kind", "route"]);
        assert!(Kind::ALL.iter().any(|k| k.label() == labels["kind"]), "{labels:?}");
        assert!(Route::ALL.iter().any(|r| r.label() == labels["route"]), "{labels:?}");
        assert_eq!(*v, 1.0);
    }
    assert_eq!(s["shardgate_query_errors_total"].len(), 3);
    for route in Route::ALL {
        assert_eq!(value(&s, "shardgate_query_duration_seconds_count", &[("route", route.label())]), 5.0);
    }
    // Only the config's shard names and addresses, never anything a client sent.
    for (name, series) in &s {
        for (labels, _) in series {
            for (k, v) in labels {
                let allowed = match k.as_str() {
                    "shard" => ["s0", "s1"].contains(&v.as_str()),
                    "addr" => ["p0:1", "r0:1", "p1:1", "r1:1"].contains(&v.as_str()),
                    "role" => ["primary", "standby", "replica", "fenced"].contains(&v.as_str()),
                    "state" => ["idle", "active"].contains(&v.as_str()),
                    "result" => ["ok", "error", "refused", "failed"].contains(&v.as_str()),
                    "source" => ["client", "backend", "proxy"].contains(&v.as_str()),
                    "kind" | "route" | "le" | "version" => true,
                    _ => false,
                };
                assert!(allowed, "{name}: label {k}={v}");
            }
        }
    }
}

#[test]
fn reloads_failovers_and_pool_waits_are_counted() {
    let shared = shared();
    let m = &shared.metrics;
    let before = samples(&render(&shared));
    let t0 = value(&before, "shardgate_config_last_reload_success_timestamp_seconds", &[]);
    m.config_reloaded(false);
    let s = samples(&render(&shared));
    assert_eq!(value(&s, "shardgate_config_reloads_total", &[("result", "error")]), 1.0);
    assert_eq!(value(&s, "shardgate_config_last_reload_success_timestamp_seconds", &[]), t0, "a failed reload");
    std::thread::sleep(Duration::from_millis(5));
    m.config_reloaded(true);
    let s = samples(&render(&shared));
    assert_eq!(value(&s, "shardgate_config_reloads_total", &[("result", "ok")]), 1.0);
    assert!(value(&s, "shardgate_config_last_reload_success_timestamp_seconds", &[]) > t0);

    m.failover("s1", FailoverResult::Ok, Some(Duration::from_millis(1500)));
    m.failover("s1", FailoverResult::Failed, None);
    m.pool_wait.observe(0.002);
    let s = samples(&render(&shared));
    assert_eq!(value(&s, "shardgate_failovers_total", &[("shard", "s1"), ("result", "ok")]), 1.0);
    assert_eq!(value(&s, "shardgate_failovers_total", &[("shard", "s1"), ("result", "failed")]), 1.0);
    assert_eq!(value(&s, "shardgate_failover_duration_seconds_count", &[]), 1.0);
    assert_eq!(value(&s, "shardgate_failover_duration_seconds_sum", &[]), 1.5);
    assert_eq!(value(&s, "shardgate_pool_wait_seconds_count", &[]), 1.0);
}

#[test]
fn stats_counters_are_exported_as_they_are() {
    let shared = shared();
    shared.stats.auth_failures.fetch_add(2, Ordering::Relaxed);
    shared.stats.unparsed.fetch_add(3, Ordering::Relaxed);
    shared.stats.clients_total.fetch_add(4, Ordering::Relaxed);
    shared.clients.fetch_add(1, Ordering::Relaxed);
    for _ in 0..2 {
        // Twice: a scrape sets them, it does not add.
        let s = samples(&render(&shared));
        assert_eq!(value(&s, "shardgate_auth_failures_total", &[]), 2.0);
        assert_eq!(value(&s, "shardgate_unparsed_statements_total", &[]), 3.0);
        assert_eq!(value(&s, "shardgate_client_connections_total", &[]), 4.0);
        assert_eq!(value(&s, "shardgate_client_connections", &[]), 1.0);
    }
}

#[test]
fn backend_statement_counts_survive_rebuilds_and_role_changes() {
    let shared = shared();
    let q = |s: &BTreeMap<_, _>, addr, role| {
        value(s, "shardgate_backend_queries_total", &[("shard", "s0"), ("addr", addr), ("role", role)])
    };
    let old_primary = shared.cluster.load().backend("p0:1").unwrap().clone();
    old_primary.queries.fetch_add(5, Ordering::Relaxed);
    assert_eq!(q(&samples(&render(&shared)), "p0:1", "primary"), 5.0);

    // A rebuild that changes nothing for s0 (e.g. a failover elsewhere) keeps the counter.
    shared.set_topology(|t| {
        t.draining.insert("s1".into());
    });
    let rebuilt = shared.cluster.load().backend("p0:1").unwrap().clone();
    assert!(!Arc::ptr_eq(&rebuilt, &old_primary));
    rebuilt.queries.fetch_add(1, Ordering::Relaxed);
    old_primary.queries.fetch_add(1, Ordering::Relaxed); // a session still holding the old Backend
    assert_eq!(q(&samples(&render(&shared)), "p0:1", "primary"), 7.0);

    // Promotion: r0 becomes the primary, p0 is fenced; both start new counters
    // for their new roles, and statements still sent through the old
    // primary's Backend keep counting for (p0, primary).
    shared.set_topology(|t| {
        t.primary.insert("s0".into(), "r0:1".into());
        t.fenced.insert("p0:1".into());
    });
    old_primary.queries.fetch_add(2, Ordering::Relaxed);
    let s = samples(&render(&shared));
    assert_eq!(q(&s, "p0:1", "primary"), 9.0, "the old series goes on and never goes back");
    assert_eq!(q(&s, "p0:1", "fenced"), 0.0);
    assert_eq!(q(&s, "r0:1", "primary"), 0.0);
    assert_eq!(q(&s, "r0:1", "replica"), 0.0);
    shared.cluster.load().backend("r0:1").unwrap().queries.fetch_add(3, Ordering::Relaxed);
    let s = samples(&render(&shared));
    assert_eq!(q(&s, "r0:1", "primary"), 3.0);
    assert_eq!(q(&s, "p0:1", "primary"), 9.0);
    let up = |addr, role| value(&s, "shardgate_backend_up", &[("shard", "s0"), ("addr", addr), ("role", role)]);
    assert_eq!((up("r0:1", "primary"), up("p0:1", "fenced")), (1.0, 1.0));
    assert!(
        !s["shardgate_backend_up"].iter().any(|(l, _)| l["addr"] == "r0:1" && l["role"] == "replica"),
        "gauges show the current roles only"
    );
    // The replaced counters stopped moving: no longer followed (their series stay).
    assert_eq!(shared.metrics.scrape.lock().unwrap().len(), 4);
}
