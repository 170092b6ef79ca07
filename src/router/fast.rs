//! Statements handled from their tokens, without sqlparser: transaction
//! control, SET, USE, KILL, LOCK/UNLOCK TABLES, SQL PREPARE / EXECUTE,
//! HANDLER, DO, LOAD DATA, table maintenance and stored routines.

use std::collections::BTreeSet;
use std::ops::Range;

use sqlparser::ast::{Ident, ObjectName};
use sqlparser::tokenizer::Token;

use super::analysis::{not_supported, targets_of, Analysis, Ctx, Routing};
use super::plan::{Action, RouteError, StmtKind};
use super::statement::{ddl_on, sharded_names};
use super::tables::{resolve_name, Placement};
use crate::sql::classify::mentions_any;
use crate::sql::{parse_set, SetStatement};

fn err(msg: impl Into<String>) -> Action {
    Action::Error(not_supported(msg))
}

/// BEGIN [WORK] / START TRANSACTION [characteristics].
pub(crate) fn begin(ctx: &Ctx<'_, '_>, sig: &[usize], range: std::ops::Range<usize>) -> Action {
    let lx = ctx.lx;
    if lx.is_kw(sig[0], "BEGIN") && !(sig.len() == 1 || (sig.len() == 2 && lx.is_kw(sig[1], "WORK"))) {
        return err("BEGIN ... compound statements are not supported; use BEGIN or START TRANSACTION");
    }
    Action::Begin { sql: lx.statement_text(sig[0], range).to_owned() }
}

/// COMMIT / ROLLBACK [WORK] [AND [NO] CHAIN] [[NO] RELEASE].
pub(crate) fn end_transaction(ctx: &Ctx<'_, '_>, sig: &[usize], commit: bool) -> Action {
    let lx = ctx.lx;
    let verb = if commit { "COMMIT" } else { "ROLLBACK" };
    let kw = |n: usize, k: &str| sig.get(n).is_some_and(|&i| lx.is_kw(i, k));
    let mut n = 1;
    if kw(n, "WORK") {
        n += 1;
    }
    if kw(n, "AND") {
        if kw(n + 1, "CHAIN") {
            return err(format!("{verb} AND CHAIN is not supported through shardgate"));
        }
        if !(kw(n + 1, "NO") && kw(n + 2, "CHAIN")) {
            return err(format!("unexpected text after {verb} AND"));
        }
        n += 3;
    }
    if kw(n, "RELEASE") {
        return err(format!("{verb} RELEASE is not supported through shardgate"));
    }
    if kw(n, "NO") && kw(n + 1, "RELEASE") {
        n += 2;
    }
    if n < sig.len() {
        return err(format!("unexpected '{}' after {verb}", lx.text(sig[n])));
    }
    Action::EndTransaction { commit }
}

/// What a SET statement becomes.
pub(crate) enum SetOutcome {
    /// Session state (or an error).
    Action(Action),
    /// A GLOBAL assignment for every primary.
    Global(Box<Analysis>),
}

/// SET ...: session state, or a GLOBAL assignment for every primary.
pub(crate) fn set(ctx: &Ctx<'_, '_>, range: Range<usize>) -> SetOutcome {
    match parse_set(ctx.lx, range) {
        Ok(SetStatement::Session(items)) => SetOutcome::Action(Action::Set(items)),
        Ok(SetStatement::Global) => {
            SetOutcome::Global(Box::new(Analysis::new(StmtKind::Other, Ok(ctx.to_all("SET GLOBAL → every primary")))))
        }
        Err(msg) => SetOutcome::Action(err(msg)),
    }
}

/// USE db.
pub(crate) fn use_db(ctx: &Ctx<'_, '_>, sig: &[usize]) -> Action {
    match (sig.len(), sig.get(1).and_then(|&i| ctx.lx.word(i))) {
        (2, Some(w)) => Action::Use(w.value.clone()),
        _ => err("USE needs exactly one database name"),
    }
}

/// `SHOW SHARDGATE BACKENDS|SHARDS|POOLS`, `SHARDGATE RELOAD [FORCE]`,
/// `SHARDGATE SWITCHOVER <shard>`.
pub(crate) fn admin(ctx: &Ctx<'_, '_>, sig: &[usize]) -> Action {
    use super::plan::AdminStatement as A;
    let lx = ctx.lx;
    let kw = |n: usize, k: &str| sig.get(n).is_some_and(|&i| lx.is_kw(i, k));
    let usage = "shardgate's admin statements: SHOW SHARDGATE BACKENDS | SHARDS | POOLS | ROUTE <sql>, \
                 SHARDGATE RELOAD [FORCE], SHARDGATE SWITCHOVER <shard>";
    let statement = if kw(0, "SHOW") && sig.len() == 3 {
        if kw(2, "BACKENDS") {
            A::ShowBackends
        } else if kw(2, "SHARDS") {
            A::ShowShards
        } else if kw(2, "POOLS") {
            A::ShowPools
        } else {
            return err(usage);
        }
    } else if kw(1, "RELOAD") && (sig.len() == 2 || (sig.len() == 3 && kw(2, "FORCE"))) {
        A::Reload { force: sig.len() == 3 }
    } else if kw(1, "SWITCHOVER") && sig.len() == 3 {
        let shard = match lx.token(sig[2]) {
            Token::Word(w) => w.value.clone(),
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
            _ => return err(usage),
        };
        A::Switchover { shard }
    } else {
        return err(usage);
    };
    Action::Admin(statement)
}

/// KILL [CONNECTION | QUERY] id.
pub(crate) fn kill(ctx: &Ctx<'_, '_>, sig: &[usize]) -> Action {
    let lx = ctx.lx;
    let mut n = 1;
    let mut query_only = false;
    if sig.get(n).is_some_and(|&i| lx.is_kw(i, "CONNECTION")) {
        n += 1;
    } else if sig.get(n).is_some_and(|&i| lx.is_kw(i, "QUERY")) {
        query_only = true;
        n += 1;
        if sig.get(n).is_some_and(|&i| lx.is_kw(i, "ID")) {
            n += 1;
        }
    }
    match (sig.get(n).map(|&i| lx.token(i)), sig.len() == n + 1) {
        (Some(Token::Number(s, _)), true) => match s.parse::<u64>() {
            Ok(connection_id) => Action::Kill { connection_id, query_only },
            Err(_) => err(format!("KILL: bad connection id {s}")),
        },
        _ => err("KILL needs a connection id: KILL [CONNECTION | QUERY] id"),
    }
}

/// A table name `[schema.]table` at `sig[n..]`; returns it and the index after it.
pub(crate) fn name_at(ctx: &Ctx<'_, '_>, sig: &[usize], n: usize) -> Option<(ObjectName, usize)> {
    let lx = ctx.lx;
    let first = lx.word(*sig.get(n)?)?;
    let mut parts = vec![Ident::new(first.value.clone())];
    let mut next = n + 1;
    if sig.get(next).is_some_and(|&i| matches!(lx.token(i), Token::Period)) {
        if let Some(w) = sig.get(next + 1).and_then(|&i| lx.word(i)) {
            parts.push(Ident::new(w.value.clone()));
            next += 2;
        }
    }
    Some((ObjectName::from(parts), next))
}

/// Comma-separated table names starting at `sig[n]`; each name may be followed
/// by other words (aliases, lock types, options) up to the next comma.
fn name_list(ctx: &Ctx<'_, '_>, sig: &[usize], n: usize) -> Option<Vec<ObjectName>> {
    let mut out = Vec::new();
    let mut at = n;
    loop {
        let (name, next) = name_at(ctx, sig, at)?;
        out.push(name);
        match (next..sig.len()).find(|&k| matches!(ctx.lx.token(sig[k]), Token::Comma)) {
            Some(comma) => at = comma + 1,
            None => return Some(out),
        }
    }
}

/// LOCK TABLES: on every shard that holds one of the tables, each shard
/// locking only the tables it has (unlisted tables live on the default shard
/// only; sharded and broadcast tables everywhere). The session is pinned to
/// those connections until UNLOCK TABLES, which goes to every shard.
pub(crate) fn lock_tables(ctx: &Ctx<'_, '_>, sig: &[usize], range: std::ops::Range<usize>) -> Analysis {
    let lx = ctx.lx;
    let Some(names) = name_list(ctx, sig, 2) else {
        return Analysis::new(StmtKind::Other, Err(not_supported("LOCK TABLES needs a table list")));
    };
    // Each item's significant tokens: from its name to the next depth-0 comma.
    let mut items: Vec<(usize, usize)> = Vec::new();
    let (mut start, mut depth) = (2usize, 0i32);
    for (k, &i) in sig.iter().enumerate().skip(2) {
        match lx.token(i) {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                items.push((start, k));
                start = k + 1;
            }
            _ => {}
        }
    }
    items.push((start, sig.len()));
    if items.len() != names.len() {
        return pinned(StmtKind::Other, Err(not_supported("LOCK TABLES: cannot read the table list")));
    }
    let n = ctx.cfg.shards.len();
    let mut per_shard: Vec<Vec<&str>> = vec![Vec::new(); n];
    for (name, &(first, end)) in names.iter().zip(&items) {
        let (r, _) = resolve_name(ctx.cfg, ctx.session.database, name);
        // Up to the comma (or the statement's end), so a version comment's `*/` stays.
        let from = lx.ranges[sig[first]].start;
        let text = match sig.get(end) {
            Some(&comma) => lx.sql[from..lx.ranges[comma].start].trim_end(),
            None => lx.statement_text(sig[first], range.clone()),
        };
        match r.placement {
            Placement::Unlisted => per_shard[ctx.cfg.default_shard].push(text),
            _ => per_shard.iter_mut().for_each(|v| v.push(text)),
        }
    }
    let shards: BTreeSet<usize> = (0..n).filter(|&s| !per_shard[s].is_empty()).collect();
    let mut routing = Routing::new(targets_of(&shards), format!("LOCK TABLES → {}", ctx.shard_names(&shards)));
    if shards.len() > 1 && per_shard.iter().filter(|v| !v.is_empty()).any(|v| v.len() != names.len()) {
        let head = lx.text_between(sig[0], sig[1]);
        routing.split = Some(shards.iter().map(|&s| (s, format!("{head} {}", per_shard[s].join(", ")))).collect());
    }
    pinned(StmtKind::Other, Ok(routing))
}

fn pinned(kind: StmtKind, routing: Result<Routing, RouteError>) -> Analysis {
    let mut a = Analysis::new(kind, routing);
    a.pins = true;
    a.read = false;
    a
}

/// UNLOCK TABLES → every shard (LOCK TABLES may have locked several).
pub(crate) fn unlock_tables(ctx: &Ctx<'_, '_>, sig: &[usize]) -> Analysis {
    if !(sig.len() == 2 && (ctx.lx.is_kw(sig[1], "TABLES") || ctx.lx.is_kw(sig[1], "TABLE"))) {
        return pinned(StmtKind::Other, Err(not_supported("only UNLOCK TABLES is supported")));
    }
    pinned(StmtKind::Other, Ok(ctx.to_all("UNLOCK TABLES on every shard")))
}

/// SQL-level prepared statements, kept by the session: `PREPARE name FROM
/// 'sql'`, `EXECUTE name [USING @a, ...]`, `{DEALLOCATE | DROP} PREPARE name`.
/// The statement runs, at EXECUTE, as a query with the values written in, so
/// it routes like any other (a key in the values picks the shard).
pub(crate) fn sql_prepared(ctx: &Ctx<'_, '_>, sig: &[usize]) -> Action {
    let lx = ctx.lx;
    let ident = |n: usize| -> Option<String> { sig.get(n).and_then(|&i| lx.word(i)).map(|w| w.value.to_lowercase()) };
    if lx.is_kw(sig[0], "PREPARE") {
        let Some(name) = ident(1) else { return err("PREPARE needs a statement name") };
        return match (sig.get(2).map(|&i| lx.is_kw(i, "FROM")), sig.get(3).map(|&i| lx.token(i))) {
            (Some(true), Some(Token::SingleQuotedString(s) | Token::DoubleQuotedString(s))) if sig.len() == 4 => {
                Action::SqlPrepare { name, sql: s.clone() }
            }
            _ => err("PREPARE ... FROM a variable is not supported through shardgate; write the statement as a string"),
        };
    }
    if lx.is_kw(sig[0], "EXECUTE") {
        if sig.get(1).is_some_and(|&i| lx.is_kw(i, "IMMEDIATE")) {
            return err("EXECUTE IMMEDIATE is not supported through shardgate; send the statement itself");
        }
        let Some(name) = ident(1) else { return err("EXECUTE needs a statement name") };
        let mut using = Vec::new();
        if sig.len() > 2 {
            if !lx.is_kw(sig[2], "USING") || sig.len() == 3 {
                return err("EXECUTE name [USING value, ...]: expected USING and the values");
            }
            // The values, split at depth-0 commas: a user variable, or an expression as written.
            let mut groups: Vec<Vec<usize>> = vec![Vec::new()];
            let mut depth = 0i32;
            for &i in &sig[3..] {
                match lx.token(i) {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    Token::Comma if depth == 0 => {
                        groups.push(Vec::new());
                        continue;
                    }
                    _ => {}
                }
                groups.last_mut().expect("one").push(i);
            }
            for g in groups {
                let (Some(&first), Some(&last)) = (g.first(), g.last()) else {
                    return err("EXECUTE name USING: an empty value");
                };
                using.push(match lx.word(first) {
                    Some(w) if g.len() == 1 && w.value.starts_with('@') && w.value.len() > 1 => {
                        super::plan::Using::Var(w.value[1..].to_lowercase())
                    }
                    _ => super::plan::Using::Expr(lx.text_between(first, last).to_owned()),
                });
            }
        }
        return Action::SqlExecute { name, using };
    }
    // DEALLOCATE PREPARE name / DROP PREPARE name
    match ident(2) {
        Some(name) if sig.len() == 3 && lx.is_kw(sig[1], "PREPARE") => Action::SqlDeallocate { name },
        _ => err("DEALLOCATE PREPARE needs a statement name"),
    }
}

/// HANDLER tbl ...: not on sharded tables.
pub(crate) fn handler(ctx: &Ctx<'_, '_>, sig: &[usize]) -> Analysis {
    let routing = match name_at(ctx, sig, 1) {
        Some((name, _)) => {
            let (r, _) = resolve_name(ctx.cfg, ctx.session.database, &name);
            match r.placement {
                Placement::Sharded(_) => {
                    Err(not_supported(format!("HANDLER on sharded table {} is not supported", r.shown)))
                }
                _ => Ok(ctx.to_default(format!("HANDLER {}", r.shown))),
            }
        }
        None => Err(not_supported("HANDLER needs a table name")),
    };
    pinned(StmtKind::Other, routing)
}

/// Refuse when the statement names a sharded table, else the default shard.
fn default_unless_sharded(ctx: &Ctx<'_, '_>, sig: &[usize], kind: StmtKind, what: &str) -> Analysis {
    let routing = match mentions_any(ctx.lx, sig, &sharded_names(ctx)) {
        Some(t) => Err(not_supported(format!("{what} on sharded table {t} is not supported"))),
        None => Ok(ctx.to_default(what)),
    };
    let mut a = Analysis::new(kind, routing);
    a.read = false;
    a
}

/// DO expr, ...
pub(crate) fn do_stmt(ctx: &Ctx<'_, '_>, sig: &[usize]) -> Analysis {
    default_unless_sharded(ctx, sig, StmtKind::Write, "DO")
}

/// LOAD DATA / LOAD XML ... INTO TABLE t: unlisted tables only.
pub(crate) fn load(ctx: &Ctx<'_, '_>, sig: &[usize]) -> Analysis {
    let lx = ctx.lx;
    let at = (0..sig.len().saturating_sub(1)).find(|&k| lx.is_kw(sig[k], "INTO") && lx.is_kw(sig[k + 1], "TABLE"));
    let routing = match at.and_then(|k| name_at(ctx, sig, k + 2)) {
        Some((name, _)) => {
            let (r, _) = resolve_name(ctx.cfg, ctx.session.database, &name);
            match r.placement {
                Placement::Unlisted => Ok(ctx.to_default(format!("LOAD DATA into unlisted table {}", r.shown))),
                Placement::Sharded(_) => Err(not_supported(format!(
                    "LOAD DATA into sharded table {} is not supported; insert the rows with INSERT",
                    r.shown
                ))),
                Placement::Broadcast => Err(not_supported(format!(
                    "LOAD DATA into broadcast table {} is not supported; insert the rows with INSERT",
                    r.shown
                ))),
            }
        }
        None => Err(not_supported("LOAD without INTO TABLE is not supported")),
    };
    Analysis::new(StmtKind::Write, routing)
}

/// ANALYZE / OPTIMIZE / CHECK / REPAIR / CHECKSUM TABLE t, ...
pub(crate) fn maintenance(ctx: &Ctx<'_, '_>, sig: &[usize]) -> Analysis {
    let lx = ctx.lx;
    let verb = lx.text(sig[0]).to_ascii_uppercase();
    let start =
        (1..sig.len()).find(|&k| lx.is_kw(sig[k], "TABLE") || lx.is_kw(sig[k], "TABLES")).map_or(sig.len(), |k| k + 1);
    let routing = match name_list(ctx, sig, start) {
        Some(names) => ddl_on(ctx, &names.iter().collect::<Vec<_>>(), &format!("{verb} TABLE")),
        None => Err(not_supported(format!("{verb} TABLE needs a table list"))),
    };
    let mut a = Analysis::new(StmtKind::Other, routing);
    a.read = false;
    a
}

/// CREATE / ALTER / DROP PROCEDURE, FUNCTION, EVENT, TRIGGER.
pub(crate) fn routine(ctx: &Ctx<'_, '_>, sig: &[usize], create: bool, trigger: bool) -> Analysis {
    let lx = ctx.lx;
    let routing = if trigger && create {
        match (0..sig.len()).find(|&k| lx.is_kw(sig[k], "ON")).and_then(|k| name_at(ctx, sig, k + 1)) {
            Some((name, _)) => ddl_on(ctx, &[&name], "CREATE TRIGGER"),
            None => Err(not_supported("CREATE TRIGGER needs ON table")),
        }
    } else if trigger {
        Ok(ctx.to_all("DROP TRIGGER (triggers of listed tables live on every shard) → all shards"))
    } else {
        Ok(ctx.to_default("stored routine (routines live on the default shard)"))
    };
    Analysis::new(StmtKind::Ddl, routing)
}

/// `ALTER TABLE name ...` that sqlparser cannot parse (e.g. mariadb-dump's
/// `ALTER TABLE t DISABLE KEYS`): DDL on that table, wherever it lives.
pub(crate) fn alter_table_unparsed(ctx: &Ctx<'_, '_>, sig: &[usize]) -> Option<Analysis> {
    let lx = ctx.lx;
    if !(sig.len() > 3 && lx.is_kw(sig[0], "ALTER") && lx.is_kw(sig[1], "TABLE")) {
        return None;
    }
    let (name, _) = name_at(ctx, sig, 2)?;
    let (r, _) = resolve_name(ctx.cfg, ctx.session.database, &name);
    let routing = match r.placement {
        Placement::Unlisted => ctx.to_default(format!("ALTER TABLE of unlisted table {}", r.shown)),
        _ => ctx.to_all(format!("ALTER TABLE {} → every shard", r.shown)),
    };
    let mut a = Analysis::new(StmtKind::Ddl, Ok(routing));
    a.unparsed = true;
    Some(a)
}
