//! Merged rows in the binary protocol, for prepared statements: the merge
//! works on text cells (see `frontend::prepared`, which runs such statements
//! as text), and each row the client receives is encoded from them by column
//! type, losslessly (integers, shortest round-trip floats, temporals).

use bytes::{BufMut, BytesMut};

use super::row::Row;
use super::value::{frac_micros, parse_time, ColMeta};
use super::MergeError;
use crate::protocol::wire;

fn bad(what: &str, v: &[u8]) -> MergeError {
    MergeError::new(
        1105,
        "HY000",
        format!("cannot encode {what} '{}' for the binary protocol", String::from_utf8_lossy(v)),
    )
}

/// Append the binary-protocol row of the first `visible` cells of `row`.
pub fn put_row(out: &mut BytesMut, row: &Row, metas: &[ColMeta], visible: usize) -> Result<(), MergeError> {
    out.put_u8(0x00);
    let bitmap_at = out.len();
    let bitmap_len = (visible + 7 + 2) / 8;
    out.put_bytes(0, bitmap_len);
    for (i, meta) in metas.iter().enumerate().take(visible) {
        let Some(v) = row.get(i) else {
            let bit = i + 2;
            out[bitmap_at + bit / 8] |= 1 << (bit % 8);
            continue;
        };
        put_value(out, meta, v)?;
    }
    Ok(())
}

fn int(v: &[u8]) -> Option<i128> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn put_value(out: &mut BytesMut, meta: &ColMeta, v: &[u8]) -> Result<(), MergeError> {
    match meta.ty {
        0x01 => out.put_u8(int(v).ok_or_else(|| bad("TINYINT", v))? as u8),
        0x02 | 0x0D => out.put_u16_le(int(v).ok_or_else(|| bad("SMALLINT", v))? as u16),
        0x03 | 0x09 => out.put_u32_le(int(v).ok_or_else(|| bad("INT", v))? as u32),
        0x08 => out.put_u64_le(int(v).ok_or_else(|| bad("BIGINT", v))? as u64),
        0x04 => {
            let f: f32 = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad("FLOAT", v))?;
            out.put_f32_le(f);
        }
        0x05 => {
            let f: f64 = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad("DOUBLE", v))?;
            out.put_f64_le(f);
        }
        0x07 | 0x0A | 0x0C | 0x0E | 0x11 | 0x12 => put_datetime(out, v).ok_or_else(|| bad("date", v))?,
        0x0B | 0x13 => put_time(out, v).ok_or_else(|| bad("time", v))?,
        _ => wire::put_lenenc_str(out, v),
    }
    Ok(())
}

/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` as the length-prefixed binary form.
fn put_datetime(out: &mut BytesMut, v: &[u8]) -> Option<()> {
    let s = std::str::from_utf8(v).ok()?;
    let (date, time) = s.split_once(' ').unwrap_or((s, ""));
    let mut d = date.split('-');
    let (y, m, day): (u16, u8, u8) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let (mut h, mut mi, mut sec) = (0u8, 0u8, 0u8);
    if !hms.is_empty() {
        let mut t = hms.split(':');
        h = t.next()?.parse().ok()?;
        mi = t.next()?.parse().ok()?;
        sec = t.next()?.parse().ok()?;
    }
    let micros = frac_micros(frac)?;
    if micros != 0 {
        out.put_u8(11);
    } else if h != 0 || mi != 0 || sec != 0 {
        out.put_u8(7);
    } else if y != 0 || m != 0 || day != 0 {
        out.put_u8(4);
    } else {
        out.put_u8(0);
        return Some(());
    }
    out.put_u16_le(y);
    out.put_u8(m);
    out.put_u8(day);
    if h != 0 || mi != 0 || sec != 0 || micros != 0 {
        out.put_u8(h);
        out.put_u8(mi);
        out.put_u8(sec);
    }
    if micros != 0 {
        out.put_u32_le(micros);
    }
    Some(())
}

/// `[-]H+:MM:SS[.ffffff]` as the length-prefixed binary form.
fn put_time(out: &mut BytesMut, v: &[u8]) -> Option<()> {
    let t = parse_time(v)?;
    if t.hours == 0 && t.minutes == 0 && t.seconds == 0 && t.micros == 0 {
        out.put_u8(0);
        return Some(());
    }
    out.put_u8(if t.micros != 0 { 12 } else { 8 });
    out.put_u8(u8::from(t.negative));
    out.put_u32_le(t.hours / 24);
    out.put_u8((t.hours % 24) as u8);
    out.put_u8(t.minutes);
    out.put_u8(t.seconds);
    if t.micros != 0 {
        out.put_u32_le(t.micros);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ty: u8) -> ColMeta {
        ColMeta { ty, flags: 0, charset: 63, decimals: 0 }
    }

    #[test]
    fn encodes_by_type_with_a_null_bitmap() {
        let row =
            Row::from_cells([Some(&b"-2"[..]), None, Some(b"1.5"), Some(b"2024-01-02 03:04:05.000006"), Some(b"x")]);
        let metas = [meta(0x08), meta(0x03), meta(0x05), meta(0x0C), meta(0xFD), meta(0xFD)];
        let mut out = BytesMut::new();
        put_row(&mut out, &row, &metas, 5).unwrap();
        let mut want = vec![0x00, 0b0000_1000]; // header, column 1 NULL (bit 3)
        want.extend_from_slice(&(-2i64).to_le_bytes());
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[11, 0xE8, 0x07, 1, 2, 3, 4, 5, 6, 0, 0, 0]);
        want.extend_from_slice(&[1, b'x']);
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn temporals_use_the_shortest_form() {
        let mut out = BytesMut::new();
        put_datetime(&mut out, b"2024-01-02").unwrap();
        assert_eq!(&out[..], &[4, 0xE8, 0x07, 1, 2]);
        out.clear();
        put_datetime(&mut out, b"0000-00-00 00:00:00").unwrap();
        assert_eq!(&out[..], &[0]);
        out.clear();
        put_time(&mut out, b"-25:00:01").unwrap();
        assert_eq!(&out[..], &[8, 1, 1, 0, 0, 0, 1, 0, 1]);
    }
}
