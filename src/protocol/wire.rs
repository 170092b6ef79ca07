//! Encoding and decoding of the small protocol messages: length-encoded
//! integers and strings, OK / ERR / EOF packets, column definitions and text rows.

use bytes::{BufMut, BytesMut};

pub const OK_HEADER: u8 = 0x00;
pub const EOF_HEADER: u8 = 0xFE;
pub const ERR_HEADER: u8 = 0xFF;
pub const LOCAL_INFILE_HEADER: u8 = 0xFB;

pub const STATUS_IN_TRANS: u16 = 0x0001;
pub const STATUS_AUTOCOMMIT: u16 = 0x0002;
pub const STATUS_MORE_RESULTS: u16 = 0x0008;
/// SERVER_STATUS_NO_BACKSLASH_ESCAPES: the session's sql_mode has NO_BACKSLASH_ESCAPES,
/// so clients that escape strings themselves must double quotes instead.
pub const STATUS_NO_BACKSLASH_ESCAPES: u16 = 0x0200;

/// Append a length-encoded integer.
pub fn put_lenenc_int(out: &mut BytesMut, v: u64) {
    if v < 251 {
        out.put_u8(v as u8);
    } else if v < 1 << 16 {
        out.put_u8(0xFC);
        out.put_u16_le(v as u16);
    } else if v < 1 << 24 {
        out.put_u8(0xFD);
        out.put_slice(&(v as u32).to_le_bytes()[..3]);
    } else {
        out.put_u8(0xFE);
        out.put_u64_le(v);
    }
}

/// Append a length-encoded string.
pub fn put_lenenc_str(out: &mut BytesMut, s: &[u8]) {
    put_lenenc_int(out, s.len() as u64);
    out.put_slice(s);
}

/// Read a length-encoded integer at `*pos`. `None` for a malformed or NULL (0xFB) value.
pub fn get_lenenc_int(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *buf.get(*pos)?;
    let (v, n) = match first {
        0..=250 => (u64::from(first), 1),
        0xFC => (u64::from(u16::from_le_bytes(buf.get(*pos + 1..*pos + 3)?.try_into().ok()?)), 3),
        0xFD => {
            let b = buf.get(*pos + 1..*pos + 4)?;
            (u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16, 4)
        }
        0xFE => (u64::from_le_bytes(buf.get(*pos + 1..*pos + 9)?.try_into().ok()?), 9),
        _ => return None,
    };
    *pos += n;
    Some(v)
}

/// Read a length-encoded string at `*pos`.
pub fn get_lenenc_str<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = usize::try_from(get_lenenc_int(buf, pos)?).ok()?;
    let s = buf.get(*pos..pos.checked_add(len)?)?;
    *pos += len;
    Some(s)
}

/// Read a NUL-terminated string at `*pos` (the NUL is consumed).
pub fn get_null_str<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = buf.get(*pos..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    *pos += end + 1;
    Some(&rest[..end])
}

/// The fields of an OK packet (or of an EOF packet, with zero counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OkInfo {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

/// Parse an OK packet (header 0x00, or 0xFE when it ends a result set under DEPRECATE_EOF).
pub fn parse_ok(payload: &[u8]) -> Option<OkInfo> {
    let mut pos = 1;
    let affected_rows = get_lenenc_int(payload, &mut pos)?;
    let last_insert_id = get_lenenc_int(payload, &mut pos)?;
    let status = u16::from_le_bytes(payload.get(pos..pos + 2)?.try_into().ok()?);
    let warnings = u16::from_le_bytes(payload.get(pos + 2..pos + 4)?.try_into().ok()?);
    Some(OkInfo { affected_rows, last_insert_id, status, warnings })
}

/// An OK payload with its last-insert-id replaced by `id`; every other byte
/// (affected rows, status, warnings, info, session state) is kept.
pub fn ok_with_insert_id(payload: &[u8], id: u64) -> Option<BytesMut> {
    let mut pos = 1;
    get_lenenc_int(payload, &mut pos)?;
    let id_at = pos;
    get_lenenc_int(payload, &mut pos)?;
    let mut out = BytesMut::with_capacity(payload.len() + 9);
    out.put_slice(&payload[..id_at]);
    put_lenenc_int(&mut out, id);
    out.put_slice(&payload[pos..]);
    Some(out)
}

/// Byte offset of the status flags in an OK payload.
pub fn ok_status_offset(payload: &[u8]) -> Option<usize> {
    let mut pos = 1;
    get_lenenc_int(payload, &mut pos)?;
    get_lenenc_int(payload, &mut pos)?;
    (payload.len() >= pos + 2).then_some(pos)
}

/// Parse a classic EOF packet (0xFE, warnings, status).
pub fn parse_eof(payload: &[u8]) -> Option<OkInfo> {
    let warnings = u16::from_le_bytes(payload.get(1..3)?.try_into().ok()?);
    let status = u16::from_le_bytes(payload.get(3..5)?.try_into().ok()?);
    Some(OkInfo { status, warnings, ..OkInfo::default() })
}

/// Is this frame payload a terminator (classic EOF, or an OK with the 0xFE
/// header) rather than a row? A text row can only start with 0xFE when its
/// first cell is 16 MiB or more, so its first frame is always a full
/// 0xFFFFFF-byte frame; a terminator never is.
pub fn is_terminator(frame_payload: &[u8]) -> bool {
    frame_payload.first() == Some(&EOF_HEADER) && frame_payload.len() < 0xFF_FFFF
}

/// An ERR packet's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrInfo {
    pub code: u16,
    pub sqlstate: [u8; 5],
    pub message: String,
}

/// Parse an ERR packet (protocol 4.1 form with SQLSTATE marker, or without).
pub fn parse_err(payload: &[u8]) -> Option<ErrInfo> {
    let code = u16::from_le_bytes(payload.get(1..3)?.try_into().ok()?);
    let (sqlstate, msg) = if payload.get(3) == Some(&b'#') && payload.len() >= 9 {
        (payload[4..9].try_into().ok()?, &payload[9..])
    } else {
        (*b"HY000", payload.get(3..)?)
    };
    Some(ErrInfo { code, sqlstate, message: String::from_utf8_lossy(msg).into_owned() })
}

/// Append an OK packet payload. `eof_header` selects 0xFE (end of a result set under DEPRECATE_EOF).
pub fn put_ok(out: &mut BytesMut, ok: &OkInfo, eof_header: bool, info: &[u8]) {
    out.put_u8(if eof_header { EOF_HEADER } else { OK_HEADER });
    put_lenenc_int(out, ok.affected_rows);
    put_lenenc_int(out, ok.last_insert_id);
    out.put_u16_le(ok.status);
    out.put_u16_le(ok.warnings);
    out.put_slice(info);
}

/// Append a classic EOF packet payload.
pub fn put_eof(out: &mut BytesMut, warnings: u16, status: u16) {
    out.put_u8(EOF_HEADER);
    out.put_u16_le(warnings);
    out.put_u16_le(status);
}

/// Append an ERR packet payload.
pub fn put_err(out: &mut BytesMut, code: u16, sqlstate: &[u8; 5], message: &str) {
    out.put_u8(ERR_HEADER);
    out.put_u16_le(code);
    out.put_u8(b'#');
    out.put_slice(sqlstate);
    // Keep messages within MySQL's MYSQL_ERRMSG_SIZE (512) so every client shows them whole.
    let mut end = message.len().min(511);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    out.put_slice(&message.as_bytes()[..end]);
}

/// Column type codes used by proxy-generated result sets.
pub const TYPE_LONGLONG: u8 = 0x08;
pub const TYPE_VAR_STRING: u8 = 0xFD;

/// Column flags used by proxy-generated result sets.
pub const FLAG_NOT_NULL: u16 = 0x0001;
pub const FLAG_UNSIGNED: u16 = 0x0020;
pub const FLAG_BINARY: u16 = 0x0080;

/// Append a column definition (protocol 4.1) for a proxy-generated result set.
pub fn put_column_def(out: &mut BytesMut, name: &str, column_type: u8, charset: u16) {
    put_column_def_flags(out, name, column_type, charset, 0);
}

/// [`put_column_def`] with column flags (`FLAG_*`).
pub fn put_column_def_flags(out: &mut BytesMut, name: &str, column_type: u8, charset: u16, flags: u16) {
    put_lenenc_str(out, b"def");
    put_lenenc_str(out, b"");
    put_lenenc_str(out, b"");
    put_lenenc_str(out, b"");
    put_lenenc_str(out, name.as_bytes());
    put_lenenc_str(out, name.as_bytes());
    out.put_u8(0x0C);
    out.put_u16_le(charset);
    out.put_u32_le(if column_type == TYPE_LONGLONG { 20 } else { 1024 });
    out.put_u8(column_type);
    out.put_u16_le(flags);
    out.put_u8(0); // decimals
    out.put_u16_le(0); // filler
}

/// Append a text-protocol row; `None` is SQL NULL.
pub fn put_text_row<'a>(out: &mut BytesMut, cells: impl IntoIterator<Item = Option<&'a [u8]>>) {
    for cell in cells {
        match cell {
            Some(v) => put_lenenc_str(out, v),
            None => out.put_u8(0xFB),
        }
    }
}
