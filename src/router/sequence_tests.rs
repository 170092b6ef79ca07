//! The pure half of global sequences: which INSERTs need ids, and their text
//! with the ids filled in. Config (router tests): `orders` (hash on user_id)
//! has sequence `order_id`, `events` (range on id) has sequence `id` (its shard
//! key), broadcast `countries` has sequence `id`.

use super::{analyze, last_insert_id_select, might_need, SequenceFill};
use crate::router::catalog::Catalog;
use crate::router::tests::{cfg, AUTO};
use crate::router::{RouteError, SessionView};
use crate::sql::lex;

fn fill_in(sql: &str, view: &SessionView<'_>) -> Option<SequenceFill> {
    analyze(sql, &cfg(), view).unwrap_or_else(|e| panic!("{sql}: {e:?}"))
}

/// The statement with ids 100, 101, ... filled in, and how many it needed.
fn filled(sql: &str) -> (String, usize) {
    let f = fill_in(sql, &AUTO).unwrap_or_else(|| panic!("{sql}: expected ids to be needed"));
    let ids: Vec<u64> = (100..100 + f.count as u64).collect();
    (f.fill(sql, &ids), f.count)
}

fn refused(sql: &str) -> RouteError {
    match analyze(sql, &cfg(), &AUTO) {
        Err(e) => e,
        Ok(f) => panic!("{sql}: expected an error, got {f:?}"),
    }
}

#[test]
fn column_missing_from_the_list_is_added_to_every_row() {
    assert_eq!(
        filled("INSERT INTO orders (user_id, amount) VALUES (1, 10), (2, 20)"),
        ("INSERT INTO orders (user_id, amount, `order_id`) VALUES (1, 10, 100), (2, 20, 101)".into(), 2)
    );
    assert_eq!(
        filled("insert into orders(user_id) value (7)"),
        ("insert into orders(user_id, `order_id`) value (7, 100)".into(), 1)
    );
    assert_eq!(
        filled("INSERT INTO orders (user_id) VALUES ROW(1), ROW(2)"),
        ("INSERT INTO orders (user_id, `order_id`) VALUES ROW(1, 100), ROW(2, 101)".into(), 2)
    );
    let f = fill_in("REPLACE INTO `Orders` (`user_id`) VALUES (3)", &AUTO).unwrap();
    assert_eq!((f.name.as_str(), f.table.as_str(), f.column.as_str()), ("orders", "Orders", "order_id"));
    assert_eq!(
        f.fill("REPLACE INTO `Orders` (`user_id`) VALUES (3)", &[9]),
        "REPLACE INTO `Orders` (`user_id`, `order_id`) VALUES (3, 9)"
    );
}

#[test]
fn null_zero_and_default_are_generated_explicit_values_kept() {
    assert_eq!(
        filled("INSERT INTO orders (order_id, user_id) VALUES (NULL, 1), (0, 2), (55, 3), (DEFAULT, 4), ((null), 5)"),
        ("INSERT INTO orders (order_id, user_id) VALUES (100, 1), (101, 2), (55, 3), (102, 4), ((103), 5)".into(), 4)
    );
    assert_eq!(
        filled("INSERT INTO orders (ORDER_ID, user_id) VALUES (0.0, 1)").0,
        "INSERT INTO orders (ORDER_ID, user_id) VALUES (100, 1)"
    );
    for sql in [
        "INSERT INTO orders (order_id, user_id) VALUES (5, 1), (6, 2)",
        "INSERT INTO orders (order_id, user_id) VALUES (1 + 1, 1)",
        "INSERT INTO orders (order_id, user_id) VALUES ('0x', 1)",
    ] {
        assert_eq!(fill_in(sql, &AUTO), None, "{sql}: every row gives its own value");
    }
}

#[test]
fn sequence_column_as_shard_key_and_broadcast_tables() {
    assert_eq!(
        filled("INSERT INTO events (name) VALUES ('a'), ('b')").0,
        "INSERT INTO events (name, `id`) VALUES ('a', 100), ('b', 101)"
    );
    assert_eq!(
        filled("INSERT INTO countries (id, name) VALUES (NULL, 'x')").0,
        "INSERT INTO countries (id, name) VALUES (100, 'x')"
    );
    assert_eq!(filled("INSERT INTO app.orders (user_id) VALUES (1)").1, 1, "the proxy's own schema");
}

#[test]
fn comments_hints_and_odd_spacing_are_kept() {
    let sql = "/* shardgate:primary */ INSERT  /* c1 */ INTO\n\torders ( user_id ,amount\n)VALUES(1,2),\n  ( 3 , 4 )  -- tail";
    assert_eq!(
        filled(sql).0,
        "/* shardgate:primary */ INSERT  /* c1 */ INTO\n\torders ( user_id ,amount, `order_id`\n)VALUES(1,2, 100),\n  ( 3 , 4 , 101)  -- tail"
    );
    let sql = "INSERT INTO orders (order_id,user_id) VALUES (/* gen */ NULL ,1);";
    assert_eq!(filled(sql).0, "INSERT INTO orders (order_id,user_id) VALUES (/* gen */ 100 ,1);");
    let sql = "INSERT INTO orders (user_id, note) VALUES (1, 'NULL, 0), (DEFAULT')";
    assert_eq!(filled(sql).0, "INSERT INTO orders (user_id, note, `order_id`) VALUES (1, 'NULL, 0), (DEFAULT', 100)");
}

#[test]
fn insert_set_form() {
    assert_eq!(
        filled("INSERT INTO orders SET user_id = 1, amount = 2").0,
        "INSERT INTO orders SET user_id = 1, amount = 2, `order_id` = 100"
    );
    assert_eq!(
        filled("INSERT INTO orders SET user_id = 1, amount = (2) ON DUPLICATE KEY UPDATE amount = 3").0,
        "INSERT INTO orders SET user_id = 1, amount = (2), `order_id` = 100 ON DUPLICATE KEY UPDATE amount = 3"
    );
    assert_eq!(
        filled("INSERT INTO orders SET order_id = NULL, user_id = 1").0,
        "INSERT INTO orders SET order_id = 100, user_id = 1"
    );
    assert_eq!(fill_in("INSERT INTO orders SET order_id = 9, user_id = 1", &AUTO), None);
}

#[test]
fn without_a_column_list_the_learned_column_order_is_used() {
    let sql = "INSERT INTO orders VALUES (NULL, 1, 5), (77, 2, 6)";
    let e = refused(sql);
    assert!(e.message.contains(crate::router::NEEDS_COLUMN_LIST), "{}", e.message);
    let catalog = Catalog::from_pairs(
        [("orders", "order_id"), ("orders", "user_id"), ("orders", "amount")].map(|(t, c)| (t.into(), c.into())),
    );
    let view = SessionView { catalog: Some(&catalog), ..AUTO };
    let f = fill_in(sql, &view).unwrap();
    assert_eq!((f.count, f.fill(sql, &[100]).as_str()), (1, "INSERT INTO orders VALUES (100, 1, 5), (77, 2, 6)"));
    let e = analyze("INSERT INTO orders VALUES (NULL, 1)", &cfg(), &view).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (1136, "Column count doesn't match value count at row 1"));
}

#[test]
fn refused_forms() {
    for sql in [
        "INSERT INTO orders (user_id) SELECT user_id FROM users",
        "INSERT INTO orders (order_id, user_id) SELECT NULL, 1",
        "REPLACE INTO countries SELECT * FROM countries",
    ] {
        let e = refused(sql);
        assert_eq!(e.code, 1235, "{sql}");
        assert!(e.message.contains("INSERT ... SELECT") && e.message.contains("INSERT ... VALUES"), "{}", e.message);
    }
    let e = refused("INSERT INTO orders (user_id) VALUES (1); SELECT 1");
    assert!(e.message.contains("statement of its own"), "{}", e.message);
    let e = refused("INSERT INTO orders (user_id) VALUES (1, 2)");
    assert_eq!(e.code, 1136);
    let e = refused("INSERT INTO orders (user_id) VALUES (1) garbage here");
    assert!(e.message.contains("cannot parse"), "{}", e.message);
}

#[test]
fn other_statements_need_no_ids() {
    for sql in [
        "INSERT INTO users (user_id) VALUES (1)",
        "SELECT * FROM orders",
        "UPDATE orders SET order_id = NULL WHERE user_id = 1",
        "INSERT INTO other.orders (user_id) VALUES (1)",
        "INSERT INTO t1 SELECT * FROM orders",
        "INSERT INTO users (user_id) VALUES (1); SELECT * FROM orders",
    ] {
        assert_eq!(fill_in(sql, &AUTO), None, "{sql}");
    }
    let c = cfg();
    assert!(might_need("insert into ORDERS (user_id) values (1)", &c));
    assert!(!might_need("SELECT * FROM orders WHERE user_id = 1", &c));
    assert!(!might_need("INSERT INTO users (user_id) VALUES (1)", &c));
}

#[test]
fn last_insert_id_selects() {
    let col = |sql: &str| {
        let lx = lex(sql).unwrap();
        let range = lx.statements().into_iter().next().unwrap();
        last_insert_id_select(&lx, &lx.significant(range))
    };
    for (sql, name) in [
        ("SELECT LAST_INSERT_ID()", "LAST_INSERT_ID()"),
        ("select last_insert_id( )", "last_insert_id( )"),
        ("select last_insert_id() as id", "id"),
        ("SELECT LAST_INSERT_ID() `the id`", "the id"),
        ("SELECT LAST_INSERT_ID() AS 'x'", "x"),
        ("SELECT @@IDENTITY", "@@IDENTITY"),
        ("SELECT @@last_insert_id;", "@@last_insert_id"),
        ("SELECT @@session.identity AS i", "i"),
        ("/* c */ SELECT LAST_INSERT_ID() -- x", "LAST_INSERT_ID()"),
    ] {
        assert_eq!(col(sql).as_deref(), Some(name), "{sql}");
    }
    for sql in [
        "SELECT LAST_INSERT_ID() + 1",
        "SELECT LAST_INSERT_ID(5)",
        "SELECT LAST_INSERT_ID(), 1",
        "SELECT LAST_INSERT_ID() FROM users",
        "SELECT @@global.identity",
        "SELECT @@identity2",
        "SELECT `LAST_INSERT_ID`()",
    ] {
        assert_eq!(col(sql), None, "{sql}");
    }
}

#[test]
fn prepared_statements_get_placeholders_for_ids() {
    use super::{analyze_prepared, Slot};
    let c = |n| Slot::Client { n, sequence: false };
    let sql = "INSERT INTO orders (user_id, amount) VALUES (?, ?), (?, 5)";
    let f = analyze_prepared(sql, &cfg(), &AUTO).unwrap().unwrap();
    assert_eq!(
        f.with_placeholders(sql),
        "INSERT INTO orders (user_id, amount, `order_id`) VALUES (?, ?, ?), (?, 5, ?)"
    );
    assert_eq!((f.count, f.bound.as_slice()), (2, &[][..]));
    assert_eq!(f.slots, [c(0), c(1), Slot::Id, c(2), Slot::Id]);

    let sql = "INSERT INTO orders (order_id, user_id) VALUES (?, ?), (NULL, ?)";
    let f = analyze_prepared(sql, &cfg(), &AUTO).unwrap().unwrap();
    assert_eq!(f.with_placeholders(sql), "INSERT INTO orders (order_id, user_id) VALUES (?, ?), (?, ?)");
    assert_eq!((f.count, f.bound.as_slice()), (1, &[0][..]));
    assert_eq!(f.slots, [Slot::Client { n: 0, sequence: true }, c(1), Slot::Id, c(2)]);

    let sql = "INSERT INTO events SET name = ?";
    let f = analyze_prepared(sql, &cfg(), &AUTO).unwrap().unwrap();
    assert_eq!(f.with_placeholders(sql), "INSERT INTO events SET name = ?, `id` = ?");
    assert_eq!(f.slots, [c(0), Slot::Id]);

    assert_eq!(analyze_prepared("INSERT INTO orders (order_id, user_id) VALUES (5, ?)", &cfg(), &AUTO), Ok(None));
    // The text protocol has no placeholders: a `?` there is just a value.
    assert_eq!(analyze("INSERT INTO orders (order_id, user_id) VALUES (?, 1)", &cfg(), &AUTO), Ok(None));
}

#[test]
fn execute_immediate_of_an_insert_that_needs_ids_is_refused() {
    let sql = "EXECUTE IMMEDIATE 'INSERT INTO orders (order_id, user_id) VALUES (NULL, 1)'";
    let e = refused(sql);
    assert!(e.message.contains("EXECUTE IMMEDIATE") && e.message.contains("orders"), "{sql}: {}", e.message);
    // PREPARE is kept by the session; its EXECUTE runs as a query and gets ids then.
    assert_eq!(fill_in("PREPARE s FROM 'INSERT INTO orders (user_id) VALUES (?)'", &AUTO), None);
    assert_eq!(fill_in("PREPARE s FROM 'INSERT INTO users (user_id) VALUES (?)'", &AUTO), None);
    assert_eq!(fill_in("PREPARE s FROM 'SELECT * FROM orders'", &AUTO), None);
}

#[test]
fn last_insert_id_calls_in_writes_become_the_sessions_value() {
    use super::substitute_last_insert_id as sub;
    assert_eq!(
        sub("INSERT INTO items (order_id, n) VALUES (LAST_INSERT_ID(), 1), (last_insert_id( ), 2)", 42).as_deref(),
        Some("INSERT INTO items (order_id, n) VALUES (42, 1), (42, 2)")
    );
    assert_eq!(
        sub("UPDATE t SET a = 1 WHERE id = LAST_INSERT_ID()", 7).as_deref(),
        Some("UPDATE t SET a = 1 WHERE id = 7")
    );
    assert_eq!(sub("SET @parent = LAST_INSERT_ID()", 9).as_deref(), Some("SET @parent = 9"));
    for sql in [
        "SELECT LAST_INSERT_ID()",
        "SELECT * FROM t WHERE id = LAST_INSERT_ID()",
        "INSERT INTO t VALUES (1); INSERT INTO u VALUES (LAST_INSERT_ID())",
        "UPDATE t SET id = LAST_INSERT_ID(id + 1)",
        "INSERT INTO t (note) VALUES ('LAST_INSERT_ID()')",
        "INSERT INTO t (a) VALUES (1)",
    ] {
        assert_eq!(sub(sql, 5), None, "{sql}");
    }
}

#[test]
fn show_route_plans_a_sequence_insert_without_reserving_ids() {
    use crate::router::{route, Action, Targets};
    let show = |sql: &str| match route(&format!("SHOW SHARDGATE ROUTE {sql}"), &cfg(), &AUTO) {
        Action::ShowRoute(inner) => *inner,
        other => panic!("{other:?}"),
    };
    // The id is the shard key: the shard is only known once the id is.
    let Action::Query(p) = show("INSERT INTO events (name) VALUES ('a')") else { panic!() };
    assert_eq!(p.targets, Targets::All);
    assert!(p.reason.starts_with("ids from sequence events.id filled in first; "), "{}", p.reason);
    let Action::Query(p) = show("INSERT INTO orders (user_id) VALUES (2)") else { panic!() };
    assert_eq!(p.targets, Targets::Shard(1));
    assert!(matches!(show("INSERT INTO orders (user_id) SELECT 1"), Action::Error(e) if e.code == 1235));
}
