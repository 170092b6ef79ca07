//! Running one statement: ask the router for an [`Action`], then carry it out.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::errors::{Failure, MyErr};
use super::relay::Outcome;
use super::session::Session;
use super::txn::{Held, Tx};
use crate::admin::metrics::StmtClass;
use crate::backend::cluster::Cluster;
use crate::config::Config;
use crate::protocol::command;
use crate::protocol::response::ResponseScanner;
use crate::router::{self, Action, Plan, Targets};

/// What to send to each target backend.
pub(crate) enum Cmd<'a> {
    /// COM_QUERY with the client's original bytes (or the plan's per-shard split text).
    Query(&'a [u8]),
    /// A prepared statement run as text (its values written in) whose merged
    /// rows go to the client in the binary protocol.
    QueryBinary(&'a [u8]),
    /// COM_STMT_EXECUTE of a proxy statement; the backend id is filled in per connection.
    Execute(&'a super::prepared::ExecRequest),
}

impl Session {
    /// COM_QUERY, counted and timed (`shardgate_queries_total`, `shardgate_query_duration_seconds`).
    pub(crate) async fn com_query(&mut self, body: &[u8]) -> Result<(), Failure> {
        let started = std::time::Instant::now();
        self.stmt_class = StmtClass::default();
        let result = self.query(body).await;
        self.shared.metrics.statement(self.stmt_class, started);
        result
    }

    async fn query(&mut self, body: &[u8]) -> Result<(), Failure> {
        self.shared.stats.queries.fetch_add(1, Ordering::Relaxed);
        // from_utf8 first: it checks ASCII a word at a time, the lossy walk does not.
        let text: Cow<'_, str> = match std::str::from_utf8(body) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(body),
        };
        let cfg = self.shared.config.load();
        // LAST_INSERT_ID() in a write is this session's value, whichever backend runs it.
        let substituted = router::sequence::substitute_last_insert_id(&text, self.last_insert_id);
        let (text, body) = match &substituted {
            Some(s) => (Cow::Borrowed(s.as_str()), s.as_bytes()),
            None => (text, body),
        };
        // An INSERT into a table with a sequence runs with its ids filled in.
        let filled = self.fill_sequence(&text, &cfg).await?;
        let (text, body) = match &filled {
            Some(f) => (Cow::Borrowed(f.sql.as_str()), f.sql.as_bytes()),
            None => (text, body),
        };
        let mut action = self.route_with_catalog(&text, &cfg);
        if matches!(&action, Action::Error(e) if e.message.contains(router::NEEDS_COLUMN_LIST)) {
            // An INSERT without a column list into a table we have not learned yet.
            if self.shared.refresh_catalog().await.is_ok() {
                action = self.route_with_catalog(&text, &cfg);
            }
        }
        let Some(first_id) = filled.as_ref().map(|f| f.first_id) else {
            return self.run_action(action, body, &text, &cfg).await;
        };
        self.insert_id_override = Some(first_id);
        let result = self.run_action(action, body, &text, &cfg).await;
        self.insert_id_override = None;
        result
    }

    /// Route with the learned table definitions (the guard is not held across an await).
    pub(crate) fn route_with_catalog(&self, text: &str, cfg: &Arc<Config>) -> Action {
        let catalog = self.shared.catalog.load_full();
        let mut view = self.view();
        view.catalog = Some(&catalog);
        self.shared.plan_cache.route(text, cfg, &catalog, &view)
    }

    pub(crate) async fn run_action(
        &mut self,
        action: Action,
        body: &[u8],
        text: &str,
        cfg: &Arc<Config>,
    ) -> Result<(), Failure> {
        // (A plan starts its statement in run_plan, which prepared statements reach too.)
        if !matches!(action, Action::Query(_) | Action::Diagnostics(_) | Action::LastInsertId { .. }) {
            self.diag.begin_statement();
        }
        if let Some(class) = StmtClass::of_action(&action, text, self.held.len(), cfg.shards.len()) {
            self.stmt_class = class;
        }
        match action {
            Action::Diagnostics(router::diagnostics::Diag::FoundRows { .. })
                if self.diag.found_rows_shard.is_some() =>
            {
                // After SQL_CALC_FOUND_ROWS only that backend connection knows the count.
                let shard = self.diag.found_rows_shard.expect("checked");
                let plan = Plan {
                    kind: router::StmtKind::Read,
                    targets: Targets::Shard(shard),
                    role: router::Role::Primary,
                    split: None,
                    merge: router::Merge::Relay,
                    pins_session: false,
                    unparsed: false,
                    reason: "FOUND_ROWS() after SQL_CALC_FOUND_ROWS → the pinned connection".into(),
                };
                self.run_plan(&plan, Cmd::Query(body), cfg).await
            }
            Action::Diagnostics(d) => self.answer_diagnostics(&d),
            Action::SqlPrepare { name, sql } => {
                self.sql_stmts.insert(name, sql);
                self.send_ok(Default::default());
                Ok(())
            }
            Action::SqlExecute { name, using } => self.sql_execute(&name, &using).await,
            Action::SqlDeallocate { name } => match self.sql_stmts.remove(&name) {
                Some(_) => {
                    self.send_ok(Default::default());
                    Ok(())
                }
                None => Err(MyErr::new(
                    1243,
                    "HY000",
                    format!("Unknown prepared statement handler ({name}) given to DEALLOCATE PREPARE"),
                )
                .into()),
            },
            Action::Query(plan) => {
                if plan.unparsed {
                    self.shared.stats.unparsed.fetch_add(1, Ordering::Relaxed);
                }
                self.run_plan(&plan, Cmd::Query(body), cfg).await
            }
            Action::Begin { sql } => self.begin(sql).await,
            Action::EndTransaction { commit } => {
                self.end_transaction(commit).await?;
                self.send_ok(Default::default());
                Ok(())
            }
            Action::Savepoint => self.savepoint(text).await,
            Action::Set(items) => self.set_vars(items, text, cfg).await,
            Action::Use(db) => {
                self.use_database(&db).await?;
                self.send_ok(Default::default());
                Ok(())
            }
            Action::Kill { connection_id, query_only } => self.kill(connection_id, query_only).await,
            action @ Action::ShowRoute(_) => self.show_route(&action, text, cfg),
            Action::Admin(statement) => self.admin_statement(statement, cfg).await,
            Action::LastInsertId { column } => {
                self.send_last_insert_id(&column, false);
                Ok(())
            }
            Action::Error(e) => {
                if e.message.contains("cannot parse") {
                    self.shared.stats.unparsed.fetch_add(1, Ordering::Relaxed);
                }
                Err(e.into())
            }
        }
    }

    /// EXECUTE name USING @a, ...: the statement's text with the variables'
    /// values written in, run as a query (so it routes by the values).
    async fn sql_execute(&mut self, name: &str, using: &[router::plan::Using]) -> Result<(), Failure> {
        let Some(sql) = self.sql_stmts.get(name).cloned() else {
            return Err(MyErr::new(
                1243,
                "HY000",
                format!("Unknown prepared statement handler ({name}) given to EXECUTE"),
            )
            .into());
        };
        let mut values = Vec::with_capacity(using.len());
        for u in using {
            let v = match u {
                router::plan::Using::Expr(e) => {
                    values.push(e.clone());
                    continue;
                }
                router::plan::Using::Var(v) => v,
            };
            match self.vars.user.get(v) {
                Some(value) => values.push(value.clone()),
                // Set inside a query on a pinned connection: its value is only there.
                None if self.pinned => {
                    return Err(MyErr::not_supported(format!(
                        "EXECUTE ... USING @{v}: shardgate does not know the value of @{v} (set inside a query); \
                         set it with SET @{v} = value first"
                    ))
                    .into())
                }
                None => values.push("NULL".into()),
            }
        }
        let text = super::interpolate::fill(&sql, &values)
            .map_err(|e| MyErr::new(1210, "HY000", format!("Incorrect arguments to EXECUTE: {e}")))?;
        // Counted once, as the statement it runs.
        Box::pin(self.query(text.as_bytes())).await
    }

    /// The shard ids a plan runs on.
    pub(crate) fn target_shards(&self, targets: &Targets, cfg: &Config) -> Vec<usize> {
        match targets {
            Targets::Shard(s) => vec![*s],
            Targets::Shards(v) => v.clone(),
            Targets::All => (0..cfg.shards.len()).collect(),
            Targets::AnyShard => {
                // Prefer a shard whose connection the session already holds.
                if let Some(h) = self.held.first() {
                    vec![h.shard]
                } else {
                    vec![self.id as usize % cfg.shards.len()]
                }
            }
        }
    }

    /// Run a plan: lease a connection per target, send, relay or merge.
    pub(crate) async fn run_plan(&mut self, plan: &Plan, cmd: Cmd<'_>, cfg: &Arc<Config>) -> Result<(), Failure> {
        self.stmt_class = StmtClass::of_plan(plan, cfg.shards.len());
        self.diag.begin_statement();
        let shards = self.target_shards(&plan.targets, cfg);
        if shards.iter().any(|&s| s >= cfg.shards.len()) {
            return Err(MyErr::new(1105, "HY000", "shardgate: plan names an unknown shard").into());
        }
        self.check_not_aborted()?;
        let ddl = plan.kind == router::StmtKind::Ddl;
        if ddl && self.in_transaction() {
            // DDL commits the open transaction first, as in MySQL, then runs on its own.
            self.end_transaction(true).await?;
        }
        if !self.autocommit && self.tx.is_none() && !ddl {
            // autocommit=0: the transaction starts with this statement.
            let xa = self.new_xa_gtrid(None);
            self.tx = Some(Tx { xa, ..Tx::default() });
        }
        // xa: an autocommit statement that writes several shards is one XA
        // transaction, so it commits everywhere or nowhere; its OK waits in the
        // buffer until the commit is done.
        let implicit_xa = plan.kind == router::StmtKind::Write
            && shards.len() > 1
            && self.tx.is_none()
            && self.autocommit
            && cfg.proxy.transactions == crate::config::TransactionMode::Xa;
        if implicit_xa {
            self.tx = Some(Tx { xa: Some(self.shared.xa.next_gtrid()), ..Tx::default() });
            self.implicit_xa = true;
            let seq = self.seq;
            let result = Box::pin(self.run_plan_inner(plan, cmd, cfg, shards)).await;
            let ok = matches!(result, Ok(()));
            let end = self.end_transaction(ok).await;
            self.implicit_xa = false;
            return match (result, end) {
                (Err(e), _) => Err(e),
                (Ok(()), Ok(())) => Ok(()),
                (Ok(()), Err(e)) => {
                    self.wr.discard();
                    self.seq = seq;
                    Err(e)
                }
            };
        }
        self.run_plan_inner(plan, cmd, cfg, shards).await
    }

    async fn run_plan_inner(
        &mut self,
        plan: &Plan,
        cmd: Cmd<'_>,
        cfg: &Arc<Config>,
        shards: Vec<usize>,
    ) -> Result<(), Failure> {
        let ddl = plan.kind == router::StmtKind::Ddl;
        self.check_tx_write(plan.kind, &shards, cfg)?;
        if plan.pins_session {
            self.pinned = true;
        }
        let cluster: Arc<Cluster> = self.shared.cluster.load_full();
        let mut leases: Vec<Held> = Vec::with_capacity(shards.len());
        for &s in &shards {
            match self.lease(s, plan.role, cfg, &cluster).await {
                Ok(h) => leases.push(h),
                Err(e) => {
                    for h in leases {
                        self.finish(h);
                    }
                    return Err(e);
                }
            }
        }
        // Send to every target before reading anything: shards work in parallel.
        let mut send_err = None;
        for h in &mut leases {
            let queued = match &cmd {
                Cmd::Query(original) | Cmd::QueryBinary(original) => {
                    let sql: &[u8] = match &plan.split {
                        Some(parts) => {
                            parts.iter().find(|(s, _)| *s == h.shard).map(|(_, q)| q.as_bytes()).unwrap_or(original)
                        }
                        None => original,
                    };
                    h.conn.queue_command_parts(command::QUERY, sql);
                    Ok(())
                }
                Cmd::Execute(req) => self.queue_execute(h, req).await,
            };
            let sent = match queued {
                Ok(()) => h.conn.flush().await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                send_err.get_or_insert(e);
            }
            h.backend.queries.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(e) = send_err {
            // Responses of the others are unknown now: close those connections.
            for mut h in leases {
                h.conn.broken = true;
                self.finish(h);
            }
            return Err(e.into());
        }
        self.set_running(leases.first().map(|h| (h.conn.addr.clone(), h.conn.thread_id)));
        let binary = matches!(cmd, Cmd::QueryBinary(_));
        let result = if let (router::Merge::Rows(spec), true) = (&plan.merge, leases.len() > 1 || binary) {
            self.relay_merge(&mut leases, spec, binary).await
        } else if leases.len() == 1 {
            let scanner = ResponseScanner::query(self.deprecate_eof);
            let mut h = leases.pop().expect("one lease");
            let r = self.relay_one(&mut h, scanner).await;
            leases.push(h);
            r
        } else {
            self.relay_concat(&mut leases).await
        };
        self.set_running(None);
        if let Ok(Outcome { err: Some(e), .. }) = &result {
            self.diag.record_error(e);
        } else if let Ok(o) = &result {
            if o.ok.warnings > 0 && !o.error {
                self.capture_warnings(&mut leases).await;
            }
            self.diag.warning_count = o.ok.warnings;
            if o.result_set {
                self.diag.row_count = -1;
                self.diag.found_rows = o.rows;
                // SQL_CALC_FOUND_ROWS pins the session; only then is the text looked at.
                let calc = plan.pins_session
                    && match &cmd {
                        Cmd::Query(b) | Cmd::QueryBinary(b) => {
                            b.windows(19).any(|w| w.eq_ignore_ascii_case(b"SQL_CALC_FOUND_ROWS"))
                        }
                        Cmd::Execute(req) => req.sql.to_ascii_uppercase().contains("SQL_CALC_FOUND_ROWS"),
                    };
                self.diag.found_rows_shard = (calc && shards.len() == 1).then(|| shards[0]);
            } else {
                self.diag.row_count = o.ok.affected_rows as i64;
            }
        }
        for h in leases {
            self.finish(h);
        }
        if let Ok(o) = &result {
            // LAST_INSERT_ID() changes only when a statement generated an id.
            if !o.error && o.ok.last_insert_id != 0 {
                self.last_insert_id = o.ok.last_insert_id;
            }
        }
        if ddl && result.as_ref().is_ok_and(|o| !o.error) {
            // Table definitions may have changed.
            if let Err(e) = self.shared.refresh_catalog().await {
                tracing::debug!(error = %e, "catalog refresh after DDL failed");
            }
        }
        result.map(|_| ())
    }

    fn set_running(&self, running: Option<(Arc<str>, u32)>) {
        if let Ok(mut r) = self.handle.running.lock() {
            *r = running;
        }
    }

    /// COM_FIELD_LIST: the table's columns, from the default shard (the request is forwarded as sent).
    pub(crate) async fn com_field_list(&mut self, body: &[u8]) -> Result<(), Failure> {
        let cfg = self.shared.config.load();
        // Listed tables exist on every shard, unlisted ones on the default shard.
        let shard = cfg.default_shard;
        let cluster = self.shared.cluster.load_full();
        let mut h = self.lease(shard, router::Role::Replica, &cfg, &cluster).await?;
        h.conn.queue_command_parts(command::FIELD_LIST, body);
        if let Err(e) = h.conn.flush().await {
            self.finish(h);
            return Err(e.into());
        }
        let r = self.relay_one(&mut h, ResponseScanner::field_list(self.deprecate_eof)).await;
        self.finish(h);
        r.map(|_| ())
    }

    /// KILL [QUERY] id, with shardgate's own connection ids.
    pub(crate) async fn kill(&mut self, id: u64, query_only: bool) -> Result<(), Failure> {
        let target =
            u32::try_from(id).ok().and_then(|id| self.shared.sessions.lock().ok().and_then(|m| m.get(&id).cloned()));
        let Some(target) = target else {
            return Err(MyErr::new(1094, "HY000", format!("Unknown thread id: {id}")).into());
        };
        let running = target.running.lock().ok().and_then(|r| r.clone());
        if let Some((addr, thread)) = running {
            // Interrupt the statement on its backend with a fresh connection.
            let cluster = self.shared.cluster.load_full();
            let backend = cluster.backends().find(|b| b.addr == addr).cloned();
            if let Some(b) = backend {
                if let Ok(mut c) = b.pool.get(self.class, &crate::backend::state::SessionVars::empty()).await {
                    let _ = c.query(&format!("KILL QUERY {thread}")).await;
                    c.release();
                }
            }
        }
        if query_only {
            self.send_ok(Default::default());
            return Ok(());
        }
        if id == u64::from(self.id) {
            self.send_err(&MyErr::new(1927, "70100", "Connection was killed"));
            return Err(Failure::Close("killed itself".into()));
        }
        target.close();
        self.send_ok(Default::default());
        Ok(())
    }
}
