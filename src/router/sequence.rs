//! Global sequences, the pure part: which INSERTs need ids from a table's
//! sequence (`[[tables]] sequence = "col"`), and the statement with the ids
//! filled in. The frontend allocates the ids (`frontend::sequence`) and routes
//! the filled text like any other statement, so a sequence column that is also
//! the shard key places each row, and rows of several shards are split.
//!
//! A row needs an id when the column is missing from the column list, or its
//! value is `NULL`, `0` or `DEFAULT` (MySQL's AUTO_INCREMENT rule). The text is
//! edited at byte spans of the client's original bytes: the column is added to
//! the column list and a value to each row, or the `NULL` / `0` / `DEFAULT` is
//! replaced. Everything else (comments, spacing, hints) stays as written.
//!
//! Also here: recognising `SELECT LAST_INSERT_ID()` / `SELECT @@IDENTITY`,
//! which the session answers from its own record.

use std::ops::Range;

use sqlparser::ast::{AssignmentTarget, Expr, Insert, SetExpr, Statement, TableObject, Value};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::analysis::not_supported;
use super::insert::NEEDS_COLUMN_LIST;
use super::plan::RouteError;
use super::tables::{idents, resolve_name};
use super::SessionView;
use crate::config::Config;
use crate::sql::{lex, Lexed};

/// An INSERT / REPLACE that needs `count` ids from the sequence of `table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceFill {
    /// Lower-cased table name: the sequence's name.
    pub name: String,
    /// The table name as the client wrote it (without schema or quotes).
    pub table: String,
    /// The sequence column, as configured.
    pub column: String,
    /// How many ids the statement needs, in row order (for a prepared
    /// statement: besides those of `bound`).
    pub count: usize,
    /// Prepared statements: the placeholders (0-based) that give the column;
    /// a NULL or 0 bound there generates an id too.
    pub bound: Vec<usize>,
    /// Prepared statements: the placeholders of the statement sent to the
    /// backends, in order ([`SequenceFill::with_placeholders`]).
    pub slots: Vec<Slot>,
    edits: Vec<Edit>,
}

/// One placeholder of a prepared statement's backend text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The client's placeholder `n`; `sequence`: it gives the sequence column.
    Client { n: usize, sequence: bool },
    /// An id the proxy binds (the column was missing, NULL, 0 or DEFAULT).
    Id,
}

/// Replace `range` with `before` followed by id number `id` (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edit {
    range: Range<usize>,
    before: String,
    id: Option<usize>,
}

impl SequenceFill {
    /// The statement with `ids[k]` as the k-th generated value (`ids.len() >= count`).
    pub fn fill(&self, sql: &str, ids: &[u64]) -> String {
        self.render(sql, |k| ids.get(k).map_or_else(|| "NULL".to_owned(), u64::to_string))
    }

    /// A prepared statement's backend text: a `?` where each id goes.
    pub fn with_placeholders(&self, sql: &str) -> String {
        self.render(sql, |_| "?".to_owned())
    }

    fn render(&self, sql: &str, id: impl Fn(usize) -> String) -> String {
        let mut out = String::with_capacity(sql.len() + self.edits.len() * 24);
        let mut at = 0;
        for e in &self.edits {
            out.push_str(&sql[at..e.range.start]);
            out.push_str(&e.before);
            if let Some(k) = e.id {
                out.push_str(&id(k));
            }
            at = e.range.end;
        }
        out.push_str(&sql[at..]);
        out
    }
}

/// A cheap test that lets every statement which cannot need ids skip the
/// analysis: some sequence table's name and INSERT or REPLACE appear in the text.
pub fn might_need(sql: &str, cfg: &Config) -> bool {
    !cfg.sequences.is_empty()
        && (contains_ci(sql, "insert") || contains_ci(sql, "replace"))
        && cfg.sequences.keys().any(|t| contains_ci(sql, t))
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some(first) = n.first().map(u8::to_ascii_lowercase) else { return false };
    h.len() >= n.len() && h.windows(n.len()).any(|w| w[0].to_ascii_lowercase() == first && w.eq_ignore_ascii_case(n))
}

/// `LAST_INSERT_ID()` (no argument) in a data-changing statement (INSERT,
/// REPLACE, UPDATE, DELETE, SET, DO) replaced by `value`, the session's own
/// LAST_INSERT_ID(): the statement may run on a backend connection that did
/// not run the INSERT, and ids from a sequence are unknown to every backend.
/// `None` when there is nothing to replace, or the text holds several
/// statements (an earlier one may change the value) or is a SELECT (whose
/// column names the text gives).
pub fn substitute_last_insert_id(sql: &str, value: u64) -> Option<String> {
    if !contains_ci(sql, "last_insert_id") {
        return None;
    }
    let lx = lex(sql).ok()?;
    let [stmt] = lx.statements().try_into().ok()?;
    let sig = lx.significant(stmt);
    const CHANGES: [&str; 6] = ["INSERT", "REPLACE", "UPDATE", "DELETE", "SET", "DO"];
    if !CHANGES.iter().any(|k| lx.is_kw(sig[0], k)) {
        return None;
    }
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for w in sig.windows(3) {
        let call = lx.is_kw(w[0], "LAST_INSERT_ID")
            && matches!(lx.token(w[1]), Token::LParen)
            && matches!(lx.token(w[2]), Token::RParen);
        if call && lx.ranges[w[0]].start >= at {
            out.push_str(&sql[at..lx.ranges[w[0]].start]);
            out.push_str(&value.to_string());
            at = lx.ranges[w[2]].end;
        }
    }
    (at > 0).then(|| {
        out.push_str(&sql[at..]);
        out
    })
}

/// Does `sql` insert into a table with a sequence, and need ids? `Ok(None)`:
/// no ids needed (not such an INSERT, or every row gives its own value).
/// Errors are the forms that are refused (INSERT ... SELECT, a multi-statement
/// text, an INSERT without a column list into a table whose columns are not
/// known yet: its message holds [`NEEDS_COLUMN_LIST`]).
pub fn analyze(sql: &str, cfg: &Config, session: &SessionView<'_>) -> Result<Option<SequenceFill>, RouteError> {
    analyze_text(sql, cfg, session, false)
}

/// [`analyze`] for COM_STMT_PREPARE: `?` in the sequence column are
/// [`SequenceFill::bound`], and [`SequenceFill::slots`] maps the backend
/// text's placeholders to the client's and to ids.
pub fn analyze_prepared(
    sql: &str,
    cfg: &Config,
    session: &SessionView<'_>,
) -> Result<Option<SequenceFill>, RouteError> {
    analyze_text(sql, cfg, session, true)
}

fn analyze_text(
    sql: &str,
    cfg: &Config,
    session: &SessionView<'_>,
    prepare: bool,
) -> Result<Option<SequenceFill>, RouteError> {
    if cfg.sequences.is_empty() {
        return Ok(None);
    }
    let Ok(lx) = lex(sql) else { return Ok(None) };
    let stmts = lx.statements();
    let mut found = None;
    for range in &stmts {
        let sig = lx.significant(range.clone());
        let Some(&first) = sig.first() else { continue };
        // PREPARE is kept by the session and its EXECUTE fills ids like any INSERT;
        // EXECUTE IMMEDIATE 'text' would run without them.
        if lx.is_kw(first, "EXECUTE") {
            sql_prepare(&lx, &sig, cfg, session)?;
            continue;
        }
        if lx.is_kw(first, "PREPARE") {
            continue;
        }
        if !(lx.is_kw(first, "INSERT") || lx.is_kw(first, "REPLACE")) {
            continue;
        }
        let tokens = lx.tokens[range.clone()].to_vec();
        let parsed = Parser::new(&MySqlDialect {}).with_tokens_with_locations(tokens).parse_statements();
        let fill = match parsed.as_deref() {
            Ok([Statement::Insert(ins)]) => insert(&lx, ins, cfg, session, range.clone(), prepare)?,
            Ok(_) => None,
            Err(e) => {
                if let Some(t) = sig.iter().find_map(|&i| lx.word(i).filter(|w| cfg.sequence(&w.value).is_some())) {
                    return Err(not_supported(format!(
                        "shardgate cannot parse this INSERT into {}, whose column {} comes from a shardgate sequence: {e}",
                        t.value,
                        cfg.sequence(&t.value).unwrap_or_default()
                    )));
                }
                None
            }
        };
        if let Some(f) = fill {
            found.get_or_insert(f);
        }
    }
    if found.is_some() && stmts.len() > 1 {
        return Err(not_supported(
            "an INSERT that needs ids from a shardgate sequence must be a statement of its own, not part of a multi-statement text",
        ));
    }
    Ok(found)
}

/// `EXECUTE IMMEDIATE '...'` of an INSERT that needs ids: refused (the
/// statement would run on a backend without them).
fn sql_prepare(lx: &Lexed<'_>, sig: &[usize], cfg: &Config, session: &SessionView<'_>) -> Result<(), RouteError> {
    for &i in sig {
        let (Token::SingleQuotedString(inner) | Token::DoubleQuotedString(inner)) = lx.token(i) else { continue };
        let needs = match analyze_text(inner, cfg, session, true) {
            Ok(Some(f)) => Some((f.table, f.column)),
            Ok(None) => None,
            // Any INSERT form refused on its own is refused inside PREPARE too.
            Err(e) => return Err(e),
        };
        if let Some((table, column)) = needs {
            return Err(not_supported(format!(
                "EXECUTE IMMEDIATE of an INSERT into {table}, whose column {column} comes from a \
                 shardgate sequence, is not supported; use a plain INSERT, PREPARE and EXECUTE, or the binary protocol"
            )));
        }
    }
    Ok(())
}

/// How one row gives the sequence column.
enum Given {
    /// `NULL`, `0` or `DEFAULT` at this byte range: generate.
    Generate(Range<usize>),
    /// Any other value: stored as given.
    Explicit,
    /// Placeholder `n` of a prepared statement: decided by the value bound.
    Param(usize),
}

fn given(e: &Expr, lx: &Lexed<'_>) -> Result<Given, RouteError> {
    let located = |start, end| -> Result<Given, RouteError> {
        match (lx.byte_of_start(start), lx.byte_of_end(end)) {
            (Some(s), Some(e)) if s < e => Ok(Given::Generate(s..e)),
            _ => {
                Err(not_supported("shardgate cannot locate a sequence column's value in this INSERT; name the column"))
            }
        }
    };
    match e {
        Expr::Value(v) => match &v.value {
            Value::Null => located(v.span.start, v.span.end),
            Value::Number(n, _) if n.bytes().all(|b| b == b'0' || b == b'.') && n.contains('0') => {
                located(v.span.start, v.span.end)
            }
            Value::Placeholder(p) if p == "?" => {
                match lx.byte_of_start(v.span.start).and_then(|b| lx.placeholder_index(b)) {
                    Some(n) => Ok(Given::Param(n)),
                    None => Ok(Given::Explicit),
                }
            }
            _ => Ok(Given::Explicit),
        },
        Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("DEFAULT") => {
            located(i.span.start, i.span.end)
        }
        Expr::Nested(inner) => given(inner, lx),
        _ => Ok(Given::Explicit),
    }
}

fn column_count_error(row: usize) -> RouteError {
    RouteError {
        code: 1136,
        sqlstate: "21S01",
        message: format!("Column count doesn't match value count at row {row}"),
    }
}

fn insert(
    lx: &Lexed<'_>,
    ins: &Insert,
    cfg: &Config,
    session: &SessionView<'_>,
    stmt: Range<usize>,
    prepare: bool,
) -> Result<Option<SequenceFill>, RouteError> {
    let TableObject::TableName(name) = &ins.table else { return Ok(None) };
    let (r, ours) = resolve_name(cfg, session.database, name);
    let Some(column) = cfg.sequence(&r.name).filter(|_| ours) else { return Ok(None) };
    let table = idents(name).last().map(|i| i.value.clone()).unwrap_or_else(|| r.name.clone());
    let shown = &r.shown;
    let quoted = format!("`{column}`");
    let is_col =
        |n: &sqlparser::ast::ObjectName| idents(n).last().is_some_and(|i| i.value.eq_ignore_ascii_case(column));
    let mut edits = Vec::new();
    let mut bound = Vec::new();
    let mut count = 0;
    let mut generate = |range: Range<usize>, before: String, edits: &mut Vec<Edit>| {
        edits.push(Edit { range, before, id: Some(count) });
        count += 1;
    };
    match &ins.source {
        Some(q) => {
            let SetExpr::Values(v) = q.body.as_ref() else {
                return Err(not_supported(format!(
                    "INSERT ... SELECT into {shown}, whose column {column} comes from a shardgate sequence, is not supported; \
                     insert the rows with INSERT ... VALUES (shardgate fills in {column}), or give {column} explicitly per row"
                )));
            };
            let idx = if ins.columns.is_empty() {
                let Some(columns) = session.catalog.and_then(|c| c.columns(&r.name)) else {
                    return Err(not_supported(format!(
                        "INSERT into {shown} {NEEDS_COLUMN_LIST}: shardgate does not know its column order (does the table exist?)"
                    )));
                };
                if let Some(n) = v.rows.iter().position(|row| row.content.len() != columns.len()) {
                    return Err(column_count_error(n + 1));
                }
                let idx = columns.iter().position(|c| c.eq_ignore_ascii_case(column)).ok_or_else(|| {
                    not_supported(format!(
                        "table {shown} has no column {column} (its sequence column); check the config"
                    ))
                })?;
                Some(idx)
            } else {
                if let Some(n) = v.rows.iter().position(|row| row.content.len() != ins.columns.len()) {
                    return Err(column_count_error(n + 1));
                }
                ins.columns.iter().position(is_col)
            };
            match idx {
                Some(idx) => {
                    for (n, row) in v.rows.iter().enumerate() {
                        let e = row.content.get(idx).ok_or_else(|| column_count_error(n + 1))?;
                        match given(e, lx)? {
                            Given::Generate(range) => generate(range, String::new(), &mut edits),
                            Given::Param(n) if prepare => bound.push(n),
                            _ => {}
                        }
                    }
                }
                None => {
                    // Add the column to the list and a value to every row.
                    let last = ins.columns.last().and_then(|c| idents(c).last().copied());
                    let close = last.and_then(|i| lx.byte_of_end(i.span.end)).filter(|&b| rparen_after(lx, b));
                    let Some(close) = close else {
                        return Err(not_supported(format!(
                            "shardgate cannot add column {column} to this INSERT into {shown}; list it with the value NULL"
                        )));
                    };
                    edits.push(Edit { range: close..close, before: format!(", {quoted}"), id: None });
                    for row in &v.rows {
                        let at =
                            lx.byte_of_start(row.closing_token.0.span.start).filter(|&b| lx.sql[b..].starts_with(')'));
                        let Some(at) = at else {
                            return Err(not_supported(format!(
                                "shardgate cannot add column {column} to this INSERT into {shown}; list it with the value NULL"
                            )));
                        };
                        let sep = if row.content.is_empty() { "" } else { ", " };
                        generate(at..at, sep.to_owned(), &mut edits);
                    }
                }
            }
        }
        None if !ins.assignments.is_empty() => {
            let target = ins.assignments.iter().find(|a| match &a.target {
                AssignmentTarget::ColumnName(n) => is_col(n),
                AssignmentTarget::Tuple(_) => false,
            });
            match target {
                Some(a) => match given(&a.value, lx)? {
                    Given::Generate(range) => generate(range, String::new(), &mut edits),
                    Given::Param(n) if prepare => bound.push(n),
                    _ => {}
                },
                None => {
                    let Some(at) = set_list_end(lx, stmt) else {
                        return Err(not_supported(format!(
                            "shardgate cannot add column {column} to this INSERT ... SET into {shown}; set it to NULL"
                        )));
                    };
                    generate(at..at, format!(", {quoted} = "), &mut edits);
                }
            }
        }
        None => return Ok(None),
    }
    if count == 0 && bound.is_empty() {
        return Ok(None);
    }
    edits.sort_by_key(|e| (e.range.start, e.id.is_some()));
    let slots = if prepare { slots(lx, &edits, &bound) } else { Vec::new() };
    Ok(Some(SequenceFill { name: r.name.clone(), table, column: column.to_owned(), count, bound, slots, edits }))
}

/// The placeholders of the backend text in order: the client's and the ids'.
fn slots(lx: &Lexed<'_>, edits: &[Edit], bound: &[usize]) -> Vec<Slot> {
    let client = (0..lx.tokens.len())
        .filter(|&i| matches!(lx.token(i), Token::Placeholder(p) if p == "?"))
        .map(|i| lx.ranges[i].start)
        .enumerate()
        .map(|(n, at)| (at, Slot::Client { n, sequence: bound.contains(&n) }));
    let ids = edits.iter().filter(|e| e.id.is_some()).map(|e| (e.range.start, Slot::Id));
    let mut all: Vec<(usize, Slot)> = client.chain(ids).collect();
    all.sort_by_key(|(at, _)| *at);
    all.into_iter().map(|(_, s)| s).collect()
}

/// Is the token ending at byte `end` followed by `)` (the last of a column list)?
fn rparen_after(lx: &Lexed<'_>, end: usize) -> bool {
    let next = lx.ranges.binary_search_by(|r| r.end.cmp(&end)).ok().and_then(|i| lx.next_sig(i, lx.tokens.len()));
    next.is_some_and(|j| matches!(lx.token(j), Token::RParen))
}

/// The byte just after the last assignment of `INSERT ... SET a = 1, b = 2`:
/// before a top-level `ON DUPLICATE KEY UPDATE` / `AS alias`, or the end.
fn set_list_end(lx: &Lexed<'_>, stmt: Range<usize>) -> Option<usize> {
    let sig = lx.significant(stmt);
    let set = sig.iter().position(|&i| lx.is_kw(i, "SET"))?;
    let mut depth = 0i32;
    let mut last = None;
    for &i in &sig[set + 1..] {
        match lx.token(i) {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && (lx.is_kw(i, "ON") || lx.is_kw(i, "AS")) => break,
            _ => {}
        }
        last = Some(i);
    }
    last.map(|i| lx.ranges[i].end)
}

/// `SELECT LAST_INSERT_ID()`, `SELECT @@IDENTITY`, `SELECT @@LAST_INSERT_ID`
/// (also `@@session.`), with an optional alias, as one whole statement: the
/// result column's name. The session answers these from its own record.
pub(crate) fn last_insert_id_select(lx: &Lexed<'_>, sig: &[usize]) -> Option<String> {
    let (&select, rest) = sig.split_first()?;
    if !lx.is_kw(select, "SELECT") {
        return None;
    }
    let word = |n: usize| rest.get(n).and_then(|&i| lx.word(i)).filter(|w| w.quote_style.is_none());
    let is = |n: usize, t: Token| rest.get(n).is_some_and(|&i| *lx.token(i) == t);
    let var = |n: usize| {
        word(n).is_some_and(|w| {
            let v = w.value.to_ascii_lowercase();
            v == "@@identity" || v == "@@last_insert_id"
        })
    };
    let used = if word(0).is_some_and(|w| w.value.eq_ignore_ascii_case("LAST_INSERT_ID"))
        && is(1, Token::LParen)
        && is(2, Token::RParen)
    {
        3
    } else if var(0) {
        1
    } else if word(0).is_some_and(|w| w.value.eq_ignore_ascii_case("@@session")) && is(1, Token::Period) {
        let name = word(2).map(|w| w.value.to_ascii_lowercase());
        if !matches!(name.as_deref(), Some("identity" | "last_insert_id")) {
            return None;
        }
        3
    } else {
        return None;
    };
    let expr = lx.text_between(rest[0], rest[used - 1]).to_owned();
    let alias = &rest[used..];
    let alias = match alias {
        [] => return Some(expr),
        [a] => *a,
        [as_kw, a] if lx.is_kw(*as_kw, "AS") => *a,
        _ => return None,
    };
    const CLAUSES: [&str; 10] = ["FROM", "INTO", "WHERE", "LIMIT", "UNION", "FOR", "LOCK", "ORDER", "GROUP", "HAVING"];
    match lx.token(alias) {
        Token::Word(w) if w.quote_style.is_some() || !CLAUSES.iter().any(|k| w.value.eq_ignore_ascii_case(k)) => {
            Some(w.value.clone())
        }
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
#[path = "sequence_tests.rs"]
mod tests;
