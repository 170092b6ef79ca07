//! Per-shard SQL cut from the client's original bytes: an IN list reduced to
//! one shard's values, or a multi-row INSERT reduced to one shard's rows.
//! Everything outside the list / rows stays byte-identical.

use std::collections::BTreeMap;
use std::ops::Range;

use sqlparser::ast::Expr;
use sqlparser::tokenizer::Token;

use super::exprs::plain_literal_value;
use crate::sql::Lexed;

/// Split an IN list by shard: `per_value[i]` is the shard of `list[i]`.
/// `None` when the list's exact text cannot be located (the caller then sends
/// the whole statement to every target, which is also correct).
pub(crate) fn split_in_list(lx: &Lexed<'_>, list: &[Expr], per_value: &[usize]) -> Option<ListSplit> {
    if list.len() != per_value.len() {
        return None;
    }
    let items = in_list_items(lx, list)?;
    let mut by_shard: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (range, &shard) in items.items.iter().zip(per_value) {
        by_shard.entry(shard).or_default().push(&lx.sql[range.clone()]);
    }
    Some(ListSplit {
        range: items.open_end..items.close_start,
        parts: by_shard.into_iter().map(|(shard, vals)| (shard, vals.join(", "))).collect(),
    })
}

/// An IN list split by shard: the bytes between its parentheses, and each
/// shard's own values to put there.
#[derive(Debug, Clone)]
pub(crate) struct ListSplit {
    pub range: Range<usize>,
    pub parts: Vec<(usize, String)>,
}

impl ListSplit {
    /// The whole statement per shard.
    pub(crate) fn texts(&self, sql: &str) -> Vec<(usize, String)> {
        self.parts
            .iter()
            .map(|(s, vals)| (*s, format!("{}{}{}", &sql[..self.range.start], vals, &sql[self.range.end..])))
            .collect()
    }
}

struct InItems {
    /// Byte just after `(`.
    open_end: usize,
    /// Byte of `)`.
    close_start: usize,
    items: Vec<Range<usize>>,
}

/// Locate the parentheses and items of an IN list of plain literals.
fn in_list_items(lx: &Lexed<'_>, list: &[Expr]) -> Option<InItems> {
    let anchors: Vec<usize> = list
        .iter()
        .map(|e| plain_literal_value(e).and_then(|v| lx.byte_of_start(v.span.start)))
        .collect::<Option<_>>()?;
    let first = lx.token_starting_at(anchors[0])?;
    // Walk back over a sign and trivia to the opening parenthesis.
    let mut open = first;
    loop {
        open = open.checked_sub(1)?;
        match lx.token(open) {
            Token::LParen => break,
            Token::Minus | Token::Plus | Token::Whitespace(_) => continue,
            _ => return None,
        }
    }
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut item_first: Option<usize> = None;
    let mut item_last = 0;
    let mut close = None;
    for i in open + 1..lx.tokens.len() {
        match lx.token(i) {
            Token::Whitespace(_) => continue,
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => {
                close = Some(i);
                break;
            }
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                items.push(lx.ranges[item_first?].start..lx.ranges[item_last].end);
                item_first = None;
                continue;
            }
            _ => {}
        }
        item_first.get_or_insert(i);
        item_last = i;
    }
    let close = close?;
    items.push(lx.ranges[item_first?].start..lx.ranges[item_last].end);
    let consistent = items.len() == list.len() && items.iter().zip(&anchors).all(|(r, a)| r.contains(a));
    consistent.then(|| InItems { open_end: lx.ranges[open].end, close_start: lx.ranges[close].start, items })
}

/// Build per-shard INSERT texts: `rows[i]` is the byte range of row i (with its
/// parentheses, and `ROW` if written), `shard_of[i]` its shard.
pub(crate) fn split_insert(sql: &str, rows: &[Range<usize>], shard_of: &[usize]) -> Option<Vec<(usize, String)>> {
    let (first, last) = (rows.first()?, rows.last()?);
    let prefix = &sql[..first.start];
    let suffix = &sql[last.end..];
    let mut by_shard: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (r, &s) in rows.iter().zip(shard_of) {
        by_shard.entry(s).or_default().push(sql.get(r.clone())?);
    }
    Some(by_shard.into_iter().map(|(s, rows)| (s, format!("{prefix}{}{suffix}", rows.join(", ")))).collect())
}
