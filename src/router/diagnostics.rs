//! Statements about the previous statement, answered by the session from what
//! it recorded (the previous statement may have run on a backend connection
//! that has since served someone else): `SELECT ROW_COUNT()`,
//! `SELECT FOUND_ROWS()`, `SELECT @@warning_count` / `@@error_count`,
//! `SHOW WARNINGS`, `SHOW ERRORS`, `SHOW COUNT(*) WARNINGS|ERRORS`.

use sqlparser::tokenizer::Token;

use crate::sql::Lexed;

/// What the session is asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diag {
    RowCount {
        column: String,
    },
    FoundRows {
        column: String,
    },
    WarningCount {
        column: String,
    },
    ErrorCount {
        column: String,
    },
    /// `SELECT CONNECTION_ID()`: shardgate's own id for the client (what KILL takes).
    ConnectionId {
        column: String,
    },
    /// `SELECT VERSION()` / `@@version`: the version the handshake announced.
    Version {
        column: String,
    },
    /// SHOW WARNINGS / SHOW ERRORS [LIMIT [offset,] count].
    Show {
        errors: bool,
        offset: u64,
        limit: Option<u64>,
    },
    /// SHOW COUNT(*) WARNINGS / ERRORS.
    ShowCount {
        errors: bool,
    },
}

/// Recognise one of the forms above in the significant tokens `sig`.
pub(crate) fn recognise(lx: &Lexed<'_>, sig: &[usize]) -> Option<Diag> {
    let (&first, rest) = sig.split_first()?;
    if lx.is_kw(first, "SHOW") {
        return show(lx, rest);
    }
    if !lx.is_kw(first, "SELECT") {
        return None;
    }
    let word = |n: usize| rest.get(n).and_then(|&i| lx.word(i)).filter(|w| w.quote_style.is_none());
    let is = |n: usize, t: Token| rest.get(n).is_some_and(|&i| *lx.token(i) == t);
    let (make, used): (fn(String) -> Diag, usize) = match word(0).map(|w| w.value.to_ascii_lowercase()).as_deref() {
        Some("row_count") if is(1, Token::LParen) && is(2, Token::RParen) => (|c| Diag::RowCount { column: c }, 3),
        Some("found_rows") if is(1, Token::LParen) && is(2, Token::RParen) => (|c| Diag::FoundRows { column: c }, 3),
        Some("connection_id") if is(1, Token::LParen) && is(2, Token::RParen) => {
            (|c| Diag::ConnectionId { column: c }, 3)
        }
        Some("version") if is(1, Token::LParen) && is(2, Token::RParen) => (|c| Diag::Version { column: c }, 3),
        Some("@@version") => (|c| Diag::Version { column: c }, 1),
        Some("@@warning_count") => (|c| Diag::WarningCount { column: c }, 1),
        Some("@@error_count") => (|c| Diag::ErrorCount { column: c }, 1),
        Some("@@session") if is(1, Token::Period) => match word(2).map(|w| w.value.to_ascii_lowercase()).as_deref() {
            Some("warning_count") => (|c| Diag::WarningCount { column: c }, 3),
            Some("error_count") => (|c| Diag::ErrorCount { column: c }, 3),
            _ => return None,
        },
        _ => return None,
    };
    let expr = lx.text_between(rest[0], rest[used - 1]).to_owned();
    let column = match &rest[used..] {
        [] => expr,
        [a] => alias(lx, *a)?,
        [as_kw, a] if lx.is_kw(*as_kw, "AS") => alias(lx, *a)?,
        _ => return None,
    };
    Some(make(column))
}

fn alias(lx: &Lexed<'_>, i: usize) -> Option<String> {
    const CLAUSES: [&str; 10] = ["FROM", "INTO", "WHERE", "LIMIT", "UNION", "FOR", "LOCK", "ORDER", "GROUP", "HAVING"];
    match lx.token(i) {
        Token::Word(w) if w.quote_style.is_some() || !CLAUSES.iter().any(|k| w.value.eq_ignore_ascii_case(k)) => {
            Some(w.value.clone())
        }
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Some(s.clone()),
        _ => None,
    }
}

fn show(lx: &Lexed<'_>, rest: &[usize]) -> Option<Diag> {
    let kind = |i: usize| -> Option<bool> {
        if lx.is_kw(i, "WARNINGS") {
            Some(false)
        } else if lx.is_kw(i, "ERRORS") {
            Some(true)
        } else {
            None
        }
    };
    if let [count, l, star, r, what] = rest {
        if lx.is_kw(*count, "COUNT")
            && *lx.token(*l) == Token::LParen
            && *lx.token(*star) == Token::Mul
            && *lx.token(*r) == Token::RParen
        {
            return Some(Diag::ShowCount { errors: kind(*what)? });
        }
    }
    let (&what, tail) = rest.split_first()?;
    let errors = kind(what)?;
    let num = |i: usize| -> Option<u64> {
        match lx.token(i) {
            Token::Number(n, _) => n.parse().ok(),
            _ => None,
        }
    };
    match tail {
        [] => Some(Diag::Show { errors, offset: 0, limit: None }),
        [limit, n] if lx.is_kw(*limit, "LIMIT") => Some(Diag::Show { errors, offset: 0, limit: Some(num(*n)?) }),
        [limit, o, comma, n] if lx.is_kw(*limit, "LIMIT") && *lx.token(*comma) == Token::Comma => {
            Some(Diag::Show { errors, offset: num(*o)?, limit: Some(num(*n)?) })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(sql: &str) -> Option<Diag> {
        let lx = crate::sql::lex(sql).unwrap();
        let sig = lx.significant(0..lx.tokens.len());
        recognise(&lx, &sig)
    }

    #[test]
    fn recognises_the_forms_and_their_column_names() {
        assert_eq!(rec("SELECT ROW_COUNT()"), Some(Diag::RowCount { column: "ROW_COUNT()".into() }));
        assert_eq!(rec("select found_rows() as n"), Some(Diag::FoundRows { column: "n".into() }));
        assert_eq!(rec("SELECT @@warning_count"), Some(Diag::WarningCount { column: "@@warning_count".into() }));
        assert_eq!(rec("SELECT @@session.error_count `e`"), Some(Diag::ErrorCount { column: "e".into() }));
        assert_eq!(rec("SHOW WARNINGS"), Some(Diag::Show { errors: false, offset: 0, limit: None }));
        assert_eq!(rec("SELECT CONNECTION_ID()"), Some(Diag::ConnectionId { column: "CONNECTION_ID()".into() }));
        assert_eq!(rec("select version() v"), Some(Diag::Version { column: "v".into() }));
        assert_eq!(rec("SELECT @@version"), Some(Diag::Version { column: "@@version".into() }));
        assert_eq!(rec("SELECT CONNECTION_ID() FROM t"), None);
        assert_eq!(rec("show errors limit 2, 5"), Some(Diag::Show { errors: true, offset: 2, limit: Some(5) }));
        assert_eq!(rec("SHOW COUNT(*) WARNINGS"), Some(Diag::ShowCount { errors: false }));
        for other in [
            "SELECT ROW_COUNT() FROM t",
            "SELECT ROW_COUNT() + 1",
            "SHOW WARNINGS LIMIT x",
            "SHOW VARIABLES",
            "SELECT @@warning_count, 1",
        ] {
            assert_eq!(rec(other), None, "{other}");
        }
    }
}
