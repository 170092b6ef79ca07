//! A pool of [`BackendConn`]s to one server.
//!
//! Why not bb8: a proxy must pick an idle connection by capability class and
//! prefer one already in the session's state (no SET round trip), evict idle
//! connections of another class when full, and discard every connection of a
//! server that went down (generations). bb8 hands out any idle connection.
//!
//! A semaphore bounds open connections (idle + in use); a connection carries
//! its permit, so dropping it frees the slot. The idle list is a short
//! critical section under a std mutex, never held across an await.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::conn::{BackendConn, Login};
use super::state::SessionVars;
use super::BackendError;

/// Idle connections unused for longer than this are checked with a ping before reuse.
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(30);

pub struct Pool {
    pub addr: Arc<str>,
    login: Login,
    max: usize,
    wait: Duration,
    sem: Arc<Semaphore>,
    /// Boxed: a connection is several hundred bytes, and it moves through
    /// the pool, the session and the executor on every statement.
    idle: Mutex<Vec<(Box<BackendConn>, OwnedSemaphorePermit)>>,
    notify: Notify,
    generation: AtomicU64,
}

/// A connection checked out of a pool. Dropping it closes the connection;
/// [`Pool::put`] returns it for reuse.
pub struct PooledConn {
    pub conn: Box<BackendConn>,
    permit: OwnedSemaphorePermit,
    pool: Arc<Pool>,
}

impl std::ops::Deref for PooledConn {
    type Target = BackendConn;
    fn deref(&self) -> &BackendConn {
        &self.conn
    }
}
impl std::ops::DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut BackendConn {
        &mut self.conn
    }
}

impl PooledConn {
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }
    /// Return the connection to its pool (or close it if it is not clean).
    pub fn release(self) {
        let pool = self.pool.clone();
        pool.put(self);
    }
}

impl Pool {
    pub fn new(addr: Arc<str>, login: Login, max: usize, wait: Duration) -> Arc<Pool> {
        Arc::new(Pool {
            addr,
            login,
            max,
            wait,
            sem: Arc::new(Semaphore::new(max)),
            idle: Mutex::new(Vec::new()),
            notify: Notify::new(),
            generation: AtomicU64::new(0),
        })
    }

    /// Opened with these settings: a reload that keeps them keeps the pool.
    pub fn same_settings(&self, login: &Login, max: usize, wait: Duration) -> bool {
        let l = &self.login;
        self.max == max
            && self.wait == wait
            && l.user == login.user
            && l.password == login.password
            && l.database == login.database
            && l.connect_timeout == login.connect_timeout
    }

    /// Connections open (idle + in use).
    pub fn open(&self) -> usize {
        self.max - self.sem.available_permits()
    }
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }
    pub fn in_use(&self) -> usize {
        self.open().saturating_sub(self.idle_count())
    }

    /// Forget every connection opened so far (the server went away or changed role).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        let drained: Vec<_> = match self.idle.lock() {
            Ok(mut idle) => idle.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        drop(drained);
    }

    fn take_idle(&self, class: u32, vars: &Arc<SessionVars>) -> Option<(Box<BackendConn>, OwnedSemaphorePermit)> {
        // Only current-generation connections are ever idle: `invalidate` drains
        // the list and `put` checks the generation under the same lock.
        let mut idle = self.idle.lock().ok()?;
        // Most recently used first (end of the list); prefer a state match.
        let pick = idle
            .iter()
            .rposition(|(c, _)| c.class == class && (Arc::ptr_eq(&c.vars, vars) || *c.vars == **vars))
            .or_else(|| idle.iter().rposition(|(c, _)| c.class == class));
        pick.map(|i| idle.swap_remove(i))
    }

    fn evict_other_class(&self) -> bool {
        let victim = self.idle.lock().ok().and_then(|mut idle| (!idle.is_empty()).then(|| idle.remove(0)));
        victim.is_some()
    }

    /// Check out a connection of capability class `class`, preferring one
    /// already in state `vars`. Waits up to `pool_wait_ms` when the pool is full.
    pub async fn get(self: &Arc<Self>, class: u32, vars: &Arc<SessionVars>) -> Result<PooledConn, BackendError> {
        self.checkout(class, vars, &mut None).await
    }

    /// [`Pool::get`] for a client statement: when the pool was full and it had
    /// to wait, the wait (until it got a connection, or gave up) is observed in
    /// `waits`. A free connection costs no clock read.
    pub async fn get_observed(
        self: &Arc<Self>,
        class: u32,
        vars: &Arc<SessionVars>,
        waits: &prometheus::Histogram,
    ) -> Result<PooledConn, BackendError> {
        let mut deadline = None;
        let result = self.checkout(class, vars, &mut deadline).await;
        if let Some(deadline) = deadline {
            waits.observe((deadline - self.wait).elapsed().as_secs_f64());
        }
        result
    }

    /// `deadline` is set when the pool is first found full (the wait started `self.wait` before it).
    async fn checkout(
        self: &Arc<Self>,
        class: u32,
        vars: &Arc<SessionVars>,
        deadline: &mut Option<Instant>,
    ) -> Result<PooledConn, BackendError> {
        loop {
            if let Some((mut conn, permit)) = self.take_idle(class, vars) {
                if conn.is_stale() || conn.last_used.elapsed() > IDLE_CHECK_AFTER && conn.ping().await.is_err() {
                    drop((conn, permit));
                    continue;
                }
                return Ok(self.wrap(conn, permit));
            }
            if let Ok(permit) = self.sem.clone().try_acquire_owned() {
                let generation = self.generation.load(Ordering::Relaxed);
                let mut conn = Box::new(BackendConn::connect(self.addr.clone(), &self.login, class, generation).await?);
                conn.stmts.set_cap(super::stmt_cache::cap_for_pool(self.max));
                return Ok(self.wrap(conn, permit));
            }
            if self.evict_other_class() {
                continue;
            }
            // Full: wait for a returned connection or a freed slot. `put` uses
            // notify_one, which leaves a permit when nobody waits yet, so a
            // return between the checks above and this wait is not missed.
            let now = Instant::now();
            let deadline = *deadline.get_or_insert(now + self.wait);
            if now >= deadline {
                return Err(BackendError::PoolTimeout { addr: self.addr.clone(), waited: self.wait, size: self.max });
            }
            let notified = self.notify.notified();
            tokio::select! {
                _ = notified => {}
                permit = self.sem.clone().acquire_owned() => {
                    if let Ok(permit) = permit {
                        drop(permit);
                    }
                }
                _ = tokio::time::sleep_until((deadline).into()) => {}
            }
        }
    }

    fn wrap(self: &Arc<Self>, conn: Box<BackendConn>, permit: OwnedSemaphorePermit) -> PooledConn {
        PooledConn { conn, permit, pool: self.clone() }
    }

    /// Return a connection. Only a clean one (not broken, not in a
    /// transaction, current generation, nothing unread) is kept.
    pub fn put(&self, pooled: PooledConn) {
        let clean = !pooled.conn.broken && !pooled.conn.in_transaction() && pooled.conn.rd.buffered() == 0;
        if !clean {
            return; // dropped: closes the socket and frees the permit
        }
        let PooledConn { mut conn, permit, .. } = pooled;
        conn.last_used = Instant::now();
        if let Ok(mut idle) = self.idle.lock() {
            // Checked under the lock `invalidate` drains with: an old-generation
            // connection never lands in the idle list.
            if conn.generation != self.generation.load(Ordering::Relaxed) {
                return;
            }
            idle.push((conn, permit));
        }
        self.notify.notify_one();
    }
}
