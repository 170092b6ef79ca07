//! `[[shards]]`: names, backend addresses and keyspace ranges.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{invalid, ConfigError};
use crate::config::schema::{ServerEntry, ShardEntry};
use crate::config::{KeyRange, Server, Shard};

/// Validate the shard list and resolve every shard's servers and key range.
pub(super) fn resolve(entries: &[ShardEntry]) -> Result<Vec<Shard>, ConfigError> {
    if entries.is_empty() {
        return Err(invalid("shards", "at least one [[shards]] entry is required; add one with name and primary"));
    }
    // Lower-cased name -> first index (shard names are matched case-insensitively).
    let mut names: HashMap<String, usize> = HashMap::new();
    // Canonical (host, port) -> key path of its first use.
    let mut addrs: HashMap<(String, u16), String> = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for (i, s) in entries.iter().enumerate() {
        let key = format!("shards[{i}]");
        if s.name.is_empty() {
            return Err(invalid(format!("{key}.name"), "must not be empty"));
        }
        if let Some(first) = names.insert(s.name.to_ascii_lowercase(), i) {
            return Err(invalid(
                format!("{key}.name"),
                format!(
                    "{:?} is already the name of shards[{first}] ({}); shard names must be unique \
                     (case-insensitively)",
                    s.name, entries[first].name
                ),
            ));
        }
        let (primary_key, primary, standby) = primaries(&key, s)?;
        let servers = std::iter::once((primary_key, primary))
            .chain(standby.map(|sb| (format!("{key}.primaries[1]"), sb)))
            .chain(s.replicas.iter().enumerate().map(|(j, r)| (format!("{key}.replicas[{j}]"), r)));
        let mut resolved = Vec::new();
        for (server_key, server) in servers {
            resolved.push(check_server(&server_key, server, &mut addrs)?);
        }
        let mut resolved = resolved.into_iter();
        let primary = resolved.next().expect("a primary");
        let standby = standby.and_then(|_| resolved.next());
        out.push(Shard {
            name: s.name.clone(),
            primary,
            standby,
            replicas: resolved.collect(),
            key_range: KeyRange { start: 0, end: None },
            tls: s.tls,
        });
    }
    for (shard, range) in out.iter_mut().zip(resolve_key_ranges(entries)?) {
        shard.key_range = range;
    }
    Ok(out)
}

/// The shard's primary (with its key path) and, for an active-active pair, the standby:
/// exactly one of `primary` and `primaries`, and `primaries` names two servers.
fn primaries<'a>(
    key: &str,
    s: &'a ShardEntry,
) -> Result<(String, &'a ServerEntry, Option<&'a ServerEntry>), ConfigError> {
    match (&s.primary, &s.primaries) {
        (Some(p), None) => Ok((format!("{key}.primary"), p, None)),
        (None, Some(list)) if list.len() == 2 => Ok((format!("{key}.primaries[0]"), &list[0], Some(&list[1]))),
        (None, Some(list)) => Err(invalid(
            format!("{key}.primaries"),
            format!(
                "lists {} server(s); an active-active shard has exactly two primaries \
                 (one per data centre), e.g. primaries = [\"dc1-db:3306\", \"dc2-db:3306\"]; \
                 for a single primary write primary = \"host:port\" instead",
                list.len()
            ),
        )),
        (Some(_), Some(_)) => Err(invalid(
            key,
            format!("shard {:?} has both primary and primaries; keep one (primaries only for active-active)", s.name),
        )),
        (None, None) => Err(invalid(
            key,
            format!(
                "shard {:?} needs primary = \"host:port\" (or primaries = [two servers] for active-active)",
                s.name
            ),
        )),
    }
}

/// Check one server's address (unique in the whole file) and zone.
fn check_server(
    key: &str,
    server: &ServerEntry,
    addrs: &mut HashMap<(String, u16), String>,
) -> Result<Server, ConfigError> {
    // An inline table's fields get their own key paths: shards[0].replicas[1].addr.
    let (addr_key, zone_key) = if server.zone.is_some() {
        (format!("{key}.addr"), format!("{key}.zone"))
    } else {
        (key.to_string(), format!("{key}.zone"))
    };
    let addr = &server.addr;
    let canonical = parse_host_port(&addr_key, addr)?;
    if let Some(first) = addrs.get(&canonical) {
        return Err(invalid(
            addr_key,
            format!(
                "{addr:?} is already listed as {first}; every backend server belongs \
                 to exactly one shard and appears once"
            ),
        ));
    }
    addrs.insert(canonical, addr_key);
    if let Some(zone) = &server.zone {
        check_zone(&zone_key, zone)?;
    }
    Ok(Server { addr: addr.clone(), zone: server.zone.clone() })
}

/// A zone name: not empty, no surrounding whitespace.
pub(crate) fn check_zone(key: &str, zone: &str) -> Result<(), ConfigError> {
    if zone.is_empty() || zone.trim() != zone {
        return Err(invalid(
            key,
            format!("{zone:?} is not a zone name; give a non-empty name without surrounding spaces, e.g. \"dc1\""),
        ));
    }
    Ok(())
}

/// Check a backend address `host:port` and return a canonical form for
/// duplicate detection: lower-cased host (IPv6 in its canonical text form), port.
///
/// host: a DNS name, an IPv4 address, or an IPv6 address in brackets.
/// port: decimal 1-65535.
pub(crate) fn parse_host_port(key: &str, addr: &str) -> Result<(String, u16), ConfigError> {
    let err = |why: &str| {
        invalid(
            key,
            format!(
                "{addr:?} is not host:port ({why}); write e.g. \"10.0.0.5:3306\", \
                 \"db1.example.com:3306\" or \"[fd00::5]:3306\""
            ),
        )
    };
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(err("no port"));
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("the port must be a decimal number"));
    }
    let port = match port.parse::<u16>() {
        Ok(p) if p >= 1 => p,
        _ => return Err(err("the port must be between 1 and 65535")),
    };
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(|| err("unbalanced '['"))?;
        let ip: Ipv6Addr = inner.parse().map_err(|_| err("bad IPv6 address in brackets"))?;
        return Ok((ip.to_string(), port));
    }
    if host.contains(':') {
        return Err(err("an IPv6 host must be written in brackets"));
    }
    if host.is_empty() {
        return Err(err("the host is empty"));
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let ip: Ipv4Addr = host.parse().map_err(|_| err("bad IPv4 address"))?;
        return Ok((ip.to_string(), port));
    }
    if !is_dns_name(host) {
        return Err(err("the host is not a valid DNS name or IP address"));
    }
    Ok((host.trim_end_matches('.').to_ascii_lowercase(), port))
}

/// A DNS host name: dot-separated labels of letters, digits, '-' and '_'
/// (1-63 characters, not starting or ending with '-'), at most 253 characters,
/// optionally with a trailing dot.
fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Even split of the 64-bit keyspace over `n` shards, in order: shard i owns
/// `[i * 2^64 / n, (i + 1) * 2^64 / n)`, the last one up to and including u64::MAX.
pub fn even_key_ranges(n: usize) -> Vec<KeyRange> {
    let bound = |i: usize| ((i as u128) << 64) / n as u128;
    (0..n)
        .map(|i| KeyRange { start: bound(i) as u64, end: if i + 1 == n { None } else { Some(bound(i + 1) as u64) } })
        .collect()
}

/// Parse a Vitess-style key range: `"<start>-<end>"` where each side is empty
/// (the start / the end of the keyspace) or 1-16 hex digits, a prefix of the
/// 64-bit big-endian keyspace id (`"8"` and `"80"` both mean 0x8000_0000_0000_0000).
pub fn parse_key_range(text: &str) -> Result<KeyRange, String> {
    let usage = "write it Vitess style: \"-80\", \"80-\", \"40-80\", or \"-\" for the whole keyspace \
                 (1 to 16 hex digits, a prefix of the 64-bit keyspace id)";
    let Some((start, end)) = text.split_once('-') else {
        return Err(format!("{text:?} has no '-'; {usage}"));
    };
    let side = |s: &str| -> Result<Option<u64>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        if s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{text:?}: {s:?} is not 1 to 16 hex digits; {usage}"));
        }
        let v = u64::from_str_radix(s, 16).map_err(|e| format!("{text:?}: {e}"))?;
        Ok(Some(v << (64 - 4 * s.len() as u32)))
    };
    let start = side(start)?.unwrap_or(0);
    let end = side(end)?;
    if let Some(e) = end {
        if e <= start {
            return Err(format!("{text:?} is empty: its end is not above its start; {usage}"));
        }
    }
    Ok(KeyRange { start, end })
}

/// Render a keyspace interval for messages: `0000000000000000..7fffffffffffffff` (inclusive).
fn span(start: u64, end_inclusive: u64) -> String {
    format!("{start:016x}..{end_inclusive:016x}")
}

fn resolve_key_ranges(entries: &[ShardEntry]) -> Result<Vec<KeyRange>, ConfigError> {
    let given = entries.iter().filter(|s| s.key_range.is_some()).count();
    if given == 0 {
        return Ok(even_key_ranges(entries.len()));
    }
    if given != entries.len() {
        let with = entries.iter().position(|s| s.key_range.is_some()).unwrap_or(0);
        let without = entries.iter().position(|s| s.key_range.is_none()).unwrap_or(0);
        return Err(invalid(
            format!("shards[{without}].key_range"),
            format!(
                "missing, but shards[{with}] ({}) has one; give key_range on every shard, \
                 or on none (then the keyspace is split evenly in shard order)",
                entries[with].name
            ),
        ));
    }
    let mut ranges = Vec::with_capacity(entries.len());
    for (i, s) in entries.iter().enumerate() {
        let text = s.key_range.as_deref().unwrap_or_default();
        let r = parse_key_range(text).map_err(|m| invalid(format!("shards[{i}].key_range"), m))?;
        ranges.push(r);
    }
    check_tiling(entries, &ranges)?;
    Ok(ranges)
}

/// The ranges must cover the keyspace exactly once: no gap, no overlap.
fn check_tiling(entries: &[ShardEntry], ranges: &[KeyRange]) -> Result<(), ConfigError> {
    let label =
        |i: usize| format!("shards[{i}] ({}, {:?})", entries[i].name, entries[i].key_range.as_deref().unwrap_or(""));
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| (ranges[i].start, ranges[i].end.is_none(), ranges[i].end));
    let first = order[0];
    if ranges[first].start != 0 {
        return Err(invalid(
            format!("shards[{first}].key_range"),
            format!(
                "keyspace ids {} belong to no shard: the lowest range, {}, does not start at \
                 the beginning; make the lowest range start with \"-\"",
                span(0, ranges[first].start - 1),
                label(first)
            ),
        ));
    }
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (ra, rb) = (ranges[a], ranges[b]);
        match ra.end {
            Some(end) if rb.start == end => {}
            Some(end) if rb.start > end => {
                return Err(invalid(
                    format!("shards[{b}].key_range"),
                    format!(
                        "keyspace ids {} belong to no shard: gap between {} and {}; \
                         make the ranges meet",
                        span(end, rb.start - 1),
                        label(a),
                        label(b)
                    ),
                ));
            }
            _ => {
                let overlap_end = match (ra.end, rb.end) {
                    (Some(x), Some(y)) => x.min(y) - 1,
                    (Some(x), None) | (None, Some(x)) => x - 1,
                    (None, None) => u64::MAX,
                };
                return Err(invalid(
                    format!("shards[{b}].key_range"),
                    format!(
                        "overlaps {}: keyspace ids {} would belong to both it and {}; \
                         every keyspace id must belong to exactly one shard",
                        label(a),
                        span(rb.start, overlap_end),
                        label(b)
                    ),
                ));
            }
        }
    }
    let last = order[order.len() - 1];
    if let Some(end) = ranges[last].end {
        return Err(invalid(
            format!("shards[{last}].key_range"),
            format!(
                "keyspace ids {} belong to no shard: the highest range, {}, stops short of the \
                 end; make the highest range end with \"-\"",
                span(end, u64::MAX),
                label(last)
            ),
        ));
    }
    Ok(())
}
