//! shardgate's admin statements on the MySQL port, for accounts with
//! `[[users]] admin = true`: `SHOW SHARDGATE BACKENDS | SHARDS | POOLS` as
//! result sets (so the `mariadb` CLI shows tables), `SHARDGATE RELOAD [FORCE]`
//! and `SHARDGATE SWITCHOVER <shard>`. The rows are the admin port's
//! (`admin::status`), so both always agree.

use super::errors::{Failure, MyErr};
use super::session::Session;
use crate::admin::{reload, status};
use crate::config::Config;
use crate::protocol::wire::OkInfo;
use crate::router::plan::AdminStatement;

fn opt<T: ToString>(v: Option<T>) -> Option<String> {
    v.map(|v| v.to_string())
}

fn yes_no(b: bool) -> Option<String> {
    Some(if b { "yes" } else { "no" }.to_owned())
}

impl Session {
    pub(crate) async fn admin_statement(&mut self, statement: AdminStatement, cfg: &Config) -> Result<(), Failure> {
        if !cfg.users.get(&self.user).is_some_and(|u| u.admin) {
            return Err(MyErr::new(
                1227,
                "42000",
                format!(
                    "Access denied; user '{}' needs admin = true in its [[users]] entry for shardgate's admin statements",
                    self.user
                ),
            )
            .into());
        }
        match statement {
            AdminStatement::ShowBackends => {
                let rows: Vec<Vec<Option<String>>> = status::backends(&self.shared)
                    .into_iter()
                    .map(|b| {
                        vec![
                            Some(b.shard),
                            Some(b.addr),
                            Some(b.role.to_owned()),
                            Some(if b.up { "up" } else { "down" }.to_owned()),
                            yes_no(b.fit_for_reads),
                            b.read_only.map(|r| if r { "ON" } else { "OFF" }.to_owned()),
                            opt(b.lag_seconds),
                            b.gtid_position,
                            b.zone,
                            Some(b.queries.to_string()),
                            b.problem,
                        ]
                    })
                    .collect();
                let columns = [
                    "shard",
                    "addr",
                    "role",
                    "state",
                    "serves_reads",
                    "read_only",
                    "lag_s",
                    "gtid_position",
                    "zone",
                    "queries",
                    "problem",
                ];
                self.send_result_set(&columns, &rows);
            }
            AdminStatement::ShowShards => {
                let rows: Vec<Vec<Option<String>>> = status::shards(&self.shared)
                    .into_iter()
                    .map(|s| {
                        vec![
                            Some(s.name),
                            Some(s.primary),
                            Some(if s.primary_up { "up" } else { "down" }.to_owned()),
                            Some(s.replicas.to_string()),
                            Some(s.fit_replicas.to_string()),
                            yes_no(s.switching),
                            s.writes_refused,
                        ]
                    })
                    .collect();
                let columns = [
                    "shard",
                    "primary",
                    "primary_state",
                    "replicas",
                    "replicas_serving",
                    "switching",
                    "writes_refused",
                ];
                self.send_result_set(&columns, &rows);
            }
            AdminStatement::ShowPools => {
                let rows: Vec<Vec<Option<String>>> = status::backends(&self.shared)
                    .into_iter()
                    .map(|b| {
                        vec![
                            Some(b.shard),
                            Some(b.addr),
                            Some(b.role.to_owned()),
                            Some(b.pool_open.to_string()),
                            Some(b.pool_idle.to_string()),
                            Some(b.pool_active.to_string()),
                            Some(b.pool_max.to_string()),
                        ]
                    })
                    .collect();
                self.send_result_set(&["shard", "addr", "role", "open", "idle", "active", "max"], &rows);
            }
            AdminStatement::Reload { force } => {
                let trigger = if force { "SHARDGATE RELOAD FORCE" } else { "SHARDGATE RELOAD" };
                match reload::reload(&self.shared, force, trigger).await {
                    Ok(o) => self.send_ok_info(OkInfo::default(), o.summary().as_bytes()),
                    Err(e) => return Err(MyErr::new(1105, "HY000", format!("reload not applied: {e}")).into()),
                }
            }
            AdminStatement::Switchover { shard } => {
                match crate::health::switchover::switchover(&self.shared, &shard).await {
                    Ok(msg) => self.send_ok_info(OkInfo::default(), msg.as_bytes()),
                    Err(why) => {
                        return Err(MyErr::new(1105, "HY000", format!("switchover of {shard} not done: {why}")).into())
                    }
                }
            }
        }
        Ok(())
    }
}
