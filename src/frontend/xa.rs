//! Atomic cross-shard transactions (`proxy.transactions = "xa"`).
//!
//! Every shard a transaction touches runs it as an XA branch
//! (`XA START 'gtrid','shard'`). COMMIT of one branch is `XA COMMIT ... ONE
//! PHASE`. With several: `XA END` + `XA PREPARE` on each; if all prepared, the
//! decision is written to `shardgate_xa_log` on the default shard's primary
//! (a row keyed by gtrid: the commit point), then `XA COMMIT` on each. Any
//! PREPARE failing rolls every branch back.
//!
//! Recovery (at startup, then every few seconds) reads `XA RECOVER` on every
//! primary and settles shardgate's prepared branches by the log: `commit` →
//! XA COMMIT, `rollback` → XA ROLLBACK, no row → the coordinator is presumed
//! dead once the branch is older than the grace period (or it was this
//! proxy's previous run): recovery inserts `rollback` first, so a coordinator
//! that is alive after all finds the row taken and rolls back too. The
//! primary key on gtrid makes the decision atomic between any number of
//! proxies.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::errors::{Failure, MyErr};
use super::session::Session;
use super::txn::Held;
use super::Shared;
use crate::backend::conn::BackendConn;
use crate::backend::pool::PooledConn;
use crate::backend::state::SessionVars;
use crate::backend::BackendError;
use crate::config::TransactionMode;

/// The decision log, in `backend.database` on the default shard.
pub const LOG_TABLE: &str = "shardgate_xa_log";
/// Prepared branches of another (maybe live) proxy are left alone this long.
pub const RECOVERY_GRACE: Duration = Duration::from_secs(30);
/// How often recovery looks for in-doubt branches.
pub const RECOVERY_INTERVAL: Duration = Duration::from_secs(5);

/// Every gtrid shardgate makes starts with this.
const PREFIX: &str = "sg-";

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Names gtrids for one proxy process: `sg-<name>-<start ms>-<n>`.
pub struct XaIds {
    name: String,
    started_ms: u64,
    next: AtomicU64,
    table_ready: AtomicBool,
}

impl XaIds {
    pub fn new(name: &str) -> XaIds {
        let mut clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(24).collect();
        if clean.is_empty() {
            clean.push_str("shardgate");
        }
        XaIds { name: clean, started_ms: now_ms(), next: AtomicU64::new(1), table_ready: AtomicBool::new(false) }
    }

    /// A new transaction id.
    pub fn next_gtrid(&self) -> String {
        format!("{PREFIX}{}-{}-{}", self.name, self.started_ms, self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// `'gtrid','bqual'` for shard `shard`'s branch.
pub fn xid(gtrid: &str, shard: usize) -> String {
    format!("'{gtrid}','{shard}'")
}

/// A test hook: `SHARDGATE_XA_CRASH=<step>` makes the process abort at that
/// step of a commit (after_prepare, after_decision, after_first_commit), so
/// tests can kill the coordinator exactly there.
fn crash_point(step: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    if AT.get_or_init(|| std::env::var("SHARDGATE_XA_CRASH").ok()).as_deref() == Some(step) {
        eprintln!("shardgate: SHARDGATE_XA_CRASH={step}: aborting");
        std::process::abort();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Commit,
    Rollback,
}

impl Decision {
    fn word(self) -> &'static str {
        match self {
            Decision::Commit => "commit",
            Decision::Rollback => "rollback",
        }
    }
}

fn xa_error(what: impl Into<String>) -> MyErr {
    MyErr::new(1402, "XA100", what)
}

impl Session {
    /// A gtrid for a new transaction when XA is on (not for READ ONLY ones: they write nothing).
    pub(crate) fn new_xa_gtrid(&self, begin_sql: Option<&str>) -> Option<String> {
        let cfg = self.shared.config.load();
        let read_only = begin_sql.is_some_and(|s| s.to_ascii_uppercase().contains("READ ONLY"));
        (cfg.proxy.transactions == TransactionMode::Xa && !read_only).then(|| self.shared.xa.next_gtrid())
    }

    /// Finish an XA transaction on its branches. Returns the connections to put back.
    pub(crate) async fn xa_end(
        &mut self,
        mut branches: Vec<Held>,
        gtrid: &str,
        commit: bool,
    ) -> (Result<(), Failure>, Vec<Held>) {
        let result = if !commit {
            rollback_all(&mut branches, gtrid, false).await;
            Ok(())
        } else if branches.len() <= 1 {
            one_phase(&mut branches, gtrid).await
        } else {
            self.two_phase(&mut branches, gtrid).await
        };
        (result.map_err(Failure::from), branches)
    }

    async fn two_phase(&self, branches: &mut [Held], gtrid: &str) -> Result<(), MyErr> {
        // Phase 1, all shards at once: XA END and XA PREPARE pipelined on each.
        for h in branches.iter_mut() {
            let x = xid(gtrid, h.shard);
            h.conn.queue_command_parts(crate::protocol::command::QUERY, format!("XA END {x}").as_bytes());
            h.conn.queue_command_parts(crate::protocol::command::QUERY, format!("XA PREPARE {x}").as_bytes());
        }
        let mut failed: Option<(usize, BackendError)> = None;
        for h in branches.iter_mut() {
            let mut r = h.conn.flush().await;
            for _ in 0..2 {
                let read = match &r {
                    Ok(()) => h.conn.read_response().await.map(|_| ()),
                    Err(_) => break,
                };
                if read.is_err() {
                    r = read;
                }
            }
            if let Err(e) = r {
                if !matches!(e, BackendError::Server(_)) {
                    h.conn.broken = true;
                }
                failed.get_or_insert((h.shard, e));
            }
        }
        let cfg = self.shared.config.load();
        if let Some((shard, e)) = failed {
            rollback_all(branches, gtrid, true).await;
            return Err(xa_error(format!(
                "XA_RBROLLBACK: the transaction was rolled back on every shard: shard {} could not prepare it ({})",
                cfg.shards[shard].name,
                MyErr::from_backend(&e).message
            )));
        }
        crash_point("after_prepare");
        match self.shared.xa_decide(gtrid, Decision::Commit).await {
            Ok(Decision::Commit) => {}
            Ok(Decision::Rollback) => {
                rollback_all(branches, gtrid, true).await;
                return Err(xa_error(
                    "XA_RBROLLBACK: the transaction was rolled back: recovery decided so while this commit was slow",
                ));
            }
            Err(e) => {
                // The outcome is in the log or will be decided by recovery; branches stay prepared.
                for h in branches.iter_mut() {
                    h.conn.broken = true;
                }
                return Err(MyErr::new(
                    1180,
                    "HY000",
                    format!(
                        "Got error during COMMIT: shardgate could not record the commit decision ({e}); \
                         the transaction is prepared on every shard and recovery will settle it from {LOG_TABLE}"
                    ),
                ));
            }
        }
        crash_point("after_decision");
        let mut pending = false;
        for (n, h) in branches.iter_mut().enumerate() {
            if let Err(e) = h.conn.query(&format!("XA COMMIT {}", xid(gtrid, h.shard))).await {
                tracing::warn!(gtrid, shard = h.shard, error = %e, "XA COMMIT failed; recovery will complete it");
                h.conn.broken = true;
                pending = true;
            }
            if n == 0 {
                crash_point("after_first_commit");
            }
        }
        if !pending {
            self.shared.xa_forget(gtrid.to_owned());
        }
        // Committed: the decision is durable and recovery finishes any branch left.
        Ok(())
    }
}

async fn one_phase(branches: &mut [Held], gtrid: &str) -> Result<(), MyErr> {
    let Some(h) = branches.first_mut() else { return Ok(()) };
    let x = xid(gtrid, h.shard);
    let r = async {
        h.conn.query(&format!("XA END {x}")).await?;
        h.conn.query(&format!("XA COMMIT {x} ONE PHASE")).await
    }
    .await;
    r.map(|_| ()).map_err(|e| {
        if !matches!(e, BackendError::Server(_)) {
            h.conn.broken = true;
        }
        let mut err = MyErr::from_backend(&e);
        err.message = format!("COMMIT failed: {}", err.message);
        err
    })
}

/// XA END (unless `ended`) and XA ROLLBACK on every branch; a branch that
/// cannot be rolled back is closed (the server rolls back an unprepared one;
/// recovery a prepared one).
async fn rollback_all(branches: &mut [Held], gtrid: &str, ended: bool) {
    for h in branches.iter_mut() {
        if h.conn.broken {
            continue;
        }
        let x = xid(gtrid, h.shard);
        if !ended {
            let _ = h.conn.query(&format!("XA END {x}")).await;
        }
        if let Err(e) = h.conn.query(&format!("XA ROLLBACK {x}")).await {
            tracing::debug!(gtrid, shard = h.shard, error = %e, "XA ROLLBACK failed");
            h.conn.broken = true;
        }
    }
}

/// One prepared branch as XA RECOVER lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    pub gtrid: String,
    pub bqual: String,
}

/// Parse XA RECOVER rows (formatID, gtrid_length, bqual_length, data) into shardgate's branches.
pub fn parse_recover(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<Branch> {
    rows.iter()
        .filter_map(|r| {
            let num = |i: usize| -> Option<usize> { std::str::from_utf8(r.get(i)?.as_ref()?).ok()?.parse().ok() };
            let (g, b) = (num(1)?, num(2)?);
            let data = r.get(3)?.as_ref()?;
            let gtrid = String::from_utf8(data.get(..g)?.to_vec()).ok()?;
            let bqual = String::from_utf8(data.get(g..g + b)?.to_vec()).ok()?;
            gtrid.starts_with(PREFIX).then_some(Branch { gtrid, bqual })
        })
        .collect()
}

/// (name, start ms) of a gtrid `sg-<name>-<ms>-<n>`.
fn gtrid_origin(gtrid: &str) -> Option<(&str, u64)> {
    let rest = gtrid.strip_prefix(PREFIX)?;
    let mut parts = rest.rsplitn(3, '-');
    let _n = parts.next()?;
    let ms = parts.next()?.parse().ok()?;
    Some((parts.next()?, ms))
}

impl Shared {
    async fn log_conn(&self) -> Result<PooledConn, BackendError> {
        let cfg = self.config.load();
        let cluster = self.cluster.load_full();
        let mut conn = cluster.shards[cfg.default_shard].primary.pool.get(0, &SessionVars::empty()).await?;
        if !self.xa.table_ready.load(Ordering::Relaxed) {
            let r = conn
                .query(&format!(
                    "CREATE TABLE IF NOT EXISTS {LOG_TABLE} (gtrid VARBINARY(64) NOT NULL PRIMARY KEY, \
                     decision ENUM('commit','rollback') NOT NULL, \
                     decided_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB"
                ))
                .await;
            match r {
                Ok(_) => self.xa.table_ready.store(true, Ordering::Relaxed),
                Err(e) => {
                    conn.broken = true;
                    return Err(e);
                }
            }
        }
        Ok(conn)
    }

    /// Record `want` for `gtrid` unless a decision exists; returns the decision that holds.
    pub async fn xa_decide(&self, gtrid: &str, want: Decision) -> Result<Decision, String> {
        let mut last = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            let mut conn = match self.log_conn().await {
                Ok(c) => c,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let insert = format!("INSERT INTO {LOG_TABLE} (gtrid, decision) VALUES ('{gtrid}', '{}')", want.word());
            let r = conn.query(&insert).await;
            let out = match r {
                Ok(_) => Some(Ok(want)),
                Err(BackendError::Server(e)) if e.code == 1062 => {
                    match conn.query(&format!("SELECT decision FROM {LOG_TABLE} WHERE gtrid = '{gtrid}'")).await {
                        Ok((_, rows)) => match rows.first().and_then(|r| r.first().cloned().flatten()).as_deref() {
                            Some(b"commit") => Some(Ok(Decision::Commit)),
                            Some(b"rollback") => Some(Ok(Decision::Rollback)),
                            _ => None,
                        },
                        Err(e) => {
                            last = e.to_string();
                            None
                        }
                    }
                }
                Err(e) => {
                    last = e.to_string();
                    None
                }
            };
            match out {
                Some(d) => {
                    conn.release();
                    return d;
                }
                None => conn.broken = true,
            }
        }
        Err(last)
    }

    /// The decision of `gtrid`, if one was recorded.
    async fn xa_lookup(&self, gtrid: &str) -> Result<Option<Decision>, BackendError> {
        let mut conn = self.log_conn().await?;
        let r = conn.query(&format!("SELECT decision FROM {LOG_TABLE} WHERE gtrid = '{gtrid}'")).await;
        conn.release();
        let (_, rows) = r?;
        Ok(match rows.first().and_then(|r| r.first().cloned().flatten()).as_deref() {
            Some(b"commit") => Some(Decision::Commit),
            Some(b"rollback") => Some(Decision::Rollback),
            _ => None,
        })
    }

    /// Drop a settled transaction's log row (in the background; a row left
    /// behind is harmless: recovery finds no branch for it).
    pub fn xa_forget(self: &Arc<Self>, gtrid: String) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Ok(mut c) = me.log_conn().await {
                if c.query(&format!("DELETE FROM {LOG_TABLE} WHERE gtrid = '{gtrid}'")).await.is_ok() {
                    c.release();
                }
            }
        });
    }

    /// Settle shardgate's prepared branches on every shard primary. Returns how many were settled.
    pub async fn xa_recover(self: &Arc<Self>) -> Result<usize, String> {
        let cfg = self.config.load();
        let cluster = self.cluster.load_full();
        let login = crate::health::admin_login(&cfg);
        let mut settled = 0;
        let mut all_seen = true;
        // gtrid → every branch of it seen this pass was settled.
        let mut outcome: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
        for nodes in cluster.shards.iter() {
            let addr = nodes.primary.addr.clone();
            if !nodes.primary.is_up() {
                all_seen = false;
                continue;
            }
            let mut c = BackendConn::connect(addr.clone(), &login, 0, 0).await.map_err(|e| e.to_string())?;
            let (_, rows) = c.query("XA RECOVER").await.map_err(|e| format!("{addr}: XA RECOVER: {e}"))?;
            for b in parse_recover(&rows) {
                let decision = match self.xa_lookup(&b.gtrid).await.map_err(|e| e.to_string())? {
                    Some(d) => d,
                    None => {
                        let (name, started) = gtrid_origin(&b.gtrid).unwrap_or(("", 0));
                        let ours_before = name == self.xa.name && started < self.xa.started_ms;
                        let old = now_ms().saturating_sub(started) > RECOVERY_GRACE.as_millis() as u64;
                        if !(ours_before || old) {
                            outcome.insert(b.gtrid.clone(), false);
                            continue; // its coordinator may be committing it right now
                        }
                        self.xa_decide(&b.gtrid, Decision::Rollback).await?
                    }
                };
                let verb = if decision == Decision::Commit { "COMMIT" } else { "ROLLBACK" };
                let stmt = format!("XA {verb} '{}','{}'", b.gtrid, b.bqual);
                let ok = c.query(&stmt).await;
                let entry = outcome.entry(b.gtrid.clone()).or_insert(true);
                *entry &= ok.is_ok();
                match ok {
                    Ok(_) => {
                        settled += 1;
                        tracing::info!(gtrid = %b.gtrid, shard = %nodes.name, decision = verb, "in-doubt XA branch settled");
                    }
                    Err(e) => {
                        tracing::warn!(gtrid = %b.gtrid, shard = %nodes.name, error = %e, "cannot settle XA branch")
                    }
                }
            }
        }
        if all_seen {
            // Every branch of these is gone: their decisions are no longer needed.
            for (gtrid, done) in outcome {
                if done {
                    self.xa_forget(gtrid);
                }
            }
        }
        Ok(settled)
    }
}

/// The recovery loop: at once, then every [`RECOVERY_INTERVAL`], while XA is on.
pub async fn run_recovery(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if shared.config.load().proxy.transactions == TransactionMode::Xa {
            if let Err(e) = shared.xa_recover().await {
                tracing::warn!(error = %e, "XA recovery pass failed; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RECOVERY_INTERVAL) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtrids_name_their_origin() {
        let ids = XaIds::new("proxy-a.example");
        let g = ids.next_gtrid();
        assert!(g.starts_with("sg-proxyaexample-"), "{g}");
        assert!(g.len() <= 64);
        assert_eq!(gtrid_origin(&g), Some(("proxyaexample", ids.started_ms)));
        assert_eq!(xid("sg-x-1-2", 3), "'sg-x-1-2','3'");
    }

    #[test]
    fn recover_rows_keep_only_shardgate_branches() {
        let row = |g: &str, b: &str| {
            vec![
                Some(b"1".to_vec()),
                Some(g.len().to_string().into_bytes()),
                Some(b.len().to_string().into_bytes()),
                Some(format!("{g}{b}").into_bytes()),
            ]
        };
        let rows = vec![row("sg-a-5-1", "0"), row("other", "x"), row("sg-a-5-1", "12")];
        assert_eq!(
            parse_recover(&rows),
            vec![
                Branch { gtrid: "sg-a-5-1".into(), bqual: "0".into() },
                Branch { gtrid: "sg-a-5-1".into(), bqual: "12".into() }
            ]
        );
    }
}
