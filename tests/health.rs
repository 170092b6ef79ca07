//! Backend failures and replication health, each test with a private cluster
//! (they stop servers or replication, so they do not share the cluster other
//! tests use).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use shardgate::health::{self, ProbeReport};
use support::proxy::{err_code, rows, Proxy};
use support::{Cluster, ClusterOptions};

/// Probe every 100 ms; two results in a row flip a backend.
const FAST_HEALTH: &str = "[health]\ninterval_ms = 100\ntimeout_ms = 500\ndown_after = 2\n";

/// The cluster's config with fast probing and `health` (more `[health]` keys).
fn fast_config(cluster: &Cluster, health: &str) -> String {
    cluster.shardgate_config("").replace("[[shards]]", &format!("{FAST_HEALTH}{health}\n[[shards]]"))
}

/// The server that answers a read through the proxy.
async fn read_port(c: &mut Conn) -> u16 {
    rows(c, "SELECT @@port").await[0][0].clone().unwrap().parse().unwrap()
}

/// Polls reads through the proxy until they are answered by `port`; how long that took.
async fn wait_reads_on(c: &mut Conn, port: u16, what: &str) -> Duration {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(15);
    while read_port(c).await != port {
        assert!(Instant::now() < deadline, "{what}: reads never went to port {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// The health checker's latest report on `addr`.
fn report(proxy: &Proxy, addr: SocketAddr) -> std::sync::Arc<ProbeReport> {
    let cluster = proxy.shared().cluster.load();
    health::latest(cluster.backend(&addr.to_string()).expect("a backend of the proxy"))
}

/// A direct connection to one server (not through the proxy), as the operator
/// account (`app` has no READ_ONLY ADMIN, so it cannot lock rows on a replica).
async fn direct(addr: SocketAddr) -> Conn {
    Conn::new(support::sql::operator_opts(addr)).await.expect("connect to the server directly")
}

#[tokio::test]
async fn reads_fall_back_to_the_primary_and_a_dead_primary_is_a_clear_error() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 1, semi_sync: false });
    let shard = &cluster.shards()[0];
    let cfg = cluster
        .shardgate_config("")
        .replace("database = \"app\"\n", "database = \"app\"\nconnect_timeout_ms = 500\n")
        .replace(
            "[[shards]]",
            "[health]\ninterval_ms = 100\ntimeout_ms = 300\ndown_after = 2\nfailover = \"off\"\nfailover_buffer_ms = 1000\n\n[[shards]]",
        );
    let proxy = Proxy::start(&cfg);
    let mut c = proxy.conn().await;
    let port = |r: &Vec<Vec<Option<String>>>| r[0][0].clone().unwrap().parse::<u16>().unwrap();
    assert_eq!(port(&rows(&mut c, "SELECT @@port").await), shard.replicas[0].port(), "reads use the replica");

    cluster.stop_server(shard.replicas[0]);
    // Every read keeps working: first by falling back after a failed connect,
    // then because the health checker took the replica out of rotation.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = rows(&mut c, "SELECT @@port").await;
        assert_eq!(port(&r), shard.primary.port(), "reads fall back to the primary");
        let backend_down = proxy.shared().cluster.load().backends().any(|b| {
            b.addr.as_ref() == shard.replicas[0].to_string() && !b.up.load(std::sync::atomic::Ordering::Relaxed)
        });
        if backend_down {
            break;
        }
        assert!(Instant::now() < deadline, "health checker never marked the replica down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    cluster.start_server(shard.replicas[0]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while port(&rows(&mut c, "SELECT @@port").await) != shard.replicas[0].port() {
        assert!(Instant::now() < deadline, "replica never came back into rotation");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    cluster.kill_primary(shard);
    let started = Instant::now();
    let (code, msg) = err_code(&mut c, "CREATE TABLE after_crash (id INT)").await;
    assert!(code == 1429 || code == 1317, "clear backend error, got {code}: {msg}");
    assert!(started.elapsed() < Duration::from_secs(3), "within failover_buffer_ms, not a hang");
    // Reads still flow from the replica.
    assert_eq!(port(&rows(&mut c, "SELECT @@port").await), shard.replicas[0].port());
}

#[tokio::test]
async fn reads_rotate_over_healthy_replicas_and_show_is_a_read() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 2, semi_sync: false });
    let shard = &cluster.shards()[0];
    let proxy = Proxy::start(&cluster.shardgate_config(""));
    let mut c = proxy.conn().await;
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..20 {
        let r = rows(&mut c, "SELECT @@port").await;
        *seen.entry(r[0][0].clone().unwrap().parse::<u16>().unwrap()).or_insert(0) += 1;
    }
    let replicas: std::collections::BTreeSet<u16> = shard.replicas.iter().map(|r| r.port()).collect();
    assert_eq!(
        seen.keys().copied().collect::<std::collections::BTreeSet<_>>(),
        replicas,
        "both replicas, never the primary: {seen:?}"
    );
    assert!(seen.values().all(|&n| n >= 5), "round-robin, not one favourite: {seen:?}");
    let r = rows(&mut c, "SHOW VARIABLES LIKE 'port'").await;
    let port: u16 = r[0][1].clone().unwrap().parse().unwrap();
    assert!(replicas.contains(&port), "SHOW is served by a replica, got {port}");
}

#[tokio::test]
async fn a_replica_whose_sql_thread_stops_leaves_the_read_rotation_until_it_catches_up() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 1, semi_sync: false });
    let shard = &cluster.shards()[0];
    let (primary, replica) = (shard.primary, shard.replicas[0]);
    let proxy = Proxy::start(&fast_config(&cluster, ""));
    let mut c = proxy.conn().await;
    assert_eq!(read_port(&mut c).await, replica.port(), "a fit replica serves reads from the start");
    let r = report(&proxy, replica);
    let status = r.replica().expect("the probe read SHOW SLAVE STATUS");
    assert!(status.io_running && status.sql_running, "{r:?}");
    assert_eq!(status.seconds_behind, Some(0));
    assert_eq!(status.source, primary.to_string());
    assert_eq!(r.read_only, Some(true));
    assert!(r.gtid_executed.is_some() && r.gtid_slave_pos.is_some(), "{r:?}");
    let p = report(&proxy, primary);
    assert_eq!((p.read_only, p.replica()), (Some(false), None), "the primary replicates from nobody: {p:?}");

    cluster.exec(replica, "STOP SLAVE SQL_THREAD");
    let took = wait_reads_on(&mut c, primary.port(), "SQL thread stopped").await;
    assert!(took < Duration::from_secs(3), "left the rotation only after {took:?}");
    let r = report(&proxy, replica);
    assert!(!r.replica().unwrap().sql_running, "{r:?}");
    for _ in 0..5 {
        assert_eq!(read_port(&mut c).await, primary.port(), "stays out while the SQL thread is stopped");
    }
    // Writes it has not applied yet: when it is back, it must have them.
    c.query_drop("CREATE TABLE lag_sql (id INT PRIMARY KEY)").await.unwrap();
    c.query_drop("INSERT INTO lag_sql VALUES (1), (2), (3)").await.unwrap();

    cluster.exec(replica, "START SLAVE SQL_THREAD");
    wait_reads_on(&mut c, replica.port(), "SQL thread restarted").await;
    let n = rows(&mut c, "SELECT COUNT(*), @@port FROM lag_sql").await;
    assert_eq!(n[0], [Some("3".into()), Some(replica.port().to_string())], "it applied the writes it missed");
}

#[tokio::test]
async fn a_replica_lagging_beyond_max_replica_lag_s_leaves_the_read_rotation() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 1, semi_sync: false });
    let shard = &cluster.shards()[0];
    let (primary, replica) = (shard.primary, shard.replicas[0]);
    let proxy = Proxy::start(&fast_config(&cluster, "max_replica_lag_s = 1\n"));
    let mut c = proxy.conn().await;
    c.query_drop("CREATE TABLE lag_rows (id INT PRIMARY KEY, v INT)").await.unwrap();
    c.query_drop("INSERT INTO lag_rows VALUES (1, 0)").await.unwrap();
    cluster.wait_replicated(shard);
    wait_reads_on(&mut c, replica.port(), "replica fit").await;

    // A row lock on the replica blocks its SQL thread on the next update of that
    // row: replication keeps running while Seconds_Behind_Master grows.
    let mut blocker = direct(replica).await;
    blocker.query_drop("BEGIN").await.unwrap();
    blocker.query_drop("SELECT * FROM lag_rows WHERE id = 1 FOR UPDATE").await.unwrap();
    c.query_drop("UPDATE lag_rows SET v = 1 WHERE id = 1").await.unwrap();
    wait_reads_on(&mut c, primary.port(), "lagging replica").await;
    let r = report(&proxy, replica);
    let status = r.replica().unwrap();
    assert!(status.io_running && status.sql_running, "replication runs, it is only behind: {r:?}");
    assert!(status.seconds_behind.is_some_and(|s| s > 1), "{r:?}");

    blocker.query_drop("ROLLBACK").await.unwrap();
    wait_reads_on(&mut c, replica.port(), "replica caught up").await;
    let v = rows(&mut c, "SELECT v FROM lag_rows WHERE id = 1").await;
    assert_eq!(v[0][0].as_deref(), Some("1"), "the update reached the replica before it came back");
}

#[tokio::test]
async fn reads_prefer_fit_replicas_of_the_proxy_zone() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 2, semi_sync: false });
    let shard = &cluster.shards()[0];
    let (near, far) = (shard.replicas[1], shard.replicas[0]);
    let cfg = fast_config(&cluster, "")
        .replace("listen = \"127.0.0.1:0\"\n", "listen = \"127.0.0.1:0\"\nzone = \"dc2\"\n")
        .replace(&format!("\"{far}\""), &format!("{{ addr = \"{far}\", zone = \"dc1\" }}"))
        .replace(&format!("\"{near}\""), &format!("{{ addr = \"{near}\", zone = \"dc2\" }}"));
    let proxy = Proxy::start(&cfg);
    let mut c = proxy.conn().await;
    for _ in 0..10 {
        assert_eq!(read_port(&mut c).await, near.port(), "the same zone's replica only");
    }
    cluster.exec(near, "STOP SLAVE SQL_THREAD");
    wait_reads_on(&mut c, far.port(), "no fit replica in the proxy's zone: the other zone").await;
    cluster.exec(near, "START SLAVE SQL_THREAD");
    wait_reads_on(&mut c, near.port(), "back to the same zone").await;
}
