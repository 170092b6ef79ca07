//! Shard algorithms: `mod`, `hash` (64-bit keyspace ranges) and `range`.
//!
//! `hash` maps a key to a 64-bit keyspace id; each shard owns a contiguous range
//! of that keyspace (`Shard::key_range`). The function is frozen by golden vectors
//! in the tests: changing it would misroute existing rows.
//!
//! - Integer keys: `mix64(v as u64)` (the splitmix64 finaliser, a bijection).
//! - String keys: `mix64(fnv1a64(normalise(s, collation)))`.

use super::plan::KeyValue;
use crate::config::{Algorithm, Config, KeyType, ShardedTable};

/// Why a key value cannot be placed on a shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("NULL cannot be a shard key value")]
    Null,
    #[error("{0}")]
    Unusable(String),
}

/// The splitmix64 finaliser: spreads any 64-bit input over the whole keyspace.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a, 64 bit.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The keyspace id of a key value under `table`'s key type and collation.
pub fn keyspace_id(table: &ShardedTable, key: &KeyValue) -> Result<u64, KeyError> {
    match table.key_type {
        KeyType::Int => Ok(mix64(int_key(key)? as u64)),
        KeyType::String => match key {
            KeyValue::Null => Err(KeyError::Null),
            KeyValue::Str(s) => Ok(mix64(fnv1a64(&normalise(s, &table.collation)))),
            KeyValue::Int(v) => Ok(mix64(fnv1a64(v.to_string().as_bytes()))),
            KeyValue::UInt(v) => Ok(mix64(fnv1a64(v.to_string().as_bytes()))),
            KeyValue::Other => Err(KeyError::Unusable("this value cannot be a string shard key".into())),
        },
    }
}

/// Normalise a string key so that values equal under `collation` are byte-equal.
/// `_bin` and `binary`: trailing spaces dropped (PAD SPACE). `_ci`: also case-folded.
pub fn normalise(s: &[u8], collation: &str) -> Vec<u8> {
    let trimmed = match s.iter().rposition(|&b| b != b' ') {
        Some(i) => &s[..=i],
        None => &s[..0],
    };
    if collation == "binary" {
        return s.to_vec();
    }
    if collation.ends_with("_bin") {
        return trimmed.to_vec();
    }
    match std::str::from_utf8(trimmed) {
        Ok(text) => text.to_lowercase().into_bytes(),
        Err(_) => trimmed.to_ascii_lowercase(),
    }
}

fn int_key(key: &KeyValue) -> Result<i64, KeyError> {
    match key {
        KeyValue::Int(v) => Ok(*v),
        KeyValue::UInt(v) => Ok(*v as i64),
        KeyValue::Null => Err(KeyError::Null),
        KeyValue::Str(s) => std::str::from_utf8(s)
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .ok_or_else(|| KeyError::Unusable("this string is not an integer shard key".into())),
        KeyValue::Other => Err(KeyError::Unusable("this value cannot be an integer shard key".into())),
    }
}

/// The shard (index into `cfg.shards`) that owns `key` for `table`.
pub fn shard_for(cfg: &Config, table: &ShardedTable, key: &KeyValue) -> Result<usize, KeyError> {
    match table.algorithm {
        Algorithm::Hash => {
            let id = keyspace_id(table, key)?;
            cfg.shards
                .iter()
                .position(|s| s.key_range.contains(id))
                .ok_or_else(|| KeyError::Unusable(format!("no shard owns keyspace id {id:016x}")))
        }
        Algorithm::Mod => {
            let v = int_key(key)?;
            Ok(v.rem_euclid(cfg.shards.len() as i64) as usize)
        }
        Algorithm::Range => {
            let v = int_key(key)?;
            Ok(table.boundaries.partition_point(|&b| b <= v))
        }
    }
}
