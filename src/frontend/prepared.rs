//! Binary-protocol prepared statements over pooled, sharded backends.
//!
//! Statement ids are shardgate's own. A statement is analysed once at
//! PREPARE (router::prepare); at EXECUTE the bound key values pick the
//! shards, and the backend statement is prepared lazily on whichever pooled
//! connection runs it (each connection caches its statements, bounded).
//! Parameter types are remembered, so a connection that never saw the first
//! EXECUTE still gets them. Long data is buffered and sent just before EXECUTE.

use std::sync::Arc;

use bytes::BufMut;

use super::errors::{Failure, MyErr};
use super::interpolate::{interpolate, Param};
use super::session::Session;
use super::txn::Held;
use crate::admin::metrics::{Kind, Route, StmtClass};
use crate::backend::BackendError;
use crate::protocol::command;
use crate::protocol::wire::{self, OkInfo};
use crate::router::sequence::Slot;
use crate::router::{self, Action, KeyValue, PreparedRoute};

/// A statement prepared by a client.
pub struct ProxyStmt {
    pub sql: Arc<str>,
    pub route: PreparedRoute,
    pub num_params: u16,
    pub num_columns: u16,
    /// Parameter types (2 bytes each) from the last EXECUTE that bound them.
    pub types: Option<Vec<u8>>,
    /// COM_STMT_SEND_LONG_DATA chunks per parameter.
    pub long_data: Vec<Option<Vec<u8>>>,
    /// An INSERT into a table with a sequence: `sql` is the backend text, with
    /// placeholders for the ids the proxy binds at each EXECUTE.
    pub sequence: Option<Arc<router::sequence::SequenceFill>>,
}

/// Everything a backend needs to run one EXECUTE.
pub struct ExecRequest {
    pub sql: Arc<str>,
    /// Null bitmap, new-params-bound flag (always 1), types, values.
    pub tail: Vec<u8>,
    pub long_data: Vec<(u16, Vec<u8>)>,
}

const TYPE_NULL: u8 = 0x06;

/// Byte length of one binary parameter value of `ty` at `buf[pos..]`.
fn value_len(ty: u8, buf: &[u8], pos: usize) -> Option<usize> {
    Some(match ty {
        0x01 => 1,
        0x02 | 0x0D => 2,
        0x03 | 0x09 | 0x04 => 4,
        0x08 | 0x05 => 8,
        TYPE_NULL => 0,
        0x07 | 0x0A | 0x0B | 0x0C => 1 + usize::from(*buf.get(pos)?),
        _ => {
            let mut p = pos;
            let len = usize::try_from(wire::get_lenenc_int(buf, &mut p)?).ok()?;
            (p - pos) + len
        }
    })
}

/// The routing value of one binary parameter.
fn key_value(ty: u8, unsigned: bool, v: &[u8]) -> KeyValue {
    let int = |n: i64, u: u64| if unsigned { KeyValue::UInt(u) } else { KeyValue::Int(n) };
    match ty {
        0x01 => int(i64::from(v[0] as i8), u64::from(v[0])),
        0x02 | 0x0D => {
            let x = u16::from_le_bytes([v[0], v[1]]);
            int(i64::from(x as i16), u64::from(x))
        }
        0x03 | 0x09 => {
            let x = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            int(i64::from(x as i32), u64::from(x))
        }
        0x08 => {
            let x = u64::from_le_bytes(v[..8].try_into().unwrap_or([0; 8]));
            int(x as i64, x)
        }
        // FLOAT / DOUBLE holding a whole number: drivers for languages without an
        // integer type (mysql2 for JavaScript) bind integer keys this way.
        0x04 | 0x05 => {
            let f = if ty == 0x04 {
                f64::from(f32::from_le_bytes(v[..4].try_into().unwrap_or([0; 4])))
            } else {
                f64::from_le_bytes(v[..8].try_into().unwrap_or([0; 8]))
            };
            if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
                KeyValue::Int(f as i64)
            } else {
                KeyValue::Other
            }
        }
        0x0F | 0xFD | 0xFE | 0xF6 | 0x00 => {
            let mut p = 0;
            match wire::get_lenenc_str(v, &mut p) {
                Some(s) => KeyValue::Str(s.to_vec()),
                None => KeyValue::Other,
            }
        }
        _ => KeyValue::Other,
    }
}

impl Session {
    pub(crate) async fn com_stmt_prepare(&mut self, body: &[u8]) -> Result<(), Failure> {
        let client_sql = String::from_utf8_lossy(body);
        let cfg = self.shared.config.load();
        let sequence = self.sequence_analysis(&client_sql, &cfg, true).await?.map(Arc::new);
        let sql: Arc<str> = match &sequence {
            Some(f) => Arc::from(f.with_placeholders(&client_sql)),
            None => Arc::from(client_sql.as_ref()),
        };
        let prepare = |me: &Self| {
            let catalog = me.shared.catalog.load();
            let mut view = me.view();
            view.catalog = Some(&catalog);
            router::prepare(&sql, &cfg, &view)
        };
        let mut route = prepare(self);
        if matches!(&route.action, Action::Error(e) if e.message.contains(router::NEEDS_COLUMN_LIST))
            && self.shared.refresh_catalog().await.is_ok()
        {
            route = prepare(self);
        }
        let (mut num_params, num_columns, mut params, columns, warnings) = match &route.action {
            Action::Query(plan) => {
                let shard = self.target_shards(&plan.targets, &cfg)[0];
                let cluster = self.shared.cluster.load_full();
                let mut h = self.lease(shard, plan.role, &cfg, &cluster).await?;
                let r = h.conn.prepare_with_room(&sql).await;
                if let Ok(p) = &r {
                    h.conn.remember_prepared(sql.clone(), p.id);
                }
                self.finish(h);
                let p = r?;
                (p.num_params, p.num_columns, p.params, p.columns, p.warnings)
            }
            Action::Error(e) => return Err(e.clone().into()),
            Action::LastInsertId { column } => {
                // Answered by the session at EXECUTE, like the text form.
                let (name, ty, charset, flags) = super::local::last_insert_id_column(column);
                let mut def = bytes::BytesMut::new();
                wire::put_column_def_flags(&mut def, name, ty, charset, flags);
                (0, 1, Vec::new(), vec![def], 0)
            }
            Action::ShowRoute(_) | Action::Kill { .. } | Action::Admin(_) => {
                return Err(MyErr::not_supported(
                    "This statement cannot be prepared through shardgate; send it as a plain query",
                )
                .into())
            }
            _ => {
                if sql.contains('?') {
                    return Err(MyErr::not_supported("Placeholders in transaction, SET and USE statements are not supported by shardgate; send it as a plain query").into());
                }
                (0, 0, Vec::new(), Vec::new(), 0)
            }
        };
        if let Some(f) = &sequence {
            // The client sees its own placeholders, not the ids the proxy binds.
            let client: Vec<bool> = f.slots.iter().map(|s| matches!(s, Slot::Client { .. })).collect();
            if params.len() == client.len() {
                params = params.into_iter().zip(&client).filter(|(_, c)| **c).map(|(p, _)| p).collect();
            }
            num_params = client.iter().filter(|c| **c).count() as u16;
        }
        let id = self.next_stmt_id;
        self.next_stmt_id = self.next_stmt_id.wrapping_add(1).max(1);
        let mut seq = self.seq;
        self.wr.push_with(&mut seq, |b| {
            b.put_u8(0);
            b.put_u32_le(id);
            b.put_u16_le(num_columns);
            b.put_u16_le(num_params);
            b.put_u8(0);
            b.put_u16_le(warnings);
        });
        let status = self.status();
        for defs in [&params, &columns] {
            for d in defs.iter() {
                self.wr.push(&mut seq, d);
            }
            if !defs.is_empty() && !self.deprecate_eof {
                self.wr.push_with(&mut seq, |b| wire::put_eof(b, 0, status));
            }
        }
        self.seq = seq;
        self.stmts.insert(
            id,
            ProxyStmt {
                sql,
                route,
                num_params,
                num_columns,
                types: None,
                long_data: vec![None; usize::from(num_params)],
                sequence,
            },
        );
        Ok(())
    }

    /// COM_STMT_EXECUTE, counted and timed like a COM_QUERY.
    pub(crate) async fn com_stmt_execute(&mut self, body: &[u8]) -> Result<(), Failure> {
        let started = std::time::Instant::now();
        self.stmt_class = StmtClass::default();
        let result = self.stmt_execute(body).await;
        self.shared.metrics.statement(self.stmt_class, started);
        result
    }

    async fn stmt_execute(&mut self, body: &[u8]) -> Result<(), Failure> {
        let id = body
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| MyErr::malformed("COM_STMT_EXECUTE"))?;
        let cfg = self.shared.config.load();
        let Some(stmt) = self.stmts.get_mut(&id) else {
            return Err(MyErr::unknown_stmt(id, "mysqld_stmt_execute").into());
        };
        let n = usize::from(stmt.num_params);
        let mut pos = 9; // id, flags, iteration count
        let mut tail = Vec::with_capacity(body.len());
        let mut keys = vec![KeyValue::Null; n];
        // (type, unsigned, value range in body) per bound parameter, for statements run as text.
        let mut spans: Vec<Option<(u8, bool, std::ops::Range<usize>)>> = vec![None; n];
        // A sequence statement's values are re-laid for the backend: note where each one is.
        let sequence = stmt.sequence.clone();
        let mut values: Vec<Option<std::ops::Range<usize>>> = Vec::new();
        let mut client_types = Vec::new();
        if n > 0 {
            let bitmap_len = n.div_ceil(8);
            let bitmap = body.get(pos..pos + bitmap_len).ok_or_else(|| MyErr::malformed("null bitmap"))?.to_vec();
            pos += bitmap_len;
            let bound = *body.get(pos).ok_or_else(|| MyErr::malformed("new-params-bound flag"))?;
            pos += 1;
            if bound == 1 {
                let types = body.get(pos..pos + 2 * n).ok_or_else(|| MyErr::malformed("parameter types"))?;
                stmt.types = Some(types.to_vec());
                pos += 2 * n;
            }
            let types = stmt.types.clone().ok_or_else(|| MyErr::malformed("parameters were never bound"))?;
            let values_start = pos;
            for (i, key) in keys.iter_mut().enumerate() {
                if bitmap[i / 8] & (1 << (i % 8)) != 0 || stmt.long_data[i].is_some() {
                    *key = if stmt.long_data[i].is_some() { KeyValue::Other } else { KeyValue::Null };
                    if sequence.is_some() {
                        values.push(None);
                    }
                    continue;
                }
                let ty = types[2 * i];
                let len = value_len(ty, body, pos).ok_or_else(|| MyErr::malformed("parameter value"))?;
                let v = body.get(pos..pos + len).ok_or_else(|| MyErr::malformed("parameter value"))?;
                *key = key_value(ty, types[2 * i + 1] & 0x80 != 0, v);
                spans[i] = Some((ty, types[2 * i + 1] & 0x80 != 0, pos..pos + len));
                if sequence.is_some() {
                    values.push(Some(pos..pos + len));
                }
                pos += len;
            }
            if sequence.is_some() {
                client_types = types.clone();
            }
            tail.extend_from_slice(&bitmap);
            tail.push(1);
            tail.extend_from_slice(&types);
            tail.extend_from_slice(&body[values_start..pos]);
        }
        let long_data: Vec<(u16, Vec<u8>)> =
            stmt.long_data.iter_mut().enumerate().filter_map(|(i, d)| d.take().map(|d| (i as u16, d))).collect();
        if let Some(seq) = sequence {
            let route = stmt.route.clone();
            let sql = stmt.sql.clone();
            let bound = super::sequence::Bound { body, types: &client_types, values: &values, keys: &keys };
            return self.execute_with_sequence(&seq, &route, sql, &bound, long_data, &cfg).await;
        }
        let action = router::route_execute(&stmt.route, &keys, &cfg);
        let sql = stmt.sql.clone();
        match action {
            Action::Query(plan) if matches!(plan.merge, router::Merge::Rows(_)) => {
                // Values that span shards and a result that needs a merge: the merge
                // rewrites the statement, so it runs as text with the values written in.
                let mut params = Vec::with_capacity(n);
                for (i, span) in spans.into_iter().enumerate() {
                    params.push(match (span, long_data.iter().find(|(p, _)| usize::from(*p) == i)) {
                        (_, Some((_, data))) => Param::Long(data),
                        (Some((ty, unsigned, r)), None) => Param::Value { ty, unsigned, bytes: &body[r] },
                        (None, None) => Param::Null,
                    });
                }
                let escapes = !self.no_backslash_escapes();
                let text = interpolate(&sql, &params, escapes).map_err(|e| MyErr::new(1210, "HY000", e))?;
                match self.route_with_catalog(&text, &cfg) {
                    Action::Query(p) if matches!(p.merge, router::Merge::Rows(_)) => {
                        self.run_plan(&p, super::execute::Cmd::QueryBinary(text.as_bytes()), &cfg).await
                    }
                    Action::Error(e) => Err(e.into()),
                    _ => Err(MyErr::not_supported(
                        "this prepared statement's values need a cross-shard merge that shardgate could not plan; send it as a plain query",
                    )
                    .into()),
                }
            }
            Action::Query(plan) => {
                let req = ExecRequest { sql, tail, long_data };
                self.run_plan(&plan, super::execute::Cmd::Execute(&req), &cfg).await
            }
            Action::LastInsertId { column } => {
                self.stmt_class = StmtClass { kind: Kind::Read, route: Route::Admin };
                self.send_last_insert_id(&column, true);
                Ok(())
            }
            other => self.run_action(other, sql.as_bytes(), &sql.clone(), &cfg).await,
        }
    }

    /// Queue SEND_LONG_DATA and EXECUTE on one backend connection.
    pub(crate) async fn queue_execute(&mut self, h: &mut Held, req: &ExecRequest) -> Result<(), BackendError> {
        let backend_id = h.conn.ensure_prepared(&req.sql).await?;
        for (param, data) in &req.long_data {
            let mut p = Vec::with_capacity(6 + data.len());
            p.extend_from_slice(&backend_id.to_le_bytes());
            p.extend_from_slice(&param.to_le_bytes());
            p.extend_from_slice(data);
            h.conn.queue_command_parts(command::STMT_SEND_LONG_DATA, &p);
        }
        let mut p = Vec::with_capacity(9 + req.tail.len());
        p.extend_from_slice(&backend_id.to_le_bytes());
        p.push(0); // no cursor: results are streamed
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&req.tail);
        h.conn.queue_command_parts(command::STMT_EXECUTE, &p);
        Ok(())
    }

    pub(crate) fn com_stmt_send_long_data(&mut self, body: &[u8]) -> Result<(), Failure> {
        // No reply, even on error (the error is reported at EXECUTE).
        if body.len() < 6 {
            return Ok(());
        }
        let id = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
        let param = usize::from(u16::from_le_bytes([body[4], body[5]]));
        let max = self.max_packet;
        if let Some(stmt) = self.stmts.get_mut(&id) {
            if let Some(slot) = stmt.long_data.get_mut(param) {
                let buf = slot.get_or_insert_with(Vec::new);
                if buf.len() + body.len() - 6 <= max {
                    buf.extend_from_slice(&body[6..]);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn com_stmt_close(&mut self, body: &[u8]) {
        if let Some(b) = body.get(..4) {
            self.stmts.remove(&u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        }
    }

    pub(crate) fn com_stmt_reset(&mut self, body: &[u8]) -> Result<(), Failure> {
        let id = body
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| MyErr::malformed("COM_STMT_RESET"))?;
        let Some(stmt) = self.stmts.get_mut(&id) else {
            return Err(MyErr::unknown_stmt(id, "mysqld_stmt_reset").into());
        };
        for d in &mut stmt.long_data {
            *d = None;
        }
        self.send_ok(OkInfo::default());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_doubles_and_floats_place_like_integers() {
        assert_eq!(key_value(0x05, false, &11.0f64.to_le_bytes()), KeyValue::Int(11));
        assert_eq!(key_value(0x05, false, &(-3.0f64).to_le_bytes()), KeyValue::Int(-3));
        assert_eq!(key_value(0x04, false, &7.0f32.to_le_bytes()), KeyValue::Int(7));
        assert_eq!(key_value(0x05, false, &11.5f64.to_le_bytes()), KeyValue::Other);
        assert_eq!(key_value(0x05, false, &1e300f64.to_le_bytes()), KeyValue::Other);
        assert_eq!(key_value(0x05, false, &f64::NAN.to_le_bytes()), KeyValue::Other);
    }
}
