//! Cross-shard merges: the results of several shards become the one result
//! a single MySQL server would have returned.
//!
//! Pure: the router describes the merge ([`MergeSpec`], built in
//! `router::merge_plan` together with the SQL each shard runs), the frontend
//! reads the shards' rows and feeds a [`Pipeline`], which does the rest:
//! k-way ordering by typed, collation-aware comparison ([`value`]), folding
//! of partial aggregates per group, HAVING ([`having`]), a bounded final
//! sort, OFFSET/LIMIT, and the removal of the proxy's hidden columns.

pub mod binary;
pub mod decimal;
pub mod having;
pub mod pipeline;
pub mod row;
pub mod spec;
pub mod value;

#[cfg(test)]
mod tests;

pub use pipeline::{Pipeline, Schema};
pub use row::Row;
pub use spec::{Agg, AggCol, Col, MergeSpec, SortKey};

/// A merge that cannot continue: becomes the client's ERR packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({sqlstate}): {message}")]
pub struct MergeError {
    pub code: u16,
    pub sqlstate: &'static str,
    pub message: String,
}

impl MergeError {
    pub fn new(code: u16, sqlstate: &'static str, message: impl Into<String>) -> Self {
        MergeError { code, sqlstate, message: message.into() }
    }

    /// ER_NOT_SUPPORTED_YET.
    pub fn unsupported(what: impl Into<String>) -> Self {
        MergeError::new(1235, "42000", format!("This version of shardgate doesn't yet support {}", what.into()))
    }
}
