//! The merge contract: what the router tells the executor about combining
//! the result sets of several shards. Pure data, built by
//! `router::merge_plan`, read by [`super::Pipeline`].

/// A column of the shard result set. Hidden columns are the proxy's own,
/// appended after the client's select list (whose width the router may not
/// know when it holds a `*`), so they are addressed from the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Col {
    /// The n-th column the client sees (0-based).
    Visible(usize),
    /// The n-th hidden column (0-based).
    Hidden(usize),
}

impl Col {
    /// Index in a shard row with `visible` client columns.
    pub fn index(self, visible: usize) -> usize {
        match self {
            Col::Visible(i) => i,
            Col::Hidden(j) => visible + j,
        }
    }
}

/// One key of an ordering (ORDER BY item, or a group key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub col: Col,
    /// `WEIGHT_STRING(expr)` of the same expression: how text compares under its
    /// collation. NULL for numbers and temporals; `None` when the router could not
    /// name the expression (a position after `*`), which is refused for text.
    pub weight: Option<Col>,
    pub desc: bool,
}

/// How one aggregate column combines across shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    /// COUNT(...): the partial counts are added.
    Count,
    /// SUM(...): added; NULL only when every part is NULL.
    Sum,
    /// MIN / MAX, compared like an ORDER BY key (with the weight of the value).
    Min {
        weight: Option<Col>,
    },
    Max {
        weight: Option<Col>,
    },
    /// AVG(x): the client's column keeps its type; the value is SUM(x) / COUNT(x)
    /// from these (hidden) columns, rounded to the column's decimals.
    Avg {
        sum: Col,
        count: Col,
    },
}

/// An aggregate in the shard result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggCol {
    pub col: Col,
    pub agg: Agg,
}

/// A HAVING condition evaluated by the proxy on merged groups.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Col(Col),
    /// A numeric literal, as written.
    Num(String),
    Str(Vec<u8>),
    Null,
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    /// `<=>`: NULL-safe equality.
    Spaceship,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// How the rows of several shards become the client's result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MergeSpec {
    /// Hidden columns at the end of every shard row; never sent to the client.
    pub hidden: usize,
    /// The order every shard was asked for; the proxy merges the streams by it
    /// (k-way). Empty: the streams are concatenated.
    pub order: Vec<SortKey>,
    /// Grouping: rows whose keys compare equal fold into one (the shards return
    /// each group's partial aggregates, adjacent because `order` starts with
    /// the keys). `Some(vec![])`: one group over everything (aggregates without
    /// GROUP BY).
    pub group: Option<Vec<SortKey>>,
    pub aggs: Vec<AggCol>,
    /// Applied to merged groups.
    pub having: Option<Expr>,
    /// Sort after grouping, when the client's ORDER BY is not the group order
    /// (e.g. ORDER BY COUNT(*) DESC). Buffered within the memory budget.
    pub final_order: Vec<SortKey>,
    pub offset: u64,
    pub limit: Option<u64>,
    /// Every shard was sent `LIMIT offset + limit`: their remaining rows are
    /// few, so a merge that stops early reads them to the end instead of
    /// closing the connections.
    pub limit_pushed: bool,
}

impl MergeSpec {
    /// One line for SHOW SHARDGATE ROUTE.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.order.is_empty() {
            parts.push(format!("{}-key streaming merge", self.order.len()));
        }
        match &self.group {
            Some(keys) if keys.is_empty() => parts.push("aggregate over all shards".to_string()),
            Some(keys) => parts.push(format!("group by {} key(s)", keys.len())),
            None => {}
        }
        if self.having.is_some() {
            parts.push("HAVING in proxy".into());
        }
        if !self.final_order.is_empty() {
            parts.push("sort in proxy".into());
        }
        if let Some(l) = self.limit {
            parts.push(format!(
                "offset {} limit {l}{}",
                self.offset,
                if self.limit_pushed { " (pushed down)" } else { "" }
            ));
        }
        if self.hidden > 0 {
            parts.push(format!("{} hidden column(s)", self.hidden));
        }
        if parts.is_empty() {
            parts.push("concatenate".into());
        }
        parts.join(", ")
    }
}
