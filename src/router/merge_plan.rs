//! Planning a cross-shard SELECT whose rows must be merged: the
//! [`MergeSpec`] the executor follows, and the edits that turn the client's
//! text into the statement every shard runs (hidden columns appended, ORDER BY
//! set to the merge order, HAVING evaluated by the proxy cut, LIMIT pushed down
//! as `offset + count` or cut). Pure.

use std::ops::Range;

use sqlparser::ast::{
    BinaryOperator, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr,
    LimitClause, OrderByKind, OrderBySort, Query, SelectItem, SetExpr, UnaryOperator, Value,
};

use super::clauses::{text_of, Clause, Clauses};
use crate::merge::spec::{self as ms, Agg, AggCol, Col, MergeSpec, SortKey};
use crate::sql::Lexed;

/// A merge and the shard statement's edits.
#[derive(Debug)]
pub(crate) struct MergeRewrite {
    pub spec: MergeSpec,
    pub edits: Vec<(Range<usize>, String)>,
}

/// What cannot be merged, named for the 1235 message.
type Refusal = String;

const SUPPORTED: [&str; 5] = ["COUNT", "SUM", "MIN", "MAX", "AVG"];

struct Item {
    /// Original text of the expression (alias cut off); empty for `*`.
    text: String,
    /// Display form, for matching ORDER BY / GROUP BY / HAVING expressions.
    norm: String,
    alias: Option<String>,
    wildcard: bool,
}

struct Builder<'q> {
    items: Vec<Item>,
    /// Hidden columns: (display form for dedup, SQL text).
    hidden: Vec<(String, String)>,
    aggs: Vec<AggCol>,
    grouping: bool,
    group_norms: Vec<(String, SortKey)>,
    _q: std::marker::PhantomData<&'q ()>,
}

fn norm(e: &Expr) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A supported aggregate call: (upper-cased name, its single argument; `None` for `*`).
fn agg_call(e: &Expr) -> Result<Option<(String, Option<&Expr>)>, Refusal> {
    let Expr::Function(f) = e else { return Ok(None) };
    let name = f.name.to_string().to_uppercase();
    if !super::dml::is_aggregate(&name) {
        return Ok(None);
    }
    if f.over.is_some() {
        return Err(format!("window function {name}()"));
    }
    if !SUPPORTED.contains(&name.as_str()) {
        return Err(format!("{name}()"));
    }
    let FunctionArguments::List(list) = &f.args else { return Err(format!("{name}() without arguments")) };
    if f.filter.is_some() || !f.within_group.is_empty() || !list.clauses.is_empty() || list.args.len() != 1 {
        return Err(format!("this form of {name}()"));
    }
    let distinct = list.duplicate_treatment == Some(DuplicateTreatment::Distinct);
    if distinct && matches!(name.as_str(), "COUNT" | "SUM" | "AVG") {
        return Err(format!("{name}(DISTINCT ...)"));
    }
    let arg = match &list.args[0] {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x),
        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) if name == "COUNT" => None,
        _ => return Err(format!("this form of {name}()")),
    };
    Ok(Some((name, arg)))
}

fn contains_aggregate(e: &Expr) -> bool {
    super::dml::aggregate_name_in(e).is_some()
}

impl Builder<'_> {
    fn hide(&mut self, norm: String, text: String) -> Col {
        if let Some(j) = self.hidden.iter().position(|(n, _)| *n == norm) {
            return Col::Hidden(j);
        }
        self.hidden.push((norm, text));
        Col::Hidden(self.hidden.len() - 1)
    }

    /// `WEIGHT_STRING(expr)`, followed by `COLLATION(expr)`: the merge needs
    /// the collation's space weight to compare like PAD SPACE, and the result's
    /// column definitions only carry the character set of the result.
    fn weight_of(&mut self, norm: &str, text: &str) -> Col {
        let key = format!("WEIGHT_STRING({norm})");
        if let Some(j) = self.hidden.iter().position(|(n, _)| *n == key) {
            return Col::Hidden(j);
        }
        let w = self.hide(key, format!("WEIGHT_STRING({text})"));
        self.hidden.push((format!("COLLATION({norm})"), format!("COLLATION({text})")));
        w
    }

    /// A position in the select list whose column index is known at plan time.
    fn known(&self, i: usize) -> bool {
        self.items[..i].iter().all(|it| !it.wildcard) && !self.items[i].wildcard
    }

    /// Register an aggregate at `col` (text `text`) and return its weight column for MIN/MAX.
    fn add_agg(&mut self, col: Col, name: &str, arg: Option<&Expr>, text: &str, arg_text: &str) -> Option<Col> {
        let agg = match name {
            "COUNT" => Agg::Count,
            "SUM" => Agg::Sum,
            "MIN" | "MAX" => {
                let w = Some(self.weight_of(text, text));
                let agg = if name == "MIN" { Agg::Min { weight: w } } else { Agg::Max { weight: w } };
                self.aggs.push(AggCol { col, agg });
                return w;
            }
            _ => {
                let a = arg.map(norm).unwrap_or_default();
                let sum = self.hide(format!("SUM({a})"), format!("SUM({arg_text})"));
                let count = self.hide(format!("COUNT({a})"), format!("COUNT({arg_text})"));
                for (c, agg) in [(sum, Agg::Sum), (count, Agg::Count)] {
                    if !self.aggs.iter().any(|x| x.col == c) {
                        self.aggs.push(AggCol { col: c, agg });
                    }
                }
                Agg::Avg { sum, count }
            }
        };
        self.aggs.push(AggCol { col, agg });
        None
    }

    /// An aggregate written elsewhere (ORDER BY, HAVING): the select item that
    /// computes it, or a new hidden column. Returns (column, weight).
    fn agg_ref(&mut self, e: &Expr, text: &str) -> Result<(Col, Option<Col>), Refusal> {
        let Some((name, arg)) = agg_call(e)? else { return Err("an expression over an aggregate".into()) };
        let n = norm(e);
        if let Some(i) = (0..self.items.len()).find(|&i| self.items[i].norm == n && self.known(i)) {
            let w = self.aggs.iter().find(|a| a.col == Col::Visible(i)).and_then(|a| match a.agg {
                Agg::Min { weight } | Agg::Max { weight } => weight,
                _ => None,
            });
            return Ok((Col::Visible(i), w));
        }
        if let Some(j) = self.hidden.iter().position(|(h, _)| *h == n) {
            let c = Col::Hidden(j);
            let w = self.aggs.iter().find(|a| a.col == c).and_then(|a| match a.agg {
                Agg::Min { weight } | Agg::Max { weight } => weight,
                _ => None,
            });
            return Ok((c, w));
        }
        let col = self.hide(n, text.to_owned());
        let arg_text = arg.map(|a| a.to_string()).unwrap_or_else(|| "*".into());
        let w = self.add_agg(col, &name, arg, text, &arg_text);
        Ok((col, w))
    }

    /// Resolve an ORDER BY / GROUP BY expression to a column and its weight.
    fn key(&mut self, e: &Expr, text: &str) -> Result<(Col, Option<Col>), Refusal> {
        if let Expr::Value(v) = e {
            if let Value::Number(n, _) = &v.value {
                let pos: usize = n.parse().map_err(|_| format!("ORDER BY position {n}"))?;
                if pos == 0 || pos > self.items.len() && !self.items.iter().any(|i| i.wildcard) {
                    return Err(format!("ORDER BY / GROUP BY position {pos}"));
                }
                let i = pos - 1;
                let weight = (i < self.items.len() && self.known(i)).then(|| {
                    let (n, t) = (self.items[i].norm.clone(), self.items[i].text.clone());
                    self.weight_of(&n, &t)
                });
                return Ok((Col::Visible(i), weight));
            }
        }
        if let Expr::Identifier(id) = e {
            let name = id.value.to_lowercase();
            if let Some(i) = self.items.iter().position(|it| it.alias.as_deref() == Some(name.as_str())) {
                if !self.known(i) {
                    // Its column index is unknown: the expression again, hidden.
                    let (n, t) = (self.items[i].norm.clone(), self.items[i].text.clone());
                    let w = self.weight_of(&n, &t);
                    return Ok((self.hide(n, t), Some(w)));
                }
                let w = self.aggs.iter().find(|a| a.col == Col::Visible(i)).map(|a| match a.agg {
                    Agg::Min { weight } | Agg::Max { weight } => weight,
                    _ => None,
                });
                let weight = match w {
                    Some(w) => w,
                    None => {
                        let (n, t) = (self.items[i].norm.clone(), self.items[i].text.clone());
                        Some(self.weight_of(&n, &t))
                    }
                };
                return Ok((Col::Visible(i), weight));
            }
        }
        if self.grouping && contains_aggregate(e) {
            return self.agg_ref(e, text);
        }
        let n = norm(e);
        if let Some((_, k)) = self.group_norms.iter().find(|(g, _)| *g == n) {
            return Ok((k.col, k.weight));
        }
        let weight = Some(self.weight_of(&n, text));
        if let Some(i) = (0..self.items.len()).find(|&i| self.items[i].norm == n && self.known(i)) {
            return Ok((Col::Visible(i), weight));
        }
        Ok((self.hide(n, text.to_owned()), weight))
    }

    /// HAVING, for the proxy.
    fn having(&mut self, e: &Expr) -> Result<ms::Expr, Refusal> {
        use ms::{ArithOp as A, CmpOp as C, Expr as H};
        let b = |x: H| Box::new(x);
        Ok(match e {
            Expr::Nested(x) => self.having(x)?,
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => H::Num(n.clone()),
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => H::Str(s.as_bytes().to_vec()),
                Value::Null => H::Null,
                Value::Boolean(t) => H::Num(if *t { "1" } else { "0" }.into()),
                _ => return Err(format!("HAVING with {v}")),
            },
            Expr::Function(_) if contains_aggregate(e) => H::Col(self.agg_ref(e, &e.to_string())?.0),
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => H::Col(self.key(e, &e.to_string())?.0),
            Expr::UnaryOp { op: UnaryOperator::Not, expr } => H::Not(b(self.having(expr)?)),
            Expr::UnaryOp { op: UnaryOperator::Minus, expr } => H::Neg(b(self.having(expr)?)),
            Expr::UnaryOp { op: UnaryOperator::Plus, expr } => self.having(expr)?,
            Expr::IsNull(x) => H::IsNull { expr: b(self.having(x)?), negated: false },
            Expr::IsNotNull(x) => H::IsNull { expr: b(self.having(x)?), negated: true },
            Expr::Between { expr, negated, low, high } => H::Between {
                expr: b(self.having(expr)?),
                low: b(self.having(low)?),
                high: b(self.having(high)?),
                negated: *negated,
            },
            Expr::In { expr, target: sqlparser::ast::InTarget::List(list), negated, .. } => H::InList {
                expr: b(self.having(expr)?),
                list: list.iter().map(|x| self.having(x)).collect::<Result<_, _>>()?,
                negated: *negated,
            },
            Expr::BinaryOp { left, op, right } => {
                let (l, r) = (b(self.having(left)?), b(self.having(right)?));
                match op {
                    BinaryOperator::And => H::And(l, r),
                    BinaryOperator::Or => H::Or(l, r),
                    BinaryOperator::Eq => H::Cmp(C::Eq, l, r),
                    BinaryOperator::NotEq => H::Cmp(C::NotEq, l, r),
                    BinaryOperator::Lt => H::Cmp(C::Lt, l, r),
                    BinaryOperator::LtEq => H::Cmp(C::LtEq, l, r),
                    BinaryOperator::Gt => H::Cmp(C::Gt, l, r),
                    BinaryOperator::GtEq => H::Cmp(C::GtEq, l, r),
                    BinaryOperator::Spaceship => H::Cmp(C::Spaceship, l, r),
                    BinaryOperator::Plus => H::Arith(A::Add, l, r),
                    BinaryOperator::Minus => H::Arith(A::Sub, l, r),
                    BinaryOperator::Multiply => H::Arith(A::Mul, l, r),
                    BinaryOperator::Divide => H::Arith(A::Div, l, r),
                    other => return Err(format!("HAVING with operator {other}")),
                }
            }
            other => return Err(format!("HAVING with {other}")),
        })
    }
}

/// `e` names one of `aliases` (lower-case) as a bare identifier.
fn names_any(e: &Expr, aliases: &[String]) -> bool {
    let mut hit = false;
    super::exprs::visit_shallow(e, &mut |x| {
        if let Expr::Identifier(id) = x {
            hit |= aliases.contains(&id.value.to_lowercase());
        }
    });
    hit
}

fn literal_u64(e: &Expr) -> Option<u64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Plan the merge of `q` (one SELECT, significant tokens `sig`).
///
/// `prepare`: planning a prepared statement, whose LIMIT may be a `?` (the
/// statement is merged as text with its values written in, so only the shape
/// matters here).
pub(crate) fn plan(lx: &Lexed<'_>, q: &Query, sig: &[usize], prepare: bool) -> Result<MergeRewrite, Refusal> {
    if q.with.is_some() {
        return Err("WITH".into());
    }
    if q.fetch.is_some() {
        return Err("FETCH".into());
    }
    let SetExpr::Select(s) = q.body.as_ref() else {
        return Err(match q.body.as_ref() {
            SetExpr::SetOperation { op, .. } => op.to_string().to_uppercase(),
            _ => "a parenthesised query".into(),
        });
    };
    let clauses = Clauses::scan(lx, sig).ok_or("this SELECT's layout")?;
    if clauses.modifiers.iter().any(|m| m == "SQL_CALC_FOUND_ROWS") {
        return Err("SQL_CALC_FOUND_ROWS".into());
    }
    if clauses.items.len() != s.projection.len() || s.into.is_some() || clauses.get(Clause::Into).is_some() {
        return Err("this select list".into());
    }
    if !s.named_window.is_empty() || s.qualify.is_some() {
        return Err("WINDOW".into());
    }
    if clauses.get(Clause::Procedure).is_some() {
        return Err("PROCEDURE".into());
    }
    let mut b = Builder {
        items: Vec::new(),
        hidden: Vec::new(),
        aggs: Vec::new(),
        grouping: false,
        group_norms: Vec::new(),
        _q: std::marker::PhantomData,
    };
    let mut item_exprs: Vec<Option<&Expr>> = Vec::new();
    for (item, toks) in s.projection.iter().zip(&clauses.items) {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (Some(e), None),
            SelectItem::ExprWithAlias { expr, alias } => (Some(expr), Some(alias)),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => (None, None),
            SelectItem::ExprWithAliases { .. } => return Err("this select list".into()),
        };
        let text = match alias {
            None => text_of(lx, toks),
            Some(a) => {
                // Cut `[AS] alias` off the item's tokens.
                let mut t = toks.clone();
                let last = t.pop().ok_or("this select list")?;
                if lx.word(last).is_none_or(|w| w.value != a.value) {
                    return Err("this select list".into());
                }
                if t.last().is_some_and(|&i| lx.is_kw(i, "AS")) {
                    t.pop();
                }
                text_of(lx, &t)
            }
        };
        b.items.push(Item {
            text,
            norm: expr.map(norm).unwrap_or_default(),
            alias: alias.map(|a| a.value.to_lowercase()),
            wildcard: expr.is_none(),
        });
        item_exprs.push(expr);
    }

    // Aggregates in the select list.
    for (i, e) in item_exprs.iter().enumerate() {
        let Some(e) = e else { continue };
        match agg_call(e)? {
            Some((name, arg)) => {
                if !b.known(i) {
                    return Err("an aggregate after * in the select list".into());
                }
                let text = b.items[i].text.clone();
                let arg_text = arg_text_of(&text).ok_or("this aggregate's text")?;
                b.add_agg(Col::Visible(i), &name, arg, &text, &arg_text);
            }
            None => match super::dml::aggregate_name_in(e) {
                Some(w) if w.starts_with("window function") => return Err(w),
                Some(_) => return Err(format!("an expression over an aggregate ({})", b.items[i].text)),
                None => {}
            },
        }
    }
    let group_exprs: &[Expr] = match &s.group_by {
        GroupByExpr::Expressions(v, mods) if mods.is_empty() => v,
        GroupByExpr::Expressions(..) => return Err("GROUP BY ... WITH ROLLUP".into()),
        GroupByExpr::All(_) => return Err("GROUP BY ALL".into()),
    };
    let distinct = matches!(s.distinct, Some(sqlparser::ast::Distinct::Distinct));
    if matches!(s.distinct, Some(sqlparser::ast::Distinct::On(_))) {
        return Err("DISTINCT ON".into());
    }
    b.grouping = !group_exprs.is_empty() || !b.aggs.is_empty() || distinct;
    if distinct && (!group_exprs.is_empty() || !b.aggs.is_empty()) {
        return Err("DISTINCT together with GROUP BY or aggregates".into());
    }

    // Group keys.
    let mut group: Vec<SortKey> = Vec::new();
    if distinct {
        if b.items.iter().any(|i| i.wildcard) {
            return Err("SELECT DISTINCT *".into());
        }
        for i in 0..b.items.len() {
            let (n, t) = (b.items[i].norm.clone(), b.items[i].text.clone());
            let w = b.weight_of(&n, &t);
            let k = SortKey { col: Col::Visible(i), weight: Some(w), desc: false };
            b.group_norms.push((n, k));
            group.push(k);
        }
    } else {
        let texts = clauses.list(lx, sig, Clause::Group, 1);
        if texts.len() != group_exprs.len() {
            return Err("this GROUP BY".into());
        }
        for (e, toks) in group_exprs.iter().zip(&texts) {
            if contains_aggregate(e) {
                return Err("GROUP BY an aggregate".into());
            }
            let text = text_of(lx, toks);
            let (col, weight) = b.key(e, &text)?;
            let k = SortKey { col, weight, desc: false };
            b.group_norms.push((norm(e), k));
            if !group.iter().any(|g| g.col == col) {
                group.push(k);
            }
        }
    }

    // HAVING: with aggregates, evaluated by the proxy on merged groups; without,
    // it only tests group keys and stays on the shards.
    let agg_aliases: Vec<String> = (0..b.items.len())
        .filter(|&i| b.aggs.iter().any(|a| a.col == Col::Visible(i)))
        .filter_map(|i| b.items[i].alias.clone())
        .collect();
    let having = match &s.having {
        Some(h) if contains_aggregate(h) || names_any(h, &agg_aliases) => Some(b.having(h)?),
        _ => None,
    };

    // ORDER BY.
    let mut order: Vec<SortKey> = Vec::new();
    if let Some(ob) = &q.order_by {
        let OrderByKind::Expressions(exprs) = &ob.kind else { return Err("ORDER BY ALL".into()) };
        let texts = clauses.list(lx, sig, Clause::Order, 1);
        if texts.len() != exprs.len() {
            return Err("this ORDER BY".into());
        }
        for (o, toks) in exprs.iter().zip(&texts) {
            if o.options.nulls_first.is_some() || o.with_fill.is_some() {
                return Err("NULLS FIRST / LAST".into());
            }
            let desc = matches!(o.options.sort, Some(OrderBySort::Desc));
            if matches!(o.options.sort, Some(OrderBySort::Using(_))) {
                return Err("ORDER BY ... USING".into());
            }
            let mut t = toks.clone();
            if t.last().is_some_and(|&i| lx.is_kw(i, "ASC") || lx.is_kw(i, "DESC")) {
                t.pop();
            }
            let (col, weight) = b.key(&o.expr, &text_of(lx, &t))?;
            if distinct && !group.iter().any(|g| g.col == col) {
                return Err("SELECT DISTINCT ordered by a column it does not select".into());
            }
            order.push(SortKey { col, weight, desc });
        }
    }

    // LIMIT.
    let (offset, limit) = match &q.limit_clause {
        Some(_) if prepare => (0, None),
        None => (0, None),
        Some(LimitClause::LimitOffset { limit: Some(l), offset, limit_by }) if limit_by.is_empty() => {
            let off = match offset {
                Some(o) => literal_u64(&o.value).ok_or("OFFSET with a parameter or expression")?,
                None => 0,
            };
            (off, Some(literal_u64(l).ok_or("LIMIT with a parameter or expression")?))
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => (
            literal_u64(offset).ok_or("LIMIT with a parameter or expression")?,
            Some(literal_u64(limit).ok_or("LIMIT with a parameter or expression")?),
        ),
        Some(_) => return Err("this LIMIT".into()),
    };

    // Merge order and final order.
    let global = b.grouping && group.is_empty();
    let (source, final_order) = if !b.grouping {
        (order, Vec::new())
    } else if global {
        (Vec::new(), Vec::new())
    } else if order.iter().all(|k| group.iter().any(|g| g.col == k.col)) {
        let mut src = order.clone();
        src.extend(group.iter().filter(|g| !order.iter().any(|k| k.col == g.col)).copied());
        (src, Vec::new())
    } else {
        (group.clone(), order)
    };
    let limit_pushed = limit.is_some() && (!b.grouping || (!global && final_order.is_empty() && having.is_none()));

    // Edits of the shard statement.
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    if !b.hidden.is_empty() {
        let last = *clauses.items.last().and_then(|t| t.last()).ok_or("this select list")?;
        let add: Vec<&str> = b.hidden.iter().map(|(_, t)| t.as_str()).collect();
        edits.push((lx.ranges[last].end..lx.ranges[last].end, format!(", {}", add.join(", "))));
    }
    if having.is_some() {
        let r = clauses.range(lx, Clause::Having).ok_or("this HAVING")?;
        edits.push((r, " ".into()));
    }
    let order_sql = if source.is_empty() {
        String::new()
    } else {
        let keys: Vec<String> = source
            .iter()
            .map(|k| {
                let c = match k.col {
                    Col::Visible(i) => (i + 1).to_string(),
                    Col::Hidden(j) => b.hidden[j].1.clone(),
                };
                if k.desc {
                    format!("{c} DESC")
                } else {
                    c
                }
            })
            .collect();
        format!(" ORDER BY {} ", keys.join(", "))
    };
    match clauses.range(lx, Clause::Order) {
        Some(r) => edits.push((r, order_sql)),
        None if !order_sql.is_empty() => {
            let at = clauses.insert_point(lx, Clause::Order);
            edits.push((at..at, order_sql));
        }
        None => {}
    }
    if let Some(r) = clauses.range(lx, Clause::Limit) {
        let text = match (limit_pushed, limit) {
            (true, Some(l)) => format!(" LIMIT {} ", offset.saturating_add(l)),
            _ => " ".into(),
        };
        edits.push((r, text));
    }

    let spec = MergeSpec {
        hidden: b.hidden.len(),
        order: source,
        group: b.grouping.then_some(group),
        aggs: b.aggs,
        having,
        final_order,
        offset,
        limit,
        limit_pushed,
    };
    Ok(MergeRewrite { spec, edits })
}

/// The argument text of `NAME(arg)`: between the first `(` and the last `)`.
fn arg_text_of(call: &str) -> Option<String> {
    let open = call.find('(')?;
    let close = call.rfind(')')?;
    (close > open).then(|| call[open + 1..close].trim().to_owned())
}
