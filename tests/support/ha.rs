//! Load and polling helpers for the failover tests: writers and a reader
//! through the proxy, recording what was acknowledged.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use super::proxy::Proxy;
use super::Cluster;

pub fn poll(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn port_of(rows: &[Vec<Option<String>>]) -> u16 {
    rows[0][0].clone().unwrap().parse().unwrap()
}

pub fn current_primary(proxy: &Proxy) -> String {
    proxy.shared().cluster.load().shards[0].primary.addr.to_string()
}

/// What the writers saw.
#[derive(Default)]
pub struct Load {
    pub acked: Vec<i64>,
    pub errors: Vec<(u16, String)>,
    /// First acknowledged write that started after the kill.
    pub first_after_kill: Option<Instant>,
    pub read_errors: usize,
    pub reads: usize,
}

/// `writers` clients insert rows (ids unique per writer) and one client reads,
/// until `stop`. Writes are single statements in autocommit: acknowledged = OK seen.
pub fn start_load(
    proxy: &Proxy,
    table: &str,
    writers: i64,
    stop: Arc<AtomicBool>,
    killed_at: Arc<Mutex<Option<Instant>>>,
) -> (Arc<Mutex<Load>>, Vec<tokio::task::JoinHandle<()>>) {
    let load = Arc::new(Mutex::new(Load::default()));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (opts, table, stop, load, killed_at) =
            (proxy.opts(), table.to_owned(), stop.clone(), load.clone(), killed_at.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn: Option<mysql_async::Conn> = None;
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = w * 1_000_000 + i;
                if conn.is_none() {
                    conn = mysql_async::Conn::new(opts.clone()).await.ok();
                }
                let Some(c) = conn.as_mut() else { continue };
                let started = Instant::now();
                match c.query_drop(format!("INSERT INTO {table} (id, w) VALUES ({id}, {w})")).await {
                    Ok(()) => {
                        let mut l = load.lock().unwrap();
                        l.acked.push(id);
                        let after_kill = killed_at.lock().unwrap().is_some_and(|k| started >= k);
                        if after_kill && l.first_after_kill.is_none() {
                            l.first_after_kill = Some(Instant::now());
                        }
                    }
                    Err(e) => {
                        let code = match &e {
                            mysql_async::Error::Server(s) => s.code,
                            _ => 0,
                        };
                        load.lock().unwrap().errors.push((code, e.to_string()));
                        if code == 0 {
                            conn = None;
                        }
                    }
                }
            }
        }));
    }
    let (opts, table, stop, load2) = (proxy.opts(), table.to_owned(), stop.clone(), load.clone());
    tasks.push(tokio::spawn(async move {
        let mut c = mysql_async::Conn::new(opts).await.unwrap();
        while !stop.load(Ordering::Relaxed) {
            let r: Result<Option<i64>, _> = c.query_first(format!("SELECT COUNT(*) FROM {table}")).await;
            {
                let mut l = load2.lock().unwrap();
                l.reads += 1;
                l.read_errors += usize::from(r.is_err());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }));
    (load, tasks)
}

pub fn ids_on(cluster: &Cluster, addr: SocketAddr, table: &str) -> BTreeSet<i64> {
    cluster
        .sql(addr, &format!("SELECT id FROM {table}"))
        .into_iter()
        .map(|r| r[0].clone().unwrap().parse().unwrap())
        .collect()
}
