//! Running one corpus query on the reference server and through the proxy, and judging it:
//! the I/O half of the differential test ([`super::diff`] is the pure half).

use std::fmt::Write as _;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::corpus::Query;
use super::diff::{compare, show_row, Col, Kind, Mismatch, Order, ResultSet, Rules};
use super::diff_rules::Shape;

/// How long one query may take on one side.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// A query that did not give a result.
#[derive(Debug, Clone)]
pub enum Failure {
    /// An ERR packet: the connection is still usable.
    Server { code: u16, message: String },
    /// Anything else (I/O, protocol, timeout): the connection is not to be trusted.
    Broken(String),
}

impl Failure {
    pub fn broken(&self) -> bool {
        matches!(self, Failure::Broken(_))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Server { code, message } => write!(f, "error {code}: {message}"),
            Failure::Broken(e) => write!(f, "connection failure: {e}"),
        }
    }
}

fn failure(e: mysql_async::Error) -> Failure {
    match e {
        mysql_async::Error::Server(e) => Failure::Server { code: e.code, message: e.message },
        other => Failure::Broken(other.to_string()),
    }
}

/// How a query is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// COM_QUERY: text rows.
    Text,
    /// COM_STMT_PREPARE + COM_STMT_EXECUTE: binary rows.
    Prepared,
}

/// Runs `sql` and reads the whole (first) result set.
pub async fn fetch(conn: &mut Conn, sql: &str) -> Result<ResultSet, Failure> {
    fetch_as(conn, sql, Protocol::Text).await
}

/// Runs `sql` in `protocol` and reads the whole (first) result set.
pub async fn fetch_as(conn: &mut Conn, sql: &str, protocol: Protocol) -> Result<ResultSet, Failure> {
    let run = async {
        match protocol {
            Protocol::Text => read_all(conn.query_iter(sql).await.map_err(failure)?).await,
            Protocol::Prepared => read_all(conn.exec_iter(sql, ()).await.map_err(failure)?).await,
        }
    };
    match tokio::time::timeout(QUERY_TIMEOUT, run).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Broken(format!("no answer within {QUERY_TIMEOUT:?}"))),
    }
}

async fn read_all<P: mysql_async::prelude::Protocol>(
    mut result: mysql_async::QueryResult<'_, '_, P>,
) -> Result<ResultSet, Failure> {
    let raw = result.columns().unwrap_or_else(|| Vec::new().into());
    let columns: Vec<Col> = raw.iter().map(Col::from_mysql).collect();
    let mut rows = Vec::new();
    while let Some(row) = result.next().await.map_err(failure)? {
        rows.push(row.unwrap().into_iter().zip(&columns).map(|(v, c)| c.cell(v)).collect());
    }
    result.drop_result().await.map_err(failure)?;
    Ok(ResultSet { columns, rows })
}

/// The verdict on one query.
#[derive(Debug)]
pub enum Verdict {
    Pass,
    /// The proxy failed where the reference answered.
    ProxyFailed(Failure),
    /// The reference itself failed: the query is not valid (ONLY_FULL_GROUP_BY is on there).
    ReferenceFailed(Failure),
    /// The query breaks a corpus rule (e.g. a LIMIT without a total order).
    Corpus(String),
    Mismatch(Mismatch),
}

/// A judged query, with what the report needs.
#[derive(Debug)]
pub struct Outcome {
    pub query: Query,
    pub rules: Option<Rules>,
    pub reference: Option<ResultSet>,
    pub verdict: Verdict,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        matches!(self.verdict, Verdict::Pass)
    }

    /// A short name for the summary's failure counts.
    pub fn kind(&self) -> String {
        match &self.verdict {
            Verdict::Pass => "pass".into(),
            Verdict::ProxyFailed(Failure::Server { code, .. }) => format!("proxy error {code}"),
            Verdict::ProxyFailed(Failure::Broken(_)) => "proxy connection failure".into(),
            Verdict::ReferenceFailed(_) => "reference error (bad corpus query)".into(),
            Verdict::Corpus(_) => "corpus rule broken".into(),
            Verdict::Mismatch(m) => m.kind().into(),
        }
    }

    /// The failure report: query, rules, and what differs.
    pub fn report(&self) -> String {
        let mut out = format!("FAIL [{}] {}\n", self.query.id, self.query.sql);
        if let Some(rules) = &self.rules {
            let _ = writeln!(out, "  compared as: {rules}");
        }
        match &self.verdict {
            Verdict::Pass => {}
            Verdict::ProxyFailed(f) => {
                let _ = writeln!(out, "  proxy: {f}");
                if let Some(r) = &self.reference {
                    let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
                    let _ = writeln!(out, "  reference: {} rows, columns ({})", r.rows.len(), names.join(", "));
                    for row in r.rows.iter().take(5) {
                        let _ = writeln!(out, "      {}", show_row(row));
                    }
                    if r.rows.len() > 5 {
                        let _ = writeln!(out, "      ...");
                    }
                }
            }
            Verdict::ReferenceFailed(f) => {
                let _ = writeln!(out, "  the reference server refused the query (fix the corpus): {f}");
            }
            Verdict::Corpus(why) => {
                let _ = writeln!(out, "  corpus rule: {why}");
            }
            Verdict::Mismatch(m) => {
                let _ = writeln!(out, "  {m}");
            }
        }
        out
    }
}

/// Runs `q` on both sides at once and judges it. `proxy` is replaced by `reconnect()` when its
/// connection broke.
pub async fn judge<F, Fut>(
    q: &Query,
    reference: &mut Conn,
    proxy: &mut Conn,
    reconnect: F,
    protocol: Protocol,
) -> Outcome
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Conn>,
{
    let (r, p) = tokio::join!(fetch_as(reference, &q.sql, protocol), fetch_as(proxy, &q.sql, protocol));
    if matches!(&p, Err(f) if f.broken()) {
        *proxy = reconnect().await;
    }
    let out = |rules, reference, verdict| Outcome { query: q.clone(), rules, reference, verdict };
    let r = match r {
        Ok(r) => r,
        Err(f) => return out(None, None, Verdict::ReferenceFailed(f)),
    };
    let shape = match Shape::parse(&q.sql) {
        Ok(s) => s,
        Err(e) => return out(None, Some(r), Verdict::Corpus(format!("cannot analyse the query: {e}"))),
    };
    let names: Vec<String> = r.columns.iter().map(|c| c.name.clone()).collect();
    let mut rules = shape.rules(&names, q.annotation.as_ref());
    // Only text has collation-equal variants.
    rules.ambiguous.retain(|&i| r.columns.get(i).is_some_and(|c| c.kind == Kind::Text));
    if let Err(why) = shape.check_limit(&rules) {
        return out(Some(rules), Some(r), Verdict::Corpus(why));
    }
    if let Order::Keys(k) = &rules.order {
        if let Some(&bad) = k.iter().find(|&&k| k >= names.len()) {
            let why = format!("keys: names column {} but the result has {}", bad + 1, names.len());
            return out(Some(rules), Some(r), Verdict::Corpus(why));
        }
    }
    let p = match p {
        Ok(p) => p,
        Err(f) => return out(Some(rules), Some(r), Verdict::ProxyFailed(f)),
    };
    let verdict = match compare(&r, &p, &rules) {
        Ok(()) => Verdict::Pass,
        Err(m) => Verdict::Mismatch(m),
    };
    out(Some(rules), Some(r), verdict)
}
