//! The differential comparator: is the proxy's answer to a query the reference server's answer?
//!
//! Pure (no I/O): results come in as [`ResultSet`]s, the query's ordering contract as
//! [`Rules`] (built by [`super::diff_rules`]), and the verdict is `Ok` or a [`Mismatch`] whose
//! `Display` is the debugging report.
//!
//! The rules, applied to every query:
//! - **Header.** Same number of columns, same names, same protocol types. Hidden helper columns
//!   a proxy might add show up here.
//! - **Cells** are compared as text, NULL distinct from `''`. FLOAT/DOUBLE columns compare
//!   numerically with relative tolerance [`FLOAT_TOLERANCE`] (sums of doubles added in another
//!   order differ in the last bits; absolute below magnitude 1, see `float_eq`); everything else
//!   exactly, DECIMAL scale included.
//!   *Ambiguous* text columns (a GROUP BY / DISTINCT value, MIN/MAX of a string) may hold any
//!   member of the collation-equivalence class (MySQL shows whichever row it met first), so they
//!   compare under [`fold`], an approximation of `utf8mb4_general_ci` equality.
//! - **Rows** always compare as multisets.
//! - **Order** ([`Order`]): without an ORDER BY nothing more. With one, either the whole row
//!   sequence must be equal (`Total`: the ORDER BY is a total order, e.g. it includes the unique
//!   `id`), or the sequence of sort-key tuples must be equal (`Keys`: ties may come in any order,
//!   so only the key values are compared, text keys under [`fold`]), or only the multiset
//!   (`Unchecked`: no ORDER BY key is among the output columns).

use std::cmp::Ordering;
use std::fmt;

/// Relative tolerance for FLOAT/DOUBLE cells.
pub const FLOAT_TOLERANCE: f64 = 1e-9;
/// How many differing rows a report shows.
pub const SHOW_ROWS: usize = 10;

/// One cell: text as the server sent it, NULL as `None`.
pub type Cell = Option<String>;
pub type Row = Vec<Cell>;

/// How a column's cells compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// FLOAT or DOUBLE: numeric, with tolerance.
    Float,
    /// A string with a (non-binary) collation.
    Text,
    /// A binary string (BINARY, VARBINARY, BLOB): exact, shown as `0x...` hex.
    Binary,
    /// Everything else (integers, DECIMAL, dates): exact text.
    Exact,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Col {
    pub name: String,
    /// The protocol type, e.g. `MYSQL_TYPE_NEWDECIMAL`, for the header check.
    pub type_name: String,
    pub kind: Kind,
}

impl Col {
    pub fn new(name: &str, type_name: &str, kind: Kind) -> Col {
        Col { name: name.into(), type_name: type_name.into(), kind }
    }

    /// The column as mysql_async describes it.
    pub fn from_mysql(c: &mysql_async::Column) -> Col {
        use mysql_async::consts::ColumnType as T;
        let t = c.column_type();
        let binary = c.character_set() == 63;
        let stringy = matches!(
            t,
            T::MYSQL_TYPE_VARCHAR
                | T::MYSQL_TYPE_VAR_STRING
                | T::MYSQL_TYPE_STRING
                | T::MYSQL_TYPE_TINY_BLOB
                | T::MYSQL_TYPE_BLOB
                | T::MYSQL_TYPE_MEDIUM_BLOB
                | T::MYSQL_TYPE_LONG_BLOB
        );
        let kind = match t {
            T::MYSQL_TYPE_FLOAT | T::MYSQL_TYPE_DOUBLE => Kind::Float,
            _ if stringy && binary => Kind::Binary,
            _ if stringy => Kind::Text,
            _ => Kind::Exact,
        };
        Col { name: c.name_str().into_owned(), type_name: format!("{t:?}"), kind }
    }

    /// A text-protocol value as a cell: binary strings as `0x...` hex, text as UTF-8.
    pub fn cell(&self, v: mysql_async::Value) -> Cell {
        use mysql_async::Value;
        match v {
            Value::NULL => None,
            Value::Bytes(b) if self.kind == Kind::Binary => {
                Some(format!("0x{}", b.iter().map(|x| format!("{x:02X}")).collect::<String>()))
            }
            Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            other => Some(other.as_sql(true).trim_matches('\'').to_string()),
        }
    }
}

/// One result: columns and rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<Col>,
    pub rows: Vec<Row>,
}

/// What the order of rows must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// No top-level ORDER BY: multiset only.
    Unordered,
    /// The ORDER BY is a total order: the row sequences must be equal.
    Total,
    /// The sequence of these output columns' values (0-based) must be equal.
    Keys(Vec<usize>),
    /// ORDER BY on nothing in the output and not total: multiset only. Says why.
    Unchecked(String),
}

/// The comparison contract of one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub order: Order,
    /// Output columns (0-based) whose text may be any collation-equal value.
    pub ambiguous: Vec<usize>,
}

impl Rules {
    pub fn unordered() -> Rules {
        Rules { order: Order::Unordered, ambiguous: Vec::new() }
    }
}

impl fmt::Display for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.order {
            Order::Unordered => write!(f, "unordered (multiset)")?,
            Order::Total => write!(f, "total order (row sequence)")?,
            Order::Keys(k) => write!(f, "key sequence of columns {}", positions(k))?,
            Order::Unchecked(why) => write!(f, "order not checked ({why})")?,
        }
        if !self.ambiguous.is_empty() {
            write!(f, "; collation-folded text in columns {}", positions(&self.ambiguous))?;
        }
        Ok(())
    }
}

fn positions(cols: &[usize]) -> String {
    cols.iter().map(|c| (c + 1).to_string()).collect::<Vec<_>>().join(",")
}

/// Folds a string the way `utf8mb4_general_ci` compares it, closely enough for the test data:
/// case-insensitive, accent-insensitive (Latin letters with diacritics equal their base letter)
/// and PAD SPACE (trailing spaces ignored).
pub fn fold(s: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    s.trim_end_matches(' ').nfd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_uppercase).collect()
}

/// How one column compares, under given rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Float,
    Folded,
    Exact,
}

fn cmp_kinds(columns: &[Col], ambiguous: &[usize], fold_all_text: bool) -> Vec<Cmp> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| match c.kind {
            Kind::Float => Cmp::Float,
            Kind::Text if fold_all_text || ambiguous.contains(&i) => Cmp::Folded,
            _ => Cmp::Exact,
        })
        .collect()
}

/// Relative tolerance; below magnitude 1 it is absolute, because a sum that cancels to about
/// zero (`(a + b) + c` against `a + (b + c)`) can differ from 0 by far more than 1e-9 of itself.
/// Test values are multiples of 0.001, so a real difference is never that small.
fn float_eq(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= FLOAT_TOLERANCE * a.abs().max(b.abs()).max(1.0)
}

fn cell_eq(k: Cmp, a: &Cell, b: &Cell) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => match k {
            Cmp::Float => match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => float_eq(x, y),
                _ => a == b,
            },
            Cmp::Folded => fold(a) == fold(b),
            Cmp::Exact => a == b,
        },
        _ => false,
    }
}

/// A total order consistent with [`cell_eq`] (up to the float tolerance): NULL first, floats
/// numerically, folded text by its fold.
fn cell_cmp(k: Cmp, a: &Cell, b: &Cell) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => match k {
            Cmp::Float => match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => a.cmp(b),
            },
            // Fold only: a tie-break on the exact text would sort collation-equal rows apart.
            Cmp::Folded => fold(a).cmp(&fold(b)),
            Cmp::Exact => a.cmp(b),
        },
    }
}

fn rows_eq(kinds: &[Cmp], a: &Row, b: &Row) -> bool {
    a.len() == b.len() && kinds.iter().zip(a.iter().zip(b)).all(|(k, (x, y))| cell_eq(*k, x, y))
}

fn rows_cmp(kinds: &[Cmp], a: &Row, b: &Row) -> Ordering {
    kinds
        .iter()
        .zip(a.iter().zip(b))
        .map(|(k, (x, y))| cell_cmp(*k, x, y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// Why the proxy's result is not the reference's.
#[derive(Debug, Clone, PartialEq)]
pub enum Mismatch {
    Header {
        reference: Vec<Col>,
        proxy: Vec<Col>,
    },
    /// Different multisets of rows.
    Rows {
        reference: usize,
        proxy: usize,
        only_reference: Vec<Row>,
        only_proxy: Vec<Row>,
        counts: (usize, usize),
    },
    /// Same multiset, different order: from row `at` (0-based), the windows of both.
    Order {
        at: usize,
        keys: Option<Vec<usize>>,
        reference: Vec<Row>,
        proxy: Vec<Row>,
    },
}

impl Mismatch {
    /// A short name for the summary.
    pub fn kind(&self) -> &'static str {
        match self {
            Mismatch::Header { .. } => "columns differ",
            Mismatch::Rows { .. } => "rows differ",
            Mismatch::Order { .. } => "order differs",
        }
    }
}

/// Compares the proxy's result with the reference's under `rules`.
pub fn compare(reference: &ResultSet, proxy: &ResultSet, rules: &Rules) -> Result<(), Mismatch> {
    let header = |c: &[Col]| c.iter().map(|c| (c.name.clone(), c.type_name.clone())).collect::<Vec<_>>();
    if header(&reference.columns) != header(&proxy.columns) {
        return Err(Mismatch::Header { reference: reference.columns.clone(), proxy: proxy.columns.clone() });
    }
    let kinds = cmp_kinds(&reference.columns, &rules.ambiguous, false);
    multiset(&kinds, &reference.rows, &proxy.rows)?;
    match &rules.order {
        Order::Unordered | Order::Unchecked(_) => Ok(()),
        Order::Total => sequence(&kinds, &reference.rows, &proxy.rows, None),
        Order::Keys(keys) => {
            // Ties may come in any order: only the key values count, text keys folded.
            let key_kinds = cmp_kinds(&reference.columns, &rules.ambiguous, true);
            sequence(&key_kinds, &reference.rows, &proxy.rows, Some(keys))
        }
    }
}

fn multiset(kinds: &[Cmp], reference: &[Row], proxy: &[Row]) -> Result<(), Mismatch> {
    fn sorted<'r>(kinds: &[Cmp], rows: &'r [Row]) -> Vec<&'r Row> {
        let mut v: Vec<&Row> = rows.iter().collect();
        v.sort_by(|a, b| rows_cmp(kinds, a, b));
        v
    }
    let (r, p) = (sorted(kinds, reference), sorted(kinds, proxy));
    let (mut i, mut j) = (0, 0);
    let (mut only_r, mut only_p) = (Vec::new(), Vec::new());
    let (mut n_r, mut n_p) = (0, 0);
    while i < r.len() || j < p.len() {
        if i < r.len() && j < p.len() && rows_eq(kinds, r[i], p[j]) {
            i += 1;
            j += 1;
        } else if j == p.len() || (i < r.len() && rows_cmp(kinds, r[i], p[j]).is_lt()) {
            n_r += 1;
            if only_r.len() < SHOW_ROWS {
                only_r.push(r[i].clone());
            }
            i += 1;
        } else {
            n_p += 1;
            if only_p.len() < SHOW_ROWS {
                only_p.push(p[j].clone());
            }
            j += 1;
        }
    }
    if n_r + n_p == 0 || (reference.len() <= 5000 && greedy_match(kinds, reference, proxy)) {
        return Ok(());
    }
    Err(Mismatch::Rows {
        reference: reference.len(),
        proxy: proxy.len(),
        only_reference: only_r,
        only_proxy: only_p,
        counts: (n_r, n_p),
    })
}

/// Pairs every reference row with an equal proxy row, one by one: catches multisets equal
/// under the float tolerance that sorting by exact value misaligned (values within the
/// tolerance in a sort column, other columns deciding).
fn greedy_match(kinds: &[Cmp], reference: &[Row], proxy: &[Row]) -> bool {
    if reference.len() != proxy.len() {
        return false;
    }
    let mut used = vec![false; proxy.len()];
    reference.iter().all(|r| match (0..proxy.len()).find(|&j| !used[j] && rows_eq(kinds, r, &proxy[j])) {
        Some(j) => {
            used[j] = true;
            true
        }
        None => false,
    })
}

fn sequence(kinds: &[Cmp], reference: &[Row], proxy: &[Row], keys: Option<&Vec<usize>>) -> Result<(), Mismatch> {
    let same = |a: &Row, b: &Row| match keys {
        None => rows_eq(kinds, a, b),
        Some(keys) => keys.iter().all(|&k| cell_eq(kinds[k], &a[k], &b[k])),
    };
    let Some(at) = reference.iter().zip(proxy).position(|(a, b)| !same(a, b)) else {
        return Ok(());
    };
    let window = |rows: &[Row]| rows[at..rows.len().min(at + SHOW_ROWS)].to_vec();
    Err(Mismatch::Order { at, keys: keys.cloned(), reference: window(reference), proxy: window(proxy) })
}

/// A row as `[1, 'Bob', NULL]`, long cells shortened.
pub fn show_row(row: &[Cell]) -> String {
    let cells: Vec<String> = row.iter().map(show_cell).collect();
    format!("[{}]", cells.join(", "))
}

fn show_cell(c: &Cell) -> String {
    match c {
        None => "NULL".into(),
        Some(s) if s.parse::<f64>().is_ok() && !s.starts_with(' ') && !s.ends_with(' ') => s.clone(),
        Some(s) => {
            let short: String = s.chars().take(40).collect();
            let more = if short.len() < s.len() { "..." } else { "" };
            format!("'{}{more}'", short.replace('\'', "\\'"))
        }
    }
}

fn show_cols(cols: &[Col]) -> String {
    cols.iter()
        .map(|c| format!("{} {}", c.name, c.type_name.trim_start_matches("MYSQL_TYPE_")))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Header { reference, proxy } => {
                writeln!(f, "columns differ:")?;
                writeln!(f, "    reference ({}): {}", reference.len(), show_cols(reference))?;
                write!(f, "    proxy     ({}): {}", proxy.len(), show_cols(proxy))
            }
            Mismatch::Rows { reference, proxy, only_reference, only_proxy, counts } => {
                write!(
                    f,
                    "rows differ: reference {reference} rows, proxy {proxy} rows; {} only in the reference, {} only in the proxy",
                    counts.0, counts.1
                )?;
                for (what, rows, n) in [("reference", only_reference, counts.0), ("proxy", only_proxy, counts.1)] {
                    if n > 0 {
                        write!(f, "\n    only in the {what} (first {} of {n}):", rows.len())?;
                        for r in rows {
                            write!(f, "\n      {}", show_row(r))?;
                        }
                    }
                }
                Ok(())
            }
            Mismatch::Order { at, keys, reference, proxy } => {
                match keys {
                    Some(k) => write!(
                        f,
                        "order differs: the key values (columns {}) differ from row {}",
                        positions(k),
                        at + 1
                    )?,
                    None => write!(f, "order differs: rows differ from row {} (total order)", at + 1)?,
                }
                for i in 0..reference.len().max(proxy.len()) {
                    let show = |rows: &[Row]| rows.get(i).map_or("-".to_string(), |r| show_row(r));
                    write!(
                        f,
                        "\n    #{:<6} reference {}\n            proxy     {}",
                        at + i + 1,
                        show(reference),
                        show(proxy)
                    )?;
                }
                Ok(())
            }
        }
    }
}
