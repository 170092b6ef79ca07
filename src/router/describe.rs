//! Human-readable plans: [`Plan::describe`] and the rows of SHOW SHARDGATE ROUTE.

use super::plan::{Action, Merge, Plan, Role, StmtKind, Targets};
use crate::config::Config;
use crate::sql::{classify, lex, Leading};

/// Shown for the SQL of a plan without `split` when the client's text is not at hand.
pub const CLIENT_STATEMENT: &str = "<client statement>";

/// Columns of the SHOW SHARDGATE ROUTE result set.
pub const SHOW_ROUTE_COLUMNS: [&str; 7] = ["shard", "role", "kind", "merge", "pins_session", "sql", "reason"];

impl Plan {
    /// One row per target: (shard name, "primary" | "replica", SQL sent). Without
    /// `split` the client's own statement is sent; the plan does not hold it, so
    /// it reads [`CLIENT_STATEMENT`] (see [`Plan::describe_with_sql`]).
    pub fn describe(&self, cfg: &Config) -> Vec<(String, String, String)> {
        self.describe_with_sql(cfg, CLIENT_STATEMENT)
    }

    /// Like [`Plan::describe`], with the client's statement text.
    pub fn describe_with_sql(&self, cfg: &Config, sql: &str) -> Vec<(String, String, String)> {
        let role = match self.role {
            Role::Primary => "primary",
            Role::Replica => "replica",
        };
        let name = |i: usize| cfg.shards.get(i).map_or_else(|| format!("#{i}"), |s| s.name.clone());
        if let Some(split) = &self.split {
            return split.iter().map(|(s, text)| (name(*s), role.to_owned(), text.clone())).collect();
        }
        let shards: Vec<String> = match &self.targets {
            Targets::Shard(s) => vec![name(*s)],
            Targets::Shards(v) => v.iter().map(|&s| name(s)).collect(),
            Targets::All => (0..cfg.shards.len()).map(name).collect(),
            Targets::AnyShard => vec!["any".to_owned()],
        };
        shards.into_iter().map(|s| (s, role.to_owned(), sql.to_owned())).collect()
    }
}

fn kind_name(k: StmtKind) -> &'static str {
    match k {
        StmtKind::Read => "read",
        StmtKind::Write => "write",
        StmtKind::Ddl => "ddl",
        StmtKind::Other => "other",
    }
}

/// The statement after `SHOW SHARDGATE ROUTE`, if `sql` is one.
pub fn show_route_inner(sql: &str) -> Option<&str> {
    let lx = lex(sql).ok()?;
    let first = lx.statements().into_iter().next()?;
    match classify(&lx, &lx.significant(first)) {
        Leading::ShowRoute { inner_start } => Some(sql[inner_start..].trim()),
        _ => None,
    }
}

/// The rows of SHOW SHARDGATE ROUTE (columns [`SHOW_ROUTE_COLUMNS`]). `action`
/// is what [`super::route`] returned for `sql`: either the `ShowRoute` action
/// of the whole `SHOW SHARDGATE ROUTE ...` text, or the inner statement's action.
pub fn show_route_rows(action: &Action, sql: &str, cfg: &Config) -> Vec<Vec<String>> {
    match action {
        Action::ShowRoute(inner) => show_route_rows(inner, show_route_inner(sql).unwrap_or(sql), cfg),
        Action::Query(plan) => {
            let merge = match &plan.merge {
                Merge::Relay => "relay".to_owned(),
                Merge::Concat => "concat".to_owned(),
                Merge::Rows(spec) => format!("merge ({})", spec.describe()),
            };
            plan.describe_with_sql(cfg, sql.trim())
                .into_iter()
                .map(|(shard, role, text)| {
                    vec![
                        shard,
                        role,
                        kind_name(plan.kind).to_owned(),
                        merge.to_owned(),
                        plan.pins_session.to_string(),
                        text,
                        plan.reason.to_string(),
                    ]
                })
                .collect()
        }
        other => {
            let (kind, reason) = match other {
                Action::Begin { .. } => ("begin", "opens a transaction on each shard it touches, lazily".to_owned()),
                Action::EndTransaction { commit: true } => ("commit", "commits the open transaction".to_owned()),
                Action::EndTransaction { commit: false } => ("rollback", "rolls back the open transaction".to_owned()),
                Action::Savepoint => ("savepoint", "forwarded to every connection of the transaction".to_owned()),
                Action::Set(items) => {
                    ("set", format!("session state ({} assignment(s)), replayed on each connection", items.len()))
                }
                Action::Use(db) => ("use", format!("switches the session's schema to {db}")),
                Action::Kill { connection_id, query_only } => (
                    "kill",
                    format!(
                        "kills {} of shardgate connection {connection_id}",
                        if *query_only { "the query" } else { "the connection" }
                    ),
                ),
                Action::Error(e) => ("error", format!("error {}: {}", e.code, e.message)),
                Action::Query(_) | Action::ShowRoute(_) => unreachable!("handled above"),
            };
            vec![vec!["-".into(), "-".into(), kind.into(), "-".into(), "false".into(), sql.trim().to_owned(), reason]]
        }
    }
}
