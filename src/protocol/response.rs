//! A state machine that follows a backend's response frame by frame, so the
//! relay knows where it ends without decoding rows. Handles multi-result sets
//! (SERVER_MORE_RESULTS_EXISTS), both EOF styles (CLIENT_DEPRECATE_EOF on or
//! off) and packets of 16 MiB and more (continuation frames).

use super::packet::MAX_FRAME;
use super::wire::{self, OkInfo, ERR_HEADER, LOCAL_INFILE_HEADER, OK_HEADER, STATUS_MORE_RESULTS};

/// What one frame was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An OK packet (a statement without a result set).
    Ok(OkInfo),
    /// An ERR packet; the response is over.
    Err,
    /// The column count that opens a result set.
    ColumnCount(u64),
    ColumnDef,
    /// The classic EOF after the column definitions.
    ColumnsEof(OkInfo),
    /// The first frame of a row.
    Row,
    /// A later frame of a packet of 16 MiB or more.
    Continuation,
    /// The end of a result set's rows (EOF, or OK with header 0xFE).
    ResultEnd(OkInfo),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Columns(u64),
    ColumnsEof,
    Rows,
    FieldList,
    Done,
}

/// A malformed or unexpected frame: the backend connection cannot be trusted any more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed backend response: {0}")]
pub struct Malformed(pub &'static str);

/// Follows one response (to COM_QUERY, COM_STMT_EXECUTE or COM_FIELD_LIST).
#[derive(Debug, Clone)]
pub struct ResponseScanner {
    deprecate_eof: bool,
    state: State,
    continuing: bool,
}

impl ResponseScanner {
    /// For a COM_QUERY or COM_STMT_EXECUTE response.
    pub fn query(deprecate_eof: bool) -> Self {
        ResponseScanner { deprecate_eof, state: State::Start, continuing: false }
    }

    /// For a COM_FIELD_LIST response (column definitions, then a terminator).
    pub fn field_list(deprecate_eof: bool) -> Self {
        ResponseScanner { deprecate_eof, state: State::FieldList, continuing: false }
    }

    /// The whole response has been seen.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Classify the next frame's payload.
    pub fn feed(&mut self, payload: &[u8]) -> Result<Event, Malformed> {
        if self.continuing {
            self.continuing = payload.len() == MAX_FRAME;
            return Ok(Event::Continuation);
        }
        self.continuing = payload.len() == MAX_FRAME;
        let first = *payload.first().ok_or(Malformed("empty packet"))?;
        match self.state {
            State::Done => Err(Malformed("data after the end of the response")),
            State::Start => match first {
                OK_HEADER => {
                    let ok = wire::parse_ok(payload).ok_or(Malformed("bad OK packet"))?;
                    self.end_result(ok);
                    Ok(Event::Ok(ok))
                }
                ERR_HEADER => {
                    self.state = State::Done;
                    Ok(Event::Err)
                }
                LOCAL_INFILE_HEADER => Err(Malformed("LOCAL INFILE request")),
                _ => {
                    let mut pos = 0;
                    let n = wire::get_lenenc_int(payload, &mut pos).ok_or(Malformed("bad column count"))?;
                    if n == 0 {
                        return Err(Malformed("zero column count"));
                    }
                    self.state = State::Columns(n);
                    Ok(Event::ColumnCount(n))
                }
            },
            State::Columns(left) => {
                self.state = match (left, self.deprecate_eof) {
                    (1, true) => State::Rows,
                    (1, false) => State::ColumnsEof,
                    (n, _) => State::Columns(n - 1),
                };
                Ok(Event::ColumnDef)
            }
            State::ColumnsEof => {
                if !wire::is_terminator(payload) {
                    return Err(Malformed("expected EOF after column definitions"));
                }
                self.state = State::Rows;
                Ok(Event::ColumnsEof(wire::parse_eof(payload).unwrap_or_default()))
            }
            State::Rows => {
                if first == ERR_HEADER {
                    self.state = State::Done;
                    Ok(Event::Err)
                } else if wire::is_terminator(payload) {
                    let ok = self.terminator(payload)?;
                    self.end_result(ok);
                    Ok(Event::ResultEnd(ok))
                } else {
                    Ok(Event::Row)
                }
            }
            State::FieldList => {
                if first == ERR_HEADER {
                    self.state = State::Done;
                    Ok(Event::Err)
                } else if wire::is_terminator(payload) {
                    let ok = self.terminator(payload)?;
                    self.state = State::Done;
                    Ok(Event::ResultEnd(ok))
                } else {
                    Ok(Event::ColumnDef)
                }
            }
        }
    }

    fn terminator(&self, payload: &[u8]) -> Result<OkInfo, Malformed> {
        if self.deprecate_eof {
            wire::parse_ok(payload).ok_or(Malformed("bad OK terminator"))
        } else {
            wire::parse_eof(payload).ok_or(Malformed("bad EOF packet"))
        }
    }

    fn end_result(&mut self, ok: OkInfo) {
        self.state = if ok.status & STATUS_MORE_RESULTS != 0 { State::Start } else { State::Done };
    }
}

/// Byte offset of the status flags inside a terminator or OK payload, so the
/// relay can rewrite the transaction bits in place.
pub fn status_offset(event: &Event, payload: &[u8], deprecate_eof: bool) -> Option<usize> {
    match event {
        Event::Ok(_) => wire::ok_status_offset(payload),
        Event::ResultEnd(_) if deprecate_eof => wire::ok_status_offset(payload),
        Event::ResultEnd(_) | Event::ColumnsEof(_) => (payload.len() >= 5).then_some(3),
        _ => None,
    }
}
