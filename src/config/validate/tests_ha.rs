//! Tests for the high-availability keys: `[health]` failover settings, zones,
//! servers written as inline tables, and active-active `primaries`.

use super::tests::{Doc, PROXY};
use super::{parse, ConfigError};
use crate::config::{FailoverMode, RejoinMode, Server};

fn shards(body: &str) -> Doc<'_> {
    Doc { shards: body, ..Doc::default() }
}

/// The toml/serde error for a document that does not match the schema.
#[track_caller]
fn parse_error(doc: &Doc) -> String {
    match parse(&doc.text()) {
        Err(ConfigError::Parse(m)) => m,
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn health_ha_defaults() {
    let cfg = Doc::default().ok();
    let h = &cfg.health;
    assert_eq!(h.max_replica_lag_s, 10);
    assert_eq!(h.failover, FailoverMode::Promote);
    assert!(!h.require_semi_sync);
    assert_eq!(h.rejoin, RejoinMode::Manual);
    assert_eq!(h.failover_buffer_ms, 5000);
    assert_eq!(cfg.proxy.zone, None);
}

#[test]
fn health_ha_keys() {
    let health = "max_replica_lag_s = 0\nfailover = \"follow\"\nrequire_semi_sync = true\n\
                  rejoin = \"replica\"\nfailover_buffer_ms = 0";
    let cfg = Doc { health, ..Doc::default() }.ok();
    let h = &cfg.health;
    assert_eq!((h.max_replica_lag_s, h.failover, h.require_semi_sync), (0, FailoverMode::Follow, true));
    assert_eq!((h.rejoin, h.failover_buffer_ms), (RejoinMode::Replica, 0));
    assert_eq!(Doc { health: "failover = \"off\"", ..Doc::default() }.ok().health.failover, FailoverMode::Off);
    let m = parse_error(&Doc { health: "failover = \"manual\"", ..Doc::default() });
    assert!(m.contains("failover") && m.contains("promote") && m.contains("follow"), "{m}");
    let m = parse_error(&Doc { health: "rejoin = \"auto\"", ..Doc::default() });
    assert!(m.contains("rejoin") && m.contains("manual") && m.contains("replica"), "{m}");
    let m = parse_error(&Doc { health: "max_replica_lag_s = -1", ..Doc::default() });
    assert!(m.contains("max_replica_lag_s"), "{m}");
}

#[test]
fn servers_as_strings_or_inline_tables_with_zone() {
    let s = "[[shards]]\nname = \"s0\"\nprimary = { addr = \"10.0.0.1:3306\", zone = \"dc1\" }\n\
             replicas = [\"10.0.0.2:3306\", { addr = \"10.0.0.3:3306\", zone = \"dc2\" }, { addr = \"10.0.0.4:3306\" }]\n";
    let cfg = shards(s).ok();
    let zone = |z: &str| Some(z.to_string());
    assert_eq!(cfg.shards[0].primary, Server { addr: "10.0.0.1:3306".into(), zone: zone("dc1") });
    let replicas: Vec<_> = cfg.shards[0].replicas.iter().map(|r| (r.addr.as_str(), r.zone.clone())).collect();
    assert_eq!(replicas, [("10.0.0.2:3306", None), ("10.0.0.3:3306", zone("dc2")), ("10.0.0.4:3306", None)]);
}

#[test]
fn inline_server_tables_are_checked() {
    let one = |server: &str| format!("[[shards]]\nname = \"s0\"\nprimary = \"a:1\"\nreplicas = [{server}]\n");
    let s = one("{ addr = \"b:1\", zone = \"\" }");
    shards(&s).fails("shards[0].replicas[0].zone", &["not a zone name"]);
    let s = one("{ addr = \"b:1\", zone = \" dc1\" }");
    shards(&s).fails("shards[0].replicas[0].zone", &["surrounding spaces"]);
    let s = one("{ addr = \"b\", zone = \"dc1\" }");
    shards(&s).fails("shards[0].replicas[0].addr", &["not host:port"]);
    let s = one("{ addr = \"a:1\", zone = \"dc1\" }");
    shards(&s).fails("shards[0].replicas[0].addr", &["already listed as shards[0].primary"]);
    let m = parse_error(&shards(&one("{ adr = \"b:1\" }")));
    assert!(m.contains("adr") && m.contains("addr"), "an unknown key names the known ones: {m}");
    let m = parse_error(&shards(&one("{ zone = \"dc1\" }")));
    assert!(m.contains("addr"), "addr is required: {m}");
    let m = parse_error(&shards(&one("3306")));
    assert!(m.contains("host:port"), "{m}");
}

#[test]
fn active_active_primaries() {
    let s = "[[shards]]\nname = \"s0\"\nprimaries = [{ addr = \"dc1-db:3306\", zone = \"dc1\" }, \
             { addr = \"dc2-db:3306\", zone = \"dc2\" }]\nreplicas = [\"dc1-r:3306\"]\n";
    let cfg = shards(s).ok();
    let s0 = &cfg.shards[0];
    assert_eq!(s0.primary.addr, "dc1-db:3306", "writes go to the first");
    assert_eq!(s0.standby.as_ref().map(|b| b.addr.as_str()), Some("dc2-db:3306"));
    assert_eq!(s0.standby.as_ref().and_then(|b| b.zone.as_deref()), Some("dc2"));
    assert_eq!(s0.replicas.len(), 1);
}

#[test]
fn exactly_one_of_primary_and_primaries() {
    let s = "[[shards]]\nname = \"s0\"\nprimary = \"a:1\"\nprimaries = [\"b:1\", \"c:1\"]\n";
    shards(s).fails("shards[0]", &["both primary and primaries"]);
    let s = "[[shards]]\nname = \"s0\"\nreplicas = [\"b:1\"]\n";
    shards(s).fails("shards[0]", &["needs primary"]);
    for (list, n) in [("[]", "0"), ("[\"a:1\"]", "1"), ("[\"a:1\", \"b:1\", \"c:1\"]", "3")] {
        let s = format!("[[shards]]\nname = \"s0\"\nprimaries = {list}\n");
        shards(&s).fails("shards[0].primaries", &[&format!("lists {n} server"), "exactly two"]);
    }
    let s = "[[shards]]\nname = \"s0\"\nprimaries = [\"a:1\", \"A:1\"]\n";
    shards(s).fails("shards[0].primaries[1]", &["already listed as shards[0].primaries[0]"]);
    let s = "[[shards]]\nname = \"s0\"\nprimaries = [\"a:1\", \"b:1\"]\nreplicas = [\"b:1\"]\n";
    shards(s).fails("shards[0].replicas[0]", &["already listed as shards[0].primaries[1]"]);
    let s = "[[shards]]\nname = \"s0\"\nprimaries = [\"a:1\", \"b\"]\n";
    shards(s).fails("shards[0].primaries[1]", &["not host:port"]);
}

#[test]
fn proxy_zone_must_be_a_backend_zone() {
    let zoned = "[[shards]]\nname = \"s0\"\nprimary = { addr = \"a:1\", zone = \"dc1\" }\n\
                 replicas = [{ addr = \"b:1\", zone = \"dc2\" }]\n";
    let proxy = |zone: &str| format!("{PROXY}zone = \"{zone}\"\n");
    let p = proxy("dc2");
    assert_eq!(Doc { proxy: &p, shards: zoned, ..Doc::default() }.ok().proxy.zone.as_deref(), Some("dc2"));
    let p = proxy("dc3");
    Doc { proxy: &p, shards: zoned, ..Doc::default() }.fails("proxy.zone", &["\"dc3\"", "zones: dc1, dc2"]);
    Doc { proxy: &p, ..Doc::default() }.fails("proxy.zone", &["no backend has a zone"]);
    let p = proxy("");
    Doc { proxy: &p, shards: zoned, ..Doc::default() }.fails("proxy.zone", &["not a zone name"]);
}
