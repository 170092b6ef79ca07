//! What one probe of a backend reads, in one round trip over a kept control
//! connection: `read_only`, the GTID position, semi-sync state and replication
//! state. The SQL depends on `backend.flavor` (MariaDB or MySQL).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::conn::{BackendConn, Login};
use crate::backend::control::{MultiResult, ResultSet};
use crate::config::Flavor;
use mysql_common::constants::CapabilityFlags;

/// MySQL's "You have an error in your SQL syntax": SHOW REPLICA STATUS before 8.0.22.
const ER_PARSE_ERROR: u16 = 1064;

/// Everything one probe learnt about a backend.
#[derive(Debug, Clone, Default)]
pub struct ProbeReport {
    /// When the probe finished; `None` until the backend was probed once.
    pub at: Option<Instant>,
    /// The server answered the probe within `health.timeout_ms`.
    pub reachable: bool,
    /// Why it did not (connect error, timeout, server error).
    pub error: Option<String>,
    /// How long the probe took.
    pub latency: Duration,
    pub server_id: Option<u32>,
    /// `@@read_only`.
    pub read_only: Option<bool>,
    /// The server's executed GTID set: `@@gtid_current_pos` on MariaDB,
    /// `@@gtid_executed` on MySQL. Compare candidates for promotion with it.
    pub gtid_executed: Option<String>,
    /// MariaDB only: `@@gtid_slave_pos` (last GTIDs applied by replication).
    pub gtid_slave_pos: Option<String>,
    /// MariaDB only: `@@gtid_binlog_pos` (last GTIDs written to its own binlog).
    pub gtid_binlog_pos: Option<String>,
    pub semi_sync: SemiSync,
    /// Replication state from SHOW SLAVE STATUS / SHOW REPLICA STATUS.
    pub replication: Replication,
}

/// Semi-synchronous replication, from `SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync%'`.
/// `None` where the server does not report it (plugin not loaded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SemiSync {
    /// As a primary: semi-sync is on now (`Rpl_semi_sync_master_status`,
    /// `..._source_status` on MySQL 8.0.26+). Off after a timeout fell back to async.
    pub source_on: Option<bool>,
    /// Replicas acknowledging semi-sync (`Rpl_semi_sync_master_clients`).
    pub source_clients: Option<u32>,
    /// As a replica: it acknowledges semi-sync (`Rpl_semi_sync_slave_status`).
    pub replica_on: Option<bool>,
}

/// A server's replication state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Replication {
    /// Not probed, or the probe failed before reading it.
    #[default]
    Unknown,
    /// The status could not be read (e.g. backend.user lacks the privilege).
    Unreadable(String),
    /// SHOW SLAVE STATUS is empty: the server replicates from nobody.
    NotReplica,
    Replica(ReplicaStatus),
}

/// One row of SHOW SLAVE STATUS / SHOW REPLICA STATUS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `host:port` it replicates from.
    pub source: String,
    /// `Slave_IO_Running` is "Yes" (connected to its source).
    pub io_running: bool,
    /// `Slave_IO_Running` as reported: "Yes", "No", "Connecting", "Preparing".
    pub io_state: String,
    /// `Slave_SQL_Running` is "Yes".
    pub sql_running: bool,
    /// `Seconds_Behind_Master`; `None` when the server reports NULL.
    pub seconds_behind: Option<u64>,
    /// GTIDs received from the source: `Gtid_IO_Pos` (MariaDB) or `Retrieved_Gtid_Set` (MySQL).
    pub gtid_received: Option<String>,
    pub last_io_error: String,
    pub last_sql_error: String,
}

/// Why a server is not fit to serve reads as a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfit {
    Unreachable,
    NotReplica,
    StatusUnknown(String),
    IoStopped(String),
    SqlStopped,
    LagUnknown,
    Lagging(u64),
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unfit::Unreachable => f.write_str("unreachable"),
            Unfit::NotReplica => f.write_str("not replicating from any source"),
            Unfit::StatusUnknown(e) => write!(f, "replication state unknown: {e}"),
            Unfit::IoStopped(state) => write!(f, "replication IO thread not running ({state})"),
            Unfit::SqlStopped => f.write_str("replication SQL thread not running"),
            Unfit::LagUnknown => f.write_str("Seconds_Behind_Master is NULL"),
            Unfit::Lagging(s) => write!(f, "{s} s behind its source"),
        }
    }
}

impl ProbeReport {
    /// A failed probe.
    pub fn failed(error: String, latency: Duration) -> Self {
        ProbeReport { at: Some(Instant::now()), error: Some(error), latency, ..ProbeReport::default() }
    }

    /// Fit to serve reads as a replica: reachable, both replication threads
    /// running, and `Seconds_Behind_Master` known and at most `max_lag_s`.
    pub fn fit_for_reads(&self, max_lag_s: u64) -> Result<(), Unfit> {
        if !self.reachable {
            return Err(Unfit::Unreachable);
        }
        let r = match &self.replication {
            Replication::Replica(r) => r,
            Replication::NotReplica => return Err(Unfit::NotReplica),
            Replication::Unknown => return Err(Unfit::StatusUnknown("not read".into())),
            Replication::Unreadable(e) => return Err(Unfit::StatusUnknown(e.clone())),
        };
        if !r.sql_running {
            return Err(Unfit::SqlStopped);
        }
        if !r.io_running {
            return Err(Unfit::IoStopped(r.io_state.clone()));
        }
        match r.seconds_behind {
            None => Err(Unfit::LagUnknown),
            Some(s) if s > max_lag_s => Err(Unfit::Lagging(s)),
            Some(_) => Ok(()),
        }
    }

    /// The replication row, if the server is a replica.
    pub fn replica(&self) -> Option<&ReplicaStatus> {
        match &self.replication {
            Replication::Replica(r) => Some(r),
            _ => None,
        }
    }
}

/// The probe statements for a flavor; the replication statement comes last
/// because it is the one that can fail (privilege), which ends a multi-statement.
fn probe_sql(flavor: Flavor, replica_sql: &str) -> String {
    let vars = match flavor {
        Flavor::Mariadb => "SELECT @@server_id, @@read_only, @@gtid_current_pos, @@gtid_slave_pos, @@gtid_binlog_pos",
        Flavor::Mysql => "SELECT @@server_id, @@read_only, @@gtid_executed",
    };
    format!("{vars}; SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync%'; {replica_sql}")
}

/// The statement that shows replication state.
fn replica_status_sql(flavor: Flavor, legacy: bool) -> &'static str {
    match flavor {
        Flavor::Mariadb => "SHOW SLAVE STATUS",
        Flavor::Mysql if legacy => "SHOW SLAVE STATUS",
        Flavor::Mysql => "SHOW REPLICA STATUS",
    }
}

/// A backend's kept probe connection and what the probe learnt about the server's dialect.
#[derive(Default)]
pub struct Prober {
    conn: Option<BackendConn>,
    /// MySQL before 8.0.22: SHOW REPLICA STATUS is a syntax error, use SHOW SLAVE STATUS.
    legacy_show: bool,
}

impl Prober {
    /// Probe `addr` once, within `timeout` (connecting first if needed).
    pub async fn probe(&mut self, addr: &Arc<str>, login: &Login, flavor: Flavor, timeout: Duration) -> ProbeReport {
        let started = Instant::now();
        match tokio::time::timeout(timeout, self.probe_inner(addr, login, flavor)).await {
            Ok(Ok(mut report)) => {
                report.latency = started.elapsed();
                report
            }
            Ok(Err(e)) => {
                self.conn = None;
                ProbeReport::failed(e, started.elapsed())
            }
            Err(_) => {
                // The connection may be mid-response: never reuse it.
                self.conn = None;
                ProbeReport::failed(
                    format!("no answer within health.timeout_ms = {}", timeout.as_millis()),
                    started.elapsed(),
                )
            }
        }
    }

    async fn probe_inner(&mut self, addr: &Arc<str>, login: &Login, flavor: Flavor) -> Result<ProbeReport, String> {
        if self.conn.as_ref().is_some_and(|c| c.broken) {
            self.conn = None;
        }
        let conn = match &mut self.conn {
            Some(c) => c,
            slot @ None => {
                // Multi-statements: the whole probe is one round trip.
                let class = CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits();
                let c = BackendConn::connect(addr.clone(), login, class, 0).await.map_err(|e| e.to_string())?;
                slot.insert(c)
            }
        };
        let sql = probe_sql(flavor, replica_status_sql(flavor, self.legacy_show));
        let mut result = conn.query_results(&sql).await.map_err(|e| e.to_string())?;
        if flavor == Flavor::Mysql && !self.legacy_show && result.sets.len() == 2 {
            if let Some(e) = result.error.as_ref().filter(|e| e.code == ER_PARSE_ERROR) {
                tracing::info!(backend = %addr, error = %e.message, "SHOW REPLICA STATUS unsupported; using SHOW SLAVE STATUS");
                self.legacy_show = true;
                let retry = conn.query_results(replica_status_sql(flavor, true)).await.map_err(|e| e.to_string())?;
                result.error = retry.error;
                result.sets.extend(retry.sets);
            }
        }
        parse_report(flavor, result)
    }
}

/// Turn the probe's results into a report. The first statement must have
/// succeeded (else the probe failed); a failing replication statement leaves
/// the replication state [`Replication::Unreadable`].
pub(crate) fn parse_report(flavor: Flavor, result: MultiResult) -> Result<ProbeReport, String> {
    let MultiResult { sets, error, .. } = result;
    let vars = sets.first().and_then(|s| s.rows.first()).ok_or_else(|| match &error {
        Some(e) => format!("probe query failed: {} ({})", e.message, e.code),
        None => "probe query returned no row".to_string(),
    })?;
    let cell = |i: usize| vars.get(i).cloned().flatten().map(|v| String::from_utf8_lossy(&v).into_owned());
    let mut report = ProbeReport {
        at: Some(Instant::now()),
        reachable: true,
        server_id: cell(0).and_then(|v| v.parse().ok()),
        read_only: cell(1).map(|v| v == "1" || v.eq_ignore_ascii_case("on")),
        gtid_executed: cell(2),
        ..ProbeReport::default()
    };
    if flavor == Flavor::Mariadb {
        report.gtid_slave_pos = cell(3);
        report.gtid_binlog_pos = cell(4);
    }
    if let Some(status) = sets.get(1) {
        report.semi_sync = parse_semi_sync(status);
    }
    report.replication = match (sets.get(2), &error) {
        (Some(set), _) => parse_replication(set),
        (None, Some(e)) => Replication::Unreadable(format!("{} ({})", e.message, e.code)),
        (None, None) => Replication::Unknown,
    };
    Ok(report)
}

fn parse_semi_sync(set: &ResultSet) -> SemiSync {
    let mut out = SemiSync::default();
    for row in &set.rows {
        let text = |i: usize| row.get(i).cloned().flatten().map(|v| String::from_utf8_lossy(&v).into_owned());
        let (Some(name), Some(value)) = (text(0), text(1)) else { continue };
        let on = value.eq_ignore_ascii_case("on");
        match name.to_ascii_lowercase().as_str() {
            "rpl_semi_sync_master_status" | "rpl_semi_sync_source_status" => out.source_on = Some(on),
            "rpl_semi_sync_master_clients" | "rpl_semi_sync_source_clients" => out.source_clients = value.parse().ok(),
            "rpl_semi_sync_slave_status" | "rpl_semi_sync_replica_status" => out.replica_on = Some(on),
            _ => {}
        }
    }
    out
}

/// SHOW SLAVE STATUS (MariaDB, MySQL < 8.0.22) or SHOW REPLICA STATUS (MySQL 8.0.22+):
/// the same columns, named `Slave`/`Master` in the first and `Replica`/`Source` in the second.
fn parse_replication(set: &ResultSet) -> Replication {
    let Some(row) = set.rows.first() else { return Replication::NotReplica };
    let get = |names: &[&str]| -> Option<String> {
        names
            .iter()
            .find_map(|n| set.column(n))
            .and_then(|i| row.get(i).cloned().flatten())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    };
    let io_state = get(&["Slave_IO_Running", "Replica_IO_Running"]).unwrap_or_default();
    let host = get(&["Master_Host", "Source_Host"]).unwrap_or_default();
    let port = get(&["Master_Port", "Source_Port"]).unwrap_or_default();
    Replication::Replica(ReplicaStatus {
        source: if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") },
        io_running: io_state.eq_ignore_ascii_case("yes"),
        sql_running: get(&["Slave_SQL_Running", "Replica_SQL_Running"]).is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        io_state,
        seconds_behind: get(&["Seconds_Behind_Master", "Seconds_Behind_Source"]).and_then(|v| v.parse().ok()),
        gtid_received: get(&["Gtid_IO_Pos", "Retrieved_Gtid_Set"]),
        last_io_error: get(&["Last_IO_Error"]).unwrap_or_default(),
        last_sql_error: get(&["Last_SQL_Error"]).unwrap_or_default(),
    })
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
