//! Result sets shardgate makes itself (SHOW SHARDGATE ROUTE, SELECT LAST_INSERT_ID()).

use super::errors::Failure;
use super::session::Session;
use crate::config::Config;
use crate::protocol::wire::{self, OkInfo};
use crate::router::{describe, Action};

/// A result column: name, type, character set, flags.
type Column<'a> = (&'a str, u8, u16, u16);

impl Session {
    /// Send a text result set of string columns.
    pub(crate) fn send_result_set(&mut self, columns: &[&str], rows: &[Vec<Option<String>>]) {
        let defs: Vec<Column<'_>> = columns.iter().map(|c| (*c, wire::TYPE_VAR_STRING, 45, 0)).collect();
        self.send_rows(&defs, rows);
    }

    /// Send a text result set with these column definitions.
    fn send_rows(&mut self, columns: &[Column<'_>], rows: &[Vec<Option<String>>]) {
        let mut seq = self.seq;
        let deprecate = self.deprecate_eof;
        let status = self.status();
        self.wr.push_with(&mut seq, |b| wire::put_lenenc_int(b, columns.len() as u64));
        for &(name, ty, charset, flags) in columns {
            self.wr.push_with(&mut seq, |b| wire::put_column_def_flags(b, name, ty, charset, flags));
        }
        if !deprecate {
            self.wr.push_with(&mut seq, |b| wire::put_eof(b, 0, status));
        }
        for row in rows {
            self.wr.push_with(&mut seq, |b| wire::put_text_row(b, row.iter().map(|c| c.as_deref().map(str::as_bytes))));
        }
        self.wr.push_with(&mut seq, |b| {
            if deprecate {
                wire::put_ok(b, &OkInfo { status, ..OkInfo::default() }, true, b"");
            } else {
                wire::put_eof(b, 0, status);
            }
        });
        self.seq = seq;
    }

    /// `SELECT LAST_INSERT_ID()`: the session's own record, as a BIGINT UNSIGNED
    /// column. It changes only when a statement generated an id (a backend
    /// AUTO_INCREMENT or a shardgate sequence), whichever connection ran it.
    pub(crate) fn send_last_insert_id(&mut self, column: &str) {
        let flags = wire::FLAG_NOT_NULL | wire::FLAG_UNSIGNED | wire::FLAG_BINARY;
        let value = self.last_insert_id.to_string();
        self.send_rows(&[(column, wire::TYPE_LONGLONG, 63, flags)], &[vec![Some(value)]]);
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
