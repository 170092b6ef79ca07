//! SQL text helpers for the router: tokens with byte offsets ([`mod@lexer`]),
//! routing hints in comments ([`mod@hints`]), fast classification by leading
//! keywords and cheap token scans ([`mod@classify`]), and SET parsing ([`mod@set`]).

pub mod classify;
pub mod digest;
pub mod hints;
pub mod lexer;
pub mod set;

pub use classify::{classify, Leading};
pub use hints::{hints, Hints};
pub use lexer::{lex, Lexed};
pub use set::{parse_set, SetStatement};
