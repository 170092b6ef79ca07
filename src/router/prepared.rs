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
    // The common case, one key parameter and nothing else: no set to build.
    if let ([i], true) = (kp.params.as_slice(), kp.literal_shards.is_empty()) {
        let value = params.get(*i).unwrap_or(&KeyValue::Null);
        let numeric_vs_string =
            !kp.insert && table.key_type == KeyType::String && matches!(value, KeyValue::Int(_) | KeyValue::UInt(_));
        if !numeric_vs_string {
            if let Ok(s) = shard_for(cfg, table, value) {
                if kp.required_shard.as_ref().is_some_and(|(r, _)| *r != s) {
                    return Action::Error(kp.required_shard.as_ref().map(|(_, e)| e.clone()).unwrap_or_else(|| {
                        RouteError::not_supported("the prepared statement's shard key resolved to no shard")
                    }));
                }
                let mut plan = plan.clone();
                plan.targets = Targets::Shard(s);
                plan.merge = Merge::Relay;
                return Action::Query(plan);
            }
        }
    }
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
            plan.reason = format!("{}; key parameter unusable ({e}): scatter to all shards", plan.reason).into();
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
    plan.merge = match (resolved.len() > 1, &plan.merge) {
        (true, Merge::Rows(_)) => plan.merge.clone(),
        (true, _) => Merge::Concat,
        (false, _) => Merge::Relay,
    };
    // The reason stays the prepared one ("... = ? (parameter n)"): it is not
    // rebuilt per execution; the targets say where the values led.
    Action::Query(plan)
}
