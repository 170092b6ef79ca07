//! Result sets shardgate makes itself (SHOW SHARDGATE ROUTE).

use super::errors::Failure;
use super::session::Session;
use crate::config::Config;
use crate::protocol::wire::{self, OkInfo};
use crate::router::{describe, Action};

impl Session {
    /// Send a text result set of string columns.
    pub(crate) fn send_result_set(&mut self, columns: &[&str], rows: &[Vec<Option<String>>]) {
        let mut seq = self.seq;
        let deprecate = self.deprecate_eof;
        let status = self.status();
        self.wr.push_with(&mut seq, |b| wire::put_lenenc_int(b, columns.len() as u64));
        for c in columns {
            self.wr.push_with(&mut seq, |b| wire::put_column_def(b, c, wire::TYPE_VAR_STRING, 45));
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
