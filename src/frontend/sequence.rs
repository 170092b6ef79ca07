//! Global sequences, the I/O part: ids for `[[tables]] sequence` columns.
//!
//! Ids come in blocks from one row per table in `shardgate_sequences` on the
//! default shard's primary (created if missing). One autocommit statement
//! reserves a block for this proxy process:
//!
//! ```sql
//! UPDATE shardgate_sequences SET next_id = LAST_INSERT_ID(GREATEST(next_id, E) + N) WHERE name = 't'
//! ```
//!
//! (`E`: the end of this process's previous block.) The row lock serialises
//! proxies, and the new value comes back in the OK packet (and from `SELECT
//! LAST_INSERT_ID()` on the same connection), so two proxies never get the
//! same block. The block lives in memory ([`Sequences`]); the sessions of this
//! process take ids from it under one async mutex per table, so concurrent
//! inserts share a block and only the session that finds it empty allocates.
//! A table's first allocation creates its row above the largest value already
//! stored on any shard.
//!
//! The pure part (which INSERTs need ids, the filled-in text) is
//! `router::sequence`.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::errors::{Failure, MyErr};
use super::execute::Cmd;
use super::prepared::ExecRequest;
use super::session::Session;
use crate::backend::cluster::Cluster;
use crate::backend::control::Rows;
use crate::backend::state::SessionVars;
use crate::config::Config;
use crate::protocol::wire::OkInfo;
use crate::router::sequence::Slot;
use crate::router::{self, sequence, Action, KeyValue, PreparedRoute};

/// This process's reserved ids, per sequence.
#[derive(Default)]
pub struct Sequences {
    blocks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Block>>>>,
    /// `shardgate_sequences` is known to exist.
    table_ready: AtomicBool,
}

/// Ids `next..end` are reserved for this process and not handed out yet.
#[derive(Debug, Default)]
struct Block {
    next: u64,
    end: u64,
}

impl Sequences {
    fn block(&self, name: &str) -> Arc<tokio::sync::Mutex<Block>> {
        let mut map = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_owned()).or_default().clone()
    }
}

/// A statement whose sequence ids are filled in.
pub(crate) struct Filled {
    pub sql: String,
    /// The first generated id: what the client's OK packet and LAST_INSERT_ID() report.
    pub first_id: u64,
}

/// The parameters a client bound at COM_STMT_EXECUTE, in its own numbering.
pub(crate) struct Bound<'a> {
    /// The EXECUTE payload the values are in.
    pub body: &'a [u8],
    /// Two bytes per parameter (type, flags).
    pub types: &'a [u8],
    /// Each value's bytes in `body`; `None` for NULL and long data.
    pub values: &'a [Option<Range<usize>>],
    /// Each value as the router reads it (`Null` for NULL, `Other` for long data).
    pub keys: &'a [KeyValue],
}

/// COM_STMT_SEND_LONG_DATA chunks: (parameter, data).
type LongData = Vec<(u16, Vec<u8>)>;

/// BIGINT UNSIGNED, as an id is bound.
const ID_TYPE: [u8; 2] = [0x08, 0x80];

impl Bound<'_> {
    /// The backend's parameters for `slots`: the EXECUTE tail (null bitmap,
    /// bound flag, types, values), the routing values, and long data moved to
    /// the backend numbering. Ids `first_id, first_id + 1, ...` go where `is_id`.
    fn relay(
        &self,
        slots: &[Slot],
        is_id: impl Fn(&Slot) -> bool,
        first_id: u64,
        long_data: LongData,
    ) -> Result<(Vec<u8>, Vec<KeyValue>, LongData), Failure> {
        let malformed = || Failure::from(MyErr::malformed("parameters of a sequence statement"));
        let mut bitmap = vec![0u8; slots.len().div_ceil(8)];
        let mut types = Vec::with_capacity(2 * slots.len());
        let mut values = Vec::new();
        let mut keys = Vec::with_capacity(slots.len());
        let mut moved = Vec::new();
        let mut next = first_id;
        for (j, slot) in slots.iter().enumerate() {
            match *slot {
                Slot::Client { n, .. } if !is_id(slot) => {
                    types.extend_from_slice(self.types.get(2 * n..2 * n + 2).ok_or_else(malformed)?);
                    let key = self.keys.get(n).ok_or_else(malformed)?;
                    match self.values.get(n).ok_or_else(malformed)? {
                        Some(r) => values.extend_from_slice(self.body.get(r.clone()).ok_or_else(malformed)?),
                        None if *key == KeyValue::Null => bitmap[j / 8] |= 1 << (j % 8),
                        None => {}
                    }
                    keys.push(key.clone());
                    let j = u16::try_from(j).map_err(|_| malformed())?;
                    moved.extend(long_data.iter().filter(|(p, _)| usize::from(*p) == n).map(|(_, d)| (j, d.clone())));
                }
                _ => {
                    types.extend_from_slice(&ID_TYPE);
                    values.extend_from_slice(&next.to_le_bytes());
                    keys.push(KeyValue::UInt(next));
                    next += 1;
                }
            }
        }
        let mut tail = bitmap;
        tail.push(1);
        tail.extend_from_slice(&types);
        tail.extend_from_slice(&values);
        Ok((tail, keys, moved))
    }
}

/// The name of the table that holds the sequences (on the default shard).
pub const SEQUENCES_TABLE: &str = "shardgate_sequences";

fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

impl Session {
    /// For an INSERT / REPLACE that needs ids from a sequence: allocate them and
    /// return the statement with the ids filled in. `Ok(None)` for every other statement.
    pub(crate) async fn fill_sequence(&mut self, text: &str, cfg: &Arc<Config>) -> Result<Option<Filled>, Failure> {
        let Some(fill) = self.sequence_analysis(text, cfg, false).await? else { return Ok(None) };
        let first_id = self.next_ids(&fill, fill.count, cfg).await?;
        let ids: Vec<u64> = (first_id..first_id + fill.count as u64).collect();
        Ok(Some(Filled { sql: fill.fill(text, &ids), first_id }))
    }

    /// [`sequence::analyze`] (or `analyze_prepared`) with the learned column
    /// order, learning it first when the INSERT has no column list.
    pub(crate) async fn sequence_analysis(
        &self,
        text: &str,
        cfg: &Arc<Config>,
        prepare: bool,
    ) -> Result<Option<sequence::SequenceFill>, Failure> {
        if !sequence::might_need(text, cfg) {
            return Ok(None);
        }
        let analyze = |me: &Self| {
            let catalog = me.shared.catalog.load_full();
            let mut view = me.view();
            view.catalog = Some(&catalog);
            if prepare {
                sequence::analyze_prepared(text, cfg, &view)
            } else {
                sequence::analyze(text, cfg, &view)
            }
        };
        let mut fill = analyze(self);
        if matches!(&fill, Err(e) if e.message.contains(router::NEEDS_COLUMN_LIST))
            && self.shared.refresh_catalog().await.is_ok()
        {
            fill = analyze(self);
        }
        Ok(fill?)
    }

    /// EXECUTE of a prepared INSERT into a table with a sequence: bind the
    /// client's values and the ids (for the missing column, and for a NULL or
    /// 0 bound to it) to the backend statement's placeholders, then route.
    pub(crate) async fn execute_with_sequence(
        &mut self,
        fill: &sequence::SequenceFill,
        route: &PreparedRoute,
        sql: Arc<str>,
        bound: &Bound<'_>,
        long_data: LongData,
        cfg: &Arc<Config>,
    ) -> Result<(), Failure> {
        let generates =
            |n: usize| matches!(bound.keys.get(n), Some(KeyValue::Null | KeyValue::Int(0) | KeyValue::UInt(0)));
        let is_id = |s: &Slot| match *s {
            Slot::Id => true,
            Slot::Client { n, sequence } => sequence && generates(n),
        };
        let needed = fill.slots.iter().filter(|s| is_id(s)).count();
        let first_id = if needed > 0 { self.next_ids(fill, needed, cfg).await? } else { 0 };
        let (tail, keys, long_data) = bound.relay(&fill.slots, is_id, first_id, long_data)?;
        let action = router::route_execute(route, &keys, cfg);
        let Action::Query(plan) = action else {
            return self.run_action(action, sql.as_bytes(), &sql.clone(), cfg).await;
        };
        let req = ExecRequest { sql, tail, long_data };
        self.insert_id_override = (needed > 0).then_some(first_id);
        let result = self.run_plan(&plan, Cmd::Execute(&req), cfg).await;
        self.insert_id_override = None;
        result
    }

    /// Take `n` consecutive ids from this process's block, reserving a new
    /// block when it has too few left. Returns the first.
    async fn next_ids(&self, fill: &sequence::SequenceFill, n: usize, cfg: &Config) -> Result<u64, Failure> {
        let n = n as u64;
        let block = self.shared.sequences.block(&fill.name);
        let mut b = block.lock().await;
        if b.end - b.next < n {
            let size = cfg.proxy.sequence_block.max(n);
            let end = self.reserve(fill, size, b.end, cfg).await?;
            let start = end - size;
            // A block right after the current one extends it (no gap); otherwise
            // the rest of the current one is given up.
            if start != b.end {
                b.next = start;
            }
            b.end = end;
        }
        let first = b.next;
        b.next += n;
        Ok(first)
    }

    /// Reserve `size` ids of a sequence in `shardgate_sequences`; returns the end
    /// (exclusive) of the reserved range.
    /// Never below `floor`, the end of this process's last block: should the row
    /// have gone back (a failover that lost its last update), this process at
    /// least does not hand out its own ids again.
    async fn reserve(
        &self,
        fill: &sequence::SequenceFill,
        size: u64,
        floor: u64,
        cfg: &Config,
    ) -> Result<u64, Failure> {
        let table = format!("{}.{SEQUENCES_TABLE}", quote_ident(&cfg.backend.database));
        let name = quote_str(&fill.name);
        let context = |f: Failure| match f {
            Failure::Err(mut e) => {
                e.message = format!(
                    "shardgate: cannot reserve ids for sequence {} in {SEQUENCES_TABLE} on the default shard {}: {}",
                    fill.name, cfg.shards[cfg.default_shard].name, e.message
                );
                Failure::Err(e)
            }
            close => close,
        };
        if !self.shared.sequences.table_ready.load(Ordering::Acquire) {
            let create = format!(
                "CREATE TABLE IF NOT EXISTS {table} (name VARCHAR(64) NOT NULL PRIMARY KEY, \
                 next_id BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB"
            );
            self.on_primary(cfg.default_shard, cfg, &[&create]).await.map_err(context)?;
            self.shared.sequences.table_ready.store(true, Ordering::Release);
        }
        let update = format!(
            "UPDATE {table} SET next_id = LAST_INSERT_ID(GREATEST(next_id, {floor}) + {size}) WHERE name = {name}"
        );
        for first_use in [true, false] {
            // The OK of the UPDATE carries the new value, and SELECT LAST_INSERT_ID()
            // on the same connection reads it back, should a server not send it.
            let results = self.on_primary(cfg.default_shard, cfg, &[&update, "SELECT LAST_INSERT_ID()"]).await;
            let results = results.map_err(|e| {
                // Perhaps the table was dropped: create it again next time.
                self.shared.sequences.table_ready.store(false, Ordering::Release);
                context(e)
            })?;
            let (ok, _) = &results[0];
            if ok.affected_rows == 1 {
                let selected = results[1].1.first().and_then(|r| r.first()).and_then(|c| c.as_deref());
                let end = match ok.last_insert_id {
                    0 => selected.and_then(|c| std::str::from_utf8(c).ok()?.parse::<u64>().ok()).unwrap_or(0),
                    id => id,
                };
                if end <= size {
                    break;
                }
                return Ok(end);
            }
            if !first_use {
                break;
            }
            // The sequence's first use: start above every value already stored.
            let start = self.max_stored(fill, cfg).await? + 1;
            let insert = format!("INSERT IGNORE INTO {table} (name, next_id) VALUES ({name}, {start})");
            self.on_primary(cfg.default_shard, cfg, &[&insert]).await.map_err(context)?;
        }
        Err(MyErr::new(
            1105,
            "HY000",
            format!(
                "shardgate: could not reserve ids for sequence {} in {SEQUENCES_TABLE} on the default shard",
                fill.name
            ),
        )
        .into())
    }

    /// The largest value of the sequence column on any shard (0 when there is none).
    async fn max_stored(&self, fill: &sequence::SequenceFill, cfg: &Config) -> Result<u64, Failure> {
        let sql = format!(
            "SELECT MAX({}) FROM {}.{}",
            quote_ident(&fill.column),
            quote_ident(&cfg.backend.database),
            quote_ident(&fill.table)
        );
        let mut max = 0u64;
        for shard in 0..cfg.shards.len() {
            let mut results = self.on_primary(shard, cfg, &[&sql]).await?;
            let (_, rows) = results.remove(0);
            let Some(Some(cell)) = rows.into_iter().next().and_then(|r| r.into_iter().next()) else { continue };
            let text = String::from_utf8_lossy(&cell).into_owned();
            let value = match (text.parse::<u64>(), text.parse::<i64>()) {
                (Ok(v), _) => v,
                (_, Ok(_)) => 0, // negative
                _ => {
                    return Err(MyErr::not_supported(format!(
                    "column {}.{} holds the non-integer value {text:?}; a shardgate sequence needs an integer column",
                    fill.table, fill.column
                ))
                    .into())
                }
            };
            max = max.max(value);
        }
        Ok(max)
    }

    /// Run control statements, autocommit, one after the other on one pooled
    /// connection to a shard's primary (waiting out a failover like any write).
    async fn on_primary(
        &self,
        shard: usize,
        cfg: &Config,
        statements: &[&str],
    ) -> Result<Vec<(OkInfo, Rows)>, Failure> {
        let cluster: Arc<Cluster> = self.shared.cluster.load_full();
        let (mut conn, _) = self.primary_conn(shard, &cluster, cfg).await?;
        let result = async {
            conn.sync_state(&SessionVars::empty(), &cfg.backend.database).await?;
            let mut out = Vec::with_capacity(statements.len());
            for sql in statements {
                out.push(conn.query(sql).await?);
            }
            Ok::<_, crate::backend::BackendError>(out)
        }
        .await;
        conn.release();
        Ok(result?)
    }
}
