//! Atomic cross-shard transactions (`proxy.transactions = "xa"`) over a real
//! 2-shard MariaDB cluster: commit and rollback reach every shard or none, a
//! branch that fails before PREPARE rolls all back, and a proxy killed at each
//! step of a commit is settled by the next one from the decision log.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use support::fixtures::{count_on, keys_on_two_shards, sharded};
use support::ha::poll;
use support::proxy::{err_code, unique, Proxy};
use support::{sql, Cluster};

fn xa_config(cluster: &Cluster, table: &str, listen: &str, name: &str) -> String {
    cluster.shardgate_config(&sharded(table)).replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{listen}\"\ntransactions = \"xa\"\nname = \"{name}\""),
        1,
    )
}

/// Prepared branches on a server of the proxy named `name` (tests run side by side on one cluster).
fn prepared_on(addr: SocketAddr, name: &str) -> usize {
    let prefix = format!("sg-{name}-");
    sql::sql(addr, "XA RECOVER").iter().filter(|r| r[3].as_deref().is_some_and(|d| d.starts_with(&prefix))).count()
}

async fn create(c: &mut Conn, table: &str) {
    c.query_drop(format!("CREATE TABLE {table} (user_id BIGINT PRIMARY KEY, name VARCHAR(64))")).await.unwrap();
}

/// A proxy named `name` in xa mode over the shared cluster, its sharded table
/// (created), two keys on different shards and a client.
struct XaSetup {
    cluster: &'static Cluster,
    proxy: Proxy,
    t: String,
    k0: i64,
    k1: i64,
    c: Conn,
}

async fn xa_setup(name: &str) -> XaSetup {
    let cluster = Cluster::shared();
    let t = unique(name);
    let proxy = Proxy::start(&xa_config(cluster, &t, "127.0.0.1:0", name));
    let (k0, k1) = keys_on_two_shards(&proxy, &t);
    let mut c = proxy.conn().await;
    create(&mut c, &t).await;
    XaSetup { cluster, proxy, t, k0, k1, c }
}

#[tokio::test]
async fn commit_and_rollback_reach_every_shard_or_none() {
    let XaSetup { cluster, proxy: _proxy, t, k0, k1, mut c } = xa_setup("xa_basic").await;
    let [s0, s1] = [&cluster.shards()[0], &cluster.shards()[1]];

    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES ({k0}, 'a')")).await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES ({k1}, 'b')")).await.unwrap();
    assert_eq!(count_on(s0.primary, &t, "") + count_on(s1.primary, &t, ""), 0, "nothing visible before COMMIT");
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!((count_on(s0.primary, &t, ""), count_on(s1.primary, &t, "")), (1, 1), "both branches committed");
    assert_eq!((prepared_on(s0.primary, "xa_basic"), prepared_on(s1.primary, "xa_basic")), (0, 0));

    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("UPDATE {t} SET name = 'x'")).await.unwrap();
    c.query_drop(format!("DELETE FROM {t} WHERE user_id = {k1}")).await.unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(count_on(s1.primary, &t, ""), 1, "ROLLBACK undid the delete");
    assert_eq!(count_on(s0.primary, &t, "WHERE name = 'x'"), 0, "ROLLBACK undid the update");

    // autocommit=0 transactions are XA transactions too; one shard commits in one phase.
    c.query_drop("SET autocommit = 0").await.unwrap();
    c.query_drop(format!("UPDATE {t} SET name = 'y' WHERE user_id IN ({k0}, {k1})")).await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    c.query_drop(format!("UPDATE {t} SET name = 'z' WHERE user_id = {k0}")).await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    c.query_drop("SET autocommit = 1").await.unwrap();
    assert_eq!(count_on(s0.primary, &t, "WHERE name = 'z'") + count_on(s1.primary, &t, "WHERE name = 'y'"), 2);
    // Settled transactions leave no decision behind (this proxy's gtrids start sg-xa_basic-).
    poll("the decision log to be cleaned", Duration::from_secs(10), || {
        let q = "SELECT COUNT(*) FROM shardgate_xa_log WHERE gtrid LIKE 'sg-xa\\_basic-%'";
        sql::scalar(s0.primary, q).as_deref() == Some("0")
    });
}

#[tokio::test]
async fn a_branch_that_dies_before_prepare_rolls_every_shard_back() {
    let XaSetup { cluster, proxy: _proxy, t, k0, k1, mut c } = xa_setup("xa_fail").await;
    let [s0, s1] = [&cluster.shards()[0], &cluster.shards()[1]];
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES ({k0}, 'a')")).await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES ({k1}, 'b')")).await.unwrap();
    let id: u64 =
        c.query_first(format!("SELECT CONNECTION_ID() FROM {t} WHERE user_id = {k1}")).await.unwrap().unwrap();
    sql::exec(s1.primary, &format!("KILL {id}"));
    let (code, msg) = err_code(&mut c, "COMMIT").await;
    assert!(code == 1402 || code == 1180 || code == 1317, "{code}: {msg}");
    assert_eq!((count_on(s0.primary, &t, ""), count_on(s1.primary, &t, "")), (0, 0), "no shard kept its part");
    assert_eq!((prepared_on(s0.primary, "xa_fail"), prepared_on(s1.primary, "xa_fail")), (0, 0));
    // The session goes on.
    c.query_drop("ROLLBACK").await.ok();
    c.query_drop(format!("INSERT INTO {t} VALUES ({k0}, 'again')")).await.unwrap();
    assert_eq!(count_on(s0.primary, &t, ""), 1);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn_proxy(config: &std::path::Path, crash_at: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shardgate"));
    cmd.arg("--config").arg(config).env("RUST_LOG", "info");
    if let Some(step) = crash_at {
        cmd.env("SHARDGATE_XA_CRASH", step);
    }
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    cmd.spawn().expect("start the shardgate binary")
}

async fn connect(port: u16) -> Conn {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .prefer_socket(false)
        .user(Some("app"))
        .pass(Some("app"))
        .db_name(Some("app"));
    for _ in 0..200 {
        if let Ok(c) = Conn::new(Opts::from(opts.clone())).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("shardgate on port {port} did not start");
}

/// Kill the coordinator at `step` of a two-shard commit, restart it, and check
/// that the in-doubt branches end as the decision log says.
async fn crash_drill(step: &str, committed: bool) {
    let cluster = Cluster::shared();
    let t = unique(&format!("xa_{step}"));
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shardgate.toml");
    let name = format!("drill_{step}");
    let toml = xa_config(cluster, &t, &format!("127.0.0.1:{port}"), &name);
    std::fs::write(&path, &toml).unwrap();
    let cfg = shardgate::config::validate::parse(&toml).unwrap();
    let owner = |k: i64| match cfg.table(&t) {
        Some(shardgate::config::TableRule::Sharded(tb)) => {
            shardgate::router::algorithm::shard_for(&cfg, tb, &shardgate::router::KeyValue::Int(k)).unwrap()
        }
        _ => unreachable!(),
    };
    let k0 = 1;
    let k1 = (2..100).find(|&k| owner(k) != owner(k0)).unwrap();
    let [s0, s1] = [&cluster.shards()[0], &cluster.shards()[1]];

    let mut child = spawn_proxy(&path, Some(step));
    let mut c = connect(port).await;
    create(&mut c, &t).await;
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES ({k0}, 'a')")).await.unwrap();
    c.query_drop(format!("INSERT INTO {t} VALUES ({k1}, 'b')")).await.unwrap();
    assert!(c.query_drop("COMMIT").await.is_err(), "{step}: the proxy died during COMMIT");
    let status = child.wait().unwrap();
    assert!(!status.success(), "{step}: aborted");
    let in_doubt = prepared_on(s0.primary, &name) + prepared_on(s1.primary, &name);
    if !committed {
        // No decision was recorded: nobody else may touch these within the grace period.
        assert_eq!(in_doubt, 2, "{step}: both branches stay prepared until the coordinator's restart");
    }
    // (With a commit decision recorded, another proxy's recovery may already have finished them.)

    let mut restarted = spawn_proxy(&path, None);
    poll(&format!("{step}: recovery to settle the branches"), Duration::from_secs(30), || {
        prepared_on(s0.primary, &name) + prepared_on(s1.primary, &name) == 0
    });
    let rows = (count_on(s0.primary, &t, ""), count_on(s1.primary, &t, ""));
    let want = if committed { (1, 1) } else { (0, 0) };
    assert_eq!(rows, want, "{step}: all or nothing, as decided");
    let _ = restarted.kill();
    let _ = restarted.wait();
}

#[tokio::test]
async fn a_coordinator_killed_after_prepare_is_rolled_back_on_restart() {
    crash_drill("after_prepare", false).await;
}

#[tokio::test]
async fn a_coordinator_killed_after_the_decision_is_committed_on_restart() {
    crash_drill("after_decision", true).await;
}

#[tokio::test]
async fn a_coordinator_killed_between_branch_commits_is_completed_on_restart() {
    crash_drill("after_first_commit", true).await;
}

#[tokio::test]
async fn an_autocommit_statement_that_writes_several_shards_is_all_or_nothing() {
    let XaSetup { cluster, proxy: _proxy, t, k0, k1, mut c } = xa_setup("xa_auto").await;
    let [s0, s1] = [&cluster.shards()[0], &cluster.shards()[1]];
    c.query_drop(format!("INSERT INTO {t} VALUES ({k1}, 'taken')")).await.unwrap();
    // The row for s1 collides: the row for s0 must not stay either.
    let (code, msg) = err_code(&mut c, &format!("INSERT INTO {t} VALUES ({k0}, 'a'), ({k1}, 'b')")).await;
    assert_eq!(code, 1062, "{msg}");
    assert_eq!(count_on(s0.primary, &t, ""), 0, "the other shard's part was rolled back");
    // A successful one commits on both and reports the summed rows.
    c.query_drop(format!("INSERT INTO {t} VALUES ({k0}, 'a'), ({}, 'c')", k1 + 1000)).await.ok();
    c.query_drop(format!("UPDATE {t} SET name = 'u'")).await.unwrap();
    assert_eq!(c.affected_rows(), count_on(s0.primary, &t, "") as u64 + count_on(s1.primary, &t, "") as u64);
    assert_eq!(count_on(s0.primary, &t, "WHERE name <> 'u'") + count_on(s1.primary, &t, "WHERE name <> 'u'"), 0);
    assert_eq!((prepared_on(s0.primary, "xa_auto"), prepared_on(s1.primary, "xa_auto")), (0, 0));
    // No transaction is left open: a plain BEGIN/ROLLBACK works and sees the committed rows.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
}
