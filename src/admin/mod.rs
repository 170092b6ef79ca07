//! The HTTP admin port (`proxy.admin_listen`):
//! - `GET /healthz`: the process is alive (liveness);
//! - `GET /readyz`: 200 only when the config is loaded, every shard has a
//!   reachable primary and the proxy is not draining (readiness);
//! - `GET /status`: JSON: shards, every backend (role, health, lag, GTID
//!   position, pool use), the config version and its last reload ([`status`]);
//! - `GET /topology`: each shard's servers by current role, one line each;
//! - `GET /sessions`: logged-in clients with their connection attributes (JSON);
//! - `GET /metrics`: Prometheus metrics, text exposition format ([`metrics`]);
//! - `POST /reload[?force=1]`: reload the config file ([`reload`]);
//! - `POST /switchover?shard=NAME`: planned switchover of an active-active pair.
//!
//! The POST endpoints change state and need `Authorization: Bearer <token>`
//! with `proxy.admin_token` (or the content of `proxy.admin_token_file`);
//! without a configured token they are refused.

pub mod metrics;
pub mod reload;
pub mod status;

use std::fmt::Write as _;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::backend::cluster::Backend;
use crate::frontend::Shared;

/// Seconds since the Unix epoch (for timestamps shown in `/status` and `/metrics`).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Largest request head read (request line and headers).
const MAX_HEAD: usize = 8192;

/// One request, as far as the admin port cares.
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    bearer: Option<&'a str>,
}

/// A response: status line, content type, body.
type Response = (&'static str, &'static str, String);

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// Serve admin requests until the listener is dropped with the task.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let shared = shared.clone();
        tokio::spawn(async move {
            let head = match tokio::time::timeout(std::time::Duration::from_secs(5), read_head(&mut stream)).await {
                Ok(Some(h)) => h,
                _ => return,
            };
            let (status, content_type, body) = match parse(&head) {
                Some(req) => handle(&shared, &req).await,
                None => ("400 Bad Request", TEXT, "malformed request\n".into()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(resp.as_bytes()).await;
        });
    }
}

/// Read up to the blank line that ends the request head.
async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn parse(head: &str) -> Option<Request<'_>> {
    let mut lines = head.lines();
    let mut words = lines.next()?.split_whitespace();
    let (method, target) = (words.next()?, words.next()?);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let bearer = lines.take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        let value = value.trim();
        let scheme = value.get(..7)?;
        (name.trim().eq_ignore_ascii_case("authorization") && scheme.eq_ignore_ascii_case("bearer "))
            .then(|| value[7..].trim())
    });
    Some(Request { method, path, query, bearer })
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

async fn handle(shared: &Arc<Shared>, req: &Request<'_>) -> Response {
    match (req.method, req.path) {
        ("GET", "/healthz") => ("200 OK", TEXT, "ok\n".into()),
        ("GET", "/readyz") => match status::not_ready(shared) {
            None => ("200 OK", TEXT, "ready\n".into()),
            Some(why) => ("503 Service Unavailable", TEXT, format!("not ready: {why}\n")),
        },
        ("GET", "/status") => ("200 OK", JSON, status::json(shared)),
        ("GET", "/topology") => ("200 OK", TEXT, topology(shared)),
        ("GET", "/sessions") => ("200 OK", JSON, sessions(shared)),
        ("GET", "/metrics") => ("200 OK", metrics::CONTENT_TYPE, metrics::render(shared)),
        ("POST", "/reload" | "/switchover") => {
            if let Err(why) = authorize(shared, req.bearer) {
                return why;
            }
            if req.path == "/reload" {
                let force = matches!(param(req.query, "force"), Some("1" | "true" | "yes"));
                return match reload::reload(shared, force, "POST /reload").await {
                    Ok(o) => ("200 OK", TEXT, format!("{}\n", o.summary())),
                    Err(e @ reload::ReloadError::Refused(_)) => {
                        ("409 Conflict", TEXT, format!("reload refused: {e}\n"))
                    }
                    Err(e) => ("400 Bad Request", TEXT, format!("reload failed: {e}\n")),
                };
            }
            let shard = param(req.query, "shard").unwrap_or("");
            if shard.is_empty() {
                return ("400 Bad Request", TEXT, "POST /switchover?shard=NAME\n".into());
            }
            match crate::health::switchover::switchover(shared, shard).await {
                Ok(msg) => ("200 OK", TEXT, format!("{msg}\n")),
                Err(why) => ("409 Conflict", TEXT, format!("switchover of {shard} not done: {why}\n")),
            }
        }
        (
            _,
            "/healthz" | "/readyz" | "/status" | "/topology" | "/sessions" | "/metrics" | "/reload" | "/switchover",
        ) => ("405 Method Not Allowed", TEXT, "wrong method\n".into()),
        _ => ("404 Not Found", TEXT, "not found\n".into()),
    }
}

/// The token comes from `ProxySection::admin_token` at each request, so a
/// rotated secret file applies at once.
fn authorize(shared: &Shared, bearer: Option<&str>) -> Result<(), Response> {
    let token = match shared.config.load().proxy.admin_token() {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err((
                "403 Forbidden",
                TEXT,
                "endpoints that change state need a token: set proxy.admin_token (or admin_token_file) \
                 and send Authorization: Bearer <token>\n"
                    .into(),
            ))
        }
        Err(e) => return Err(("500 Internal Server Error", TEXT, format!("{e}\n"))),
    };
    let given = bearer.unwrap_or("");
    if crate::protocol::handshake::same_hash(given.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(("401 Unauthorized", TEXT, "missing or wrong bearer token\n".into()))
    }
}

/// The logged-in clients as a JSON array: id, user, peer, tls, connection attributes.
fn sessions(shared: &Shared) -> String {
    let handles = shared.session_handles();
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
        for (b, role) in s.servers() {
            let _ = writeln!(out, "{} {role} {} {}", s.name, b.addr, state(b));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_parse_with_their_bearer_token() {
        let r = parse("POST /reload?force=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer  s3cret \r\n\r\n").unwrap();
        assert_eq!((r.method, r.path, r.query, r.bearer), ("POST", "/reload", "force=1", Some("s3cret")));
        assert_eq!(param(r.query, "force"), Some("1"));
        let r = parse("GET /status HTTP/1.0\r\nauthorization: basic abc\r\n\r\n").unwrap();
        assert_eq!(r.bearer, None);
        assert!(parse("").is_none());
        assert_eq!(param("shard=s0&x=1", "shard"), Some("s0"));
        assert_eq!(param("shardx=s0", "shard"), None);
    }
}
