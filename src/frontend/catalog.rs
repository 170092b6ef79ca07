//! Keeping the learned table definitions ([`crate::router::catalog::Catalog`]) fresh:
//! loaded from the default shard at startup, after DDL run through this proxy,
//! when an INSERT without a column list names a table not yet known, and
//! periodically by the health loop (DDL may come through another proxy).

use std::sync::Arc;

use super::Shared;
use crate::backend::state::SessionVars;
use crate::backend::BackendError;
use crate::config::TableRule;
use crate::router::catalog::Catalog;

impl Shared {
    /// Reload the column order of every sharded table (and every table with a
    /// sequence) from the default shard.
    pub async fn refresh_catalog(&self) -> Result<(), BackendError> {
        let cfg = self.config.load();
        let names: Vec<String> = cfg
            .tables
            .iter()
            .filter(|(name, rule)| matches!(rule, TableRule::Sharded(_)) || cfg.sequences.contains_key(*name))
            .map(|(name, _)| format!("'{}'", name.replace('\\', "\\\\").replace('\'', "''")))
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT LOWER(TABLE_NAME), LOWER(COLUMN_NAME) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = '{}' AND LOWER(TABLE_NAME) IN ({}) ORDER BY TABLE_NAME, ORDINAL_POSITION",
            cfg.backend.database.replace('\'', "''"),
            names.join(", ")
        );
        let cluster = self.cluster.load_full();
        let nodes = &cluster.shards[cfg.default_shard];
        // The primary first: a table just created there may not have reached the
        // replicas yet, and an INSERT that follows its CREATE must find it.
        let backend = if nodes.primary.is_up() {
            nodes.primary.clone()
        } else {
            nodes.pick_replica().or_else(|| nodes.pick_stale_replica()).unwrap_or(&nodes.primary).clone()
        };
        let mut conn = backend.pool.get(0, &SessionVars::empty()).await?;
        let result = conn.query(&sql).await;
        conn.release();
        let (_, rows) = result?;
        let pairs = rows.into_iter().filter_map(|r| {
            let mut it = r.into_iter();
            let t = it.next().flatten()?;
            let c = it.next().flatten()?;
            Some((String::from_utf8_lossy(&t).into_owned(), String::from_utf8_lossy(&c).into_owned()))
        });
        let catalog = Catalog::from_pairs(pairs);
        if **self.catalog.load() != catalog {
            self.catalog.store(Arc::new(catalog));
        }
        Ok(())
    }
}
