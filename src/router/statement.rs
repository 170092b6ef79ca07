//! Routing of one parsed statement: dispatch by statement type, plus DDL,
//! SHOW / DESCRIBE / EXPLAIN and everything else.

use sqlparser::ast::{ObjectName, ObjectType, SchemaName, Statement};

use super::analysis::{and_list, not_supported, Analysis, Ctx, Routing};
use super::decide::{decide, Shape};
use super::dml::{self, finish};
use super::insert::insert;
use super::plan::{RouteError, StmtKind, Targets};
use super::tables::{resolve_name, Collector, Placement};
use crate::sql::classify::mentions_any;

/// Analyse a parsed statement; `sig` are its significant tokens.
pub(crate) fn analyze(ctx: &Ctx<'_, '_>, stmt: &Statement, sig: &[usize]) -> Analysis {
    match stmt {
        Statement::Query(q) => dml::query(ctx, q, sig),
        Statement::Insert(i) => insert(ctx, i, sig),
        Statement::Update(u) => dml::update(ctx, u, sig),
        Statement::Delete(d) => dml::delete(ctx, d, sig),
        Statement::Explain { statement, analyze, .. } => {
            let inner = self::analyze(ctx, statement, sig);
            let mut a = Analysis::new(StmtKind::Read, inner.routing);
            a.read = !*analyze || inner.read;
            a.pins = inner.pins;
            a
        }
        Statement::ExplainTable { table_name, .. } => {
            let (r, _) = resolve_name(ctx.cfg, ctx.session.database, table_name);
            let routing = match r.placement {
                Placement::Unlisted => ctx.to_default(format!("DESCRIBE of unlisted table {}", r.shown)),
                _ => Routing::new(Targets::AnyShard, format!("DESCRIBE of listed table {} → any shard", r.shown)),
            };
            Analysis::new(StmtKind::Read, Ok(routing))
        }
        _ if sig.first().is_some_and(|&i| ctx.lx.is_kw(i, "SHOW")) => {
            Analysis::new(StmtKind::Read, Ok(ctx.to_default("SHOW")))
        }
        Statement::Call(_) => {
            Analysis::new(StmtKind::Write, Ok(ctx.to_default("CALL (procedures live on the default shard)")))
        }
        _ => match ddl(ctx, stmt, sig) {
            Some(a) => a,
            None => other(ctx, stmt, sig),
        },
    }
}

/// Statements that are neither DML nor DDL: the default shard, unless they
/// name a sharded table the router cannot reason about.
fn other(ctx: &Ctx<'_, '_>, stmt: &Statement, sig: &[usize]) -> Analysis {
    let admin = matches!(
        stmt,
        Statement::Grant(_)
            | Statement::Revoke(_)
            | Statement::CreateUser(_)
            | Statement::AlterUser(_)
            | Statement::CreateRole(_)
            | Statement::Flush { .. }
            | Statement::Kill { .. }
            | Statement::Use(_)
            | Statement::Set(_)
            | Statement::Execute { .. }
            | Statement::Deallocate { .. }
    );
    if !admin {
        if let Some(t) = mentions_any(ctx.lx, sig, &sharded_names(ctx)) {
            return Analysis::new(
                StmtKind::Other,
                Err(not_supported(format!(
                    "shardgate does not know how to route this statement on sharded table {t}; \
                     add /* shardgate:shard=NAME */ to route it"
                ))),
            );
        }
    }
    Analysis::new(StmtKind::Other, Ok(ctx.to_default("statement without table routing")))
}

/// Lower-cased names of every sharded table.
pub(crate) fn sharded_names(ctx: &Ctx<'_, '_>) -> Vec<String> {
    let mut v: Vec<String> = ctx
        .cfg
        .tables
        .iter()
        .filter(|(_, r)| matches!(r, crate::config::TableRule::Sharded(_)))
        .map(|(n, _)| n.clone())
        .collect();
    v.sort();
    v
}

/// DDL on tables: every shard when the tables are listed, the default shard
/// when they are not; a mix is refused.
pub(crate) fn ddl_on(ctx: &Ctx<'_, '_>, names: &[&ObjectName], what: &str) -> Result<Routing, RouteError> {
    let mut listed = Vec::new();
    let mut unlisted = Vec::new();
    for n in names {
        let (r, _) = resolve_name(ctx.cfg, ctx.session.database, n);
        match r.placement {
            Placement::Unlisted => unlisted.push(r.shown),
            _ => listed.push(r.shown),
        }
    }
    match (listed.is_empty(), unlisted.is_empty()) {
        (false, true) => Ok(ctx.to_all(format!("{what} on listed table {} → all shards", and_list(&listed)))),
        (true, _) => Ok(ctx.to_default(format!("{what} on unlisted table {}", and_list(&unlisted)))),
        (false, false) => Err(not_supported(format!(
            "{what} mixes tables on every shard ({}) with tables only on the default shard ({}); run it separately for each",
            and_list(&listed),
            and_list(&unlisted)
        ))),
    }
}

fn ddl(ctx: &Ctx<'_, '_>, stmt: &Statement, sig: &[usize]) -> Option<Analysis> {
    let on = |names: Vec<&ObjectName>, what: &str| Some(Analysis::new(StmtKind::Ddl, ddl_on(ctx, &names, what)));
    let all = |why: &str| Some(Analysis::new(StmtKind::Ddl, Ok(ctx.to_all(format!("{why} → all shards")))));
    let default = |why: &str| Some(Analysis::new(StmtKind::Ddl, Ok(ctx.to_default(why))));
    match stmt {
        Statement::CreateTable(ct) => {
            let mut a = match &ct.query {
                Some(q) => Analysis::new(StmtKind::Ddl, create_table_select(ctx, &ct.name, q, sig)),
                None => on(vec![&ct.name], "CREATE TABLE")?,
            };
            a.pins = ct.temporary;
            Some(a)
        }
        Statement::AlterTable(at) => on(vec![&at.name], "ALTER TABLE"),
        Statement::CreateIndex(ci) => on(vec![&ci.table_name], "CREATE INDEX"),
        Statement::Truncate(t) => on(t.table_names.iter().map(|x| &x.name).collect(), "TRUNCATE"),
        Statement::RenameTable(v) => on(v.iter().map(|r| &r.old_name).collect(), "RENAME TABLE"),
        Statement::Drop { object_type, names, table, temporary, .. } => {
            let mut a = match object_type {
                ObjectType::Table => on(names.iter().collect(), "DROP TABLE")?,
                ObjectType::Index => match table {
                    Some(t) => on(vec![t], "DROP INDEX")?,
                    None => default("DROP INDEX")?,
                },
                ObjectType::Database | ObjectType::Schema => all("DROP DATABASE")?,
                _ => default("DROP")?,
            };
            a.pins = *temporary;
            Some(a)
        }
        Statement::CreateDatabase { .. } => all("CREATE DATABASE"),
        Statement::CreateSchema { schema_name: SchemaName::Simple(_) | SchemaName::NamedAuthorization(..), .. } => {
            all("CREATE DATABASE")
        }
        Statement::CreateView(cv) => {
            let mut c = Collector::new(ctx.cfg, ctx.session.database);
            c.walk_query(&cv.query, true);
            let col = finish(c, ctx.lx, sig);
            let sharded: Vec<String> =
                col.refs.iter().filter(|r| r.placement.sharded().is_some()).map(|r| r.shown.clone()).collect();
            let routing = if !sharded.is_empty() {
                Err(not_supported(format!(
                    "a view over sharded table {} would only see the default shard's rows; not supported",
                    and_list(&sharded)
                )))
            } else if let Some(what) = col.opaque {
                Err(not_supported(format!("shardgate cannot analyse this view ({what})")))
            } else {
                Ok(ctx.to_default("CREATE VIEW (views live on the default shard)"))
            };
            Some(Analysis::new(StmtKind::Ddl, routing))
        }
        Statement::AlterView(_) => {
            if let Some(t) = mentions_any(ctx.lx, sig, &sharded_names(ctx)) {
                return Some(Analysis::new(
                    StmtKind::Ddl,
                    Err(not_supported(format!("a view over sharded table {t} is not supported"))),
                ));
            }
            default("ALTER VIEW (views live on the default shard)")
        }
        Statement::CreateTrigger(t) => on(vec![&t.table_name], "CREATE TRIGGER"),
        Statement::DropTrigger(_) => all("DROP TRIGGER (triggers of listed tables live on every shard)"),
        _ if sig
            .first()
            .is_some_and(|&i| ["CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"].iter().any(|k| ctx.lx.is_kw(i, k))) =>
        {
            default("DDL")
        }
        _ => None,
    }
}

/// CREATE TABLE ... SELECT: like INSERT ... SELECT.
fn create_table_select(
    ctx: &Ctx<'_, '_>,
    name: &ObjectName,
    q: &sqlparser::ast::Query,
    sig: &[usize],
) -> Result<Routing, RouteError> {
    let mut c = Collector::new(ctx.cfg, ctx.session.database);
    let scope = c.new_scope();
    let target = c.add_table(name, None, scope, false);
    c.walk_query(q, false);
    let col = finish(c, ctx.lx, sig);
    let Some(target) = target else {
        return Err(not_supported("CREATE TABLE ... SELECT into this name is not supported"));
    };
    if col.refs[target].placement.sharded().is_some() {
        if col.refs.len() > 1 {
            return Err(not_supported(format!(
                "CREATE TABLE ... SELECT for sharded table {} is not supported",
                col.refs[target].shown
            )));
        }
        return Ok(ctx.to_all(format!("CREATE TABLE on sharded table {} → all shards", col.refs[target].shown)));
    }
    decide(ctx, &col, &Shape { written: &[target], construct: None, limit: false })
}
