//! The one place where failures become MySQL errors for the client.
//! Backend ERR packets pass through with their own code and message; the
//! proxy's own failures get the matching MySQL code and say what to do.

use crate::backend::BackendError;
use crate::router::RouteError;

/// An error to send to the client as an ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyErr {
    pub code: u16,
    pub sqlstate: [u8; 5],
    pub message: String,
    /// A MySQL server's own ERR packet, passed on unchanged (for the
    /// `source` label of `shardgate_query_errors_total`).
    pub from_server: bool,
}

/// Why a command could not complete.
#[derive(Debug)]
pub enum Failure {
    /// Report to the client; the session goes on.
    Err(MyErr),
    /// The client connection can no longer be used (it went away, or it has
    /// a half-sent response): close it.
    Close(String),
}

impl From<MyErr> for Failure {
    fn from(e: MyErr) -> Self {
        Failure::Err(e)
    }
}

impl From<BackendError> for Failure {
    fn from(e: BackendError) -> Self {
        Failure::Err(MyErr::from_backend(&e))
    }
}

impl From<RouteError> for Failure {
    fn from(e: RouteError) -> Self {
        Failure::Err(MyErr::from_route(&e))
    }
}

fn state(s: &str) -> [u8; 5] {
    let mut out = *b"HY000";
    if s.len() == 5 {
        out.copy_from_slice(s.as_bytes());
    }
    out
}

/// A backend (or a shard's primary) cannot be reached: ER_CONNECT_TO_FOREIGN_DATA_SOURCE.
/// Not 2003: codes 2000-2999 are the client library's own, and libmariadb (the
/// CLI, mysqlclient, sysbench) reports an ERR packet carrying one as error 2027,
/// "malformed packet".
pub const BACKEND_UNREACHABLE: u16 = 1429;
/// A backend connection broke during the statement: ER_QUERY_INTERRUPTED (not 2013, see above).
pub const BACKEND_LOST: u16 = 1317;

impl MyErr {
    pub fn new(code: u16, sqlstate: &str, message: impl Into<String>) -> MyErr {
        MyErr { code, sqlstate: state(sqlstate), message: message.into(), from_server: false }
    }

    /// A server's ERR packet, as it is.
    pub fn from_server(e: crate::protocol::wire::ErrInfo) -> MyErr {
        MyErr { code: e.code, sqlstate: e.sqlstate, message: e.message, from_server: true }
    }

    pub fn from_route(e: &RouteError) -> MyErr {
        MyErr::new(e.code, e.sqlstate, e.message.clone())
    }

    /// Map a backend failure. Exhaustive on purpose: a new kind must choose its code.
    pub fn from_backend(e: &BackendError) -> MyErr {
        match e {
            BackendError::Server(err) => MyErr::from_server(err.clone()),
            BackendError::Connect { addr, reason } => MyErr::new(
                BACKEND_UNREACHABLE,
                "HY000",
                format!("shardgate: cannot reach backend {addr}: {reason}; check that the server is up, or retry later"),
            ),
            BackendError::PoolTimeout { addr, waited, size } => MyErr::new(
                1040,
                "08004",
                format!(
                    "shardgate: no free connection to backend {addr} within {} ms (pool_size {size}); raise backend.pool_size or lower the load",
                    waited.as_millis()
                ),
            ),
            BackendError::Lost { addr, reason } => MyErr::new(
                BACKEND_LOST,
                "70100",
                format!("shardgate: lost connection to backend {addr} during the statement ({reason}); it may or may not have run, check before retrying"),
            ),
            BackendError::Protocol { addr, what } => MyErr::new(
                1105,
                "HY000",
                format!("shardgate: backend {addr} sent an invalid response ({what}); the connection was closed, retry the statement"),
            ),
        }
    }

    pub fn access_denied(user: &str, host: &str, used_password: bool) -> MyErr {
        MyErr::new(
            1045,
            "28000",
            format!(
                "Access denied for user '{user}'@'{host}' (using password: {})",
                if used_password { "YES" } else { "NO" }
            ),
        )
    }

    pub fn too_many_connections(max: u32) -> MyErr {
        MyErr::new(1040, "08004", format!("Too many connections: shardgate allows proxy.max_connections = {max}"))
    }

    pub fn packet_too_large(limit: usize) -> MyErr {
        MyErr::new(
            1153,
            "08S01",
            format!("Got a packet bigger than 'max_allowed_packet' bytes ({limit}); raise proxy.max_allowed_packet or send less data"),
        )
    }

    pub fn unknown_command(cmd: u8) -> MyErr {
        MyErr::new(
            1047,
            "08S01",
            format!("Unknown command 0x{cmd:02x}: shardgate does not support this protocol command"),
        )
    }

    pub fn unknown_stmt(id: u32, what: &str) -> MyErr {
        MyErr::new(1243, "HY000", format!("Unknown prepared statement handler ({id}) given to {what}"))
    }

    pub fn malformed(what: &str) -> MyErr {
        MyErr::new(1835, "HY000", format!("Malformed communication packet: {what}"))
    }

    /// Writes to a shard are refused (see `Topology::refused`): ER_OPTION_PREVENTS_STATEMENT.
    pub fn writes_refused(shard: &str, why: &str) -> MyErr {
        MyErr::new(
            1290,
            "HY000",
            format!("shardgate: writes to shard {shard} are refused: {why}; an operator must resolve it (see the log)"),
        )
    }

    /// The statement was planned on a config a reload has just replaced, and its
    /// shard is not in the new one: running the statement again routes it afresh.
    pub fn layout_changed() -> MyErr {
        MyErr::new(
            1105,
            "HY000",
            "shardgate: the shard layout changed while this statement was planned (config reload); run it again",
        )
    }

    /// No primary of a shard could be reached within `health.failover_buffer_ms`.
    pub fn no_primary(shard: &str, waited_ms: u64, last: Option<&BackendError>) -> MyErr {
        let detail = last.map(|e| format!(" (last error: {e})")).unwrap_or_default();
        MyErr::new(
            BACKEND_UNREACHABLE,
            "HY000",
            format!(
                "shardgate: shard {shard} has no reachable primary after waiting {waited_ms} ms for a failover{detail}; retry later"
            ),
        )
    }

    pub fn not_supported(what: impl Into<String>) -> MyErr {
        MyErr::new(1235, "42000", what)
    }

    pub fn no_database() -> MyErr {
        MyErr::new(1046, "3D000", "No database selected")
    }
}
