//! `@@socket` reads NULL through shardgate.
//!
//! A backend would answer with the path of its own Unix socket, which is not
//! shardgate's: mysql_async (and the `mysql` crate), whose default
//! `prefer_socket` reads `@@socket` right after login, then moves the
//! connection to that socket when it exists on the client's host, bypassing
//! the proxy (and landing on whichever backend answered, perhaps a replica).
//! shardgate listens on no Unix socket, so the statement is sent with `NULL`
//! in place of the variable, under the variable's own name as column name when
//! it is a whole select item.

use sqlparser::tokenizer::Token;

use crate::sql::Lexed;

/// Select modifiers that may stand between SELECT and the first item.
const MODIFIERS: [&str; 12] = [
    "SELECT",
    "ALL",
    "DISTINCT",
    "DISTINCTROW",
    "HIGH_PRIORITY",
    "STRAIGHT_JOIN",
    "SQL_SMALL_RESULT",
    "SQL_BIG_RESULT",
    "SQL_BUFFER_RESULT",
    "SQL_CACHE",
    "SQL_NO_CACHE",
    "SQL_CALC_FOUND_ROWS",
];

/// Keywords that end a select item.
const ITEM_END: [&str; 14] = [
    "FROM",
    "INTO",
    "WHERE",
    "GROUP",
    "HAVING",
    "ORDER",
    "LIMIT",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "WINDOW",
    "FOR",
    "LOCK",
    "PROCEDURE",
];

/// Keywords after which, at the same depth, a list is not a select list.
const NOT_SELECT_LIST: [&str; 11] =
    ["FROM", "WHERE", "BY", "HAVING", "LIMIT", "ON", "USING", "DO", "SET", "VALUES", "VALUE"];

/// The text with every `@@socket` / `@@global.socket` read replaced by NULL,
/// or `None` when it reads neither.
pub(crate) fn hide_socket(lx: &Lexed<'_>) -> Option<String> {
    let n = lx.tokens.len();
    let word = |i: usize| lx.word(i).filter(|w| w.quote_style.is_none()).map(|w| w.value.as_str());
    let mut edits: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < n {
        let last = match word(i) {
            Some(w) if w.eq_ignore_ascii_case("@@socket") => Some(i),
            Some(w) if w.eq_ignore_ascii_case("@@global") => lx
                .next_sig(i, n)
                .filter(|&dot| *lx.token(dot) == Token::Period)
                .and_then(|dot| lx.next_sig(dot, n))
                .filter(|&v| word(v).is_some_and(|v| v.eq_ignore_ascii_case("socket"))),
            _ => None,
        };
        if let Some(last) = last {
            edits.push((i, last));
            i = last;
        }
        i += 1;
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(lx.sql.len() + 32);
    let mut copied = 0;
    for (first, last) in edits {
        out.push_str(&lx.sql[copied..lx.ranges[first].start]);
        out.push_str("NULL");
        if is_select_item(lx, first, last) {
            out.push_str(" AS `");
            out.push_str(&lx.text_between(first, last).replace('`', "``"));
            out.push('`');
        }
        copied = lx.ranges[last].end;
    }
    out.push_str(&lx.sql[copied..]);
    Some(out)
}

/// Tokens `first..=last` are a whole item of a select list, without an alias.
fn is_select_item(lx: &Lexed<'_>, first: usize, last: usize) -> bool {
    let kw_in = |i: usize, set: &[&str]| set.iter().any(|k| lx.is_kw(i, k));
    let starts = lx.prev_sig(first).is_some_and(|p| *lx.token(p) == Token::Comma || kw_in(p, &MODIFIERS));
    let ends = match lx.next_sig(last, lx.tokens.len()) {
        None => true,
        Some(x) => matches!(lx.token(x), Token::Comma | Token::RParen | Token::SemiColon) || kw_in(x, &ITEM_END),
    };
    if !starts || !ends {
        return false;
    }
    // The nearest SELECT at the same depth, before any clause that starts another list.
    let mut depth = 0u32;
    for j in (0..first).rev().filter(|&j| !lx.is_trivia(j)) {
        match lx.token(j) {
            Token::RParen => depth += 1,
            Token::LParen if depth == 0 => return false,
            Token::LParen => depth -= 1,
            Token::SemiColon if depth == 0 => return false,
            _ if depth > 0 => {}
            _ if lx.is_kw(j, "SELECT") => return true,
            _ if kw_in(j, &NOT_SELECT_LIST) => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hide(sql: &str) -> Option<String> {
        hide_socket(&crate::sql::lex(sql).unwrap())
    }

    #[test]
    fn socket_reads_null_under_its_own_name() {
        // What mysql_async sends at connect.
        assert_eq!(
            hide("SELECT @@max_allowed_packet,@@wait_timeout,@@socket").as_deref(),
            Some("SELECT @@max_allowed_packet,@@wait_timeout,NULL AS `@@socket`")
        );
        assert_eq!(hide("select @@SOCKET").as_deref(), Some("select NULL AS `@@SOCKET`"));
        assert_eq!(
            hide("SELECT @@global.socket, 1 FROM dual").as_deref(),
            Some("SELECT NULL AS `@@global.socket`, 1 FROM dual")
        );
        assert_eq!(hide("SELECT DISTINCT @@socket;").as_deref(), Some("SELECT DISTINCT NULL AS `@@socket`;"));
        assert_eq!(hide("SELECT (SELECT @@socket)").as_deref(), Some("SELECT (SELECT NULL AS `@@socket`)"));
        // Comments and hints stay where they were.
        assert_eq!(
            hide("/* shardgate:primary */ SELECT @@socket /* x */").as_deref(),
            Some("/* shardgate:primary */ SELECT NULL AS `@@socket` /* x */")
        );
    }

    #[test]
    fn socket_inside_expressions_or_aliased_gets_no_alias() {
        assert_eq!(hide("SELECT @@socket AS s").as_deref(), Some("SELECT NULL AS s"));
        assert_eq!(hide("SELECT @@socket s").as_deref(), Some("SELECT NULL s"));
        assert_eq!(hide("SELECT CONCAT('x', @@socket)").as_deref(), Some("SELECT CONCAT('x', NULL)"));
        assert_eq!(hide("SELECT 1 IN (2, @@socket, 3)").as_deref(), Some("SELECT 1 IN (2, NULL, 3)"));
        assert_eq!(hide("SET @s = @@socket").as_deref(), Some("SET @s = NULL"));
        assert_eq!(hide("DO 1, @@socket").as_deref(), Some("DO 1, NULL"));
        assert_eq!(hide("SELECT a FROM t ORDER BY a, @@socket").as_deref(), Some("SELECT a FROM t ORDER BY a, NULL"));
    }

    #[test]
    fn other_text_is_left_alone() {
        assert_eq!(hide("SELECT @@version, @@socket_timeout"), None);
        assert_eq!(hide("SELECT '@@socket', `@@socket` FROM t /* @@socket */"), None);
        assert_eq!(hide("SELECT @@session.socket"), None);
        assert_eq!(hide("SELECT socket FROM t"), None);
    }
}
