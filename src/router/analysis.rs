//! Types shared by the routing steps.

use std::collections::BTreeSet;

use super::plan::{RouteError, StmtKind, Targets};
use super::{KeyParams, SessionView};
use crate::config::Config;
use crate::sql::Lexed;

/// Everything a routing step may look at.
pub(crate) struct Ctx<'x, 's> {
    pub cfg: &'x Config,
    pub session: &'x SessionView<'x>,
    pub lx: &'x Lexed<'s>,
    /// Analysing for COM_STMT_PREPARE: `?` are parameters, never split.
    pub prepare: bool,
}

impl Ctx<'_, '_> {
    pub(crate) fn shard_name(&self, i: usize) -> &str {
        self.cfg.shards.get(i).map_or("?", |s| s.name.as_str())
    }

    pub(crate) fn shard_names(&self, set: &BTreeSet<usize>) -> String {
        set.iter().map(|&i| self.shard_name(i)).collect::<Vec<_>>().join(", ")
    }

    pub(crate) fn default_name(&self) -> &str {
        self.shard_name(self.cfg.default_shard)
    }

    /// The default shard, with a reason.
    pub(crate) fn to_default(&self, why: impl std::fmt::Display) -> Routing {
        Routing::new(Targets::Shard(self.cfg.default_shard), format!("{why} → default shard {}", self.default_name()))
    }

    /// Every shard, with a reason.
    pub(crate) fn to_all(&self, why: impl Into<String>) -> Routing {
        Routing::new(Targets::All, why.into())
    }
}

/// What the router learned about one statement.
#[derive(Debug)]
pub(crate) struct Analysis {
    pub kind: StmtKind,
    /// A plain read that a replica may serve (subject to session state).
    pub read: bool,
    /// Pins the session (beyond what the token scan finds).
    pub pins: bool,
    /// sqlparser could not parse the statement.
    pub unparsed: bool,
    pub routing: Result<Routing, RouteError>,
}

impl Analysis {
    pub(crate) fn new(kind: StmtKind, routing: Result<Routing, RouteError>) -> Self {
        Analysis { kind, read: kind == StmtKind::Read, pins: false, unparsed: false, routing }
    }
}

/// Where a statement goes.
#[derive(Debug)]
pub(crate) struct Routing {
    pub targets: Targets,
    pub split: Option<Vec<(usize, String)>>,
    /// The IN list split behind `split`, as an edit (for merges, which edit more).
    pub in_split: Option<super::rewrite::ListSplit>,
    /// Rows from several shards are merged, not concatenated.
    pub merge: Option<std::sync::Arc<crate::merge::MergeSpec>>,
    pub reason: String,
    pub key_params: Option<KeyParams>,
}

impl Routing {
    pub(crate) fn new(targets: Targets, reason: String) -> Self {
        Routing { targets, split: None, in_split: None, merge: None, reason, key_params: None }
    }
}

/// `Shard` for one shard, `Shards` (ascending) for several.
pub(crate) fn targets_of(set: &BTreeSet<usize>) -> Targets {
    if set.len() == 1 {
        Targets::Shard(*set.iter().next().expect("one"))
    } else {
        Targets::Shards(set.iter().copied().collect())
    }
}

/// The shards a target list covers (`None` for AnyShard).
pub(crate) fn target_set(t: &Targets, cfg: &Config) -> Option<BTreeSet<usize>> {
    match t {
        Targets::Shard(s) => Some([*s].into()),
        Targets::Shards(v) => Some(v.iter().copied().collect()),
        Targets::All => Some((0..cfg.shards.len()).collect()),
        Targets::AnyShard => None,
    }
}

pub(crate) fn not_supported(msg: impl Into<String>) -> RouteError {
    RouteError::not_supported(msg)
}

/// Names joined as "a and b" / "a, b and c".
pub(crate) fn and_list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
