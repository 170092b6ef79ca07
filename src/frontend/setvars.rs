//! SET and USE: session state the proxy tracks and replays on every backend
//! connection the session uses.
//!
//! A SET is first run verbatim on a backend (the held connections, or one
//! pooled connection of the default shard), so the server validates it and
//! its error codes reach the client unchanged. Only then is it recorded.
//! Values that are expressions are read back from that server, so what is
//! replayed later is a literal.

use std::sync::Arc;

use super::errors::{Failure, MyErr};
use super::session::Session;
use crate::backend::state::SessionVars;
use crate::config::{Config, Flavor};
use crate::router::{Role, SetItem};

/// A value that replays the same anywhere: a number, a quoted string, NULL,
/// or (for system variables) a bare word such as ON or utf8mb4.
fn is_literal(v: &str, bare_words: bool) -> bool {
    let v = v.trim();
    if v.is_empty() {
        return false;
    }
    let quoted = |q: char| v.len() >= 2 && v.starts_with(q) && v.ends_with(q) && !v[1..v.len() - 1].contains(q);
    if quoted('\'') || quoted('"') {
        return true;
    }
    if v.parse::<f64>().is_ok() || v.eq_ignore_ascii_case("null") {
        return true;
    }
    bare_words && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Quote a value read back from a server as an SQL literal.
fn quote(v: Option<&[u8]>) -> String {
    match v {
        None => "NULL".into(),
        Some(b) => {
            let s = String::from_utf8_lossy(b);
            if s.parse::<i64>().is_ok() {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
            }
        }
    }
}

impl Session {
    pub(crate) async fn set_vars(&mut self, items: Vec<SetItem>, text: &str, cfg: &Arc<Config>) -> Result<(), Failure> {
        let mut new = (*self.vars).clone();
        let mut autocommit = self.autocommit;
        // (read-back expression, key in `new`, is user var)
        let mut read_back: Vec<(String, String, bool)> = Vec::new();
        let mut next_tx = None;
        for item in &items {
            match item {
                SetItem::Names { charset, collation } => {
                    new.names = if charset == "default" {
                        None
                    } else {
                        Some(match collation {
                            Some(c) => format!("{charset} COLLATE {c}"),
                            None => charset.clone(),
                        })
                    };
                }
                SetItem::CharacterSet(cs) => {
                    // SET CHARACTER SET changes client/results and ties connection to the database charset.
                    new.sys.insert("character_set_client".into(), cs.clone());
                    new.sys.insert("character_set_results".into(), cs.clone());
                }
                SetItem::Session { name, value } => {
                    if name == "autocommit" {
                        autocommit = match value.trim().trim_matches('\'').to_ascii_lowercase().as_str() {
                            "1" | "on" | "true" => true,
                            "0" | "off" | "false" => false,
                            _ => {
                                return Err(MyErr::new(
                                    1231,
                                    "42000",
                                    format!("Variable 'autocommit' can't be set to the value of '{value}'"),
                                )
                                .into())
                            }
                        };
                        new.sys.insert(name.clone(), if autocommit { "1".into() } else { "0".into() });
                    } else if value.trim().eq_ignore_ascii_case("default") {
                        new.sys.remove(name);
                    } else if is_literal(value, true) {
                        new.sys.insert(name.clone(), value.trim().to_string());
                    } else {
                        read_back.push((format!("@@session.{name}"), name.clone(), false));
                    }
                }
                SetItem::User { name, value } => {
                    if is_literal(value, false) {
                        new.user.insert(name.clone(), value.trim().to_string());
                    } else {
                        read_back.push((format!("@`{}`", name.replace('`', "``")), name.clone(), true));
                    }
                }
                SetItem::Transaction { session: false, sql } => next_tx = Some(sql.clone()),
                SetItem::Transaction { session: true, .. } => {
                    let (iso, ro) = match cfg.backend.flavor {
                        Flavor::Mariadb => ("tx_isolation", "tx_read_only"),
                        Flavor::Mysql => ("transaction_isolation", "transaction_read_only"),
                    };
                    read_back.push((format!("@@session.{iso}"), iso.into(), false));
                    read_back.push((format!("@@session.{ro}"), ro.into(), false));
                }
            }
        }
        // Run it on every held connection, or on one pooled connection.
        let cluster = self.shared.cluster.load_full();
        let mut targets = std::mem::take(&mut self.held);
        let temporary = targets.is_empty();
        if temporary {
            match self.lease(cfg.default_shard, Role::Primary, cfg, &cluster).await {
                Ok(h) => targets.push(h),
                Err(e) => return Err(e),
            }
        }
        let mut result: Result<(), Failure> = Ok(());
        for h in &mut targets {
            if let Err(e) = h.conn.sync_state(&self.vars, self.schema.as_deref().unwrap_or(&cfg.backend.database)).await
            {
                result = Err(e.into());
                break;
            }
            match h.conn.query(text).await {
                Ok((ok, _)) => self.last_ok = ok,
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            }
        }
        if result.is_ok() && !read_back.is_empty() {
            let sql = format!("SELECT {}", read_back.iter().map(|(e, _, _)| e.as_str()).collect::<Vec<_>>().join(", "));
            match targets[0].conn.query(&sql).await {
                Ok((_, rows)) => {
                    let row = rows.into_iter().next().unwrap_or_default();
                    for (i, (_, key, user)) in read_back.iter().enumerate() {
                        let v = quote(row.get(i).and_then(|c| c.as_deref()));
                        if *user {
                            new.user.insert(key.clone(), v);
                        } else {
                            new.sys.insert(key.clone(), v);
                        }
                    }
                }
                Err(e) => result = Err(e.into()),
            }
        }
        let new = Arc::new(new);
        if result.is_ok() {
            // The SET ran on these connections: they now have the new state.
            for h in &mut targets {
                h.conn.vars = new.clone();
            }
            self.vars = if *new == SessionVars::default() { SessionVars::empty() } else { new };
            self.note_wait_timeout();
            self.autocommit = autocommit;
            if next_tx.is_some() {
                self.next_tx = next_tx;
            }
        } else {
            // State on these connections is uncertain after a failed SET.
            for h in &mut targets {
                h.conn.broken = true;
            }
        }
        for h in targets {
            self.finish(h);
        }
        result?;
        self.send_ok(Default::default());
        Ok(())
    }

    /// USE db / COM_INIT_DB: checked on a backend (so an unknown database gives
    /// the server's own error 1049), then applied to held connections.
    pub(crate) async fn use_database(&mut self, db: &str) -> Result<(), Failure> {
        let db = db.trim().trim_matches('`').to_string();
        if db.is_empty() {
            return Err(MyErr::no_database().into());
        }
        let cfg = self.shared.config.load();
        let cluster = self.shared.cluster.load_full();
        let mut h = match self.held.iter().position(|h| h.shard == cfg.default_shard) {
            Some(i) => self.held.swap_remove(i),
            None => self.lease(cfg.default_shard, Role::Replica, &cfg, &cluster).await?,
        };
        let r = h.conn.init_db(&db).await;
        self.finish(h);
        r?;
        for h in &mut self.held {
            h.conn.init_db(&db).await?;
        }
        self.schema = Some(db);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert!(is_literal("0", false));
        assert!(is_literal("'ANSI,STRICT'", false));
        assert!(is_literal("-1.5", false));
        assert!(is_literal("utf8mb4", true));
        assert!(!is_literal("utf8mb4", false));
        assert!(!is_literal("CONCAT(@@sql_mode, ',ANSI')", true));
        assert_eq!(quote(Some(b"it's")), "'it''s'");
        assert_eq!(quote(Some(b"42")), "42");
        assert_eq!(quote(None), "NULL");
    }
}
