//! Fast classification of a statement by its first keyword(s), before (or
//! instead of) a full parse, plus cheap token scans the router needs.

use sqlparser::tokenizer::Token;

use super::lexer::Lexed;

/// What a statement is, judged from its leading keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leading {
    /// `BEGIN [WORK]` / `START TRANSACTION ...`
    Begin,
    Commit,
    /// `ROLLBACK [WORK] [AND ...]` (not ROLLBACK TO).
    Rollback,
    /// `SAVEPOINT x` / `RELEASE SAVEPOINT x` / `ROLLBACK [WORK] TO [SAVEPOINT] x`.
    Savepoint,
    /// RELEASE without SAVEPOINT (not valid MySQL).
    Release,
    Set,
    Use,
    Kill,
    /// `SHOW SHARDGATE ROUTE <sql>`: the inner statement starts at byte `inner_start`
    /// (everything after ROUTE, up to the end of the text).
    ShowRoute {
        inner_start: usize,
    },
    /// shardgate's own admin statements: `SHOW SHARDGATE BACKENDS|SHARDS|POOLS`,
    /// `SHARDGATE RELOAD [FORCE]`, `SHARDGATE SWITCHOVER <shard>`.
    Admin,
    Xa,
    LockTables,
    UnlockTables,
    /// LOCK INSTANCE FOR BACKUP and other LOCK forms.
    LockOther,
    Prepare,
    Execute,
    /// DEALLOCATE PREPARE / DROP PREPARE.
    Deallocate,
    Handler,
    Do,
    /// LOAD DATA / LOAD XML.
    Load,
    /// ANALYZE / OPTIMIZE / CHECK / REPAIR / CHECKSUM TABLE ...
    Maintenance,
    /// CREATE / ALTER / DROP of a PROCEDURE, FUNCTION, TRIGGER or EVENT.
    Routine {
        create: bool,
        trigger: bool,
    },
    /// ALTER DATABASE / ALTER SCHEMA (sqlparser rejects the MySQL form).
    AlterDatabase,
    /// Everything else: parse it fully.
    Other,
}

/// Classify a statement from its significant tokens (`sig` must not be empty).
pub fn classify(lx: &Lexed<'_>, sig: &[usize]) -> Leading {
    let kw = |n: usize, k: &str| sig.get(n).is_some_and(|&i| lx.is_kw(i, k));
    let first = sig[0];
    let Some(w) = lx.word(first).filter(|w| w.quote_style.is_none()) else {
        return Leading::Other;
    };
    match w.value.to_ascii_uppercase().as_str() {
        "BEGIN" => Leading::Begin,
        "START" if kw(1, "TRANSACTION") => Leading::Begin,
        "COMMIT" => Leading::Commit,
        "ROLLBACK" => {
            let to = if kw(1, "WORK") { 2 } else { 1 };
            if kw(to, "TO") {
                Leading::Savepoint
            } else {
                Leading::Rollback
            }
        }
        "SAVEPOINT" => Leading::Savepoint,
        "RELEASE" if kw(1, "SAVEPOINT") => Leading::Savepoint,
        "RELEASE" => Leading::Release,
        "SET" => Leading::Set,
        "USE" => Leading::Use,
        "KILL" => Leading::Kill,
        "SHOW" if kw(1, "SHARDGATE") && kw(2, "ROUTE") => Leading::ShowRoute { inner_start: lx.ranges[sig[2]].end },
        "SHOW" if kw(1, "SHARDGATE") => Leading::Admin,
        "SHARDGATE" => Leading::Admin,
        "XA" => Leading::Xa,
        "LOCK" if kw(1, "TABLES") || kw(1, "TABLE") => Leading::LockTables,
        "LOCK" => Leading::LockOther,
        "UNLOCK" => Leading::UnlockTables,
        "PREPARE" => Leading::Prepare,
        "EXECUTE" => Leading::Execute,
        "DEALLOCATE" => Leading::Deallocate,
        "DROP" if kw(1, "PREPARE") => Leading::Deallocate,
        "HANDLER" => Leading::Handler,
        "DO" => Leading::Do,
        "LOAD" => Leading::Load,
        "OPTIMIZE" | "REPAIR" | "CHECK" | "CHECKSUM" | "ANALYZE" if is_maintenance(lx, sig) => Leading::Maintenance,
        verb @ ("CREATE" | "ALTER" | "DROP") => match object_kind(lx, sig) {
            Some(obj @ ("PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT")) => {
                Leading::Routine { create: verb == "CREATE", trigger: obj == "TRIGGER" }
            }
            Some("DATABASE" | "SCHEMA") if verb == "ALTER" => Leading::AlterDatabase,
            _ => Leading::Other,
        },
        _ => Leading::Other,
    }
}

fn is_maintenance(lx: &Lexed<'_>, sig: &[usize]) -> bool {
    let mut n = 1;
    if sig.get(n).is_some_and(|&i| lx.is_kw(i, "NO_WRITE_TO_BINLOG") || lx.is_kw(i, "LOCAL")) {
        n += 1;
    }
    sig.get(n).is_some_and(|&i| lx.is_kw(i, "TABLE") || lx.is_kw(i, "TABLES"))
}

/// The kind of object a CREATE / ALTER / DROP is about: the first unquoted keyword
/// from a known set among the leading tokens (skips OR REPLACE, DEFINER = ..., etc.).
fn object_kind(lx: &Lexed<'_>, sig: &[usize]) -> Option<&'static str> {
    const OBJECTS: [&str; 18] = [
        "TABLE",
        "VIEW",
        "INDEX",
        "DATABASE",
        "SCHEMA",
        "PROCEDURE",
        "FUNCTION",
        "TRIGGER",
        "EVENT",
        "USER",
        "ROLE",
        "SERVER",
        "TABLESPACE",
        "SEQUENCE",
        "TEMPORARY",
        "UNIQUE",
        "FULLTEXT",
        "SPATIAL",
    ];
    sig.iter().skip(1).take(16).find_map(|&i| OBJECTS.iter().copied().find(|k| lx.is_kw(i, k)))
}

/// Does the statement look like a plain read by its first keyword (used for
/// statements sqlparser cannot parse)? Locking reads and INTO are not plain reads.
pub fn looks_like_read(lx: &Lexed<'_>, sig: &[usize]) -> bool {
    let Some(&first) = sig.first() else {
        return false;
    };
    let read_kw = ["SELECT", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "HELP"].iter().any(|k| lx.is_kw(first, k));
    let locking = sig.windows(2).any(|w| {
        (lx.is_kw(w[0], "FOR") && (lx.is_kw(w[1], "UPDATE") || lx.is_kw(w[1], "SHARE")))
            || (lx.is_kw(w[0], "LOCK") && lx.is_kw(w[1], "IN"))
    });
    let into = sig.iter().any(|&i| lx.is_kw(i, "INTO"));
    read_kw && !locking && !into
}

/// Does the statement create state bound to one backend connection: GET_LOCK(,
/// user variables, SQL_CALC_FOUND_ROWS, FOUND_ROWS(), CREATE TEMPORARY TABLE,
/// SQL PREPARE / EXECUTE / DEALLOCATE, HANDLER, LOCK TABLES?
pub fn pins_session(lx: &Lexed<'_>, sig: &[usize]) -> bool {
    if let Some(&first) = sig.first() {
        if ["PREPARE", "EXECUTE", "DEALLOCATE", "HANDLER", "LOCK"].iter().any(|k| lx.is_kw(first, k))
            || (lx.is_kw(first, "DROP") && sig.get(1).is_some_and(|&i| lx.is_kw(i, "PREPARE")))
        {
            return true;
        }
    }
    for (n, &i) in sig.iter().enumerate() {
        let next_is_paren = sig.get(n + 1).is_some_and(|&j| matches!(lx.token(j), Token::LParen));
        let prev = n.checked_sub(1).map(|p| sig[p]);
        // `'user'@'host'` and `user@host` glue the @ to the previous token.
        let glued = prev.is_some_and(|p| lx.ranges[p].end == lx.ranges[i].start);
        match lx.token(i) {
            Token::Word(w) if w.quote_style.is_none() => {
                let v = w.value.as_str();
                if (v.eq_ignore_ascii_case("GET_LOCK") || v.eq_ignore_ascii_case("FOUND_ROWS")) && next_is_paren
                    || v.eq_ignore_ascii_case("SQL_CALC_FOUND_ROWS")
                    || (v.starts_with('@') && !v.starts_with("@@") && !glued)
                    || (v.eq_ignore_ascii_case("TEMPORARY") && prev.is_some_and(|p| lx.is_kw(p, "CREATE")))
                {
                    return true;
                }
            }
            Token::AtSign if !glued => {
                let next = sig.get(n + 1).map(|&j| lx.token(j));
                if matches!(next, Some(Token::Word(_) | Token::SingleQuotedString(_) | Token::DoubleQuotedString(_))) {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Does the statement call a function that reads the state of its own
/// connection (LAST_INSERT_ID(), ROW_COUNT(), CONNECTION_ID())?
pub fn uses_connection_state(lx: &Lexed<'_>, sig: &[usize]) -> bool {
    sig.windows(2).any(|w| {
        matches!(lx.token(w[1]), Token::LParen)
            && ["LAST_INSERT_ID", "ROW_COUNT", "CONNECTION_ID"].iter().any(|k| lx.is_kw(w[0], k))
    })
}

/// Does any word of the statement name one of `names` (lower-cased table names)?
/// A cheap guard for statements the router cannot analyse.
pub fn mentions_any<'n>(lx: &Lexed<'_>, sig: &[usize], names: &'n [String]) -> Option<&'n str> {
    sig.iter().find_map(|&i| {
        let w = lx.word(i)?;
        names.iter().find(|n| n.eq_ignore_ascii_case(&w.value)).map(String::as_str)
    })
}
