//! Running a cross-shard merge: read every shard's header, check the columns,
//! send the client's header, then feed the shards' rows to a
//! [`crate::merge::Pipeline`] in merge order (k-way when ordered) and send
//! what comes out. Rows are never all held: one head row per shard, plus
//! the pipeline's bounded buffers.

use std::sync::Arc;

use bytes::BytesMut;
use futures_util::stream::{FuturesUnordered, StreamExt};

use super::errors::{Failure, MyErr};
use super::relay::Outcome;
use super::session::{Session, FLUSH_AT};
use super::txn::Held;
use super::Shared;
use crate::backend::state::SessionVars;
use crate::backend::BackendError;
use crate::merge::value::ColMeta;
use crate::merge::{MergeError, MergeSpec, Pipeline, Row, Schema};
use crate::protocol::response::{Event, ResponseScanner};
use crate::protocol::wire::{self, OkInfo, STATUS_IN_TRANS, STATUS_MORE_RESULTS};

impl From<MergeError> for MyErr {
    fn from(e: MergeError) -> Self {
        MyErr::new(e.code, e.sqlstate, e.message)
    }
}

/// One shard's response as the merge reads it.
struct Stream {
    scanner: ResponseScanner,
    columns: usize,
    /// The response was read to its end.
    done: bool,
}

impl Session {
    /// `binary`: the client asked with COM_STMT_EXECUTE, rows go out in the binary protocol.
    pub(crate) async fn relay_merge(
        &mut self,
        leases: &mut [Held],
        spec: &Arc<MergeSpec>,
        binary: bool,
    ) -> Result<Outcome, Failure> {
        let mut streams: Vec<Stream> = leases
            .iter()
            .map(|_| Stream { scanner: ResponseScanner::query(self.deprecate_eof), columns: 0, done: false })
            .collect();
        let mut sum = OkInfo::default();
        let mut any_in_tx = false;

        // Headers, read from every shard at once: the first error stops the wait
        // for the others (whose queries are then cancelled). The first shard's
        // column definitions are sent on.
        let deprecate = self.deprecate_eof;
        let mut defs: Vec<BytesMut> = Vec::new();
        let mut columns: Option<usize> = None;
        let mut first_err: Option<MyErr> = None;
        {
            let mut pending: FuturesUnordered<_> = leases
                .iter_mut()
                .zip(streams.iter_mut())
                .enumerate()
                .map(|(i, (held, st))| async move {
                    let mut d = Vec::new();
                    let r = read_header(held, st, i == 0, deprecate, &mut d).await;
                    (r, d)
                })
                .collect();
            while let Some((r, d)) = pending.next().await {
                match r {
                    Ok(n) => {
                        if columns.is_some_and(|c| c != n) {
                            first_err.get_or_insert(MyErr::new(
                                1105,
                                "HY000",
                                "shards returned different columns for the same statement; \
                                 check that the table has the same definition on every shard",
                            ));
                            break;
                        }
                        columns.get_or_insert(n);
                        if !d.is_empty() {
                            defs = d;
                        }
                    }
                    Err(e) => {
                        first_err.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        let built = match (first_err, columns) {
            (Some(e), _) => Err(e),
            (None, Some(total)) => self.build_pipeline(spec, &defs, total).await,
            (None, None) => Err(MyErr::new(1105, "HY000", "no shard answered the merge")),
        };
        let mut pipeline = match built {
            Ok(p) => p,
            Err(e) => {
                if self.tx.is_some() || leases.iter().any(|h| h.in_tx) {
                    drain(leases, &mut streams).await;
                } else {
                    cancel(leases, &streams);
                }
                return Err(e.into());
            }
        };
        let visible = pipeline.schema().visible;

        let mut seq = self.seq;
        self.wr.push_with(&mut seq, |b| wire::put_lenenc_int(b, visible as u64));
        for d in defs.iter().take(visible) {
            self.wr.push(&mut seq, d);
        }
        if !self.deprecate_eof {
            let status = self.fix_status(0, false);
            self.wr.push_with(&mut seq, |b| wire::put_eof(b, 0, status));
        }

        // Rows.
        let mut flushed = false;
        let mut out: Vec<Row> = Vec::new();
        let result: Result<(), MergeOrIo> = async {
            let n = leases.len();
            if spec.order.is_empty() {
                'shards: for i in 0..n {
                    while let Some(row) = next_row(&mut leases[i], &mut streams[i], &mut sum, &mut any_in_tx).await? {
                        self.shared.resolve_pads(&mut pipeline, &row).await?;
                        if self.feed(&mut pipeline, row, &mut out, &mut seq, binary, &mut flushed).await? {
                            break 'shards;
                        }
                    }
                }
            } else {
                let mut heads: Vec<Option<Row>> = Vec::with_capacity(n);
                for i in 0..n {
                    heads.push(next_row(&mut leases[i], &mut streams[i], &mut sum, &mut any_in_tx).await?);
                }
                for h in heads.iter().flatten() {
                    self.shared.resolve_pads(&mut pipeline, h).await?;
                }
                while let Some(i) = pipeline.first_of(&heads)? {
                    let row = heads[i].take().expect("the chosen head");
                    if self.feed(&mut pipeline, row, &mut out, &mut seq, binary, &mut flushed).await? {
                        break;
                    }
                    heads[i] = next_row(&mut leases[i], &mut streams[i], &mut sum, &mut any_in_tx).await?;
                }
            }
            pipeline.finish(&mut out)?;
            self.emit(&mut seq, &mut out, &pipeline, binary, &mut flushed).await?;
            Ok(())
        }
        .await;

        // Whatever the shards still send: read it (LIMIT pushed down: little is
        // left) or cancel those queries and close their connections.
        let mut drain_err = None;
        // In a transaction a connection cannot be dropped without losing the
        // transaction: there, everything is read.
        let in_tx = self.tx.is_some() || leases.iter().any(|h| h.in_tx);
        let read_rest = in_tx || (result.is_ok() && spec.limit_pushed);
        if !read_rest {
            cancel(leases, &streams);
        }
        for (held, st) in leases.iter_mut().zip(streams.iter_mut()) {
            if st.done || held.conn.broken {
                continue;
            }
            {
                loop {
                    match next_row(held, st, &mut sum, &mut any_in_tx).await {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(e) => {
                            drain_err.get_or_insert(e);
                            held.conn.broken = true;
                            break;
                        }
                    }
                }
            }
        }
        let emitted = pipeline.emitted();
        let status = self.fix_status(0, any_in_tx);
        sum.status = status;
        match result.and(drain_err.map_or(Ok(()), |e| Err(MergeOrIo::Err(e)))) {
            Ok(()) => {
                self.end_result_set(&mut seq, &sum);
                Ok(Outcome { ok: sum, error: false, err: None, result_set: true, rows: emitted })
            }
            Err(MergeOrIo::ClientGone(reason)) => Err(Failure::Close(reason)),
            Err(MergeOrIo::Err(e)) => {
                if !flushed {
                    self.wr.discard();
                    return Err(e.into());
                }
                // Rows already reached the client: an ERR may end a result set.
                self.seq = seq;
                self.send_err(&e);
                Ok(Outcome { ok: sum, error: true, err: Some(e), result_set: true, rows: emitted })
            }
        }
    }

    async fn build_pipeline(&self, spec: &Arc<MergeSpec>, defs: &[BytesMut], total: usize) -> Result<Pipeline, MyErr> {
        let visible = total.checked_sub(spec.hidden).ok_or_else(|| {
            MyErr::new(
                1105,
                "HY000",
                "shards returned fewer columns than the merge added; is a table definition different?",
            )
        })?;
        let metas: Vec<ColMeta> = defs
            .iter()
            .map(|d| ColMeta::parse(d))
            .collect::<Option<_>>()
            .ok_or_else(|| MyErr::new(1105, "HY000", "malformed column definition from a shard"))?;
        let budget = (self.shared.config.load().proxy.merge_memory_mb as usize) << 20;
        Ok(Pipeline::new(spec.clone(), Schema { visible, metas, pads: Vec::new() }, budget)?)
    }

    /// Push one shard row through the pipeline and send what it finished.
    /// `true` when the client has all the rows it asked for.
    async fn feed(
        &mut self,
        pipeline: &mut Pipeline,
        row: Row,
        out: &mut Vec<Row>,
        seq: &mut u8,
        binary: bool,
        flushed: &mut bool,
    ) -> Result<bool, MergeOrIo> {
        pipeline.push(row, out)?;
        self.emit(seq, out, pipeline, binary, flushed).await?;
        Ok(pipeline.satisfied())
    }

    /// Send finished rows (hidden columns cut off), as text or binary rows.
    async fn emit(
        &mut self,
        seq: &mut u8,
        out: &mut Vec<Row>,
        pipeline: &Pipeline,
        binary: bool,
        flushed: &mut bool,
    ) -> Result<(), MergeOrIo> {
        let schema = pipeline.schema();
        for row in out.drain(..) {
            if binary {
                let mut b = bytes::BytesMut::with_capacity(row.prefix(schema.visible).len() + 8);
                crate::merge::binary::put_row(&mut b, &row, &schema.metas, schema.visible)?;
                self.wr.push(seq, &b);
            } else {
                self.wr.push(seq, row.prefix(schema.visible));
            }
        }
        if self.wr.pending() >= FLUSH_AT {
            self.wr.flush().await.map_err(|e| MergeOrIo::ClientGone(e.to_string()))?;
            *flushed = true;
        }
        Ok(())
    }
}

enum MergeOrIo {
    Err(MyErr),
    ClientGone(String),
}

impl From<MergeError> for MergeOrIo {
    fn from(e: MergeError) -> Self {
        MergeOrIo::Err(e.into())
    }
}

impl From<MyErr> for MergeOrIo {
    fn from(e: MyErr) -> Self {
        MergeOrIo::Err(e)
    }
}

/// Close the connections whose responses were not read to the end (no
/// half-read connection is pooled), and stop their queries with KILL QUERY on
/// another connection, so a long sort does not run on for nothing.
fn cancel(leases: &mut [Held], streams: &[Stream]) {
    for (h, s) in leases.iter_mut().zip(streams) {
        if !s.done {
            h.conn.broken = true;
            let (backend, thread) = (h.backend.clone(), h.conn.thread_id);
            tokio::spawn(async move {
                if let Ok(mut c) = backend.pool.get(0, &SessionVars::empty()).await {
                    if c.query(&format!("KILL QUERY {thread}")).await.is_ok() {
                        c.release();
                    }
                }
            });
        }
    }
}

/// Read every unfinished response to its end (connections that must stay usable).
async fn drain(leases: &mut [Held], streams: &mut [Stream]) {
    for (h, st) in leases.iter_mut().zip(streams.iter_mut()) {
        while !st.done && !h.conn.broken && !st.scanner.done() {
            let ok = match h.conn.next_frame().await {
                Ok(frame) => st.scanner.feed(frame.payload()).is_ok(),
                Err(_) => false,
            };
            if !ok {
                h.conn.broken = true;
            }
        }
        st.done = true;
    }
}

fn backend_err(held: &mut Held, e: BackendError) -> MyErr {
    held.conn.broken = true;
    MyErr::from_backend(&e)
}

/// Read a result set's header; returns its column count. Column definition
/// payloads are kept from the first shard.
async fn read_header(
    held: &mut Held,
    st: &mut Stream,
    keep: bool,
    deprecate_eof: bool,
    defs: &mut Vec<BytesMut>,
) -> Result<usize, MyErr> {
    let mut count = None;
    let mut seen = 0usize;
    loop {
        let frame = held.conn.next_frame().await.map_err(|e| backend_err(held, e))?;
        let ev = st
            .scanner
            .feed(frame.payload())
            .map_err(|m| backend_err(held, BackendError::Protocol { addr: held.conn.addr.clone(), what: m.0 }))?;
        match ev {
            Event::ColumnCount(n) => {
                count = Some(n as usize);
                st.columns = n as usize;
            }
            Event::ColumnDef => {
                if keep {
                    let mut b = frame.bytes;
                    let _ = b.split_to(4);
                    defs.push(b);
                }
                seen += 1;
                if deprecate_eof && Some(seen) == count {
                    return Ok(seen);
                }
            }
            Event::ColumnsEof(_) => return count.ok_or_else(|| MyErr::new(1105, "HY000", "EOF before columns")),
            Event::Err => {
                st.done = true;
                return Err(wire::parse_err(frame.payload())
                    .map(MyErr::from_server)
                    .unwrap_or_else(|| MyErr::new(1105, "HY000", "malformed error from backend")));
            }
            Event::Ok(_) => {
                st.done = true;
                return Err(MyErr::new(1105, "HY000", "a shard answered a merged SELECT without a result set"));
            }
            _ => {
                return Err(backend_err(
                    held,
                    BackendError::Protocol {
                        addr: held.conn.addr.clone(),
                        what: "unexpected frame in a result set header",
                    },
                ))
            }
        }
    }
}

/// The next row of one shard, or `None` at the end of its result set.
async fn next_row(
    held: &mut Held,
    st: &mut Stream,
    sum: &mut OkInfo,
    any_in_tx: &mut bool,
) -> Result<Option<Row>, MyErr> {
    if st.done {
        return Ok(None);
    }
    let frame = held.conn.next_frame().await.map_err(|e| {
        st.done = true;
        backend_err(held, e)
    })?;
    let ev = st.scanner.feed(frame.payload()).map_err(|m| {
        st.done = true;
        backend_err(held, BackendError::Protocol { addr: held.conn.addr.clone(), what: m.0 })
    })?;
    match ev {
        Event::Row => {
            let columns = st.columns;
            let payload = frame.bytes.freeze().slice(4..);
            Ok(Some(Row::parse(payload, columns)?))
        }
        Event::ResultEnd(ok) => {
            st.done = true;
            held.conn.status = ok.status;
            *any_in_tx |= ok.status & STATUS_IN_TRANS != 0;
            sum.warnings = sum.warnings.saturating_add(ok.warnings);
            if ok.status & STATUS_MORE_RESULTS != 0 {
                held.conn.broken = true;
                return Err(MyErr::not_supported("multiple result sets from a statement that runs on several shards"));
            }
            Ok(None)
        }
        Event::Err => {
            st.done = true;
            Err(wire::parse_err(frame.payload())
                .map(MyErr::from_server)
                .unwrap_or_else(|| MyErr::new(1105, "HY000", "malformed error from backend")))
        }
        Event::Continuation => {
            held.conn.broken = true;
            st.done = true;
            Err(MyErr::not_supported("rows of 16 MiB or more in a cross-shard merge"))
        }
        _ => {
            st.done = true;
            Err(backend_err(
                held,
                BackendError::Protocol { addr: held.conn.addr.clone(), what: "unexpected frame among rows" },
            ))
        }
    }
}

impl Shared {
    /// Give the pipeline the space weights of the collations this row names.
    async fn resolve_pads(&self, pipeline: &mut Pipeline, row: &Row) -> Result<(), MyErr> {
        for (w, name) in pipeline.unresolved(row) {
            let pad = self.pad_weight(&name).await?;
            pipeline.resolve(w, pad);
        }
        Ok(())
    }

    /// The weight of a space in collation `name` (`None` for NO PAD and
    /// binary collations), asked of the default shard once per collation.
    pub async fn pad_weight(&self, name: &str) -> Result<Option<Arc<[u8]>>, MyErr> {
        if let Some(w) = self.pad_weights.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(w);
        }
        let learn_err = |e: &dyn std::fmt::Display| {
            MyErr::new(
                1105,
                "HY000",
                format!("shardgate could not learn collation {name} for a cross-shard merge: {e}"),
            )
        };
        let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident(name) || name == "binary" || name.contains("nopad") || name.contains("_0900_") {
            return Ok(None);
        }
        let cfg = self.config.load();
        let cluster = self.cluster.load_full();
        let nodes = &cluster.shards[cfg.default_shard];
        let backend = nodes.pick_replica().unwrap_or(&nodes.primary).clone();
        let mut conn = backend.pool.get(0, &SessionVars::empty()).await.map_err(|e| learn_err(&e))?;
        let result = async {
            let (_, rows) = conn
                .query(&format!(
                    "SELECT CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME = '{name}'"
                ))
                .await?;
            let cs = rows.into_iter().next().and_then(|r| r.into_iter().next().flatten());
            let Some(cs) = cs.map(|c| String::from_utf8_lossy(&c).into_owned()) else { return Ok(None) };
            if !ident(&cs) {
                return Ok(None);
            }
            let (_, rows) =
                conn.query(&format!("SELECT WEIGHT_STRING(CONVERT(' ' USING {cs}) COLLATE {name})")).await?;
            Ok(rows.into_iter().next().and_then(|r| r.into_iter().next().flatten()).map(|w| Arc::from(w.as_slice())))
        }
        .await;
        conn.release();
        let w: Option<Arc<[u8]>> = result.map_err(|e: BackendError| learn_err(&e))?;
        if let Ok(mut m) = self.pad_weights.lock() {
            m.insert(name.to_owned(), w.clone());
        }
        Ok(w)
    }
}
