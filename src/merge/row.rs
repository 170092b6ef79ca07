//! A text-protocol row, parsed once into cell boundaries over its payload,
//! so comparing and forwarding need no copy.

use bytes::{Bytes, BytesMut};

use super::MergeError;
use crate::protocol::wire;

#[derive(Debug, Clone, Copy)]
struct Cell {
    start: u32,
    end: u32,
    null: bool,
}

/// One row of a result set (text protocol).
#[derive(Debug, Clone)]
pub struct Row {
    payload: Bytes,
    cells: Vec<Cell>,
}

impl Row {
    /// Parse a row payload with `columns` cells.
    pub fn parse(payload: Bytes, columns: usize) -> Result<Row, MergeError> {
        let mut cells = Vec::with_capacity(columns);
        let mut pos = 0usize;
        for _ in 0..columns {
            if payload.get(pos) == Some(&0xFB) {
                pos += 1;
                cells.push(Cell { start: pos as u32, end: pos as u32, null: true });
                continue;
            }
            let len = wire::get_lenenc_int(&payload, &mut pos).ok_or_else(malformed)? as usize;
            let end = pos.checked_add(len).filter(|&e| e <= payload.len()).ok_or_else(malformed)?;
            cells.push(Cell { start: pos as u32, end: end as u32, null: false });
            pos = end;
        }
        if pos != payload.len() {
            return Err(malformed());
        }
        Ok(Row { payload, cells })
    }

    /// Build a row from values.
    pub fn from_cells<'a>(cells: impl IntoIterator<Item = Option<&'a [u8]>>) -> Row {
        let mut b = BytesMut::new();
        let mut bounds = Vec::new();
        for c in cells {
            match c {
                Some(v) => {
                    wire::put_lenenc_str(&mut b, v);
                    bounds.push(Cell { start: (b.len() - v.len()) as u32, end: b.len() as u32, null: false });
                }
                None => {
                    b.extend_from_slice(&[0xFB]);
                    bounds.push(Cell { start: b.len() as u32, end: b.len() as u32, null: true });
                }
            }
        }
        Row { payload: b.freeze(), cells: bounds }
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Cell `i`; `None` is SQL NULL (and so is a cell past the end).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let c = self.cells.get(i)?;
        (!c.null).then(|| &self.payload[c.start as usize..c.end as usize])
    }

    /// The payload of the first `n` cells: the row as the client sees it
    /// (hidden columns are the trailing ones).
    pub fn prefix(&self, n: usize) -> &[u8] {
        let end = if n == 0 { 0 } else { self.cells[n - 1].end as usize };
        &self.payload[..end]
    }

    /// Bytes held, for the memory budget.
    pub fn weight(&self) -> usize {
        self.payload.len() + self.cells.len() * std::mem::size_of::<Cell>() + std::mem::size_of::<Row>()
    }
}

fn malformed() -> MergeError {
    MergeError::new(1105, "HY000", "malformed row from a shard in a cross-shard merge")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_cuts_hidden_columns() {
        let r = Row::from_cells([Some(&b"abc"[..]), None, Some(&b""[..]), Some(&b"w"[..])]);
        let p = Row::parse(Bytes::copy_from_slice(r.prefix(4)), 4).unwrap();
        assert_eq!(p.get(0), Some(&b"abc"[..]));
        assert_eq!(p.get(1), None);
        assert_eq!(p.get(2), Some(&b""[..]));
        assert_eq!(p.prefix(2), &[3, b'a', b'b', b'c', 0xFB][..]);
        assert!(p.prefix(0).is_empty());
        assert!(Row::parse(Bytes::from_static(&[5, b'a']), 1).is_err());
        assert!(Row::parse(Bytes::from_static(&[1, b'a', 1]), 1).is_err());
    }
}
