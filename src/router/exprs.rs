//! Expression helpers: an exhaustive child walk (so no subquery is ever
//! missed), literal extraction and shard key value conversion.

use sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments, Ident, InTarget, Query,
    UnaryOperator, Value, ValueWithSpan, WindowType,
};

use super::plan::KeyValue;
use crate::config::{KeyType, ShardedTable};
use crate::sql::Lexed;

/// A direct child of an expression.
pub(crate) enum Child<'a> {
    Expr(&'a Expr),
    Query(&'a Query),
    /// A construct MySQL does not have and the router does not follow.
    Opaque(&'static str),
}

/// Call `f` on every direct child expression and subquery of `e`.
pub(crate) fn children<'a>(e: &'a Expr, f: &mut dyn FnMut(Child<'a>)) {
    use Child::Expr as E;
    match e {
        Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Value(_)
        | Expr::TypedString(_)
        | Expr::MatchAgainst { .. }
        | Expr::Wildcard(_)
        | Expr::QualifiedWildcard(..) => {}
        Expr::IsFalse(x)
        | Expr::IsNotFalse(x)
        | Expr::IsTrue(x)
        | Expr::IsNotTrue(x)
        | Expr::IsNull(x)
        | Expr::IsNotNull(x)
        | Expr::IsUnknown(x)
        | Expr::IsNotUnknown(x)
        | Expr::Nested(x)
        | Expr::OuterJoin(x)
        | Expr::Prior(x) => f(E(x)),
        Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
            f(E(a));
            f(E(b));
        }
        Expr::IsJson { expr, .. } | Expr::IsNormalized { expr, .. } => f(E(expr)),
        Expr::JsonAccess { value, .. } => f(E(value)),
        Expr::CompoundFieldAccess { root, .. } => {
            f(E(root));
            f(Child::Opaque("field access"));
        }
        Expr::In { expr, target, .. } => {
            f(E(expr));
            match target {
                InTarget::List(list) => list.iter().for_each(|x| f(E(x))),
                InTarget::Subquery(q) => f(Child::Query(q)),
                InTarget::Unnest(x) => f(E(x)),
                InTarget::Table { .. } => f(Child::Opaque("IN table")),
            }
        }
        Expr::Between { expr, low, high, .. } => {
            f(E(expr));
            f(E(low));
            f(E(high));
        }
        Expr::BinaryOp { left, right, .. } | Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => {
            f(E(left));
            f(E(right));
        }
        Expr::Like { expr, pattern, escape_char, .. }
        | Expr::ILike { expr, pattern, escape_char, .. }
        | Expr::SimilarTo { expr, pattern, escape_char, .. } => {
            f(E(expr));
            f(E(pattern));
            if let Some(x) = escape_char {
                f(E(x));
            }
        }
        Expr::RLike { expr, pattern, .. } => {
            f(E(expr));
            f(E(pattern));
        }
        Expr::UnaryOp { expr, .. }
        | Expr::Cast { expr, .. }
        | Expr::Extract { expr, .. }
        | Expr::Ceil { expr, .. }
        | Expr::Floor { expr, .. }
        | Expr::Collate { expr, .. }
        | Expr::Named { expr, .. } => f(E(expr)),
        Expr::Prefixed { value, .. } => f(E(value)),
        Expr::Convert { expr, styles, .. } => {
            f(E(expr));
            styles.iter().for_each(|x| f(E(x)));
        }
        Expr::AtTimeZone { timestamp, time_zone } => {
            f(E(timestamp));
            f(E(time_zone));
        }
        Expr::Position { expr, r#in } => {
            f(E(expr));
            f(E(r#in));
        }
        Expr::Substring { expr, substring_from, substring_for, .. } => {
            f(E(expr));
            substring_from.iter().chain(substring_for).for_each(|x| f(E(x)));
        }
        Expr::Trim { expr, trim_what, trim_characters, .. } => {
            f(E(expr));
            trim_what.iter().for_each(|x| f(E(x)));
            trim_characters.iter().flatten().for_each(|x| f(E(x)));
        }
        Expr::Overlay { expr, overlay_what, overlay_from, overlay_for } => {
            f(E(expr));
            f(E(overlay_what));
            f(E(overlay_from));
            overlay_for.iter().for_each(|x| f(E(x)));
        }
        Expr::Function(func) => function_children(func, f),
        Expr::Case { operand, conditions, else_result, .. } => {
            operand.iter().for_each(|x| f(E(x)));
            for c in conditions {
                f(E(&c.condition));
                f(E(&c.result));
            }
            else_result.iter().for_each(|x| f(E(x)));
        }
        Expr::Exists { subquery, .. } => f(Child::Query(subquery)),
        Expr::Subquery(q) => f(Child::Query(q)),
        Expr::GroupingSets(sets) | Expr::Cube(sets) | Expr::Rollup(sets) => {
            sets.iter().flatten().for_each(|x| f(E(x)));
        }
        Expr::Tuple(v) => v.iter().for_each(|x| f(E(x))),
        Expr::Struct { values, .. } => values.iter().for_each(|x| f(E(x))),
        Expr::Dictionary(fields) => fields.iter().for_each(|d| f(E(&d.value))),
        Expr::Map(m) => {
            for entry in &m.entries {
                f(E(&entry.key));
                f(E(&entry.value));
            }
        }
        Expr::Array(a) => a.elem.iter().for_each(|x| f(E(x))),
        Expr::Interval(i) => f(E(&i.value)),
        Expr::MemberOf(m) => {
            f(E(&m.value));
            f(E(&m.array));
        }
        Expr::Lambda(l) => {
            f(E(&l.body));
            f(Child::Opaque("lambda"));
        }
    }
}

fn function_children<'a>(func: &'a Function, f: &mut dyn FnMut(Child<'a>)) {
    for args in [&func.parameters, &func.args] {
        match args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(q) => f(Child::Query(q)),
            FunctionArguments::List(list) => {
                for arg in &list.args {
                    let (FunctionArg::Named { arg, .. }
                    | FunctionArg::ExprNamed { arg, .. }
                    | FunctionArg::Unnamed(arg)) = arg;
                    if let FunctionArgExpr::Expr(x) = arg {
                        f(Child::Expr(x));
                    }
                }
                for clause in &list.clauses {
                    match clause {
                        FunctionArgumentClause::Where(x) | FunctionArgumentClause::Limit(x) => f(Child::Expr(x)),
                        FunctionArgumentClause::OrderBy(v) => v.iter().for_each(|o| f(Child::Expr(&o.expr))),
                        _ => {}
                    }
                }
            }
        }
    }
    func.within_group.iter().for_each(|o| f(Child::Expr(&o.expr)));
    func.filter.iter().for_each(|x| f(Child::Expr(x)));
    if let Some(WindowType::WindowSpec(w)) = &func.over {
        w.partition_by.iter().for_each(|x| f(Child::Expr(x)));
        w.order_by.iter().for_each(|o| f(Child::Expr(&o.expr)));
    }
}

/// Visit `e` and all its descendant expressions, not entering subqueries.
pub(crate) fn visit_shallow<'a>(e: &'a Expr, f: &mut dyn FnMut(&'a Expr)) {
    f(e);
    children(e, &mut |c| {
        if let Child::Expr(x) = c {
            visit_shallow(x, f);
        }
    });
}

/// A literal as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lit {
    /// Numeric literal text, sign included (`-5`, `7`, `1.5`, `1e3`).
    Number(String),
    Str(Vec<u8>),
    Null,
    /// The n-th `?` placeholder of the text.
    Param(usize),
    /// Anything else (booleans, hex, dates ...).
    Other,
}

impl std::fmt::Display for Lit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lit::Number(n) => f.write_str(n),
            Lit::Str(s) => write!(f, "'{}'", String::from_utf8_lossy(s).replace('\'', "''")),
            Lit::Null => f.write_str("NULL"),
            Lit::Param(_) => f.write_str("?"),
            Lit::Other => f.write_str("<expr>"),
        }
    }
}

/// The literal `e` is, if any (also `-5` and `(5)`).
pub(crate) fn literal(e: &Expr, lx: &Lexed<'_>) -> Option<Lit> {
    match e {
        Expr::Value(v) => Some(value_lit(v, lx)),
        Expr::UnaryOp { op: op @ (UnaryOperator::Minus | UnaryOperator::Plus), expr } => match expr.as_ref() {
            Expr::Value(ValueWithSpan { value: Value::Number(n, _), .. }) => {
                Some(Lit::Number(if *op == UnaryOperator::Minus { format!("-{n}") } else { n.clone() }))
            }
            _ => None,
        },
        Expr::Nested(inner) => literal(inner, lx),
        _ => None,
    }
}

/// A literal written directly (a value or a signed number), as an IN list item
/// must be for the list to be split; returns its value's span start location.
pub(crate) fn plain_literal_value(e: &Expr) -> Option<&ValueWithSpan> {
    match e {
        Expr::Value(v) => Some(v),
        Expr::UnaryOp { op: UnaryOperator::Minus | UnaryOperator::Plus, expr } => match expr.as_ref() {
            Expr::Value(v @ ValueWithSpan { value: Value::Number(..), .. }) => Some(v),
            _ => None,
        },
        _ => None,
    }
}

fn value_lit(v: &ValueWithSpan, lx: &Lexed<'_>) -> Lit {
    match &v.value {
        Value::Number(n, _) => Lit::Number(n.clone()),
        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) | Value::NationalStringLiteral(s) => {
            Lit::Str(s.as_bytes().to_vec())
        }
        Value::Null => Lit::Null,
        Value::Placeholder(p) if p == "?" => {
            lx.byte_of_start(v.span.start).and_then(|b| lx.placeholder_index(b)).map_or(Lit::Other, Lit::Param)
        }
        _ => Lit::Other,
    }
}

fn number_key(n: &str) -> Option<KeyValue> {
    n.parse::<i64>().map(KeyValue::Int).ok().or_else(|| n.parse::<u64>().ok().map(KeyValue::UInt))
}

/// A literal compared with the shard key in a WHERE clause, as a key value;
/// `None` when comparing it could match rows of other key values (MySQL
/// compares a string column with a number numerically) or it is no value.
/// Non-integer numbers (`7.0`, `1e3`) go to the algorithm as text, which
/// places them only when they are exact integers.
pub(crate) fn where_key(table: &ShardedTable, lit: &Lit) -> Option<KeyValue> {
    match (table.key_type, lit) {
        (KeyType::Int, Lit::Number(n)) => number_key(n).or_else(|| Some(KeyValue::Str(n.as_bytes().to_vec()))),
        (_, Lit::Str(s)) => Some(KeyValue::Str(s.clone())),
        _ => None,
    }
}

/// A literal inserted into the shard key column, as a key value.
pub(crate) fn insert_key(table: &ShardedTable, lit: &Lit) -> Result<KeyValue, String> {
    match (table.key_type, lit) {
        (_, Lit::Null) => Err("NULL".into()),
        (KeyType::Int, Lit::Number(n)) => Ok(number_key(n).unwrap_or_else(|| KeyValue::Str(n.as_bytes().to_vec()))),
        (KeyType::String, Lit::Number(n)) => Ok(KeyValue::Str(n.as_bytes().to_vec())),
        (_, Lit::Str(s)) => Ok(KeyValue::Str(s.clone())),
        (_, Lit::Param(_)) => Err("a '?' placeholder outside a prepared statement".into()),
        (_, Lit::Other) => Err("not a plain literal".into()),
    }
}

/// `(qualifiers, column)` of a column reference.
pub(crate) fn column_of(e: &Expr) -> Option<(&[Ident], &Ident)> {
    match e {
        Expr::Identifier(i) => Some((&[], i)),
        Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            let (col, quals) = parts.split_last()?;
            Some((quals, col))
        }
        Expr::Nested(inner) => column_of(inner),
        _ => None,
    }
}
