//! The pure part of a merge: rows of every shard go in (in the spec's
//! order), the client's rows come out. Grouping folds adjacent rows with
//! equal keys; HAVING filters; a final sort (bounded by the memory budget)
//! runs only when the client's ORDER BY differs from the merge order; then
//! OFFSET and LIMIT. No I/O: the executor feeds it.

use std::cmp::Ordering;
use std::sync::Arc;

use super::decimal::Dec;
use super::having;
use super::row::Row;
use super::spec::{Agg, Col, MergeSpec, SortKey};
use super::value::{compare, format_f64, parse_f64, ColMeta, Kind};
use super::MergeError;

/// The shard result's columns, as the merge compares them.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Columns the client sees.
    pub visible: usize,
    pub metas: Vec<ColMeta>,
    /// Weight of a space, per weight column (indexed like `metas`), for text
    /// under a PAD SPACE collation. Learned from the collation name the shards
    /// send in the hidden column right after each weight column.
    pub pads: Vec<Option<Arc<[u8]>>>,
}

impl Schema {
    pub fn kind(&self, c: Col) -> Kind {
        self.metas.get(c.index(self.visible)).map_or(Kind::Bytes, ColMeta::kind)
    }

    pub fn meta(&self, c: Col) -> Option<&ColMeta> {
        self.metas.get(c.index(self.visible))
    }

    fn cell<'r>(&self, row: &'r Row, c: Col) -> Option<&'r [u8]> {
        row.get(c.index(self.visible))
    }

    /// Compare two values of column `c`, with optional weight columns.
    pub fn cmp_col(&self, c: Col, weight: Option<Col>, a: &Row, b: &Row) -> Result<Ordering, MergeError> {
        let kind = self.kind(c);
        let (wa, wb) = match weight {
            Some(w) => (self.cell(a, w), self.cell(b, w)),
            None => (None, None),
        };
        let pad = weight.and_then(|w| self.pads.get(w.index(self.visible))).and_then(|p| p.as_deref());
        compare(kind, self.cell(a, c), self.cell(b, c), wa, wb, pad)
    }

    pub fn cmp_keys(&self, keys: &[SortKey], a: &Row, b: &Row) -> Result<Ordering, MergeError> {
        for k in keys {
            let o = self.cmp_col(k.col, k.weight, a, b)?;
            if o != Ordering::Equal {
                return Ok(if k.desc { o.reverse() } else { o });
            }
        }
        Ok(Ordering::Equal)
    }
}

/// A numeric partial aggregate.
#[derive(Debug, Clone)]
enum Num {
    Dec(Dec),
    F(f64),
}

impl Num {
    fn parse(kind: Kind, v: &[u8]) -> Result<Num, MergeError> {
        if kind == Kind::Float {
            return Ok(Num::F(parse_f64(v)));
        }
        Dec::parse(v).map(Num::Dec).ok_or_else(|| {
            MergeError::new(1105, "HY000", format!("cannot add '{}' across shards", String::from_utf8_lossy(v)))
        })
    }

    fn add(&self, o: &Num) -> Num {
        match (self, o) {
            (Num::Dec(a), Num::Dec(b)) => Num::Dec(a.add(b)),
            (a, b) => Num::F(a.as_f64() + b.as_f64()),
        }
    }

    fn as_f64(&self) -> f64 {
        match self {
            Num::Dec(d) => d.to_f64(),
            Num::F(f) => *f,
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    /// COUNT and SUM.
    Sum(Option<Num>),
    /// MIN and MAX: the winning row's value and weight.
    Pick { value: Option<Vec<u8>>, weight: Option<Vec<u8>> },
    /// AVG: computed from its SUM and COUNT columns at the end.
    Avg,
}

struct Group {
    first: Row,
    states: Vec<State>,
}

/// One merge in progress.
pub struct Pipeline {
    spec: Arc<MergeSpec>,
    schema: Schema,
    /// Weight columns (shard row indexes), each followed by its collation name.
    weights: Vec<usize>,
    resolved: Vec<bool>,
    group: Option<Group>,
    sort_buf: Vec<Row>,
    sort_bytes: usize,
    budget: usize,
    skipped: u64,
    emitted: u64,
}

impl Pipeline {
    /// Check the spec against the columns the shards returned.
    pub fn new(spec: Arc<MergeSpec>, schema: Schema, budget: usize) -> Result<Pipeline, MergeError> {
        let total = schema.visible + spec.hidden;
        if schema.metas.len() != total {
            return Err(MergeError::new(1105, "HY000", "shards returned fewer columns than the merge needs"));
        }
        let keys = spec.order.iter().chain(spec.group.iter().flatten()).chain(&spec.final_order);
        for k in keys {
            let idx = k.col.index(schema.visible);
            if idx >= total || schema.visible == 0 && matches!(k.col, Col::Visible(_)) {
                return Err(MergeError::unsupported("ORDER BY / GROUP BY position is past the select list"));
            }
            check_orderable(schema.kind(k.col), k.weight.is_some())?;
        }
        for a in &spec.aggs {
            if let Agg::Min { weight } | Agg::Max { weight } = a.agg {
                check_orderable(schema.kind(a.col), weight.is_some())?;
            }
        }
        let mut weights: Vec<usize> = spec
            .order
            .iter()
            .chain(spec.group.iter().flatten())
            .chain(&spec.final_order)
            .filter_map(|k| k.weight)
            .chain(spec.aggs.iter().filter_map(|a| match a.agg {
                Agg::Min { weight } | Agg::Max { weight } => weight,
                _ => None,
            }))
            .map(|w| w.index(schema.visible))
            .filter(|&w| w + 1 < total)
            .collect();
        weights.sort_unstable();
        weights.dedup();
        let mut schema = schema;
        schema.pads.resize(total, None);
        Ok(Pipeline {
            spec,
            resolved: (0..total).map(|i| !weights.contains(&i)).collect(),
            weights,
            schema,
            group: None,
            sort_buf: Vec::new(),
            sort_bytes: 0,
            budget,
            skipped: 0,
            emitted: 0,
        })
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Weight columns whose collation is not resolved yet, with the collation
    /// name this row carries for each (the hidden column after the weight).
    pub fn unresolved(&self, row: &Row) -> Vec<(usize, String)> {
        self.weights
            .iter()
            .filter(|&&w| !self.resolved.get(w).copied().unwrap_or(true))
            .filter_map(|&w| Some((w, String::from_utf8_lossy(row.get(w + 1)?).into_owned())))
            .collect()
    }

    /// The space weight of weight column `w` (`None`: NO PAD).
    pub fn resolve(&mut self, w: usize, pad: Option<Arc<[u8]>>) {
        if let Some(slot) = self.schema.pads.get_mut(w) {
            *slot = pad;
        }
        if let Some(r) = self.resolved.get_mut(w) {
            *r = true;
        }
    }

    /// The index of the head that comes first in the merge order (k-way merge).
    pub fn first_of(&self, heads: &[Option<Row>]) -> Result<Option<usize>, MergeError> {
        let mut best: Option<usize> = None;
        for (i, h) in heads.iter().enumerate() {
            let Some(row) = h else { continue };
            best = match best {
                None => Some(i),
                Some(b) => {
                    let cur = heads[b].as_ref().expect("best is a head");
                    if self.schema.cmp_keys(&self.spec.order, row, cur)? == Ordering::Less {
                        Some(i)
                    } else {
                        Some(b)
                    }
                }
            };
        }
        Ok(best)
    }

    /// Rows released to the client so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// The client has all the rows it asked for (LIMIT reached).
    pub fn satisfied(&self) -> bool {
        self.spec.limit.is_some_and(|l| self.emitted >= l) && self.spec.final_order.is_empty()
    }

    /// Feed one shard row (in merge order); finished client rows go to `out`.
    pub fn push(&mut self, row: Row, out: &mut Vec<Row>) -> Result<(), MergeError> {
        if row.len() != self.schema.metas.len() {
            return Err(MergeError::new(1105, "HY000", "a shard row has the wrong number of columns"));
        }
        let Some(keys) = self.spec.group.clone() else {
            return self.accept(row, out);
        };
        if let Some(g) = &self.group {
            if self.schema.cmp_keys(&keys, &g.first, &row)? == Ordering::Equal {
                return self.fold(row);
            }
        }
        let states = self.init_states(&row)?;
        if let Some(done) = self.group.replace(Group { first: row, states }) {
            let merged = self.finalize(done)?;
            self.after_group(merged, out)?;
        }
        Ok(())
    }

    /// No more shard rows.
    pub fn finish(&mut self, out: &mut Vec<Row>) -> Result<(), MergeError> {
        if let Some(done) = self.group.take() {
            let merged = self.finalize(done)?;
            self.after_group(merged, out)?;
        }
        if !self.spec.final_order.is_empty() {
            let mut rows = std::mem::take(&mut self.sort_buf);
            self.sort(&mut rows)?;
            let spec = self.spec.clone();
            let keep =
                spec.limit.map_or(usize::MAX, |l| (spec.offset.saturating_add(l)).min(usize::MAX as u64) as usize);
            rows.truncate(keep);
            for r in rows {
                self.limit(r, out);
            }
        }
        Ok(())
    }

    fn after_group(&mut self, row: Row, out: &mut Vec<Row>) -> Result<(), MergeError> {
        if let Some(h) = &self.spec.having {
            if !having::holds(h, &row, &self.schema)? {
                return Ok(());
            }
        }
        self.accept(row, out)
    }

    fn accept(&mut self, row: Row, out: &mut Vec<Row>) -> Result<(), MergeError> {
        if self.spec.final_order.is_empty() {
            self.limit(row, out);
            return Ok(());
        }
        self.sort_bytes += row.weight();
        self.sort_buf.push(row);
        if let Some(l) = self.spec.limit {
            // Top-N: keep the buffer near offset + limit rows.
            let keep = self.spec.offset.saturating_add(l).min(usize::MAX as u64 / 4) as usize;
            if self.sort_buf.len() > keep.saturating_mul(2).max(1024) {
                let mut rows = std::mem::take(&mut self.sort_buf);
                self.sort(&mut rows)?;
                rows.truncate(keep);
                self.sort_bytes = rows.iter().map(Row::weight).sum();
                self.sort_buf = rows;
            }
        }
        if self.sort_bytes > self.budget {
            return Err(MergeError::new(
                1038,
                "HY001",
                format!(
                    "a cross-shard merge needs more than merge_memory_mb ({} MiB) to sort; add a LIMIT, \
                     a shard key condition, or raise [proxy] merge_memory_mb",
                    self.budget >> 20
                ),
            ));
        }
        Ok(())
    }

    fn sort(&self, rows: &mut [Row]) -> Result<(), MergeError> {
        let mut err = None;
        rows.sort_by(|a, b| match self.schema.cmp_keys(&self.spec.final_order, a, b) {
            Ok(o) => o,
            Err(e) => {
                err.get_or_insert(e);
                Ordering::Equal
            }
        });
        err.map_or(Ok(()), Err)
    }

    fn limit(&mut self, row: Row, out: &mut Vec<Row>) {
        if self.skipped < self.spec.offset {
            self.skipped += 1;
            return;
        }
        if self.spec.limit.is_none_or(|l| self.emitted < l) {
            self.emitted += 1;
            out.push(row);
        }
    }

    fn init_states(&self, row: &Row) -> Result<Vec<State>, MergeError> {
        let v = self.schema.visible;
        self.spec
            .aggs
            .iter()
            .map(|a| {
                Ok(match a.agg {
                    Agg::Count | Agg::Sum => State::Sum(match row.get(a.col.index(v)) {
                        Some(x) => Some(Num::parse(self.schema.kind(a.col), x)?),
                        None => None,
                    }),
                    Agg::Min { weight } | Agg::Max { weight } => State::Pick {
                        value: row.get(a.col.index(v)).map(<[u8]>::to_vec),
                        weight: weight.and_then(|w| row.get(w.index(v))).map(<[u8]>::to_vec),
                    },
                    Agg::Avg { .. } => State::Avg,
                })
            })
            .collect()
    }

    fn fold(&mut self, row: Row) -> Result<(), MergeError> {
        let v = self.schema.visible;
        let mut g = self.group.take().expect("a group is open");
        for (a, st) in self.spec.aggs.iter().zip(g.states.iter_mut()) {
            match (a.agg, st) {
                (Agg::Count | Agg::Sum, State::Sum(acc)) => {
                    if let Some(x) = row.get(a.col.index(v)) {
                        let n = Num::parse(self.schema.kind(a.col), x)?;
                        *acc = Some(match acc.take() {
                            Some(cur) => cur.add(&n),
                            None => n,
                        });
                    }
                }
                (Agg::Min { weight } | Agg::Max { weight }, State::Pick { value, weight: wcur }) => {
                    let Some(new) = row.get(a.col.index(v)) else { continue };
                    let new_w = weight.and_then(|w| row.get(w.index(v)));
                    let wins = match value {
                        None => true,
                        Some(cur) => {
                            let kind = self.schema.kind(a.col);
                            let pad = weight.and_then(|w| self.schema.pads.get(w.index(v))).and_then(|p| p.as_deref());
                            let o = compare(kind, Some(new), Some(cur), new_w, wcur.as_deref(), pad)?;
                            if matches!(a.agg, Agg::Min { .. }) {
                                o == Ordering::Less
                            } else {
                                o == Ordering::Greater
                            }
                        }
                    };
                    if wins {
                        *value = Some(new.to_vec());
                        *wcur = new_w.map(<[u8]>::to_vec);
                    }
                }
                _ => {}
            }
        }
        self.group = Some(g);
        Ok(())
    }

    fn finalize(&self, g: Group) -> Result<Row, MergeError> {
        let v = self.schema.visible;
        let total = self.schema.metas.len();
        let mut cells: Vec<Option<Vec<u8>>> = (0..total).map(|i| g.first.get(i).map(<[u8]>::to_vec)).collect();
        let sum_of = |c: Col| -> Option<&Option<Num>> {
            self.spec.aggs.iter().zip(&g.states).find(|(a, _)| a.col == c).and_then(|(_, s)| match s {
                State::Sum(n) => Some(n),
                _ => None,
            })
        };
        for (a, st) in self.spec.aggs.iter().zip(&g.states) {
            let meta = self.schema.meta(a.col).copied();
            let decimals = meta.map(|m| m.decimals as usize).filter(|&d| d <= 30);
            let text = match (a.agg, st) {
                (Agg::Count, State::Sum(n)) => Some(fmt_num(n.as_ref(), None).unwrap_or_else(|| "0".into())),
                (Agg::Sum, State::Sum(n)) => fmt_num(n.as_ref(), decimals),
                (Agg::Min { weight } | Agg::Max { weight }, State::Pick { value, weight: w }) => {
                    if let Some(wc) = weight {
                        cells[wc.index(v)] = w.clone();
                    }
                    cells[a.col.index(v)] = value.clone();
                    continue;
                }
                (Agg::Avg { sum, count }, State::Avg) => {
                    let (Some(Some(s)), Some(Some(Num::Dec(c)))) = (sum_of(sum), sum_of(count)) else {
                        cells[a.col.index(v)] = None;
                        continue;
                    };
                    let n: u64 = c.format(Some(0)).parse().unwrap_or(0);
                    if n == 0 {
                        None
                    } else {
                        match (s, meta.map(|m| m.kind())) {
                            (_, Some(Kind::Float)) => Some(format_f64(s.as_f64() / n as f64)),
                            (Num::Dec(d), _) => {
                                let scale = decimals.unwrap_or(4);
                                d.div_u64(n, scale).map(|q| q.format(Some(scale)))
                            }
                            (Num::F(f), _) => Some(format_f64(f / n as f64)),
                        }
                    }
                }
                _ => continue,
            };
            cells[a.col.index(v)] = text.map(String::into_bytes);
        }
        Ok(Row::from_cells(cells.iter().map(|c| c.as_deref())))
    }
}

fn fmt_num(n: Option<&Num>, decimals: Option<usize>) -> Option<String> {
    Some(match n? {
        Num::Dec(d) => d.format(decimals),
        Num::F(f) => format_f64(*f),
    })
}

fn check_orderable(kind: Kind, has_weight: bool) -> Result<(), MergeError> {
    // compare() reports these with the full message; probe it once up front.
    match kind {
        Kind::Enum | Kind::Geometry => compare(kind, Some(b""), Some(b""), None, None, None).map(|_| ()),
        Kind::Text if !has_weight => compare(kind, Some(b""), Some(b""), None, None, None).map(|_| ()),
        _ => Ok(()),
    }
}
