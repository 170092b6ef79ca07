//! Result sets shardgate makes itself (SHOW SHARDGATE ROUTE, SELECT LAST_INSERT_ID()).

use super::errors::Failure;
use super::session::Session;
use crate::config::Config;
use crate::protocol::wire::{self, OkInfo};
use crate::router::{describe, Action};

/// A result column: name, type, character set, flags.
pub(crate) type Column<'a> = (&'a str, u8, u16, u16);

/// The column of `SELECT LAST_INSERT_ID()`: BIGINT UNSIGNED NOT NULL.
pub(crate) fn last_insert_id_column(name: &str) -> Column<'_> {
    (name, wire::TYPE_LONGLONG, 63, wire::FLAG_NOT_NULL | wire::FLAG_UNSIGNED | wire::FLAG_BINARY)
}

impl Session {
    /// Send a text result set of string columns.
    pub(crate) fn send_result_set(&mut self, columns: &[&str], rows: &[Vec<Option<String>>]) {
        let defs: Vec<Column<'_>> = columns.iter().map(|c| (*c, wire::TYPE_VAR_STRING, 45, 0)).collect();
        self.send_rows(&defs, rows);
    }

    /// Send a text result set with these column definitions.
    pub(crate) fn send_rows(&mut self, columns: &[Column<'_>], rows: &[Vec<Option<String>>]) {
        let mut seq = self.seq;
        self.push_columns(&mut seq, columns);
        for row in rows {
            self.wr.push_with(&mut seq, |b| wire::put_text_row(b, row.iter().map(|c| c.as_deref().map(str::as_bytes))));
        }
        self.push_end(&mut seq);
        self.seq = seq;
    }

    /// Column count, definitions and (without DEPRECATE_EOF) their EOF.
    fn push_columns(&mut self, seq: &mut u8, columns: &[Column<'_>]) {
        self.wr.push_with(seq, |b| wire::put_lenenc_int(b, columns.len() as u64));
        for &(name, ty, charset, flags) in columns {
            self.wr.push_with(seq, |b| wire::put_column_def_flags(b, name, ty, charset, flags));
        }
        if !self.deprecate_eof {
            let status = self.status();
            self.wr.push_with(seq, |b| wire::put_eof(b, 0, status));
        }
    }

    /// The terminator of a result set.
    fn push_end(&mut self, seq: &mut u8) {
        let (deprecate, status) = (self.deprecate_eof, self.status());
        self.wr.push_with(seq, |b| {
            if deprecate {
                wire::put_ok(b, &OkInfo { status, ..OkInfo::default() }, true, b"");
            } else {
                wire::put_eof(b, 0, status);
            }
        });
    }

    /// `SELECT LAST_INSERT_ID()`: the session's own record, as a BIGINT UNSIGNED
    /// column. It changes only when a statement generated an id (a backend
    /// AUTO_INCREMENT or a shardgate sequence), whichever connection ran it.
    /// `binary`: the row of a prepared statement's EXECUTE.
    pub(crate) fn send_last_insert_id(&mut self, column: &str, binary: bool) {
        let value = self.last_insert_id;
        let mut seq = self.seq;
        self.push_columns(&mut seq, &[last_insert_id_column(column)]);
        if binary {
            // Header, a null bitmap for one column (offset 2), the 8-byte value.
            self.wr.push_with(&mut seq, |b| {
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(&value.to_le_bytes());
            });
        } else {
            self.wr.push_with(&mut seq, |b| wire::put_text_row(b, [Some(value.to_string().as_bytes())]));
        }
        self.push_end(&mut seq);
        self.seq = seq;
    }

    /// SHOW SHARDGATE ROUTE <sql>: one row per target, from the router's own description.
    pub(crate) fn show_route(&mut self, action: &Action, text: &str, cfg: &Config) -> Result<(), Failure> {
        let rows: Vec<Vec<Option<String>>> = describe::show_route_rows(action, text, cfg)
            .into_iter()
            .map(|row| row.into_iter().map(Some).collect())
            .collect();
        self.send_result_set(&describe::SHOW_ROUTE_COLUMNS, &rows);
        Ok(())
    }
}
