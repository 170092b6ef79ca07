//! Active-active shards across two "data centres": a 2-shard test cluster is
//! rewired so that its two primaries replicate from each other (dc1 = s0's
//! primary and replica, dc2 = s1's), and shardgate sees one shard with
//! `primaries = [dc1, dc2]`. Killing the active primary flips writes to the
//! other with reads flowing throughout; a planned switchover under load
//! reaches no client as an error.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use support::cluster::replica_status;
use support::ha::{current_primary, ids_on, poll, port_of, start_load};
use support::proxy::{http, rows, Proxy};

const ADMIN_TOKEN: &str = "switchover-test-token";
use support::{Cluster, ClusterOptions};

struct Pair {
    cluster: Cluster,
    /// dc1 primary (active at start), dc2 primary, and their replicas.
    a: SocketAddr,
    b: SocketAddr,
    ra: SocketAddr,
    rb: SocketAddr,
}

/// Two primaries in two-way GTID replication, each with its own replica.
fn pair() -> Pair {
    let cluster = Cluster::start(ClusterOptions { shards: 2, replicas: 1, semi_sync: false });
    let (s0, s1) = (cluster.shards()[0].clone(), cluster.shards()[1].clone());
    let (a, b) = (s0.primary, s1.primary);
    for (x, y) in [(a, b), (b, a)] {
        cluster.exec(
            x,
            &format!(
                "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = 'repl', \
                 MASTER_PASSWORD = 'repl', MASTER_USE_GTID = slave_pos",
                y.port()
            ),
        );
        cluster.exec(x, "START SLAVE");
    }
    for (x, y) in [(a, b), (b, a)] {
        poll("two-way replication running", Duration::from_secs(20), || {
            replica_status(x).is_some_and(|s| {
                s.get("Slave_IO_Running").map(String::as_str) == Some("Yes")
                    && s.get("Master_Port").map(String::as_str) == Some(&y.port().to_string())
            })
        });
    }
    Pair { a, b, ra: s0.replicas[0], rb: s1.replicas[0], cluster }
}

fn config(p: &Pair) -> String {
    format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"switchover-test-token\"\ndefault_shard = \"s0\"\nzone = \"dc1\"\n\n\
         [[users]]\nname = \"app\"\npassword = \"app\"\n\n\
         [backend]\nuser = \"app\"\npassword = \"app\"\ndatabase = \"app\"\n\
         admin_user = \"shardgate\"\nadmin_password = \"shardgate\"\n\n\
         [health]\ninterval_ms = 100\ntimeout_ms = 300\ndown_after = 3\nfailover_buffer_ms = 10000\n\n\
         [[shards]]\nname = \"s0\"\n\
         primaries = [{{ addr = \"{}\", zone = \"dc1\" }}, {{ addr = \"{}\", zone = \"dc2\" }}]\n\
         replicas = [{{ addr = \"{}\", zone = \"dc1\" }}, {{ addr = \"{}\", zone = \"dc2\" }}]\n",
        p.a, p.b, p.ra, p.rb
    )
}

/// The port a write lands on (inside a transaction: the primary's connection).
async fn write_port(c: &mut mysql_async::Conn, table: &str) -> u16 {
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("INSERT INTO {table} (id, w) VALUES (-{}, -1)", rand_id())).await.unwrap();
    let port = port_of(&rows(c, "SELECT @@port").await);
    c.query_drop("COMMIT").await.unwrap();
    port
}

fn rand_id() -> u64 {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_active_primary_flips_writes_to_the_other_with_reads_flowing() {
    let p = pair();
    let proxy = Proxy::start(&config(&p));
    let mut c = proxy.conn().await;
    c.query_drop("CREATE TABLE aa_kill (id BIGINT PRIMARY KEY, w INT)").await.unwrap();
    assert_eq!(write_port(&mut c, "aa_kill").await, p.a.port(), "writes start on the first of primaries");

    let stop = Arc::new(AtomicBool::new(false));
    let killed_at = Arc::new(Mutex::new(None));
    let (load, tasks) = start_load(&proxy, "aa_kill", 4, stop.clone(), killed_at.clone());
    poll("writes flowing", Duration::from_secs(10), || load.lock().unwrap().acked.len() >= 200);
    let kill = Instant::now();
    *killed_at.lock().unwrap() = Some(kill);
    p.cluster.kill_server(p.a);
    poll("a write after the kill", Duration::from_secs(15), || load.lock().unwrap().first_after_kill.is_some());
    let recovered = load.lock().unwrap().first_after_kill.unwrap() - kill;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(current_primary(&proxy), p.b.to_string());
    let l = std::mem::take(&mut *load.lock().unwrap());
    let present = ids_on(&p.cluster, p.b, "aa_kill");
    let lost = l.acked.iter().filter(|id| !present.contains(id)).count();
    eprintln!(
        "DRILL active-active flip: kill-to-first-write {} ms, acknowledged {}, lost {lost} (async two-way), \
         write errors {}, reads {}, read errors {}",
        recovered.as_millis(),
        l.acked.len(),
        l.errors.len(),
        l.reads,
        l.read_errors
    );
    assert_eq!(l.read_errors, 0, "reads flow throughout");
    assert!(recovered < Duration::from_secs(3), "writes flipped after {recovered:?}");
    assert_eq!(write_port(&mut c, "aa_kill").await, p.b.port());

    // The old active primary returns: no automatic failback.
    p.cluster.start_server(p.a);
    poll("the returned primary is up again", Duration::from_secs(15), || {
        proxy.shared().cluster.load().shards[0].standby.as_ref().is_some_and(|s| s.is_up())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(write_port(&mut c, "aa_kill").await, p.b.port(), "writes stay on the second primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_switchover_under_load_reaches_no_client_as_an_error() {
    let p = pair();
    let proxy = Proxy::start(&config(&p));
    let mut c = proxy.conn().await;
    c.query_drop("CREATE TABLE aa_switch (id BIGINT PRIMARY KEY, w INT)").await.unwrap();
    poll("the table on the other primary", Duration::from_secs(10), || {
        p.cluster.sql(p.b, "SHOW TABLES LIKE 'aa_switch'").len() == 1
    });

    let stop = Arc::new(AtomicBool::new(false));
    let (load, tasks) = start_load(&proxy, "aa_switch", 4, stop.clone(), Arc::new(Mutex::new(None)));
    poll("writes flowing", Duration::from_secs(10), || load.lock().unwrap().acked.len() >= 200);
    let admin = proxy.admin_addr().expect("admin port");
    let started = Instant::now();
    let (status, body) = http(admin, "POST /switchover?shard=s0", Some(ADMIN_TOKEN)).await;
    let took = started.elapsed();
    assert!(status.contains("200"), "{status}: {body}");
    let before = load.lock().unwrap().acked.len();
    poll("writes after the switchover", Duration::from_secs(10), || load.lock().unwrap().acked.len() > before + 100);
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let l = std::mem::take(&mut *load.lock().unwrap());
    eprintln!(
        "DRILL switchover: {} ms, acknowledged {}, write errors {}, reads {}, read errors {}: {body}",
        took.as_millis(),
        l.acked.len(),
        l.errors.len(),
        l.reads,
        l.read_errors
    );
    assert!(l.errors.is_empty(), "no client error: {:?}", &l.errors[..l.errors.len().min(5)]);
    assert_eq!(l.read_errors, 0);
    let present = ids_on(&p.cluster, p.b, "aa_switch");
    assert!(l.acked.iter().all(|id| present.contains(id)), "every acknowledged write is on the new primary");
    assert_eq!(current_primary(&proxy), p.b.to_string());
    assert_eq!(p.cluster.sql(p.a, "SELECT @@read_only")[0][0].as_deref(), Some("1"), "the old one is read_only");
    assert_eq!(write_port(&mut c, "aa_switch").await, p.b.port());
    // The admin view, once the next probe has seen the old primary read_only.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, topo) = http(admin, "GET /topology", None).await;
        let want = [format!("s0 primary {} up writable", p.b), format!("s0 standby {} up read_only", p.a)];
        if want.iter().all(|w| topo.contains(w)) {
            break;
        }
        assert!(Instant::now() < deadline, "GET /topology never showed {want:?}:\n{topo}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And back again.
    let (status, body) = http(admin, "POST /switchover?shard=s0", Some(ADMIN_TOKEN)).await;
    assert!(status.contains("200"), "{status}: {body}");
    assert_eq!(write_port(&mut c, "aa_switch").await, p.a.port());
}
