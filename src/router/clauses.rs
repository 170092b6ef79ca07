//! Where the clauses of a top-level SELECT sit in the client's text, found on
//! tokens (depth 0 only), so a merge rewrite can replace or cut a clause and
//! append to the select list while every other byte stays as the client wrote it.

use std::ops::Range;

use sqlparser::tokenizer::Token;

use crate::sql::Lexed;

/// Words that may follow SELECT before the select list.
const MODIFIERS: [&str; 11] = [
    "ALL",
    "DISTINCT",
    "DISTINCTROW",
    "HIGH_PRIORITY",
    "STRAIGHT_JOIN",
    "SQL_SMALL_RESULT",
    "SQL_BIG_RESULT",
    "SQL_BUFFER_RESULT",
    "SQL_NO_CACHE",
    "SQL_CACHE",
    "SQL_CALC_FOUND_ROWS",
];

/// Clause keywords in the order MySQL requires them.
const CLAUSES: [&str; 11] =
    ["FROM", "WHERE", "GROUP", "HAVING", "WINDOW", "ORDER", "LIMIT", "PROCEDURE", "INTO", "FOR", "LOCK"];

#[derive(Debug)]
pub(crate) struct Clauses {
    /// Token index ranges (significant tokens only inside) of each select item.
    pub items: Vec<Vec<usize>>,
    /// Significant token positions (indexes into `lx.tokens`) where each clause keyword sits.
    pub at: [Option<usize>; CLAUSES.len()],
    /// Byte offset just after the statement's last token.
    pub end: usize,
    /// A modifier word after SELECT, upper-cased (DISTINCT, SQL_CALC_FOUND_ROWS...).
    pub modifiers: Vec<String>,
}

/// Indexes into [`CLAUSES`]; every variant names a slot even where no code asks for it by name.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clause {
    From = 0,
    Where,
    Group,
    Having,
    Window,
    Order,
    Limit,
    Procedure,
    Into,
    For,
    Lock,
}

impl Clauses {
    /// Scan the significant tokens `sig` of one SELECT statement.
    pub(crate) fn scan(lx: &Lexed<'_>, sig: &[usize]) -> Option<Clauses> {
        let first = *sig.first()?;
        if !lx.is_kw(first, "SELECT") {
            return None;
        }
        let mut pos = 1;
        let mut modifiers = Vec::new();
        while let Some(&i) = sig.get(pos) {
            match MODIFIERS.iter().find(|m| lx.is_kw(i, m)) {
                Some(m) => modifiers.push((*m).to_string()),
                None => break,
            }
            pos += 1;
        }
        let mut at = [None; CLAUSES.len()];
        let mut items = vec![Vec::new()];
        let mut depth = 0i32;
        let mut in_list = true;
        for &i in &sig[pos..] {
            match lx.token(i) {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                if let Some(c) = CLAUSES.iter().position(|k| lx.is_kw(i, k)) {
                    at[c].get_or_insert(i);
                    in_list = false;
                    continue;
                }
                if in_list && matches!(lx.token(i), Token::Comma) {
                    items.push(Vec::new());
                    continue;
                }
            }
            if in_list {
                items.last_mut().expect("one").push(i);
            }
        }
        if items.iter().any(Vec::is_empty) {
            return None;
        }
        Some(Clauses { items, at, end: lx.ranges[*sig.last()?].end, modifiers })
    }

    pub(crate) fn get(&self, c: Clause) -> Option<usize> {
        self.at[c as usize]
    }

    /// Byte range of clause `c`: from its keyword to the next clause keyword
    /// (or the statement's end).
    pub(crate) fn range(&self, lx: &Lexed<'_>, c: Clause) -> Option<Range<usize>> {
        let start = self.get(c)?;
        Some(lx.ranges[start].start..self.next_after(lx, c as usize))
    }

    /// Byte offset where the first clause after `c` starts (or the end).
    fn next_after(&self, lx: &Lexed<'_>, c: usize) -> usize {
        self.at[c + 1..].iter().flatten().map(|&i| lx.ranges[i].start).min().unwrap_or(self.end)
    }

    /// Byte offset at which a clause `c` that is absent would be inserted.
    pub(crate) fn insert_point(&self, lx: &Lexed<'_>, c: Clause) -> usize {
        self.next_after(lx, c as usize)
    }

    /// The significant tokens of clause `c`'s body (after its keyword(s)),
    /// split at depth-0 commas.
    pub(crate) fn list(&self, lx: &Lexed<'_>, sig: &[usize], c: Clause, skip_words: usize) -> Vec<Vec<usize>> {
        let Some(start) = self.get(c) else { return Vec::new() };
        let end = self.next_after(lx, c as usize);
        let body: Vec<usize> =
            sig.iter().copied().filter(|&i| i > start && lx.ranges[i].start < end).skip(skip_words).collect();
        let mut out = vec![Vec::new()];
        let mut depth = 0i32;
        for i in body {
            match lx.token(i) {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::Comma if depth == 0 => {
                    out.push(Vec::new());
                    continue;
                }
                _ => {}
            }
            out.last_mut().expect("one").push(i);
        }
        out.retain(|v| !v.is_empty());
        out
    }
}

/// The original text of a token list (first to last token, trivia included).
pub(crate) fn text_of(lx: &Lexed<'_>, toks: &[usize]) -> String {
    match (toks.first(), toks.last()) {
        (Some(&a), Some(&b)) => lx.text_between(a, b).to_owned(),
        _ => String::new(),
    }
}

/// Apply non-overlapping byte-range edits to `sql`.
pub(crate) fn apply_edits(sql: &str, edits: &[(Range<usize>, String)]) -> String {
    let mut sorted: Vec<&(Range<usize>, String)> = edits.iter().collect();
    sorted.sort_by_key(|(r, _)| (r.start, r.end));
    let mut out = String::with_capacity(sql.len() + 64);
    let mut at = 0;
    for (r, text) in sorted {
        out.push_str(&sql[at..r.start]);
        out.push_str(text);
        at = r.end;
    }
    out.push_str(&sql[at..]);
    out
}
