//! Resolving a prepared statement's targets from the values bound at EXECUTE.

use std::collections::BTreeSet;

use super::algorithm::{shard_for, KeyError};
use super::analysis::{not_supported, targets_of};
use super::plan::{Action, KeyValue, Merge, RouteError, Targets};
use super::PreparedRoute;
use crate::config::{Config, KeyType, TableRule};

/// See [`super::route_execute`].
pub(crate) fn execute(prepared: &PreparedRoute, params: &[KeyValue], cfg: &Config) -> Action {
    let (Some(kp), Action::Query(plan)) = (&prepared.key_params, &prepared.action) else {
        return prepared.action.clone();
    };
    let Some(TableRule::Sharded(table)) = cfg.table(&kp.table) else {
        return Action::Error(not_supported(format!(
            "table {} is no longer sharded; prepare the statement again",
            kp.table
        )));
    };
    let mut shards: BTreeSet<usize> = kp.literal_shards.iter().copied().filter(|&s| s < cfg.shards.len()).collect();
    let mut unusable: Option<KeyError> = None;
    for &i in &kp.params {
        let value = params.get(i).unwrap_or(&KeyValue::Null);
        // A string column compared with a number matches numerically: no single shard.
        let numeric_vs_string =
            !kp.insert && table.key_type == KeyType::String && matches!(value, KeyValue::Int(_) | KeyValue::UInt(_));
        let placed = if numeric_vs_string {
            Err(KeyError::Unusable("a number compared with a string shard key".into()))
        } else {
            shard_for(cfg, table, value)
        };
        match placed {
            Ok(s) => {
                shards.insert(s);
            }
            Err(e) => {
                unusable.get_or_insert(e);
            }
        }
    }
    let mut plan = plan.clone();
    let scatter = unusable.is_some();
    let resolved: BTreeSet<usize> = match unusable {
        Some(e) if kp.insert => {
            let msg = match e {
                KeyError::Null => {
                    format!("INSERT into sharded table {} needs a value for shard key {}", kp.table, table.shard_key)
                }
                KeyError::Unusable(m) => {
                    format!("INSERT into sharded table {}: cannot place shard key {}: {m}", kp.table, table.shard_key)
                }
            };
            return Action::Error(not_supported(msg));
        }
        Some(e) => {
            plan.reason.push_str(&format!("; key parameter unusable ({e}): scatter to all shards"));
            (0..cfg.shards.len()).collect()
        }
        None => shards,
    };
    if resolved.len() > 1 {
        if kp.insert {
            return Action::Error(not_supported(
                "a prepared multi-row INSERT whose rows span shards is not supported; insert them separately",
            ));
        }
        if let Some(e) = &kp.multi_shard_error {
            return Action::Error(e.clone());
        }
    }
    if let Some((shard, e)) = &kp.required_shard {
        if resolved.len() != 1 || !resolved.contains(shard) {
            return Action::Error(e.clone());
        }
    }
    if resolved.is_empty() {
        return Action::Error(RouteError::not_supported("the prepared statement's shard key resolved to no shard"));
    }
    plan.targets = if scatter { Targets::All } else { targets_of(&resolved) };
    plan.merge = if resolved.len() > 1 { Merge::Concat } else { Merge::Relay };
    let names: Vec<&str> = resolved.iter().filter_map(|&s| cfg.shards.get(s).map(|x| x.name.as_str())).collect();
    plan.reason.push_str(&format!("; parameters → {}", names.join(", ")));
    Action::Query(plan)
}
