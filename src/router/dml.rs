//! SELECT, UPDATE and DELETE.

use sqlparser::ast::{
    Assignment, AssignmentTarget, Delete, Distinct, Expr, FromTable, FunctionArguments, GroupByExpr, Query, SelectItem,
    SetExpr, TableFactor, Update, UpdateTableFromKind,
};

use super::analysis::{not_supported, target_set, Analysis, Ctx, Routing};
use super::clauses::apply_edits;
use super::decide::{decide, Shape};
use super::exprs::{literal, visit_shallow, where_key};
use super::merge_plan;
use super::plan::{RouteError, StmtKind, Targets};
use super::tables::{idents, Collected, Collector};
use crate::sql::Lexed;

const AGGREGATES: [&str; 17] = [
    "COUNT",
    "SUM",
    "MIN",
    "MAX",
    "AVG",
    "GROUP_CONCAT",
    "STD",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "VARIANCE",
    "VAR_POP",
    "VAR_SAMP",
    "BIT_AND",
    "BIT_OR",
    "BIT_XOR",
    "JSON_ARRAYAGG",
];

/// Finish collecting: check that every SELECT of the text was walked.
pub(crate) fn finish<'a, 'c>(c: Collector<'a, 'c>, lx: &Lexed<'_>, sig: &[usize]) -> Collected<'a, 'c> {
    let mut out = c.out;
    let selects = sig.iter().filter(|&&i| lx.is_kw(i, "SELECT")).count();
    if selects > out.selects && out.opaque.is_none() {
        out.opaque = Some("a SELECT the router could not follow");
    }
    out
}

/// A SELECT (or any query).
pub(crate) fn query(ctx: &Ctx<'_, '_>, q: &Query, sig: &[usize]) -> Analysis {
    let mut c = Collector::new(ctx.cfg, ctx.session.database);
    c.walk_query(q, false);
    let col = finish(c, ctx.lx, sig);
    let locking = !q.locks.is_empty();
    // A construct that concatenated results would get wrong is merged by the
    // proxy when it can be (not yet for prepared statements), refused otherwise.
    let mut rewrite = None;
    let construct = match cross_shard_construct(q) {
        Some(c) => match merge_plan::plan(ctx.lx, q, sig, ctx.prepare) {
            Ok(r) => {
                rewrite = Some(r);
                None
            }
            Err(why) if why == c => Some(c),
            Err(why) => Some(why),
        },
        None => None,
    };
    let shape = Shape { written: &[], construct, limit: false };
    let mut routing = decide(ctx, &col, &shape);
    if let (Ok(r), Some(rw)) = (&mut routing, rewrite) {
        attach_merge(ctx, r, rw);
    }
    let mut a = Analysis::new(if locking { StmtKind::Write } else { StmtKind::Read }, routing);
    if locking {
        if let Ok(r) = &mut a.routing {
            r.reason.push_str("; locking read");
        }
    }
    a
}

/// A routing to several shards gets the merge, and each shard its statement:
/// the merge edits plus, when an IN list was split, that shard's values.
fn attach_merge(ctx: &Ctx<'_, '_>, r: &mut Routing, rw: merge_plan::MergeRewrite) {
    let Some(set) = target_set(&r.targets, ctx.cfg) else { return };
    if set.len() < 2 {
        return;
    }
    if ctx.prepare {
        // A prepared statement that needs a merge runs, when its values span
        // shards, as a text query with the values written in (see
        // frontend::prepared); its plan only says that it merges.
        r.reason.push_str("; merge when the values span shards");
        r.merge = Some(std::sync::Arc::new(rw.spec));
        return;
    }
    let texts = set
        .iter()
        .map(|&shard| {
            let mut edits = rw.edits.clone();
            if let Some(ls) = &r.in_split {
                if let Some((_, values)) = ls.parts.iter().find(|(s, _)| *s == shard) {
                    edits.push((ls.range.clone(), values.clone()));
                }
            }
            (shard, apply_edits(ctx.lx.sql, &edits))
        })
        .collect();
    r.reason.push_str(&format!("; merge: {}", rw.spec.describe()));
    r.split = Some(texts);
    r.merge = Some(std::sync::Arc::new(rw.spec));
}

/// The first top-level construct of a query that is wrong when its results
/// from several shards are concatenated.
pub(crate) fn cross_shard_construct(q: &Query) -> Option<String> {
    if q.order_by.is_some() {
        return Some("ORDER BY".into());
    }
    if let Some(limit) = &q.limit_clause {
        let offset_only =
            matches!(limit, sqlparser::ast::LimitClause::LimitOffset { limit: None, offset: Some(_), .. });
        return Some(if offset_only { "OFFSET" } else { "LIMIT" }.into());
    }
    if q.fetch.is_some() {
        return Some("FETCH".into());
    }
    match q.body.as_ref() {
        SetExpr::Query(inner) => cross_shard_construct(inner),
        SetExpr::SetOperation { op, .. } => Some(op.to_string().to_uppercase()),
        SetExpr::Select(s) => {
            if matches!(s.distinct, Some(Distinct::Distinct | Distinct::On(_))) {
                return Some("DISTINCT".into());
            }
            match &s.group_by {
                GroupByExpr::All(_) => return Some("GROUP BY".into()),
                GroupByExpr::Expressions(v, _) if !v.is_empty() => return Some("GROUP BY".into()),
                _ => {}
            }
            if s.having.is_some() {
                return Some("HAVING".into());
            }
            if !s.named_window.is_empty() || s.qualify.is_some() {
                return Some("WINDOW".into());
            }
            if s.into.is_some() {
                return Some("SELECT ... INTO".into());
            }
            s.projection.iter().find_map(|item| match item {
                SelectItem::UnnamedExpr(e)
                | SelectItem::ExprWithAlias { expr: e, .. }
                | SelectItem::ExprWithAliases { expr: e, .. } => aggregate_name_in(e),
                _ => None,
            })
        }
        _ => None,
    }
}

/// An aggregate function name (upper-case).
pub(crate) fn is_aggregate(name: &str) -> bool {
    AGGREGATES.contains(&name) || name == "JSON_OBJECTAGG"
}

/// An aggregate or window function in `e` (not inside subqueries), rendered.
pub(crate) fn aggregate_name_in(e: &Expr) -> Option<String> {
    let mut found = None;
    visit_shallow(e, &mut |x| {
        if found.is_some() {
            return;
        }
        if let Expr::Function(f) = x {
            let name = f.name.to_string().to_uppercase();
            if f.over.is_some() {
                found = Some(format!("window function {name}()"));
            } else if is_aggregate(&name) {
                let args = match &f.args {
                    FunctionArguments::List(l) => l.to_string(),
                    _ => String::new(),
                };
                found = Some(format!("{name}({args})"));
            }
        }
    });
    found
}

/// References that `assignments` write, resolved against `candidates`.
fn written_refs(col: &Collected<'_, '_>, candidates: &[usize], assignments: &[Assignment]) -> Vec<usize> {
    let mut out = Vec::new();
    for a in assignments {
        let names: Vec<&sqlparser::ast::ObjectName> = match &a.target {
            AssignmentTarget::ColumnName(n) => vec![n],
            AssignmentTarget::Tuple(v) => v.iter().collect(),
        };
        for n in names {
            let parts = idents(n);
            let hit: Vec<usize> = match parts.as_slice() {
                [_] => candidates.to_vec(),
                [.., q, _] => candidates
                    .iter()
                    .copied()
                    .filter(|&r| {
                        let t = &col.refs[r];
                        t.alias
                            .as_deref()
                            .map_or(t.name.eq_ignore_ascii_case(&q.value), |al| al.eq_ignore_ascii_case(&q.value))
                    })
                    .collect(),
                [] => Vec::new(),
            };
            for r in hit {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// Refuse assignments that change a shard key, unless the new value is the
/// column itself (`user_id = user_id`, `VALUES(user_id)`, `new.user_id`) or a
/// literal that stays on the statement's single target shard.
pub(crate) fn check_key_assignments(
    ctx: &Ctx<'_, '_>,
    col: &Collected<'_, '_>,
    candidates: &[usize],
    assignments: &[Assignment],
    routing: Option<&Routing>,
) -> Result<(), RouteError> {
    for a in assignments {
        let AssignmentTarget::ColumnName(n) = &a.target else {
            continue;
        };
        let column = idents(n).last().map(|i| i.value.to_lowercase()).unwrap_or_default();
        for r in written_refs(col, candidates, std::slice::from_ref(a)) {
            let Some(t) = col.refs[r].placement.sharded() else {
                continue;
            };
            if t.shard_key != column || keeps_value(&a.value, &column) {
                continue;
            }
            let stays = literal(&a.value, ctx.lx)
                .and_then(|lit| where_key(t, &lit))
                .and_then(|v| super::algorithm::shard_for(ctx.cfg, t, &v).ok())
                .is_some_and(|s| routing.is_some_and(|r| r.targets == Targets::Shard(s) && r.key_params.is_none()));
            if !stays {
                return Err(not_supported(format!(
                    "changing the shard key {}.{column} would move the row to another shard; DELETE and INSERT it instead",
                    col.refs[r].shown
                )));
            }
        }
    }
    Ok(())
}

fn keeps_value(e: &Expr, column: &str) -> bool {
    match e {
        Expr::Identifier(i) => i.value.eq_ignore_ascii_case(column),
        Expr::CompoundIdentifier(v) => v.last().is_some_and(|i| i.value.eq_ignore_ascii_case(column)),
        Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("VALUES") => match &f.args {
            FunctionArguments::List(l) => l.args.len() == 1 && l.args[0].to_string().eq_ignore_ascii_case(column),
            _ => false,
        },
        Expr::Nested(x) => keeps_value(x, column),
        _ => false,
    }
}

fn dml_construct(order_by: bool, limit: bool, what: &str) -> Option<String> {
    if order_by {
        Some(format!("{what} ... ORDER BY"))
    } else if limit {
        Some(format!("{what} ... LIMIT"))
    } else {
        None
    }
}

pub(crate) fn update(ctx: &Ctx<'_, '_>, u: &Update, sig: &[usize]) -> Analysis {
    let mut c = Collector::new(ctx.cfg, ctx.session.database);
    let scope = c.new_scope();
    let mut targets = c.walk_twj(&u.table, scope, false);
    if let Some(UpdateTableFromKind::BeforeSet(v) | UpdateTableFromKind::AfterSet(v)) = &u.from {
        for twj in v {
            targets.extend(c.walk_twj(twj, scope, false));
        }
    }
    if let Some(w) = &u.selection {
        c.out.scopes[scope].conds.push(w);
        c.walk_expr(w);
    }
    u.assignments.iter().for_each(|a| c.walk_expr(&a.value));
    let col = finish(c, ctx.lx, sig);
    let written = written_refs(&col, &targets, &u.assignments);
    let shape = Shape {
        written: &written,
        construct: dml_construct(!u.order_by.is_empty(), u.limit.is_some(), "UPDATE"),
        limit: u.limit.is_some(),
    };
    let routing = decide(ctx, &col, &shape);
    let check = check_key_assignments(ctx, &col, &targets, &u.assignments, routing.as_ref().ok());
    Analysis::new(StmtKind::Write, check.and(routing))
}

pub(crate) fn delete(ctx: &Ctx<'_, '_>, d: &Delete, sig: &[usize]) -> Analysis {
    let mut c = Collector::new(ctx.cfg, ctx.session.database);
    let scope = c.new_scope();
    let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
    let mut target_names = d.tables.clone();
    let mut refs = Vec::new();
    match &d.using {
        Some(using) => {
            // DELETE FROM t1, t2 USING <join>: the FROM list names the targets.
            for twj in from {
                if let TableFactor::Table { name, .. } = &twj.relation {
                    target_names.push(name.clone());
                }
            }
            for twj in using {
                refs.extend(c.walk_twj(twj, scope, false));
            }
        }
        None => {
            for twj in from {
                refs.extend(c.walk_twj(twj, scope, false));
            }
        }
    }
    if let Some(w) = &d.selection {
        c.out.scopes[scope].conds.push(w);
        c.walk_expr(w);
    }
    let col = finish(c, ctx.lx, sig);
    let written: Vec<usize> = if target_names.is_empty() {
        refs.clone()
    } else {
        refs.iter()
            .copied()
            .filter(|&r| {
                let t = &col.refs[r];
                target_names.iter().any(|n| {
                    let last = idents(n).last().map(|i| i.value.to_lowercase()).unwrap_or_default();
                    t.alias.as_deref().map_or(t.name == last, |a| a == last) || t.name == last
                })
            })
            .collect()
    };
    let shape = Shape {
        written: &written,
        construct: dml_construct(!d.order_by.is_empty(), d.limit.is_some(), "DELETE"),
        limit: d.limit.is_some(),
    };
    Analysis::new(StmtKind::Write, decide(ctx, &col, &shape))
}
