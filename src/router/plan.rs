//! The router's output: what the session must do with one statement.
//!
//! This is the contract between the pure router and the I/O side (frontend,
//! backend, merge). The executor never re-parses SQL: everything it needs is here.
use std::sync::Arc;

/// What to do with one client statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run on backends as described by the plan.
    Query(Plan),
    /// BEGIN / START TRANSACTION [...]. The transaction opens lazily: `sql`
    /// (the client's own text) is sent on each shard's primary connection the
    /// first time the transaction touches that shard.
    Begin { sql: String },
    /// COMMIT or ROLLBACK of the whole transaction (`commit == false` for ROLLBACK).
    EndTransaction { commit: bool },
    /// SAVEPOINT / ROLLBACK TO [SAVEPOINT] / RELEASE SAVEPOINT: forwarded as-is
    /// to every connection of the open transaction (or to the default shard's
    /// primary when none is open yet).
    Savepoint,
    /// SET statements that change session state; the session tracks and replays them.
    Set(Vec<SetItem>),
    /// USE db / COM_INIT_DB.
    Use(String),
    /// KILL [CONNECTION | QUERY] id: ids are shardgate's own connection ids.
    Kill { connection_id: u64, query_only: bool },
    /// SHOW SHARDGATE ROUTE <sql>: return the inner statement's plan without running it.
    ShowRoute(Box<Action>),
    /// One of shardgate's admin statements (for `[[users]] admin = true`).
    Admin(AdminStatement),
    /// `SELECT LAST_INSERT_ID()` / `SELECT @@IDENTITY` as a whole statement: the
    /// session answers from its own record (one column named `column`), since
    /// its next statement may run on another pooled backend connection.
    LastInsertId { column: String },
    /// SQL-level `PREPARE name FROM '...'`: kept by the session, which writes the
    /// values of `EXECUTE name USING @v, ...` into the text and runs it as a query.
    SqlPrepare { name: String, sql: String },
    /// `EXECUTE name [USING @a, 'x', 1 ...]`.
    SqlExecute { name: String, using: Vec<Using> },
    /// `DEALLOCATE PREPARE name` / `DROP PREPARE name`.
    SqlDeallocate { name: String },
    /// ROW_COUNT(), FOUND_ROWS(), SHOW WARNINGS ...: about the previous
    /// statement, answered by the session from its own record.
    Diagnostics(super::diagnostics::Diag),
    /// Refused by the router with a MySQL error.
    Error(RouteError),
}

/// shardgate's admin statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminStatement {
    /// `SHOW SHARDGATE BACKENDS`: every server, its role, health, lag, GTID position.
    ShowBackends,
    /// `SHOW SHARDGATE SHARDS`: each shard's primary and replica counts.
    ShowShards,
    /// `SHOW SHARDGATE POOLS`: connection pool use per server.
    ShowPools,
    /// `SHARDGATE RELOAD [FORCE]`: reload the config file.
    Reload { force: bool },
    /// `SHARDGATE SWITCHOVER <shard>`: planned switchover of an active-active pair.
    Switchover { shard: String },
}

/// One value of `EXECUTE ... USING`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Using {
    /// A user variable (name lower-cased, without `@`).
    Var(String),
    /// An expression (usually a literal), as written.
    Expr(String),
}

/// A MySQL error produced by the proxy itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    /// MySQL error code, e.g. 1235 (ER_NOT_SUPPORTED_YET).
    pub code: u16,
    /// Five-character SQLSTATE, e.g. "42000".
    pub sqlstate: &'static str,
    /// Says what is wrong and what to do.
    pub message: String,
}

impl RouteError {
    /// ER_NOT_SUPPORTED_YET (1235, 42000).
    pub fn not_supported(message: impl Into<String>) -> Self {
        RouteError { code: 1235, sqlstate: "42000", message: message.into() }
    }
}

/// How a statement runs on backends.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub kind: StmtKind,
    pub targets: Targets,
    pub role: Role,
    /// Per-shard SQL when the statement had to be split (multi-row INSERT, IN list).
    /// `None`: the client's original bytes go to every target unchanged.
    pub split: Option<Vec<(usize, String)>>,
    /// How results from several shards are combined.
    pub merge: Merge,
    /// The statement creates state that lives on one backend connection
    /// (LOCK TABLES, GET_LOCK, temporary tables, user variables, SQL PREPARE,
    /// SQL_CALC_FOUND_ROWS ...): the session keeps its primary connection on
    /// the target shard(s) until it ends or resets.
    pub pins_session: bool,
    /// sqlparser could not parse the statement; it is forwarded as written
    /// (pinned session, hint or `unparsed = "default_shard"`). Counted.
    pub unparsed: bool,
    /// Why the router chose this plan; shown by SHOW SHARDGATE ROUTE.
    /// Shared: plans are cloned per execution of a cached or prepared route.
    pub reason: Arc<str>,
}

/// What kind of statement, for routing and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StmtKind {
    /// SELECT without locking clauses, SHOW, DESCRIBE, EXPLAIN.
    Read,
    /// INSERT, UPDATE, DELETE, REPLACE, locking reads, CALL, DO ...
    Write,
    /// CREATE, ALTER, DROP, TRUNCATE, RENAME.
    Ddl,
    /// Anything else that goes to backends (e.g. a hinted unparsable statement).
    Other,
}

/// Which shards a plan runs on (shard ids are indexes into `Config::shards`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    Shard(usize),
    /// Several shards, ascending, no duplicates.
    Shards(Vec<usize>),
    All,
    /// Any one shard will do (reads of broadcast tables); the session picks.
    AnyShard,
}

/// Which server of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A healthy replica, round-robin; the primary when none is healthy.
    Replica,
    Primary,
}

/// How results from several shards are combined.
#[derive(Debug, Clone, PartialEq)]
pub enum Merge {
    /// One target: relay the backend's packets as they come.
    Relay,
    /// Several targets: result sets are concatenated (same columns); OK packets
    /// are summed (affected rows, warnings); the first error wins.
    Concat,
    /// Several targets whose rows are merged (ORDER BY, LIMIT, aggregates,
    /// GROUP BY, DISTINCT): see [`crate::merge`].
    Rows(Arc<crate::merge::MergeSpec>),
}

/// One assignment of a SET statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetItem {
    /// SET NAMES cs [COLLATE coll]; `charset` lower-cased; "default" allowed.
    Names { charset: String, collation: Option<String> },
    /// SET CHARACTER SET cs / SET CHARSET cs.
    CharacterSet(String),
    /// SET [SESSION | LOCAL | @@session. | @@] name = value. `name` is lower-cased;
    /// `value` is the SQL text of the right-hand side (e.g. `0`, `'ANSI'`, `DEFAULT`).
    Session { name: String, value: String },
    /// SET @name = value; `value` is SQL text.
    User { name: String, value: String },
    /// SET [SESSION] TRANSACTION ...: `session == false` applies to the next transaction only.
    /// `sql` is the whole statement text to replay.
    Transaction { session: bool, sql: String },
}

/// A value bound to a prepared statement parameter (or a literal), as the router needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    Int(i64),
    UInt(u64),
    /// Text, exactly as sent (not yet collation-normalised).
    Str(Vec<u8>),
    Null,
    /// Anything that cannot be used as a shard key (floats, dates, blobs).
    Other,
}
