//! Unparsable statements, multi-statement texts, describe / SHOW ROUTE
//! rendering and the lexer.

use super::*;
use crate::router::describe::{show_route_rows, CLIENT_STATEMENT, SHOW_ROUTE_COLUMNS};
use crate::router::plan::{Role, StmtKind, Targets};
use crate::sql::lexer::{lex, mask_version_comments};

const UNPARSABLE: &str = "TABLE t1";

#[test]
fn unparsable_statements() {
    let e = err(UNPARSABLE);
    assert_eq!(e.code, 1235);
    assert!(
        e.message.starts_with("shardgate cannot parse this statement: sql parser error:")
            && e.message.ends_with("; add /* shardgate:shard=NAME */ to route it"),
        "{}",
        e.message
    );
    // A pinned session or an open transaction: the default shard's primary.
    for s in [SessionView { pinned: true, ..AUTO }, IN_TX] {
        let p = plan_in(UNPARSABLE, &s);
        assert_eq!((p.targets, p.role, p.kind), (Targets::Shard(0), Role::Primary, StmtKind::Other));
        assert!(p.reason.starts_with("unparsed, session pinned → default shard s0"), "{}", p.reason);
    }
    // ... unless it names a sharded table.
    let e = err_in("TABLE users", &IN_TX);
    assert!(e.message.contains("sharded table users"), "{}", e.message);
    // unparsed = default_shard.
    let mut c = cfg();
    c.proxy.unparsed = UnparsedMode::DefaultShard;
    let Action::Query(p) = route(UNPARSABLE, &c, &AUTO) else { panic!() };
    assert_eq!((p.targets, p.role), (Targets::Shard(0), Role::Primary));
    let Action::Query(p) = route("HELP 'contents'", &c, &AUTO) else { panic!() };
    assert_eq!(p.role, Role::Replica);
    let Action::Query(p) = route("SELECT * FROM t1 PROCEDURE ANALYSE() FOR UPDATE", &c, &AUTO) else { panic!() };
    assert_eq!(p.role, Role::Primary);
    // A hint routes it.
    assert_eq!(plan(&format!("/* shardgate:shard=s1 */ {UNPARSABLE}")).targets, Targets::Shard(1));
    // The tokenizer itself fails: no hint can be read.
    assert_eq!(err("SELECT 'unterminated").code, 1235);
    assert_eq!(plan_in("SELECT 'unterminated", &IN_TX).targets, Targets::Shard(0));
    // Empty text.
    assert_eq!(err("  ; /* nothing */ ").code, 1065);
}

#[test]
fn fast_path_statements_sqlparser_rejects() {
    let p = plan("DO SLEEP(1)");
    assert_eq!((p.targets, p.kind), (Targets::Shard(0), StmtKind::Write));
    assert!(plan("DO GET_LOCK('a', 1)").pins_session);
    assert!(err("DO (SELECT COUNT(*) FROM users)").message.contains("sharded table users"));
    assert_eq!(plan("LOAD DATA LOCAL INFILE '/x' INTO TABLE t1").targets, Targets::Shard(0));
    assert!(err("LOAD DATA INFILE '/x' INTO TABLE users").message.contains("LOAD DATA into sharded table users"));
    assert_eq!(plan("CHECK TABLE t1").targets, Targets::Shard(0));
    assert_eq!(plan("REPAIR NO_WRITE_TO_BINLOG TABLE countries QUICK").targets, Targets::All);
}

#[test]
fn select_into() {
    for sql in [
        "SELECT name FROM users WHERE user_id = 2 INTO @n",
        "SELECT name INTO @n FROM users WHERE user_id = 2",
        "SELECT * FROM users WHERE user_id = 2 INTO OUTFILE '/tmp/x' FIELDS TERMINATED BY ','",
        "SELECT * INTO OUTFILE '/tmp/x' FROM users WHERE user_id = 2 FOR UPDATE",
    ] {
        let p = plan(sql);
        assert_eq!((p.targets, p.role), (Targets::Shard(1), Role::Primary), "{sql}");
    }
    assert!(plan("SELECT 1 INTO @x").pins_session);
    for sql in
        ["SELECT name FROM users INTO @n", "SELECT name INTO @n FROM users", "SELECT * FROM users INTO OUTFILE '/x'"]
    {
        assert!(err(sql).message.contains("INTO across shards"), "{sql}");
    }
    assert_eq!(plan("INSERT INTO t1 SELECT * FROM t2").targets, Targets::Shard(0));
}

#[test]
fn connection_state_functions_read_the_primary() {
    for sql in ["SELECT LAST_INSERT_ID() + 1", "SELECT ROW_COUNT() + 0", "SELECT CONNECTION_ID() + 0"] {
        assert_eq!(plan(sql).role, Role::Primary, "{sql}");
    }
    // The bare forms are about the previous statement: the session answers them.
    assert!(matches!(r("SELECT ROW_COUNT()"), Action::Diagnostics(_)));
    assert!(matches!(r("SHOW WARNINGS"), Action::Diagnostics(_)));
    // The whole `SELECT LAST_INSERT_ID()` is the session's own record, not a backend's.
    for (sql, column) in [("SELECT LAST_INSERT_ID()", "LAST_INSERT_ID()"), ("select @@identity as id", "id")] {
        assert_eq!(r(sql), Action::LastInsertId { column: column.into() }, "{sql}");
    }
    // A shard hint or a multi-statement text still asks the backend.
    assert_eq!(plan("/* shardgate:shard=s1 */ SELECT LAST_INSERT_ID()").role, Role::Primary);
    assert_eq!(plan("INSERT INTO t1 VALUES (1); SELECT LAST_INSERT_ID()").targets, Targets::Shard(0));
}

#[test]
fn multi_statement_texts() {
    let p = plan("SELECT * FROM users WHERE user_id = 2; UPDATE orders SET a = 1 WHERE user_id = 4;");
    assert_eq!((p.targets, p.role, p.kind, p.split), (Targets::Shard(1), Role::Primary, StmtKind::Write, None));
    let p = plan("SELECT 1; SELECT * FROM t1");
    assert_eq!((p.targets, p.role), (Targets::Shard(0), Role::Replica));
    let p = plan("SELECT * FROM countries; SELECT * FROM users WHERE user_id = 2");
    assert_eq!(p.targets, Targets::Shard(1));
    let p = plan("SELECT 1; SELECT @x");
    assert!(p.pins_session);
    for (sql, needle) in [
        (
            "SELECT * FROM users WHERE user_id = 2; SELECT * FROM users WHERE user_id = 1",
            "multi-statement text spans shards",
        ),
        ("SELECT 1; SELECT * FROM users", "statement 2 → all shards"),
        ("SELECT 1; BEGIN", "cannot be part of a multi-statement text"),
        ("SET NAMES utf8; SELECT 1", "cannot be part of a multi-statement text"),
        ("USE app; SELECT 1", "cannot be part of a multi-statement text"),
        ("SELECT 1; SELECT COUNT(*) FROM users", "spans shards"),
        ("SELECT 1; SELECT COUNT(DISTINCT name) FROM users", "COUNT(DISTINCT"),
    ] {
        let e = err(sql);
        assert!(e.message.contains(needle), "{sql}: {}", e.message);
    }
    assert_eq!(plan("SELECT 1; SELECT 2 /* shardgate:shard=s1 */").targets, Targets::Shard(1));
    assert_eq!(
        err("SELECT * FROM users WHERE user_id = 2; SELECT * FROM users WHERE user_id = 1").message,
        "multi-statement text spans shards (statement 1 → s1, statement 2 → s0); send the statements one at a time"
    );
}

#[test]
fn socket_variable_reads_null() {
    // mysql_async's query at login: a backend's @@socket would move the client off shardgate.
    let p = plan("SELECT @@max_allowed_packet,@@wait_timeout,@@socket");
    let text = "SELECT @@max_allowed_packet,@@wait_timeout,NULL AS `@@socket`";
    assert_eq!((p.targets, p.role, p.split), (Targets::Shard(0), Role::Replica, Some(vec![(0, text.into())])));
    // Any shard may serve a broadcast read: each gets the rewritten text.
    let p = plan("SELECT code, @@socket FROM countries");
    let text = "SELECT code, NULL AS `@@socket` FROM countries";
    assert_eq!((p.targets, p.split), (Targets::AnyShard, Some(vec![(0, text.into()), (1, text.into())])));
    // A statement split per shard is cut from the rewritten text.
    let p = plan("SELECT @@socket s, name FROM users WHERE user_id IN (1, 2)");
    assert_eq!(p.targets, Targets::Shards(vec![0, 1]));
    for (_, text) in p.split.expect("split per shard") {
        assert!(text.starts_with("SELECT NULL s, name FROM users WHERE user_id IN ("), "{text}");
    }
    assert_eq!(plan("SELECT 1; SELECT @@socket").split, Some(vec![(0, "SELECT 1; SELECT NULL AS `@@socket`".into())]));
    // Prepared statements are not rewritten here; other variables are left alone.
    let prepared = crate::router::prepare("SELECT @@socket", &cfg(), &AUTO).action;
    assert!(matches!(&prepared, Action::Query(p) if p.split.is_none()), "{prepared:?}");
    assert_eq!(plan("SELECT @@wait_timeout").split, None);
}

#[test]
fn describe_plans() {
    let c = cfg();
    let p = plan("SELECT * FROM users WHERE user_id IN (1, 2)");
    assert_eq!(
        p.describe(&c),
        vec![
            ("s0".into(), "replica".into(), "SELECT * FROM users WHERE user_id IN (1)".into()),
            ("s1".into(), "replica".into(), "SELECT * FROM users WHERE user_id IN (2)".into()),
        ]
    );
    let p = plan("UPDATE users SET a = 1");
    assert_eq!(
        p.describe(&c),
        vec![
            ("s0".into(), "primary".into(), CLIENT_STATEMENT.into()),
            ("s1".into(), "primary".into(), CLIENT_STATEMENT.into()),
        ]
    );
    assert_eq!(
        plan("SELECT * FROM countries").describe_with_sql(&c, "q")[0],
        ("any".into(), "replica".into(), "q".into())
    );
}

#[test]
fn show_route_rendering() {
    let c = cfg();
    let sql = "SHOW SHARDGATE ROUTE SELECT * FROM users WHERE user_id = 2";
    let rows = show_route_rows(&route(sql, &c, &AUTO), sql, &c);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].len(), SHOW_ROUTE_COLUMNS.len());
    assert_eq!(&rows[0][..6], ["s1", "replica", "read", "relay", "false", "SELECT * FROM users WHERE user_id = 2"]);
    assert!(rows[0][6].starts_with("users.user_id = 2 → s1"));
    let sql = "SHOW SHARDGATE ROUTE SELECT COUNT(*) FROM users";
    let rows = show_route_rows(&route(sql, &c, &AUTO), sql, &c);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][3], "merge (aggregate over all shards)");
    assert_eq!(rows[1][5].trim(), "SELECT COUNT(*) FROM users");
    let sql = "SHOW SHARDGATE ROUTE SELECT COUNT(DISTINCT name) FROM users";
    let rows = show_route_rows(&route(sql, &c, &AUTO), sql, &c);
    assert_eq!(rows[0][2], "error");
    assert!(rows[0][6].starts_with("error 1235: This version of shardgate"));
    let sql = "SHOW SHARDGATE ROUTE SET NAMES utf8";
    assert_eq!(show_route_rows(&route(sql, &c, &AUTO), sql, &c)[0][2], "set");
}

#[test]
fn lexer_offsets_and_version_comments() {
    let sql = "SELECT 'é', `ü` /*! , 1 */ -- x\n FROM t";
    let lx = lex(sql).unwrap();
    for (t, r) in lx.tokens.iter().zip(&lx.ranges) {
        if let sqlparser::tokenizer::Token::Word(w) = &t.token {
            assert_eq!(&sql[r.clone()].trim_matches('`'), &w.value);
        }
    }
    assert_eq!(mask_version_comments("/*!40101 SET a=1 */"), "         SET a=1   ");
    assert_eq!(mask_version_comments("SELECT '/*!x' /* /*!no */"), "SELECT '/*!x' /* /*!no */");
    assert_eq!(mask_version_comments("/*M!100101 x */ y"), "           x    y");
    // mariadb-dump's sandbox marker is for clients only: no server runs version 999999.
    let sandbox = "/*M!999999\\- enable the sandbox mode */ \nSELECT 1";
    assert_eq!(mask_version_comments(sandbox), sandbox);
    assert!(matches!(r(sandbox), Action::Query(_)));
    // Version-comment bodies are code: their SET is a SET.
    assert!(matches!(r("/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */"), Action::Set(_)));
    assert_eq!(lx.placeholder_count(), 0);
    assert_eq!(lex("SELECT ?, '?', `?`, /* ? */ ?").unwrap().placeholder_count(), 2);
}
