//! Planned switchover of an active-active pair (`primaries = [a, b]`), the
//! admin command `POST /switchover?shard=NAME`:
//! 1. drain: new statements that need the shard's primary wait (the failover
//!    buffer), and the statements and transactions already on the old primary
//!    finish (its pool has no connection in use);
//! 2. set the old primary read_only;
//! 3. wait until the other primary has applied the old one's last GTIDs;
//! 4. flip writes, and let the waiting statements go.
//!
//! Clients idle or between statements see no error. If a step fails or the
//! drain does not finish within `health.failover_buffer_ms`, everything is put
//! back as it was and the command reports why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::failover::{first_cell, run_all, sql};
use crate::backend::conn::BackendConn;
use crate::config::Flavor;
use crate::frontend::Shared;

/// Move writes of shard `name` to the other primary of its pair.
pub async fn switchover(shared: &Arc<Shared>, name: &str) -> Result<String, String> {
    let cfg = shared.config.load();
    let cluster = shared.cluster.load_full();
    let idx = cfg.shard_index(name).ok_or_else(|| format!("no shard named {name}"))?;
    let nodes = &cluster.shards[idx];
    let standby = nodes.standby.clone().ok_or_else(|| {
        format!("shard {name} has one primary; switchover needs an active-active pair (primaries = [a, b])")
    })?;
    let old = nodes.primary.clone();
    if !standby.is_up() {
        return Err(format!("the other primary {} is down", standby.addr));
    }
    let flavor = cfg.backend.flavor;
    let login = super::failover::admin_login(&cfg);
    let started = Instant::now();
    let budget = Duration::from_millis(cfg.health.failover_buffer_ms.max(1000));
    let undrain = |why: String| {
        shared.set_topology(|t| {
            t.draining.remove(name);
        });
        tracing::error!(shard = %name, reason = %why, "switchover abandoned; nothing changed");
        Err(why)
    };

    // 1. Drain.
    shared.set_topology(|t| {
        t.draining.insert(name.to_owned());
    });
    while old.pool.in_use() > 0 {
        if started.elapsed() > budget / 2 {
            return undrain(format!(
                "{} connection(s) to {} stayed in use (open transactions?) for {} ms",
                old.pool.in_use(),
                old.addr,
                (budget / 2).as_millis()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // 2. The old primary takes no more writes, from anyone.
    if let Err(e) = run_all(&old.addr, &login, &[sql::set_read_only(flavor)]).await {
        return undrain(format!("cannot set {} read_only: {e}", old.addr));
    }
    // 3. The other primary catches up.
    let caught_up = async {
        let mut c = BackendConn::connect(old.addr.clone(), &login, 0, 0).await.map_err(|e| e.to_string())?;
        let pos_sql = match flavor {
            Flavor::Mariadb => "SELECT @@gtid_binlog_pos",
            Flavor::Mysql => "SELECT @@gtid_executed",
        };
        let (_, rows) = c.query(pos_sql).await.map_err(|e| e.to_string())?;
        let pos = first_cell(&rows).unwrap_or_default();
        let mut n = BackendConn::connect(standby.addr.clone(), &login, 0, 0).await.map_err(|e| e.to_string())?;
        let wait_s = budget.saturating_sub(started.elapsed()).as_secs().max(1);
        let (_, rows) = n.query(&sql::wait_applied(flavor, &pos, wait_s)).await.map_err(|e| e.to_string())?;
        if first_cell(&rows).as_deref() != Some("0") {
            return Err(format!("{} did not apply {pos} within {wait_s} s", standby.addr));
        }
        n.query(&sql::set_writable()).await.map_err(|e| e.to_string())?;
        Ok::<String, String>(pos)
    };
    let pos = match caught_up.await {
        Ok(p) => p,
        Err(e) => {
            let _ = run_all(&old.addr, &login, &[sql::set_writable()]).await;
            return undrain(e);
        }
    };
    // 4. Flip.
    shared.set_topology(|t| {
        t.primary.insert(name.to_owned(), standby.addr.to_string());
        t.draining.remove(name);
    });
    let msg = format!(
        "shard {name}: writes moved from {} to {} at GTID {pos} in {} ms",
        old.addr,
        standby.addr,
        started.elapsed().as_millis()
    );
    tracing::warn!("{msg}");
    Ok(msg)
}
