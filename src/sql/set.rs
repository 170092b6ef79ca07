//! SET statements, parsed by hand from tokens (sqlparser misses `:=`, loses
//! `SESSION` when printing, and rejects several MySQL forms).
//!
//! Values are the exact original text of each right-hand side, so the session
//! can replay them byte for byte.

use std::ops::Range;

use sqlparser::tokenizer::Token;

use super::lexer::Lexed;
use crate::router::plan::SetItem;

/// What a SET statement does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetStatement {
    /// Session state the session tracks and replays.
    Session(Vec<SetItem>),
    /// Server-wide (GLOBAL / PERSIST / PERSIST_ONLY): sent to every primary.
    Global,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Session,
    Global,
}

/// Parse the SET statement in token range `range` (its first significant token is SET).
/// `Err` holds a message for error 1235.
pub fn parse_set(lx: &Lexed<'_>, range: Range<usize>) -> Result<SetStatement, String> {
    let sig = lx.significant(range.clone());
    let body = &sig[1..];
    let first = *body.first().ok_or("SET needs an assignment")?;
    for (kw, what) in [("PASSWORD", "SET PASSWORD"), ("ROLE", "SET ROLE"), ("STATEMENT", "SET STATEMENT ... FOR")] {
        if lx.is_kw(first, kw) {
            return Err(unsupported(what));
        }
    }
    if lx.is_kw(first, "RESOURCE") && body.get(1).is_some_and(|&i| lx.is_kw(i, "GROUP")) {
        return Err(unsupported("SET RESOURCE GROUP"));
    }
    if lx.is_kw(first, "DEFAULT") && body.get(1).is_some_and(|&i| lx.is_kw(i, "ROLE")) {
        return Err(unsupported("SET DEFAULT ROLE"));
    }

    // SET [GLOBAL | SESSION | LOCAL] TRANSACTION ...: one statement, commas included.
    let (scope_kw, after) = match modifier(lx, first) {
        Some(scope) => (Some(scope), body.get(1).copied()),
        None => (None, Some(first)),
    };
    if after.is_some_and(|i| lx.is_kw(i, "TRANSACTION")) {
        return Ok(match scope_kw {
            Some(Scope::Global) => SetStatement::Global,
            _ => SetStatement::Session(vec![SetItem::Transaction {
                session: scope_kw.is_some(),
                sql: lx.statement_text(sig[0], range.clone()).to_owned(),
            }]),
        });
    }

    let mut items = Vec::new();
    let mut sticky = Scope::Session;
    let (mut globals, mut sessions) = (0, 0);
    for item in split_top_level(lx, body) {
        let (scope, parsed) = parse_item(lx, &item, &mut sticky)?;
        match scope {
            Scope::Global => globals += 1,
            Scope::Session => {
                sessions += 1;
                items.push(parsed);
            }
        }
    }
    match (globals, sessions) {
        (0, _) => Ok(SetStatement::Session(items)),
        (_, 0) => Ok(SetStatement::Global),
        _ => Err("a SET that mixes GLOBAL and SESSION (or user variable) assignments is not \
                  supported by shardgate; split it into two SET statements"
            .into()),
    }
}

fn unsupported(what: &str) -> String {
    format!("{what} is not supported through shardgate")
}

fn is_assign(t: &Token) -> bool {
    matches!(t, Token::Eq | Token::Assignment)
}

fn modifier(lx: &Lexed<'_>, i: usize) -> Option<Scope> {
    if lx.is_kw(i, "GLOBAL") || lx.is_kw(i, "PERSIST") || lx.is_kw(i, "PERSIST_ONLY") {
        Some(Scope::Global)
    } else if lx.is_kw(i, "SESSION") || lx.is_kw(i, "LOCAL") {
        Some(Scope::Session)
    } else {
        None
    }
}

/// Split significant token indexes at top-level commas.
fn split_top_level(lx: &Lexed<'_>, toks: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new()];
    let mut depth = 0i32;
    for &i in toks {
        match lx.token(i) {
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth -= 1,
            Token::Comma if depth == 0 => {
                out.push(Vec::new());
                continue;
            }
            _ => {}
        }
        out.last_mut().expect("never empty").push(i);
    }
    out
}

/// A name or string as written for SET NAMES / CHARACTER SET, unquoted and lower-cased.
fn charset_name(lx: &Lexed<'_>, i: usize) -> Option<String> {
    match lx.token(i) {
        Token::Word(w) => Some(w.value.to_lowercase()),
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Some(s.to_lowercase()),
        _ => None,
    }
}

fn parse_item(lx: &Lexed<'_>, item: &[usize], sticky: &mut Scope) -> Result<(Scope, SetItem), String> {
    let Some(&first) = item.first() else {
        return Err("SET has an empty assignment".into());
    };
    // SET NAMES cs [COLLATE coll]
    if lx.is_kw(first, "NAMES") {
        let charset = item.get(1).and_then(|&i| charset_name(lx, i)).ok_or("SET NAMES needs a character set")?;
        let collation = match item.get(2) {
            Some(&i) if lx.is_kw(i, "COLLATE") => {
                Some(item.get(3).and_then(|&i| charset_name(lx, i)).ok_or("COLLATE needs a collation name")?)
            }
            Some(_) => return Err("unexpected text after SET NAMES".into()),
            None => None,
        };
        if item.len() > 4 {
            return Err("unexpected text after SET NAMES ... COLLATE".into());
        }
        return Ok((Scope::Session, SetItem::Names { charset, collation }));
    }
    // SET CHARACTER SET cs / SET CHARSET cs
    let cs_at = if lx.is_kw(first, "CHARSET") {
        Some(1)
    } else if lx.is_kw(first, "CHARACTER") && item.get(1).is_some_and(|&i| lx.is_kw(i, "SET")) {
        Some(2)
    } else {
        None
    };
    if let Some(at) = cs_at {
        let cs = item.get(at).and_then(|&i| charset_name(lx, i)).ok_or("SET CHARACTER SET needs a character set")?;
        if item.len() > at + 1 {
            return Err("unexpected text after SET CHARACTER SET".into());
        }
        return Ok((Scope::Session, SetItem::CharacterSet(cs)));
    }

    let mut pos = 0;
    if let Some(scope) = modifier(lx, first) {
        *sticky = scope;
        pos = 1;
    }
    let (scope, user, name, next) = variable(lx, item, pos, *sticky)?;
    let op = *item.get(next).ok_or_else(|| format!("SET {name} needs '=' and a value"))?;
    if !is_assign(lx.token(op)) {
        return Err(format!("SET {name}: expected '=' or ':=', found '{}'", lx.text(op)));
    }
    let (Some(&vfirst), Some(&vlast)) = (item.get(next + 1), item.last()) else {
        return Err(format!("SET {name} needs a value"));
    };
    if vlast < vfirst {
        return Err(format!("SET {name} needs a value"));
    }
    let value = lx.text_between(vfirst, vlast).to_owned();
    let parsed = if user { SetItem::User { name, value } } else { SetItem::Session { name, value } };
    Ok((scope, parsed))
}

/// Parse the variable at `item[pos..]`: returns (scope, is user variable, lower-cased name,
/// index in `item` just after the name).
fn variable(lx: &Lexed<'_>, item: &[usize], pos: usize, sticky: Scope) -> Result<(Scope, bool, String, usize), String> {
    let &i = item.get(pos).ok_or("SET needs a variable name")?;
    // Collects `.part` continuations of a dotted name.
    let dotted = |mut name: String, mut at: usize| {
        while at + 1 < item.len() && matches!(lx.token(item[at]), Token::Period) {
            match lx.word(item[at + 1]) {
                Some(w) => {
                    name.push('.');
                    name.push_str(&w.value.to_lowercase());
                    at += 2;
                }
                None => break,
            }
        }
        (name, at)
    };
    match lx.token(i) {
        Token::Word(w) if w.quote_style.is_none() && w.value.starts_with("@@") => {
            let head = w.value[2..].to_lowercase();
            let has_dot = matches!(item.get(pos + 1).map(|&j| lx.token(j)), Some(Token::Period));
            let scope = match head.as_str() {
                "global" | "persist" | "persist_only" if has_dot => Some(Scope::Global),
                "session" | "local" if has_dot => Some(Scope::Session),
                _ => None,
            };
            match scope {
                Some(scope) => {
                    let first =
                        item.get(pos + 2).and_then(|&j| lx.word(j)).ok_or("SET @@scope. needs a variable name")?;
                    let (name, at) = dotted(first.value.to_lowercase(), pos + 3);
                    Ok((scope, false, name, at))
                }
                None => {
                    let (name, at) = dotted(head, pos + 1);
                    Ok((Scope::Session, false, name, at))
                }
            }
        }
        Token::Word(w) if w.quote_style.is_none() && w.value.starts_with('@') => {
            let (name, at) = dotted(w.value[1..].to_lowercase(), pos + 1);
            Ok((Scope::Session, true, name, at))
        }
        Token::AtSign => {
            let &j = item.get(pos + 1).ok_or("SET @ needs a variable name")?;
            let name = match lx.token(j) {
                Token::Word(w) => w.value.to_lowercase(),
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.to_lowercase(),
                _ => return Err(format!("SET: bad user variable name '{}'", lx.text(j))),
            };
            Ok((Scope::Session, true, name, pos + 2))
        }
        Token::Word(w) => {
            let (name, at) = dotted(w.value.to_lowercase(), pos + 1);
            Ok((sticky, false, name, at))
        }
        _ => Err(format!("SET: unexpected '{}'", lx.text(i))),
    }
}
