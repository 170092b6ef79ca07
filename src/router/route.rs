//! The router's entry: hints, multi-statement texts, the fast path, the full
//! parse, and turning an [`Analysis`] into a [`Plan`].

use std::ops::Range;

use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace, Word};

use super::analysis::{not_supported, target_set, Analysis, Ctx, Routing};
use super::fast;
use super::plan::{Action, Merge, Plan, Role, RouteError, StmtKind, Targets};
use super::statement::{analyze, sharded_names};
use super::{KeyParams, SessionView};
use crate::config::{Config, UnparsedMode};
use crate::sql::classify::{looks_like_read, mentions_any, pins_session, uses_connection_state};
use crate::sql::{classify, hints, lex, Hints, Leading, Lexed};

/// Route a client text; `prepare` analyses it for COM_STMT_PREPARE.
pub(crate) fn route_text(
    sql: &str,
    cfg: &Config,
    session: &SessionView<'_>,
    prepare: bool,
) -> (Action, Option<KeyParams>) {
    let lx = match lex(sql) {
        Ok(lx) => lx,
        Err(msg) => return (unlexable(cfg, session, &msg), None),
    };
    if !prepare && sql.contains("@@") {
        if let Some(text) = super::socket::hide_socket(&lx) {
            return (with_text(route_text(&text, cfg, session, false).0, &text, cfg), None);
        }
    }
    let hints = match hints(&lx) {
        Ok(h) => h,
        Err(msg) => return (Action::Error(not_supported(msg)), None),
    };
    let hint_shard = match &hints.shard {
        Some(name) => match cfg.shard_index(name) {
            Some(i) => Some(i),
            None => {
                let valid: Vec<&str> = cfg.shards.iter().map(|s| s.name.as_str()).collect();
                let msg = format!("unknown shard '{name}' in shardgate hint; valid shards: {}", valid.join(", "));
                return (Action::Error(not_supported(msg)), None);
            }
        },
        None => None,
    };
    let ctx = Ctx { cfg, session, lx: &lx, prepare };
    let mut stmts = lx.statements();
    let Some(first) = stmts.first().cloned() else {
        return (Action::Error(RouteError { code: 1065, sqlstate: "42000", message: "Query was empty".into() }), None);
    };
    let first_sig = lx.significant(first.clone());
    let lead = classify(&lx, &first_sig);
    match lead {
        Leading::ShowRoute { inner_start } => {
            let inner = &sql[inner_start..];
            let (inner, _) = match super::sequence::analyze(inner, cfg, session) {
                // Ids are not reserved for a plan: route with a placeholder where each goes.
                Ok(Some(f)) => match route_text(&f.with_placeholders(inner), cfg, session, true) {
                    (Action::Query(mut p), k) => {
                        p.reason =
                            format!("ids from sequence {}.{} filled in first; {}", f.table, f.column, p.reason).into();
                        (Action::Query(p), k)
                    }
                    other => other,
                },
                Ok(None) => route_text(inner, cfg, session, false),
                Err(e) => (Action::Error(e), None),
            };
            return (Action::ShowRoute(Box::new(inner)), None);
        }
        // A stored routine's body holds `;`: the whole text is one statement.
        Leading::Routine { create: true, .. } => {
            stmts.clear();
            stmts.push(0..lx.tokens.len());
        }
        _ => {}
    }
    if stmts.len() == 1 {
        if hints.shard.is_none() {
            if let Some(column) = super::sequence::last_insert_id_select(&lx, &first_sig) {
                return (Action::LastInsertId { column }, None);
            }
            if !prepare {
                if let Some(d) = super::diagnostics::recognise(&lx, &first_sig) {
                    return (Action::Diagnostics(d), None);
                }
            }
        }
        return one(&ctx, first, &hints, hint_shard);
    }
    if prepare {
        return (Action::Error(not_supported("a prepared statement must hold exactly one statement")), None);
    }
    (multi(&ctx, &stmts, &hints, hint_shard), None)
}

/// The plan of a text shardgate rewrote (`socket`): its targets get `text`, not the
/// client's bytes (any shard may be the one picked for `AnyShard`). A plan that
/// splits per shard was cut from `text` already.
fn with_text(action: Action, text: &str, cfg: &Config) -> Action {
    match action {
        Action::Query(mut plan) if plan.split.is_none() => {
            let shards = target_set(&plan.targets, cfg).unwrap_or_else(|| (0..cfg.shards.len()).collect());
            plan.split = Some(shards.into_iter().map(|s| (s, text.to_owned())).collect());
            Action::Query(plan)
        }
        other => other,
    }
}

/// A text the tokenizer rejects (e.g. an unterminated string): no hints can be read.
fn unlexable(cfg: &Config, session: &SessionView<'_>, msg: &str) -> Action {
    if cfg.proxy.unparsed == UnparsedMode::DefaultShard || session.pinned || session.in_transaction {
        return Action::Query(Plan {
            kind: StmtKind::Other,
            targets: Targets::Shard(cfg.default_shard),
            role: Role::Primary,
            split: None,
            merge: Merge::Relay,
            pins_session: false,
            unparsed: true,
            reason: format!("unparsed ({msg}) → default shard").into(),
        });
    }
    Action::Error(not_supported(format!("shardgate cannot parse this statement: {msg}")))
}

fn one(
    ctx: &Ctx<'_, '_>,
    range: Range<usize>,
    hints: &Hints,
    hint_shard: Option<usize>,
) -> (Action, Option<KeyParams>) {
    let lx = ctx.lx;
    let sig = lx.significant(range.clone());
    let analysis = match classify(lx, &sig) {
        Leading::Begin => return (fast::begin(ctx, &sig, range), None),
        Leading::Commit => return (fast::end_transaction(ctx, &sig, true), None),
        Leading::Rollback => return (fast::end_transaction(ctx, &sig, false), None),
        Leading::Savepoint => return (Action::Savepoint, None),
        Leading::Release => {
            return (Action::Error(not_supported("RELEASE is not supported; use RELEASE SAVEPOINT name")), None)
        }
        Leading::Use => return (fast::use_db(ctx, &sig), None),
        Leading::Kill => return (fast::kill(ctx, &sig), None),
        Leading::Admin => return (fast::admin(ctx, &sig), None),
        Leading::Xa => {
            return (Action::Error(not_supported("XA transactions are not supported through shardgate yet")), None)
        }
        Leading::ShowRoute { .. } => {
            return (Action::Error(not_supported("SHOW SHARDGATE ROUTE must be the whole statement")), None)
        }
        Leading::Set => match fast::set(ctx, range) {
            fast::SetOutcome::Action(action) => return (action, None),
            fast::SetOutcome::Global(global) => *global,
        },
        Leading::LockTables => fast::lock_tables(ctx, &sig, range.clone()),
        Leading::UnlockTables => fast::unlock_tables(ctx, &sig),
        Leading::LockOther => Analysis::new(StmtKind::Other, Err(not_supported("only LOCK TABLES is supported"))),
        Leading::Prepare | Leading::Execute | Leading::Deallocate => return (fast::sql_prepared(ctx, &sig), None),
        Leading::Handler => fast::handler(ctx, &sig),
        Leading::Do => fast::do_stmt(ctx, &sig),
        Leading::Load => fast::load(ctx, &sig),
        Leading::Maintenance => fast::maintenance(ctx, &sig),
        Leading::Routine { create, trigger } => fast::routine(ctx, &sig, create, trigger),
        Leading::AlterDatabase => Analysis::new(StmtKind::Ddl, Ok(ctx.to_all("ALTER DATABASE → all shards"))),
        Leading::Other => full_parse(ctx, range, &sig, hint_shard.is_some()),
    };
    finish(ctx, analysis, &sig, hints, hint_shard)
}

/// Tokens for the parser: the statement's own, with `LOCK IN SHARE MODE`
/// (which sqlparser rejects) presented as the equivalent `FOR SHARE`, and a
/// SELECT's `INTO @var, ...` / `INTO OUTFILE ...` clause blanked (sqlparser
/// rejects it after FROM); the second value says whether there was one.
fn parser_tokens(lx: &Lexed<'_>, range: Range<usize>) -> (Vec<TokenWithSpan>, bool) {
    let mut out: Vec<TokenWithSpan> = lx.tokens[range.clone()].to_vec();
    let sig: Vec<usize> = (0..out.len()).filter(|&i| !matches!(out[i].token, Token::Whitespace(_))).collect();
    let kw = |t: &TokenWithSpan, k: &str| matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k));
    let blank = |t: &mut TokenWithSpan| t.token = Token::Whitespace(Whitespace::Space);
    for w in sig.windows(4) {
        if kw(&out[w[0]], "LOCK") && kw(&out[w[1]], "IN") && kw(&out[w[2]], "SHARE") && kw(&out[w[3]], "MODE") {
            let word = |s: &str| Token::Word(Word { value: s.into(), quote_style: None, keyword: keyword_of(s) });
            out[w[0]].token = word("FOR");
            out[w[1]].token = word("SHARE");
            blank(&mut out[w[2]]);
            blank(&mut out[w[3]]);
        }
    }
    let is_select = sig
        .first()
        .is_some_and(|&i| kw(&out[i], "SELECT") || kw(&out[i], "WITH") || matches!(out[i].token, Token::LParen));
    let mut into = false;
    if is_select {
        const STOP: [&str; 10] =
            ["FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "FOR", "LOCK", "UNION", "WINDOW"];
        let mut depth = 0i32;
        let mut blanking = false;
        for &i in &sig {
            match out[i].token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                _ => {}
            }
            if depth != 0 {
                if blanking {
                    blank(&mut out[i]);
                }
                continue;
            }
            if blanking && STOP.iter().any(|k| kw(&out[i], k)) {
                blanking = false;
            } else if kw(&out[i], "INTO") {
                blanking = true;
                into = true;
            }
            if blanking {
                blank(&mut out[i]);
            }
        }
    }
    (out, into)
}

fn keyword_of(s: &str) -> sqlparser::keywords::Keyword {
    match Token::make_keyword(s) {
        Token::Word(w) => w.keyword,
        _ => sqlparser::keywords::Keyword::NoKeyword,
    }
}

fn full_parse(ctx: &Ctx<'_, '_>, range: Range<usize>, sig: &[usize], hinted: bool) -> Analysis {
    let dialect = MySqlDialect {};
    let (tokens, into) = parser_tokens(ctx.lx, range);
    let parsed = Parser::new(&dialect).with_tokens_with_locations(tokens).parse_statements();
    match parsed {
        Ok(stmts) if stmts.len() == 1 => {
            let mut a = analyze(ctx, &stmts[0], sig);
            if into {
                // The result goes to variables or a file on the server, not to the client.
                a.read = false;
                let multi =
                    a.routing.as_ref().ok().and_then(|r| target_set(&r.targets, ctx.cfg)).is_some_and(|s| s.len() > 1);
                if multi {
                    a.routing = Err(not_supported(
                        "This version of shardgate doesn't yet support 'SELECT ... INTO across shards'; add a shard key condition",
                    ));
                }
            }
            a
        }
        Ok(_) => unparsed(ctx, sig, hinted, "more than one statement"),
        Err(e) => unparsed(ctx, sig, hinted, &e.to_string()),
    }
}

/// A statement sqlparser cannot parse.
fn unparsed(ctx: &Ctx<'_, '_>, sig: &[usize], hinted: bool, msg: &str) -> Analysis {
    let read = looks_like_read(ctx.lx, sig);
    let a = |routing| {
        let mut a = Analysis::new(StmtKind::Other, routing);
        a.read = read;
        a.unparsed = true;
        a
    };
    if hinted {
        return a(Ok(Routing::new(Targets::AnyShard, String::new())));
    }
    if let Some(ddl) = fast::alter_table_unparsed(ctx, sig) {
        return ddl;
    }
    let why = if ctx.cfg.proxy.unparsed == UnparsedMode::DefaultShard {
        "unparsed (unparsed = default_shard)"
    } else if ctx.session.pinned || ctx.session.in_transaction {
        "unparsed, session pinned"
    } else {
        return a(Err(not_supported(format!(
            "shardgate cannot parse this statement: {msg}; add /* shardgate:shard=NAME */ to route it"
        ))));
    };
    if let Some(t) = mentions_any(ctx.lx, sig, &sharded_names(ctx)) {
        return a(Err(not_supported(format!(
            "shardgate cannot parse this statement on sharded table {t}: {msg}; add /* shardgate:shard=NAME */ to route it"
        ))));
    }
    a(Ok(ctx.to_default(why)))
}

/// Turn an analysis into the action: hints, role, merge, pins.
fn finish(
    ctx: &Ctx<'_, '_>,
    a: Analysis,
    sig: &[usize],
    hints: &Hints,
    hint_shard: Option<usize>,
) -> (Action, Option<KeyParams>) {
    let routing = match (hint_shard, a.routing) {
        (Some(s), _) => {
            Routing::new(Targets::Shard(s), format!("hint shard={} → {}", ctx.shard_name(s), ctx.shard_name(s)))
        }
        (None, Ok(r)) => r,
        (None, Err(e)) => return (Action::Error(e), None),
    };
    let pins = a.pins || pins_session(ctx.lx, sig);
    // LAST_INSERT_ID() and friends read state of the session's own (primary) connection
    // (a whole `SELECT LAST_INSERT_ID()` is answered by the session: see route_text).
    let read = a.read && !uses_connection_state(ctx.lx, sig);
    let s = ctx.session;
    let (role, why) = if hints.primary {
        (Role::Primary, "hint primary → primary")
    } else if !a.read {
        (Role::Primary, if a.kind == StmtKind::Ddl { "DDL → primary" } else { "write → primary" })
    } else if !read {
        (Role::Primary, "reads connection state → primary")
    } else if pins {
        (Role::Primary, "pins the session → primary")
    } else if s.in_transaction {
        (Role::Primary, "in a transaction → primary")
    } else if !s.autocommit {
        (Role::Primary, "autocommit=0 → primary")
    } else if s.pinned {
        (Role::Primary, "pinned session → primary")
    } else {
        (Role::Replica, "read outside a transaction → replica")
    };
    let merge = match (target_set(&routing.targets, ctx.cfg), routing.merge) {
        (Some(set), Some(spec)) if set.len() > 1 => Merge::Rows(spec),
        (Some(set), _) if set.len() > 1 => Merge::Concat,
        _ => Merge::Relay,
    };
    let reason = if routing.reason.is_empty() { why.to_owned() } else { format!("{}; {why}", routing.reason) };
    let plan = Plan {
        kind: a.kind,
        targets: routing.targets,
        role,
        split: routing.split,
        merge,
        pins_session: pins,
        unparsed: a.unparsed,
        reason: reason.into(),
    };
    (Action::Query(plan), routing.key_params)
}

/// Several statements in one text: allowed when all run on one shard.
fn multi(ctx: &Ctx<'_, '_>, stmts: &[Range<usize>], hints: &Hints, hint_shard: Option<usize>) -> Action {
    let mut plans = Vec::new();
    for (n, range) in stmts.iter().enumerate() {
        let sig = ctx.lx.significant(range.clone());
        let lead = classify(ctx.lx, &sig);
        if matches!(
            lead,
            Leading::Begin
                | Leading::Commit
                | Leading::Rollback
                | Leading::Savepoint
                | Leading::Release
                | Leading::Set
                | Leading::Use
                | Leading::Kill
                | Leading::Admin
                | Leading::Xa
                | Leading::ShowRoute { .. }
        ) {
            return Action::Error(not_supported(format!(
                "transaction control, SET, USE and KILL statements cannot be part of a multi-statement text \
                 (statement {}); send them on their own",
                n + 1
            )));
        }
        match one(ctx, range.clone(), hints, hint_shard).0 {
            Action::Query(p) => plans.push(p),
            Action::Error(e) => return Action::Error(e),
            _ => {
                return Action::Error(not_supported(format!(
                    "statement {} cannot be part of a multi-statement text",
                    n + 1
                )))
            }
        }
    }
    let mut shard: Option<usize> = None;
    let mut spans = false;
    for p in &plans {
        match (p.split.is_some(), target_set(&p.targets, ctx.cfg)) {
            (false, None) => {}
            (false, Some(set)) if set.len() == 1 => {
                let s = *set.iter().next().expect("one");
                spans |= shard.is_some_and(|x| x != s);
                shard = Some(s);
            }
            _ => spans = true,
        }
    }
    if spans {
        let each: Vec<String> = plans
            .iter()
            .enumerate()
            .map(|(n, p)| format!("statement {} → {}", n + 1, describe_targets(ctx, &p.targets)))
            .collect();
        return Action::Error(not_supported(format!(
            "multi-statement text spans shards ({}); send the statements one at a time",
            each.join(", ")
        )));
    }
    let kind = [StmtKind::Ddl, StmtKind::Write, StmtKind::Other]
        .into_iter()
        .find(|k| plans.iter().any(|p| p.kind == *k))
        .unwrap_or(StmtKind::Read);
    let role = if plans.iter().any(|p| p.role == Role::Primary) { Role::Primary } else { Role::Replica };
    let reasons: Vec<String> = plans.iter().enumerate().map(|(n, p)| format!("[{}] {}", n + 1, p.reason)).collect();
    Action::Query(Plan {
        kind,
        targets: shard.map_or(Targets::AnyShard, Targets::Shard),
        role,
        split: None,
        merge: Merge::Relay,
        pins_session: plans.iter().any(|p| p.pins_session),
        unparsed: plans.iter().any(|p| p.unparsed),
        reason: format!("multi-statement text on one shard: {}", reasons.join(" ")).into(),
    })
}

pub(crate) fn describe_targets(ctx: &Ctx<'_, '_>, t: &Targets) -> String {
    match t {
        Targets::Shard(s) => ctx.shard_name(*s).to_owned(),
        Targets::Shards(v) => v.iter().map(|&s| ctx.shard_name(s)).collect::<Vec<_>>().join(", "),
        Targets::All => "all shards".into(),
        Targets::AnyShard => "any shard".into(),
    }
}
