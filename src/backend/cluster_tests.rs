//! Read routing over the health flags: fit replicas only, same zone first,
//! the primary when none is fit, a stale replica only as a last resort.

use super::*;
use crate::config::validate::parse;

/// One shard: primary p (dc1), replicas r1 (dc1), r2 (dc2), r3 (no zone).
fn cluster(proxy_zone: Option<&str>) -> Cluster {
    let zone = proxy_zone.map(|z| format!("zone = \"{z}\"\n")).unwrap_or_default();
    let text = format!(
        "[proxy]\nlisten = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"\n{zone}\
         [backend]\nuser = \"app\"\ndatabase = \"app\"\n\
         [[users]]\nname = \"app\"\npassword = \"app\"\n\
         [[shards]]\nname = \"s0\"\nprimary = {{ addr = \"p:1\", zone = \"dc1\" }}\n\
         replicas = [{{ addr = \"r1:1\", zone = \"dc1\" }}, {{ addr = \"r2:1\", zone = \"dc2\" }}, \"r3:1\"]\n"
    );
    Cluster::build(&parse(&text).unwrap(), None)
}

fn set(c: &Cluster, addr: &str, up: bool, fit: bool) {
    let b = c.backend(addr).unwrap();
    b.up.store(up, Ordering::Relaxed);
    b.fit.store(fit, Ordering::Relaxed);
}

/// The servers `pick_replica` returns over many calls.
fn picks(c: &Cluster) -> std::collections::BTreeSet<String> {
    (0..12).filter_map(|_| c.shards[0].pick_replica()).map(|b| b.addr.to_string()).collect()
}

fn names(targets: [Option<&Arc<Backend>>; 2]) -> Vec<String> {
    targets.into_iter().flatten().map(|b| b.addr.to_string()).collect()
}

#[test]
fn new_servers_are_up_but_not_fit_until_probed() {
    let c = cluster(None);
    assert!(c.backends().all(|b| b.is_up() && !b.fit_for_reads()));
    assert!(c.shards[0].pick_replica().is_none());
    assert!(crate::health::latest(&c.shards[0].primary).at.is_none());
}

#[test]
fn only_fit_replicas_rotate() {
    let c = cluster(None);
    for r in ["r1:1", "r2:1", "r3:1"] {
        set(&c, r, true, true);
    }
    assert_eq!(picks(&c), ["r1:1", "r2:1", "r3:1"].map(String::from).into());
    set(&c, "r2:1", true, false);
    set(&c, "r3:1", false, true);
    assert_eq!(picks(&c), ["r1:1".to_string()].into(), "unfit and down replicas leave the rotation");
}

#[test]
fn same_zone_first_then_any_fit() {
    let c = cluster(Some("dc1"));
    for r in ["r1:1", "r2:1", "r3:1"] {
        set(&c, r, true, true);
    }
    assert_eq!(picks(&c), ["r1:1".to_string()].into(), "the proxy's zone is preferred");
    set(&c, "r1:1", true, false);
    assert_eq!(picks(&c), ["r2:1", "r3:1"].map(String::from).into(), "other zones when none local is fit");
    let c = cluster(None);
    assert!(c.backends().all(|b| b.local), "no proxy zone: no preference");
}

#[test]
fn reads_go_to_the_primary_when_none_is_fit() {
    let c = cluster(None);
    for r in ["r1:1", "r2:1", "r3:1"] {
        set(&c, r, false, false);
    }
    assert_eq!(names(c.shards[0].read_candidates()), ["p:1"]);
    set(&c, "r2:1", true, true);
    assert_eq!(names(c.shards[0].read_candidates()), ["r2:1", "p:1"], "a fit replica, the primary as fallback");
    set(&c, "r2:1", true, false);
    assert_eq!(
        names(c.shards[0].read_candidates()),
        ["p:1", "r2:1"],
        "none fit: the primary, a stale replica only if it fails"
    );
    set(&c, "p:1", false, false);
    assert_eq!(names(c.shards[0].read_candidates()), ["r2:1", "p:1"], "primary down: the stale replica first");
}

#[test]
fn a_rebuild_keeps_health_state() {
    let c = cluster(None);
    set(&c, "r1:1", true, true);
    set(&c, "r2:1", false, false);
    let cfg = parse(
        "[proxy]\nlisten = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"\n[backend]\nuser = \"app\"\ndatabase = \"app\"\n\
         [[users]]\nname = \"app\"\npassword = \"app\"\n[[shards]]\nname = \"s0\"\nprimary = \"p:1\"\n\
         replicas = [\"r1:1\", \"r2:1\", \"r4:1\"]\n",
    )
    .unwrap();
    let rebuilt = Cluster::build(&cfg, Some(&c));
    assert!(rebuilt.backend("r1:1").unwrap().fit_for_reads());
    assert!(!rebuilt.backend("r2:1").unwrap().is_up());
    assert!(rebuilt.backend("r4:1").unwrap().is_up() && !rebuilt.backend("r4:1").unwrap().fit_for_reads());
    assert!(Arc::ptr_eq(&rebuilt.backend("r1:1").unwrap().pool, &c.backend("r1:1").unwrap().pool));
}

#[test]
fn the_standby_primary_is_probed_and_reads_like_a_replica() {
    let cfg = parse(
        "[proxy]\nlisten = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"\n[backend]\nuser = \"app\"\ndatabase = \"app\"\n\
         [[users]]\nname = \"app\"\npassword = \"app\"\n[[shards]]\nname = \"s0\"\nprimaries = [\"a:1\", \"b:1\"]\n",
    )
    .unwrap();
    let c = Cluster::build(&cfg, None);
    let addrs: Vec<&str> = c.backends().map(|b| &*b.addr).collect();
    assert_eq!(addrs, ["a:1", "b:1"]);
    assert_eq!(&*c.shards[0].primary.addr, "a:1");
    set(&c, "b:1", true, true);
    assert_eq!(c.shards[0].pick_replica().map(|b| &*b.addr), Some("b:1"));
}
