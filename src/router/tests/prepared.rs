//! Prepared statements: placeholders feeding the shard key, resolved at execute.

use super::*;
use crate::router::plan::{KeyValue, Merge, Role, Targets};
use crate::router::{prepare, route_execute, KeyParams, PreparedRoute};

fn prep(sql: &str) -> PreparedRoute {
    prepare(sql, &cfg(), &AUTO)
}

fn exec(p: &PreparedRoute, params: &[KeyValue]) -> Action {
    route_execute(p, params, &cfg())
}

fn exec_plan(p: &PreparedRoute, params: &[KeyValue]) -> Plan {
    match exec(p, params) {
        Action::Query(plan) => plan,
        other => panic!("expected a plan, got {other:?}"),
    }
}

fn exec_err(p: &PreparedRoute, params: &[KeyValue]) -> RouteError {
    match exec(p, params) {
        Action::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn params(p: &PreparedRoute) -> &KeyParams {
    p.key_params.as_ref().expect("key params")
}

use KeyValue::{Int, Null, Str};

#[test]
fn placeholder_key() {
    let p = prep("SELECT * FROM users WHERE name = ? AND user_id = ?");
    let Action::Query(plan) = &p.action else { panic!() };
    assert_eq!((plan.targets.clone(), plan.role, plan.merge.clone()), (Targets::All, Role::Replica, Merge::Concat));
    assert_eq!(
        (params(&p).table.as_str(), params(&p).params.as_slice(), params(&p).insert),
        ("users", &[1][..], false)
    );
    let e = exec_plan(&p, &[Str(b"x".to_vec()), Int(2)]);
    assert_eq!((e.targets, e.merge, e.role), (Targets::Shard(1), Merge::Relay, Role::Replica));
    assert!(e.reason.contains("user_id"), "{}", e.reason);
    assert_eq!(exec_plan(&p, &[Null, Int(7)]).targets, Targets::Shard(0));
    // NULL or unusable key values keep the scatter plan.
    assert_eq!(exec_plan(&p, &[Null, Null]).targets, Targets::All);
    assert_eq!(exec_plan(&p, &[Null, KeyValue::Other]).targets, Targets::All);
    // Missing parameters count as NULL.
    assert_eq!(exec_plan(&p, &[]).targets, Targets::All);
}

#[test]
fn placeholders_in_strings_and_comments_are_not_counted() {
    let p = prep("SELECT '?', /* ? */ ? FROM users WHERE user_id = ?");
    assert_eq!(params(&p).params, vec![1]);
}

#[test]
fn in_list_of_placeholders() {
    let p = prep("SELECT * FROM users WHERE user_id IN (?, 3, ?)");
    assert_eq!((params(&p).params.clone(), params(&p).literal_shards.clone()), (vec![0, 1], vec![0]));
    let e = exec_plan(&p, &[Int(1), Int(7)]);
    assert_eq!((e.targets, e.split), (Targets::Shard(0), None));
    let e = exec_plan(&p, &[Int(2), Int(7)]);
    assert_eq!((e.targets, e.merge, e.split), (Targets::Shards(vec![0, 1]), Merge::Concat, None));
}

#[test]
fn cross_shard_constructs_are_checked_at_execute() {
    let p = prep("SELECT COUNT(*) FROM users WHERE user_id = ?");
    assert!(matches!(p.action, Action::Query(_)));
    assert_eq!(exec_plan(&p, &[Int(2)]).targets, Targets::Shard(1));
    // Values that span shards: the plan says to merge (the frontend runs it as text).
    let scatter = exec_plan(&p, &[Null]);
    assert!(matches!(scatter.merge, Merge::Rows(_)) && scatter.targets == Targets::All && scatter.split.is_none());
    let p = prep("SELECT name FROM users WHERE user_id IN (?, ?) ORDER BY name LIMIT ?");
    assert_eq!(exec_plan(&p, &[Int(2), Int(4), Int(1)]).merge, Merge::Relay);
    assert!(matches!(exec_plan(&p, &[Int(1), Int(2), Int(1)]).merge, Merge::Rows(_)));
    // What cannot be merged is still refused when it spans shards.
    let p = prep("SELECT COUNT(DISTINCT name) FROM users WHERE user_id = ?");
    assert!(exec_err(&p, &[Null]).message.contains("COUNT(DISTINCT ...) across shards"));
    let p = prep("SELECT * FROM users u JOIN orders o ON o.user_id = u.user_id WHERE u.user_id = ?");
    assert_eq!(exec_plan(&p, &[Int(7)]).targets, Targets::Shard(0));
    let p = prep("SELECT * FROM users u, orders o WHERE u.user_id = ? AND o.user_id = ?");
    assert_eq!(exec_plan(&p, &[Int(7), Int(3)]).targets, Targets::Shard(0));
    assert!(exec_err(&p, &[Int(7), Int(2)]).message.contains("cross-shard JOIN"));
    let p = prep("SELECT * FROM users u JOIN t1 ON t1.id = u.x WHERE u.user_id = ?");
    assert_eq!(exec_plan(&p, &[Int(7)]).targets, Targets::Shard(0));
    assert!(exec_err(&p, &[Int(2)]).message.contains("only the default shard"));
}

#[test]
fn literal_keys_need_no_parameters() {
    let p = prep("SELECT * FROM users WHERE user_id = 2 AND name = ?");
    assert_eq!(p.key_params, None);
    assert_eq!(exec_plan(&p, &[Str(b"x".to_vec())]).targets, Targets::Shard(1));
    // Prepared statements are never split.
    let p = prep("SELECT * FROM users WHERE user_id IN (1, 2) AND name = ?");
    let Action::Query(plan) = &p.action else { panic!() };
    assert_eq!((plan.targets.clone(), plan.split.clone()), (Targets::Shards(vec![0, 1]), None));
}

#[test]
fn prepared_inserts() {
    let p = prep("INSERT INTO users (user_id, name) VALUES (?, ?), (?, ?)");
    let Action::Query(plan) = &p.action else { panic!() };
    assert_eq!((plan.targets.clone(), plan.role), (Targets::All, Role::Primary));
    assert_eq!((params(&p).params.clone(), params(&p).insert), (vec![0, 2], true));
    let args = |a: i64, b: i64| vec![Int(a), Str(b"n".to_vec()), Int(b), Str(b"m".to_vec())];
    assert_eq!(exec_plan(&p, &args(2, 4)).targets, Targets::Shard(1));
    assert_eq!(
        exec_err(&p, &args(1, 2)).message,
        "a prepared multi-row INSERT whose rows span shards is not supported; insert them separately"
    );
    let e = exec_err(&p, &[Null, Null, Int(2), Null]);
    assert_eq!(e.message, "INSERT into sharded table users needs a value for shard key user_id");
    // Literal rows fix shards already.
    let p = prep("INSERT INTO users (user_id) VALUES (7), (?)");
    assert_eq!(params(&p).literal_shards, vec![0]);
    assert_eq!(exec_plan(&p, &[Int(1)]).targets, Targets::Shard(0));
    assert!(exec_err(&p, &[Int(2)]).message.contains("span shards"));
    assert!(matches!(prep("INSERT INTO users (user_id) VALUES (1), (2)").action, Action::Error(_)));
    let p = prep("INSERT INTO names (name) VALUES (?)");
    assert_eq!(exec_plan(&p, &[Int(5)]).targets, exec_plan(&p, &[Str(b"5".to_vec())]).targets);
}

#[test]
fn prepared_update_delete_and_strings() {
    let p = prep("UPDATE users SET name = ? WHERE user_id = ?");
    assert_eq!(params(&p).params, vec![1]);
    assert_eq!(exec_plan(&p, &[Str(b"x".to_vec()), Int(2)]).targets, Targets::Shard(1));
    let p = prep("DELETE FROM users WHERE user_id = ?");
    assert_eq!(exec_plan(&p, &[Null]).targets, Targets::All);
    let p = prep("DELETE FROM users WHERE user_id = ? LIMIT 1");
    assert!(exec_err(&p, &[Null]).message.contains("DELETE ... LIMIT"));
    let p = prep("SELECT * FROM names WHERE name = ?");
    assert_eq!(exec_plan(&p, &[Str(b"bob ".to_vec())]).targets, exec_plan(&p, &[Str(b"Bob".to_vec())]).targets);
    // A number compared with a string key is not a key.
    assert_eq!(exec_plan(&p, &[Int(5)]).targets, Targets::All);
    assert!(matches!(prep("UPDATE users SET user_id = ? WHERE user_id = ?").action, Action::Error(_)));
}

#[test]
fn transaction_roles_are_kept() {
    let p = prepare("SELECT * FROM users WHERE user_id = ?", &cfg(), &IN_TX);
    assert_eq!(exec_plan(&p, &[Int(2)]).role, Role::Primary);
    let p = prep("SELECT 1");
    assert_eq!(p.key_params, None);
    assert!(matches!(prep("SELECT 1; SELECT 2").action, Action::Error(_)));
}
