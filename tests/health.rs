//! Backend failures with a private cluster (this test stops servers, so it
//! does not share the cluster other tests use).

mod support;

use std::time::{Duration, Instant};

use support::proxy::{err_code, rows, Proxy};
use support::{Cluster, ClusterOptions};

#[tokio::test]
async fn reads_fall_back_to_the_primary_and_a_dead_primary_is_a_clear_error() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 1, semi_sync: false });
    let shard = &cluster.shards()[0];
    let cfg = cluster
        .shardgate_config("")
        .replace("database = \"app\"\n", "database = \"app\"\nconnect_timeout_ms = 500\n")
        .replace("[[shards]]", "[health]\ninterval_ms = 100\ntimeout_ms = 300\ndown_after = 2\n\n[[shards]]");
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
    assert!(code == 2003 || code == 2013, "clear backend error, got {code}: {msg}");
    assert!(started.elapsed() < Duration::from_secs(3), "within connect_timeout_ms, not a hang");
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
