//! Result sets shardgate makes itself (SHOW SHARDGATE ROUTE).

use super::errors::Failure;
use super::session::Session;
use crate::config::Config;
use crate::protocol::wire::{self, OkInfo};
use crate::router::{Action, Plan, Role, Targets};

impl Session {
    /// Send a text result set of string columns.
    pub(crate) fn send_result_set(&mut self, columns: &[&str], rows: &[Vec<Option<String>>]) {
        let mut seq = self.seq;
        let deprecate = self.deprecate_eof;
        let status = self.status();
        self.wr.push_with(&mut seq, |b| wire::put_lenenc_int(b, columns.len() as u64));
        for c in columns {
            self.wr.push_with(&mut seq, |b| wire::put_column_def(b, c, wire::TYPE_VAR_STRING, 45));
        }
        if !deprecate {
            self.wr.push_with(&mut seq, |b| wire::put_eof(b, 0, status));
        }
        for row in rows {
            self.wr.push_with(&mut seq, |b| wire::put_text_row(b, row.iter().map(|c| c.as_deref().map(str::as_bytes))));
        }
        self.wr.push_with(&mut seq, |b| {
            if deprecate {
                wire::put_ok(b, &OkInfo { status, ..OkInfo::default() }, true, b"");
            } else {
                wire::put_eof(b, 0, status);
            }
        });
        self.seq = seq;
    }

    /// SHOW SHARDGATE ROUTE <sql>: one row per target (shard, role, sql, reason).
    pub(crate) fn show_route(&mut self, inner: &Action, cfg: &Config) -> Result<(), Failure> {
        let mut rows: Vec<Vec<Option<String>>> = Vec::new();
        let mut push = |shard: &str, role: &str, sql: &str, reason: &str| {
            rows.push(vec![Some(shard.into()), Some(role.into()), Some(sql.into()), Some(reason.into())]);
        };
        match inner {
            Action::Query(plan) => {
                let role = self.effective_role(plan);
                for (shard, sql) in describe(plan, cfg, self) {
                    push(&shard, role, &sql, &plan.reason);
                }
            }
            Action::Error(e) => push("", "", "", &format!("refused: error {} {}", e.code, e.message)),
            Action::Begin { .. } => push("", "", "", "BEGIN: the transaction opens lazily on each shard it touches"),
            Action::EndTransaction { commit } => push(
                "",
                "",
                "",
                if *commit {
                    "COMMIT on every shard of the transaction"
                } else {
                    "ROLLBACK on every shard of the transaction"
                },
            ),
            Action::Savepoint => push("", "", "", "savepoint: forwarded to every shard of the transaction"),
            Action::Set(_) => push("", "", "", "SET: tracked by shardgate and replayed on every backend connection"),
            Action::Use(db) => push("", "", "", &format!("USE {db}: tracked by shardgate")),
            Action::Kill { .. } => push("", "", "", "KILL: handled by shardgate (its own connection ids)"),
            Action::ShowRoute(_) => push("", "", "", "SHOW SHARDGATE ROUTE: answered by shardgate"),
        }
        self.send_result_set(&["shard", "role", "sql", "reason"], &rows);
        Ok(())
    }

    fn effective_role(&self, plan: &Plan) -> &'static str {
        if plan.role == Role::Primary || self.in_transaction() || !self.autocommit || self.pinned {
            "primary"
        } else {
            "replica"
        }
    }
}

/// (shard name, SQL sent there) for each target of a plan.
fn describe(plan: &Plan, cfg: &Config, session: &Session) -> Vec<(String, String)> {
    let shards = match &plan.targets {
        Targets::AnyShard => session.target_shards(&plan.targets, cfg),
        t => session.target_shards(t, cfg),
    };
    shards
        .into_iter()
        .map(|s| {
            let sql = plan
                .split
                .as_ref()
                .and_then(|parts| parts.iter().find(|(p, _)| *p == s).map(|(_, q)| q.clone()))
                .unwrap_or_else(|| "(original statement)".into());
            (cfg.shards.get(s).map(|x| x.name.clone()).unwrap_or_default(), sql)
        })
        .collect()
}
