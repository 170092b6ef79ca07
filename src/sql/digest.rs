//! Statement digests for the plan cache: the text with plain integer and
//! single-quoted string literals replaced by `?`, and those literals' values
//! in order. Statements that differ only in such literals share a digest,
//! so the router's analysis of the digest (as a prepared statement) can be
//! reused with each query's values.
//!
//! Conservative by design: anything whose meaning a replacement could change
//! stays verbatim (numbers after `-`, decimals, hex/bit literals, strings
//! with escapes or a charset introducer, double-quoted text that may be an
//! identifier under ANSI_QUOTES, comments, backtick names). Text that already
//! holds a `?` outside quotes and comments has no digest.

use crate::router::KeyValue;

/// A statement's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The prefix parts, then the text with replaced literals as `?`.
    pub text: String,
    /// Length of the prefix at the start of `text`.
    pub prefix_len: usize,
    /// The replaced literals, in text order.
    pub values: Vec<KeyValue>,
}

impl Digest {
    /// The digest text without the prefix.
    pub fn statement(&self) -> &str {
        &self.text[self.prefix_len..]
    }
}

fn ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The digest of `sql`, after the concatenated `prefix` parts (so a cache key
/// needs one allocation).
///
/// Hot path (every text query): plain bytes are copied in runs, not one by
/// one, and only the bytes that can start a literal, a comment or a quoted
/// name are looked at closely. Those are all ASCII, so every cut falls on a
/// character boundary.
pub fn digest(sql: &str, prefix: &[&str]) -> Option<Digest> {
    let b = sql.as_bytes();
    let prefix_len: usize = prefix.iter().map(|p| p.len()).sum();
    let mut text = String::with_capacity(prefix_len + sql.len());
    for p in prefix {
        text.push_str(p);
    }
    let mut values = Vec::new();
    let mut i = 0;
    // Start of the bytes not yet copied.
    let mut run = 0;
    // Last byte seen that is not whitespace (to spot `-5` and identifiers).
    let mut prev: u8 = b' ';
    while i < b.len() {
        let c = b[i];
        // Where the special token ends, and whether it was replaced by `?`.
        let (end, replaced) = match c {
            b'?' => return None,
            b'/' if b.get(i + 1) == Some(&b'*') => (sql[i + 2..].find("*/").map(|p| i + 2 + p + 2)?, false),
            b'#' => (sql[i..].find('\n').map_or(b.len(), |p| i + p), false),
            b'-' if b.get(i + 1) == Some(&b'-') && b.get(i + 2).is_none_or(|x| x.is_ascii_whitespace()) => {
                (sql[i..].find('\n').map_or(b.len(), |p| i + p), false)
            }
            b'`' | b'"' => {
                let end = quoted_end(b, i)?;
                prev = c;
                (end, false)
            }
            b'\'' => {
                let end = quoted_end(b, i)?;
                let inner = &b[i + 1..end - 1];
                let plain = !inner.contains(&b'\\') && !inner.contains(&b'\'');
                let replace = plain && !ident_byte(prev);
                if replace {
                    values.push(KeyValue::Str(inner.to_vec()));
                }
                prev = b'\'';
                (end, replace)
            }
            b'0'..=b'9' if !ident_byte(prev) && prev != b'-' && prev != b'.' => {
                let mut end = i;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
                let next = b.get(end).copied().unwrap_or(b' ');
                let mut replace = false;
                if ident_byte(next) || next == b'.' {
                    // 1.5, 1e3, 0x1F, 0b1, 123abc: keep as written.
                    while end < b.len() && (ident_byte(b[end]) || b[end] == b'.') {
                        end += 1;
                    }
                } else if let Some(v) = int_value(&sql[i..end]) {
                    values.push(v);
                    replace = true;
                }
                prev = b'0';
                (end, replace)
            }
            _ => {
                if !c.is_ascii_whitespace() {
                    prev = c;
                }
                i += 1;
                continue;
            }
        };
        if replaced {
            text.push_str(&sql[run..i]);
            text.push('?');
            run = end;
        }
        i = end;
    }
    text.push_str(&sql[run..]);
    Some(Digest { text, prefix_len, values })
}

/// A run of decimal digits as a key value (`None`: too big for 64 bits).
fn int_value(digits: &str) -> Option<KeyValue> {
    match digits.parse::<i64>() {
        Ok(v) => Some(KeyValue::Int(v)),
        Err(_) => digits.parse::<u64>().ok().map(KeyValue::UInt),
    }
}

/// Index just past the closing quote of the quoted text starting at `start`
/// (backslash escapes and doubled quotes honoured).
fn quoted_end(b: &[u8], start: usize) -> Option<usize> {
    let q = b[start];
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if q != b'`' => i += 2,
            x if x == q => {
                if b.get(i + 1) == Some(&q) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(sql: &str) -> Option<(String, Vec<KeyValue>)> {
        digest(sql, &[]).map(|d| (d.text, d.values))
    }

    #[test]
    fn integers_and_plain_strings_become_placeholders() {
        let (t, v) = d("SELECT c FROM sbtest1 WHERE id = 42 AND name = 'bob'").unwrap();
        assert_eq!(t, "SELECT c FROM sbtest1 WHERE id = ? AND name = ?");
        assert_eq!(v, vec![KeyValue::Int(42), KeyValue::Str(b"bob".to_vec())]);
        let (t, v) = d("select * from t where k in (1,2, 18446744073709551615)").unwrap();
        assert_eq!(t, "select * from t where k in (?,?, ?)");
        assert_eq!(v[2], KeyValue::UInt(u64::MAX));
    }

    #[test]
    fn risky_literals_stay_verbatim() {
        for sql in [
            "SELECT -5",
            "SELECT a-1 FROM t",
            "SELECT 1.5, 1e3, 0x1F, 0b101, .5",
            "SELECT 'it''s', 'a\\'b', _utf8mb4'x', X'0A', N'n'",
            "SELECT \"dq\" FROM `t1` WHERE `a 1` = 2",
            "SELECT /* shardgate:shard=s1 */ 1 -- 7\n",
            "SELECT 99999999999999999999999",
        ] {
            let (t, v) = d(sql).unwrap();
            for kept in [
                "-5",
                "-1",
                "1.5",
                "1e3",
                "0x1F",
                "0b101",
                ".5",
                "'it''s'",
                "'a\\'b'",
                "_utf8mb4'x'",
                "X'0A'",
                "N'n'",
                "\"dq\"",
                "`t1`",
                "`a 1`",
                "/* shardgate:shard=s1 */",
                "-- 7",
                "99999999999999999999999",
            ] {
                if sql.contains(kept) {
                    assert!(t.contains(kept), "{kept} kept in {t}");
                }
            }
            assert!(v.iter().all(|x| !matches!(x, KeyValue::Int(-5))), "{sql}");
        }
    }

    #[test]
    fn identifiers_with_digits_are_not_literals() {
        let (t, v) = d("SELECT col1 FROM sbtest8 WHERE t2.id = 3").unwrap();
        assert_eq!(t, "SELECT col1 FROM sbtest8 WHERE t2.id = ?");
        assert_eq!(v, vec![KeyValue::Int(3)]);
    }

    #[test]
    fn placeholders_or_open_quotes_have_no_digest() {
        assert_eq!(d("SELECT ? FROM t"), None);
        assert_eq!(d("SELECT 'unterminated"), None);
        assert_eq!(d("SELECT 1 /* open"), None);
        assert!(d("SELECT '?' FROM t").is_some(), "a ? inside quotes is fine");
    }

    #[test]
    fn multibyte_text_survives() {
        let (t, v) = d("SELECT nom FROM t WHERE nom = 'Émile' AND x = 'é'").unwrap();
        assert_eq!(t, "SELECT nom FROM t WHERE nom = ? AND x = ?");
        assert_eq!(v[0], KeyValue::Str("Émile".as_bytes().to_vec()));
        let (t, _) = d("SELECT `日本` FROM t").unwrap();
        assert_eq!(t, "SELECT `日本` FROM t");
    }
}
