//! Moving backend responses to the client.
//!
//! One target: frames are copied as they arrive, only their sequence ids
//! rewritten (and the transaction bits of the final status, and an OK's insert
//! id when a global sequence made the ids), never decoded.
//! Several targets: the first result set's header is sent once, then every
//! shard's rows in turn, then one terminator; OK packets are summed; the
//! first error wins and the other responses are drained so their
//! connections stay clean. Memory is bounded by one frame per shard.

use super::errors::{Failure, MyErr};
use super::session::{Session, FLUSH_AT};
use super::txn::Held;
use crate::backend::BackendError;
use crate::protocol::response::{self, Event, ResponseScanner};
use crate::protocol::wire::{self, OkInfo, STATUS_AUTOCOMMIT, STATUS_IN_TRANS, STATUS_MORE_RESULTS};

/// How a response ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub ok: OkInfo,
    pub error: bool,
    /// The error the client got, when it came from a backend's ERR packet.
    pub err: Option<MyErr>,
    /// A result set was sent (not just an OK).
    pub result_set: bool,
    /// Rows sent to the client.
    pub rows: u64,
}

impl Session {
    /// Status flags for a relayed terminator whose backend status is `status`.
    pub(crate) fn fix_status(&self, status: u16, conn_in_tx: bool) -> u16 {
        let mut s = status & !(STATUS_AUTOCOMMIT | STATUS_IN_TRANS);
        if self.autocommit {
            s |= STATUS_AUTOCOMMIT;
        }
        if !self.implicit_xa && (conn_in_tx || self.tx.is_some() || self.held.iter().any(|h| h.conn.in_transaction())) {
            s |= STATUS_IN_TRANS;
        }
        s
    }

    /// The terminator of a result set the proxy assembled (EOF, or OK with
    /// header 0xFE under CLIENT_DEPRECATE_EOF); `sum.status` is final.
    pub(crate) fn end_result_set(&mut self, seq: &mut u8, sum: &OkInfo) {
        let deprecate = self.deprecate_eof;
        self.wr.push_with(seq, |b| {
            if deprecate {
                wire::put_ok(b, sum, true, b"");
            } else {
                wire::put_eof(b, sum.warnings, sum.status);
            }
        });
        self.seq = *seq;
        self.last_ok = OkInfo { affected_rows: 0, ..*sum };
    }

    /// Relay one backend's whole response (the command was already sent).
    pub(crate) async fn relay_one(
        &mut self,
        held: &mut Held,
        mut scanner: ResponseScanner,
    ) -> Result<Outcome, Failure> {
        let mut seq = self.seq;
        let mut flushed = false;
        let mut outcome = Outcome::default();
        loop {
            // The frame is handled where it lies in the read buffer: no split, no copy
            // but the one into the client's write buffer.
            let len = match held.conn.next_frame_len().await {
                Ok(n) => n,
                Err(e) => return Err(self.abort_relay(e, flushed)),
            };
            let conn: &mut crate::backend::conn::BackendConn = &mut held.conn;
            let frame = &mut conn.rd.buffered_mut()[..len];
            let ev = match scanner.feed(&frame[4..]) {
                Ok(ev) => ev,
                Err(m) => {
                    conn.broken = true;
                    let e = BackendError::Protocol { addr: conn.addr.clone(), what: m.0 };
                    return Err(self.abort_relay(e, flushed));
                }
            };
            let mut replaced = None;
            match ev {
                Event::Ok(ok) | Event::ResultEnd(ok) => {
                    conn.status = ok.status;
                    let fixed = self.fix_status(ok.status, ok.status & STATUS_IN_TRANS != 0);
                    if let Some(off) = response::status_offset(&ev, &frame[4..], self.deprecate_eof) {
                        frame[4 + off..4 + off + 2].copy_from_slice(&fixed.to_le_bytes());
                    }
                    outcome.ok = OkInfo { status: fixed, ..ok };
                    if let (Some(id), Event::Ok(_)) = (self.insert_id_override, &ev) {
                        // Ids from a shardgate sequence: the backend reported none.
                        replaced = wire::ok_with_insert_id(&frame[4..], id);
                        outcome.ok.last_insert_id = id;
                    }
                }
                Event::Err => {
                    // Copied through as it is, never via send_err: counted here.
                    self.shared.metrics.error(crate::admin::metrics::ErrorSource::Backend);
                    outcome.error = true;
                    outcome.err = wire::parse_err(&frame[4..]).map(MyErr::from_server);
                }
                Event::Row => outcome.rows += 1,
                Event::ColumnCount(_) => outcome.result_set = true,
                _ => {}
            }
            match replaced {
                Some(payload) => self.wr.push(&mut seq, &payload),
                None => self.wr.push_frame(&mut seq, frame),
            }
            conn.rd.consume(len);
            if scanner.done() {
                break;
            }
            if self.wr.pending() >= FLUSH_AT {
                if let Err(e) = self.wr.flush().await {
                    // The rest of the response is unread: never pool this connection.
                    held.conn.broken = true;
                    return Err(Failure::Close(e.to_string()));
                }
                flushed = true;
            }
        }
        self.seq = seq;
        if !outcome.error {
            self.last_ok = outcome.ok;
        }
        Ok(outcome)
    }

    /// A backend failed mid-response. If nothing reached the client yet the
    /// statement fails cleanly; otherwise the client has half a result and
    /// must be disconnected.
    fn abort_relay(&mut self, e: BackendError, flushed: bool) -> Failure {
        if flushed {
            Failure::Close(format!("backend failed mid-result: {e}"))
        } else {
            self.wr.discard();
            Failure::Err(MyErr::from_backend(&e))
        }
    }

    /// Combine the responses of several backends (the command was sent to all).
    pub(crate) async fn relay_concat(&mut self, leases: &mut [Held]) -> Result<Outcome, Failure> {
        let mut seq = self.seq;
        let mut flushed = false;
        let mut first_err: Option<MyErr> = None;
        let mut sum = OkInfo::default();
        let mut columns: Option<u64> = None; // set once the header went out
        let mut header_from: Option<usize> = None;
        let mut result_set = false;
        let mut rows = 0u64;
        let mut any_in_tx = false;
        let mut client_gone: Option<String> = None;
        for (i, held) in leases.iter_mut().enumerate() {
            if client_gone.is_some() {
                // Responses not read to the end: these connections cannot be reused.
                held.conn.broken = true;
                continue;
            }
            let mut scanner = ResponseScanner::query(self.deprecate_eof);
            while !scanner.done() {
                let frame = match held.conn.next_frame().await {
                    Ok(f) => f,
                    Err(e) => {
                        first_err.get_or_insert(MyErr::from_backend(&e));
                        break;
                    }
                };
                let ev = match scanner.feed(frame.payload()) {
                    Ok(ev) => ev,
                    Err(m) => {
                        held.conn.broken = true;
                        first_err.get_or_insert(MyErr::from_backend(&BackendError::Protocol {
                            addr: held.conn.addr.clone(),
                            what: m.0,
                        }));
                        break;
                    }
                };
                let forward = match ev {
                    Event::Ok(ok) | Event::ResultEnd(ok) => {
                        held.conn.status = ok.status;
                        any_in_tx |= ok.status & STATUS_IN_TRANS != 0;
                        sum.affected_rows += ok.affected_rows;
                        if sum.last_insert_id == 0 {
                            sum.last_insert_id = ok.last_insert_id;
                        }
                        sum.warnings = sum.warnings.saturating_add(ok.warnings);
                        if ok.status & STATUS_MORE_RESULTS != 0 {
                            first_err.get_or_insert(MyErr::not_supported(
                                "multiple result sets from a statement that runs on several shards",
                            ));
                        }
                        false
                    }
                    Event::Err => {
                        first_err.get_or_insert_with(|| {
                            wire::parse_err(frame.payload())
                                .map(MyErr::from_server)
                                .unwrap_or_else(|| MyErr::new(1105, "HY000", "malformed error from backend"))
                        });
                        false
                    }
                    Event::ColumnCount(n) => {
                        result_set = true;
                        match columns {
                            None if first_err.is_none() => {
                                columns = Some(n);
                                header_from = Some(i);
                                true
                            }
                            Some(c) if c != n => {
                                first_err.get_or_insert(MyErr::new(1105, "HY000", "shards returned different columns for the same statement; check that the table has the same definition on every shard"));
                                false
                            }
                            _ => false,
                        }
                    }
                    Event::ColumnDef | Event::ColumnsEof(_) => header_from == Some(i),
                    Event::Row => {
                        rows += 1;
                        first_err.is_none() && columns.is_some()
                    }
                    Event::Continuation => first_err.is_none() && columns.is_some(),
                };
                if forward {
                    self.wr.push_frame(&mut seq, &frame.bytes);
                    if self.wr.pending() >= FLUSH_AT {
                        if let Err(e) = self.wr.flush().await {
                            held.conn.broken = true;
                            client_gone = Some(e.to_string());
                            break;
                        }
                        flushed = true;
                    }
                }
            }
        }
        if let Some(reason) = client_gone {
            return Err(Failure::Close(reason));
        }
        let status = self.fix_status(0, any_in_tx);
        sum.status = status;
        if let Some(id) = self.insert_id_override {
            sum.last_insert_id = id;
        }
        if let Some(e) = first_err {
            if !flushed {
                self.wr.discard();
                return Err(e.into());
            }
            // Rows already reached the client: an ERR may end a result set.
            self.seq = seq;
            self.send_err(&e);
            return Ok(Outcome { ok: sum, error: true, err: Some(e), result_set, rows });
        }
        if result_set {
            self.end_result_set(&mut seq, &sum);
        } else {
            self.seq = seq;
            self.send_ok(sum);
        }
        Ok(Outcome { ok: sum, error: false, err: None, result_set, rows })
    }
}
