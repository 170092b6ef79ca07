//! Session state that must follow a client onto every backend connection it
//! uses: character set (SET NAMES), session system variables and user variables.
//!
//! Connections in the pool keep the state they last had; before a statement
//! runs, the connection is brought to the session's state with one SET that
//! changes only what differs ([`sync_sql`]). Sessions share one `Arc` until
//! they change something, so the common case is a pointer comparison.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};

/// Tracked session state. Values are SQL text, replayed as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionVars {
    /// What follows `SET NAMES` (e.g. `latin1` or `utf8mb4 COLLATE utf8mb4_bin`);
    /// `None` is the backend login default (utf8mb4_general_ci).
    pub names: Option<String>,
    /// Session system variables, lower-cased name → value SQL.
    pub sys: BTreeMap<String, String>,
    /// User variables, name (without @, lower-cased) → value SQL.
    pub user: BTreeMap<String, String>,
}

/// What a fresh backend connection has.
pub const DEFAULT_NAMES: &str = "utf8mb4 COLLATE utf8mb4_general_ci";

impl SessionVars {
    /// The shared empty state.
    pub fn empty() -> Arc<SessionVars> {
        static EMPTY: OnceLock<Arc<SessionVars>> = OnceLock::new();
        EMPTY.get_or_init(|| Arc::new(SessionVars::default())).clone()
    }
}

/// The one SET statement that brings a connection from `have` to `want`, or
/// `None` when they already agree.
pub fn sync_sql(have: &Arc<SessionVars>, want: &Arc<SessionVars>) -> Option<String> {
    if Arc::ptr_eq(have, want) || **have == **want {
        return None;
    }
    let mut items: Vec<String> = Vec::new();
    if have.names != want.names {
        items.push(format!("NAMES {}", want.names.as_deref().unwrap_or(DEFAULT_NAMES)));
    }
    for (k, v) in &want.sys {
        if have.sys.get(k) != Some(v) {
            items.push(format!("SESSION {k} = {v}"));
        }
    }
    for k in have.sys.keys() {
        if !want.sys.contains_key(k) {
            items.push(format!("SESSION {k} = DEFAULT"));
        }
    }
    for (k, v) in &want.user {
        if have.user.get(k) != Some(v) {
            items.push(format!("@`{}` = {v}", k.replace('`', "``")));
        }
    }
    for k in have.user.keys() {
        if !want.user.contains_key(k) {
            items.push(format!("@`{}` = NULL", k.replace('`', "``")));
        }
    }
    let mut sql = String::from("SET ");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "{item}");
    }
    Some(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_states_need_nothing() {
        let a = SessionVars::empty();
        assert_eq!(sync_sql(&a, &a.clone()), None);
        let b = Arc::new(SessionVars::default());
        assert_eq!(sync_sql(&a, &b), None);
    }

    #[test]
    fn only_differences_are_set_and_removed_vars_reset() {
        let mut have = SessionVars::default();
        have.sys.insert("sql_mode".into(), "'ANSI'".into());
        have.sys.insert("time_zone".into(), "'+00:00'".into());
        have.user.insert("x".into(), "1".into());
        let mut want = SessionVars { names: Some("latin1".into()), ..SessionVars::default() };
        want.sys.insert("time_zone".into(), "'+00:00'".into());
        want.sys.insert("autocommit".into(), "0".into());
        let sql = sync_sql(&Arc::new(have), &Arc::new(want)).unwrap();
        assert_eq!(sql, "SET NAMES latin1, SESSION autocommit = 0, SESSION sql_mode = DEFAULT, @`x` = NULL");
    }
}
