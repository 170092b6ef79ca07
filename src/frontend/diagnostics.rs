//! What the previous statement left behind, kept by the session: its
//! ROW_COUNT(), the rows its SELECT returned (FOUND_ROWS()), and its warnings
//! and error (SHOW WARNINGS / SHOW ERRORS, @@warning_count). The statement may
//! have run on a pooled backend connection that now serves someone else, so
//! the session records these as the statement ends: warnings are read with
//! SHOW WARNINGS on the same backend connection(s) before they go back to the
//! pool (only when the statement reported any).

use super::errors::{Failure, MyErr};
use super::local::Column;
use super::session::Session;
use super::txn::Held;
use crate::protocol::wire;
use crate::router::diagnostics::Diag;

/// A result column: name, type, character set, flags.
type OwnedColumn = (String, u8, u16, u16);

/// One line of SHOW WARNINGS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub level: String,
    pub code: u16,
    pub message: String,
}

/// The previous statement's diagnostics.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    /// ROW_COUNT(): affected rows of a write, -1 after a SELECT, 0 otherwise.
    pub row_count: i64,
    /// Rows the last SELECT returned.
    pub found_rows: u64,
    /// The last SELECT used SQL_CALC_FOUND_ROWS on this shard: FOUND_ROWS()
    /// must be asked of that (pinned) backend connection.
    pub found_rows_shard: Option<usize>,
    pub notes: Vec<Note>,
    /// The warning count the client was told (can exceed what SHOW WARNINGS lists).
    pub warning_count: u16,
}

impl Diagnostics {
    /// A new statement (not itself a diagnostics statement) starts.
    pub fn begin_statement(&mut self) {
        self.row_count = 0;
        self.notes.clear();
        self.warning_count = 0;
    }

    pub fn record_error(&mut self, e: &MyErr) {
        self.row_count = -1;
        self.notes = vec![Note { level: "Error".into(), code: e.code, message: e.message.clone() }];
        self.warning_count = 1;
    }

    fn error_count(&self) -> usize {
        self.notes.iter().filter(|n| n.level == "Error").count()
    }
}

impl Session {
    /// Read the warnings of the statement that just ran on these connections.
    pub(crate) async fn capture_warnings(&mut self, leases: &mut [Held]) {
        let mut notes = Vec::new();
        for h in leases.iter_mut().filter(|h| !h.conn.broken) {
            if let Ok((_, rows)) = h.conn.query("SHOW WARNINGS").await {
                for r in rows {
                    let text = |i: usize| r.get(i).cloned().flatten().map(|b| String::from_utf8_lossy(&b).into_owned());
                    notes.push(Note {
                        level: text(0).unwrap_or_default(),
                        code: text(1).and_then(|c| c.parse().ok()).unwrap_or(0),
                        message: text(2).unwrap_or_default(),
                    });
                }
            }
        }
        self.diag.notes = notes;
    }

    /// Answer a diagnostics statement from the session's record.
    pub(crate) fn answer_diagnostics(&mut self, d: &Diag) -> Result<(), Failure> {
        let int = |name: &str| -> OwnedColumn {
            (name.to_owned(), wire::TYPE_LONGLONG, 63, wire::FLAG_NOT_NULL | wire::FLAG_BINARY)
        };
        let (columns, rows): (Vec<OwnedColumn>, Vec<Vec<Option<String>>>) = match d {
            Diag::RowCount { column } => (vec![int(column)], vec![vec![Some(self.diag.row_count.to_string())]]),
            Diag::FoundRows { column } => (vec![int(column)], vec![vec![Some(self.diag.found_rows.to_string())]]),
            Diag::WarningCount { column } => (
                vec![int(column)],
                vec![vec![Some(self.diag.warning_count.max(self.diag.notes.len() as u16).to_string())]],
            ),
            Diag::ErrorCount { column } => (vec![int(column)], vec![vec![Some(self.diag.error_count().to_string())]]),
            Diag::ConnectionId { column } => (vec![int(column)], vec![vec![Some(self.id.to_string())]]),
            Diag::Version { column } => {
                // Without MariaDB's "5.5.5-" handshake prefix, as the server's own VERSION().
                let full = self.shared.server_version.load();
                let v = full.strip_prefix("5.5.5-").unwrap_or(&full).to_owned();
                (vec![(column.clone(), wire::TYPE_VAR_STRING, 45, 0)], vec![vec![Some(v)]])
            }
            Diag::ShowCount { errors } => {
                let n = if *errors {
                    self.diag.error_count()
                } else {
                    usize::from(self.diag.warning_count).max(self.diag.notes.len())
                };
                let name = if *errors { "@@session.error_count" } else { "@@session.warning_count" };
                (vec![int(name)], vec![vec![Some(n.to_string())]])
            }
            Diag::Show { errors, offset, limit } => {
                let text = |name: &str| (name.to_owned(), wire::TYPE_VAR_STRING, 45, 0);
                let cols = vec![text("Level"), (String::from("Code"), 0x03, 63, wire::FLAG_NOT_NULL), text("Message")];
                let rows = self
                    .diag
                    .notes
                    .iter()
                    .filter(|n| !*errors || n.level == "Error")
                    .skip(*offset as usize)
                    .take(limit.map_or(usize::MAX, |l| l as usize))
                    .map(|n| vec![Some(n.level.clone()), Some(n.code.to_string()), Some(n.message.clone())])
                    .collect();
                (cols, rows)
            }
        };
        let defs: Vec<Column<'_>> = columns.iter().map(|(n, t, c, f)| (n.as_str(), *t, *c, *f)).collect();
        self.send_rows(&defs, &rows);
        Ok(())
    }
}
