//! Tokens of one client text with exact byte offsets.
//!
//! The sqlparser tokenizer reports positions as (line, column in characters);
//! everything that rewrites SQL or cuts text out of it needs byte offsets into
//! the client's original bytes, so [`lex`] computes them once.
//!
//! MySQL executes the body of version comments (`/*!40101 SET NAMES utf8 */`,
//! MariaDB `/*M!100100 ... */`). sqlparser re-tokenizes such bodies but gives
//! their tokens wrong positions, so the lexer first blanks the comment markers
//! (same byte length, ASCII spaces) and tokenizes the result: the body becomes
//! ordinary tokens at their true offsets. The original text is never changed.

use std::borrow::Cow;
use std::ops::Range;

use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace, Word};

/// The tokens of a client text and where each one sits in it.
#[derive(Debug)]
pub struct Lexed<'s> {
    /// The client's original text.
    pub sql: &'s str,
    pub tokens: Vec<TokenWithSpan>,
    /// Byte range of each token in `sql` (parallel to `tokens`).
    pub ranges: Vec<Range<usize>>,
    /// Byte offset of every `?` placeholder, in text order.
    placeholders: Vec<usize>,
}

/// Tokenize `sql` with the MySQL dialect.
pub fn lex(sql: &str) -> Result<Lexed<'_>, String> {
    let masked = mask_version_comments(sql);
    let tokens = Tokenizer::new(&MySqlDialect {}, &masked).tokenize_with_location().map_err(|e| e.to_string())?;
    let ranges = byte_ranges(&masked, &tokens);
    let placeholders = tokens
        .iter()
        .zip(&ranges)
        .filter(|(t, _)| matches!(&t.token, Token::Placeholder(p) if p == "?"))
        .map(|(_, r)| r.start)
        .collect();
    Ok(Lexed { sql, tokens, ranges, placeholders })
}

impl<'s> Lexed<'s> {
    /// Whitespace or a comment.
    pub fn is_trivia(&self, i: usize) -> bool {
        matches!(self.tokens[i].token, Token::Whitespace(_))
    }

    pub fn token(&self, i: usize) -> &Token {
        &self.tokens[i].token
    }

    /// The word at `i`, if it is one (keyword or identifier, quoted or not).
    pub fn word(&self, i: usize) -> Option<&Word> {
        match &self.tokens[i].token {
            Token::Word(w) => Some(w),
            _ => None,
        }
    }

    /// The unquoted word at `i` equals `kw` (ASCII case-insensitive).
    pub fn is_kw(&self, i: usize, kw: &str) -> bool {
        self.word(i).is_some_and(|w| w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
    }

    /// The original text of token `i`.
    pub fn text(&self, i: usize) -> &'s str {
        &self.sql[self.ranges[i].clone()]
    }

    /// The original text from the start of token `first` to the end of token `last`.
    pub fn text_between(&self, first: usize, last: usize) -> &'s str {
        &self.sql[self.ranges[first].start..self.ranges[last].end]
    }

    /// The statement's own text, from its first significant token to the end of
    /// `range` (trailing whitespace trimmed): unlike [`Self::text_between`] it keeps
    /// the closing `*/` of a version comment, which lexing saw as whitespace.
    pub fn statement_text(&self, first: usize, range: Range<usize>) -> &'s str {
        let end = range.end.checked_sub(1).map_or(self.ranges[first].end, |i| self.ranges[i].end);
        self.sql[self.ranges[first].start..end.max(self.ranges[first].end)].trim_end()
    }

    /// Indexes of the non-trivia tokens in `range`.
    pub fn significant(&self, range: Range<usize>) -> Vec<usize> {
        range.filter(|&i| !self.is_trivia(i)).collect()
    }

    /// Token-index ranges of the statements separated by top-level `;`
    /// (empty statements are dropped).
    pub fn statements(&self) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        for i in 0..=self.tokens.len() {
            if i == self.tokens.len() || matches!(self.tokens[i].token, Token::SemiColon) {
                if (start..i).any(|j| !self.is_trivia(j)) {
                    out.push(start..i);
                }
                start = i + 1;
            }
        }
        out
    }

    /// Byte offset of a location that starts a token.
    pub fn byte_of_start(&self, loc: Location) -> Option<usize> {
        let i = self.tokens.binary_search_by(|t| t.span.start.cmp(&loc)).ok()?;
        Some(self.ranges[i].start)
    }

    /// Byte offset of a location that ends a token.
    pub fn byte_of_end(&self, loc: Location) -> Option<usize> {
        let i = self.tokens.binary_search_by(|t| t.span.end.cmp(&loc)).ok()?;
        Some(self.ranges[i].end)
    }

    /// Index of the token starting at byte `b`.
    pub fn token_starting_at(&self, b: usize) -> Option<usize> {
        self.ranges.binary_search_by(|r| r.start.cmp(&b)).ok()
    }

    /// 0-based index of the `?` placeholder starting at byte `b`.
    pub fn placeholder_index(&self, b: usize) -> Option<usize> {
        self.placeholders.binary_search(&b).ok()
    }

    /// Number of `?` placeholders in the text.
    pub fn placeholder_count(&self) -> usize {
        self.placeholders.len()
    }

    /// The text of every comment, in order.
    pub fn comments(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().filter_map(|t| match &t.token {
            Token::Whitespace(Whitespace::MultiLineComment(c)) => Some(c.as_str()),
            Token::Whitespace(Whitespace::SingleLineComment { comment, .. }) => Some(comment.as_str()),
            _ => None,
        })
    }

    /// The next non-trivia token index after `i` (exclusive), below `end`.
    pub fn next_sig(&self, i: usize, end: usize) -> Option<usize> {
        (i + 1..end).find(|&j| !self.is_trivia(j))
    }

    /// The previous non-trivia token index before `i`.
    pub fn prev_sig(&self, i: usize) -> Option<usize> {
        (0..i).rev().find(|&j| !self.is_trivia(j))
    }
}

/// Walk the text once, turning each token's (line, column) span into bytes.
fn byte_ranges(text: &str, tokens: &[TokenWithSpan]) -> Vec<Range<usize>> {
    struct Cursor<'t> {
        chars: std::str::CharIndices<'t>,
        line: u64,
        col: u64,
        byte: usize,
        len: usize,
    }
    impl Cursor<'_> {
        fn seek(&mut self, to: Location) -> usize {
            while (self.line, self.col) < (to.line, to.column) {
                match self.chars.next() {
                    Some((_, c)) => {
                        self.byte += c.len_utf8();
                        if c == '\n' {
                            self.line += 1;
                            self.col = 1;
                        } else {
                            self.col += 1;
                        }
                    }
                    None => return self.len,
                }
            }
            self.byte
        }
    }
    let mut cur = Cursor { chars: text.char_indices(), line: 1, col: 1, byte: 0, len: text.len() };
    tokens
        .iter()
        .map(|t| {
            let start = cur.seek(t.span.start);
            let end = cur.seek(t.span.end).max(start);
            start..end
        })
        .collect()
}

/// Blank the markers of MySQL/MariaDB version comments (`/*!NNNNN` and `/*M!NNNNN`
/// and their closing `*/`) so that their body tokenizes as code at its true offsets.
pub fn mask_version_comments(sql: &str) -> Cow<'_, str> {
    if !sql.contains("/*!") && !sql.contains("/*M!") {
        return Cow::Borrowed(sql);
    }
    let b = sql.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let mut in_version = false;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'\\' && q != b'`' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'#' => i = skip_line(b, i),
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_line(b, i),
            b'*' if in_version && b.get(i + 1) == Some(&b'/') => {
                out[i] = b' ';
                out[i + 1] = b' ';
                in_version = false;
                i += 2;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let marker = if b.get(i + 2) == Some(&b'!') {
                    Some(3)
                } else if b.get(i + 2) == Some(&b'M') && b.get(i + 3) == Some(&b'!') {
                    Some(4)
                } else {
                    None
                };
                // A version no server has (mariadb-dump's `/*M!999999\- enable the
                // sandbox mode */`) keeps the body a comment, as the servers do.
                let never = |n: usize| {
                    let digits: String =
                        b[i + n..].iter().take_while(|c| c.is_ascii_digit()).map(|&c| c as char).collect();
                    digits.parse::<u64>().is_ok_and(|v| v >= 999_999)
                };
                match marker {
                    Some(n) if !in_version && !never(n) => {
                        let mut j = i + n;
                        while j < b.len() && b[j].is_ascii_digit() {
                            j += 1;
                        }
                        out[i..j].fill(b' ');
                        in_version = true;
                        i = j;
                    }
                    _ => {
                        // An ordinary comment: skip to its end.
                        i += 2;
                        while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                            i += 1;
                        }
                        i += 2;
                    }
                }
            }
            _ => i += 1,
        }
    }
    // Only ASCII bytes were replaced by ASCII spaces, so this is still UTF-8.
    Cow::Owned(String::from_utf8(out).unwrap_or_else(|_| sql.to_owned()))
}

fn skip_line(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'\n' {
        i += 1;
    }
    i
}
