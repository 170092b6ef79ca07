//! Replacing a dead primary, and fencing the one that was replaced.
//!
//! Runs in the health loop, once per probe interval, on the probe reports
//! ([`super::latest`]) and the hysteresis flags, so a primary counts as dead
//! only after `down_after` consecutive failed probes:
//! - `promote`: pick the replica holding the most transactions, let it apply
//!   what it received, make it writable, repoint the other replicas, switch
//!   writes ([`Failover::promote`]). With `require_semi_sync`, only when the
//!   primary was last seen with semi-sync on and the candidate acknowledges it.
//! - `follow`: writes go to whichever server of the shard is writable
//!   (`read_only = OFF`); two writable servers refuse writes.
//! - Active-active (`primaries`): writes flip to the standby, no promotion.
//! - Fencing: a replaced primary that answers again is set read_only and never
//!   routed to; `rejoin = "replica"` re-attaches it to the new primary unless
//!   it holds transactions the new primary lacks (errant GTIDs, logged).
//!
//! The statements for each flavor are built by pure functions ([`sql`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::gtid::GtidSet;
use super::probe::{ProbeReport, Prober, Replication};
use crate::admin::metrics::FailoverResult;
use crate::backend::cluster::{Backend, ShardNodes};
use crate::backend::conn::{BackendConn, Login};
use crate::config::{Config, FailoverMode, Flavor, RejoinMode};
use crate::frontend::Shared;

/// Longest wait for a candidate to apply its relay log before promotion.
const APPLY_TIMEOUT_S: u64 = 30;

/// State kept between ticks.
#[derive(Default)]
pub struct Failover {
    /// Per shard: the last report of its primary that was reachable (semi-sync
    /// state and GTID position at the time it was last seen alive).
    last_alive: HashMap<String, Arc<ProbeReport>>,
    /// Messages already logged (errant GTIDs, refusals), so a condition that
    /// lasts is logged once.
    said: HashSet<String>,
    /// Replaced primary -> the GTID position the new primary had applied when
    /// it was promoted. The old primary may rejoin only if it holds nothing
    /// beyond it: comparing with the new primary's current position is not
    /// enough on MariaDB, where a later write there has a higher sequence
    /// number than an errant transaction of the old one.
    promoted_at: HashMap<String, String>,
}

impl Failover {
    /// One round over every shard.
    pub async fn tick(&mut self, shared: &Arc<Shared>) {
        let cfg = shared.config.load();
        let cluster = shared.cluster.load_full();
        for nodes in &cluster.shards {
            let report = super::latest(&nodes.primary);
            if report.reachable {
                self.last_alive.insert(nodes.name.clone(), report);
            }
            if cfg.health.failover == FailoverMode::Off {
                continue;
            }
            if nodes.standby.is_some() {
                self.flip_pair(shared, &cfg, nodes).await;
            } else if cfg.health.failover == FailoverMode::Follow {
                self.follow(shared, nodes);
            } else if !nodes.primary.is_up() && nodes.writes_refused.is_none() {
                self.promote(shared, &cfg, nodes).await;
            } else if nodes.primary.is_up() && nodes.writes_refused.is_some() {
                // A refused failover's primary came back: it takes writes again.
                tracing::warn!(shard = %nodes.name, primary = %nodes.primary.addr, "primary is back: writes resume");
                shared.set_topology(|t| {
                    t.refused.remove(&nodes.name);
                });
                self.said.retain(|k| !k.ends_with(&format!(":{}", nodes.name)));
            }
            for old in &nodes.fenced {
                self.fence(shared, &cfg, nodes, old).await;
            }
        }
    }

    fn say_once(&mut self, key: String) -> bool {
        self.said.insert(key)
    }

    /// Active-active: the active primary is down and the standby is up: flip.
    async fn flip_pair(&mut self, shared: &Shared, cfg: &Config, nodes: &ShardNodes) {
        let Some(standby) = &nodes.standby else { return };
        if nodes.primary.is_up() || !standby.is_up() || nodes.draining {
            return;
        }
        let started = Instant::now();
        // A standby left read_only by an earlier switchover takes writes again.
        if super::latest(standby).read_only == Some(true) {
            let stmt = vec![sql::set_writable()];
            if let Err(e) = run_all(&standby.addr, &admin_login(cfg), &stmt).await {
                tracing::error!(shard = %nodes.name, standby = %standby.addr, error = %e,
                    "cannot make the standby writable; flipping anyway");
            }
        }
        tracing::warn!(shard = %nodes.name, from = %nodes.primary.addr, to = %standby.addr,
            "active primary is down: writes flip to the other primary");
        shared.set_topology(|t| {
            t.primary.insert(nodes.name.clone(), standby.addr.to_string());
        });
        shared.stats.failovers.fetch_add(1, Ordering::Relaxed);
        shared.metrics.failover(&nodes.name, FailoverResult::Ok, Some(started.elapsed()));
    }

    /// `follow`: writes go to the one writable server of the shard.
    fn follow(&mut self, shared: &Shared, nodes: &ShardNodes) {
        let writable: Vec<&Arc<Backend>> = std::iter::once(&nodes.primary)
            .chain(&nodes.replicas)
            .filter(|b| b.is_up() && super::latest(b).read_only == Some(false))
            .collect();
        let refused = match writable.as_slice() {
            [] => return, // nobody writable (yet): statements wait in the failover buffer
            [one] => {
                if one.addr != nodes.primary.addr {
                    tracing::warn!(shard = %nodes.name, from = %nodes.primary.addr, to = %one.addr,
                        "follow: another server of the shard is now the writable one; writes follow it");
                    shared.stats.failovers.fetch_add(1, Ordering::Relaxed);
                    shared.metrics.failover(&nodes.name, FailoverResult::Ok, None);
                }
                None
            }
            many => {
                let names: Vec<&str> = many.iter().map(|b| &*b.addr).collect();
                Some(format!("more than one server is writable (read_only = OFF): {}", names.join(", ")))
            }
        };
        let primary = writable.first().filter(|_| refused.is_none()).map(|b| b.addr.to_string());
        if primary.as_deref().is_some_and(|p| p != &*nodes.primary.addr)
            || refused.as_deref() != nodes.writes_refused.as_deref()
        {
            if let Some(why) = &refused {
                tracing::error!(shard = %nodes.name, reason = %why, "follow: writes refused");
            }
            shared.set_topology(|t| {
                if let Some(p) = primary {
                    t.primary.insert(nodes.name.clone(), p);
                }
                match refused {
                    Some(why) => t.refused.insert(nodes.name.clone(), why),
                    None => t.refused.remove(&nodes.name),
                };
            });
        }
    }

    /// `promote`: the primary is down (confirmed by `down_after` failed probes).
    async fn promote(&mut self, shared: &Shared, cfg: &Config, nodes: &ShardNodes) {
        let started = Instant::now();
        let flavor = cfg.backend.flavor;
        let login = admin_login(cfg);
        // One last look: a primary that answers now is only slow, never replaced.
        if let Ok(mut c) = BackendConn::connect(nodes.primary.addr.clone(), &login, 0, 0).await {
            if c.ping().await.is_ok() {
                tracing::info!(shard = %nodes.name, primary = %nodes.primary.addr,
                    "primary answers again: no failover");
                return;
            }
        }
        // Fresh reports, not the last periodic ones: a replica may have received
        // more since, and the candidate must be the one holding the most.
        let timeout = Duration::from_millis(cfg.health.timeout_ms);
        let mut fresh = Vec::new();
        for r in nodes.replicas.iter().filter(|r| r.is_up() && !r.fenced) {
            let report = Prober::default().probe(&r.addr, &login, flavor, timeout).await;
            if report.reachable {
                fresh.push((r, report));
            }
        }
        let Some((candidate, received)) = choose_candidate(flavor, &fresh) else {
            if self.say_once(format!("nocand:{}", nodes.name)) {
                tracing::error!(shard = %nodes.name, primary = %nodes.primary.addr,
                    "primary is down and no replica can be promoted (none reachable with a readable GTID position); writes wait");
                shared.stats.failovers_refused.fetch_add(1, Ordering::Relaxed);
                shared.metrics.failover(&nodes.name, FailoverResult::Refused, None);
            }
            return;
        };
        if cfg.health.require_semi_sync {
            if let Err(why) = semi_sync_safe(self.last_alive.get(&nodes.name).map(|r| &**r), &super::latest(candidate))
            {
                let why = format!("require_semi_sync: {why}; no replica is known to hold every acknowledged write");
                tracing::error!(shard = %nodes.name, candidate = %candidate.addr, reason = %why, "failover refused");
                shared.stats.failovers_refused.fetch_add(1, Ordering::Relaxed);
                shared.metrics.failover(&nodes.name, FailoverResult::Refused, None);
                shared.set_topology(|t| {
                    t.refused.insert(nodes.name.clone(), why);
                });
                return;
            }
        }
        tracing::warn!(shard = %nodes.name, primary = %nodes.primary.addr, candidate = %candidate.addr,
            received = %received, "primary is down: promoting a replica");
        let mut conn = match BackendConn::connect(candidate.addr.clone(), &login, 0, 0).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(shard = %nodes.name, candidate = %candidate.addr, error = %e, "cannot reach the candidate");
                shared.metrics.failover(&nodes.name, FailoverResult::Failed, None);
                return;
            }
        };
        // Apply everything received before replication is reset (RESET drops the relay log).
        match conn.query(&sql::wait_applied(flavor, &received, APPLY_TIMEOUT_S)).await {
            Ok((_, rows)) if first_cell(&rows).as_deref() == Some("0") => {}
            other => {
                tracing::error!(shard = %nodes.name, candidate = %candidate.addr, result = ?other.map(|r| first_cell(&r.1)),
                    "candidate did not apply its relay log in time: not promoted (will retry)");
                shared.metrics.failover(&nodes.name, FailoverResult::Failed, None);
                return;
            }
        }
        tracing::info!(shard = %nodes.name, candidate = %candidate.addr, after_ms = started.elapsed().as_millis() as u64,
            "candidate applied what it received");
        let semi_sync = self.last_alive.get(&nodes.name).is_some_and(|r| r.semi_sync.source_on == Some(true));
        for stmt in sql::promote(flavor, semi_sync) {
            tracing::debug!(statement = %stmt, after_ms = started.elapsed().as_millis() as u64, "promoting");
            if let Err(e) = conn.query(&stmt).await {
                tracing::error!(shard = %nodes.name, candidate = %candidate.addr, statement = %stmt, error = %e,
                    "promotion failed");
                shared.metrics.failover(&nodes.name, FailoverResult::Failed, None);
                return;
            }
        }
        // Writes go to the new primary from here on; the old one is fenced.
        self.promoted_at.insert(nodes.primary.addr.to_string(), received.clone());
        shared.set_topology(|t| {
            t.primary.insert(nodes.name.clone(), candidate.addr.to_string());
            t.fenced.insert(nodes.primary.addr.to_string());
            t.refused.remove(&nodes.name);
        });
        shared.stats.failovers.fetch_add(1, Ordering::Relaxed);
        shared.metrics.failover(&nodes.name, FailoverResult::Ok, Some(started.elapsed()));
        tracing::warn!(shard = %nodes.name, new_primary = %candidate.addr, old_primary = %nodes.primary.addr,
            took_ms = started.elapsed().as_millis() as u64, "failover done: writes go to the new primary");
        // The other replicas follow the new primary.
        let (host, port) = split_addr(&candidate.addr);
        let repl = cfg.backend.replication_user.as_deref().map(|u| (u, cfg.backend.replication_password.as_str()));
        for r in nodes.replicas.iter().filter(|r| r.addr != candidate.addr && r.is_up()) {
            let stmts = sql::repoint(flavor, host, port, repl, false, false);
            if let Err(e) = run_all(&r.addr, &login, &stmts).await {
                tracing::error!(replica = %r.addr, error = %e, "could not repoint the replica at the new primary");
            }
        }
    }

    /// A replaced primary: set it read_only when it answers, and rejoin it as
    /// a replica of the new primary if configured and safe.
    async fn fence(&mut self, shared: &Shared, cfg: &Config, nodes: &ShardNodes, old: &Arc<Backend>) {
        if !old.is_up() {
            return;
        }
        let report = super::latest(old);
        let login = admin_login(cfg);
        if report.read_only == Some(false) {
            match run_all(&old.addr, &login, &[sql::set_read_only(cfg.backend.flavor)]).await {
                Ok(()) => tracing::warn!(server = %old.addr, shard = %nodes.name,
                    "replaced primary is back: set read_only, it gets no statements"),
                Err(e) => {
                    tracing::error!(server = %old.addr, error = %e, "could not set the replaced primary read_only")
                }
            }
            return;
        }
        if cfg.health.rejoin != RejoinMode::Replica || !matches!(report.replication, Replication::NotReplica) {
            return;
        }
        let flavor = cfg.backend.flavor;
        let Some(reference) = self.promoted_at.get(&*old.addr).cloned() else {
            if self.say_once(format!("noref:{}", old.addr)) {
                tracing::warn!(server = %old.addr, shard = %nodes.name,
                    "replaced primary: this proxy did not promote its successor, so it cannot tell errant transactions; left fenced for an operator");
            }
            return;
        };
        let (Some(old_pos), Some(new_pos)) = (
            report.gtid_executed.as_deref().and_then(|p| GtidSet::parse(flavor, p)),
            GtidSet::parse(flavor, &reference),
        ) else {
            return;
        };
        if !new_pos.contains(&old_pos) {
            if self.say_once(format!("errant:{}", old.addr)) {
                tracing::error!(server = %old.addr, shard = %nodes.name, errant = %old_pos.missing_from(&new_pos),
                    "replaced primary holds transactions the new primary lacks (errant GTIDs): not rejoined; an operator must decide");
                shared.stats.errant_fenced.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let Some(user) = cfg.backend.replication_user.as_deref() else {
            if self.say_once(format!("norepl:{}", old.addr)) {
                tracing::warn!(server = %old.addr, "rejoin = \"replica\" needs backend.replication_user: left fenced");
            }
            return;
        };
        let (host, port) = split_addr(&nodes.primary.addr);
        // An old primary's source side of semi-sync must go off, or its SQL thread waits for acks.
        let semi_sync = report.semi_sync.source_on.is_some();
        let account = Some((user, cfg.backend.replication_password.as_str()));
        let stmts = sql::repoint(flavor, host, port, account, true, semi_sync);
        match run_all(&old.addr, &login, &stmts).await {
            Ok(()) => {
                tracing::warn!(server = %old.addr, new_primary = %nodes.primary.addr, "replaced primary rejoined as a replica");
                self.promoted_at.remove(&*old.addr);
                shared.set_topology(|t| {
                    t.fenced.remove(&*old.addr);
                });
            }
            Err(e) => tracing::error!(server = %old.addr, error = %e, "rejoin failed"),
        }
    }
}

/// The replica to promote: reachable, replicating state readable, holding the
/// most received transactions. Returns it with its received GTID position.
fn choose_candidate<'a>(
    flavor: Flavor,
    replicas: &[(&'a Arc<Backend>, ProbeReport)],
) -> Option<(&'a Arc<Backend>, String)> {
    let mut best: Option<(&Arc<Backend>, String, GtidSet)> = None;
    for (r, report) in replicas {
        let Replication::Replica(status) = &report.replication else { continue };
        // Received, not just applied: the candidate applies the rest before promotion.
        let Some(text) = status.gtid_received.clone().or_else(|| report.gtid_executed.clone()) else { continue };
        let Some(set) = GtidSet::parse(flavor, &text) else { continue };
        let better = match &best {
            None => true,
            // Strictly more; or, for positions that diverged, more transactions.
            Some((_, _, b)) => match (set.contains(b), b.contains(&set)) {
                (true, false) => true,
                (false, false) => set.count() > b.count(),
                _ => false,
            },
        };
        if better {
            best = Some((r, text, set));
        }
    }
    best.map(|(r, t, _)| (r, t))
}

/// RPO = 0: the old primary was last seen with semi-sync on and at least one
/// replica acknowledging, and the candidate acknowledges semi-sync.
fn semi_sync_safe(primary: Option<&ProbeReport>, candidate: &ProbeReport) -> Result<(), String> {
    let Some(p) = primary else { return Err("the primary was never seen alive".into()) };
    if p.semi_sync.source_on != Some(true) {
        return Err(format!("semi-sync was not on at the primary when last seen (status {:?})", p.semi_sync.source_on));
    }
    if p.semi_sync.source_clients.unwrap_or(0) == 0 {
        return Err("no replica was acknowledging semi-sync at the primary".into());
    }
    if candidate.semi_sync.replica_on != Some(true) {
        return Err("the candidate does not acknowledge semi-sync".into());
    }
    Ok(())
}

/// How shardgate logs in for operator work (failover, XA recovery).
pub fn admin_login(cfg: &Config) -> Login {
    let (user, password) = cfg.backend.admin_account();
    Login {
        user: user.to_owned(),
        password: password.to_owned(),
        database: String::new(),
        connect_timeout: Duration::from_millis(cfg.health.timeout_ms.max(1000)),
        tls: crate::backend::tls::policy(cfg),
    }
}

pub(super) async fn run_all(addr: &Arc<str>, login: &Login, stmts: &[String]) -> Result<(), String> {
    let mut c = BackendConn::connect(addr.clone(), login, 0, 0).await.map_err(|e| e.to_string())?;
    for s in stmts {
        c.query(s).await.map_err(|e| format!("{s}: {e}"))?;
    }
    Ok(())
}

pub(super) fn first_cell(rows: &crate::backend::control::Rows) -> Option<String> {
    rows.first().and_then(|r| r.first()).and_then(|c| c.as_ref()).map(|c| String::from_utf8_lossy(c).into_owned())
}

/// `host:port` split at the last colon (port 3306 if none).
fn split_addr(addr: &str) -> (&str, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().unwrap_or(3306)),
        None => (addr, 3306),
    }
}

/// Failover statements per flavor (MariaDB tested here; MySQL written from its manual).
pub mod sql {
    use crate::config::Flavor;

    fn quote(s: &str) -> String {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    }

    /// Wait until `received` is applied; the result is 0 when it is, -1 (MariaDB)
    /// or 1 (MySQL) on timeout.
    pub fn wait_applied(flavor: Flavor, received: &str, timeout_s: u64) -> String {
        match flavor {
            Flavor::Mariadb => format!("SELECT MASTER_GTID_WAIT({}, {timeout_s})", quote(received)),
            Flavor::Mysql => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {timeout_s})", quote(received)),
        }
    }

    /// Make a replica a writable primary; `semi_sync`: the old primary ran
    /// semi-sync as a source, so the new one does too.
    pub fn promote(flavor: Flavor, semi_sync: bool) -> Vec<String> {
        let mut v: Vec<String> = match flavor {
            Flavor::Mariadb => vec!["STOP SLAVE".into(), "RESET SLAVE ALL".into(), "SET GLOBAL read_only = OFF".into()],
            Flavor::Mysql => vec![
                "STOP REPLICA".into(),
                "RESET REPLICA ALL".into(),
                "SET GLOBAL super_read_only = OFF".into(),
                "SET GLOBAL read_only = OFF".into(),
            ],
        };
        if semi_sync {
            v.push(semi_sync_source(flavor, true));
        }
        v
    }

    /// Semi-sync on the source side (a replica must not have it on: its SQL
    /// thread would wait for acks nobody sends).
    pub fn semi_sync_source(flavor: Flavor, on: bool) -> String {
        let var = match flavor {
            Flavor::Mariadb => "rpl_semi_sync_master_enabled",
            Flavor::Mysql => "rpl_semi_sync_source_enabled",
        };
        format!("SET GLOBAL {var} = {}", if on { "ON" } else { "OFF" })
    }

    /// Writable again. On MySQL turning read_only off turns super_read_only off too.
    pub fn set_writable() -> String {
        "SET GLOBAL read_only = OFF".into()
    }

    pub fn set_read_only(flavor: Flavor) -> String {
        match flavor {
            Flavor::Mariadb => "SET GLOBAL read_only = ON".into(),
            Flavor::Mysql => "SET GLOBAL super_read_only = ON".into(),
        }
    }

    /// Point a server at a (new) primary and start replicating. `was_primary`:
    /// a former primary (MariaDB then starts from its own current position;
    /// `semi_sync`: its source side of semi-sync is turned off).
    pub fn repoint(
        flavor: Flavor,
        host: &str,
        port: u16,
        account: Option<(&str, &str)>,
        was_primary: bool,
        semi_sync: bool,
    ) -> Vec<String> {
        let mut v = repoint_only(flavor, host, port, account, was_primary);
        if was_primary && semi_sync {
            v.insert(1, semi_sync_source(flavor, false));
        }
        v
    }

    fn repoint_only(
        flavor: Flavor,
        host: &str,
        port: u16,
        account: Option<(&str, &str)>,
        was_primary: bool,
    ) -> Vec<String> {
        match flavor {
            Flavor::Mariadb => {
                let mut change = format!("CHANGE MASTER TO MASTER_HOST = {}, MASTER_PORT = {port}", quote(host));
                if let Some((u, p)) = account {
                    change.push_str(&format!(", MASTER_USER = {}, MASTER_PASSWORD = {}", quote(u), quote(p)));
                }
                let pos = if was_primary { "current_pos" } else { "slave_pos" };
                change.push_str(&format!(", MASTER_USE_GTID = {pos}"));
                let mut v = vec!["STOP SLAVE".into(), change, "START SLAVE".into()];
                if was_primary {
                    v.insert(0, "SET GLOBAL read_only = ON".into());
                }
                v
            }
            Flavor::Mysql => {
                let mut change =
                    format!("CHANGE REPLICATION SOURCE TO SOURCE_HOST = {}, SOURCE_PORT = {port}", quote(host));
                if let Some((u, p)) = account {
                    change.push_str(&format!(", SOURCE_USER = {}, SOURCE_PASSWORD = {}", quote(u), quote(p)));
                }
                change.push_str(", SOURCE_AUTO_POSITION = 1");
                let mut v = vec!["STOP REPLICA".into(), change, "START REPLICA".into()];
                if was_primary {
                    v.insert(0, "SET GLOBAL super_read_only = ON".into());
                }
                v
            }
        }
    }
}

#[cfg(test)]
#[path = "failover_tests.rs"]
mod tests;
