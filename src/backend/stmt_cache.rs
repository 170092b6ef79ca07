//! Server-side prepared statements on one backend connection, keyed by SQL
//! text, bounded so a backend never runs into `max_prepared_stmt_count`.

use std::collections::HashMap;
use std::sync::Arc;

/// Most statements kept prepared on one backend connection.
pub const STMT_CACHE_CAP: usize = 256;

#[derive(Debug, Default)]
pub struct StmtCache {
    map: HashMap<Arc<str>, (u32, u64)>,
    tick: u64,
}

impl StmtCache {
    /// The backend statement id for `sql`, marking it recently used.
    pub fn get(&mut self, sql: &str) -> Option<u32> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(sql).map(|e| {
            e.1 = tick;
            e.0
        })
    }

    /// Remember a statement; returns the id of a statement evicted to make
    /// room (the caller closes it on the backend).
    pub fn insert(&mut self, sql: Arc<str>, id: u32) -> Option<u32> {
        self.tick += 1;
        let mut evicted = None;
        if self.map.len() >= STMT_CACHE_CAP && !self.map.contains_key(&sql) {
            if let Some(oldest) = self.map.iter().min_by_key(|(_, e)| e.1).map(|(k, _)| k.clone()) {
                evicted = self.map.remove(&oldest).map(|e| e.0);
            }
        }
        self.map.insert(sql, (id, self.tick));
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
}
