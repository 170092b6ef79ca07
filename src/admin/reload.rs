//! Hot reload of the config file: SIGHUP, `POST /reload`, `SHARDGATE RELOAD`
//! and a watch on the file all end in [`reload`].
//!
//! Steps: read, parse and validate fully; compare with the running config
//! ([`crate::config::diff`]); refuse restart-only keys, and placement changes
//! of tables that have rows (unless forced or `proxy.allow_reshard`); rebuild
//! the cluster reusing every pool whose server and settings did not change;
//! swap config and cluster. Statements and transactions already running keep
//! the snapshot and the connections they hold; pools no longer referenced close
//! their idle connections as the last statement using them returns its own.
//! A config that fails any step never replaces the running one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::unix_now;
use crate::backend::cluster::Cluster;
use crate::backend::state::SessionVars;
use crate::backend::BackendError;
use crate::config::diff::{diff, line_of};
use crate::config::validate::{parse, ConfigError};
use crate::config::Config;
use crate::frontend::Shared;

/// Where the running config came from and how its reloads went.
#[derive(Default)]
pub struct ReloadState {
    path: OnceLock<PathBuf>,
    lock: tokio::sync::Mutex<()>,
    status: Mutex<Status>,
}

/// The running config's version, for `/status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    /// 1 for the config loaded at startup, +1 per applied reload.
    pub version: u64,
    /// SHA-256 of the file text in force (hex, first 16 digits).
    pub sha256: String,
    /// When it was loaded, seconds since the Unix epoch.
    pub loaded_at: f64,
    /// Why the last reload attempt failed, if it did (cleared by a good one).
    pub last_error: Option<String>,
    pub last_error_at: Option<f64>,
}

impl ReloadState {
    /// Record the config file the proxy started from.
    pub fn started_from(&self, path: &Path, text: &str) {
        let _ = self.path.set(path.to_path_buf());
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        *s = Status { version: 1, sha256: short_sha(text), loaded_at: unix_now(), ..Status::default() };
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.get().map(PathBuf::as_path)
    }

    pub fn status(&self) -> Status {
        let s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if s.version == 0 {
            // Started from a Config value (tests), not from a file.
            return Status { version: 1, ..s.clone() };
        }
        s.clone()
    }
}

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("shardgate was started without a config file; nothing to reload")]
    NoFile,
    /// The file does not parse or validate.
    #[error("{0}")]
    Invalid(String),
    /// Valid, but it cannot be applied while running.
    #[error("{0}")]
    Refused(String),
}

/// What an applied (or unnecessary) reload did.
#[derive(Debug)]
pub struct Outcome {
    pub version: u64,
    /// One line per change; empty when the file was unchanged.
    pub changes: Vec<String>,
}

impl Outcome {
    pub fn summary(&self) -> String {
        if self.changes.is_empty() {
            format!("config version {}: unchanged", self.version)
        } else {
            format!("config version {} applied: {}", self.version, self.changes.join("; "))
        }
    }
}

/// Reload the config file. `force` accepts placement changes of tables that
/// have rows (as `proxy.allow_reshard = true` does) and re-applies an
/// unchanged file. `trigger` names the cause in the log.
pub async fn reload(shared: &Arc<Shared>, force: bool, trigger: &str) -> Result<Outcome, ReloadError> {
    let state = &shared.reload;
    let Some(path) = state.path() else { return Err(ReloadError::NoFile) };
    let _one_at_a_time = state.lock.lock().await;
    let result = apply(shared, path, force).await;
    let mut status = state.status.lock().unwrap_or_else(|e| e.into_inner());
    match &result {
        Ok((outcome, sha)) => {
            status.last_error = None;
            status.last_error_at = None;
            if !outcome.changes.is_empty() || force {
                status.version += 1;
                status.sha256 = sha.clone();
                status.loaded_at = unix_now();
                tracing::info!(trigger, version = status.version, changes = ?outcome.changes, "config reloaded");
                note_reload(shared, true);
            }
        }
        Err(e) => {
            status.last_error = Some(e.to_string());
            status.last_error_at = Some(unix_now());
            tracing::error!(trigger, path = %path.display(), error = %e, "config reload failed; the running config stays in force");
            note_reload(shared, false);
        }
    }
    let version = status.version;
    result.map(|(mut o, _)| {
        o.version = version;
        o
    })
}

/// Count a reload in the metrics.
fn note_reload(shared: &Shared, ok: bool) {
    shared.metrics.config_reloaded(ok);
}

async fn apply(shared: &Arc<Shared>, path: &Path, force: bool) -> Result<(Outcome, String), ReloadError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| ReloadError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let sha = short_sha(&text);
    let unchanged = shared.reload.status.lock().map(|s| s.sha256 == sha).unwrap_or(false);
    if unchanged && !force {
        return Ok((Outcome { version: 0, changes: Vec::new() }, sha));
    }
    let new = parse(&text).map_err(|e| ReloadError::Invalid(with_line(&text, &e)))?;
    let old = shared.config.load();
    let d = diff(&old, &new);
    if !d.restart_only.is_empty() {
        return Err(ReloadError::Refused(format!(
            "{} cannot change while shardgate runs; restore the running value or restart shardgate",
            d.restart_only.join(", ")
        )));
    }
    if !d.reshard.is_empty() {
        let deliberate = force || new.proxy.allow_reshard;
        let mut blocked = Vec::new();
        for r in &d.reshard {
            let has_rows = match &r.table {
                Some(t) => table_has_rows(shared, &old, t).await,
                // Unlisted tables (and shardgate's own) live on default_shard: never assumed empty.
                None => Some("the tables not listed under [[tables]]".to_string()),
            };
            if let Some(where_) = has_rows {
                let what = r.table.as_deref().map_or_else(|| where_.clone(), |t| format!("table {t} ({where_})"));
                blocked.push(format!("{what}: {}", r.why));
            }
        }
        if !blocked.is_empty() && !deliberate {
            return Err(ReloadError::Refused(format!(
                "rows already stored would become unreachable: {}. Move the data first, or set \
                 proxy.allow_reshard = true (or reload with force) if this is deliberate",
                blocked.join("; ")
            )));
        }
        for b in &blocked {
            tracing::warn!(change = %b, "deliberate resharding reload: existing rows are not moved");
        }
    }
    let mut changes = d.changes;
    changes.extend(d.reshard.iter().map(|r| format!("{}: {}", r.table.as_deref().unwrap_or("unlisted tables"), r.why)));
    if changes.is_empty() {
        changes.push("no effective change (comments or formatting)".into());
    }
    swap(shared, new);
    if d.tables_changed {
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = shared.refresh_catalog().await {
                tracing::warn!(error = %e, "cannot learn table definitions after a reload; will retry");
            }
        });
    }
    Ok((Outcome { version: 0, changes }, sha))
}

/// Install a validated config: rebuild the cluster from (config, failover
/// topology) and swap both. The topology lock is held across the two stores
/// so failover cannot rebuild from the other config in between. A statement
/// that loads one snapshot before and the other after the swap finds its
/// shard missing at worst, and gets an error (never an index panic).
fn swap(shared: &Shared, new: Config) {
    let topo = shared.topology.lock().unwrap_or_else(|e| e.into_inner());
    let rebuilt = Cluster::build_with(&new, Some(&shared.cluster.load()), &topo);
    let growing = new.shards.len() >= shared.config.load().shards.len();
    if growing {
        shared.cluster.store(Arc::new(rebuilt));
        shared.config.store(new);
    } else {
        shared.config.store(new);
        shared.cluster.store(Arc::new(rebuilt));
    }
}

/// Where `table` has rows, checked on the running config's primaries
/// (`None`: empty or missing everywhere). A shard that cannot be asked
/// counts as having rows.
async fn table_has_rows(shared: &Shared, cfg: &Config, table: &str) -> Option<String> {
    let cluster = shared.cluster.load_full();
    let sql =
        format!("SELECT 1 FROM `{}`.`{}` LIMIT 1", cfg.backend.database.replace('`', "``"), table.replace('`', "``"));
    for nodes in &cluster.shards {
        let answer = async {
            let mut conn = nodes.primary.pool.get(0, &SessionVars::empty()).await?;
            let r = conn.query(&sql).await;
            conn.release();
            r
        };
        match tokio::time::timeout(Duration::from_secs(5), answer).await {
            Ok(Ok((_, rows))) if rows.is_empty() => {}
            Ok(Ok(_)) => return Some(format!("has rows on shard {}", nodes.name)),
            // 1146: no such table there.
            Ok(Err(BackendError::Server(e))) if e.code == 1146 => {}
            Ok(Err(e)) => return Some(format!("shard {} cannot be checked: {e}", nodes.name)),
            Err(_) => return Some(format!("shard {} did not answer within 5 s", nodes.name)),
        }
    }
    None
}

/// A config error with the line of the key it names, when it can be found.
fn with_line(text: &str, e: &ConfigError) -> String {
    match e {
        ConfigError::Invalid { key, .. } => match line_of(text, key) {
            Some(line) => format!("{e} (line {line})"),
            None => e.to_string(),
        },
        _ => e.to_string(),
    }
}

fn short_sha(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Reload whenever the config file changes: edited in place, replaced by a
/// rename (what most editors do), or swapped under a symlink (a Kubernetes
/// ConfigMap volume renames its `..data` link). The directory is watched, not
/// the file, so a replaced file is still seen; events are debounced
/// (`DEBOUNCE` of quiet) and a reload whose text is unchanged does nothing.
pub fn watch(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) -> Option<tokio::task::JoinHandle<()>> {
    use notify::Watcher;
    const DEBOUNCE: Duration = Duration::from_millis(50);
    let path = shared.reload.path()?.to_path_buf();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = match notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            if !matches!(ev.kind, notify::EventKind::Access(_)) {
                let _ = tx.send(());
            }
        }
    }) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP or POST /reload");
            return None;
        }
    };
    let own_dir = parent(&path);
    if let Err(e) = watcher.watch(&own_dir, notify::RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %own_dir.display(), error = %e, "cannot watch the config directory");
    }
    // When the path is a symlink, the directory of the file it resolves to is
    // watched too (and followed when the link moves, as after a ConfigMap swap).
    let mut target_dir: Option<PathBuf> = None;
    let mut follow_target = move |watcher: &mut notify::RecommendedWatcher| {
        let now = std::fs::canonicalize(&path).ok().map(|p| parent(&p)).filter(|d| *d != own_dir);
        if now != target_dir {
            if let Some(old) = &target_dir {
                let _ = watcher.unwatch(old);
            }
            if let Some(d) = &now {
                let _ = watcher.watch(d, notify::RecursiveMode::NonRecursive);
            }
            target_dir = now;
        }
    };
    follow_target(&mut watcher);
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                ev = rx.recv() => if ev.is_none() { return },
                _ = stop.changed() => return,
            }
            // Debounce: wait until the directory has been quiet for a moment.
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
            follow_target(&mut watcher);
            let _ = reload(&shared, false, "file watch").await;
        }
    }))
}

fn parent(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
