//! A seeded generator of random queries on `dx_items` within the grammar the merge engine
//! supports:
//!
//! ```text
//! SELECT [DISTINCT] <columns | aggregates> FROM dx_items
//!   [WHERE p {AND|OR} p ...]      p: c = lit | c IN (lit, ...) | c BETWEEN a AND b
//!                                    | c IS [NOT] NULL | c > lit
//!   [GROUP BY c, ... [HAVING <aggregate> <op> <lit>]]
//!   [ORDER BY key [ASC|DESC], ...]  key: column, position, alias or aggregate
//!   [LIMIT n | LIMIT m, n | LIMIT n OFFSET m]
//! aggregates: COUNT(*), COUNT(c), SUM(c), MIN(c), MAX(c), AVG(c)
//! ```
//!
//! Every query is valid under ONLY_FULL_GROUP_BY (grouped queries select only grouped columns
//! and aggregates), and every LIMIT comes with a total order: the unique `id` ends the ORDER
//! BY of plain queries, every GROUP BY column (DISTINCT: every selected column) is a key of
//! grouped ones. Four shapes: plain, DISTINCT, aggregates without GROUP BY, GROUP BY.

use std::collections::HashSet;

use super::corpus::Query;
use super::dataset::{datetime, item_id, pick_name, quote, Rng, ITEMS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Int,
    Decimal,
    Double,
    Text,
    Datetime,
    Binary,
}

#[derive(Debug, Clone, Copy)]
struct Column {
    name: &'static str,
    ty: Ty,
    nullable: bool,
}

const fn col(name: &'static str, ty: Ty, nullable: bool) -> Column {
    Column { name, ty, nullable }
}

const COLUMNS: [Column; 9] = [
    col("id", Ty::Int, false),
    col("grp", Ty::Int, false),
    col("sub", Ty::Int, true),
    col("price", Ty::Decimal, true),
    col("score", Ty::Double, true),
    col("qty", Ty::Int, true),
    col("name", Ty::Text, true),
    col("created", Ty::Datetime, true),
    col("code", Ty::Binary, true),
];

fn column(name: &str) -> Column {
    *COLUMNS.iter().find(|c| c.name == name).expect("known column")
}

fn numeric(c: &Column) -> bool {
    matches!(c.ty, Ty::Int | Ty::Decimal | Ty::Double)
}

/// A literal of `c`'s type, in the range of the data (sometimes just outside it).
fn literal(rng: &mut Rng, c: &Column) -> String {
    match c.name {
        "id" if rng.chance(60) => item_id(rng.range(1, ITEMS)).to_string(),
        "id" => rng.range(-310, 15_010).to_string(),
        "grp" => rng.range(1, 8).to_string(),
        "sub" => rng.range(0, 20).to_string(),
        "qty" => rng.range(0, 50).to_string(),
        "price" => format!("{}.{:02}", rng.range(0, 999), rng.range(0, 99)),
        "score" => format!("{:.1}", rng.range(-500, 1500) as f64 / 10.0),
        "name" => quote(pick_name(rng)),
        "created" => quote(&datetime(rng.range(0, 580_000))),
        _ => format!("X'{:02X}'", rng.pick(&[0x00u8, 0x41, 0x61, 0xFF])),
    }
}

fn predicate(rng: &mut Rng) -> String {
    let c = rng.pick(&COLUMNS);
    let n = c.name;
    match rng.below(5) {
        0 => format!("{n} = {}", literal(rng, &c)),
        1 => {
            let lits: Vec<String> = (0..rng.range(2, 5)).map(|_| literal(rng, &c)).collect();
            format!("{n} IN ({})", lits.join(", "))
        }
        2 => {
            let (mut a, mut b) = (literal(rng, &c), literal(rng, &c));
            let swap = match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x > y,
                _ => a > b,
            };
            if swap {
                std::mem::swap(&mut a, &mut b);
            }
            format!("{n} BETWEEN {a} AND {b}")
        }
        3 if c.nullable => format!("{n} IS {}NULL", if rng.chance(50) { "" } else { "NOT " }),
        _ => format!("{n} > {}", literal(rng, &c)),
    }
}

fn where_clause(rng: &mut Rng, pct: u64) -> String {
    if !rng.chance(pct) {
        return String::new();
    }
    let mut out = format!(" WHERE {}", predicate(rng));
    for _ in 0..rng.below(3) {
        out.push_str(if rng.chance(60) { " AND " } else { " OR " });
        out.push_str(&predicate(rng));
    }
    out
}

fn aggregate(rng: &mut Rng) -> String {
    let any = rng.pick(&COLUMNS);
    let nums: Vec<Column> = COLUMNS.iter().copied().filter(numeric).collect();
    let num = rng.pick(&nums);
    match rng.below(6) {
        0 => "COUNT(*)".into(),
        1 => format!("COUNT({})", any.name),
        2 => format!("SUM({})", num.name),
        3 => format!("MIN({})", any.name),
        4 => format!("MAX({})", any.name),
        _ => format!("AVG({})", num.name),
    }
}

fn direction(rng: &mut Rng) -> &'static str {
    rng.pick(&["", " ASC", " DESC"])
}

fn limit(rng: &mut Rng) -> String {
    let (n, m) = (rng.range(1, 20), rng.range(0, 30));
    match rng.below(3) {
        0 => format!(" LIMIT {n}"),
        1 => format!(" LIMIT {m}, {n}"),
        _ => format!(" LIMIT {n} OFFSET {m}"),
    }
}

/// A selected item: its text, alias, and position (1-based) for ORDER BY.
struct Item {
    expr: String,
    alias: Option<String>,
}

fn projection(items: &[Item]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|i| match &i.alias {
            Some(a) => format!("{} AS {a}", i.expr),
            None => i.expr.clone(),
        })
        .collect();
    parts.join(", ")
}

/// An ORDER BY key naming selected item `i`: by position, alias or expression.
fn key_for(rng: &mut Rng, items: &[Item], i: usize) -> String {
    match (rng.below(3), &items[i].alias) {
        (0, _) => (i + 1).to_string(),
        (1, Some(a)) => a.clone(),
        _ => items[i].expr.clone(),
    }
}

fn order_by(keys: &[String]) -> String {
    if keys.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", keys.join(", "))
    }
}

fn distinct_columns(rng: &mut Rng, pool: &[&str], n: usize) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    while out.len() < n {
        let c = column(pool[rng.below(pool.len() as u64) as usize]).name;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn plain(rng: &mut Rng) -> String {
    let star = rng.chance(10);
    let n = rng.range(1, 4) as usize;
    let cols = distinct_columns(rng, &COLUMNS.map(|c| c.name), n);
    let items: Vec<Item> = cols.iter().map(|c| Item { expr: c.to_string(), alias: None }).collect();
    let mut sql =
        format!("SELECT {} FROM dx_items{}", if star { "*".into() } else { projection(&items) }, where_clause(rng, 70));
    let with_limit = rng.chance(35);
    if with_limit || rng.chance(50) {
        let mut keys = Vec::new();
        let mut total = false;
        let n = rng.range(1, 3) as usize;
        for c in distinct_columns(rng, &COLUMNS.map(|c| c.name), n) {
            let selected = cols.iter().position(|s| *s == c).filter(|_| !star);
            total |= c == "id" || selected.is_none();
            let key = match selected {
                Some(i) if rng.chance(30) => (i + 1).to_string(),
                _ => c.to_string(),
            };
            keys.push(format!("{key}{}", direction(rng)));
        }
        // A key not in the output is checked through the total order.
        if (with_limit || total) && !keys.iter().any(|k| k == "id" || k.starts_with("id ")) {
            keys.push(format!("id{}", direction(rng)));
        }
        sql.push_str(&order_by(&keys));
        if with_limit {
            sql.push_str(&limit(rng));
        }
    }
    sql
}

fn distinct(rng: &mut Rng) -> String {
    let pool = ["grp", "sub", "qty", "name", "price", "created", "code", "score"];
    let n = rng.range(1, 3) as usize;
    let cols = distinct_columns(rng, &pool, n);
    let items: Vec<Item> = cols.iter().map(|c| Item { expr: c.to_string(), alias: None }).collect();
    let mut sql = format!("SELECT DISTINCT {} FROM dx_items{}", projection(&items), where_clause(rng, 60));
    if rng.chance(60) {
        let with_limit = rng.chance(40);
        let n = if with_limit { items.len() } else { rng.range(1, items.len() as i64) as usize };
        let mut order: Vec<usize> = (0..items.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let keys: Vec<String> =
            order[..n].iter().map(|&i| format!("{}{}", key_for(rng, &items, i), direction(rng))).collect();
        sql.push_str(&order_by(&keys));
        if with_limit {
            sql.push_str(&limit(rng));
        }
    }
    sql
}

fn aggregates_only(rng: &mut Rng) -> String {
    let aggs: Vec<String> = (0..rng.range(1, 4)).map(|_| aggregate(rng)).collect();
    format!("SELECT {} FROM dx_items{}", aggs.join(", "), where_clause(rng, 70))
}

fn grouped(rng: &mut Rng) -> String {
    let n = rng.range(1, 2) as usize;
    let groups = distinct_columns(rng, &["grp", "sub", "qty", "name", "grp", "name", "created"], n);
    let mut items: Vec<Item> = Vec::new();
    for g in &groups {
        if rng.chance(85) {
            items.push(Item { expr: g.to_string(), alias: None });
        }
    }
    for n in 0..rng.range(1, 3) {
        let expr = aggregate(rng);
        if items.iter().all(|i| i.expr != expr) {
            let alias = rng.chance(40).then(|| format!("a{n}"));
            items.push(Item { expr, alias });
        }
    }
    let mut sql =
        format!("SELECT {} FROM dx_items{} GROUP BY {}", projection(&items), where_clause(rng, 60), groups.join(", "));
    if rng.chance(30) {
        let having = match rng.below(5) {
            0 => format!("COUNT(*) > {}", rng.range(0, 60)),
            1 => format!("SUM(qty) >= {}", rng.range(0, 2000)),
            2 => format!("MIN(price) < {}", rng.range(0, 500)),
            3 => format!("MAX(score) > {}", rng.range(0, 140)),
            _ => format!("AVG(qty) <= {}", rng.range(10, 40)),
        };
        sql.push_str(&format!(" HAVING {having}"));
    }
    let with_limit = rng.chance(40);
    if with_limit || rng.chance(60) {
        let mut keys = Vec::new();
        let mut named: Vec<&str> = Vec::new();
        for _ in 0..rng.range(1, 3) {
            let i = rng.below(items.len() as u64) as usize;
            if groups.contains(&items[i].expr.as_str()) {
                named.push(groups[groups.iter().position(|g| *g == items[i].expr).expect("group")]);
            }
            keys.push(format!("{}{}", key_for(rng, &items, i), direction(rng)));
        }
        if with_limit {
            for g in &groups {
                if !named.contains(g) {
                    keys.push(format!("{g}{}", direction(rng)));
                }
            }
        }
        sql.push_str(&order_by(&keys));
        if with_limit {
            sql.push_str(&limit(rng));
        }
    }
    sql
}

/// `n` distinct queries from `seed`, ids `gen:000`...
pub fn generate(seed: u64, n: usize) -> Vec<Query> {
    let mut rng = Rng::new(seed);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    while out.len() < n {
        let sql = match rng.below(10) {
            0..=2 => plain(&mut rng),
            3 | 4 => distinct(&mut rng),
            5 | 6 => aggregates_only(&mut rng),
            _ => grouped(&mut rng),
        };
        if seen.insert(sql.clone()) {
            out.push(Query { id: format!("gen:{:03}", out.len()), sql, annotation: None });
        }
    }
    out
}
