//! Every table a statement references, grouped into scopes (one per SELECT,
//! one for the target list of UPDATE / DELETE / INSERT), with the conditions
//! that can bind each scope's shard keys.

use std::collections::HashSet;

use sqlparser::ast::{
    Expr, Ident, JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, Query, Select, SetExpr, TableFactor,
    TableWithJoins,
};

use super::exprs::{children, Child};
use crate::config::{Config, ShardedTable, TableRule};

/// Where a referenced table lives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placement<'c> {
    Sharded(&'c ShardedTable),
    Broadcast,
    /// Not listed (or in another schema): only the default shard has it.
    Unlisted,
}

impl<'c> Placement<'c> {
    pub(crate) fn sharded(&self) -> Option<&'c ShardedTable> {
        match self {
            Placement::Sharded(t) => Some(t),
            _ => None,
        }
    }
}

/// One table reference in the statement.
#[derive(Debug, Clone)]
pub(crate) struct TableRef<'c> {
    /// Lower-cased table name without schema.
    pub name: String,
    /// As written, for messages (`app.users`).
    pub shown: String,
    /// Lower-cased schema as written, if any.
    pub schema: Option<String>,
    /// Lower-cased alias.
    pub alias: Option<String>,
    pub placement: Placement<'c>,
    /// Inside a subquery, derived table or CTE.
    pub nested: bool,
}

/// The join of two sides with one side preserved (LEFT / RIGHT JOIN).
#[derive(Debug)]
pub(crate) struct OuterJoin<'a> {
    pub on: Option<&'a Expr>,
    pub using: Vec<String>,
    pub preserved: Vec<usize>,
    pub nullable: Vec<usize>,
}

/// One SELECT (or the target list of a DML statement).
#[derive(Debug, Default)]
pub(crate) struct Scope<'a> {
    /// The enclosing scope (a subquery's outer SELECT or DML statement).
    pub parent: Option<usize>,
    pub refs: Vec<usize>,
    /// Conditions every result row satisfies: WHERE and inner-join ON.
    pub conds: Vec<&'a Expr>,
    /// Inner JOIN ... USING (cols): (refs on the left, refs on the right, columns).
    pub inner_using: Vec<(Vec<usize>, Vec<usize>, Vec<String>)>,
    pub outer: Vec<OuterJoin<'a>>,
}

/// What [`Collector`] found.
#[derive(Debug, Default)]
pub(crate) struct Collected<'a, 'c> {
    pub refs: Vec<TableRef<'c>>,
    pub scopes: Vec<Scope<'a>>,
    /// SELECT bodies walked (checked against the SELECT keywords of the text).
    pub selects: usize,
    /// A construct the walker could not follow.
    pub opaque: Option<&'static str>,
}

/// Walks statements and records table references and scopes.
pub(crate) struct Collector<'a, 'c> {
    cfg: &'c Config,
    session_db: Option<&'a str>,
    ctes: HashSet<String>,
    /// Scopes being walked, innermost last.
    stack: Vec<usize>,
    pub out: Collected<'a, 'c>,
}

impl<'a, 'c> Collector<'a, 'c> {
    pub(crate) fn new(cfg: &'c Config, session_db: Option<&'a str>) -> Self {
        Collector { cfg, session_db, ctes: HashSet::new(), stack: Vec::new(), out: Collected::default() }
    }

    /// Open a scope inside the current one; it stays current until [`Self::close_scope`]
    /// (a DML statement's scope is never closed).
    pub(crate) fn new_scope(&mut self) -> usize {
        let parent = self.stack.last().copied();
        self.out.scopes.push(Scope { parent, ..Scope::default() });
        let id = self.out.scopes.len() - 1;
        self.stack.push(id);
        id
    }

    fn close_scope(&mut self) {
        self.stack.pop();
    }

    /// Add a table reference to `scope`; `None` for CTE names and DUAL.
    pub(crate) fn add_table(
        &mut self,
        name: &ObjectName,
        alias: Option<&Ident>,
        scope: usize,
        nested: bool,
    ) -> Option<usize> {
        let parts = idents(name);
        if let [only] = parts.as_slice() {
            let lower = only.value.to_lowercase();
            if self.ctes.contains(&lower) || lower == "dual" {
                return None;
            }
        }
        let (r, _) = resolve_name(self.cfg, self.session_db, name);
        let r = TableRef { alias: alias.map(|a| a.value.to_lowercase()), nested, ..r };
        self.out.refs.push(r);
        let id = self.out.refs.len() - 1;
        self.out.scopes[scope].refs.push(id);
        Some(id)
    }

    pub(crate) fn walk_query(&mut self, q: &'a Query, nested: bool) {
        // CTE names are visible only inside the query that defines them.
        let saved = q.with.as_ref().map(|_| self.ctes.clone());
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_lowercase());
            }
            for cte in &with.cte_tables {
                self.walk_query(&cte.query, true);
            }
        }
        self.walk_set_expr(&q.body, nested);
        if let Some(ob) = &q.order_by {
            if let sqlparser::ast::OrderByKind::Expressions(v) = &ob.kind {
                v.iter().for_each(|o| self.walk_expr(&o.expr));
            }
        }
        if !q.pipe_operators.is_empty() {
            self.out.opaque = Some("pipe operators");
        }
        if let Some(saved) = saved {
            self.ctes = saved;
        }
    }

    pub(crate) fn walk_set_expr(&mut self, body: &'a SetExpr, nested: bool) {
        match body {
            SetExpr::Select(s) => self.walk_select(s, nested),
            SetExpr::Query(q) => self.walk_query(q, nested),
            SetExpr::SetOperation { left, right, .. } => {
                self.walk_set_expr(left, nested);
                self.walk_set_expr(right, nested);
            }
            SetExpr::Values(v) => v.rows.iter().flat_map(|r| r.content.iter()).for_each(|e| self.walk_expr(e)),
            _ => self.out.opaque = Some("statement used as a query"),
        }
    }

    fn walk_select(&mut self, s: &'a Select, nested: bool) {
        self.out.selects += 1;
        let scope = self.new_scope();
        for twj in &s.from {
            self.walk_twj(twj, scope, nested);
        }
        if let Some(w) = &s.selection {
            self.out.scopes[scope].conds.push(w);
            self.walk_expr(w);
        }
        for item in &s.projection {
            use sqlparser::ast::SelectItem;
            match item {
                SelectItem::UnnamedExpr(e)
                | SelectItem::ExprWithAlias { expr: e, .. }
                | SelectItem::ExprWithAliases { expr: e, .. } => self.walk_expr(e),
                SelectItem::QualifiedWildcard(..) | SelectItem::Wildcard(_) => {}
            }
        }
        if let sqlparser::ast::GroupByExpr::Expressions(v, _) = &s.group_by {
            v.iter().for_each(|e| self.walk_expr(e));
        }
        for e in s.having.iter().chain(&s.qualify).chain(&s.prewhere) {
            self.walk_expr(e);
        }
        if !s.lateral_views.is_empty() || !s.connect_by.is_empty() {
            self.out.opaque = Some("LATERAL VIEW / CONNECT BY");
        }
        self.close_scope();
    }

    /// Walk a FROM item; returns the refs it created.
    pub(crate) fn walk_twj(&mut self, twj: &'a TableWithJoins, scope: usize, nested: bool) -> Vec<usize> {
        let mut left = self.walk_factor(&twj.relation, scope, nested);
        for join in &twj.joins {
            let right = self.walk_factor(&join.relation, scope, nested);
            let (constraint, kind) = match &join.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::CrossJoin(c)
                | JoinOperator::StraightJoin(c) => (Some(c), Kind::Inner),
                JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (Some(c), Kind::Left),
                JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (Some(c), Kind::Right),
                JoinOperator::FullOuter(c) => (Some(c), Kind::Other),
                _ => {
                    self.out.opaque = Some("join kind");
                    (None, Kind::Other)
                }
            };
            if let Some(c) = constraint {
                if let JoinConstraint::On(e) = c {
                    self.walk_expr(e);
                }
                self.record_join(scope, c, kind, &left, &right);
            }
            left.extend(right);
        }
        left
    }

    fn record_join(&mut self, scope: usize, c: &'a JoinConstraint, kind: Kind, left: &[usize], right: &[usize]) {
        let (on, using) = match c {
            JoinConstraint::On(e) => (Some(e), Vec::new()),
            JoinConstraint::Using(cols) | JoinConstraint::UsingAlias(cols, _) => {
                let cols = cols.iter().filter_map(|n| idents(n).last().map(|i| i.value.to_lowercase()));
                (None, cols.collect())
            }
            JoinConstraint::Natural | JoinConstraint::None => return,
        };
        let s = &mut self.out.scopes[scope];
        match kind {
            Kind::Inner => {
                s.conds.extend(on);
                if !using.is_empty() {
                    s.inner_using.push((left.to_vec(), right.to_vec(), using));
                }
            }
            Kind::Left => s.outer.push(OuterJoin { on, using, preserved: left.to_vec(), nullable: right.to_vec() }),
            Kind::Right => s.outer.push(OuterJoin { on, using, preserved: right.to_vec(), nullable: left.to_vec() }),
            Kind::Other => {}
        }
    }

    fn walk_factor(&mut self, f: &'a TableFactor, scope: usize, nested: bool) -> Vec<usize> {
        match f {
            TableFactor::Table { name, alias, args, .. } => {
                if args.is_some() {
                    self.out.opaque = Some("table function");
                }
                self.add_table(name, alias.as_ref().map(|a| &a.name), scope, nested).into_iter().collect()
            }
            TableFactor::Derived { subquery, .. } => {
                self.walk_query(subquery, true);
                Vec::new()
            }
            TableFactor::NestedJoin { table_with_joins, .. } => self.walk_twj(table_with_joins, scope, nested),
            TableFactor::JsonTable { json_expr, .. } => {
                self.walk_expr(json_expr);
                Vec::new()
            }
            TableFactor::TableFunction { expr, .. } => {
                self.walk_expr(expr);
                Vec::new()
            }
            _ => {
                self.out.opaque = Some("table factor");
                Vec::new()
            }
        }
    }

    /// Walk an expression for subqueries (which are nested scopes).
    pub(crate) fn walk_expr(&mut self, e: &'a Expr) {
        children(e, &mut |c| match c {
            Child::Expr(x) => self.walk_expr(x),
            Child::Query(q) => self.walk_query(q, true),
            Child::Opaque(what) => self.out.opaque = Some(what),
        });
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Inner,
    Left,
    Right,
    Other,
}

/// The identifier parts of a name (function parts are dropped).
pub(crate) fn idents(name: &ObjectName) -> Vec<&Ident> {
    name.0
        .iter()
        .filter_map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
}

/// Resolve a table name to a reference (alias unset, not nested) and say whether
/// it is in the proxy's schema.
pub(crate) fn resolve_name<'c>(cfg: &'c Config, session_db: Option<&str>, name: &ObjectName) -> (TableRef<'c>, bool) {
    let parts = idents(name);
    let shown = parts.iter().map(|i| i.value.as_str()).collect::<Vec<_>>().join(".");
    let (schema, table) = match parts.as_slice() {
        [t] => (None, Some(*t)),
        [s, t] => (Some(s.value.to_lowercase()), Some(*t)),
        _ => (None, None),
    };
    let effective = schema.as_deref().or(session_db);
    let ours = table.is_some() && effective.is_none_or(|db| db.eq_ignore_ascii_case(&cfg.backend.database));
    let name = table.map_or_else(|| shown.to_lowercase(), |t| t.value.to_lowercase());
    let placement = match cfg.tables.get(&name) {
        Some(TableRule::Sharded(t)) if ours => Placement::Sharded(t),
        Some(TableRule::Broadcast) if ours => Placement::Broadcast,
        _ => Placement::Unlisted,
    };
    (TableRef { name, shown, schema, alias: None, placement, nested: false }, ours)
}
