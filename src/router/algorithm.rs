//! Shard algorithms: `mod`, `hash` (64-bit keyspace ranges) and `range`.
//! (Skeleton: the config/algorithm helper fills this in.)

use super::plan::KeyValue;
use crate::config::{Config, ShardedTable};

/// Why a key value cannot be placed on a shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("NULL cannot be a shard key value")]
    Null,
    #[error("{0}")]
    Unusable(String),
}

/// The shard (index into `cfg.shards`) that owns `key` for `table`.
pub fn shard_for(cfg: &Config, table: &ShardedTable, key: &KeyValue) -> Result<usize, KeyError> {
    let _ = (cfg, table, key);
    Err(KeyError::Unusable("not implemented".into()))
}
