//! SELECT routing: keys, roles, IN splitting, scatter and its refusals,
//! broadcast / unlisted / schema-qualified tables, joins and subqueries.

use super::*;
use crate::router::plan::{Merge, Role, StmtKind, Targets};

#[test]
fn point_select_goes_to_one_shard_replica() {
    for (sql, shard) in [
        ("SELECT * FROM users WHERE user_id = 2", 1),
        ("select name from users where 7 = user_id", 0),
        ("SELECT * FROM users u WHERE u.user_id = 2 AND u.name <> 'x'", 1),
        ("SELECT * FROM app.users WHERE app.users.user_id = 2", 1),
        ("SELECT * FROM users WHERE (status = 1 AND (user_id = -1))", 1),
        ("SELECT * FROM users WHERE user_id = '2'", 1),
        ("SELECT * FROM `users` WHERE `user_id` = 7", 0),
        ("SELECT * FROM USERS WHERE USER_ID = 2", 1),
        ("SELECT * FROM users WHERE user_id = 2 OR user_id = 5", 1),
    ] {
        let p = plan(sql);
        assert_eq!(
            (p.kind, p.targets, p.role, p.merge, p.split.is_none()),
            (StmtKind::Read, Targets::Shard(shard), Role::Replica, Merge::Relay, true),
            "{sql}"
        );
    }
    let p = plan("SELECT * FROM users WHERE user_id = 2");
    assert_eq!(&*p.reason, "users.user_id = 2 → s1 (hash); read outside a transaction → replica");
}

#[test]
fn roles_follow_the_session() {
    let sql = "SELECT * FROM users WHERE user_id = 2";
    assert_eq!(plan_in(sql, &IN_TX).role, Role::Primary);
    let no_autocommit = SessionView { autocommit: false, ..AUTO };
    assert_eq!(plan_in(sql, &no_autocommit).role, Role::Primary);
    let pinned = SessionView { pinned: true, ..AUTO };
    assert_eq!(plan_in(sql, &pinned).role, Role::Primary);
    assert!(plan_in(sql, &IN_TX).reason.ends_with("in a transaction → primary"));
}

#[test]
fn locking_reads_go_to_the_primary() {
    for sql in [
        "SELECT * FROM users WHERE user_id = 2 FOR UPDATE",
        "SELECT * FROM users WHERE user_id = 2 FOR SHARE",
        "SELECT * FROM users WHERE user_id = 2 LOCK IN SHARE MODE",
        "SELECT * FROM users WHERE user_id = 2 FOR UPDATE SKIP LOCKED",
    ] {
        let p = plan(sql);
        assert_eq!((p.kind, p.targets, p.role), (StmtKind::Write, Targets::Shard(1), Role::Primary), "{sql}");
    }
}

#[test]
fn in_list_on_one_shard() {
    let p = plan("SELECT * FROM users WHERE user_id IN (2, 4, 5)");
    assert_eq!((p.targets, p.split, p.merge), (Targets::Shard(1), None, Merge::Relay));
}

#[test]
fn in_list_spanning_shards_is_split() {
    let sql = "SELECT id, 'a,b' FROM users WHERE user_id IN (1,  2, -1 ,3) AND note = 'x'";
    let p = plan(sql);
    assert_eq!((p.targets.clone(), p.merge), (Targets::Shards(vec![0, 1]), Merge::Concat));
    assert_eq!(
        p.split.unwrap(),
        vec![
            (0, "SELECT id, 'a,b' FROM users WHERE user_id IN (1, 3) AND note = 'x'".to_owned()),
            (1, "SELECT id, 'a,b' FROM users WHERE user_id IN (2, -1) AND note = 'x'".to_owned()),
        ]
    );
    assert!(p.reason.contains("IN (1, 2, -1, 3) → s0, s1"), "{}", p.reason);
}

#[test]
fn string_keys_split_byte_identically() {
    // 'Bob' and 'bob ' are equal under utf8mb4_general_ci and go to the same shard.
    let p = plan("SELECT * FROM names WHERE name = 'Bob'");
    assert_eq!(p.targets, Targets::Shard(0));
    assert_eq!(plan("SELECT * FROM names WHERE name = 'bob '").targets, Targets::Shard(0));
    let sql = "SELECT * FROM names WHERE name IN ('O''Brien', 'Bob', \"alice\", 'x') /* ünïcödé */";
    let p = plan(sql);
    assert_eq!(
        p.split.unwrap(),
        vec![
            (0, "SELECT * FROM names WHERE name IN ('Bob', 'x') /* ünïcödé */".to_owned()),
            (1, "SELECT * FROM names WHERE name IN ('O''Brien', \"alice\") /* ünïcödé */".to_owned()),
        ]
    );
    // Multibyte text before the list keeps offsets exact.
    let sql = "SELECT 'Zoë — ☃', n FROM names WHERE name IN ('alice', 'Bob')";
    let split = plan(sql).split.unwrap();
    assert_eq!(split[0].1, "SELECT 'Zoë — ☃', n FROM names WHERE name IN ('Bob')");
    assert_eq!(split[1].1, "SELECT 'Zoë — ☃', n FROM names WHERE name IN ('alice')");
    // A number compared with a string key matches numerically: no key.
    assert_eq!(plan("SELECT * FROM names WHERE name = 5").targets, Targets::All);
}

#[test]
fn scatter_select() {
    for sql in [
        "SELECT * FROM users",
        "SELECT * FROM users WHERE user_id > 5",
        "SELECT * FROM users WHERE user_id = NULL",
        "SELECT * FROM users WHERE user_id = abs(-2)",
        "SELECT * FROM users WHERE user_id = 2 OR name = 'x'",
        "SELECT * FROM users WHERE user_id IN (SELECT user_id FROM countries)",
        "SELECT * FROM users WHERE user_id NOT IN (1, 2)",
        "SELECT * FROM users WHERE user_id = 'abc'",
        "SELECT * FROM users WHERE user_id = 2.5",
    ] {
        let p = plan(sql);
        assert_eq!((p.targets, p.merge, p.role), (Targets::All, Merge::Concat, Role::Replica), "{sql}");
    }
    assert!(plan("SELECT * FROM users").reason.starts_with("no shard key for users: scatter to all shards"));
}

#[test]
fn cross_shard_constructs_that_cannot_be_merged_are_refused() {
    for (sql, construct) in [
        ("SELECT COUNT(DISTINCT name) FROM users", "COUNT(DISTINCT ...)"),
        ("SELECT MAX(user_id) + 1 FROM users", "an expression over an aggregate (MAX(user_id) + 1)"),
        ("SELECT COALESCE(SUM(x), 0) FROM users WHERE user_id IN (1, 2)", "an expression over an aggregate"),
        ("SELECT GROUP_CONCAT(name) FROM users", "GROUP_CONCAT()"),
        ("SELECT STDDEV(x) FROM users", "STDDEV()"),
        ("SELECT ROW_NUMBER() OVER (ORDER BY name) FROM users", "window function ROW_NUMBER()"),
        ("(SELECT * FROM users) LIMIT 1", "a parenthesised query"),
        ("SELECT status FROM users GROUP BY status WITH ROLLUP", "WITH ROLLUP"),
        ("SELECT * FROM users LIMIT ?", "LIMIT with a parameter"),
        ("SELECT SQL_CALC_FOUND_ROWS * FROM users LIMIT 5", "SQL_CALC_FOUND_ROWS"),
        ("SELECT DISTINCT * FROM users", "SELECT DISTINCT *"),
        ("SELECT DISTINCT name FROM users ORDER BY status", "does not select"),
        ("SELECT status, COUNT(*) FROM users GROUP BY status HAVING MAX(name) LIKE 'a%'", "HAVING with MAX(name) LIKE"),
    ] {
        let e = err(sql);
        assert_eq!(e.code, 1235, "{sql}");
        assert!(
            e.message.contains(construct) && e.message.contains("across shards (table users)"),
            "{sql}: {}",
            e.message
        );
    }
    assert!(err("SELECT * FROM users WHERE user_id = 1 UNION SELECT * FROM users WHERE user_id = 2")
        .message
        .contains("UNION across shards"));
    assert!(err("SELECT * FROM users UNION ALL SELECT * FROM orders").message.contains("UNION"));
}

#[test]
fn the_same_constructs_on_one_shard_are_fine() {
    for sql in [
        "SELECT COUNT(*) FROM users WHERE user_id = 2",
        "SELECT * FROM users WHERE user_id = 2 ORDER BY name LIMIT 10",
        "SELECT status, COUNT(*) FROM users WHERE user_id IN (2, 4) GROUP BY status HAVING COUNT(*) > 1",
        "SELECT DISTINCT status FROM users WHERE user_id = 5",
        "SELECT * FROM users WHERE user_id = 1 UNION SELECT * FROM users WHERE user_id = 3",
        "SELECT COUNT(*) FROM countries",
        "SELECT COUNT(*) FROM t1 ORDER BY 1 LIMIT 3",
        // Aggregates inside a subquery on a broadcast table are fine in a scatter.
        "SELECT * FROM users WHERE country IN (SELECT code FROM countries GROUP BY code)",
    ] {
        assert!(matches!(r(sql), Action::Query(_)), "{sql}: {:?}", r(sql));
    }
}

#[test]
fn broadcast_unlisted_and_no_table() {
    let p = plan("SELECT * FROM countries WHERE code = 'FR'");
    assert_eq!((p.targets, p.role), (Targets::AnyShard, Role::Replica));
    for sql in
        ["SELECT 1", "SELECT @@version_comment", "SELECT NOW() FROM DUAL", "SHOW VARIABLES LIKE 'x'", "SHOW TABLES"]
    {
        let p = plan(sql);
        assert_eq!((p.targets, p.kind), (Targets::Shard(0), StmtKind::Read), "{sql}");
    }
    let p = plan("SELECT * FROM t1 JOIN countries c ON c.code = t1.code");
    assert_eq!(p.targets, Targets::Shard(0));
    assert!(p.reason.starts_with("unlisted table t1 → default shard s0"), "{}", p.reason);
}

#[test]
fn schema_qualified_and_session_database() {
    // Another schema's `users` is not the sharded table.
    assert_eq!(plan("SELECT COUNT(*) FROM other.users").targets, Targets::Shard(0));
    assert_eq!(plan("SELECT * FROM information_schema.tables").targets, Targets::Shard(0));
    let elsewhere = SessionView { database: Some("other"), ..AUTO };
    assert_eq!(plan_in("SELECT COUNT(*) FROM users", &elsewhere).targets, Targets::Shard(0));
    assert_eq!(plan_in("SELECT * FROM app.users WHERE user_id = 2", &elsewhere).targets, Targets::Shard(1));
    let here = SessionView { database: Some("APP"), ..AUTO };
    assert_eq!(plan_in("SELECT * FROM users WHERE user_id = 2", &here).targets, Targets::Shard(1));
}

#[test]
fn joins() {
    for (sql, shard) in [
        ("SELECT * FROM users u JOIN orders o ON o.user_id = u.user_id WHERE u.user_id = 2", 1),
        ("SELECT * FROM users u, orders o WHERE u.user_id = 7 AND o.user_id = 7", 0),
        ("SELECT * FROM users u JOIN orders o USING (user_id) WHERE user_id = 2", 1),
        ("SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.user_id WHERE u.user_id = 2", 1),
        ("SELECT * FROM users a JOIN users b ON a.user_id = b.user_id WHERE b.user_id = 7", 0),
        ("SELECT * FROM users u JOIN countries c ON c.code = u.country WHERE u.user_id = 2", 1),
        ("SELECT * FROM users u JOIN t1 ON t1.id = u.x WHERE u.user_id = 7", 0),
        ("SELECT * FROM users WHERE user_id = 2 AND id IN (SELECT user_id FROM orders WHERE user_id = 2)", 1),
        ("SELECT * FROM (SELECT * FROM users WHERE user_id = 2) t", 1),
        // A correlated subquery only needs the outer row's shard.
        (
            "SELECT * FROM users u WHERE u.user_id = 2 AND EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.user_id)",
            1,
        ),
        ("SELECT u.*, (SELECT COUNT(*) FROM orders o WHERE o.user_id = u.user_id) FROM users u WHERE u.user_id = 7", 0),
    ] {
        assert_eq!(plan(sql).targets, Targets::Shard(shard), "{sql}");
    }
    // A CTE named like a table hides it only inside its own query.
    let sql = "SELECT * FROM (WITH users AS (SELECT 1 a) SELECT a FROM users) t JOIN users u ON u.x = t.a";
    assert_eq!(plan(sql).targets, Targets::All);
    assert_eq!(plan("WITH users AS (SELECT 1 a) SELECT COUNT(*) FROM users").targets, Targets::Shard(0));
    // Sharded + broadcast without a key: scatter by the sharded table.
    assert_eq!(plan("SELECT * FROM users u JOIN countries c ON c.code = u.country").targets, Targets::All);
    for (sql, needle) in [
        ("SELECT * FROM users u JOIN orders o ON o.user_id = u.user_id", "cross-shard JOIN of users and orders"),
        ("SELECT * FROM users u JOIN orders o ON o.user_id = u.user_id WHERE u.user_id IN (1, 2)", "cross-shard JOIN"),
        ("SELECT * FROM users u, orders o WHERE u.user_id = 1 AND o.user_id = 2", "cross-shard JOIN"),
        (
            "SELECT * FROM users u JOIN items i ON i.item_id = u.fav WHERE u.user_id = 2",
            "cross-shard JOIN of users and items",
        ),
        // The LEFT JOIN's ON does not restrict the preserved side.
        ("SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.user_id AND o.user_id = 2", "cross-shard JOIN"),
        ("SELECT * FROM users a JOIN users b ON a.x = b.x WHERE a.user_id = 2", "self-JOIN of users"),
        ("SELECT * FROM users u JOIN t1 ON t1.id = u.x WHERE u.user_id = 2", "only the default shard s0 has"),
        ("SELECT * FROM users u JOIN t1 ON t1.id = u.x", "only the default shard s0 has"),
        ("SELECT * FROM countries WHERE code IN (SELECT country FROM users)", "subquery on sharded table users"),
        ("SELECT * FROM (SELECT * FROM users) t", "subquery on sharded table users"),
        ("SELECT * FROM users WHERE x IN (SELECT user_id FROM orders)", "subquery on sharded table orders"),
        ("WITH x AS (SELECT * FROM users) SELECT * FROM x", "subquery on sharded table users"),
        // NOT EXISTS does not restrict the outer rows.
        (
            "SELECT * FROM users u WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.user_id AND o.user_id = 2)",
            "subquery on sharded table orders",
        ),
        (
            "SELECT * FROM users u WHERE u.user_id = 2 AND EXISTS (SELECT 1 FROM orders o WHERE o.user_id = 7)",
            "subquery on sharded table orders",
        ),
    ] {
        let e = err(sql);
        assert!(e.message.contains(needle), "{sql}: {}", e.message);
    }
}

#[test]
fn range_and_mod_tables() {
    for (sql, t) in [
        ("SELECT * FROM events WHERE id = 999", Targets::Shard(0)),
        ("SELECT * FROM events WHERE id = 1000", Targets::Shard(1)),
        ("SELECT * FROM events WHERE id IN (-5, 5000)", Targets::Shards(vec![0, 1])),
        ("SELECT * FROM items WHERE item_id = 4", Targets::Shard(0)),
        ("SELECT * FROM items WHERE item_id = 5", Targets::Shard(1)),
        ("SELECT * FROM items WHERE item_id = -1", Targets::Shard(1)),
        // Range tables are pruned by bounds.
        ("SELECT * FROM events WHERE id BETWEEN 1 AND 5", Targets::Shard(0)),
        ("SELECT * FROM events WHERE id >= 1000 AND x = 1", Targets::Shard(1)),
        ("SELECT * FROM events WHERE id < 1000", Targets::Shard(0)),
        ("SELECT * FROM events WHERE 1000 <= id", Targets::Shard(1)),
        ("SELECT * FROM events WHERE id > 999", Targets::Shard(1)),
        ("SELECT * FROM events WHERE id > 5 AND id < 900", Targets::Shard(0)),
        ("SELECT * FROM events WHERE id BETWEEN 5 AND 5000", Targets::All),
        ("SELECT * FROM events WHERE id > 5 OR id < 2", Targets::All),
        ("SELECT * FROM events WHERE id NOT BETWEEN 1 AND 5", Targets::All),
        ("SELECT * FROM users WHERE user_id BETWEEN 1 AND 2", Targets::All),
    ] {
        assert_eq!(plan(sql).targets, t, "{sql}");
    }
    assert!(plan("SELECT * FROM items WHERE item_id = 5").reason.contains("(mod)"));
    assert!(plan("SELECT * FROM events WHERE id = 1").reason.contains("(range)"));
    assert!(plan("SELECT * FROM events WHERE id BETWEEN 1 AND 5")
        .reason
        .starts_with("events.id in [1, 5] → s0 (range)"));
    assert_eq!(plan("SELECT COUNT(*) FROM events WHERE id < 10").targets, Targets::Shard(0));
}

#[test]
fn explain_and_describe() {
    let p = plan("EXPLAIN SELECT * FROM users WHERE user_id = 2");
    assert_eq!((p.kind, p.targets, p.role), (StmtKind::Read, Targets::Shard(1), Role::Replica));
    let p = plan("EXPLAIN SELECT * FROM users WHERE user_id IN (1, 2)");
    assert_eq!(p.split.unwrap()[0].1, "EXPLAIN SELECT * FROM users WHERE user_id IN (1)");
    assert_eq!(plan("DESCRIBE users").targets, Targets::AnyShard);
    assert_eq!(plan("DESC t1").targets, Targets::Shard(0));
    assert_eq!(plan("SHOW CREATE TABLE users").targets, Targets::Shard(0));
}
