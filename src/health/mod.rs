//! Backend health checking: every `health.interval_ms` each backend is probed
//! (login + COM_PING over a kept connection, bounded by `health.timeout_ms`).
//! `down_after` consecutive failures mark it down (its pooled connections are
//! dropped); as many consecutive successes mark it up again. Routing reads the
//! flags lock-free. (Failover and lag checks come with the HA work.)

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::backend::conn::{BackendConn, Login};
use crate::frontend::Shared;

/// How often the learned table definitions are reloaded.
const CATALOG_REFRESH: Duration = Duration::from_secs(10);

#[derive(Default)]
struct ProbeState {
    conn: Option<BackendConn>,
    fails: u32,
    oks: u32,
}

/// Probe all backends until `shutdown` fires.
pub async fn run(shared: Arc<Shared>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut states: HashMap<Arc<str>, ProbeState> = HashMap::new();
    let mut last_catalog = std::time::Instant::now();
    loop {
        if last_catalog.elapsed() >= CATALOG_REFRESH {
            // DDL can come through another proxy: re-learn table definitions now and then.
            last_catalog = std::time::Instant::now();
            let _ = shared.refresh_catalog().await;
        }
        let cfg = shared.config.load();
        let interval = Duration::from_millis(cfg.health.interval_ms);
        let timeout = Duration::from_millis(cfg.health.timeout_ms);
        let threshold = cfg.health.down_after;
        let login = Login {
            user: cfg.backend.user.clone(),
            password: cfg.backend.password.clone(),
            database: cfg.backend.database.clone(),
            connect_timeout: timeout,
        };
        let cluster = shared.cluster.load_full();
        let mut probes = JoinSet::new();
        for b in cluster.backends() {
            let addr = b.addr.clone();
            let conn = states.get_mut(&addr).and_then(|s| s.conn.take());
            let login = login.clone();
            probes.spawn(async move {
                let ok = probe(&addr, conn, &login, timeout).await;
                (addr, ok)
            });
        }
        while let Some(Ok((addr, result))) = probes.join_next().await {
            let st = states.entry(addr.clone()).or_default();
            let Some(b) = cluster.backends().find(|b| b.addr == addr) else { continue };
            match result {
                Ok(conn) => {
                    st.conn = Some(conn);
                    st.fails = 0;
                    st.oks = st.oks.saturating_add(1);
                    if !b.up.load(Ordering::Relaxed) && st.oks >= threshold {
                        b.up.store(true, Ordering::Relaxed);
                        tracing::info!(backend = %addr, "backend is up");
                    }
                }
                Err(e) => {
                    st.oks = 0;
                    st.fails = st.fails.saturating_add(1);
                    if b.up.load(Ordering::Relaxed) && st.fails >= threshold {
                        b.up.store(false, Ordering::Relaxed);
                        b.pool.invalidate();
                        tracing::warn!(backend = %addr, error = %e, "backend is down");
                    }
                }
            }
        }
        states.retain(|addr, _| cluster.backends().any(|b| b.addr == *addr));
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn probe(
    addr: &Arc<str>,
    conn: Option<BackendConn>,
    login: &Login,
    timeout: Duration,
) -> Result<BackendConn, String> {
    let work = async {
        let mut conn = match conn {
            Some(c) => c,
            None => BackendConn::connect(addr.clone(), login, 0, 0).await.map_err(|e| e.to_string())?,
        };
        conn.ping().await.map_err(|e| e.to_string())?;
        Ok(conn)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within health.timeout_ms = {}", timeout.as_millis())),
    }
}
