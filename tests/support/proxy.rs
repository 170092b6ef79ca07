//! shardgate started in-process for a test, on 127.0.0.1:0, plus client helpers.
//!
//! The proxy runs on one long-lived runtime per test binary, so it outlives
//! the runtime of the `#[tokio::test]` that started it.

use std::net::SocketAddr;
use std::sync::OnceLock;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row, Value};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("shardgate")
            .enable_all()
            .build()
            .expect("cannot build the proxy runtime")
    })
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub config: shardgate::config::Config,
    running: Option<shardgate::Running>,
}

impl Proxy {
    /// Start a proxy with this TOML config (its `listen` should be 127.0.0.1:0).
    pub fn start(toml: &str) -> Proxy {
        // SHARDGATE_TEST_LOG=info (an env-filter) shows the proxy's log in test output.
        if let Ok(filter) = std::env::var("SHARDGATE_TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        let config =
            shardgate::config::validate::parse(toml).unwrap_or_else(|e| panic!("test config invalid: {e}\n{toml}"));
        let cfg = config.clone();
        // block_on from a plain thread: the caller may itself be inside a runtime.
        let running = std::thread::spawn(move || runtime().block_on(shardgate::start(cfg)))
            .join()
            .expect("proxy start thread")
            .expect("shardgate failed to start");
        Proxy { addr: running.addr, config, running: Some(running) }
    }

    /// Start a proxy from a config file, as the binary does: reloads (POST
    /// /reload, SHARDGATE RELOAD, the file watch) read this file.
    #[allow(dead_code)]
    pub fn start_file(path: &std::path::Path) -> Proxy {
        let text = std::fs::read_to_string(path).expect("read the test config");
        let config = shardgate::config::validate::parse(&text).unwrap_or_else(|e| panic!("test config invalid: {e}"));
        let (cfg, path) = (config.clone(), path.to_path_buf());
        let running = std::thread::spawn(move || {
            runtime().block_on(shardgate::start_with(cfg, Some(shardgate::ConfigSource { path, text })))
        })
        .join()
        .expect("proxy start thread")
        .expect("shardgate failed to start");
        Proxy { addr: running.addr, config, running: Some(running) }
    }

    /// The admin HTTP port, when the config has `admin_listen`.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.running.as_ref().and_then(|r| r.admin_addr)
    }

    pub fn shared(&self) -> &std::sync::Arc<shardgate::frontend::Shared> {
        &self.running.as_ref().expect("running").shared
    }

    /// Client options for this proxy as app/app on database app.
    pub fn opts(&self) -> OptsBuilder {
        OptsBuilder::default()
            .ip_or_hostname(self.addr.ip().to_string())
            .tcp_port(self.addr.port())
            .prefer_socket(false)
            .user(Some("app"))
            .pass(Some("app"))
            .db_name(Some("app"))
    }

    /// A new client connection through the proxy (mysql_async).
    pub async fn conn(&self) -> Conn {
        Conn::new(Opts::from(self.opts())).await.expect("connect through shardgate")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            runtime().spawn(r.shutdown());
        }
    }
}

/// Rows of a query as text cells.
pub async fn rows(conn: &mut Conn, q: &str) -> Vec<Vec<Option<String>>> {
    let rows: Vec<Row> = conn.query(q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
    rows.into_iter().map(|r| r.unwrap().into_iter().map(text).collect()).collect()
}

/// The MySQL error code a statement fails with (panics if it succeeds).
pub async fn err_code(conn: &mut Conn, q: &str) -> (u16, String) {
    match conn.query_drop(q).await {
        Ok(()) => panic!("expected an error from: {q}"),
        Err(mysql_async::Error::Server(e)) => (e.code, e.message),
        Err(e) => panic!("expected a server error from {q}, got {e}"),
    }
}

pub fn text(v: Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(f) => Some(f.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// A name unique to this test process, for tables.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The server version string in the proxy's initial handshake.
pub async fn handshake_version(addr: SocketAddr) -> String {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut buf = vec![0u8; 512];
    let n = s.read(&mut buf).await.expect("handshake");
    let payload = &buf[4..n];
    let end = payload[1..].iter().position(|&b| b == 0).map(|p| p + 1).unwrap_or(payload.len());
    String::from_utf8_lossy(&payload[1..end]).into_owned()
}

/// One HTTP/1.0 request to the admin port: `request_line` like "GET /status",
/// with `Authorization: Bearer <token>` when given. Returns the status line and the body.
#[allow(dead_code)]
pub async fn http(addr: SocketAddr, request_line: &str, token: Option<&str>) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect to the admin port");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    s.write_all(format!("{request_line} HTTP/1.0\r\nHost: x\r\n{auth}\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.lines().next().unwrap_or("").to_owned(), body.to_owned())
}
