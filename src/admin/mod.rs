//! The HTTP admin port:
//! - `GET /healthz`: the process is alive;
//! - `GET /topology`: each shard's servers by current role, with health;
//! - `GET /metrics`: Prometheus metrics, text exposition format ([`metrics`]);
//! - `POST /switchover?shard=NAME`: planned switchover of an active-active
//!   pair ([`crate::health::switchover`]); 200 with what moved, 409 with why not.
//!
//! Readiness and reload arrive with the operations work.

pub mod metrics;

use std::fmt::Write as _;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::backend::cluster::Backend;
use crate::frontend::Shared;

/// Serve admin requests until the listener is dropped with the task.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = match tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let req = String::from_utf8_lossy(&buf[..n]);
            let mut words = req.split_whitespace();
            let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let (status, body) = handle(&shared, method, path, query).await;
            let content_type =
                if path == "/metrics" && status == "200 OK" { metrics::CONTENT_TYPE } else { "text/plain" };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(resp.as_bytes()).await;
        });
    }
}

async fn handle(shared: &Arc<Shared>, method: &str, path: &str, query: &str) -> (&'static str, String) {
    match (method, path) {
        ("GET", "/healthz") => ("200 OK", "ok\n".into()),
        ("GET", "/topology") => ("200 OK", topology(shared)),
        ("GET", "/sessions") => ("200 OK", sessions(shared)),
        ("GET", "/metrics") => ("200 OK", metrics::render(shared)),
        ("POST", "/switchover") => {
            let shard = query.split('&').find_map(|kv| kv.strip_prefix("shard=")).unwrap_or("");
            if shard.is_empty() {
                return ("400 Bad Request", "POST /switchover?shard=NAME\n".into());
            }
            match crate::health::switchover::switchover(shared, shard).await {
                Ok(msg) => ("200 OK", format!("{msg}\n")),
                Err(why) => ("409 Conflict", format!("switchover of {shard} not done: {why}\n")),
            }
        }
        (_, "/healthz" | "/topology" | "/sessions" | "/switchover" | "/metrics") => {
            ("405 Method Not Allowed", "wrong method\n".into())
        }
        _ => ("404 Not Found", "not found\n".into()),
    }
}

/// The logged-in clients as a JSON array: id, user, peer, tls, connection attributes.
fn sessions(shared: &Shared) -> String {
    let handles: Vec<_> = shared.sessions.lock().map(|m| m.values().cloned().collect()).unwrap_or_default();
    let mut infos: Vec<crate::frontend::SessionInfo> =
        handles.iter().filter_map(|h| h.info.lock().ok().and_then(|i| i.clone())).collect();
    infos.sort_by_key(|i| i.id);
    let mut out = serde_json::to_string_pretty(&infos).unwrap_or_else(|_| "[]".into());
    out.push('\n');
    out
}

/// One line per server: shard, role, address, health.
fn topology(shared: &Shared) -> String {
    let cluster = shared.cluster.load();
    let mut out = String::new();
    let state = |b: &Backend| {
        let r = crate::health::latest(b);
        let ro = match r.read_only {
            Some(true) => "read_only",
            Some(false) => "writable",
            None => "unknown",
        };
        let up = if b.is_up() { "up" } else { "down" };
        format!("{up} {ro}{}", if b.fit_for_reads() { " fit" } else { "" })
    };
    for s in &cluster.shards {
        let _ = writeln!(out, "{} primary {} {}", s.name, s.primary.addr, state(&s.primary));
        if let Some(b) = &s.standby {
            let _ = writeln!(out, "{} standby {} {}", s.name, b.addr, state(b));
        }
        for b in &s.replicas {
            let _ = writeln!(out, "{} replica {} {}", s.name, b.addr, state(b));
        }
        for b in &s.fenced {
            let _ = writeln!(out, "{} fenced {} {}", s.name, b.addr, state(b));
        }
        if let Some(why) = &s.writes_refused {
            let _ = writeln!(out, "{} writes_refused {why}", s.name);
        }
        if s.draining {
            let _ = writeln!(out, "{} draining", s.name);
        }
    }
    out
}
