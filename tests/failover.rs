//! Failover drills on private clusters: a primary killed under write load is
//! replaced by its most advanced replica without losing an acknowledged write
//! (semi-sync), a primary that only hangs briefly is not replaced, RPO = 0
//! mode refuses to promote over async replication, and `follow` mode follows
//! a promotion made by hand.
//!
//! Each drill prints a `DRILL` line (kill-to-first-write time, lost writes,
//! read errors) for the failover report.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use support::cluster::replica_status;
use support::ha::{current_primary, ids_on, poll, port_of, start_load};
use support::proxy::{err_code, rows, Proxy};
use support::{Cluster, ClusterOptions};

/// Fast probing: a primary is confirmed dead after 3 failed probes (~300 ms
/// after a crash; a hung server needs 3 probe timeouts, ~900 ms).
const HA: &str = "[health]\ninterval_ms = 100\ntimeout_ms = 300\ndown_after = 3\nfailover_buffer_ms = 10000\n";

/// `SHARDGATE_DRILL_HEALTH` replaces the probe settings (e.g. the defaults:
/// `interval_ms = 500, timeout_ms = 1000, down_after = 3`, comma-separated).
fn ha_config(cluster: &Cluster, health: &str) -> String {
    let ha = match std::env::var("SHARDGATE_DRILL_HEALTH") {
        Ok(h) => format!("[health]\n{}\nfailover_buffer_ms = 10000\n", h.replace(',', "\n")),
        Err(_) => HA.to_owned(),
    };
    cluster.shardgate_config("").replacen("[[shards]]", &format!("{ha}{health}\n[[shards]]"), 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_replaced_by_the_most_advanced_replica_and_no_acknowledged_write_is_lost() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 2, semi_sync: true });
    let shard = cluster.shards()[0].clone();
    let proxy = Proxy::start(&ha_config(&cluster, "require_semi_sync = true\nrejoin = \"replica\"\n"));
    let mut c = proxy.conn().await;
    c.query_drop("CREATE TABLE ha_acks (id BIGINT PRIMARY KEY, w INT)").await.unwrap();
    // RPO = 0 needs the health checker to have seen semi-sync on, with a replica acknowledging.
    poll("semi-sync on at the primary", Duration::from_secs(20), || {
        let cl = proxy.shared().cluster.load();
        let r = shardgate::health::latest(&cl.shards[0].primary);
        r.semi_sync.source_on == Some(true) && r.semi_sync.source_clients.unwrap_or(0) >= 1
    });

    let d = kill_drill(&cluster, &proxy, "ha_acks", "semi-sync").await;
    let (new_primary, recovered) = (d.new_primary, d.recovered);
    assert!(d.lost.is_empty(), "acknowledged writes lost: {:?}", d.lost);
    assert!(recovered < Duration::from_secs(3), "writes resumed after {recovered:?}");
    assert_eq!(d.read_errors, 0, "reads keep flowing from the replicas");

    // The other replica follows the new primary.
    let other = *shard.replicas.iter().find(|r| **r != new_primary).unwrap();
    poll("the other replica replicates from the new primary", Duration::from_secs(15), || {
        replica_status(other).is_some_and(|s| {
            s.get("Master_Port").map(String::as_str) == Some(&new_primary.port().to_string())
                && s.get("Slave_IO_Running").map(String::as_str) == Some("Yes")
        })
    });

    // The old primary comes back: read_only, never written to; rejoin = "replica"
    // re-attaches it unless it holds transactions the new primary lacks.
    cluster.start_server(shard.primary);
    poll("the old primary is fenced read_only", Duration::from_secs(15), || {
        cluster.sql(shard.primary, "SELECT @@read_only")[0][0].as_deref() == Some("1")
    });
    c = proxy.conn().await;
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO ha_acks (id, w) VALUES (-1, -1)").await.unwrap();
    let port = port_of(&rows(&mut c, "SELECT @@port").await);
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(port, new_primary.port(), "writes go to the new primary only");
    assert_ne!(current_primary(&proxy), shard.primary.to_string());
    // It rejoins as a replica of the new primary, unless it holds a transaction
    // the new one lacks (written to its binlog, never acknowledged, not truncated
    // at restart): then it must stay fenced.
    let rejoined = || {
        replica_status(shard.primary).is_some_and(|s| {
            s.get("Master_Port").map(String::as_str) == Some(&new_primary.port().to_string())
                && s.get("Slave_IO_Running").map(String::as_str) == Some("Yes")
        })
    };
    let errant = || proxy.shared().stats.errant_fenced.load(Ordering::Relaxed) > 0;
    poll("the old primary rejoins, or is found errant", Duration::from_secs(15), || rejoined() || errant());
    if errant() {
        let pos = cluster.sql(shard.primary, "SELECT @@gtid_current_pos")[0][0].clone();
        eprintln!("old primary holds errant GTIDs ({pos:?}): stays fenced");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!rejoined(), "an old primary with errant transactions must not rejoin");
        assert_eq!(cluster.sql(shard.primary, "SELECT @@read_only")[0][0].as_deref(), Some("1"));
    } else {
        poll("the new row replicated to the old primary", Duration::from_secs(15), || {
            ids_on(&cluster, shard.primary, "ha_acks").contains(&-1)
        });
    }
}

/// What a kill drill measured.
struct Drill {
    new_primary: SocketAddr,
    recovered: Duration,
    lost: Vec<i64>,
    read_errors: usize,
}

/// Kill -9 the primary of shard 0 under 4 writers and a reader; wait for the
/// failover and the first write after it; count acknowledged writes missing
/// on the new primary. Prints a DRILL line.
async fn kill_drill(cluster: &Cluster, proxy: &Proxy, table: &str, label: &str) -> Drill {
    let shard = cluster.shards()[0].clone();
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at = Arc::new(Mutex::new(None));
    let (load, tasks) = start_load(proxy, table, 4, stop.clone(), killed_at.clone());
    poll("writes flowing", Duration::from_secs(10), || load.lock().unwrap().acked.len() >= 200);

    let kill = Instant::now();
    *killed_at.lock().unwrap() = Some(kill);
    cluster.kill_primary(&shard);
    poll("the failover", Duration::from_secs(15), || proxy.shared().stats.failovers.load(Ordering::Relaxed) >= 1);
    let promoted = kill.elapsed();
    poll("a write acknowledged after the kill", Duration::from_secs(15), || {
        load.lock().unwrap().first_after_kill.is_some()
    });
    let recovered = load.lock().unwrap().first_after_kill.unwrap() - kill;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    let new_primary: SocketAddr = current_primary(proxy).parse().unwrap();
    assert!(shard.replicas.contains(&new_primary), "a replica was promoted, not {new_primary}");
    assert_eq!(proxy.shared().stats.failovers.load(Ordering::Relaxed), 1);
    assert_eq!(cluster.sql(new_primary, "SELECT @@read_only")[0][0].as_deref(), Some("0"));
    let load = load.lock().unwrap();
    let present = ids_on(cluster, new_primary, table);
    let lost: Vec<i64> = load.acked.iter().filter(|id| !present.contains(id)).copied().collect();
    eprintln!(
        "DRILL {label} promote: promoted after {} ms, kill-to-first-write {} ms, acknowledged {}, lost {}, \
         write errors {}, reads {}, read errors {}",
        promoted.as_millis(),
        recovered.as_millis(),
        load.acked.len(),
        lost.len(),
        load.errors.len(),
        load.reads,
        load.read_errors
    );
    // Statements in flight at the kill may fail (1317, 1429): never anything else.
    for (code, msg) in &load.errors {
        assert!([0, 1317, 1429].contains(code), "unexpected write error {code}: {msg}");
    }
    Drill { new_primary, recovered, lost, read_errors: load.read_errors }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_async_replication_promotion_works_and_reports_what_was_lost() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 2, semi_sync: false });
    let proxy = Proxy::start(&ha_config(&cluster, ""));
    let mut c = proxy.conn().await;
    c.query_drop("CREATE TABLE ha_async (id BIGINT PRIMARY KEY, w INT)").await.unwrap();
    let d = kill_drill(&cluster, &proxy, "ha_async", "async").await;
    // Async replication may lose the last acknowledged writes: the drill counts them
    // (the RPO = 0 test shows require_semi_sync refusing instead).
    assert!(d.recovered < Duration::from_secs(3), "writes resumed after {:?}", d.recovered);
}

#[tokio::test]
async fn a_primary_that_hangs_shorter_than_the_confirmation_window_is_not_replaced() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 1, semi_sync: false });
    let shard = cluster.shards()[0].clone();
    let proxy = Proxy::start(&ha_config(&cluster, ""));
    let mut c = proxy.conn().await;
    c.query_drop("CREATE TABLE ha_pause (id INT PRIMARY KEY)").await.unwrap();
    cluster.pause_server(shard.primary);
    // 3 probes of 300 ms must fail in a row: 400 ms of silence is not enough.
    tokio::time::sleep(Duration::from_millis(400)).await;
    cluster.resume_server(shard.primary);
    c.query_drop("INSERT INTO ha_pause VALUES (1)").await.unwrap();
    // Give the checker time to (wrongly) act, then check it did not.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(current_primary(&proxy), shard.primary.to_string());
    assert_eq!(proxy.shared().stats.failovers.load(Ordering::Relaxed), 0);
    assert_eq!(cluster.sql(shard.replicas[0], "SELECT @@read_only")[0][0].as_deref(), Some("1"));
    c.query_drop("INSERT INTO ha_pause VALUES (2)").await.unwrap();
    assert_eq!(ids_on(&cluster, shard.primary, "ha_pause").len(), 2, "writes resumed on the same primary");
}

#[tokio::test]
async fn rpo_zero_mode_refuses_to_promote_over_async_replication() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 1, semi_sync: false });
    let shard = cluster.shards()[0].clone();
    let proxy = Proxy::start(&ha_config(&cluster, "require_semi_sync = true\nfailover_buffer_ms = 3000\n").replacen(
        "failover_buffer_ms = 10000\n",
        "",
        1,
    ));
    let mut c = proxy.conn().await;
    c.query_drop("CREATE TABLE ha_rpo (id INT PRIMARY KEY)").await.unwrap();
    cluster.kill_primary(&shard);
    poll("the refusal", Duration::from_secs(15), || {
        proxy.shared().stats.failovers_refused.load(Ordering::Relaxed) >= 1
    });
    let (code, msg) = err_code(&mut c, "INSERT INTO ha_rpo VALUES (1)").await;
    assert_eq!(code, 1290, "{msg}");
    assert!(msg.contains("require_semi_sync"), "{msg}");
    assert_eq!(proxy.shared().stats.failovers.load(Ordering::Relaxed), 0);
    assert_eq!(cluster.sql(shard.replicas[0], "SELECT @@read_only")[0][0].as_deref(), Some("1"), "not promoted");
    // Reads keep flowing from the replica.
    rows(&mut c, "SELECT COUNT(*) FROM ha_rpo").await;
    // The primary returns: it was never replaced, so writes simply resume on it.
    cluster.start_server(shard.primary);
    poll("writes accepted again", Duration::from_secs(15), || {
        proxy.shared().cluster.load().shards[0].writes_refused.is_none()
    });
    c.query_drop("INSERT INTO ha_rpo VALUES (2)").await.unwrap();
    assert_eq!(current_primary(&proxy), shard.primary.to_string());
}

#[tokio::test]
async fn follow_mode_routes_writes_to_the_server_an_operator_promoted() {
    let cluster = Cluster::start(ClusterOptions { shards: 1, replicas: 1, semi_sync: false });
    let shard = cluster.shards()[0].clone();
    let (old, new) = (shard.primary, shard.replicas[0]);
    let proxy = Proxy::start(&ha_config(&cluster, "failover = \"follow\"\n"));
    let mut c = proxy.conn().await;
    c.query_drop("CREATE TABLE ha_follow (id INT PRIMARY KEY)").await.unwrap();
    cluster.wait_replicated(&shard);
    // The operator's switchover, by hand.
    cluster.exec(old, "SET GLOBAL read_only = ON");
    cluster.exec(new, "STOP SLAVE");
    cluster.exec(new, "RESET SLAVE ALL");
    cluster.exec(new, "SET GLOBAL read_only = OFF");
    let switched = Instant::now();
    poll("shardgate follows the new writable server", Duration::from_secs(5), || {
        current_primary(&proxy) == new.to_string()
    });
    eprintln!("DRILL follow: followed in {} ms", switched.elapsed().as_millis());
    assert!(switched.elapsed() < Duration::from_millis(1500), "within a few probe intervals");
    c.query_drop("INSERT INTO ha_follow VALUES (1)").await.unwrap();
    assert_eq!(ids_on(&cluster, new, "ha_follow").len(), 1);
    // Both writable: writes are refused, with the reason.
    cluster.exec(old, "SET GLOBAL read_only = OFF");
    poll("refusal while two servers are writable", Duration::from_secs(5), || {
        proxy.shared().cluster.load().shards[0].writes_refused.is_some()
    });
    let (code, msg) = err_code(&mut c, "INSERT INTO ha_follow VALUES (2)").await;
    assert_eq!(code, 1290, "{msg}");
    assert!(msg.contains("more than one server is writable"), "{msg}");
}
