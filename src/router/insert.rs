//! INSERT and REPLACE.

use std::collections::BTreeMap;
use std::ops::Range;

use sqlparser::ast::{Expr, Insert, OnInsert, SetExpr, TableObject};
use sqlparser::tokenizer::Token;

use super::algorithm::shard_for;
use super::analysis::{not_supported, Analysis, Ctx, Routing};
use super::decide::{decide, Shape};
use super::dml::{check_key_assignments, finish};
use super::exprs::{insert_key, literal, Lit};
use super::plan::{RouteError, StmtKind, Targets};
use super::rewrite::split_insert;
use super::tables::{idents, Collector};
use super::KeyParams;
use crate::config::ShardedTable;

pub(crate) fn insert(ctx: &Ctx<'_, '_>, ins: &Insert, sig: &[usize]) -> Analysis {
    Analysis::new(StmtKind::Write, route_insert(ctx, ins, sig))
}

fn route_insert(ctx: &Ctx<'_, '_>, ins: &Insert, sig: &[usize]) -> Result<Routing, RouteError> {
    let TableObject::TableName(name) = &ins.table else {
        return Err(not_supported("INSERT INTO a table function is not supported"));
    };
    let mut c = Collector::new(ctx.cfg, ctx.session.database);
    let scope = c.new_scope();
    let target = c
        .add_table(name, None, scope, false)
        .ok_or_else(|| not_supported("INSERT into this table is not supported"))?;
    if let Some(src) = &ins.source {
        c.walk_query(src, false);
    }
    ins.assignments.iter().for_each(|a| c.walk_expr(&a.value));
    let on_dup = match &ins.on {
        Some(OnInsert::DuplicateKeyUpdate(v)) => v.as_slice(),
        _ => &[],
    };
    on_dup.iter().for_each(|a| c.walk_expr(&a.value));
    let col = finish(c, ctx.lx, sig);
    let Some(table) = col.refs[target].placement.sharded() else {
        return decide(ctx, &col, &Shape { written: &[target], construct: None, limit: false });
    };
    let shown = col.refs[target].shown.clone();
    if let Some(what) = col.opaque {
        return Err(not_supported(format!("shardgate cannot analyse this INSERT ({what})")));
    }
    let values = ins.source.as_ref().and_then(|q| match q.body.as_ref() {
        SetExpr::Values(v) if q.with.is_none() && q.order_by.is_none() && q.limit_clause.is_none() => Some(v),
        _ => None,
    });
    if ins.source.is_some() && values.is_none() {
        return Err(not_supported(format!("INSERT ... SELECT into sharded table {shown} is not supported yet")));
    }
    if col.refs.len() > 1 {
        return Err(not_supported(format!("subqueries in an INSERT into sharded table {shown} are not supported yet")));
    }
    let key = &table.shard_key;
    let needs_value = || not_supported(format!("INSERT into sharded table {shown} needs a value for shard key {key}"));

    // One key expression (and row text range) per row.
    let mut rows: Vec<(&Expr, Option<Range<usize>>)> = Vec::new();
    if let Some(v) = values {
        let idx = if ins.columns.is_empty() {
            // No column list: the key's position comes from the learned table definition.
            let learned = ctx.session.catalog.and_then(|c| c.columns(&table.name));
            let Some(columns) = learned else {
                return Err(needs_column_list(&shown));
            };
            if let Some(row) = v.rows.iter().find(|r| r.content.len() != columns.len()) {
                return Err(not_supported(format!(
                    "INSERT into {shown} without a column list gives {} values, but the table has {} columns; name the columns",
                    row.content.len(),
                    columns.len()
                )));
            }
            columns.iter().position(|c| c == key).ok_or_else(needs_value)?
        } else {
            ins.columns
                .iter()
                .position(|c| idents(c).last().is_some_and(|i| i.value.eq_ignore_ascii_case(key)))
                .ok_or_else(needs_value)?
        };
        for row in &v.rows {
            let e = row
                .content
                .get(idx)
                .ok_or_else(|| not_supported(format!("INSERT into {shown}: a row has fewer values than columns")))?;
            rows.push((
                e,
                row_range(ctx, row.opening_token.0.span.start, row.closing_token.0.span.end, v.explicit_row),
            ));
        }
    } else {
        let a = ins
            .assignments
            .iter()
            .find(|a| {
                a.target.to_string().rsplit('.').next().is_some_and(|c| c.trim_matches('`').eq_ignore_ascii_case(key))
            })
            .ok_or_else(needs_value)?;
        rows.push((&a.value, None));
    }

    let mut shard_of = Vec::new();
    let mut params = Vec::new();
    let mut literal_shards = std::collections::BTreeSet::new();
    for (n, (e, _)) in rows.iter().enumerate() {
        let row = if rows.len() > 1 { format!(" (row {})", n + 1) } else { String::new() };
        let lit = literal(e, ctx.lx).ok_or_else(|| {
            not_supported(format!(
                "INSERT into sharded table {shown}: the shard key {key} must be a literal value{row}"
            ))
        })?;
        match lit {
            Lit::Param(i) if ctx.prepare => params.push(i),
            Lit::Null => return Err(needs_value()),
            lit => {
                let s = place(ctx, table, &lit).map_err(|m| {
                    not_supported(format!(
                        "INSERT into sharded table {shown}: cannot place shard key {key} = {lit}{row}: {m}"
                    ))
                })?;
                shard_of.push(s);
                literal_shards.insert(s);
            }
        }
    }

    let single = literal_shards.len() <= 1 && params.is_empty();
    let target_shard = literal_shards.iter().next().copied();
    let provisional =
        single.then(|| Routing::new(Targets::Shard(target_shard.unwrap_or(ctx.cfg.default_shard)), String::new()));
    check_key_assignments(ctx, &col, &[target], on_dup, provisional.as_ref())?;

    let algo = format!("{:?}", table.algorithm).to_lowercase();
    if !params.is_empty() {
        if literal_shards.len() > 1 {
            return Err(spanning_prepared());
        }
        let mut r = ctx.to_all(format!("{shown}.{key} from placeholders: shard chosen at execute ({algo})"));
        r.key_params = Some(KeyParams {
            table: col.refs[target].name.clone(),
            params,
            literal_shards: literal_shards.into_iter().collect(),
            insert: true,
            multi_shard_error: None,
            required_shard: None,
        });
        return Ok(r);
    }
    if literal_shards.len() == 1 {
        let s = target_shard.expect("one shard");
        let what = if rows.len() == 1 {
            format!("= {}", literal(rows[0].0, ctx.lx).map(|l| l.to_string()).unwrap_or_default())
        } else {
            format!("of {} rows", rows.len())
        };
        return Ok(Routing::new(Targets::Shard(s), format!("{shown}.{key} {what} → {} ({algo})", ctx.shard_name(s))));
    }
    if ctx.prepare {
        return Err(spanning_prepared());
    }
    let ranges: Option<Vec<Range<usize>>> = rows.iter().map(|(_, r)| r.clone()).collect();
    let split = ranges.and_then(|r| split_insert(ctx.lx.sql, &r, &shard_of)).ok_or_else(|| {
        not_supported(format!("cannot split this multi-row INSERT into {shown} by shard; insert the rows separately"))
    })?;
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    shard_of.iter().for_each(|&s| *counts.entry(s).or_default() += 1);
    let desc: Vec<String> = counts
        .iter()
        .map(|(s, n)| format!("{} ({n} row{})", ctx.shard_name(*s), if *n == 1 { "" } else { "s" }))
        .collect();
    let mut r = Routing::new(
        super::analysis::targets_of(&literal_shards),
        format!("INSERT rows by {shown}.{key} → {} ({algo})", desc.join(", ")),
    );
    r.split = Some(split);
    Ok(r)
}

fn spanning_prepared() -> RouteError {
    not_supported("a prepared multi-row INSERT whose rows span shards is not supported; insert them separately")
}

fn place(ctx: &Ctx<'_, '_>, table: &ShardedTable, lit: &Lit) -> Result<usize, String> {
    let v = insert_key(table, lit)?;
    shard_for(ctx.cfg, table, &v).map_err(|e| e.to_string())
}

/// The byte range of a VALUES row, from `(` (or a preceding `ROW`) to `)`.
fn row_range(
    ctx: &Ctx<'_, '_>,
    open: sqlparser::tokenizer::Location,
    close: sqlparser::tokenizer::Location,
    explicit_row: bool,
) -> Option<Range<usize>> {
    let lx = ctx.lx;
    let start = lx.byte_of_start(open)?;
    let end = lx.byte_of_end(close)?;
    let open_tok = lx.token_starting_at(start)?;
    if !matches!(lx.token(open_tok), Token::LParen) || end <= start {
        return None;
    }
    if explicit_row {
        let row_kw = lx.prev_sig(open_tok).filter(|&i| lx.is_kw(i, "ROW"))?;
        return Some(lx.ranges[row_kw].start..end);
    }
    Some(start..end)
}

/// The message the frontend recognises to learn a table's columns and retry.
pub const NEEDS_COLUMN_LIST: &str = "needs a column list";

fn needs_column_list(shown: &str) -> RouteError {
    not_supported(format!(
        "INSERT into sharded table {shown} {NEEDS_COLUMN_LIST}: shardgate does not know its column order (does the table exist?)"
    ))
}
