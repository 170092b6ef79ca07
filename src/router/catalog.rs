//! Facts about table definitions learned from the backends, not from the
//! config: today the column order of sharded tables, so that an INSERT
//! without a column list can still find its shard key. The router only reads
//! a snapshot of it; the frontend keeps it fresh.

use std::collections::HashMap;

/// Column order of sharded tables (lower-cased names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    columns: HashMap<String, Vec<String>>,
}

impl Catalog {
    /// Build from (table, column) pairs in ordinal order.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Catalog {
        let mut columns: HashMap<String, Vec<String>> = HashMap::new();
        for (t, c) in pairs {
            columns.entry(t.to_lowercase()).or_default().push(c.to_lowercase());
        }
        Catalog { columns }
    }

    /// The columns of `table` in order, if known.
    pub fn columns(&self, table: &str) -> Option<&[String]> {
        self.columns.get(&table.to_lowercase()).map(Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}
