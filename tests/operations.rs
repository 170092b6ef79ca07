//! Operating a running proxy: hot reload (POST /reload, SHARDGATE RELOAD, the
//! file watch), what a reload may and may not change, the admin port's
//! readiness/status/token, and the admin SQL statements. Real MariaDB, a real
//! driver, a real config file.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use support::proxy::{err_code, http, rows, unique, Proxy};
use support::Cluster;

const TOKEN: &str = "operations-test-token-0123456789";

/// The shared cluster's config with an admin port, a token, an admin user, and
/// `s0` without its replica (a reload adds it).
fn base_config(extra_proxy: &str, extra_tables: &str) -> String {
    let cluster = Cluster::shared();
    let s0_replica = cluster.shards()[0].replicas[0];
    cluster
        .shardgate_config(extra_tables)
        .replacen(
            "[proxy]\n",
            &format!("[proxy]\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n{extra_proxy}\n"),
            1,
        )
        .replacen(&format!("replicas = [\"{s0_replica}\"]"), "replicas = []", 1)
}

fn write(path: &Path, text: &str) {
    // Write a sibling and rename it over, as editors do: a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Setup {
    _dir: tempfile::TempDir,
    path: PathBuf,
    text: String,
    proxy: Proxy,
}

fn start(extra_proxy: &str, extra_tables: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shardgate.toml");
    let text = base_config(extra_proxy, extra_tables);
    std::fs::write(&path, &text).unwrap();
    let proxy = Proxy::start_file(&path);
    Setup { _dir: dir, path, text, proxy }
}

/// The value of one sample of `GET /metrics` (0 when absent).
async fn metric(proxy: &Proxy, sample: &str) -> f64 {
    let (_, body) = http(proxy.admin_addr().unwrap(), "GET /metrics", None).await;
    body.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn status(proxy: &Proxy) -> serde_json::Value {
    let (line, body) = http(proxy.admin_addr().unwrap(), "GET /status", None).await;
    assert!(line.contains("200"), "{line}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"))
}

async fn poll_async<F: std::future::Future<Output = bool>>(what: &str, timeout: Duration, mut ok: impl FnMut() -> F) {
    let t0 = Instant::now();
    while !ok().await {
        assert!(t0.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Clients that keep reading and writing through the proxy, counting errors.
struct Load {
    stop: Arc<AtomicBool>,
    errors: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

async fn start_load(proxy: &Proxy, table: &str, clients: usize) -> Load {
    let (stop, errors, done) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for n in 0..clients {
        let mut c = proxy.conn().await;
        let (stop, errors, done, table) = (stop.clone(), errors.clone(), done.clone(), table.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let key = (n as i64) * 1_000_000 + i;
                let r = match i % 3 {
                    0 => c.query_drop(format!("INSERT INTO {table} (user_id, v) VALUES ({key}, 'x')")).await,
                    1 => c.query_drop(format!("SELECT v FROM {table} WHERE user_id = {}", key - 1)).await,
                    _ => c.query_drop(format!("SELECT COUNT(*) FROM {table}")).await,
                };
                match r {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        seen.push(e.to_string());
                        errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            seen
        }));
    }
    Load { stop, errors, done, tasks }
}

impl Load {
    async fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut msgs = Vec::new();
        for t in self.tasks {
            msgs.extend(t.await.unwrap());
        }
        (self.done.load(Ordering::Relaxed), self.errors.load(Ordering::Relaxed), msgs)
    }
}

fn users_table(t: &str) -> String {
    format!("[[tables]]\nname = \"{t}\"\nshard_key = \"user_id\"\nalgorithm = \"hash\"\n")
}

#[tokio::test]
async fn a_reload_adds_a_replica_and_a_user_under_load_without_client_errors() {
    let t = unique("ops_load");
    let s = start("watch_config = false", &users_table(&t));
    let mut c = s.proxy.conn().await;
    c.query_drop(format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY, v VARCHAR(10))")).await.unwrap();
    let load = start_load(&s.proxy, &t, 4).await;
    let admin = s.proxy.admin_addr().unwrap();
    let replica = Cluster::shared().shards()[0].replicas[0].to_string();
    poll_async("load to run", Duration::from_secs(10), || async { load.done.load(Ordering::Relaxed) > 50 }).await;

    // A transaction open across the reload finishes on the connection it holds.
    let mut tx = s.proxy.conn().await;
    tx.query_drop("BEGIN").await.unwrap();
    tx.query_drop(format!("INSERT INTO {t} (user_id, v) VALUES (-1, 'tx')")).await.unwrap();
    let pool_before = s.proxy.shared().cluster.load().shards[1].primary.pool.clone();
    let new = s.text.replacen("replicas = []", &format!("replicas = [\"{replica}\"]"), 1).replacen(
        "[[users]]\n",
        "[[users]]\nname = \"ops\"\npassword = \"ops-password\"\nadmin = true\n\n[[users]]\n",
        1,
    );
    write(&s.path, &new);
    let (line, body) = http(admin, "POST /reload", Some(TOKEN)).await;
    assert!(line.contains("200"), "{line}: {body}");
    assert!(body.contains(&format!("replica {replica} added")) && body.contains("user ops added"), "{body}");

    tx.query_drop("COMMIT").await.expect("COMMIT of a transaction opened before the reload");
    let pool_after = s.proxy.shared().cluster.load().shards[1].primary.pool.clone();
    assert!(Arc::ptr_eq(&pool_before, &pool_after), "an unchanged server keeps its pool (and its warm connections)");
    // The new replica starts serving reads (its statement counter moves).
    let queries_on_replica = |st: &serde_json::Value| {
        st["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["addr"] == replica.as_str())
            .map(|b| b["queries"].as_u64().unwrap())
    };
    let t0 = Instant::now();
    loop {
        let st = status(&s.proxy).await;
        if queries_on_replica(&st).is_some_and(|q| q > 0) {
            assert_eq!(st["config"]["version"], 2);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "the added replica never served a read: {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The new account logs in; the clients that were connected never noticed.
    let ops = Conn::new(Opts::from(s.proxy.opts().user(Some("ops")).pass(Some("ops-password")))).await;
    assert!(ops.is_ok(), "the added user cannot log in: {ops:?}");
    let (done, errors, msgs) = load.finish().await;
    assert!(done > 100, "the load ran ({done} statements)");
    assert_eq!(errors, 0, "client errors during the reload: {msgs:?}");
    assert_eq!(rows(&mut c, "SELECT 1").await[0][0].as_deref(), Some("1"), "a connection from before the reload");
    c.query_drop("BEGIN").await.unwrap(); // read on the primary: the committed row is there
    assert_eq!(rows(&mut c, &format!("SELECT v FROM {t} WHERE user_id = -1")).await[0][0].as_deref(), Some("tx"));
    c.query_drop("COMMIT").await.unwrap();
}

#[tokio::test]
async fn an_invalid_or_restart_only_change_never_replaces_the_running_config() {
    let s = start("watch_config = false", "");
    let admin = s.proxy.admin_addr().unwrap();
    let mut c = s.proxy.conn().await;
    const ERRORS: &str = "shardgate_config_reloads_total{result=\"error\"}";
    let errors_before = metric(&s.proxy, ERRORS).await;
    // Not valid: the key and its line are named; the old config keeps serving.
    write(&s.path, &s.text.replacen("default_shard = \"s0\"", "default_shard = \"nope\"", 1));
    let (line, body) = http(admin, "POST /reload", Some(TOKEN)).await;
    assert!(line.contains("400"), "{line}: {body}");
    assert!(body.contains("proxy.default_shard") && body.contains("line "), "{body}");
    let st = status(&s.proxy).await;
    assert_eq!(st["config"]["version"], 1);
    assert!(st["config"]["last_error"].as_str().unwrap_or("").contains("default_shard"), "{st}");
    assert_eq!(rows(&mut c, "SELECT 1").await[0][0].as_deref(), Some("1"));
    assert!(Conn::new(Opts::from(s.proxy.opts())).await.is_ok(), "new clients still log in");
    // Not TOML at all.
    write(&s.path, "[proxy\nlisten = ");
    let (line, _) = http(admin, "POST /reload", Some(TOKEN)).await;
    assert!(line.contains("400"), "{line}");
    // A key that only applies at startup: refused with the key named.
    write(&s.path, &s.text.replacen("\nlisten = \"127.0.0.1:0\"", "\nlisten = \"127.0.0.1:1\"", 1));
    let (line, body) = http(admin, "POST /reload", Some(TOKEN)).await;
    assert!(line.contains("409") && body.contains("proxy.listen"), "{line}: {body}");
    assert_eq!(metric(&s.proxy, ERRORS).await - errors_before, 3.0, "three failed reloads counted");
    // Back to the running text: nothing to do, and the error is gone.
    write(&s.path, &s.text);
    let (line, body) = http(admin, "POST /reload", Some(TOKEN)).await;
    assert!(line.contains("200") && body.contains("unchanged"), "{line}: {body}");
    let st = status(&s.proxy).await;
    assert!(st["config"]["last_error"].is_null(), "{st}");
    assert_eq!(st["config"]["version"], 1);
}

#[tokio::test]
async fn changing_where_rows_live_is_refused_unless_deliberate() {
    let (full, empty) = (unique("ops_full"), unique("ops_empty"));
    let tables = format!("{}\n{}", users_table(&full), users_table(&empty));
    let s = start("watch_config = false", &tables);
    let admin = s.proxy.admin_addr().unwrap();
    let mut c = s.proxy.conn().await;
    for t in [&full, &empty] {
        c.query_drop(format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY)")).await.unwrap();
    }
    c.query_drop(format!("INSERT INTO {full} VALUES (1), (2), (3), (4)")).await.unwrap();
    let as_mod =
        |text: &str, t: &str| text.replacen(&users_table(t), &users_table(t).replace("\"hash\"", "\"mod\""), 1);
    // An empty table may change its rule.
    let text = as_mod(&s.text, &empty);
    write(&s.path, &text);
    let (line, body) = http(admin, "POST /reload", Some(TOKEN)).await;
    assert!(line.contains("200") && body.contains(&empty), "{line}: {body}");
    // One with rows may not, unless forced.
    let text = as_mod(&text, &full);
    write(&s.path, &text);
    let (line, body) = http(admin, "POST /reload", Some(TOKEN)).await;
    assert!(line.contains("409") && body.contains(&full) && body.contains("allow_reshard"), "{line}: {body}");
    let (line, body) = http(admin, "POST /reload?force=1", Some(TOKEN)).await;
    assert!(line.contains("200"), "{line}: {body}");
    assert_eq!(status(&s.proxy).await["config"]["version"], 3);
    assert_eq!(metric(&s.proxy, "shardgate_config_reloads_total{result=\"ok\"}").await, 2.0);
    let stamp = metric(&s.proxy, "shardgate_config_last_reload_success_timestamp_seconds").await;
    assert!((stamp - shardgate::admin::unix_now()).abs() < 60.0, "{stamp}");
}

/// Median time from a file save (by rename) to the new config serving, over 10 saves.
#[tokio::test]
async fn the_file_watch_reloads_on_rename_and_on_a_symlink_swap() {
    let dir = tempfile::tempdir().unwrap();
    // Kubernetes' ConfigMap layout: shardgate.toml -> ..data/shardgate.toml, ..data -> ..v1.
    let v1 = dir.path().join("..v1");
    std::fs::create_dir(&v1).unwrap();
    let text = base_config("", "");
    std::fs::write(v1.join("shardgate.toml"), &text).unwrap();
    std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
    let path = dir.path().join("shardgate.toml");
    std::os::unix::fs::symlink("..data/shardgate.toml", &path).unwrap();
    let proxy = Proxy::start_file(&path);

    // The kubelet's swap: a new directory, a new link renamed over ..data.
    let v2 = dir.path().join("..v2");
    std::fs::create_dir(&v2).unwrap();
    let with_user = |n: u32| {
        text.replacen("[[users]]\n", &format!("[[users]]\nname = \"watch{n}\"\npassword = \"pw{n}\"\n\n[[users]]\n"), 1)
    };
    std::fs::write(v2.join("shardgate.toml"), with_user(0)).unwrap();
    std::os::unix::fs::symlink("..v2", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    let shared = proxy.shared().clone();
    poll_async("the symlink swap to be reloaded", Duration::from_secs(5), || {
        let shared = shared.clone();
        async move { shared.config.load().users.contains_key("watch0") }
    })
    .await;

    // Saves by rename, each timed until the new user is in the serving config.
    let mut times = Vec::new();
    for n in 1..=10u32 {
        let t0 = Instant::now();
        write(&v2.join("shardgate.toml"), &with_user(n));
        let key = format!("watch{n}");
        let shared = shared.clone();
        poll_async("a saved file to be reloaded", Duration::from_secs(5), || {
            let (shared, key) = (shared.clone(), key.clone());
            async move { shared.config.load().users.contains_key(&key) }
        })
        .await;
        times.push(t0.elapsed());
    }
    times.sort();
    println!("config save to new config serving: median {:?} (min {:?}, max {:?})", times[5], times[0], times[9]);
    let login = Conn::new(Opts::from(proxy.opts().user(Some("watch10")).pass(Some("pw10")))).await;
    assert!(login.is_ok(), "{login:?}");
    assert_eq!(status(&proxy).await["config"]["version"], 12);
}

#[tokio::test]
async fn admin_statements_and_the_admin_port() {
    let s = start("watch_config = false", "");
    let text = s.text.replacen(
        "[[users]]\n",
        "[[users]]\nname = \"ops\"\npassword = \"ops-password\"\nadmin = true\n\n[[users]]\n",
        1,
    );
    write(&s.path, &text);
    let admin = s.proxy.admin_addr().unwrap();
    // Tokens: none, a wrong one, the right one.
    assert!(http(admin, "POST /reload", None).await.0.contains("401"));
    assert!(http(admin, "POST /reload", Some("wrong-token-wrong-token")).await.0.contains("401"));
    let (line, body) = http(admin, "POST /reload", Some(TOKEN)).await;
    assert!(line.contains("200"), "{line}: {body}");
    assert!(http(admin, "GET /reload", Some(TOKEN)).await.0.contains("405"));
    let (line, body) = http(admin, "GET /readyz", None).await;
    assert!(line.contains("200"), "{line}: {body}");
    assert!(http(admin, "GET /healthz", None).await.0.contains("200"));

    // SQL: an account without the flag is refused.
    let mut app = s.proxy.conn().await;
    assert_eq!(err_code(&mut app, "SHOW SHARDGATE BACKENDS").await.0, 1227);
    assert_eq!(err_code(&mut app, "SHARDGATE RELOAD").await.0, 1227);
    let mut ops = Conn::new(Opts::from(s.proxy.opts().user(Some("ops")).pass(Some("ops-password")))).await.unwrap();
    let backends = rows(&mut ops, "SHOW SHARDGATE BACKENDS").await;
    let cluster = Cluster::shared();
    let expected = 2 + cluster.shards()[1].replicas.len();
    assert_eq!(backends.len(), expected, "{backends:?}");
    let primary = backends.iter().find(|r| r[2].as_deref() == Some("primary")).unwrap();
    assert_eq!(primary[3].as_deref(), Some("up"));
    assert!(primary[7].is_some(), "the GTID position column: {primary:?}");
    let shards = rows(&mut ops, "SHOW SHARDGATE SHARDS").await;
    assert_eq!(shards.iter().map(|r| r[0].clone().unwrap()).collect::<Vec<_>>(), ["s0", "s1"]);
    let pools = rows(&mut ops, "show shardgate pools").await;
    assert_eq!(pools.len(), expected);
    assert!(pools.iter().all(|r| r[6].as_deref() == Some("32")), "{pools:?}");
    ops.query_drop("SHARDGATE RELOAD").await.unwrap();
    assert_eq!(err_code(&mut ops, "SHARDGATE SWITCHOVER nosuch").await.0, 1105);
    assert_eq!(err_code(&mut ops, "SHOW SHARDGATE NONSENSE").await.0, 1235);
    // SHOW SHARDGATE ROUTE stays open to every account.
    assert!(!rows(&mut app, "SHOW SHARDGATE ROUTE SELECT * FROM users WHERE user_id = 1").await.is_empty());

    // Without a token configured, state-changing endpoints are closed.
    let no_token = Proxy::start(&base_config("", "").replacen(&format!("admin_token = \"{TOKEN}\"\n"), "", 1));
    let (line, body) = http(no_token.admin_addr().unwrap(), "POST /reload", Some(TOKEN)).await;
    assert!(line.contains("403") && body.contains("admin_token"), "{line}: {body}");
}
