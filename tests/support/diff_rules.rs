//! The comparison contract of one query ([`Rules`]), derived from its text (sqlparser, MySQL
//! dialect) and the result's column names, or given by an annotation in the corpus.
//!
//! Order rule, in this order:
//! 1. An annotation wins: `# order: total`, `# order: none`, or `# keys: 1,3` (1-based output
//!    columns carrying the sort keys).
//! 2. No top-level ORDER BY, or aggregates without GROUP BY (one row): unordered.
//! 3. The ORDER BY is a total order: `Total` (the row sequence must match). Total means: some
//!    key is the unique `id` (plain SELECT); or the keys cover every GROUP BY expression (GROUP
//!    BY); or every selected column (DISTINCT).
//! 4. Otherwise the longest prefix of ORDER BY keys found among the output columns (by position,
//!    alias, column name or identical expression): `Keys` (the key sequence must match).
//! 5. No key in the output: `Unchecked`.
//!
//! A LIMIT needs a total order (or a one-row result): otherwise which tied rows make the cut is
//! up to the server, and [`check_limit`] says the query is a corpus error.
//!
//! Ambiguous columns (text that may be any collation-equal value): with GROUP BY or DISTINCT,
//! every selected column that is not an aggregate; MIN/MAX of anything (applied to text only).

use sqlparser::ast::{Distinct, Expr, FunctionArguments, GroupByExpr, OrderByKind, SelectItem, SetExpr, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use super::diff::{Order, Rules};

/// An annotation from the corpus file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Annotation {
    Total,
    Unordered,
    /// 1-based output columns.
    Keys(Vec<usize>),
}

impl Annotation {
    /// Parses `order: total`, `order: none`, `keys: 1,3`.
    pub fn parse(text: &str) -> Result<Option<Annotation>, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        if let Some(rest) = t.strip_prefix("keys:") {
            let keys: Result<Vec<usize>, _> = rest.split(',').map(|k| k.trim().parse::<usize>()).collect();
            return match keys {
                Ok(k) if !k.is_empty() && k.iter().all(|&k| k > 0) => Ok(Some(Annotation::Keys(k))),
                _ => Err(format!("bad annotation {t:?}: keys: takes 1-based column numbers")),
            };
        }
        match t {
            "order: total" => Ok(Some(Annotation::Total)),
            "order: none" => Ok(Some(Annotation::Unordered)),
            _ => Err(format!("unknown annotation {t:?} (use `keys: 1,3`, `order: total` or `order: none`)")),
        }
    }
}

/// One selected item.
#[derive(Debug, Clone)]
struct Item {
    /// The expression as sqlparser prints it, lowercased.
    expr: String,
    alias: Option<String>,
    /// The aggregate function's name (uppercase) when the item is one.
    aggregate: Option<String>,
}

/// What the comparison needs to know about a query's text.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Top-level ORDER BY keys, printed and lowercased.
    keys: Vec<String>,
    /// GROUP BY expressions, printed and lowercased.
    group_by: Vec<String>,
    distinct: bool,
    /// `None` when the projection has a wildcard.
    items: Option<Vec<Item>>,
    pub limit: bool,
}

const AGGREGATES: [&str; 6] = ["COUNT", "SUM", "MIN", "MAX", "AVG", "GROUP_CONCAT"];

fn aggregate_of(e: &Expr) -> Option<String> {
    match e {
        Expr::Function(f) if matches!(f.args, FunctionArguments::List(_)) => {
            let name = f.name.to_string().to_uppercase();
            AGGREGATES.contains(&name.as_str()).then_some(name)
        }
        Expr::Nested(inner) => aggregate_of(inner),
        _ => None,
    }
}

fn printed(e: &Expr) -> String {
    e.to_string().to_lowercase()
}

impl Shape {
    /// Parses one SELECT. Errors name what could not be analysed.
    pub fn parse(sql: &str) -> Result<Shape, String> {
        let mut stmts = Parser::parse_sql(&MySqlDialect {}, sql).map_err(|e| format!("sqlparser: {e}"))?;
        let Some(Statement::Query(q)) = stmts.pop() else {
            return Err("not a SELECT".into());
        };
        let keys = match q.order_by.as_ref().map(|o| &o.kind) {
            Some(OrderByKind::Expressions(v)) => v.iter().map(|k| printed(&k.expr)).collect(),
            Some(OrderByKind::All(_)) => return Err("ORDER BY ALL".into()),
            None => Vec::new(),
        };
        let limit = q.limit_clause.is_some();
        let SetExpr::Select(s) = q.body.as_ref() else {
            return Ok(Shape { keys, group_by: Vec::new(), distinct: false, items: None, limit });
        };
        let group_by: Vec<String> = match &s.group_by {
            GroupByExpr::Expressions(v, _) => v.iter().map(printed).collect(),
            GroupByExpr::All(_) => return Err("GROUP BY ALL".into()),
        };
        let items = s
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(e) => Some(Item { expr: printed(e), alias: None, aggregate: aggregate_of(e) }),
                SelectItem::ExprWithAlias { expr, alias } => Some(Item {
                    expr: printed(expr),
                    alias: Some(alias.value.to_lowercase()),
                    aggregate: aggregate_of(expr),
                }),
                _ => None,
            })
            .collect::<Option<Vec<Item>>>();
        // `GROUP BY 1` and `GROUP BY alias` name a selected expression.
        let group_by = group_by
            .into_iter()
            .map(|g: String| {
                let Some(items) = &items else { return g };
                let by_pos = g.parse::<usize>().ok().and_then(|n| items.get(n.wrapping_sub(1)));
                let by_alias = || items.iter().find(|it| it.alias.as_deref() == Some(g.as_str()));
                by_pos.or_else(by_alias).map_or(g.clone(), |it| it.expr.clone())
            })
            .collect();
        let distinct = matches!(s.distinct, Some(Distinct::Distinct));
        Ok(Shape { keys, group_by, distinct, items, limit })
    }

    /// How many columns the projection has, when it has no wildcard.
    pub fn width(&self) -> Option<usize> {
        self.items.as_ref().map(Vec::len)
    }

    fn grouped(&self) -> bool {
        self.distinct || !self.group_by.is_empty()
    }

    /// Aggregates and no GROUP BY: exactly one row.
    fn one_row(&self) -> bool {
        self.group_by.is_empty()
            && self.items.as_ref().is_some_and(|items| !items.is_empty() && items.iter().all(|i| i.aggregate.is_some()))
    }

    /// The output column (0-based) an ORDER BY key names, given the result's column names.
    fn resolve(&self, key: &str, names: &[String]) -> Option<usize> {
        if let Ok(n) = key.parse::<usize>() {
            return (n >= 1 && n <= names.len()).then(|| n - 1);
        }
        let unique = |mut it: Vec<usize>| (it.len() == 1).then(|| it.remove(0));
        if let Some(items) = &self.items {
            let by = |f: &dyn Fn(&Item) -> bool| (0..items.len()).filter(|&i| f(&items[i])).collect::<Vec<_>>();
            if let Some(i) = unique(by(&|it| it.alias.as_deref() == Some(key))) {
                return Some(i);
            }
            if let Some(i) = unique(by(&|it| it.expr == key)) {
                return Some(i);
            }
            // `i.name` in the ORDER BY, `name` selected (or the other way round).
            let last = |s: &str| s.rsplit('.').next().unwrap_or(s).to_string();
            let plain = |s: &str| s.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.');
            if plain(key) {
                return unique(by(&|it| it.alias.is_none() && plain(&it.expr) && last(&it.expr) == last(key)));
            }
            return None;
        }
        unique((0..names.len()).filter(|&i| names[i].to_lowercase() == key).collect())
    }

    /// The printed expression of output column `i`, if the projection is known.
    fn item_expr(&self, i: usize) -> Option<&str> {
        self.items.as_ref()?.get(i).map(|it| it.expr.as_str())
    }

    fn total(&self, names: &[String]) -> bool {
        let is_id = |k: &str| k == "id" || k.ends_with(".id");
        let covered = |e: &str| {
            self.keys.iter().any(|k| k == e || self.resolve(k, names).and_then(|i| self.item_expr(i)) == Some(e))
        };
        if !self.group_by.is_empty() {
            return self.group_by.iter().all(|g| covered(g));
        }
        if self.distinct {
            return self.items.as_ref().is_some_and(|items| items.iter().all(|it| covered(&it.expr)));
        }
        self.keys.iter().any(|k| is_id(k) || self.resolve(k, names).and_then(|i| self.item_expr(i)).is_some_and(is_id))
    }

    /// The comparison contract for this query's result with columns `names`.
    pub fn rules(&self, names: &[String], annotation: Option<&Annotation>) -> Rules {
        let ambiguous = match &self.items {
            Some(items) => (0..items.len())
                .filter(|&i| match items[i].aggregate.as_deref() {
                    Some(f) => f == "MIN" || f == "MAX",
                    None => self.grouped(),
                })
                .collect(),
            None if self.grouped() => (0..names.len()).collect(),
            None => Vec::new(),
        };
        let order = match annotation {
            Some(Annotation::Total) => Order::Total,
            Some(Annotation::Unordered) => Order::Unordered,
            Some(Annotation::Keys(k)) => Order::Keys(k.iter().map(|k| k - 1).collect()),
            None if self.keys.is_empty() || self.one_row() => Order::Unordered,
            None if self.total(names) => Order::Total,
            None => {
                let prefix: Vec<usize> = self.keys.iter().map_while(|k| self.resolve(k, names)).collect();
                if prefix.is_empty() {
                    Order::Unchecked(format!("ORDER BY {} is not among the output columns", self.keys[0]))
                } else {
                    Order::Keys(prefix)
                }
            }
        };
        Rules { order, ambiguous }
    }

    /// A LIMIT must come with a total order (or a one-row result); `Err` says why not.
    pub fn check_limit(&self, rules: &Rules) -> Result<(), String> {
        if !self.limit || self.one_row() || rules.order == Order::Total {
            return Ok(());
        }
        Err(if self.keys.is_empty() {
            "LIMIT without ORDER BY: which rows come back is up to the server".into()
        } else {
            "LIMIT with an ORDER BY that is not a total order (add the unique id, or every GROUP BY \
             column, or annotate `# order: total`): which tied rows make the cut is up to the server"
                .into()
        })
    }
}
