//! Server-side prepared statements on one backend connection, keyed by SQL
//! text, bounded so a backend never runs into `max_prepared_stmt_count`.
//!
//! The bound is per connection but chosen per pool: all of shardgate's
//! connections to one server together keep at most [`PER_SERVER_BUDGET`]
//! statements, half of MariaDB's and MySQL's default `max_prepared_stmt_count`
//! (16382), so clients that connect to the server directly keep their share.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::sync::Arc;

/// Most statements kept prepared on one backend connection.
pub const STMT_CACHE_CAP: usize = 256;

/// Statements all of shardgate's connections to one server may keep together.
pub const PER_SERVER_BUDGET: usize = 8192;

/// The per-connection cap for a pool of `pool_size` connections.
pub fn cap_for_pool(pool_size: usize) -> usize {
    (PER_SERVER_BUDGET / pool_size.max(1)).clamp(16, STMT_CACHE_CAP)
}

#[derive(Debug)]
pub struct StmtCache {
    /// Looked up by SQL text on every execution: foldhash, not SipHash.
    map: HashMap<Arc<str>, (u32, u64), RandomState>,
    tick: u64,
    cap: usize,
}

impl Default for StmtCache {
    fn default() -> Self {
        StmtCache { map: HashMap::default(), tick: 0, cap: STMT_CACHE_CAP }
    }
}

impl StmtCache {
    /// Set the most statements this connection keeps.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
    }

    /// Forget the least recently used half; returns their ids to close on the
    /// server (after it refused a PREPARE for `max_prepared_stmt_count`).
    pub fn evict_half(&mut self) -> Vec<u32> {
        let mut by_age: Vec<(u64, Arc<str>)> = self.map.iter().map(|(k, e)| (e.1, k.clone())).collect();
        by_age.sort();
        let n = by_age.len().div_ceil(2);
        by_age.into_iter().take(n).filter_map(|(_, k)| self.map.remove(&k).map(|e| e.0)).collect()
    }

    /// The backend statement id for `sql`, marking it recently used.
    pub fn get(&mut self, sql: &str) -> Option<u32> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(sql).map(|e| {
            e.1 = tick;
            e.0
        })
    }

    /// Remember a statement; returns the id of a statement the caller must
    /// close on the server: the one evicted to make room, or the one this
    /// replaces (the same SQL prepared again).
    pub fn insert(&mut self, sql: Arc<str>, id: u32) -> Option<u32> {
        self.tick += 1;
        let tick = self.tick;
        if let Some(e) = self.map.get_mut(&sql) {
            let old = e.0;
            *e = (id, tick);
            return (old != id).then_some(old);
        }
        let mut evicted = None;
        if self.map.len() >= self.cap {
            if let Some(oldest) = self.map.iter().min_by_key(|(_, e)| e.1).map(|(k, _)| k.clone()) {
                evicted = self.map.remove(&oldest).map(|e| e.0);
            }
        }
        self.map.insert(sql, (id, tick));
        evicted
    }

    pub fn remove(&mut self, sql: &str) -> Option<u32> {
        self.map.remove(sql).map(|e| e.0)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut c = StmtCache::default();
        for i in 0..STMT_CACHE_CAP as u32 {
            assert_eq!(c.insert(Arc::from(format!("q{i}")), i), None);
        }
        assert_eq!(c.get("q0"), Some(0)); // q0 is now recent; q1 is oldest
        assert_eq!(c.insert(Arc::from("new"), 999), Some(1));
        assert_eq!(c.len(), STMT_CACHE_CAP);
        assert_eq!(c.get("q1"), None);
    }

    #[test]
    fn per_connection_cap_follows_the_pool_size() {
        assert_eq!(cap_for_pool(32), 256);
        assert_eq!(cap_for_pool(128), 64);
        assert_eq!(cap_for_pool(10_000), 16);
        let mut c = StmtCache::default();
        c.set_cap(2);
        c.insert(Arc::from("a"), 1);
        c.insert(Arc::from("b"), 2);
        assert_eq!(c.insert(Arc::from("c"), 3), Some(1));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn preparing_the_same_sql_again_hands_back_the_old_id() {
        let mut c = StmtCache::default();
        assert_eq!(c.insert(Arc::from("q"), 1), None);
        assert_eq!(c.insert(Arc::from("q"), 2), Some(1), "the replaced statement must be closed");
        assert_eq!(c.insert(Arc::from("q"), 2), None);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn evict_half_drops_the_oldest() {
        let mut c = StmtCache::default();
        for i in 0..4u32 {
            c.insert(Arc::from(format!("q{i}")), i);
        }
        let mut gone = c.evict_half();
        gone.sort();
        assert_eq!(gone, vec![0, 1]);
        assert_eq!(c.len(), 2);
    }
}
