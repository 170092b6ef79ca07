//! Column metadata and how two values of one column compare, as MySQL
//! would order them: numbers numerically, temporals by time, binary strings
//! by bytes, text by its collation's weights (`WEIGHT_STRING`, computed by
//! the shards), with PAD SPACE collations padding the shorter side.

use std::cmp::Ordering;

use super::decimal::Dec;
use super::MergeError;
use crate::protocol::wire;

// Column types (include/mysql_com.h).
const T_DECIMAL: u8 = 0x00;
const T_TINY: u8 = 0x01;
const T_SHORT: u8 = 0x02;
const T_LONG: u8 = 0x03;
const T_FLOAT: u8 = 0x04;
const T_DOUBLE: u8 = 0x05;
const T_NULL: u8 = 0x06;
const T_TIMESTAMP: u8 = 0x07;
const T_LONGLONG: u8 = 0x08;
const T_INT24: u8 = 0x09;
const T_DATE: u8 = 0x0A;
const T_TIME: u8 = 0x0B;
const T_DATETIME: u8 = 0x0C;
const T_YEAR: u8 = 0x0D;
const T_NEWDATE: u8 = 0x0E;
const T_BIT: u8 = 0x10;
const T_TIMESTAMP2: u8 = 0x11;
const T_DATETIME2: u8 = 0x12;
const T_TIME2: u8 = 0x13;
const T_JSON: u8 = 0xF5;
const T_NEWDECIMAL: u8 = 0xF6;
const T_ENUM: u8 = 0xF7;
const T_SET: u8 = 0xF8;
const T_GEOMETRY: u8 = 0xFF;

const FLAG_UNSIGNED: u16 = 0x20;
const FLAG_ENUM: u16 = 0x100;
const FLAG_SET: u16 = 0x800;
/// The `binary` pseudo-charset: byte strings.
pub const BINARY_CHARSET: u16 = 63;

/// How values of a column compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Integers (signed or not), YEAR.
    Int,
    /// DECIMAL: exact.
    Decimal,
    Float,
    /// TIME: may be negative or over 24 hours.
    Time,
    /// DATE, DATETIME, TIMESTAMP, BIT, binary strings: their text sorts as bytes.
    Bytes,
    /// Text under a collation: compared by weight.
    Text,
    /// ENUM and SET sort by their internal number, which the result does not carry.
    Enum,
    Geometry,
}

/// What a merge needs of one column definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColMeta {
    pub ty: u8,
    pub flags: u16,
    /// Collation id.
    pub charset: u16,
    pub decimals: u8,
}

impl ColMeta {
    /// Read a protocol-4.1 column definition payload.
    pub fn parse(payload: &[u8]) -> Option<ColMeta> {
        let mut pos = 0;
        for _ in 0..6 {
            wire::get_lenenc_str(payload, &mut pos)?;
        }
        wire::get_lenenc_int(payload, &mut pos)?; // length of the fixed fields
        let fixed = payload.get(pos..pos + 10)?;
        Some(ColMeta {
            charset: u16::from_le_bytes([fixed[0], fixed[1]]),
            ty: fixed[6],
            flags: u16::from_le_bytes([fixed[7], fixed[8]]),
            decimals: fixed[9],
        })
    }

    pub fn kind(&self) -> Kind {
        if self.flags & (FLAG_ENUM | FLAG_SET) != 0 || matches!(self.ty, T_ENUM | T_SET) {
            return Kind::Enum;
        }
        match self.ty {
            T_TINY | T_SHORT | T_LONG | T_LONGLONG | T_INT24 | T_YEAR => Kind::Int,
            T_DECIMAL | T_NEWDECIMAL => Kind::Decimal,
            T_FLOAT | T_DOUBLE => Kind::Float,
            T_TIME | T_TIME2 => Kind::Time,
            T_TIMESTAMP | T_DATE | T_DATETIME | T_NEWDATE | T_BIT | T_TIMESTAMP2 | T_DATETIME2 | T_NULL => Kind::Bytes,
            T_GEOMETRY => Kind::Geometry,
            T_JSON => Kind::Text,
            _ if self.charset == BINARY_CHARSET => Kind::Bytes,
            _ => Kind::Text,
        }
    }

    pub fn unsigned(&self) -> bool {
        self.flags & FLAG_UNSIGNED != 0
    }
}

/// The one value-to-value comparison a merge uses. `pad`: the weight of a
/// space in the column's collation, for PAD SPACE collations.
pub fn compare(
    kind: Kind,
    a: Option<&[u8]>,
    b: Option<&[u8]>,
    wa: Option<&[u8]>,
    wb: Option<&[u8]>,
    pad: Option<&[u8]>,
) -> Result<Ordering, MergeError> {
    // NULL sorts first, as in MySQL.
    let (a, b) = match (a, b) {
        (None, None) => return Ok(Ordering::Equal),
        (None, Some(_)) => return Ok(Ordering::Less),
        (Some(_), None) => return Ok(Ordering::Greater),
        (Some(a), Some(b)) => (a, b),
    };
    Ok(match kind {
        Kind::Int => match (parse_i128(a), parse_i128(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => cmp_decimal(a, b),
        },
        Kind::Decimal => cmp_decimal(a, b),
        Kind::Float => {
            let (x, y) = (parse_f64(a), parse_f64(b));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        Kind::Time => match (time_micros(a), time_micros(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => a.cmp(b),
        },
        Kind::Bytes => a.cmp(b),
        Kind::Text => match (wa, wb) {
            (Some(x), Some(y)) => cmp_weights(x, y, pad),
            _ => {
                return Err(MergeError::unsupported(
                    "ordering text across shards needs the expression's collation weights, \
                     and this key has none (an ORDER BY position after `*`?); name the column instead",
                ))
            }
        },
        Kind::Enum => {
            return Err(MergeError::unsupported(
                "ORDER BY, GROUP BY, DISTINCT, MIN or MAX on an ENUM or SET column across shards \
                 (they sort by internal number); add a shard key condition or sort by CAST(col AS CHAR)",
            ))
        }
        Kind::Geometry => {
            return Err(MergeError::unsupported(
                "ordering or grouping by a geometry value across shards; add a shard key condition",
            ))
        }
    })
}

/// Weight strings compared with PAD SPACE: the shorter one is extended with
/// the weight of a space.
pub fn cmp_weights(a: &[u8], b: &[u8], pad: Option<&[u8]>) -> Ordering {
    let n = a.len().min(b.len());
    match a[..n].cmp(&b[..n]) {
        Ordering::Equal => {}
        o => return o,
    }
    let Some(pad) = pad.filter(|p| !p.is_empty()) else {
        return a.len().cmp(&b.len());
    };
    let (rest, flip) = if a.len() > b.len() { (&a[n..], false) } else { (&b[n..], true) };
    let mut o = Ordering::Equal;
    for (i, &byte) in rest.iter().enumerate() {
        let p = pad[i % pad.len()];
        if byte != p {
            o = byte.cmp(&p);
            break;
        }
    }
    if o == Ordering::Equal && rest.len() % pad.len() != 0 {
        o = Ordering::Greater;
    }
    if flip {
        o.reverse()
    } else {
        o
    }
}

pub fn parse_i128(s: &[u8]) -> Option<i128> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

pub fn parse_f64(s: &[u8]) -> f64 {
    std::str::from_utf8(s).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(f64::NAN)
}

fn cmp_decimal(a: &[u8], b: &[u8]) -> Ordering {
    match (Dec::parse(a), Dec::parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => parse_f64(a).partial_cmp(&parse_f64(b)).unwrap_or(Ordering::Equal),
    }
}

/// A TIME value's text, `[-]H+:MM:SS[.f]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeParts {
    pub negative: bool,
    pub hours: u32,
    pub minutes: u8,
    pub seconds: u8,
    pub micros: u32,
}

pub fn parse_time(s: &[u8]) -> Option<TimeParts> {
    let s = std::str::from_utf8(s).ok()?;
    let (negative, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut it = hms.split(':');
    Some(TimeParts {
        negative,
        hours: it.next()?.parse().ok()?,
        minutes: it.next()?.parse().ok()?,
        seconds: it.next()?.parse().ok()?,
        micros: frac_micros(frac)?,
    })
}

/// The digits after a decimal point as microseconds (`"5"` is 500000).
pub fn frac_micros(frac: &str) -> Option<u32> {
    if frac.is_empty() {
        return Some(0);
    }
    let mut f = frac.to_string();
    f.truncate(6);
    while f.len() < 6 {
        f.push('0');
    }
    f.parse().ok()
}

/// `[-]H+:MM:SS[.f]` in microseconds.
fn time_micros(s: &[u8]) -> Option<i128> {
    let t = parse_time(s)?;
    let secs = (i128::from(t.hours) * 60 + i128::from(t.minutes)) * 60 + i128::from(t.seconds);
    let micros = secs * 1_000_000 + i128::from(t.micros);
    Some(if t.negative { -micros } else { micros })
}

/// Format a DOUBLE as MariaDB prints one: the shortest digits that read back
/// as the same value, in fixed notation unless the decimal point would sit
/// more than max(digits, 15) places right of the first digit or 15 places left
/// of it (`1e15`, `1234567890123456.8`, `0.000000000000001`, `1e-16`).
pub fn format_f64(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let sci = format!("{:e}", v.abs()); // d[.ddd]e[-]x
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let n = digits.len() as i32;
    let decpt = exp + 1;
    let sign = if v < 0.0 { "-" } else { "" };
    if decpt > n.max(15) || decpt < -14 {
        let frac = &digits[1..];
        let dot = if frac.is_empty() { "" } else { "." };
        return format!("{sign}{}{dot}{frac}e{exp}", &digits[..1]);
    }
    if decpt <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{sign}{digits}{}", "0".repeat((decpt - n) as usize))
    } else {
        let (i, f) = digits.split_at(decpt as usize);
        format!("{sign}{i}.{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    fn c(kind: Kind, a: &str, b: &str) -> Ordering {
        compare(kind, Some(a.as_bytes()), Some(b.as_bytes()), None, None, None).unwrap()
    }

    #[test]
    fn numbers_compare_numerically_nulls_first() {
        assert_eq!(c(Kind::Int, "9", "10"), Less);
        assert_eq!(c(Kind::Int, "-9", "-10"), Greater);
        assert_eq!(c(Kind::Int, "18446744073709551615", "1"), Greater);
        assert_eq!(c(Kind::Decimal, "9.99", "10.00"), Less);
        assert_eq!(c(Kind::Float, "1e3", "999.5"), Greater);
        assert_eq!(compare(Kind::Int, None, Some(b"-5"), None, None, None).unwrap(), Less);
        assert_eq!(compare(Kind::Int, None, None, None, None, None).unwrap(), Equal);
    }

    #[test]
    fn times_and_dates() {
        assert_eq!(c(Kind::Time, "-01:00:00", "00:00:01"), Less);
        assert_eq!(c(Kind::Time, "100:00:00", "99:59:59.5"), Greater);
        assert_eq!(c(Kind::Bytes, "2024-01-02 00:00:00", "2024-01-10 00:00:00"), Less);
    }

    #[test]
    fn text_needs_weights_and_pads_spaces() {
        assert!(compare(Kind::Text, Some(b"a"), Some(b"b"), None, None, None).is_err());
        let sp: &[u8] = &[0x00, 0x20];
        // 'a' vs 'a ' under PAD SPACE: equal.
        assert_eq!(cmp_weights(&[0, 0x41], &[0, 0x41, 0, 0x20], Some(sp)), Equal);
        // 'a' vs 'a\t': the tab sorts below the padding space.
        assert_eq!(cmp_weights(&[0, 0x41], &[0, 0x41, 0, 0x09], Some(sp)), Greater);
        assert_eq!(cmp_weights(&[0, 0x41], &[0, 0x41, 0, 0x21], Some(sp)), Less);
        // NO PAD: the longer sorts after.
        assert_eq!(cmp_weights(&[0, 0x41], &[0, 0x41, 0, 0x20], None), Less);
    }

    #[test]
    fn doubles_print_like_mariadb() {
        for (v, want) in [
            (0.1 + 0.2, "0.30000000000000004"),
            (1e20, "1e20"),
            (1.5e-7, "0.00000015"),
            (123456789.125, "123456789.125"),
            (1e15, "1e15"),
            (1e14, "100000000000000"),
            (0.00001, "0.00001"),
            (3.0, "3"),
            (-2.5, "-2.5"),
            (123456789012345678.0, "1.2345678901234568e17"),
            (1e-15, "0.000000000000001"),
            (1e-16, "1e-16"),
            (1.5e-20, "1.5e-20"),
            (999999999999999.9, "999999999999999.9"),
            (1234567890123456.7, "1234567890123456.8"),
            (-1e15, "-1e15"),
        ] {
            assert_eq!(format_f64(v), want, "{v:e}");
        }
    }

    #[test]
    fn enums_are_refused() {
        assert!(compare(Kind::Enum, Some(b"a"), Some(b"b"), None, None, None).is_err());
    }

    #[test]
    fn parses_column_definitions() {
        let mut b = bytes::BytesMut::new();
        wire::put_column_def(&mut b, "n", 0x08, 63);
        let m = ColMeta::parse(&b).unwrap();
        assert_eq!((m.ty, m.charset, m.kind()), (0x08, 63, Kind::Int));
    }
}
