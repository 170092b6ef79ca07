//! What failover changed relative to the config: per shard, which server now
//! takes writes, and which servers are fenced (a replaced primary that must
//! never be written to again until an operator, or `rejoin = "replica"`,
//! makes it a replica).
//!
//! The cluster is rebuilt from (config, topology) whenever either changes, so
//! a config reload keeps the failover's outcome. Pure: unit tested below.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Server, Shard};

/// Runtime changes to the configured roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    /// Shard name -> address of the server that takes writes now (only
    /// entries that differ from the config's primary).
    pub primary: BTreeMap<String, String>,
    /// Addresses of fenced servers: probed, never routed to.
    pub fenced: BTreeSet<String>,
    /// Shard name -> why writes are refused (two writable servers in `follow`
    /// mode, or no candidate qualified for promotion).
    pub refused: BTreeMap<String, String>,
    /// Shard names whose writes are held back during a planned switchover.
    pub draining: BTreeSet<String>,
}

/// One shard's servers by their current role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub primary: Server,
    /// Active-active: the other primary (hot standby, serves reads).
    pub standby: Option<Server>,
    pub replicas: Vec<Server>,
    /// Replaced primaries, kept only to be probed (and fenced).
    pub fenced: Vec<Server>,
}

impl Topology {
    /// The roles of `shard`'s servers after the failovers recorded here. An
    /// override naming a server that is no longer in the shard is ignored.
    pub fn layout(&self, shard: &Shard) -> Layout {
        let mut all: Vec<Server> =
            std::iter::once(&shard.primary).chain(shard.standby.iter()).chain(shard.replicas.iter()).cloned().collect();
        let primary_addr = self
            .primary
            .get(&shard.name)
            .filter(|a| all.iter().any(|s| &s.addr == *a))
            .cloned()
            .unwrap_or_else(|| shard.primary.addr.clone());
        let pos = all.iter().position(|s| s.addr == primary_addr).unwrap_or(0);
        let primary = all.remove(pos);
        // Active-active: the configured pair stays a pair, whichever side is active.
        let pair: Vec<&str> = std::iter::once(&shard.primary).chain(shard.standby.iter()).map(|s| &*s.addr).collect();
        let mut standby = None;
        let mut replicas = Vec::new();
        let mut fenced = Vec::new();
        for s in all {
            if self.fenced.contains(&s.addr) {
                fenced.push(s);
            } else if shard.standby.is_some() && pair.contains(&&*s.addr) && pair.contains(&&*primary.addr) {
                standby = Some(s);
            } else {
                replicas.push(s);
            }
        }
        Layout { primary, standby, replicas, fenced }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(a: &str) -> Server {
        Server { addr: a.into(), zone: None }
    }
    fn shard(primary: &str, standby: Option<&str>, replicas: &[&str]) -> Shard {
        Shard {
            tls: false,
            name: "s0".into(),
            primary: server(primary),
            standby: standby.map(server),
            replicas: replicas.iter().map(|r| server(r)).collect(),
            key_range: crate::config::KeyRange { start: 0, end: None },
        }
    }
    fn addrs(v: &[Server]) -> Vec<&str> {
        v.iter().map(|s| &*s.addr).collect()
    }

    #[test]
    fn no_changes_means_the_config() {
        let l = Topology::default().layout(&shard("p", None, &["r1", "r2"]));
        assert_eq!((&*l.primary.addr, addrs(&l.replicas), l.fenced.len()), ("p", vec!["r1", "r2"], 0));
    }

    #[test]
    fn a_promoted_replica_takes_writes_and_the_old_primary_is_fenced() {
        let mut t = Topology::default();
        t.primary.insert("s0".into(), "r2".into());
        t.fenced.insert("p".into());
        let l = t.layout(&shard("p", None, &["r1", "r2"]));
        assert_eq!((&*l.primary.addr, addrs(&l.replicas), addrs(&l.fenced)), ("r2", vec!["r1"], vec!["p"]));
        // Rejoined: no longer fenced, a replica of the new primary.
        t.fenced.clear();
        let l = t.layout(&shard("p", None, &["r1", "r2"]));
        assert_eq!((&*l.primary.addr, addrs(&l.replicas)), ("r2", vec!["p", "r1"]));
    }

    #[test]
    fn active_active_flips_within_the_pair() {
        let mut t = Topology::default();
        t.primary.insert("s0".into(), "b".into());
        let l = t.layout(&shard("a", Some("b"), &["ra", "rb"]));
        assert_eq!(&*l.primary.addr, "b");
        assert_eq!(l.standby.map(|s| s.addr), Some("a".to_string()));
        assert_eq!(addrs(&l.replicas), vec!["ra", "rb"]);
    }

    #[test]
    fn an_override_for_a_server_no_longer_configured_is_ignored() {
        let mut t = Topology::default();
        t.primary.insert("s0".into(), "gone".into());
        assert_eq!(&*t.layout(&shard("p", None, &["r1"])).primary.addr, "p");
    }
}
