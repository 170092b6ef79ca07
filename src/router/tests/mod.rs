//! Router tests: a fixed two-shard config and table-driven cases.

use std::collections::HashMap;

use super::plan::{Action, Plan, RouteError};
use super::{route, SessionView};
use crate::config::schema::{BackendSection, HealthSection, ProxySection};
use crate::config::{Algorithm, Config, KeyRange, KeyType, Server, Shard, ShardedTable, TableRule, UnparsedMode};

fn sharded(
    name: &str,
    key: &str,
    algorithm: Algorithm,
    key_type: KeyType,
    boundaries: Vec<i64>,
) -> (String, TableRule) {
    let t = ShardedTable {
        name: name.into(),
        shard_key: key.into(),
        algorithm,
        boundaries,
        key_type,
        collation: "utf8mb4_general_ci".into(),
    };
    (name.into(), TableRule::Sharded(t))
}

/// Two shards s0 = [0, 2^63), s1 = [2^63, ..); default shard s0; database "app".
pub(super) fn cfg() -> Config {
    let shard = |name: &str, start: u64, end: Option<u64>| Shard {
        tls: false,
        name: name.into(),
        primary: Server { addr: format!("{name}-primary:3306"), zone: None },
        standby: None,
        replicas: vec![Server { addr: format!("{name}-replica:3306"), zone: None }],
        key_range: KeyRange { start, end },
    };
    let tables: HashMap<String, TableRule> = [
        sharded("users", "user_id", Algorithm::Hash, KeyType::Int, vec![]),
        sharded("orders", "user_id", Algorithm::Hash, KeyType::Int, vec![]),
        sharded("items", "item_id", Algorithm::Mod, KeyType::Int, vec![]),
        sharded("events", "id", Algorithm::Range, KeyType::Int, vec![1000]),
        sharded("names", "name", Algorithm::Hash, KeyType::String, vec![]),
        ("countries".into(), TableRule::Broadcast),
    ]
    .into_iter()
    .collect();
    Config {
        proxy: ProxySection {
            listen: "127.0.0.1:3307".into(),
            admin_listen: None,
            max_connections: 100,
            default_shard: "s0".into(),
            login_timeout_ms: 10_000,
            workers: 0,
            max_allowed_packet: 1 << 24,
            merge_memory_mb: 64,
            auth_plugin: "mysql_native_password".into(),
            tls_cert: None,
            tls_key: None,
            rsa_private_key: None,
            name: None,
            transactions: Default::default(),
            unparsed: UnparsedMode::Error,
            zone: None,
            sequence_block: 1000,
            shutdown_timeout_s: 30,
            admin_token: None,
            admin_token_file: None,
            watch_config: true,
            allow_reshard: false,
            log_format: Default::default(),
        },
        backend: BackendSection {
            tls_ca: None,
            user: "proxy".into(),
            password: String::new(),
            database: "app".into(),
            pool_size: 4,
            connect_timeout_ms: 1000,
            pool_wait_ms: 1000,
            flavor: Default::default(),
            admin_user: None,
            admin_password: String::new(),
            replication_user: None,
            replication_password: String::new(),
        },
        health: HealthSection::default(),
        users: HashMap::new(),
        shards: vec![shard("s0", 0, Some(1 << 63)), shard("s1", 1 << 63, None)],
        default_shard: 0,
        tables,
        sequences: [("orders", "order_id"), ("events", "id"), ("countries", "id")]
            .into_iter()
            .map(|(t, c)| (t.to_string(), c.to_string()))
            .collect(),
    }
}

pub(super) const AUTO: SessionView<'static> =
    SessionView { in_transaction: false, autocommit: true, pinned: false, database: None, catalog: None };
pub(super) const IN_TX: SessionView<'static> =
    SessionView { in_transaction: true, autocommit: true, pinned: false, database: None, catalog: None };

/// Route with a fresh config, outside a transaction.
pub(super) fn r(sql: &str) -> Action {
    route(sql, &cfg(), &AUTO)
}

/// The plan of `sql` (panics on anything else).
pub(super) fn plan(sql: &str) -> Plan {
    plan_in(sql, &AUTO)
}

pub(super) fn plan_in(sql: &str, s: &SessionView<'_>) -> Plan {
    match route(sql, &cfg(), s) {
        Action::Query(p) => p,
        other => panic!("{sql}: expected a plan, got {other:?}"),
    }
}

/// The error of `sql` (panics on anything else).
pub(super) fn err(sql: &str) -> RouteError {
    err_in(sql, &AUTO)
}

pub(super) fn err_in(sql: &str, s: &SessionView<'_>) -> RouteError {
    match route(sql, &cfg(), s) {
        Action::Error(e) => e,
        other => panic!("{sql}: expected an error, got {other:?}"),
    }
}

/// The placements the tests rely on (users/orders hash on user_id; names hash
/// on a ci string). If the hash changes, this test says so first.
#[test]
fn assumed_placements() {
    let c = cfg();
    let place = |t: &str, v: super::KeyValue| {
        let Some(TableRule::Sharded(t)) = c.table(t) else { panic!("{t}") };
        super::algorithm::shard_for(&c, t, &v).unwrap()
    };
    for (v, s) in [(1, 0), (3, 0), (7, 0), (10, 0), (2, 1), (4, 1), (5, 1), (6, 1), (8, 1), (-1, 1), (-3, 0)] {
        assert_eq!(place("users", super::KeyValue::Int(v)), s, "users {v}");
    }
    for (v, s) in [("Bob", 0), ("bob ", 0), ("alice", 1), ("O'Brien", 1), ("x", 0)] {
        assert_eq!(place("names", super::KeyValue::Str(v.as_bytes().to_vec())), s, "names {v}");
    }
}

mod merge;
mod misc;
mod prepared;
mod select;
mod session;
mod write;
