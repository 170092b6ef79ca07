//! INSERT / REPLACE / UPDATE / DELETE, DDL and session pinning.

use super::*;
use crate::router::plan::{Merge, Role, StmtKind, Targets};

#[test]
fn single_row_inserts() {
    for (sql, shard) in [
        ("INSERT INTO users (user_id, name) VALUES (2, 'a')", 1),
        ("insert into users (name, USER_ID) values ('a', 7)", 0),
        ("REPLACE INTO users (user_id) VALUES (-1)", 1),
        ("INSERT IGNORE INTO app.users (user_id) VALUES ('2')", 1),
        ("INSERT INTO users SET user_id = 2, name = 'x'", 1),
        ("INSERT INTO users (user_id) VALUES (2), (4) ON DUPLICATE KEY UPDATE n = n + 1", 1),
        ("INSERT INTO users (user_id) VALUES (2) ON DUPLICATE KEY UPDATE user_id = VALUES(user_id)", 1),
        ("INSERT INTO names (name) VALUES ('bob ')", 0),
        ("INSERT INTO events (id) VALUES (1000)", 1),
        ("INSERT INTO users (user_id) VALUES ROW(2), ROW(4)", 1),
    ] {
        let p = plan(sql);
        assert_eq!(
            (p.kind, p.targets, p.role, p.split.is_none()),
            (StmtKind::Write, Targets::Shard(shard), Role::Primary, true),
            "{sql}"
        );
    }
    assert_eq!(
        &*plan("INSERT INTO users (user_id, name) VALUES (2, 'a')").reason,
        "users.user_id = 2 → s1 (hash); write → primary"
    );
}

#[test]
fn multi_row_insert_is_split_per_shard() {
    let sql = "INSERT INTO users (user_id, name) VALUES (1, 'a,(b)'),(2, 'Zoë'), (3, CONCAT('x', 'y')) ,  (4, \"q\") \
               ON DUPLICATE KEY UPDATE name = VALUES(name)";
    let p = plan(sql);
    assert_eq!((p.targets.clone(), p.merge), (Targets::Shards(vec![0, 1]), Merge::Concat));
    assert_eq!(
        p.split.unwrap(),
        vec![
            (
                0,
                "INSERT INTO users (user_id, name) VALUES (1, 'a,(b)'), (3, CONCAT('x', 'y')) \
                 ON DUPLICATE KEY UPDATE name = VALUES(name)"
                    .to_owned()
            ),
            (
                1,
                "INSERT INTO users (user_id, name) VALUES (2, 'Zoë'), (4, \"q\") ON DUPLICATE KEY UPDATE name = VALUES(name)"
                    .to_owned()
            ),
        ]
    );
    let p =
        plan("INSERT INTO users (user_id) VALUES ROW(1), ROW(2) AS new ON DUPLICATE KEY UPDATE user_id = new.user_id");
    assert_eq!(
        p.split.unwrap(),
        vec![
            (
                0,
                "INSERT INTO users (user_id) VALUES ROW(1) AS new ON DUPLICATE KEY UPDATE user_id = new.user_id"
                    .to_owned()
            ),
            (
                1,
                "INSERT INTO users (user_id) VALUES ROW(2) AS new ON DUPLICATE KEY UPDATE user_id = new.user_id"
                    .to_owned()
            ),
        ]
    );
    let p = plan("INSERT INTO names (name, n) VALUES ('O''Brien', 1), ('Bob', 2)");
    assert_eq!(p.split.unwrap()[1].1, "INSERT INTO names (name, n) VALUES ('O''Brien', 1)");
}

#[test]
fn insert_refusals() {
    for (sql, msg) in [
        ("INSERT INTO users VALUES (1, 'a')", "INSERT into sharded table users needs a column list"),
        (
            "INSERT INTO users (name) VALUES ('a')",
            "INSERT into sharded table users needs a value for shard key user_id",
        ),
        (
            "INSERT INTO users (user_id) VALUES (NULL)",
            "INSERT into sharded table users needs a value for shard key user_id",
        ),
        ("INSERT INTO users SET name = 'x'", "INSERT into sharded table users needs a value for shard key user_id"),
        (
            "INSERT INTO users (user_id) SELECT id FROM t1",
            "INSERT ... SELECT into sharded table users is not supported yet",
        ),
        ("INSERT INTO users (user_id) VALUES (1), (NOW())", "must be a literal value (row 2)"),
        ("INSERT INTO users (user_id) VALUES ('abc')", "cannot place shard key user_id = 'abc'"),
        ("INSERT INTO users (user_id) VALUES ((SELECT MAX(id) FROM t1))", "subqueries in an INSERT"),
        ("INSERT INTO users (user_id, n) VALUES (1, (SELECT 1 FROM t1))", "subqueries in an INSERT"),
        ("INSERT INTO users (user_id) VALUES (2) ON DUPLICATE KEY UPDATE user_id = 3", "changing the shard key"),
    ] {
        let e = err(sql);
        assert_eq!(e.code, 1235, "{sql}");
        assert!(e.message.contains(msg), "{sql}: {}", e.message);
    }
}

#[test]
fn inserts_into_other_tables() {
    let p = plan("INSERT INTO countries (code) VALUES ('FR'), ('DE')");
    assert_eq!((p.targets, p.merge, p.split), (Targets::All, Merge::Concat, None));
    assert_eq!(plan("INSERT INTO t1 VALUES (1)").targets, Targets::Shard(0));
    assert_eq!(plan("INSERT INTO t1 SELECT * FROM users WHERE user_id = 7").targets, Targets::Shard(0));
    assert!(err("INSERT INTO t1 SELECT * FROM users WHERE user_id = 2").message.contains("only the default shard"));
    assert!(err("INSERT INTO countries SELECT * FROM users")
        .message
        .contains("broadcast table countries from sharded table users"));
    assert!(err("INSERT INTO countries SELECT * FROM t1").message.contains("only the default shard s0 has"));
    assert_eq!(plan("INSERT INTO countries (code) SELECT 'x'").targets, Targets::All);
}

#[test]
fn update_and_delete() {
    for (sql, t) in [
        ("UPDATE users SET name = 'x' WHERE user_id = 2", Targets::Shard(1)),
        ("DELETE FROM users WHERE user_id = 7", Targets::Shard(0)),
        ("UPDATE users SET n = n + 1", Targets::All),
        ("DELETE FROM users WHERE created < '2020-01-01'", Targets::All),
        ("UPDATE users SET name = 'x' WHERE user_id = 2 ORDER BY id LIMIT 1", Targets::Shard(1)),
        (
            "UPDATE users u JOIN countries c ON c.code = u.country SET u.cname = c.name WHERE u.user_id = 2",
            Targets::Shard(1),
        ),
        ("DELETE u FROM users u JOIN orders o ON o.user_id = u.user_id WHERE u.user_id = 7", Targets::Shard(0)),
        ("UPDATE countries SET name = 'France' WHERE code = 'FR'", Targets::All),
        ("DELETE FROM countries", Targets::All),
        ("UPDATE t1 SET a = 1", Targets::Shard(0)),
        ("UPDATE users SET user_id = 7 WHERE user_id = 7", Targets::Shard(0)),
        ("UPDATE users SET user_id = user_id WHERE name = 'x'", Targets::All),
    ] {
        let p = plan(sql);
        let merge = if matches!(t, Targets::All) { Merge::Concat } else { Merge::Relay };
        assert_eq!((p.kind, p.targets, p.role, p.merge), (StmtKind::Write, t, Role::Primary, merge), "{sql}");
    }
    let p = plan("DELETE FROM users WHERE user_id IN (1, 2, 3)");
    assert_eq!(
        p.split.unwrap(),
        vec![
            (0, "DELETE FROM users WHERE user_id IN (1, 3)".to_owned()),
            (1, "DELETE FROM users WHERE user_id IN (2)".to_owned()),
        ]
    );
    let p = plan("UPDATE users SET a = 'IN (1, 2)' WHERE user_id IN (4, 7)");
    assert_eq!(p.split.unwrap()[0].1, "UPDATE users SET a = 'IN (1, 2)' WHERE user_id IN (7)");
}

#[test]
fn update_and_delete_refusals() {
    for (sql, msg) in [
        (
            "UPDATE users SET user_id = 3 WHERE user_id = 2",
            "changing the shard key users.user_id would move the row to another shard; DELETE and INSERT it instead",
        ),
        ("UPDATE users SET user_id = 3", "changing the shard key"),
        ("UPDATE users u SET u.user_id = u.user_id + 1 WHERE u.user_id = 2", "changing the shard key"),
        ("UPDATE users SET a = 1 ORDER BY id LIMIT 1", "UPDATE ... ORDER BY across shards"),
        ("DELETE FROM users LIMIT 10", "DELETE ... LIMIT across shards"),
        ("UPDATE users u JOIN orders o ON o.x = u.x SET u.a = 1", "cross-shard JOIN of users and orders"),
        (
            "UPDATE countries c JOIN users u ON u.country = c.code SET c.n = u.n",
            "broadcast table countries from sharded table users",
        ),
        ("UPDATE t1 JOIN users u ON u.x = t1.x SET t1.a = 1", "only the default shard s0 has"),
        ("DELETE FROM countries WHERE a = 1 LIMIT 1", "LIMIT on broadcast table countries"),
        ("UPDATE countries SET token = UUID()", "UUID() in a write to broadcast table countries"),
        ("INSERT INTO countries (code, r) VALUES ('x', RAND())", "RAND() in a write to broadcast table"),
    ] {
        let e = err(sql);
        assert!(e.message.contains(msg), "{sql}: {}", e.message);
    }
}

#[test]
fn ddl_targets() {
    for (sql, t) in [
        ("CREATE TABLE users (user_id BIGINT PRIMARY KEY)", Targets::All),
        ("ALTER TABLE users ADD COLUMN x INT", Targets::All),
        ("DROP TABLE countries", Targets::All),
        ("TRUNCATE TABLE orders", Targets::All),
        ("RENAME TABLE users TO users_old", Targets::All),
        ("CREATE INDEX ix ON users (name)", Targets::All),
        ("DROP INDEX ix ON users", Targets::All),
        ("CREATE DATABASE reports", Targets::All),
        ("DROP DATABASE reports", Targets::All),
        ("ALTER DATABASE app CHARACTER SET utf8mb4", Targets::All),
        ("CREATE TABLE t1 (a INT)", Targets::Shard(0)),
        ("ALTER TABLE other.users ADD COLUMN x INT", Targets::Shard(0)),
        ("CREATE VIEW v AS SELECT * FROM t1", Targets::Shard(0)),
        ("DROP VIEW v", Targets::Shard(0)),
        ("CREATE TABLE t2 LIKE users", Targets::Shard(0)),
        ("CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END", Targets::Shard(0)),
        ("CREATE TRIGGER tr BEFORE INSERT ON users FOR EACH ROW BEGIN SET NEW.a = 1; END", Targets::All),
        ("DROP TRIGGER tr", Targets::All),
        ("OPTIMIZE TABLE users, orders", Targets::All),
        ("ANALYZE TABLE t1", Targets::Shard(0)),
    ] {
        let p = plan(sql);
        assert_eq!((p.targets.clone(), p.role), (t.clone(), Role::Primary), "{sql}");
        if !sql.starts_with("OPTIMIZE") && !sql.starts_with("ANALYZE") {
            assert_eq!(p.kind, StmtKind::Ddl, "{sql}");
        }
        if t == Targets::All {
            assert_eq!(p.merge, Merge::Concat, "{sql}");
        }
    }
    assert!(err("DROP TABLE users, t1").message.contains("mixes tables on every shard (users)"));
    assert!(err("CREATE VIEW v AS SELECT * FROM users").message.contains("view over sharded table users"));
}

#[test]
fn pins_session() {
    for (sql, pins) in [
        ("SELECT GET_LOCK('x', 10)", true),
        ("SELECT RELEASE_LOCK('x')", false),
        ("SELECT @x", true),
        ("SELECT @@version_comment", false),
        ("SELECT * FROM users WHERE user_id = @uid", true),
        ("SELECT SQL_CALC_FOUND_ROWS * FROM t1 LIMIT 1", true),
        ("SELECT FOUND_ROWS() + 0", true),
        ("CREATE TEMPORARY TABLE tmp (a INT)", true),
        ("HANDLER t1 OPEN", true),
        ("SELECT 'GET_LOCK(' FROM t1", false),
        ("/* shardgate:shard=s0 */ CREATE USER 'bob'@'localhost'", false),
    ] {
        let p = plan(sql);
        assert_eq!(p.pins_session, pins, "{sql}");
        if pins {
            assert_eq!(p.role, Role::Primary, "{sql}");
        }
    }
    assert_eq!(plan("SELECT @x").targets, Targets::Shard(0));
    // SQL-level prepared statements are kept by the session (no pinning).
    assert_eq!(
        r("PREPARE s FROM 'SELECT * FROM users WHERE user_id = ?'"),
        Action::SqlPrepare { name: "s".into(), sql: "SELECT * FROM users WHERE user_id = ?".into() }
    );
    use crate::router::plan::Using;
    assert_eq!(
        r("EXECUTE s USING @a, @B, 'it''s', -5, CONCAT('a', 'b')"),
        Action::SqlExecute {
            name: "s".into(),
            using: vec![
                Using::Var("a".into()),
                Using::Var("b".into()),
                Using::Expr("'it''s'".into()),
                Using::Expr("-5".into()),
                Using::Expr("CONCAT('a', 'b')".into())
            ]
        }
    );
    assert_eq!(r("DROP PREPARE S"), Action::SqlDeallocate { name: "s".into() });
    assert!(err("PREPARE s FROM @q").message.contains("write the statement as a string"));
    assert!(err("EXECUTE s USING").message.contains("expected USING"));
    assert!(err("EXECUTE IMMEDIATE 'SELECT 1'").message.contains("EXECUTE IMMEDIATE"));
    assert!(err("HANDLER users OPEN").message.contains("HANDLER on sharded table users"));
}
