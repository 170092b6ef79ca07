//! The plan cache: statements that differ only in literals share one router
//! analysis. The router stays pure; this is the frontend remembering results.
//!
//! Key: the statement's digest (`sql::digest`) plus the session-view bits
//! routing depends on. Value: the router's analysis of the digest as a
//! prepared statement, resolved per query with `router::route_execute` and
//! the query's literal values.
//!
//! Admission is checked: the first time a digest is seen, the full route of
//! the real text and the cached path's result must agree (same targets, role,
//! split, merge, pinning). If they do not, the digest is remembered as
//! uncacheable and always routed in full. Statements with several key values
//! (IN lists, multi-row INSERTs: the full route splits them per shard,
//! depending on the values) and anything that is not a plain query are never
//! cached. The cache is dropped whole when the config or the learned catalog
//! changes. Reads take no lock (arc-swap); inserts copy the map and stop at
//! `MAX_ENTRIES`, so a flood of distinct statements cannot grow it.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::router::catalog::Catalog;
use crate::router::{self, Action, PreparedRoute, SessionView};
use crate::sql::digest::digest;

/// Most digests remembered.
pub const MAX_ENTRIES: usize = 4096;
/// Longer statements are routed in full (big INSERTs would only churn the cache).
pub const MAX_STATEMENT: usize = 2048;

/// `None`: the digest is known to be uncacheable.
type Entry = Option<PreparedRoute>;

struct State {
    config: Arc<Config>,
    catalog: Arc<Catalog>,
    /// foldhash: several times cheaper than SipHash on a 100-byte key, and
    /// seeded per process, so keys cannot be chosen to collide.
    map: HashMap<String, Arc<Entry>, RandomState>,
}

pub struct PlanCache {
    state: ArcSwap<State>,
}

impl Default for PlanCache {
    fn default() -> Self {
        PlanCache {
            state: ArcSwap::from_pointee(State {
                config: Arc::new(empty_config()),
                catalog: Arc::default(),
                map: HashMap::default(),
            }),
        }
    }
}

fn empty_config() -> Config {
    crate::config::validate::parse(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ndefault_shard = \"s\"\n[[users]]\nname = \"u\"\npassword = \"p\"\n\
         [backend]\nuser = \"u\"\ndatabase = \"d\"\n[[shards]]\nname = \"s\"\nprimary = \"127.0.0.1:1\"\n",
    )
    .expect("built-in placeholder config is valid")
}

/// Do two actions send the same statements to the same places?
fn same_plan(a: &Action, b: &Action) -> bool {
    match (a, b) {
        (Action::Query(x), Action::Query(y)) => {
            x.kind == y.kind
                && x.targets == y.targets
                && x.role == y.role
                && x.split == y.split
                && x.merge == y.merge
                && x.pins_session == y.pins_session
                && x.unparsed == y.unparsed
        }
        _ => false,
    }
}

impl PlanCache {
    /// Route `sql`, through the cache when possible.
    pub fn route(&self, sql: &str, cfg: &Arc<Config>, catalog: &Arc<Catalog>, view: &SessionView<'_>) -> Action {
        if sql.len() > MAX_STATEMENT {
            return router::route(sql, cfg, view);
        }
        let flag = |b: bool| if b { "1" } else { "0" };
        let prefix =
            [flag(view.in_transaction), flag(view.autocommit), flag(view.pinned), view.database.unwrap_or(""), "\0"];
        let Some(d) = digest(sql, &prefix) else {
            return router::route(sql, cfg, view);
        };
        let state = self.state.load();
        let current = Arc::ptr_eq(&state.config, cfg) && Arc::ptr_eq(&state.catalog, catalog);
        if current {
            if let Some(entry) = state.map.get(&d.text) {
                return match &**entry {
                    Some(p) => match router::route_execute(p, &d.values, cfg) {
                        // This query's values span shards and need a merge, whose shard
                        // statement the router writes from the text: route it in full.
                        Action::Query(plan) if matches!(plan.merge, router::Merge::Rows(_)) => {
                            router::route(sql, cfg, view)
                        }
                        other => other,
                    },
                    None => router::route(sql, cfg, view),
                };
            }
        }
        if current && state.map.len() >= MAX_ENTRIES {
            // Full: no admission work for digests that could not be stored anyway.
            return router::route(sql, cfg, view);
        }
        drop(state);
        // First sight of this digest: route in full, and check the cached path agrees.
        let full = router::route(sql, cfg, view);
        let prepared = router::prepare(d.statement(), cfg, view);
        // Several key values (IN lists, multi-row INSERTs) are split per shard
        // by the full route depending on the values: never cached.
        let many_keys = prepared.key_params.as_ref().is_some_and(|k| k.params.len() > 1);
        let entry = if !many_keys && same_plan(&full, &router::route_execute(&prepared, &d.values, cfg)) {
            Some(prepared)
        } else {
            None
        };
        self.insert(d.text, entry, cfg, catalog);
        full
    }

    fn insert(&self, key: String, entry: Entry, cfg: &Arc<Config>, catalog: &Arc<Catalog>) {
        let entry = Arc::new(entry);
        self.state.rcu(|old| {
            let current = Arc::ptr_eq(&old.config, cfg) && Arc::ptr_eq(&old.catalog, catalog);
            let mut map = if current { old.map.clone() } else { HashMap::default() };
            if map.len() < MAX_ENTRIES {
                map.insert(key.clone(), entry.clone());
            }
            State { config: cfg.clone(), catalog: catalog.clone(), map }
        });
    }

    /// Digests remembered (cacheable or not).
    pub fn len(&self) -> usize {
        self.state.load().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Targets;

    const VIEW: SessionView<'static> =
        SessionView { in_transaction: false, autocommit: true, pinned: false, database: None, catalog: None };

    fn cfg() -> Arc<Config> {
        Arc::new(crate::config::validate::parse(include_str!("../../conf/shardgate.toml")).expect("valid"))
    }

    #[test]
    fn cached_routes_equal_full_routes_for_other_literals() {
        let (cfg, cat, cache) = (cfg(), Arc::new(Catalog::default()), PlanCache::default());
        for k in 0..200 {
            for sql in [
                format!("SELECT name FROM users WHERE user_id = {k}"),
                format!("UPDATE users SET name = 'n{k}' WHERE user_id = {k}"),
                format!("SELECT * FROM users WHERE user_id IN ({k}, {})", k + 1),
                format!("SELECT c FROM sbtest1 WHERE id = {k}"),
                format!("DELETE FROM orders WHERE user_id = {k} AND id = 'x{k}'"),
            ] {
                let cached = cache.route(&sql, &cfg, &cat, &VIEW);
                let full = router::route(&sql, &cfg, &VIEW);
                assert!(same_plan(&cached, &full), "{sql}: cached {cached:?} vs full {full:?}");
            }
        }
        assert!(cache.len() <= 6, "one entry per statement shape, got {}", cache.len());
    }

    #[test]
    fn a_cached_one_shard_plan_whose_values_now_scatter_is_merged_in_full() {
        let (cfg, cat, cache) = (cfg(), Arc::new(Catalog::default()), PlanCache::default());
        // First seen with a key (one shard, cacheable), then with a value that
        // places nothing (NULL, a string for an integer key): every shard, merged.
        for sql in [
            "SELECT name FROM users WHERE user_id = 7 ORDER BY name LIMIT 3",
            "SELECT name FROM users WHERE user_id = NULL ORDER BY name LIMIT 3",
            "SELECT name FROM users WHERE user_id = 'x' ORDER BY name LIMIT 3",
        ] {
            let cached = cache.route(sql, &cfg, &cat, &VIEW);
            let full = router::route(sql, &cfg, &VIEW);
            assert_eq!(cached, full, "{sql}");
        }
    }

    #[test]
    fn in_lists_that_span_shards_keep_their_split() {
        let (cfg, cat, cache) = (cfg(), Arc::new(Catalog::default()), PlanCache::default());
        // Whatever the first sighting looked like, every later one must still be right.
        for k in 0..100 {
            let sql = format!("SELECT * FROM users WHERE user_id IN ({k}, {}, {})", k * 7 + 1, k * 13 + 2);
            let full = router::route(&sql, &cfg, &VIEW);
            let cached = cache.route(&sql, &cfg, &cat, &VIEW);
            match (&full, &cached) {
                (Action::Query(f), Action::Query(c)) => {
                    assert_eq!(f.targets, c.targets, "{sql}");
                    assert_eq!(f.split, c.split, "{sql}");
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
    }

    #[test]
    fn several_keys_and_session_statements_are_never_cached() {
        let (cfg, cat, cache) = (cfg(), Arc::new(Catalog::default()), PlanCache::default());
        for k in 0..50 {
            let sql = format!("INSERT INTO users (user_id, name) VALUES ({k}, 'a'), ({}, 'b')", k + 1);
            let cached = cache.route(&sql, &cfg, &cat, &VIEW);
            assert_eq!(cached, router::route(&sql, &cfg, &VIEW), "{sql}");
            let set = format!("SET @x = {k}");
            assert_eq!(cache.route(&set, &cfg, &cat, &VIEW), router::route(&set, &cfg, &VIEW));
        }
        let state = cache.state.load();
        assert!(state.map.values().all(|e| e.is_none()));
    }

    #[test]
    fn a_full_cache_routes_new_statements_in_full() {
        let (cfg, cat, cache) = (cfg(), Arc::new(Catalog::default()), PlanCache::default());
        for i in 0..MAX_ENTRIES + 10 {
            let sql = format!("SELECT c{i} FROM users WHERE user_id = 1");
            assert!(same_plan(&cache.route(&sql, &cfg, &cat, &VIEW), &router::route(&sql, &cfg, &VIEW)));
        }
        assert_eq!(cache.len(), MAX_ENTRIES, "bounded");
    }

    #[test]
    fn session_view_and_config_are_part_of_the_key() {
        let (cfg, cat, cache) = (cfg(), Arc::new(Catalog::default()), PlanCache::default());
        let sql = "SELECT name FROM users WHERE user_id = 7";
        let read = cache.route(sql, &cfg, &cat, &VIEW);
        let in_tx = SessionView { in_transaction: true, ..VIEW };
        let tx = cache.route(sql, &cfg, &cat, &in_tx);
        match (read, tx) {
            (Action::Query(r), Action::Query(t)) => {
                assert_eq!(r.role, router::Role::Replica);
                assert_eq!(t.role, router::Role::Primary, "a transaction's read is not served from the read plan");
                assert!(matches!(r.targets, Targets::Shard(_)));
            }
            other => panic!("{other:?}"),
        }
        let other_cfg = self::cfg();
        cache.route(sql, &other_cfg, &cat, &VIEW);
        assert_eq!(cache.len(), 1, "a new config snapshot starts a new cache");
    }
}
