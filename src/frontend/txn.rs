//! Transactions and connection leasing.
//!
//! A transaction opens lazily: BEGIN only records the client's statement,
//! which is sent on a shard's primary connection the first time the
//! transaction touches that shard. The session then holds that connection
//! until COMMIT/ROLLBACK. Under `transactions = "single"` a transaction may
//! read from several shards but write to one; a write to a second shard is
//! refused before it runs. `best_effort` commits shard by shard.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::errors::{Failure, MyErr};
use super::session::Session;
use crate::backend::cluster::{Backend, Cluster, ServerRole};
use crate::backend::pool::PooledConn;
use crate::backend::BackendError;
use crate::config::{Config, TransactionMode};
use crate::protocol::wire::OkInfo;
use crate::router::{Role, StmtKind};

/// How often a statement waiting for a shard's new primary looks again.
const PRIMARY_RETRY: Duration = Duration::from_millis(25);

/// A backend connection the session keeps between statements.
pub struct Held {
    pub shard: usize,
    pub conn: PooledConn,
    pub backend: Arc<Backend>,
    /// The connection joined the open transaction (BEGIN or XA START sent).
    pub in_tx: bool,
}

/// An open transaction.
#[derive(Debug, Clone, Default)]
pub struct Tx {
    /// The client's BEGIN / START TRANSACTION text; `None` for the implicit
    /// transaction of an autocommit=0 session.
    pub begin_sql: Option<String>,
    /// SET TRANSACTION … for this transaction, sent before BEGIN.
    pub characteristics: Option<String>,
    /// Savepoints so far (name, statement), replayed on shards joining later.
    pub savepoints: Vec<(String, String)>,
    /// Shards this transaction has written to.
    pub written: Vec<usize>,
    /// Global transaction id when the transaction runs as XA branches
    /// (`proxy.transactions = "xa"`); each shard joins with `XA START`.
    pub xa: Option<String>,
    /// A connection of this transaction broke (the server rolled its part
    /// back): every statement fails until ROLLBACK, and COMMIT reports it.
    pub aborted: Option<String>,
}

impl Session {
    /// Get a connection for `shard`: the held one if any, else one from the
    /// right pool, brought to the session's state and joined to the open
    /// transaction.
    pub(crate) async fn lease(
        &mut self,
        shard: usize,
        role: Role,
        cfg: &Config,
        cluster: &Cluster,
    ) -> Result<Held, Failure> {
        if let Some(i) = self.held.iter().position(|h| h.shard == shard) {
            let mut h = self.held.swap_remove(i);
            if self.tx.is_some() && !h.in_tx {
                // Held before the transaction began (a pinned session): join it now.
                if let Err(e) = self.join_tx(&mut h.conn, shard).await {
                    h.conn.broken = true;
                    self.finish(h);
                    return Err(e.into());
                }
                h.in_tx = true;
            }
            return Ok(h);
        }
        let nodes = cluster.shards.get(shard).ok_or_else(MyErr::layout_changed)?;
        let need_primary = role == Role::Primary || self.tx.is_some() || !self.autocommit || self.pinned;
        let (mut conn, backend) = if need_primary {
            self.primary_conn(shard, cluster, cfg).await?
        } else {
            let mut conn_and_backend = None;
            let mut last_err = None;
            for backend in nodes.read_candidates().into_iter().flatten() {
                match backend.pool.get_observed(self.class, &self.vars, &self.shared.metrics.pool_wait).await {
                    Ok(c) => {
                        conn_and_backend = Some((c, backend.clone()));
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(conn = self.id, backend = %backend.addr, error = %e, "backend unavailable");
                        last_err = Some(e);
                    }
                }
            }
            match conn_and_backend {
                Some(cb) => cb,
                None => {
                    return Err(last_err
                        .map(Failure::from)
                        .unwrap_or_else(|| MyErr::not_supported("no backend").into()))
                }
            }
        };
        let schema = self.schema.as_deref().unwrap_or(&cfg.backend.database);
        conn.sync_state(&self.vars, schema).await?;
        self.join_tx(&mut conn, shard).await?;
        self.shared.note_backend_version(&conn.server_version);
        Ok(Held { shard, conn, backend, in_tx: self.tx.is_some() })
    }

    /// Make `conn` part of the open transaction (if any): its characteristics,
    /// BEGIN (or XA START of this shard's branch), the savepoints so far.
    async fn join_tx(&self, conn: &mut PooledConn, shard: usize) -> Result<(), BackendError> {
        let Some(tx) = &self.tx else { return Ok(()) };
        if let Some(chars) = &tx.characteristics {
            conn.query(chars).await?;
        }
        if let Some(gtrid) = &tx.xa {
            conn.query(&format!("XA START {}", super::xa::xid(gtrid, shard))).await?;
        } else if let Some(begin) = &tx.begin_sql {
            conn.query(begin).await?;
        }
        for (_, sp) in &tx.savepoints {
            conn.query(sp).await?;
        }
        Ok(())
    }

    /// A connection to `shard`'s primary. While the shard has no reachable
    /// primary (it died and failover is choosing or promoting a new one, or a
    /// planned switchover is draining it), wait
    /// up to `health.failover_buffer_ms` for one instead of failing at once,
    /// following the cluster as failover rebuilds it.
    pub(crate) async fn primary_conn(
        &self,
        shard: usize,
        cluster: &Cluster,
        cfg: &Config,
    ) -> Result<(PooledConn, Arc<Backend>), Failure> {
        let nodes = cluster.shards.get(shard).ok_or_else(MyErr::layout_changed)?;
        let mut primary = nodes.primary.clone();
        let mut refused = nodes.writes_refused.clone();
        let mut draining = nodes.draining;
        let mut deadline: Option<Instant> = None;
        let mut last_err: Option<BackendError> = None;
        loop {
            if let Some(why) = refused {
                return Err(MyErr::writes_refused(&nodes.name, &why).into());
            }
            if primary.is_up() && !draining {
                match primary.pool.get_observed(self.class, &self.vars, &self.shared.metrics.pool_wait).await {
                    // Checked again once the connection counts as in use: a switchover
                    // that started meanwhile either sees it in use or is seen here.
                    Ok(c) if !self.shared.cluster.load().shards.get(shard).is_some_and(|n| n.draining) => {
                        return Ok((c, primary))
                    }
                    Ok(c) => {
                        c.release();
                        draining = true;
                        continue;
                    }
                    Err(e @ (BackendError::Connect { .. } | BackendError::Lost { .. })) => {
                        tracing::debug!(conn = self.id, backend = %primary.addr, error = %e, "primary unreachable");
                        last_err = Some(e);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let now = Instant::now();
            let stats = &self.shared.stats;
            let until = *deadline.get_or_insert_with(|| {
                stats.failover_waits.fetch_add(1, Ordering::Relaxed);
                now + Duration::from_millis(cfg.health.failover_buffer_ms)
            });
            if now >= until {
                stats.failover_wait_timeouts.fetch_add(1, Ordering::Relaxed);
                return Err(MyErr::no_primary(&nodes.name, cfg.health.failover_buffer_ms, last_err.as_ref()).into());
            }
            tokio::time::sleep(PRIMARY_RETRY.min(until - now)).await;
            let current = self.shared.cluster.load();
            let Some(now_nodes) = current.shards.get(shard) else {
                return Err(MyErr::layout_changed().into());
            };
            primary = now_nodes.primary.clone();
            refused = now_nodes.writes_refused.clone();
            draining = now_nodes.draining;
        }
    }

    /// After a statement: keep the connection if the session needs it, else
    /// return it to the pool (a broken one is closed).
    pub(crate) fn finish(&mut self, held: Held) {
        if held.conn.broken {
            if self.tx.is_some() || held.conn.in_transaction() {
                // The server rolled back its part: roll back the rest too, and
                // make the client find out instead of committing half of it.
                self.close_backends();
                let reason = format!("its connection to backend {} broke", held.conn.addr);
                self.tx.get_or_insert_with(Tx::default).aborted = Some(reason);
            }
            return;
        }
        let keep = held.backend.role == ServerRole::Primary
            && (held.conn.in_transaction() || self.tx.is_some() || self.pinned);
        if keep {
            self.held.push(held);
        } else {
            held.conn.release();
        }
    }

    /// Refuse statements in a transaction that was rolled back underneath the client.
    pub(crate) fn check_not_aborted(&self) -> Result<(), Failure> {
        match self.tx.as_ref().and_then(|t| t.aborted.as_deref()) {
            Some(reason) => Err(MyErr::new(
                super::errors::BACKEND_LOST,
                "70100",
                format!(
                    "shardgate: this transaction was rolled back because {reason}; issue ROLLBACK and run it again"
                ),
            )
            .into()),
            None => Ok(()),
        }
    }

    /// Refuse a write that would make the transaction span shards under `single`.
    pub(crate) fn check_tx_write(&mut self, kind: StmtKind, shards: &[usize], cfg: &Config) -> Result<(), Failure> {
        if kind != StmtKind::Write {
            return Ok(());
        }
        let Some(tx) = self.tx.as_mut() else { return Ok(()) };
        let mut written = tx.written.clone();
        for s in shards {
            if !written.contains(s) {
                written.push(*s);
            }
        }
        if written.len() > 1 && cfg.proxy.transactions == TransactionMode::Single && tx.xa.is_none() {
            let names: Vec<&str> = written.iter().map(|&s| cfg.shards[s].name.as_str()).collect();
            return Err(MyErr::not_supported(format!(
                "This transaction would write to shards {}: shardgate keeps a transaction on one shard (proxy.transactions = \"single\"). Commit before writing to another shard, or set proxy.transactions = \"xa\" (atomic) or \"best_effort\"",
                names.join(", ")
            ))
            .into());
        }
        tx.written = written;
        Ok(())
    }

    /// BEGIN / START TRANSACTION: an open transaction commits first, as in MySQL.
    pub(crate) async fn begin(&mut self, sql: String) -> Result<(), Failure> {
        if self.in_transaction() {
            self.end_transaction(true).await?;
        }
        let xa = self.new_xa_gtrid(Some(&sql));
        self.tx = Some(Tx { begin_sql: Some(sql), characteristics: self.next_tx.take(), xa, ..Tx::default() });
        self.send_ok(OkInfo::default());
        Ok(())
    }

    /// COMMIT or ROLLBACK on every connection of the transaction.
    pub(crate) async fn end_transaction(&mut self, commit: bool) -> Result<(), Failure> {
        if let Some(reason) = self.tx.as_ref().and_then(|t| t.aborted.clone()) {
            self.tx = None;
            self.next_tx = None;
            self.close_backends();
            return if commit {
                Err(MyErr::new(
                    1180,
                    "HY000",
                    format!("Got error during COMMIT: the transaction was rolled back because {reason}; run it again"),
                )
                .into())
            } else {
                Ok(())
            };
        }
        if let Some(gtrid) = self.tx.as_ref().and_then(|t| t.xa.clone()) {
            let held = std::mem::take(&mut self.held);
            let (branches, others): (Vec<Held>, Vec<Held>) = held.into_iter().partition(|h| h.in_tx);
            self.held = others;
            let (result, back) = self.xa_end(branches, &gtrid, commit).await;
            self.tx = None;
            self.next_tx = None;
            for mut h in back {
                h.in_tx = false;
                self.finish(h);
            }
            return result;
        }
        let stmt = if commit { "COMMIT" } else { "ROLLBACK" };
        let cfg = self.shared.config.load();
        let mut first_err: Option<MyErr> = None;
        let mut done: Vec<String> = Vec::new();
        let held = std::mem::take(&mut self.held);
        let mut keep = Vec::new();
        for mut h in held {
            match h.conn.query(stmt).await {
                Ok(_) => done.push(cfg.shards[h.shard].name.clone()),
                Err(e) => {
                    let mut err = MyErr::from_backend(&e);
                    if commit && !done.is_empty() {
                        err.message = format!(
                            "COMMIT failed on shard {} after shards {} committed: {}",
                            cfg.shards[h.shard].name,
                            done.join(", "),
                            err.message
                        );
                    }
                    first_err.get_or_insert(err);
                }
            }
            keep.push(h);
        }
        self.tx = None;
        self.next_tx = None;
        for mut h in keep {
            h.in_tx = false;
            self.finish(h);
        }
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// SAVEPOINT, ROLLBACK TO, RELEASE SAVEPOINT.
    pub(crate) async fn savepoint(&mut self, sql: &str) -> Result<(), Failure> {
        self.check_not_aborted()?;
        let words: Vec<String> =
            sql.split_whitespace().map(|w| w.trim_matches(|c| c == '`' || c == ';').to_ascii_lowercase()).collect();
        let name = words.last().cloned().unwrap_or_default();
        let first = words.first().map(String::as_str).unwrap_or("");
        if self.tx.is_none() && !self.in_transaction() {
            return if first == "savepoint" {
                self.send_ok(OkInfo::default());
                Ok(())
            } else {
                Err(MyErr::new(1305, "42000", format!("SAVEPOINT {name} does not exist")).into())
            };
        }
        let mut err = None;
        for h in &mut self.held {
            if let Err(e) = h.conn.query(sql).await {
                err.get_or_insert(e);
            }
        }
        if let Some(e) = err {
            return Err(e.into());
        }
        if let Some(tx) = self.tx.as_mut() {
            let pos = tx.savepoints.iter().position(|(n, _)| *n == name);
            match first {
                "savepoint" => {
                    if let Some(p) = pos {
                        tx.savepoints.remove(p);
                    }
                    tx.savepoints.push((name, sql.to_string()));
                }
                "release" => {
                    if let Some(p) = pos {
                        tx.savepoints.truncate(p);
                    }
                }
                _ => {
                    if let Some(p) = pos {
                        tx.savepoints.truncate(p + 1);
                    }
                }
            }
        }
        self.send_ok(OkInfo::default());
        Ok(())
    }
}
