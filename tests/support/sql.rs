//! Talking to one MariaDB server directly (not through shardgate), as the operator: the
//! `shardgate` account (all privileges, READ_ONLY ADMIN included; `app` lacks that one) on db `app`.
//!
//! The helpers are blocking so that plain `#[test]`s and `#[tokio::test]`s can both call them:
//! each query runs on a private tokio runtime in its own thread, and the caller waits on a
//! channel. Blocking an async test's thread for a moment is fine here, because the server
//! answering does not depend on that thread.

use std::net::SocketAddr;
use std::sync::{mpsc, OnceLock};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Value};

/// Result rows as text; SQL NULL is `None`.
pub type Rows = Vec<Vec<Option<String>>>;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-sql")
            .enable_all()
            .build()
            .expect("cannot build the test SQL runtime")
    })
}

/// Runs `query` on the server at `addr`; panics with the server's error.
pub fn sql(addr: SocketAddr, query: &str) -> Rows {
    try_sql(addr, query).unwrap_or_else(|e| panic!("{addr}: {query}: {e}"))
}

/// Runs statements on the server at `addr`, discarding any rows; panics on error.
pub fn exec(addr: SocketAddr, query: &str) {
    sql(addr, query);
}

/// The first column of the first row, if any and not NULL.
pub fn scalar(addr: SocketAddr, query: &str) -> Option<String> {
    sql(addr, query).into_iter().next()?.into_iter().next()?
}

/// Like [`sql`], returning the error instead of panicking.
pub fn try_sql(addr: SocketAddr, query: &str) -> Result<Rows, mysql_async::Error> {
    try_query(addr, query).map(|(_, rows)| rows)
}

/// Runs `query` (one statement or several separated by `;`) and returns the column names and
/// rows of the last result set that had columns.
pub fn try_query(addr: SocketAddr, query: &str) -> Result<(Vec<String>, Rows), mysql_async::Error> {
    let query = query.to_owned();
    let (tx, rx) = mpsc::channel();
    runtime().spawn(async move {
        let _ = tx.send(query_async(addr, &query).await);
    });
    rx.recv().expect("test SQL runtime dropped a query")
}

/// Connection options for one server as the operator account (`shardgate`, db `app`).
pub fn operator_opts(addr: SocketAddr) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .prefer_socket(false)
        .user(Some("shardgate"))
        .pass(Some("shardgate"))
        .db_name(Some("app"))
}

async fn query_async(addr: SocketAddr, query: &str) -> Result<(Vec<String>, Rows), mysql_async::Error> {
    let mut conn = Conn::new(operator_opts(addr)).await?;
    let mut result = (Vec::new(), Vec::new());
    let mut sets = conn.query_iter(query).await?;
    while !sets.is_empty() {
        let columns: Vec<String> = sets.columns_ref().iter().map(|c| c.name_str().into_owned()).collect();
        let rows: Vec<mysql_async::Row> = sets.collect().await?;
        if !columns.is_empty() {
            let rows = rows.into_iter().map(|row| row.unwrap().into_iter().map(text).collect()).collect();
            result = (columns, rows);
        }
    }
    drop(sets);
    // The server may already be gone (after SHUTDOWN); the answer is what counts.
    let _ = conn.disconnect().await;
    Ok(result)
}

/// A text-protocol value as the `mariadb` client would print it.
fn text(value: Value) -> Option<String> {
    match value {
        Value::NULL => None,
        Value::Bytes(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}
