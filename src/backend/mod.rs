//! Backends: connections to MySQL servers on our own codec ([`conn`],
//! [`control`]), their pools ([`pool`]), the shard map ([`cluster`]) and the
//! session state replayed on them ([`state`]).

pub mod cluster;
pub mod conn;
pub mod control;
pub mod pool;
pub mod state;
pub mod stmt_cache;
pub mod tls;
pub mod topology;

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::wire::ErrInfo;

/// A failure talking to a backend.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// Could not connect or log in.
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: Arc<str>, reason: String },
    /// Every pooled connection stayed busy for `pool_wait_ms`.
    #[error("no free connection to {addr} within {} ms (pool_size {size})", waited.as_millis())]
    PoolTimeout { addr: Arc<str>, waited: Duration, size: usize },
    /// The connection broke while a statement was under way.
    #[error("lost connection to {addr}: {reason}")]
    Lost { addr: Arc<str>, reason: String },
    /// The server sent something the protocol does not allow here.
    #[error("protocol error from {addr}: {what}")]
    Protocol { addr: Arc<str>, what: &'static str },
    /// The server answered with an error packet.
    #[error("{} ({})", .0.message, .0.code)]
    Server(ErrInfo),
}
