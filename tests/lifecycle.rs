//! The shardgate binary's process lifecycle: SIGHUP reloads the config file,
//! SIGTERM drains (running statements and open transactions finish, idle
//! clients get error 1053, new clients are refused, exit 0), and JSON logs
//! carry each connection's id.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use support::proxy::{http, unique};
use support::Cluster;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Binary {
    child: Child,
    port: u16,
    admin: std::net::SocketAddr,
    path: std::path::PathBuf,
    text: String,
    _dir: tempfile::TempDir,
}

fn spawn(extra_proxy: &str, extra_tables: &str, stderr_to: Option<&std::path::Path>) -> Binary {
    let (port, admin_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shardgate.toml");
    let text = Cluster::shared().shardgate_config(extra_tables).replacen(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n",
        &format!("[proxy]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin_port}\"\n{extra_proxy}\n"),
        1,
    );
    std::fs::write(&path, &text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shardgate"));
    cmd.arg("--config").arg(&path).stdout(Stdio::null());
    match stderr_to {
        Some(log) => cmd.stderr(std::fs::File::create(log).unwrap()).env("SHARDGATE_LOG", "debug"),
        None => cmd.stderr(Stdio::null()),
    };
    let child = cmd.spawn().expect("start the shardgate binary");
    Binary { child, port, admin: format!("127.0.0.1:{admin_port}").parse().unwrap(), path, text, _dir: dir }
}

impl Binary {
    fn opts(&self, user: &str, pass: &str) -> OptsBuilder {
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .prefer_socket(false)
            .user(Some(user))
            .pass(Some(pass))
            .db_name(Some("app"))
    }

    async fn connect(&self) -> Conn {
        let t0 = Instant::now();
        loop {
            match Conn::new(Opts::from(self.opts("app", "app"))).await {
                Ok(c) => return c,
                Err(e) if t0.elapsed() > Duration::from_secs(20) => panic!("shardgate did not start: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own running child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Wait for the process to exit; its exit code.
    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sighup_reloads_the_config_file() {
    let b = spawn("watch_config = false", "", None);
    let _c = b.connect().await;
    let new = b.text.replacen("[[users]]\n", "[[users]]\nname = \"hup\"\npassword = \"hup-pw\"\n\n[[users]]\n", 1);
    std::fs::write(&b.path, new).unwrap();
    assert!(Conn::new(Opts::from(b.opts("hup", "hup-pw"))).await.is_err(), "not before the signal");
    b.signal(libc::SIGHUP);
    let t0 = Instant::now();
    loop {
        if Conn::new(Opts::from(b.opts("hup", "hup-pw"))).await.is_ok() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "SIGHUP did not reload the config");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_cli_asks_the_running_proxy_to_reload() {
    let token = "lifecycle-cli-token-0123456789";
    let b = spawn(&format!("watch_config = false\nadmin_token = \"{token}\""), "", None);
    let _c = b.connect().await;
    let path = b.path.clone();
    let cli = move |force: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shardgate"));
        cmd.arg("--config").arg(&path).arg("--reload");
        if force {
            cmd.arg("--force");
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let new = b.text.replacen("[[users]]\n", "[[users]]\nname = \"cli\"\npassword = \"cli-pw\"\n\n[[users]]\n", 1);
    std::fs::write(&b.path, &new).unwrap();
    let (code, out) = tokio::task::spawn_blocking(move || cli(false)).await.unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("user cli added"), "{out}");
    assert!(Conn::new(Opts::from(b.opts("cli", "cli-pw"))).await.is_ok());
    // A refused reload exits non-zero with the proxy's reason.
    std::fs::write(&b.path, new.replacen("default_shard = \"s0\"", "default_shard = \"s9\"", 1)).unwrap();
    let path = b.path.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_shardgate")).arg("--config").arg(&path).arg("--reload").output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("default_shard"), "{out:?}");
}

#[tokio::test]
async fn sigterm_lets_running_statements_and_transactions_finish() {
    let t = unique("drain");
    // Not listed: the table lives on the default shard, so the transaction stays on one shard.
    let mut b = spawn("shutdown_timeout_s = 20", "", None);
    let mut setup = b.connect().await;
    setup.query_drop(format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY, v INT)")).await.unwrap();
    // Statements already running when SIGTERM arrives, on several connections.
    let mut running = Vec::new();
    for i in 0..4i64 {
        let mut c = b.connect().await;
        running.push(tokio::spawn(async move {
            let slept: Option<i64> = c.query_first("SELECT SLEEP(1.5)").await?;
            Ok::<_, mysql_async::Error>((i, slept))
        }));
    }
    // An open transaction that commits after SIGTERM.
    let mut tx = b.connect().await;
    tx.query_drop("BEGIN").await.unwrap();
    tx.query_drop(format!("INSERT INTO {t} VALUES (1, 1)")).await.unwrap();
    // An idle client, and one in a transaction that another session KILLs during the drain.
    let mut idle = b.connect().await;
    let mut doomed = b.connect().await;
    doomed.query_drop("BEGIN").await.unwrap();
    doomed.query_drop(format!("INSERT INTO {t} VALUES (3, 3)")).await.unwrap();
    let doomed_id: u32 = doomed.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    b.signal(libc::SIGTERM);
    // Not ready any more, and no new clients.
    let t0 = Instant::now();
    loop {
        let (line, _) = http(b.admin, "GET /readyz", None).await;
        if line.contains("503") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "/readyz still {line} after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(Conn::new(Opts::from(b.opts("app", "app"))).await.is_err(), "a new client was accepted while draining");
    // The idle client was closed with ER_SERVER_SHUTDOWN (or finds the connection gone).
    match idle.query_drop("SELECT 1").await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1053, "{e}"),
        Err(_) => {}
        Ok(()) => panic!("an idle client kept being served during the drain"),
    }
    // KILL still works on a session inside a transaction while draining: it closes, rolling back.
    tx.query_drop(format!("KILL {doomed_id}")).await.expect("KILL during the drain");
    assert!(doomed.query_drop("SELECT 1").await.is_err(), "a killed session kept being served");
    // The transaction goes on and commits.
    tx.query_drop(format!("INSERT INTO {t} VALUES (2, 2)")).await.expect("a statement inside the open transaction");
    tx.query_drop("COMMIT").await.expect("COMMIT during the drain");
    for r in running {
        let (i, slept) = r.await.unwrap().unwrap_or_else(|e| panic!("a running statement failed: {e}"));
        assert_eq!(slept, Some(0), "SELECT SLEEP on client {i} finished normally");
    }
    let code = tokio::task::spawn_blocking(move || b.wait(Duration::from_secs(15))).await.unwrap();
    assert_eq!(code, Some(0), "shardgate exits 0 after draining");
    let s0 = Cluster::shared().shards()[0].primary;
    let total = support::sql::scalar(s0, &format!("SELECT COUNT(*) FROM app.{t}"));
    assert_eq!(total.as_deref(), Some("2"), "the transaction committed during the drain is there");
}

#[tokio::test]
async fn json_logs_carry_the_connection_id() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let b = spawn("log_format = \"json\"", "", Some(&log));
    let mut c = b.connect().await;
    let id: u32 = c.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
    // A statement that fails on the backend is logged at debug level by the session.
    let _ = c.query_drop("SELECT * FROM no_such_table_for_logs").await;
    drop(c);
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert!(!text.is_empty() && lines.len() == text.lines().count(), "every line is one JSON object:\n{text}");
        if lines.iter().any(|l| l["span"]["name"] == "conn" && l["span"]["id"] == id) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no log line of connection {id}:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
