use super::*;
use crate::config::validate::parse;

const BASE: &str = r#"
[proxy]
listen = "127.0.0.1:3307"
admin_listen = "127.0.0.1:9107"
default_shard = "s0"

[[users]]
name = "app"
password = "app"

[backend]
user = "app"
database = "app"

[[shards]]
name = "s0"
primary = "127.0.0.1:13306"
replicas = ["127.0.0.1:13307"]

[[shards]]
name = "s1"
primary = "127.0.0.1:13308"

[[tables]]
name = "users"
shard_key = "user_id"
algorithm = "hash"

[[tables]]
name = "countries"
broadcast = true
"#;

fn with(from: &str, to: &str) -> Config {
    assert!(BASE.contains(from), "{from}");
    parse(&BASE.replacen(from, to, 1)).unwrap()
}

#[test]
fn identical_configs_differ_in_nothing() {
    let a = parse(BASE).unwrap();
    assert_eq!(diff(&a, &parse(BASE).unwrap()), Diff::default());
}

#[test]
fn listen_addresses_are_restart_only() {
    let a = parse(BASE).unwrap();
    let b = with("listen = \"127.0.0.1:3307\"", "listen = \"127.0.0.1:3308\"");
    assert_eq!(diff(&a, &b).restart_only, ["proxy.listen"]);
    let b = with("admin_listen = \"127.0.0.1:9107\"", "admin_listen = \"127.0.0.1:9108\"");
    assert_eq!(diff(&a, &b).restart_only, ["proxy.admin_listen"]);
}

#[test]
fn replicas_users_and_limits_change_live() {
    let a = parse(BASE).unwrap();
    let b = with("replicas = [\"127.0.0.1:13307\"]", "replicas = [\"127.0.0.1:13307\", \"127.0.0.1:13310\"]");
    let d = diff(&a, &b);
    assert!(d.restart_only.is_empty() && d.reshard.is_empty(), "{d:?}");
    assert_eq!(d.changes, ["shard s0: replica 127.0.0.1:13310 added"]);
    let b = with("[[users]]\n", "[[users]]\nname = \"ops\"\npassword = \"ops\"\nadmin = true\n\n[[users]]\n");
    assert_eq!(diff(&a, &b).changes, ["user ops added"]);
    let b = with("default_shard = \"s0\"", "default_shard = \"s0\"\nmax_connections = 5");
    assert_eq!(diff(&a, &b).changes, ["[proxy] settings changed"]);
}

#[test]
fn placement_changes_are_found_per_table() {
    let a = parse(BASE).unwrap();
    // A different algorithm for one table.
    let b = with("algorithm = \"hash\"", "algorithm = \"mod\"");
    let d = diff(&a, &b);
    assert_eq!(d.reshard.len(), 1, "{d:?}");
    assert_eq!(d.reshard[0].table.as_deref(), Some("users"));
    // A third shard moves hash rows (the key ranges split three ways) and broadcast copies.
    let b = with(
        "[[tables]]\nname = \"users\"",
        "[[shards]]\nname = \"s2\"\nprimary = \"127.0.0.1:13320\"\n\n[[tables]]\nname = \"users\"",
    );
    let tables: Vec<_> = diff(&a, &b).reshard.into_iter().map(|r| r.table).collect();
    assert_eq!(tables, [Some("countries".to_string()), Some("users".to_string())]);
    // Listing a table that was on the default shard moves it; so does another default shard.
    let b = with("[[tables]]\nname = \"countries\"", "[[tables]]\nname = \"orders\"\nshard_key = \"user_id\"\nalgorithm = \"hash\"\n\n[[tables]]\nname = \"countries\"");
    assert_eq!(diff(&a, &b).reshard[0].table.as_deref(), Some("orders"));
    let b = with("default_shard = \"s0\"", "default_shard = \"s1\"");
    let d = diff(&a, &b);
    assert_eq!(d.reshard[0].table, None);
    assert!(d.reshard[0].why.contains("s0") && d.reshard[0].why.contains("s1"), "{d:?}");
    // Moving a primary to another address moves no rows.
    let b = with("primary = \"127.0.0.1:13308\"", "primary = \"127.0.0.1:13318\"");
    let d = diff(&a, &b);
    assert!(d.reshard.is_empty(), "{d:?}");
    assert_eq!(d.changes, ["shard s1: primaries changed"]);
}

#[test]
fn a_key_path_is_found_on_its_line() {
    let line = |key| line_of(BASE, key).map(|n| BASE.lines().nth(n - 1).unwrap().trim().to_string());
    assert_eq!(line("proxy.default_shard").as_deref(), Some("default_shard = \"s0\""));
    assert_eq!(line("shards[1].primary").as_deref(), Some("primary = \"127.0.0.1:13308\""));
    assert_eq!(line("tables[0].algorithm (users)").as_deref(), Some("algorithm = \"hash\""));
    assert_eq!(line("shards[1].key_range").as_deref(), Some("[[shards]]"), "an absent key: its section");
    assert_eq!(line("shards[7].primary"), None);
}
