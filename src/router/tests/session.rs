//! Statements the session handles: hints, transactions, SET, USE, KILL,
//! SHOW SHARDGATE ROUTE, XA, LOCK / UNLOCK TABLES.

use super::*;
use crate::router::plan::{Merge, Role, SetItem, StmtKind, Targets};

#[test]
fn hints_force_primary_and_shard() {
    let p = plan("/* shardgate:primary */ SELECT * FROM users WHERE user_id = 2");
    assert_eq!((p.targets, p.role), (Targets::Shard(1), Role::Primary));

    let p = plan("SELECT * FROM users /* shardgate:shard=s1 */");
    assert_eq!((p.targets, p.role, p.split), (Targets::Shard(1), Role::Replica, None));
    assert!(p.reason.contains("hint shard=s1"), "{}", p.reason);

    // A hinted shard overrides a refusal: the client takes responsibility.
    let p = plan("SELECT COUNT(*) FROM users -- shardgate:shard=s0\n");
    assert_eq!(p.targets, Targets::Shard(0));

    let p = plan("SELECT 1 /* shardgate:shard=s1,primary */");
    assert_eq!((p.targets, p.role), (Targets::Shard(1), Role::Primary));
}

#[test]
fn hint_errors() {
    let e = err("SELECT 1 /* shardgate:shard=s9 */");
    assert_eq!(e.code, 1235);
    assert!(e.message.contains("s9") && e.message.contains("s0, s1"), "{}", e.message);
    assert!(err("SELECT 1 /* shardgate:replica */").message.contains("unknown shardgate hint"));
    assert!(err("/* shardgate:shard=s0 */ SELECT 1 /* shardgate:shard=s1 */").message.contains("conflicting"));
    // Not a hint: plain comments and strings are ignored.
    assert_eq!(plan("SELECT '/* shardgate:shard=s9 */'").targets, Targets::Shard(0));
}

#[test]
fn hinted_unparsable_statement() {
    for (sql, role) in [
        ("/* shardgate:shard=s1 */ TABLE users", Role::Primary),
        ("/* shardgate:shard=s1 */ SELECT * FROM users PROCEDURE ANALYSE() LOCK IN SHARE MODE", Role::Primary),
        ("/* shardgate:shard=s1 */ OPTIMIZE NO_SUCH THING", Role::Primary),
        ("/* shardgate:shard=s1 */ HELP 'select'", Role::Replica),
        ("/* shardgate:shard=s1 */ SELECT * FROM users PROCEDURE ANALYSE()", Role::Replica),
    ] {
        let p = plan(sql);
        assert_eq!((p.targets, p.kind, p.role), (Targets::Shard(1), StmtKind::Other, role), "{sql}");
    }
}

#[test]
fn transaction_control() {
    let cases: Vec<(&str, Action)> = vec![
        ("BEGIN", Action::Begin { sql: "BEGIN".into() }),
        ("begin work;", Action::Begin { sql: "begin work".into() }),
        ("START TRANSACTION", Action::Begin { sql: "START TRANSACTION".into() }),
        ("START TRANSACTION READ ONLY", Action::Begin { sql: "START TRANSACTION READ ONLY".into() }),
        ("start transaction read write", Action::Begin { sql: "start transaction read write".into() }),
        (
            "START TRANSACTION WITH CONSISTENT SNAPSHOT",
            Action::Begin { sql: "START TRANSACTION WITH CONSISTENT SNAPSHOT".into() },
        ),
        // mariadb-dump --single-transaction: the version comment must reach the backend whole.
        (
            "START TRANSACTION /*!40100 WITH CONSISTENT SNAPSHOT */",
            Action::Begin { sql: "START TRANSACTION /*!40100 WITH CONSISTENT SNAPSHOT */".into() },
        ),
        ("COMMIT", Action::EndTransaction { commit: true }),
        ("commit work", Action::EndTransaction { commit: true }),
        ("COMMIT AND NO CHAIN NO RELEASE", Action::EndTransaction { commit: true }),
        ("ROLLBACK", Action::EndTransaction { commit: false }),
        ("ROLLBACK WORK", Action::EndTransaction { commit: false }),
        ("ROLLBACK TO sp1", Action::Savepoint),
        ("ROLLBACK WORK TO SAVEPOINT sp1", Action::Savepoint),
        ("SAVEPOINT sp1", Action::Savepoint),
        ("RELEASE SAVEPOINT sp1", Action::Savepoint),
    ];
    for (sql, want) in cases {
        assert_eq!(r(sql), want, "{sql}");
    }
    for sql in
        ["COMMIT AND CHAIN", "ROLLBACK AND CHAIN", "COMMIT RELEASE", "COMMIT WORK RELEASE", "RELEASE", "COMMIT foo"]
    {
        assert_eq!(err(sql).code, 1235, "{sql}");
    }
    assert!(err("COMMIT AND CHAIN").message.contains("AND CHAIN"));
}

fn set_items(sql: &str) -> Vec<SetItem> {
    match r(sql) {
        Action::Set(items) => items,
        other => panic!("{sql}: {other:?}"),
    }
}

fn session(name: &str, value: &str) -> SetItem {
    SetItem::Session { name: name.into(), value: value.into() }
}

#[test]
fn set_forms() {
    let names = |cs: &str, coll: Option<&str>| SetItem::Names { charset: cs.into(), collation: coll.map(Into::into) };
    let cases: Vec<(&str, Vec<SetItem>)> = vec![
        ("SET NAMES utf8mb4", vec![names("utf8mb4", None)]),
        ("SET NAMES 'UTF8MB4' COLLATE 'utf8mb4_unicode_ci'", vec![names("utf8mb4", Some("utf8mb4_unicode_ci"))]),
        ("set names default", vec![names("default", None)]),
        ("SET CHARACTER SET latin1", vec![SetItem::CharacterSet("latin1".into())]),
        ("SET CHARSET 'utf8'", vec![SetItem::CharacterSet("utf8".into())]),
        ("SET autocommit = 0", vec![session("autocommit", "0")]),
        ("SET SESSION sql_mode = 'ANSI,TRADITIONAL'", vec![session("sql_mode", "'ANSI,TRADITIONAL'")]),
        ("SET LOCAL Wait_Timeout=100", vec![session("wait_timeout", "100")]),
        ("SET @@session.time_zone = '+00:00'", vec![session("time_zone", "'+00:00'")]),
        ("SET @@SQL_MODE = DEFAULT", vec![session("sql_mode", "DEFAULT")]),
        ("SET @@local.net_read_timeout = 30", vec![session("net_read_timeout", "30")]),
        ("SET x := 5", vec![session("x", "5")]),
        ("SET @a = 1", vec![SetItem::User { name: "a".into(), value: "1".into() }]),
        (
            "SET @A := CONCAT('x', ',', 'y')",
            vec![SetItem::User { name: "a".into(), value: "CONCAT('x', ',', 'y')".into() }],
        ),
        ("SET @'my var' = 'é'", vec![SetItem::User { name: "my var".into(), value: "'é'".into() }]),
        ("SET @`v` = 2", vec![SetItem::User { name: "v".into(), value: "2".into() }]),
        (
            "SET NAMES utf8mb4, autocommit=1, @x = (1, 2) , sql_mode=CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
            vec![
                names("utf8mb4", None),
                session("autocommit", "1"),
                SetItem::User { name: "x".into(), value: "(1, 2)".into() },
                session("sql_mode", "CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')"),
            ],
        ),
        (
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED, READ ONLY",
            vec![SetItem::Transaction {
                session: false,
                sql: "SET TRANSACTION ISOLATION LEVEL READ COMMITTED, READ ONLY".into(),
            }],
        ),
        (
            "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            vec![SetItem::Transaction {
                session: true,
                sql: "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE".into(),
            }],
        ),
        ("/*!40101 SET NAMES utf8mb4 */", vec![names("utf8mb4", None)]),
        (
            "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE */;",
            vec![SetItem::User { name: "old_sql_mode".into(), value: "@@SQL_MODE".into() }],
        ),
    ];
    for (sql, want) in cases {
        assert_eq!(set_items(sql), want, "{sql}");
    }
}

#[test]
fn set_global_goes_to_every_primary() {
    for sql in [
        "SET GLOBAL max_connections = 500",
        "SET @@global.max_connections = 500",
        "SET GLOBAL a = 1, b = 2",
        "SET GLOBAL TRANSACTION READ ONLY",
        "SET PERSIST x = 1",
    ] {
        let p = plan(sql);
        assert_eq!(
            (p.targets, p.role, p.kind, p.merge),
            (Targets::All, Role::Primary, StmtKind::Other, Merge::Concat),
            "{sql}"
        );
    }
}

#[test]
fn set_refusals() {
    for (sql, needle) in [
        ("SET PASSWORD = 'x'", "SET PASSWORD"),
        ("SET PASSWORD FOR bob = 'x'", "SET PASSWORD"),
        ("SET ROLE admin", "SET ROLE"),
        ("SET DEFAULT ROLE admin TO bob", "SET DEFAULT ROLE"),
        ("SET STATEMENT max_statement_time=1 FOR SELECT 1", "SET STATEMENT"),
        ("SET GLOBAL a = 1, SESSION b = 2", "mixes GLOBAL and SESSION"),
        ("SET @@global.a = 1, b = 2", "mixes GLOBAL and SESSION"),
        ("SET a", "needs '='"),
        ("SET a =", "needs a value"),
    ] {
        let e = err(sql);
        assert_eq!(e.code, 1235, "{sql}");
        assert!(e.message.contains(needle), "{sql}: {}", e.message);
    }
}

#[test]
fn use_and_kill() {
    assert_eq!(r("USE app"), Action::Use("app".into()));
    assert_eq!(r("use `My Db`;"), Action::Use("My Db".into()));
    assert_eq!(r("KILL 42"), Action::Kill { connection_id: 42, query_only: false });
    assert_eq!(r("KILL CONNECTION 7"), Action::Kill { connection_id: 7, query_only: false });
    assert_eq!(r("kill query 9"), Action::Kill { connection_id: 9, query_only: true });
    assert_eq!(err("KILL abc").code, 1235);
    assert_eq!(err("USE").code, 1235);
}

#[test]
fn show_shardgate_route() {
    let Action::ShowRoute(inner) = r("SHOW SHARDGATE ROUTE SELECT * FROM users WHERE user_id = 2") else { panic!() };
    let Action::Query(p) = *inner else { panic!() };
    assert_eq!(p.targets, Targets::Shard(1));
    let Action::ShowRoute(inner) = r("show shardgate route BEGIN") else { panic!() };
    assert_eq!(*inner, Action::Begin { sql: "BEGIN".into() });
    // The inner statement may itself hold hints and several statements.
    let Action::ShowRoute(inner) = r("SHOW SHARDGATE ROUTE /* shardgate:shard=s1 */ SELECT 1; SELECT 2") else {
        panic!()
    };
    assert!(matches!(*inner, Action::Query(Plan { targets: Targets::Shard(1), .. })));
    let Action::ShowRoute(inner) = r("SHOW SHARDGATE ROUTE SELECT COUNT(DISTINCT name) FROM users") else { panic!() };
    assert!(matches!(*inner, Action::Error(_)));
}

#[test]
fn xa_is_refused() {
    let e = err("XA START 'x'");
    assert_eq!(e.message, "XA transactions are not supported through shardgate yet");
}

#[test]
fn lock_and_unlock_tables() {
    let p = plan("LOCK TABLES t1 READ, app.t2 AS x WRITE");
    assert_eq!((p.targets, p.role, p.pins_session), (Targets::Shard(0), Role::Primary, true));
    // A sharded table is locked on every shard; an unlisted one only where it lives.
    let p = plan("LOCK TABLES t1 READ, users AS u WRITE");
    assert_eq!((p.targets.clone(), p.pins_session), (Targets::Shards(vec![0, 1]), true));
    assert_eq!(
        p.split,
        Some(vec![(0, "LOCK TABLES t1 READ, users AS u WRITE".into()), (1, "LOCK TABLES users AS u WRITE".into())])
    );
    let p = plan("LOCK TABLES `users` READ /*!32311 LOCAL */, countries READ");
    assert_eq!((p.targets, p.split), (Targets::Shards(vec![0, 1]), None), "the same list everywhere");
    let p = plan("LOCK TABLES `users` READ /*!32311 LOCAL */, t1 READ /*!32311 LOCAL */");
    assert_eq!(
        p.split.unwrap()[1].1,
        "LOCK TABLES `users` READ /*!32311 LOCAL */",
        "version comments stay whole in the per-shard lists"
    );
    let p = plan("UNLOCK TABLES");
    assert_eq!((p.targets, p.role, p.pins_session), (Targets::All, Role::Primary, true));
    // What mariadb-dump writes around its INSERTs, which sqlparser cannot parse.
    let p = plan("/*!40000 ALTER TABLE `users` DISABLE KEYS */");
    assert_eq!((p.targets, p.kind, p.unparsed), (Targets::All, StmtKind::Ddl, true));
    assert_eq!(plan("ALTER TABLE t1 ENABLE KEYS").targets, Targets::Shard(0));
    assert_eq!(err("LOCK INSTANCE FOR BACKUP").code, 1235);
}
