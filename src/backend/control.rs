//! Control operations on a backend connection that shardgate issues itself
//! (not relayed): state sync, transaction statements, COM_INIT_DB, PREPARE.
//! Their responses are read whole here; they are small.

use std::sync::Arc;

use bytes::BytesMut;

use super::conn::BackendConn;
use super::state::{self, SessionVars};
use super::BackendError;
use crate::protocol::command;
use crate::protocol::response::{Event, ResponseScanner};
use crate::protocol::wire::{self, OkInfo};

/// A statement prepared on a backend: its id and the metadata packets
/// (parameter and column definitions, raw payloads).
#[derive(Debug, Clone)]
pub struct BackendPrepared {
    pub id: u32,
    pub num_params: u16,
    pub num_columns: u16,
    pub warnings: u16,
    pub params: Vec<BytesMut>,
    pub columns: Vec<BytesMut>,
}

/// "Can't create more than max_prepared_stmt_count statements".
const ER_MAX_PREPARED_STMT_COUNT_REACHED: u16 = 1461;

/// Result of a control query.
pub type Rows = Vec<Vec<Option<Vec<u8>>>>;

/// One statement's result in [`BackendConn::query_results`]: column names
/// and text rows (both empty for a statement without a result set).
#[derive(Debug, Clone, Default)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Rows,
}

impl ResultSet {
    /// Index of a column by name (ASCII case-insensitive).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.eq_ignore_ascii_case(name))
    }
}

/// Every result of a multi-statement control query, in statement order. A
/// statement that fails ends the response: `error` is its error, and `sets`
/// holds the results of the statements before it.
#[derive(Debug, Clone, Default)]
pub struct MultiResult {
    pub sets: Vec<ResultSet>,
    pub error: Option<wire::ErrInfo>,
    /// The final OK / end-of-result status.
    pub last: OkInfo,
}

impl BackendConn {
    /// Run one statement and read its whole response. Text rows are returned
    /// (decoded cells); a server error is `BackendError::Server`.
    pub async fn query(&mut self, sql: &str) -> Result<(OkInfo, Rows), BackendError> {
        self.queue_command_parts(command::QUERY, sql.as_bytes());
        self.flush().await?;
        self.read_response().await
    }

    /// Read one whole response to COM_QUERY/COM_STMT_EXECUTE, rows decoded as text.
    pub async fn read_response(&mut self) -> Result<(OkInfo, Rows), BackendError> {
        let r = self.read_results().await?;
        match r.error {
            Some(e) => Err(BackendError::Server(e)),
            None => Ok((r.last, r.sets.into_iter().flat_map(|s| s.rows).collect())),
        }
    }

    /// Run `sql` (several statements on a connection opened with
    /// CLIENT_MULTI_STATEMENTS) and read every result with its column names:
    /// one round trip. Server errors are in [`MultiResult::error`]; `Err` is
    /// a broken connection or protocol error.
    pub async fn query_results(&mut self, sql: &str) -> Result<MultiResult, BackendError> {
        self.queue_command_parts(command::QUERY, sql.as_bytes());
        self.flush().await?;
        self.read_results().await
    }

    /// Read every result of one response (the one reader behind both above).
    async fn read_results(&mut self) -> Result<MultiResult, BackendError> {
        let mut scanner = ResponseScanner::query(self.deprecate_eof);
        let mut out = MultiResult::default();
        let mut current = ResultSet::default();
        while !scanner.done() {
            let p = self.next_payload().await?;
            let ev = match scanner.feed(&p) {
                Ok(ev) => ev,
                Err(e) => {
                    self.broken = true;
                    return Err(BackendError::Protocol { addr: self.addr.clone(), what: e.0 });
                }
            };
            match ev {
                Event::Ok(ok) | Event::ResultEnd(ok) => {
                    self.status = ok.status;
                    out.last = ok;
                    out.sets.push(std::mem::take(&mut current));
                }
                Event::ColumnDef => current.columns.push(column_name(&p)),
                Event::Err => out.error = wire::parse_err(&p),
                Event::Row => current.rows.push(decode_text_row(&p)),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Bring this connection to the session's variables and schema.
    pub async fn sync_state(&mut self, vars: &Arc<SessionVars>, schema: &str) -> Result<(), BackendError> {
        if let Some(sql) = state::sync_sql(&self.vars, vars) {
            // Until the SET succeeds the connection's state is unknown.
            let previous = std::mem::replace(&mut self.vars, vars.clone());
            match self.query(&sql).await {
                Ok(_) => {}
                Err(e) => {
                    self.vars = previous;
                    self.broken = true;
                    return Err(e);
                }
            }
        }
        if self.schema != schema {
            self.init_db(schema).await?;
        }
        Ok(())
    }

    /// COM_INIT_DB.
    pub async fn init_db(&mut self, schema: &str) -> Result<(), BackendError> {
        self.queue_command_parts(command::INIT_DB, schema.as_bytes());
        self.flush().await?;
        let p = self.next_payload().await?;
        match p.first() {
            Some(&wire::OK_HEADER) => {
                self.schema = schema.to_string();
                if let Some(ok) = wire::parse_ok(&p) {
                    self.status = ok.status;
                }
                Ok(())
            }
            Some(&wire::ERR_HEADER) => Err(BackendError::Server(wire::parse_err(&p).unwrap_or_else(unknown_err))),
            _ => {
                self.broken = true;
                Err(BackendError::Protocol { addr: self.addr.clone(), what: "unexpected reply to COM_INIT_DB" })
            }
        }
    }

    /// COM_STMT_PREPARE, reading the metadata that follows.
    pub async fn prepare(&mut self, sql: &str) -> Result<BackendPrepared, BackendError> {
        self.queue_command_parts(command::STMT_PREPARE, sql.as_bytes());
        self.flush().await?;
        let first = self.next_payload().await?;
        match first.first() {
            Some(&wire::OK_HEADER) if first.len() >= 12 => {}
            Some(&wire::ERR_HEADER) => {
                return Err(BackendError::Server(wire::parse_err(&first).unwrap_or_else(unknown_err)))
            }
            _ => {
                self.broken = true;
                return Err(BackendError::Protocol {
                    addr: self.addr.clone(),
                    what: "unexpected reply to COM_STMT_PREPARE",
                });
            }
        }
        let id = u32::from_le_bytes([first[1], first[2], first[3], first[4]]);
        let num_columns = u16::from_le_bytes([first[5], first[6]]);
        let num_params = u16::from_le_bytes([first[7], first[8]]);
        let warnings = u16::from_le_bytes([first[10], first[11]]);
        let mut params = Vec::with_capacity(num_params.into());
        for _ in 0..num_params {
            params.push(self.next_payload().await?);
        }
        if num_params > 0 && !self.deprecate_eof {
            self.next_payload().await?;
        }
        let mut columns = Vec::with_capacity(num_columns.into());
        for _ in 0..num_columns {
            columns.push(self.next_payload().await?);
        }
        if num_columns > 0 && !self.deprecate_eof {
            self.next_payload().await?;
        }
        Ok(BackendPrepared { id, num_params, num_columns, warnings, params, columns })
    }

    /// The backend id of `sql` on this connection, preparing it if needed.
    pub async fn ensure_prepared(&mut self, sql: &Arc<str>) -> Result<u32, BackendError> {
        if let Some(id) = self.stmts.get(sql) {
            return Ok(id);
        }
        let p = self.prepare_with_room(sql).await?;
        self.remember_prepared(sql.clone(), p.id);
        Ok(p.id)
    }

    /// COM_STMT_PREPARE; when the server is at max_prepared_stmt_count, close
    /// the older half of this connection's statements and try once more.
    pub async fn prepare_with_room(&mut self, sql: &str) -> Result<BackendPrepared, BackendError> {
        match self.prepare(sql).await {
            Err(BackendError::Server(e)) if e.code == ER_MAX_PREPARED_STMT_COUNT_REACHED && !self.stmts.is_empty() => {
                for id in self.stmts.evict_half() {
                    self.queue_command_parts(command::STMT_CLOSE, &id.to_le_bytes());
                }
                self.prepare(sql).await
            }
            other => other,
        }
    }

    /// Record a statement prepared on this connection, closing one evicted to make room.
    pub fn remember_prepared(&mut self, sql: Arc<str>, id: u32) {
        if let Some(evicted) = self.stmts.insert(sql, id) {
            // COM_STMT_CLOSE has no reply; it goes out with the next command.
            self.queue_command_parts(command::STMT_CLOSE, &evicted.to_le_bytes());
        }
    }
}

fn unknown_err() -> wire::ErrInfo {
    wire::ErrInfo { code: 1105, sqlstate: *b"HY000", message: "malformed error packet from backend".into() }
}

/// The name (alias) in a protocol-41 column definition: the fifth
/// length-encoded string, after catalog, schema, table and org_table.
fn column_name(p: &[u8]) -> String {
    let mut pos = 0;
    for _ in 0..4 {
        if wire::get_lenenc_str(p, &mut pos).is_none() {
            return String::new();
        }
    }
    wire::get_lenenc_str(p, &mut pos).map(|s| String::from_utf8_lossy(s).into_owned()).unwrap_or_default()
}

/// Decode a text-protocol row into cells.
pub fn decode_text_row(p: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut cells = Vec::new();
    let mut pos = 0;
    while pos < p.len() {
        if p[pos] == 0xFB {
            cells.push(None);
            pos += 1;
        } else if let Some(s) = wire::get_lenenc_str(p, &mut pos) {
            cells.push(Some(s.to_vec()));
        } else {
            break;
        }
    }
    cells
}

impl BackendConn {
    /// COM_PING.
    pub async fn ping(&mut self) -> Result<(), BackendError> {
        self.queue_command_parts(command::PING, &[]);
        self.flush().await?;
        let p = self.next_payload().await?;
        if p.first() == Some(&wire::OK_HEADER) {
            Ok(())
        } else {
            self.broken = true;
            Err(BackendError::Protocol { addr: self.addr.clone(), what: "unexpected reply to COM_PING" })
        }
    }
}
