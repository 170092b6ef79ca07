//! Shard key extraction: which key values each sharded table reference is
//! restricted to by the conditions of its scope.
//!
//! A condition binds a reference when it is part of the top-level AND of the
//! WHERE (or of an inner join's ON): `key = lit`, `lit = key`, `key IN (lits)`,
//! or an OR of such on the same key. `a.key = b.key` makes both references
//! share their bindings; a LEFT JOIN's ON only restricts its nullable side.
//! Any one binding of a conjunction is a correct superset of the rows, so the
//! router picks the one that touches the fewest shards.

use std::collections::{BTreeSet, HashMap};

use sqlparser::ast::{BinaryOperator, Expr, InTarget};

use super::algorithm::shard_for;
use super::exprs::{column_of, literal, where_key, Lit};
use super::tables::{Collected, TableRef};
use crate::config::{Algorithm, Config, KeyType, ShardedTable};
use crate::sql::Lexed;

/// A set of key values a reference is restricted to.
#[derive(Debug, Clone)]
pub(crate) struct Binding<'a> {
    pub lits: Vec<Lit>,
    /// The IN list the values come from, when it is exactly one list (for splitting).
    pub in_list: Option<&'a [Expr]>,
    /// Instead of values: inclusive integer bounds (`<`, `>=`, BETWEEN), used
    /// to prune `range` tables.
    pub bounds: Option<(Option<i64>, Option<i64>)>,
}

impl Binding<'_> {
    /// `= 7` or `IN (1, 2)`, for reasons.
    pub(crate) fn describe(&self) -> String {
        if let Some((lo, hi)) = self.bounds {
            let b = |v: Option<i64>| v.map_or_else(|| "…".to_owned(), |v| v.to_string());
            return format!("in [{}, {}]", b(lo), b(hi));
        }
        if self.lits.len() == 1 {
            return format!("= {}", self.lits[0]);
        }
        let mut parts: Vec<String> = self.lits.iter().take(8).map(ToString::to_string).collect();
        if self.lits.len() > 8 {
            parts.push("…".into());
        }
        format!("IN ({})", parts.join(", "))
    }
}

#[derive(Default)]
struct Facts<'a> {
    binds: Vec<(usize, Binding<'a>)>,
    eqs: Vec<(usize, usize)>,
    /// `inner.key = outer.key` of a correlated subquery: (outer ref, inner ref).
    corr: Vec<(usize, usize)>,
}

/// References among `cands` for which `e` is their shard key column.
fn key_refs(e: &Expr, refs: &[TableRef<'_>], cands: &[usize]) -> Vec<usize> {
    let Some((quals, col)) = column_of(e) else {
        return Vec::new();
    };
    let col = col.value.to_lowercase();
    cands
        .iter()
        .copied()
        .filter(|&r| {
            let t = &refs[r];
            t.placement.sharded().is_some_and(|s| s.shard_key == col) && qualifier_matches(t, quals)
        })
        .collect()
}

fn qualifier_matches(t: &TableRef<'_>, quals: &[sqlparser::ast::Ident]) -> bool {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match quals {
        [] => true,
        [q] => t.alias.as_deref().map_or(eq(&t.name, &q.value), |a| eq(a, &q.value)),
        [s, q] => t.alias.is_none() && eq(&t.name, &q.value) && t.schema.as_deref().is_none_or(|ts| eq(ts, &s.value)),
        _ => false,
    }
}

/// The facts of condition `e` about the references `cands` of its scope;
/// `outer` are the references of the enclosing scopes (for correlation).
fn facts<'a>(e: &'a Expr, refs: &[TableRef<'_>], cands: &[usize], outer: &[usize], lx: &Lexed<'_>) -> Facts<'a> {
    match e {
        Expr::Nested(inner) => facts(inner, refs, cands, outer, lx),
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let mut f = facts(left, refs, cands, outer, lx);
            let r = facts(right, refs, cands, outer, lx);
            f.binds.extend(r.binds);
            f.eqs.extend(r.eqs);
            f.corr.extend(r.corr);
            f
        }
        Expr::BinaryOp { left, op: BinaryOperator::Or, right } => {
            let l = facts(left, refs, cands, outer, lx);
            let r = facts(right, refs, cands, outer, lx);
            let mut out = Facts::default();
            for (ref_l, bl) in &l.binds {
                if out.binds.iter().any(|(x, _)| x == ref_l) {
                    continue;
                }
                let values = |b: &Binding<'_>| b.bounds.is_none();
                if let Some((_, br)) = r.binds.iter().find(|(x, b)| x == ref_l && values(b)) {
                    if values(bl) {
                        let lits = bl.lits.iter().chain(&br.lits).cloned().collect();
                        out.binds.push((*ref_l, Binding::values(lits, None)));
                    }
                }
            }
            out
        }
        Expr::BinaryOp { left, op: BinaryOperator::Eq | BinaryOperator::Spaceship, right } => {
            let mut f = Facts::default();
            for (col, val) in [(left, right), (right, left)] {
                let targets = key_refs(col, refs, cands);
                if targets.is_empty() {
                    continue;
                }
                if let Some(lit) = literal(val, lx) {
                    for t in targets {
                        f.binds.push((t, Binding::values(vec![lit.clone()], None)));
                    }
                } else {
                    let inner = key_refs(val, refs, cands);
                    for a in &targets {
                        for &b in &inner {
                            if *a != b {
                                f.eqs.push((*a, b));
                            }
                        }
                    }
                    // A qualified outer column: a correlated subquery.
                    let qualified = column_of(val).is_some_and(|(q, _)| !q.is_empty());
                    if inner.is_empty() && qualified {
                        for o in key_refs(val, refs, outer) {
                            f.corr.extend(targets.iter().map(|&a| (o, a)));
                        }
                    }
                }
            }
            f
        }
        Expr::In { expr, target: InTarget::List(list), negated: false, .. } if !list.is_empty() => {
            let mut f = Facts::default();
            let lits: Option<Vec<Lit>> = list.iter().map(|x| literal(x, lx)).collect();
            if let Some(lits) = lits {
                for t in key_refs(expr, refs, cands) {
                    f.binds.push((t, Binding::values(lits.clone(), Some(list))));
                }
            }
            f
        }
        Expr::BinaryOp {
            left,
            op: op @ (BinaryOperator::Lt | BinaryOperator::LtEq | BinaryOperator::Gt | BinaryOperator::GtEq),
            right,
        } => {
            let mut f = Facts::default();
            for (col, val, flipped) in [(left, right, false), (right, left, true)] {
                let Some(v) = literal(val, lx).and_then(|l| int_lit(&l)) else { continue };
                // `col op v`, or `v op col` read the other way round.
                let (lower, strict) = match (op, flipped) {
                    (BinaryOperator::Gt, false) | (BinaryOperator::Lt, true) => (true, true),
                    (BinaryOperator::GtEq, false) | (BinaryOperator::LtEq, true) => (true, false),
                    (BinaryOperator::Lt, false) | (BinaryOperator::Gt, true) => (false, true),
                    _ => (false, false),
                };
                let bound = match (lower, strict) {
                    (true, true) => v.checked_add(1),
                    (false, true) => v.checked_sub(1),
                    _ => Some(v),
                };
                let Some(bound) = bound else { continue };
                let bounds = if lower { (Some(bound), None) } else { (None, Some(bound)) };
                for t in key_refs(col, refs, cands) {
                    f.binds.push((t, Binding { lits: Vec::new(), in_list: None, bounds: Some(bounds) }));
                }
            }
            f
        }
        Expr::Between { expr, negated: false, low, high } => {
            let mut f = Facts::default();
            let lo = literal(low, lx).and_then(|l| int_lit(&l));
            let hi = literal(high, lx).and_then(|l| int_lit(&l));
            if let (Some(lo), Some(hi)) = (lo, hi) {
                for t in key_refs(expr, refs, cands) {
                    f.binds.push((t, Binding { lits: Vec::new(), in_list: None, bounds: Some((Some(lo), Some(hi))) }));
                }
            }
            f
        }
        _ => Facts::default(),
    }
}

fn int_lit(l: &Lit) -> Option<i64> {
    match l {
        Lit::Number(n) => n.parse().ok(),
        _ => None,
    }
}

impl<'a> Binding<'a> {
    fn values(lits: Vec<Lit>, in_list: Option<&'a [Expr]>) -> Self {
        Binding { lits, in_list, bounds: None }
    }
}

/// Shards of a `range` table that hold keys in `[lo, hi]`.
fn range_shards(table: &ShardedTable, lo: Option<i64>, hi: Option<i64>) -> BTreeSet<usize> {
    let shard = |v: i64| table.boundaries.partition_point(|&b| b <= v);
    let first = lo.map_or(0, shard);
    let last = hi.map_or(table.boundaries.len(), shard);
    (first..=last).collect()
}

struct UnionFind(HashMap<usize, usize>);

impl UnionFind {
    fn root(&mut self, x: usize) -> usize {
        let p = *self.0.get(&x).unwrap_or(&x);
        if p == x {
            return x;
        }
        let r = self.root(p);
        self.0.insert(x, r);
        r
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            self.0.insert(ra, rb);
        }
    }
}

fn same_key_kind(refs: &[TableRef<'_>], a: usize, b: usize) -> bool {
    match (refs[a].placement.sharded(), refs[b].placement.sharded()) {
        (Some(x), Some(y)) => x.key_type == y.key_type,
        _ => false,
    }
}

/// The bindings of every sharded reference of every scope.
pub(crate) fn bindings<'a>(col: &Collected<'a, '_>, lx: &Lexed<'_>) -> HashMap<usize, Vec<Binding<'a>>> {
    let refs = &col.refs;
    let mut uf = UnionFind(HashMap::new());
    let mut binds: Vec<(usize, Binding<'a>)> = Vec::new();
    // (from, to): `to` needs only rows whose key matches `from`'s rows (the
    // nullable side of a LEFT JOIN, a correlated subquery).
    let mut directed = Vec::new();
    for scope in &col.scopes {
        let mut outer = Vec::new();
        let mut up = scope.parent;
        while let Some(p) = up {
            outer.extend(&col.scopes[p].refs);
            up = col.scopes[p].parent;
        }
        for cond in &scope.conds {
            let f = facts(cond, refs, &scope.refs, &outer, lx);
            binds.extend(f.binds);
            for (a, b) in f.eqs {
                if same_key_kind(refs, a, b) {
                    uf.union(a, b);
                }
            }
            directed.extend(f.corr.into_iter().filter(|&(a, b)| same_key_kind(refs, a, b)));
        }
        for (left, right, cols) in &scope.inner_using {
            for (a, b) in using_pairs(refs, left, right, cols) {
                uf.union(a, b);
            }
        }
        for oj in &scope.outer {
            let both: Vec<usize> = oj.preserved.iter().chain(&oj.nullable).copied().collect();
            if let Some(on) = oj.on {
                let f = facts(on, refs, &both, &[], lx);
                binds.extend(f.binds.into_iter().filter(|(r, _)| oj.nullable.contains(r)));
                for (a, b) in f.eqs {
                    if oj.preserved.contains(&a) && oj.nullable.contains(&b) && same_key_kind(refs, a, b) {
                        directed.push((a, b));
                    }
                }
            }
            directed.extend(using_pairs(refs, &oj.preserved, &oj.nullable, &oj.using));
        }
    }
    let mut class: HashMap<usize, Vec<Binding<'a>>> = HashMap::new();
    for (r, b) in binds {
        class.entry(uf.root(r)).or_default().push(b);
    }
    for _ in 0..=directed.len() {
        let mut changed = false;
        for &(a, b) in &directed {
            let (ra, rb) = (uf.root(a), uf.root(b));
            if class.get(&rb).is_none_or(Vec::is_empty) {
                if let Some(src) = class.get(&ra).filter(|v| !v.is_empty()).cloned() {
                    class.insert(rb, src);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    (0..refs.len())
        .filter(|&r| refs[r].placement.sharded().is_some())
        .map(|r| (r, class.get(&uf.root(r)).cloned().unwrap_or_default()))
        .collect()
}

fn using_pairs(refs: &[TableRef<'_>], left: &[usize], right: &[usize], cols: &[String]) -> Vec<(usize, usize)> {
    let keyed = |r: usize, c: &str| refs[r].placement.sharded().is_some_and(|t| t.shard_key == c);
    let mut out = Vec::new();
    for c in cols {
        for &a in left.iter().filter(|&&a| keyed(a, c)) {
            for &b in right.iter().filter(|&&b| keyed(b, c)) {
                if same_key_kind(refs, a, b) {
                    out.push((a, b));
                }
            }
        }
    }
    out
}

/// Where one sharded reference's rows can be.
#[derive(Debug, Clone)]
pub(crate) enum RefShards<'a> {
    /// Fixed by literals: the shards, the binding and the shard of each value.
    Fixed {
        shards: BTreeSet<usize>,
        binding: Binding<'a>,
        per_value: Vec<usize>,
    },
    /// Depends on placeholders (prepare only).
    Deferred {
        params: Vec<usize>,
        literal_shards: BTreeSet<usize>,
        binding: Binding<'a>,
    },
    Unbound,
}

/// Pick the binding of `table` that touches the fewest shards.
pub(crate) fn evaluate<'a>(cfg: &Config, table: &ShardedTable, binds: &[Binding<'a>], prepare: bool) -> RefShards<'a> {
    let mut best: Option<RefShards<'a>> = None;
    let mut deferred: Option<RefShards<'a>> = None;
    // Bounds on a range table: every bound holds, so their shard sets intersect.
    if table.algorithm == Algorithm::Range && table.key_type == KeyType::Int {
        let mut set: Option<BTreeSet<usize>> = None;
        let (mut lo, mut hi) = (None::<i64>, None::<i64>);
        for (l, h) in binds.iter().filter_map(|b| b.bounds) {
            let s = range_shards(table, l, h);
            set = Some(match set {
                Some(cur) => cur.intersection(&s).copied().collect(),
                None => s,
            });
            lo = lo.max(l);
            hi = match (hi, h) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if let Some(shards) = set.filter(|s| !s.is_empty() && s.len() < cfg.shards.len()) {
            let binding = Binding { lits: Vec::new(), in_list: None, bounds: Some((lo, hi)) };
            best = Some(RefShards::Fixed { shards, binding, per_value: Vec::new() });
        }
    }
    'bindings: for b in binds.iter().filter(|b| b.bounds.is_none()) {
        let mut shards = BTreeSet::new();
        let mut per_value = Vec::new();
        let mut params = Vec::new();
        for lit in &b.lits {
            let shard = match lit {
                Lit::Param(i) if prepare => {
                    params.push(*i);
                    continue;
                }
                lit => where_key(table, lit).and_then(|v| shard_for(cfg, table, &v).ok()),
            };
            match shard {
                Some(s) => {
                    shards.insert(s);
                    per_value.push(s);
                }
                None => continue 'bindings,
            }
        }
        if params.is_empty() {
            let better = match &best {
                Some(RefShards::Fixed { shards: cur, .. }) => shards.len() < cur.len(),
                _ => true,
            };
            if better {
                best = Some(RefShards::Fixed { shards, binding: b.clone(), per_value });
            }
        } else if deferred.is_none() {
            deferred = Some(RefShards::Deferred { params, literal_shards: shards, binding: b.clone() });
        }
    }
    best.or(deferred).unwrap_or(RefShards::Unbound)
}
