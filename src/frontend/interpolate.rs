//! Writing a prepared statement's bound values into its text, for the
//! statements that run as text queries: those that need a cross-shard merge
//! (the merge rewrites the statement, which a backend-prepared statement
//! cannot follow). Values become literals of their own type; strings are
//! quoted for the session's sql_mode (NO_BACKSLASH_ESCAPES or not), bytes
//! that are not UTF-8 become hex literals.

use std::fmt::Write;

use sqlparser::tokenizer::Token;

use crate::protocol::wire;

/// One bound parameter of COM_STMT_EXECUTE.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Null,
    /// Binary-protocol value of type `ty`, as it came (length prefix included).
    Value {
        ty: u8,
        unsigned: bool,
        bytes: &'a [u8],
    },
    /// COM_STMT_SEND_LONG_DATA bytes.
    Long(&'a [u8]),
}

/// `sql` with every `?` placeholder replaced by its parameter as a literal.
pub fn interpolate(sql: &str, params: &[Param<'_>], backslash_escapes: bool) -> Result<String, String> {
    let literals = params
        .iter()
        .map(|p| {
            let mut s = String::new();
            literal(&mut s, p, backslash_escapes).map(|()| s)
        })
        .collect::<Result<Vec<_>, _>>()?;
    fill(sql, &literals)
}

/// `sql` with its `?` placeholders (not those in strings or comments) replaced
/// by `values`, SQL text, in order.
pub fn fill(sql: &str, values: &[String]) -> Result<String, String> {
    let lx = crate::sql::lex(sql)?;
    let spots: Vec<std::ops::Range<usize>> = lx
        .tokens
        .iter()
        .zip(&lx.ranges)
        .filter(|(t, _)| matches!(&t.token, Token::Placeholder(p) if p == "?"))
        .map(|(_, r)| r.clone())
        .collect();
    if spots.len() != values.len() {
        return Err(format!("the statement has {} placeholders but {} values were given", spots.len(), values.len()));
    }
    let mut out = String::with_capacity(sql.len() + 16 * values.len());
    let mut at = 0;
    for (r, v) in spots.iter().zip(values) {
        out.push_str(&sql[at..r.start]);
        out.push_str(v);
        at = r.end;
    }
    out.push_str(&sql[at..]);
    Ok(out)
}

fn literal(out: &mut String, p: &Param<'_>, escapes: bool) -> Result<(), String> {
    let (ty, unsigned, b) = match *p {
        Param::Null => {
            out.push_str("NULL");
            return Ok(());
        }
        Param::Long(bytes) => {
            quote(out, bytes, escapes);
            return Ok(());
        }
        Param::Value { ty, unsigned, bytes } => (ty, unsigned, bytes),
    };
    let short = || format!("a parameter of type {ty:#04x} is shorter than its type");
    let fixed = |n: usize| -> Result<u64, String> {
        let v = b.get(..n).ok_or_else(short)?;
        let mut x = [0u8; 8];
        x[..n].copy_from_slice(v);
        Ok(u64::from_le_bytes(x))
    };
    let signed = |x: u64, bits: u32| -> i64 { ((x << (64 - bits)) as i64) >> (64 - bits) };
    match ty {
        0x01 | 0x02 | 0x0D | 0x03 | 0x09 | 0x08 => {
            let n = match ty {
                0x01 => 1,
                0x02 | 0x0D => 2,
                0x03 | 0x09 => 4,
                _ => 8,
            };
            let x = fixed(n)?;
            if unsigned {
                let _ = write!(out, "{x}");
            } else {
                let _ = write!(out, "{}", signed(x, 8 * n as u32));
            }
        }
        0x04 | 0x05 => {
            let f = if ty == 0x04 { f64::from(f32::from_bits(fixed(4)? as u32)) } else { f64::from_bits(fixed(8)?) };
            if !f.is_finite() {
                return Err("a FLOAT/DOUBLE parameter is not a finite number".into());
            }
            let _ = write!(out, "{f:e}");
        }
        0x07 | 0x0A | 0x0C => {
            let len = usize::from(*b.first().ok_or_else(short)?);
            let v = b.get(1..1 + len).ok_or_else(short)?;
            let g = |i: usize| v.get(i).copied().unwrap_or(0);
            let year = u16::from_le_bytes([g(0), g(1)]);
            let micros = if len >= 11 { u32::from_le_bytes([g(7), g(8), g(9), g(10)]) } else { 0 };
            let _ = write!(out, "'{year:04}-{:02}-{:02} {:02}:{:02}:{:02}.{micros:06}'", g(2), g(3), g(4), g(5), g(6));
        }
        0x0B => {
            let len = usize::from(*b.first().ok_or_else(short)?);
            let v = b.get(1..1 + len).ok_or_else(short)?;
            let g = |i: usize| v.get(i).copied().unwrap_or(0);
            let days = u32::from_le_bytes([g(1), g(2), g(3), g(4)]);
            let micros = if len >= 12 { u32::from_le_bytes([g(8), g(9), g(10), g(11)]) } else { 0 };
            let sign = if g(0) == 1 { "-" } else { "" };
            let h = days * 24 + u32::from(g(5));
            let _ = write!(out, "'{sign}{h:02}:{:02}:{:02}.{micros:06}'", g(6), g(7));
        }
        _ => {
            let mut pos = 0;
            let v = wire::get_lenenc_str(b, &mut pos).ok_or_else(short)?;
            let numeric = !v.is_empty() && v.iter().all(|c| c.is_ascii_digit() || b".-+eE".contains(c));
            if matches!(ty, 0x00 | 0xF6) && numeric {
                out.push_str(std::str::from_utf8(v).map_err(|e| e.to_string())?);
            } else {
                quote(out, v, escapes);
            }
        }
    }
    Ok(())
}

fn quote(out: &mut String, v: &[u8], escapes: bool) {
    let Ok(s) = std::str::from_utf8(v) else {
        out.push_str("X'");
        for byte in v {
            let _ = write!(out, "{byte:02X}");
        }
        out.push('\'');
        return;
    };
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if escapes => out.push_str("\\\\"),
            '\0' if escapes => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ty: u8, bytes: &[u8]) -> Param<'_> {
        Param::Value { ty, unsigned: false, bytes }
    }

    #[test]
    fn values_become_typed_literals() {
        let s = b"\x04it's";
        let dt = [7u8, 0xE8, 0x07, 1, 2, 3, 4, 5];
        let (n, f) = ((-5i64).to_le_bytes(), 0.25f64.to_le_bytes());
        let params = [v(0x08, &n), v(0xFD, s), Param::Null, v(0x05, &f), v(0x0C, &dt)];
        let sql = "SELECT '?', ? FROM t WHERE a = ? AND b IN (?, ?) -- ?\n AND c = ?";
        assert_eq!(
            interpolate(sql, &params, true).unwrap(),
            "SELECT '?', -5 FROM t WHERE a = 'it''s' AND b IN (NULL, 2.5e-1) -- ?\n AND c = '2024-01-02 03:04:05.000000'"
        );
        assert!(interpolate("SELECT ?", &[], true).is_err());
    }

    #[test]
    fn strings_are_escaped_for_the_sql_mode_and_bytes_go_hex() {
        let p = [v(0xFD, b"\x03a\\b")];
        assert_eq!(interpolate("SELECT ?", &p, true).unwrap(), "SELECT 'a\\\\b'");
        assert_eq!(interpolate("SELECT ?", &p, false).unwrap(), "SELECT 'a\\b'");
        assert_eq!(interpolate("SELECT ?", &[Param::Long(&[0xFF, 0x00])], true).unwrap(), "SELECT X'FF00'");
        let u = [Param::Value { ty: 0x01, unsigned: true, bytes: &[0xFF] }];
        assert_eq!(interpolate("SELECT ?", &u, true).unwrap(), "SELECT 255");
        assert_eq!(interpolate("SELECT ?", &[v(0x01, &[0xFF])], true).unwrap(), "SELECT -1");
        assert_eq!(interpolate("SELECT ?", &[v(0xF6, b"\x041.50")], true).unwrap(), "SELECT 1.50");
        let t = [8u8, 1, 1, 0, 0, 0, 2, 3, 4];
        assert_eq!(interpolate("SELECT ?", &[v(0x0B, &t)], true).unwrap(), "SELECT '-26:03:04.000000'");
    }
}
