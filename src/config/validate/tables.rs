//! `[[tables]]`: sharded and broadcast table rules.

use std::collections::HashMap;

use super::{invalid, ConfigError};
use crate::config::schema::{Algorithm, KeyType, TableEntry};
use crate::config::{ShardedTable, TableRule};

/// Collation of a string shard key when the table gives none.
pub const DEFAULT_COLLATION: &str = "utf8mb4_general_ci";

/// Validate the table list; the map is keyed by lower-cased table name.
pub(super) fn resolve(entries: &[TableEntry], shard_count: usize) -> Result<HashMap<String, TableRule>, ConfigError> {
    let mut tables: HashMap<String, TableRule> = HashMap::with_capacity(entries.len());
    let mut first_index: HashMap<String, usize> = HashMap::new();
    for (i, t) in entries.iter().enumerate() {
        if t.name.is_empty() {
            return Err(invalid(format!("tables[{i}].name"), "must not be empty"));
        }
        let lower = t.name.to_ascii_lowercase();
        if let Some(first) = first_index.insert(lower.clone(), i) {
            return Err(invalid(
                format!("tables[{i}].name"),
                format!(
                    "{:?} is already listed as tables[{first}] ({}); table names are \
                     case-insensitive and must be unique",
                    t.name, entries[first].name
                ),
            ));
        }
        let rule = resolve_table(i, t, shard_count)?;
        tables.insert(lower, rule);
    }
    Ok(tables)
}

fn resolve_table(i: usize, t: &TableEntry, shard_count: usize) -> Result<TableRule, ConfigError> {
    let whole = format!("tables[{i}] ({})", t.name);
    let field = |f: &str| format!("tables[{i}].{f} ({})", t.name);
    if t.broadcast {
        let mut extra = Vec::new();
        if t.shard_key.is_some() {
            extra.push("shard_key");
        }
        if t.algorithm.is_some() {
            extra.push("algorithm");
        }
        if !t.boundaries.is_empty() {
            extra.push("boundaries");
        }
        if t.collation.is_some() {
            extra.push("collation");
        }
        if !extra.is_empty() {
            return Err(invalid(
                whole,
                format!(
                    "a broadcast table has a full copy on every shard, so it takes no {}; \
                     remove them, or remove broadcast = true to shard the table",
                    extra.join(", ")
                ),
            ));
        }
        return Ok(TableRule::Broadcast);
    }
    let shard_key = match t.shard_key.as_deref() {
        None => {
            return Err(invalid(
                whole,
                "shard_key is required unless broadcast = true; name the column whose value picks the shard",
            ))
        }
        Some("") => return Err(invalid(field("shard_key"), "must not be empty; name a column")),
        Some(k) => k.to_ascii_lowercase(),
    };
    let Some(algorithm) = t.algorithm else {
        return Err(invalid(
            whole,
            "algorithm is required unless broadcast = true; use \"hash\", \"mod\" or \"range\"",
        ));
    };
    let name = match algorithm {
        Algorithm::Hash => "hash",
        Algorithm::Mod => "mod",
        Algorithm::Range => "range",
    };
    if algorithm != Algorithm::Hash && t.key_type != KeyType::Int {
        return Err(invalid(
            field("key_type"),
            format!("algorithm = \"{name}\" needs key_type = \"int\"; use algorithm = \"hash\" for string keys"),
        ));
    }
    if algorithm == Algorithm::Range {
        check_boundaries(&field("boundaries"), &t.boundaries, shard_count)?;
    } else if !t.boundaries.is_empty() {
        return Err(invalid(
            field("boundaries"),
            format!("only algorithm = \"range\" uses boundaries; remove them for algorithm = \"{name}\""),
        ));
    }
    let collation = match (&t.collation, t.key_type) {
        (None, _) => DEFAULT_COLLATION.to_string(),
        (Some(_), KeyType::Int) => {
            return Err(invalid(
                field("collation"),
                "only key_type = \"string\" uses a collation; remove it, or set key_type = \"string\"",
            ))
        }
        (Some(c), KeyType::String) => check_collation(&field("collation"), c)?,
    };
    Ok(TableRule::Sharded(ShardedTable {
        name: t.name.clone(),
        shard_key,
        algorithm,
        boundaries: t.boundaries.clone(),
        key_type: t.key_type,
        collation,
    }))
}

fn check_boundaries(key: &str, boundaries: &[i64], shard_count: usize) -> Result<(), ConfigError> {
    let want = shard_count - 1;
    if boundaries.len() != want {
        return Err(invalid(
            key,
            format!(
                "algorithm = \"range\" over {shard_count} shard(s) needs exactly {want} \
                 {} (one fewer than shards), got {}; shard i holds keys in \
                 [boundaries[i-1], boundaries[i])",
                if want == 1 { "boundary" } else { "boundaries" },
                boundaries.len()
            ),
        ));
    }
    if let Some(w) = boundaries.windows(2).position(|w| w[0] >= w[1]) {
        return Err(invalid(
            key,
            format!(
                "must be strictly ascending, but boundaries[{}] = {} is not above boundaries[{w}] = {}",
                w + 1,
                boundaries[w + 1],
                boundaries[w]
            ),
        ));
    }
    Ok(())
}

/// A collation name (lower-cased): `binary`, or ending in `_ci` or `_bin`.
fn check_collation(key: &str, collation: &str) -> Result<String, ConfigError> {
    let c = collation.to_ascii_lowercase();
    let well_formed = !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if well_formed && (c == "binary" || c.ends_with("_ci") || c.ends_with("_bin")) {
        return Ok(c);
    }
    let hint = if c.ends_with("_cs") {
        "; for a case-sensitive (_cs) column give the matching _ci collation: \
         it sends values equal under _cs to the same shard too"
    } else {
        ""
    };
    Err(invalid(
        key,
        format!(
            "{collation:?} is not a supported collation: it must end in _ci or _bin, or be binary \
             (the default is {DEFAULT_COLLATION}); give the key column's collation{hint}"
        ),
    ))
}

/// Longest table or column name MySQL accepts (and `shardgate_sequences.name` holds).
const MAX_NAME: usize = 64;

/// The `sequence` columns of `entries` (already resolved into `tables`):
/// lower-cased table name → column name as written.
pub(super) fn sequences(
    entries: &[TableEntry],
    tables: &HashMap<String, TableRule>,
) -> Result<HashMap<String, String>, ConfigError> {
    let mut out = HashMap::new();
    for (i, t) in entries.iter().enumerate() {
        let Some(column) = &t.sequence else { continue };
        let key = format!("tables[{i}].sequence ({})", t.name);
        if column.is_empty() {
            return Err(invalid(key, "must not be empty; name the column whose values shardgate generates"));
        }
        if column.chars().count() > MAX_NAME || column.contains(['`', '\0']) || column.trim() != column {
            return Err(invalid(
                key,
                format!("{column:?} is not a usable column name (at most {MAX_NAME} characters, no backquote, no leading or trailing space)"),
            ));
        }
        if t.name.chars().count() > MAX_NAME {
            return Err(invalid(key, format!("the table name is longer than {MAX_NAME} characters")));
        }
        let lower = t.name.to_ascii_lowercase();
        if let Some(TableRule::Sharded(s)) = tables.get(&lower) {
            if s.shard_key.eq_ignore_ascii_case(column) && s.key_type != KeyType::Int {
                return Err(invalid(
                    key,
                    format!(
                        "{column:?} is also the shard key, which has key_type = \"string\"; \
                         generated ids are integers: use key_type = \"int\" or another column"
                    ),
                ));
            }
        }
        out.insert(lower, column.clone());
    }
    Ok(out)
}
