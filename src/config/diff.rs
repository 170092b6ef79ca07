//! What a reload would change: pure comparison of the running config with a
//! new, already validated one. Used by the reload (`admin::reload`) to refuse
//! keys that only apply at startup, and to find tables whose rows would move.

use super::{Config, TableRule};

/// The result of comparing two configs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Keys that only apply at startup and differ (the reload must be refused).
    pub restart_only: Vec<String>,
    /// Tables whose rows would be placed differently, with why. Rows already
    /// stored would become unreachable, so these need an empty table or a
    /// deliberate `allow_reshard` / force.
    pub reshard: Vec<Reshard>,
    /// One line per other change, for the log and the reply.
    pub changes: Vec<String>,
    /// `[[tables]]` rules or sequences differ (learned table definitions are refreshed).
    pub tables_changed: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Reshard {
    /// Lower-cased table name; `None` for every table not listed under `[[tables]]`.
    pub table: Option<String>,
    pub why: String,
}

/// Compare the running config with a candidate.
pub fn diff(old: &Config, new: &Config) -> Diff {
    let mut d = Diff::default();
    let (op, np) = (&old.proxy, &new.proxy);
    let mut restart = |key: &str, changed: bool| {
        if changed {
            d.restart_only.push(key.to_owned());
        }
    };
    restart("proxy.listen", op.listen != np.listen);
    restart("proxy.admin_listen", op.admin_listen != np.admin_listen);
    restart("proxy.workers", op.workers != np.workers);
    restart("proxy.tls_cert", op.tls_cert != np.tls_cert);
    restart("proxy.tls_key", op.tls_key != np.tls_key);
    restart("proxy.rsa_private_key", op.rsa_private_key != np.rsa_private_key);
    restart("proxy.watch_config", op.watch_config != np.watch_config);
    restart("proxy.log_format", op.log_format != np.log_format);
    restart("backend.tls_ca", old.backend.tls_ca != new.backend.tls_ca);
    for (i, s) in new.shards.iter().enumerate() {
        let was = old.shards.iter().find(|o| o.name.eq_ignore_ascii_case(&s.name));
        if was.is_some_and(|o| o.tls != s.tls) {
            restart(&format!("shards[{i}].tls"), true);
        }
    }

    let old_default = &old.shards[old.default_shard].name;
    let new_default = &new.shards[new.default_shard].name;
    if !old_default.eq_ignore_ascii_case(new_default) {
        d.reshard.push(Reshard {
            table: None,
            why: format!("proxy.default_shard moves from {old_default} to {new_default}"),
        });
    }
    let mut names: Vec<&String> = old.tables.keys().chain(new.tables.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (a, b) = (placement(old, old.tables.get(name)), placement(new, new.tables.get(name)));
        if a != b {
            d.reshard.push(Reshard { table: Some(name.clone()), why: format!("placed by {a}, would be by {b}") });
        }
    }

    let shard_names = |c: &Config| c.shards.iter().map(|s| s.name.to_ascii_lowercase()).collect::<Vec<_>>();
    let (os, ns) = (shard_names(old), shard_names(new));
    for n in ns.iter().filter(|n| !os.contains(n)) {
        d.changes.push(format!("shard {n} added"));
    }
    for n in os.iter().filter(|n| !ns.contains(n)) {
        d.changes.push(format!("shard {n} removed"));
    }
    for s in &new.shards {
        let Some(o) = old.shards.iter().find(|o| o.name.eq_ignore_ascii_case(&s.name)) else { continue };
        if o.primary != s.primary || o.standby != s.standby {
            d.changes.push(format!("shard {}: primaries changed", s.name));
        }
        let addrs = |v: &[super::Server]| v.iter().map(|r| r.addr.clone()).collect::<Vec<_>>();
        let (or, nr) = (addrs(&o.replicas), addrs(&s.replicas));
        for r in nr.iter().filter(|r| !or.contains(r)) {
            d.changes.push(format!("shard {}: replica {r} added", s.name));
        }
        for r in or.iter().filter(|r| !nr.contains(r)) {
            d.changes.push(format!("shard {}: replica {r} removed", s.name));
        }
    }
    let mut users: Vec<&String> = new.users.keys().filter(|u| !old.users.contains_key(*u)).collect();
    users.sort();
    d.changes.extend(users.iter().map(|u| format!("user {u} added")));
    let mut gone: Vec<&String> = old.users.keys().filter(|u| !new.users.contains_key(*u)).collect();
    gone.sort();
    d.changes.extend(gone.iter().map(|u| format!("user {u} removed")));
    let changed_user = |u: &super::User, v: &super::User| {
        u.stage2_hash != v.stage2_hash || u.require_tls != v.require_tls || u.admin != v.admin
    };
    let mut edited: Vec<&String> = new
        .users
        .iter()
        .filter(|(k, v)| old.users.get(*k).is_some_and(|o| changed_user(o, v)))
        .map(|(k, _)| k)
        .collect();
    edited.sort();
    d.changes.extend(edited.iter().map(|u| format!("user {u} changed")));
    let sections = [
        ("[proxy]", format!("{:?}", strip_restart(op)) != format!("{:?}", strip_restart(np))),
        ("[backend]", format!("{:?}", old.backend) != format!("{:?}", new.backend)),
        ("[health]", format!("{:?}", old.health) != format!("{:?}", new.health)),
    ];
    for (name, changed) in sections {
        if changed {
            d.changes.push(format!("{name} settings changed"));
        }
    }
    d.tables_changed = old.tables.len() != new.tables.len()
        || new.tables.iter().any(|(k, v)| old.tables.get(k).is_none_or(|o| format!("{o:?}") != format!("{v:?}")))
        || old.sequences != new.sequences;
    if d.tables_changed {
        d.changes.push("table rules changed".into());
    }
    d
}

/// The proxy section without the keys a reload cannot change (compared separately).
fn strip_restart(p: &super::schema::ProxySection) -> super::schema::ProxySection {
    let mut p = p.clone();
    p.listen.clear();
    p.admin_listen = None;
    p.admin_token = None;
    p.admin_token_file = None;
    p
}

/// Where a table's rows live under a config, as comparable text: the rule
/// plus every input of the placement (shard list and key ranges for hash,
/// shard count for mod, boundaries for range, the default shard for an
/// unlisted table).
fn placement(cfg: &Config, rule: Option<&TableRule>) -> String {
    let shards = cfg.shards.iter().map(|s| s.name.to_ascii_lowercase()).collect::<Vec<_>>().join(",");
    match rule {
        None => format!("default_shard {}", cfg.shards[cfg.default_shard].name.to_ascii_lowercase()),
        Some(TableRule::Broadcast) => format!("broadcast to [{shards}]"),
        Some(TableRule::Sharded(t)) => {
            let how = match t.algorithm {
                super::Algorithm::Hash => {
                    let ranges = cfg
                        .shards
                        .iter()
                        .map(|s| {
                            format!(
                                "{}:{:x}-{}",
                                s.name,
                                s.key_range.start,
                                s.key_range.end.map_or("".into(), |e| format!("{e:x}"))
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(",");
                    format!("hash over [{ranges}]")
                }
                super::Algorithm::Mod => format!("mod {} over [{shards}]", cfg.shards.len()),
                super::Algorithm::Range => format!("range {:?} over [{shards}]", t.boundaries),
            };
            format!("{how} of {} ({:?}, {})", t.shard_key, t.key_type, t.collation)
        }
    }
}

/// The 1-based line of `key` (a validation error's key path such as
/// `shards[1].primary` or `proxy.default_shard`) in the config text, when it
/// can be found; for pointing the operator at the line in the log.
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    let key = key.split_whitespace().next()?;
    let (section, rest) = key.split_once('.').unwrap_or((key, ""));
    let (name, index) = match section.split_once('[') {
        Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()?),
        None => (section, 0),
    };
    let header = |l: &str| {
        let l = l.trim();
        if index > 0 || section.contains('[') {
            l == format!("[[{name}]]")
        } else {
            l == format!("[{name}]")
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().enumerate().filter(|(_, l)| header(l)).map(|(i, _)| i).nth(index)?;
    let field = rest.split(['.', '[']).next().unwrap_or("");
    if field.is_empty() {
        return Some(start + 1);
    }
    for (i, l) in lines.iter().enumerate().skip(start + 1) {
        let t = l.trim_start();
        if t.starts_with('[') {
            break;
        }
        if t.strip_prefix(field).is_some_and(|r| r.trim_start().starts_with('=')) {
            return Some(i + 1);
        }
    }
    Some(start + 1)
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
