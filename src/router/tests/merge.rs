//! Cross-shard merges: the spec and the statement each shard runs.

use super::*;
use crate::merge::spec::{Agg, AggCol, Col, Expr, MergeSpec, SortKey};
use crate::router::{Merge, Targets};

/// The merge spec and the per-shard SQL (same on every shard unless an IN list was split).
fn merged(sql: &str) -> (MergeSpec, Vec<(usize, String)>) {
    let p = plan(sql);
    let Merge::Rows(spec) = &p.merge else { panic!("{sql}: expected a merge, got {:?}", p.merge) };
    ((**spec).clone(), p.split.clone().expect("shard statements"))
}

fn shard_sql(sql: &str) -> String {
    let (_, split) = merged(sql);
    assert!(split.windows(2).all(|w| w[0].1 == w[1].1), "{split:?}");
    split[0].1.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn key(col: Col, weight: Option<Col>, desc: bool) -> SortKey {
    SortKey { col, weight, desc }
}

#[test]
fn order_by_streams_with_weights_and_pushes_the_limit_down() {
    let (spec, _) = merged("SELECT user_id, name FROM users ORDER BY name DESC, 1 LIMIT 5, 10");
    // Each weight is followed by the expression's collation.
    assert_eq!(spec.hidden, 4);
    assert_eq!(
        spec.order,
        vec![key(Col::Visible(1), Some(Col::Hidden(0)), true), key(Col::Visible(0), Some(Col::Hidden(2)), false)]
    );
    assert_eq!((spec.offset, spec.limit, spec.limit_pushed, spec.group.is_none()), (5, Some(10), true, true));
    assert_eq!(
        shard_sql("SELECT user_id, name FROM users ORDER BY name DESC, 1 LIMIT 5, 10"),
        "SELECT user_id, name, WEIGHT_STRING(name), COLLATION(name), WEIGHT_STRING(user_id), COLLATION(user_id) \
         FROM users ORDER BY 2 DESC, 1 LIMIT 15"
    );
}

#[test]
fn keys_not_selected_become_hidden_columns() {
    assert_eq!(
        shard_sql("SELECT name FROM users WHERE status = 'x' ORDER BY created_at LIMIT 3 OFFSET 2 FOR UPDATE"),
        "SELECT name, WEIGHT_STRING(created_at), COLLATION(created_at), created_at FROM users WHERE status = 'x' \
         ORDER BY created_at LIMIT 5 FOR UPDATE"
    );
    // An alias, and an expression equal to a select item.
    let (spec, _) = merged("SELECT user_id AS u, price * qty FROM users ORDER BY u, price * qty DESC");
    assert_eq!(spec.order[0].col, Col::Visible(0));
    assert_eq!(spec.order[1].col, Col::Visible(1));
    // After `*`, positions are unknown: hidden columns carry the keys.
    let (spec, _) = merged("SELECT *, name AS n FROM users ORDER BY n");
    assert_eq!(spec.order[0].col, Col::Hidden(2));
    assert_eq!(shard_sql("SELECT * FROM users LIMIT 4"), "SELECT * FROM users LIMIT 4");
}

#[test]
fn aggregates_without_group_by_fold_into_one_row() {
    let sql = "SELECT COUNT(*), SUM(price), MIN(name), MAX(created_at), AVG(price) FROM users LIMIT 1";
    let (spec, _) = merged(sql);
    assert_eq!(spec.group, Some(vec![]));
    assert!(spec.order.is_empty() && !spec.limit_pushed);
    assert_eq!(
        spec.aggs,
        vec![
            AggCol { col: Col::Visible(0), agg: Agg::Count },
            AggCol { col: Col::Visible(1), agg: Agg::Sum },
            AggCol { col: Col::Visible(2), agg: Agg::Min { weight: Some(Col::Hidden(0)) } },
            AggCol { col: Col::Visible(3), agg: Agg::Max { weight: Some(Col::Hidden(2)) } },
            AggCol { col: Col::Hidden(4), agg: Agg::Sum },
            AggCol { col: Col::Hidden(5), agg: Agg::Count },
            AggCol { col: Col::Visible(4), agg: Agg::Avg { sum: Col::Hidden(4), count: Col::Hidden(5) } },
        ]
    );
    assert_eq!(
        shard_sql(sql),
        "SELECT COUNT(*), SUM(price), MIN(name), MAX(created_at), AVG(price), WEIGHT_STRING(MIN(name)), \
         COLLATION(MIN(name)), WEIGHT_STRING(MAX(created_at)), COLLATION(MAX(created_at)), SUM(price), COUNT(price) \
         FROM users"
    );
}

#[test]
fn group_by_merges_in_key_order_and_sorts_by_aggregates_in_the_proxy() {
    let sql = "SELECT status, COUNT(*) AS n FROM users GROUP BY status HAVING n > 1 ORDER BY n DESC LIMIT 3";
    let (spec, _) = merged(sql);
    let g = key(Col::Visible(0), Some(Col::Hidden(0)), false);
    assert_eq!(spec.group, Some(vec![g]));
    assert_eq!(spec.order, vec![g]);
    assert_eq!(spec.final_order, vec![key(Col::Visible(1), None, true)]);
    assert!(matches!(spec.having, Some(Expr::Cmp(..))));
    assert!(!spec.limit_pushed);
    assert_eq!(
        shard_sql(sql),
        "SELECT status, COUNT(*) AS n, WEIGHT_STRING(status), COLLATION(status) FROM users GROUP BY status ORDER BY 1"
    );
    // Ordered by the group keys: no final sort, and the LIMIT goes down.
    let sql = "SELECT status, COUNT(*) FROM users GROUP BY status ORDER BY status DESC LIMIT 3";
    let (spec, _) = merged(sql);
    assert!(spec.final_order.is_empty() && spec.limit_pushed);
    assert_eq!(spec.order, vec![key(Col::Visible(0), Some(Col::Hidden(0)), true)]);
    // HAVING on group keys only stays on the shards.
    let sql = "SELECT status, COUNT(*) FROM users GROUP BY status HAVING status <> 'x'";
    assert!(merged(sql).0.having.is_none());
    assert!(shard_sql(sql).contains("HAVING status <> 'x'"));
}

#[test]
fn distinct_groups_on_every_column() {
    let (spec, _) = merged("SELECT DISTINCT status, name FROM users ORDER BY name");
    let keys = spec.group.clone().unwrap();
    assert_eq!(keys.iter().map(|k| k.col).collect::<Vec<_>>(), [Col::Visible(0), Col::Visible(1)]);
    assert_eq!(spec.order.iter().map(|k| k.col).collect::<Vec<_>>(), [Col::Visible(1), Col::Visible(0)]);
    assert!(spec.aggs.is_empty() && spec.final_order.is_empty());
}

#[test]
fn in_lists_are_split_and_merged() {
    const W: &str = "WEIGHT_STRING(user_id), COLLATION(user_id)";
    let (spec, split) = merged("SELECT user_id FROM users WHERE user_id IN (1, 2, 3, 4) ORDER BY user_id LIMIT 2");
    assert!(spec.limit_pushed);
    let t = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        split.iter().map(|(s, q)| (*s, t(q))).collect::<Vec<_>>(),
        vec![
            (0, format!("SELECT user_id, {W} FROM users WHERE user_id IN (1, 3) ORDER BY 1 LIMIT 2")),
            (1, format!("SELECT user_id, {W} FROM users WHERE user_id IN (2, 4) ORDER BY 1 LIMIT 2")),
        ]
    );
    // One shard: the original text, relayed.
    let p = plan("SELECT user_id FROM users WHERE user_id IN (1, 3) ORDER BY user_id LIMIT 2");
    assert_eq!((p.targets, p.merge, p.split), (Targets::Shard(0), Merge::Relay, None));
}

#[test]
fn comments_and_hints_survive_the_rewrite() {
    let sql = "/* app:report */ SELECT name FROM users ORDER BY name -- tail";
    let (_, split) = merged(sql);
    assert!(split[0].1.starts_with("/* app:report */ SELECT name, WEIGHT_STRING(name), COLLATION(name) FROM users"));
}
