//! Shared fixtures for the end-to-end tests: a hash-sharded test table, which
//! shard owns a key, and row counts on one backend.

use std::net::SocketAddr;

use mysql_async::prelude::Queryable;
use shardgate::config::TableRule;
use shardgate::router::algorithm::shard_for;
use shardgate::router::KeyValue;

use super::proxy::Proxy;
use super::Cluster;

/// A `[[tables]]` entry: `table` hashed on `user_id`.
pub fn sharded(table: &str) -> String {
    format!("[[tables]]\nname = \"{table}\"\nshard_key = \"user_id\"\nalgorithm = \"hash\"\n")
}

/// The shard that owns `key` of `table` under the proxy's config.
pub fn owner(proxy: &Proxy, table: &str, key: i64) -> usize {
    match proxy.config.table(table) {
        Some(TableRule::Sharded(t)) => shard_for(&proxy.config, t, &KeyValue::Int(key)).unwrap(),
        _ => panic!("{table} is not sharded"),
    }
}

/// Two keys of `table` on different shards.
pub fn keys_on_two_shards(proxy: &Proxy, table: &str) -> (i64, i64) {
    let a = 1;
    let b = (2..100).find(|&k| owner(proxy, table, k) != owner(proxy, table, a)).unwrap();
    (a, b)
}

/// `SELECT COUNT(*) FROM table filter` directly on one server.
pub fn count_on(addr: SocketAddr, table: &str, filter: &str) -> i64 {
    super::sql::scalar(addr, &format!("SELECT COUNT(*) FROM {table} {filter}")).unwrap().parse().unwrap()
}

/// The shared cluster, a proxy with `table` sharded on user_id, a client, and
/// the table created through the proxy.
pub async fn setup(table: &str) -> (&'static Cluster, Proxy, mysql_async::Conn) {
    let cluster = Cluster::shared();
    let proxy = Proxy::start(&cluster.shardgate_config(&sharded(table)));
    let mut c = proxy.conn().await;
    c.query_drop(format!("CREATE TABLE {table} (user_id BIGINT PRIMARY KEY, name VARCHAR(64))")).await.unwrap();
    (cluster, proxy, c)
}
