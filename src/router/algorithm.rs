//! Shard algorithms: `hash` (64-bit keyspace ranges), `mod` and `range`.
//!
//! Everything here is frozen by the golden vectors in the tests: changing any
//! step below sends existing rows' keys to a different shard (misrouting data
//! that is already stored). This doc is the specification; it is precise
//! enough to reimplement the placement in another language.
//!
//! # Key values
//!
//! A shard key value arrives as a [`KeyValue`]: `Int(i64)`, `UInt(u64)`,
//! `Str(bytes)`, `Null` or `Other`. `Null` and `Other` never map to a shard
//! ([`KeyError`]); the caller must not route on them (a read that cannot be
//! placed goes to every shard; a write is refused).
//!
//! ## Integer value of a key (`key_type = "int"`, and `mod` / `range`)
//!
//! The exact integer `v` (computed in i128, so every BIGINT and BIGINT UNSIGNED
//! value is represented without wrapping):
//! - `Int(i)` → `i`; `UInt(u)` → `u`.
//! - `Str(s)`: the text as MySQL reads a number compared with an integer column.
//!   `s` must be UTF-8; ASCII whitespace (space, `\t`, `\n`, `\r`, `\x0b`,
//!   `\x0c`) around it is ignored; then an optional sign `+`/`-`, decimal digits
//!   with an optional `.` fraction (digits on at least one side of the dot),
//!   and an optional exponent `e`/`E` `[+-]digits`. The value must be an exact
//!   integer: `'7'`, `' 7 '`, `'+7'`, `'007'`, `'7.0'`, `'0.7e1'` are all 7;
//!   `'7.5'`, `''`, `'7abc'`, `'0x7'` are [`KeyError::Unusable`] (no integer
//!   key equals them exactly, or MySQL's conversion is lossy).
//!   Note: MySQL compares an integer column with a string as doubles, so above
//!   2^53 a string also equals neighbouring integers; we place the exact value.
//! - `v` must lie in `[i64::MIN, u64::MAX]`, else `Unusable`.
//!
//! ## Keyspace id (`algorithm = "hash"`)
//!
//! - `key_type = "int"`: `id = mix64(v mod 2^64)`, i.e. the low 64 bits of `v`
//!   in two's complement (`v as u64`; -1 → 0xffff_ffff_ffff_ffff, and
//!   `UInt(u)` → `u`). So `Int(7)`, `UInt(7)` and `Str("7")` give the same id.
//! - `key_type = "string"`: `id = mix64(fnv1a64(normalise(bytes, collation)))`,
//!   where the bytes of `Int`/`UInt` values are their decimal text (`-12` → `"-12"`).
//!   (A string column compared with a number is compared numerically by MySQL,
//!   so `WHERE s = 7` also matches `'07'`; we place the text `"7"`.)
//!
//! `mix64(z)` is the splitmix64 finaliser, a bijection on u64 (all arithmetic
//! wrapping mod 2^64):
//! ```text
//! z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
//! z = (z ^ (z >> 27)) * 0x94d049bb133111eb
//! z =  z ^ (z >> 31)
//! ```
//! `fnv1a64(bytes)`: `h = 0xcbf29ce484222325`; for each byte `b`:
//! `h = (h ^ b) * 0x100000001b3` (wrapping).
//!
//! ## `normalise(bytes, collation)`
//!
//! Maps strings that are equal under the column's collation to the same bytes.
//! It may also merge some strings the collation keeps apart (that only puts
//! them on the same shard, which is harmless); it must never split equal ones.
//! The collation name is matched ASCII-case-insensitively.
//! - `binary`: the bytes unchanged.
//! - ends in `_bin`: the bytes with trailing spaces (0x20) removed (PAD SPACE).
//! - otherwise (`_ci`):
//!   - valid UTF-8: decompose to Unicode NFD; drop every combining mark
//!     (general category M: Mn, Mc, Me); lower-case each remaining char with
//!     Unicode's default per-character mapping (`char::to_lowercase`, no
//!     context rules); map final sigma `ς` (U+03C2) to `σ` (U+03C3); encode as
//!     UTF-8; remove trailing spaces (U+0020). So `'Bob'`, `'bob'`, `'BOB '`,
//!     `'bob   '` are all `"bob"`, and `'Émile'`, `'émile'`, `'Emile'`, `'EMILE'`
//!     are all `"emile"`.
//!   - not valid UTF-8: trailing spaces (0x20) removed, ASCII `A-Z` lower-cased,
//!     other bytes unchanged.
//!
//!   Known limits against MariaDB's `utf8mb4_general_ci` / `utf8mb4_unicode_ci`:
//!   letters the collations fold but Unicode does not decompose (`ß`, `æ`, `ø`,
//!   `đ`, `ł`, ligatures) are kept as they are, so e.g. `'straße'` and `'strasse'`
//!   (equal under `unicode_ci`) may land on different shards.
//!
//! # Algorithms
//!
//! Shards are numbered 0..n-1 in config order (`Config::shards`).
//! - `hash`: the shard whose `key_range` `[start, end)` contains the keyspace id
//!   (config validation guarantees exactly one does). With no `key_range`s the
//!   keyspace is split evenly: shard i owns `[i*2^64/n, (i+1)*2^64/n)` (computed
//!   exactly in 128 bits), the last shard up to and including `u64::MAX`.
//! - `mod`: `v mod n`, Euclidean (always in 0..n-1: -1 → n-1), computed on the
//!   exact integer `v` (so BIGINT UNSIGNED values above i64::MAX are correct).
//! - `range`: the number of boundaries `b` with `b <= v` (binary search over the
//!   ascending boundaries). Shard 0 holds `v < boundaries[0]`, shard i holds
//!   `boundaries[i-1] <= v < boundaries[i]`, the last shard `v >= boundaries[n-2]`.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::plan::KeyValue;
use crate::config::{Algorithm, Config, KeyType, ShardedTable};

/// Why a key value cannot be placed on a shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("NULL cannot be a shard key value")]
    Null,
    #[error("{0}")]
    Unusable(String),
}

/// The splitmix64 finaliser: spreads any 64-bit input over the whole keyspace.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a, 64 bit.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The keyspace id of a key value under `table`'s key type and collation.
pub fn keyspace_id(table: &ShardedTable, key: &KeyValue) -> Result<u64, KeyError> {
    match table.key_type {
        // Low 64 bits in two's complement: `v as u64` for i64 and u64 alike.
        KeyType::Int => Ok(mix64(int_value(key)? as u64)),
        KeyType::String => {
            let text = match key {
                KeyValue::Null => return Err(KeyError::Null),
                KeyValue::Str(s) => normalise(s, &table.collation),
                KeyValue::Int(v) => v.to_string().into_bytes(),
                KeyValue::UInt(v) => v.to_string().into_bytes(),
                KeyValue::Other => return Err(KeyError::Unusable("this value cannot be a string shard key".into())),
            };
            Ok(mix64(fnv1a64(&text)))
        }
    }
}

fn collation_is(collation: &str, suffix: &str) -> bool {
    collation.len() >= suffix.len()
        && collation.as_bytes()[collation.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

fn trim_trailing_spaces(s: &[u8]) -> &[u8] {
    let len = s.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &s[..len]
}

/// Normalise a string key so that values equal under `collation` are byte-equal
/// (see the module doc for the exact rules).
pub fn normalise(s: &[u8], collation: &str) -> Vec<u8> {
    if collation.eq_ignore_ascii_case("binary") {
        return s.to_vec();
    }
    if collation_is(collation, "_bin") {
        return trim_trailing_spaces(s).to_vec();
    }
    if s.is_ascii() {
        // NFD and combining marks do not affect ASCII; same result, no allocation churn.
        return trim_trailing_spaces(s).to_ascii_lowercase();
    }
    match std::str::from_utf8(s) {
        Ok(text) => {
            let mut out = String::with_capacity(text.len());
            for c in text.nfd().filter(|&c| !is_combining_mark(c)) {
                for l in c.to_lowercase() {
                    out.push(if l == 'ς' { 'σ' } else { l });
                }
            }
            let len = trim_trailing_spaces(out.as_bytes()).len();
            out.truncate(len);
            out.into_bytes()
        }
        Err(_) => trim_trailing_spaces(s).to_ascii_lowercase(),
    }
}

/// The exact integer value of an integer shard key (see the module doc).
pub fn int_value(key: &KeyValue) -> Result<i128, KeyError> {
    match key {
        KeyValue::Int(v) => Ok(i128::from(*v)),
        KeyValue::UInt(v) => Ok(i128::from(*v)),
        KeyValue::Null => Err(KeyError::Null),
        KeyValue::Str(s) => parse_int_text(s).ok_or_else(|| {
            KeyError::Unusable(format!("'{}' is not an integer shard key value", String::from_utf8_lossy(s)))
        }),
        KeyValue::Other => Err(KeyError::Unusable("this value cannot be an integer shard key".into())),
    }
}

/// Parse a decimal number whose value is an exact integer in `[i64::MIN, u64::MAX]`.
fn parse_int_text(s: &[u8]) -> Option<i128> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = s.iter().position(|b| !is_space(b))?;
    let end = s.iter().rposition(|b| !is_space(b))? + 1;
    let mut t = &s[start..end];
    let negative = match t.first() {
        Some(b'-') => {
            t = &t[1..];
            true
        }
        Some(b'+') => {
            t = &t[1..];
            false
        }
        _ => false,
    };
    let (mantissa, exponent) = match t.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let (int_part, frac_part) = match mantissa.iter().position(|&b| b == b'.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, &mantissa[..0]),
    };
    let all_digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if (int_part.is_empty() && frac_part.is_empty()) || !all_digits(int_part) || !all_digits(frac_part) {
        return None;
    }
    // Power of ten applied to the digit string int_part ++ frac_part.
    let mut exp: i64 = -(frac_part.len() as i64);
    if let Some(e) = exponent {
        let (e_neg, e_digits) = match e.first() {
            Some(b'-') => (true, &e[1..]),
            Some(b'+') => (false, &e[1..]),
            _ => (false, e),
        };
        if e_digits.is_empty() || !all_digits(e_digits) {
            return None;
        }
        // Longer exponents are out of range whatever the mantissa (or zero, see below).
        let e_val: i64 = std::str::from_utf8(e_digits).ok()?.parse().unwrap_or(i64::MAX / 4);
        let e_val = e_val.min(1 << 40);
        exp += if e_neg { -e_val } else { e_val };
    }
    let digits: Vec<u8> = int_part.iter().chain(frac_part).copied().collect();
    let significant = match digits.iter().position(|&d| d != b'0') {
        Some(i) => &digits[i..],
        None => return Some(0),
    };
    // Drop trailing zeros into the exponent, so a negative exponent means a fraction.
    let nonzero_end = significant.iter().rposition(|&d| d != b'0')? + 1;
    exp += (significant.len() - nonzero_end) as i64;
    let significant = &significant[..nonzero_end];
    if exp < 0 || significant.len() as i64 + exp > 20 {
        return None; // a fraction, or more than 20 digits (beyond u64::MAX)
    }
    let mut v: i128 = 0;
    for &d in significant {
        v = v * 10 + i128::from(d - b'0');
    }
    v *= 10i128.pow(exp as u32);
    let v = if negative { -v } else { v };
    (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&v).then_some(v)
}

/// The shard (index into `cfg.shards`) whose key range holds `keyspace_id`.
pub fn shard_for_keyspace_id(cfg: &Config, keyspace_id: u64) -> Option<usize> {
    cfg.shards.iter().position(|s| s.key_range.contains(keyspace_id))
}

/// The shard (index into `cfg.shards`) that owns `key` for `table`.
pub fn shard_for(cfg: &Config, table: &ShardedTable, key: &KeyValue) -> Result<usize, KeyError> {
    let n = cfg.shards.len();
    if n == 0 {
        return Err(KeyError::Unusable("no shards are configured".into()));
    }
    match table.algorithm {
        Algorithm::Hash => {
            let id = keyspace_id(table, key)?;
            shard_for_keyspace_id(cfg, id)
                .ok_or_else(|| KeyError::Unusable(format!("no shard owns keyspace id {id:016x}")))
        }
        Algorithm::Mod => {
            let v = int_value(key)?;
            Ok(v.rem_euclid(n as i128) as usize)
        }
        Algorithm::Range => {
            let v = int_value(key)?;
            let shard = table.boundaries.partition_point(|&b| i128::from(b) <= v);
            if shard >= n {
                return Err(KeyError::Unusable(format!(
                    "table {} has {} range boundaries for {n} shards",
                    table.name,
                    table.boundaries.len()
                )));
            }
            Ok(shard)
        }
    }
}

#[cfg(test)]
mod tests;
