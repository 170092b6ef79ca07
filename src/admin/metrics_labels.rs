//! The label values of shardgate's statement and failover metrics, and how a
//! statement, an error or a failover is classified into them (pure).

use crate::frontend::errors::MyErr;
use crate::router::{Action, Plan, StmtKind, Targets};

/// The `kind` label of `shardgate_queries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SELECT, SHOW, DESCRIBE, EXPLAIN (the router's reads).
    Read,
    /// INSERT, UPDATE, DELETE, REPLACE (and what the router counts as writes:
    /// locking reads, CALL, DO, LOAD DATA).
    Write,
    /// CREATE, ALTER, DROP, TRUNCATE, RENAME.
    Ddl,
    /// BEGIN, COMMIT, ROLLBACK, SAVEPOINT, XA.
    Tx,
    /// SET, USE, KILL, PREPARE ... and everything else.
    Other,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Read, Kind::Write, Kind::Ddl, Kind::Tx, Kind::Other];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
            Kind::Ddl => "ddl",
            Kind::Tx => "tx",
            Kind::Other => "other",
        }
    }

    /// The kind of a plan the router made.
    pub fn of(kind: StmtKind) -> Kind {
        match kind {
            StmtKind::Read => Kind::Read,
            StmtKind::Write => Kind::Write,
            StmtKind::Ddl => Kind::Ddl,
            StmtKind::Other => Kind::Other,
        }
    }

    /// The kind of a statement from its first keyword, for statements the
    /// router refused (they have no plan). Only the error path uses it.
    pub fn of_text(sql: &str) -> Kind {
        let word = first_keyword(sql);
        let is = |w: &str| word.eq_ignore_ascii_case(w);
        if ["SELECT", "SHOW", "DESC", "DESCRIBE", "EXPLAIN", "WITH", "TABLE", "VALUES"].iter().any(|w| is(w)) {
            Kind::Read
        } else if ["INSERT", "UPDATE", "DELETE", "REPLACE", "CALL", "DO", "LOAD", "HANDLER"].iter().any(|w| is(w)) {
            Kind::Write
        } else if ["CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME"].iter().any(|w| is(w)) {
            Kind::Ddl
        } else if ["BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "XA"].iter().any(|w| is(w)) {
            Kind::Tx
        } else {
            Kind::Other
        }
    }
}

/// The first word of a statement, after whitespace, comments and `(`.
fn first_keyword(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(after) = trimmed.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else if trimmed.starts_with("--") || trimmed.starts_with('#') {
            rest = trimmed.split_once('\n').map_or("", |(_, r)| r);
        } else {
            rest = trimmed;
            break;
        }
    }
    let end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
    &rest[..end]
}

/// The `route` label: how many shards a statement went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// One shard.
    Single,
    /// Several shards, not all.
    Multi,
    /// Every shard (scatter, broadcast).
    All,
    /// Answered by the proxy itself: SHOW SHARDGATE ..., refused statements,
    /// proxy-made results, session statements it handles without a backend.
    Admin,
}

impl Route {
    pub const ALL: [Route; 4] = [Route::Single, Route::Multi, Route::All, Route::Admin];

    pub fn label(self) -> &'static str {
        match self {
            Route::Single => "single",
            Route::Multi => "multi",
            Route::All => "all",
            Route::Admin => "admin",
        }
    }

    /// `n` of the `shards` configured shards (0: none, the proxy answered).
    pub fn of_count(n: usize, shards: usize) -> Route {
        match n {
            0 => Route::Admin,
            1 => Route::Single,
            n if n >= shards => Route::All,
            _ => Route::Multi,
        }
    }

    pub fn of_targets(targets: &Targets, shards: usize) -> Route {
        match targets {
            Targets::Shard(_) | Targets::AnyShard => Route::Single,
            Targets::Shards(v) => Route::of_count(v.len(), shards),
            Targets::All => Route::All,
        }
    }
}

/// What a statement was, for `shardgate_queries_total` and the duration histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StmtClass {
    pub kind: Kind,
    pub route: Route,
}

impl Default for StmtClass {
    /// A statement that failed before the router classified it.
    fn default() -> Self {
        StmtClass { kind: Kind::Other, route: Route::Admin }
    }
}

impl StmtClass {
    pub fn of_plan(plan: &Plan, shards: usize) -> StmtClass {
        StmtClass { kind: Kind::of(plan.kind), route: Route::of_targets(&plan.targets, shards) }
    }

    /// The class of a session action. `None` for a plan (`run_plan` classifies
    /// it, as the prepared path reaches it directly) and for SQL `EXECUTE`
    /// (the statement it runs is classified). `held`: backend connections the
    /// session holds (where COMMIT, ROLLBACK and SAVEPOINT go); `text`: the
    /// statement, looked at only when the router refused it.
    pub fn of_action(action: &Action, text: &str, held: usize, shards: usize) -> Option<StmtClass> {
        let class = |kind, route| Some(StmtClass { kind, route });
        match action {
            Action::Query(_) | Action::SqlExecute { .. } => None,
            // BEGIN only records the statement: the transaction opens lazily.
            Action::Begin { .. } => class(Kind::Tx, Route::Admin),
            Action::EndTransaction { .. } | Action::Savepoint => class(Kind::Tx, Route::of_count(held, shards)),
            // Checked on the default shard's connection.
            Action::Use(_) => class(Kind::Other, Route::Single),
            Action::Set(_) | Action::Kill { .. } | Action::SqlPrepare { .. } | Action::SqlDeallocate { .. } => {
                class(Kind::Other, Route::Admin)
            }
            Action::ShowRoute(_) | Action::LastInsertId { .. } | Action::Diagnostics(_) => {
                class(Kind::Read, Route::Admin)
            }
            Action::Admin(_) => class(Kind::Other, Route::Admin),
            Action::Error(_) => class(Kind::of_text(text), Route::Admin),
        }
    }
}

/// The `source` label of `shardgate_query_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// Refused because of what the client sent: a statement shardgate cannot
    /// parse or will not run across shards (1235), bad input, access denied.
    Client,
    /// An ERR packet from a MySQL server.
    Backend,
    /// The proxy failed: backend unreachable (1429), connection lost (1317),
    /// no pooled connection in time, a merge over its memory budget (1038) ...
    Proxy,
}

impl ErrorSource {
    pub const ALL: [ErrorSource; 3] = [ErrorSource::Client, ErrorSource::Backend, ErrorSource::Proxy];

    pub fn label(self) -> &'static str {
        match self {
            ErrorSource::Client => "client",
            ErrorSource::Backend => "backend",
            ErrorSource::Proxy => "proxy",
        }
    }

    /// Whose fault an error the client gets is: a server's own ERR packet is
    /// `Backend`; the proxy's own errors are `Client` for the codes that say
    /// the request was wrong, `Proxy` for the rest.
    pub fn of(e: &MyErr) -> ErrorSource {
        if e.from_server {
            return ErrorSource::Backend;
        }
        match e.code {
            1043 // bad handshake
            | 1045 // access denied
            | 1046 // no database selected
            | 1047 // unknown command
            | 1064 // parse error
            | 1065 // query was empty
            | 1094 // unknown thread id (KILL)
            | 1136 // column count does not match the value count
            | 1153 // packet bigger than max_allowed_packet
            | 1210 // incorrect arguments to EXECUTE
            | 1231 // wrong value for a variable
            | 1235 // not supported: the router refused the statement
            | 1243 // unknown prepared statement handler
            | 1305 // savepoint does not exist
            | 1835 // malformed packet
            | 1927 // the client killed its own connection
            => ErrorSource::Client,
            _ => ErrorSource::Proxy,
        }
    }
}

/// The `result` label of `shardgate_failovers_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverResult {
    /// Writes go to a new primary.
    Ok,
    /// No replica qualified (none reachable, or `require_semi_sync` unmet).
    Refused,
    /// A promotion was attempted and did not complete (retried next tick).
    Failed,
}

impl FailoverResult {
    pub const ALL: [FailoverResult; 3] = [FailoverResult::Ok, FailoverResult::Refused, FailoverResult::Failed];

    pub fn label(self) -> &'static str {
        match self {
            FailoverResult::Ok => "ok",
            FailoverResult::Refused => "refused",
            FailoverResult::Failed => "failed",
        }
    }
}
