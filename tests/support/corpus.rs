//! Query corpora for the differential test: files with one query per line, and the seeded
//! generator's output ([`super::querygen`]).
//!
//! File format: one query per line; blank lines and lines starting with `#` are comments; a `#`
//! after the query (outside quotes) starts a trailing comment, which may be an annotation for
//! the comparison (`# keys: 1,3`, `# order: total`, `# order: none`; see
//! [`super::diff_rules`]). A trailing `;` is dropped.

use std::path::Path;

use super::diff_rules::Annotation;

#[derive(Debug, Clone)]
pub struct Query {
    /// `corpus.sql:57`, `gen:012`: how failures and `SHARDGATE_DIFF_ONLY` name it.
    pub id: String,
    pub sql: String,
    pub annotation: Option<Annotation>,
}

/// Splits a line into the query and its trailing comment (after a `#` outside quotes).
pub fn split_comment(line: &str) -> (&str, Option<&str>) {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' || c == '`' => quote = Some(c),
            None if c == '#' => return (&line[..i], Some(&line[i + 1..])),
            None => {}
        }
    }
    (line, None)
}

/// Parses corpus text; `name` prefixes the ids. Panics on a bad annotation (a corpus bug).
pub fn parse(name: &str, text: &str) -> Vec<Query> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let (sql, comment) = split_comment(line);
        let sql = sql.trim().trim_end_matches(';').trim();
        if sql.is_empty() {
            continue;
        }
        let annotation = comment
            .map(str::trim)
            .filter(|c| c.starts_with("keys:") || c.starts_with("order:"))
            .map(|c| Annotation::parse(c).unwrap_or_else(|e| panic!("{name}:{}: {e}", n + 1)))
            .and_then(|a| a);
        out.push(Query { id: format!("{name}:{}", n + 1), sql: sql.to_string(), annotation });
    }
    out
}

/// Reads `tests/differential/<file>`.
pub fn load(file: &str) -> Vec<Query> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse(file, &text)
}

/// Keeps the queries whose id or text contains `filter` (case-insensitive).
pub fn only(queries: Vec<Query>, filter: Option<&str>) -> Vec<Query> {
    let Some(f) = filter.map(str::to_lowercase) else {
        return queries;
    };
    queries.into_iter().filter(|q| q.id.to_lowercase().contains(&f) || q.sql.to_lowercase().contains(&f)).collect()
}
