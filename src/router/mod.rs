//! The router: a pure function from (statement, config snapshot, session state) to an [`Action`].
//! It does no I/O and reads no globals, so it is tested without a network.
//!
//! How a text is routed ([`route`]):
//! 1. Tokenize once with byte offsets (`crate::sql::lexer`); read hints in
//!    comments (`/* shardgate:primary */`, `/* shardgate:shard=NAME */`).
//! 2. Split at top-level `;` (several statements must all run on one shard).
//! 3. Classify each statement by its leading keywords (`crate::sql::classify`):
//!    transaction control, SET, USE, KILL, SHOW SHARDGATE ROUTE, LOCK TABLES,
//!    SQL PREPARE, DO, LOAD DATA, ... are handled from tokens (`fast`).
//! 4. Everything else is parsed with sqlparser and analysed (`statement`,
//!    `dml`, `insert`): every table reference is collected per SELECT scope
//!    (`tables`), shard keys are read from the conditions (`shard_key`) and
//!    `decide` picks the targets, refusing (error 1235) anything whose result
//!    would be wrong across shards. Per-shard SQL is cut from the original
//!    bytes (`rewrite`), never printed from the AST.
//! 5. Hints, the role (replica only for plain reads outside transactions) and
//!    the merge are applied last (`route`).
//!
//! Prepared statements ([`prepare`], [`route_execute`]) defer the key
//! placeholders to EXECUTE (`prepared`). [`describe`] renders plans.
//! [`sequence`] finds INSERTs that need ids from a global sequence and fills them in.
//! `socket`: `@@socket` reads NULL (the backend's socket is not shardgate's).

pub mod algorithm;
mod analysis;
pub mod catalog;
mod clauses;
mod decide;
pub mod describe;
pub mod diagnostics;
mod dml;
mod exprs;
mod fast;
mod insert;
mod merge_plan;
pub mod plan;
mod prepared;
mod rewrite;
mod route;
pub mod sequence;
mod shard_key;
mod socket;
mod statement;
mod tables;
#[cfg(test)]
mod tests;

pub use insert::NEEDS_COLUMN_LIST;
pub use plan::{Action, KeyValue, Merge, Plan, Role, RouteError, SetItem, StmtKind, Targets};

use crate::config::Config;

/// The parts of a client session that routing depends on.
#[derive(Debug, Clone, Copy)]
pub struct SessionView<'a> {
    /// A transaction is open (explicit BEGIN, or autocommit=0 with work done).
    pub in_transaction: bool,
    /// `@@autocommit` of the session; when false every statement is in a transaction.
    pub autocommit: bool,
    /// The session holds connection-bound state (see [`Plan::pins_session`]).
    pub pinned: bool,
    /// The session's current schema (USE), if any.
    pub database: Option<&'a str>,
    /// Learned table definitions (column order), for INSERTs without a column list.
    pub catalog: Option<&'a catalog::Catalog>,
}

/// Route one statement (the client's text, which may hold several statements
/// when the client enabled multi-statements). Never panics; anything the
/// router cannot place correctly is an [`Action::Error`] (1235) that says what
/// to do instead.
pub fn route(sql: &str, cfg: &Config, session: &SessionView<'_>) -> Action {
    route::route_text(sql, cfg, session, false).0
}

/// A statement analysed once at COM_STMT_PREPARE.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRoute {
    /// The plan with placeholders unresolved. When the shard key comes from
    /// placeholders, `action` targets every shard and `key_params` narrows it at execute.
    pub action: Action,
    pub key_params: Option<KeyParams>,
}

/// Where a prepared statement's shard key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyParams {
    /// Lower-cased name of the sharded table.
    pub table: String,
    /// 0-based placeholder indexes whose bound values are shard key values
    /// (`key = ?`, `key IN (?, ?)`, the key column of each INSERT row).
    pub params: Vec<usize>,
    /// Shards already fixed by literal key values in the same statement.
    pub literal_shards: Vec<usize>,
    /// An INSERT: every row must land on one shard (spanning rows are refused).
    pub insert: bool,
    /// When the resolved targets span more than one shard, fail with this error
    /// (a construct such as COUNT(*) or ORDER BY, or a join, that is only
    /// correct on one shard).
    pub multi_shard_error: Option<RouteError>,
    /// The statement also uses a table that only this shard (the default shard)
    /// has: the resolved targets must be exactly this shard, else the error.
    pub required_shard: Option<(usize, RouteError)>,
}

/// Analyse a statement at PREPARE time.
pub fn prepare(sql: &str, cfg: &Config, session: &SessionView<'_>) -> PreparedRoute {
    let (action, key_params) = route::route_text(sql, cfg, session, true);
    PreparedRoute { action, key_params }
}

/// Resolve a prepared statement's plan with the values bound at EXECUTE
/// (`params[i]` is placeholder i; only the indexes in `key_params` are looked at).
pub fn route_execute(prepared: &PreparedRoute, params: &[KeyValue], cfg: &Config) -> Action {
    prepared::execute(prepared, params, cfg)
}
