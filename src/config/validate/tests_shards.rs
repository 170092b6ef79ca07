//! Tests for `[[shards]]`: names, backend addresses, key ranges.

use super::shards::{even_key_ranges, parse_host_port, parse_key_range};
use super::tests::Doc;
use crate::config::KeyRange;

fn shards(body: &str) -> Doc<'_> {
    Doc { shards: body, ..Doc::default() }
}

/// `[[shards]]` entries s0..s{n-1} with primaries on ports 20000+ and the given key ranges.
fn ranged(ranges: &[&str]) -> String {
    ranges
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!("[[shards]]\nname = \"s{i}\"\nprimary = \"10.0.0.1:{}\"\nkey_range = \"{r}\"\n", 20000 + i)
        })
        .collect()
}

#[test]
fn at_least_one_shard() {
    shards("").fails("shards", &["at least one [[shards]]"]);
}

#[test]
fn shard_names_unique_and_non_empty() {
    shards("[[shards]]\nname = \"s0\"\nprimary = \"a:1\"\n[[shards]]\nname = \"S0\"\nprimary = \"b:1\"")
        .fails("shards[1].name", &["\"S0\"", "shards[0]", "unique"]);
    shards("[[shards]]\nname = \"\"\nprimary = \"a:1\"").fails("shards[0].name", &["empty"]);
}

#[test]
fn primary_and_replicas_are_host_port() {
    let one = |primary: &str, replicas: &str| {
        format!("[[shards]]\nname = \"s0\"\nprimary = \"{primary}\"\nreplicas = [{replicas}]\n")
    };
    let s = one("127.0.0.1", "");
    shards(&s).fails("shards[0].primary", &["\"127.0.0.1\" is not host:port"]);
    let s = one("127.0.0.1:13306", "\"127.0.0.1:13307\", \"db:0\"");
    shards(&s).fails("shards[0].replicas[1]", &["\"db:0\"", "1 and 65535"]);
    let s = format!("{}{}", one("a:1", ""), "[[shards]]\nname = \"s1\"\nprimary = \"b:65536\"");
    shards(&s).fails("shards[1].primary", &["65535"]);
    let s = one("a:1", "\"fd00::1:3306\"");
    shards(&s).fails("shards[0].replicas[0]", &["brackets"]);
    let s = one("db1.example.com:3306", "\"[fd00::5]:3306\", \"10.0.0.7:3306\", \"DB2:3306\"");
    let p = Doc { proxy: "listen = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"", shards: &s, ..Doc::default() };
    let cfg = p.ok();
    assert_eq!(cfg.shards[0].primary.addr, "db1.example.com:3306");
    assert_eq!(cfg.shards[0].replicas.len(), 3);
}

#[test]
fn host_port_parsing() {
    let ok = |a: &str| parse_host_port("k", a).unwrap_or_else(|e| panic!("{a}: {e}"));
    assert_eq!(ok("127.0.0.1:3306"), ("127.0.0.1".into(), 3306));
    assert_eq!(ok("DB-1.Example.com.:3306"), ("db-1.example.com".into(), 3306));
    assert_eq!(ok("[FD00:0::5]:1"), ("fd00::5".into(), 1));
    assert_eq!(ok("my_db:65535"), ("my_db".into(), 65535));
    for bad in [
        "",
        ":3306",
        "host:",
        "host:+1",
        "host:0",
        "host:99999",
        "host:3306x",
        "300.1.1.1:3306",
        "1.2.3:3306",
        "[::1:3306",
        "[zz]:3306",
        "-db:3306",
        "db-:3306",
        "a..b:3306",
        "a b:3306",
        "::1:3306",
    ] {
        assert!(parse_host_port("k", bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn backend_address_listed_once_across_config() {
    let s = "[[shards]]\nname = \"s0\"\nprimary = \"127.0.0.1:13306\"\n\
             [[shards]]\nname = \"s1\"\nprimary = \"127.0.0.1:13308\"\nreplicas = [\"127.0.0.1:13306\"]";
    shards(s).fails("shards[1].replicas[0]", &["\"127.0.0.1:13306\"", "shards[0].primary"]);
    // Same server spelled differently (host case, IPv6 form) is still a duplicate.
    let s = "[[shards]]\nname = \"s0\"\nprimary = \"DB:1\"\nreplicas = [\"[fd00::5]:2\", \"db:1\"]";
    shards(s).fails("shards[0].replicas[1]", &["shards[0].primary"]);
    let s = "[[shards]]\nname = \"s0\"\nprimary = \"[fd00:0:0::5]:2\"\nreplicas = [\"[fd00::5]:2\"]";
    shards(s).fails("shards[0].replicas[0]", &["shards[0].primary"]);
}

#[test]
fn even_split_by_default() {
    assert_eq!(even_key_ranges(1), [KeyRange { start: 0, end: None }]);
    assert_eq!(even_key_ranges(2), [KeyRange { start: 0, end: Some(1 << 63) }, KeyRange { start: 1 << 63, end: None }]);
    let three = even_key_ranges(3);
    assert_eq!(three[0], KeyRange { start: 0, end: Some(0x5555_5555_5555_5555) });
    assert_eq!(three[1], KeyRange { start: 0x5555_5555_5555_5555, end: Some(0xaaaa_aaaa_aaaa_aaaa) });
    assert_eq!(three[2], KeyRange { start: 0xaaaa_aaaa_aaaa_aaaa, end: None });
    for n in 1..=64 {
        let r = even_key_ranges(n);
        assert_eq!(r[0].start, 0);
        assert!(r.windows(2).all(|w| w[0].end == Some(w[1].start) && w[0].start < w[1].start));
        assert_eq!(r[n - 1].end, None);
    }
    let cfg = Doc::default().ok();
    assert_eq!(cfg.shards[1].key_range, KeyRange { start: 1 << 63, end: None });
}

#[test]
fn key_range_syntax() {
    let r = |t: &str| parse_key_range(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    assert_eq!(r("-"), KeyRange { start: 0, end: None });
    assert_eq!(r("-80"), KeyRange { start: 0, end: Some(0x8000_0000_0000_0000) });
    assert_eq!(r("80-"), KeyRange { start: 0x8000_0000_0000_0000, end: None });
    assert_eq!(r("4-8"), KeyRange { start: 0x4000_0000_0000_0000, end: Some(0x8000_0000_0000_0000) });
    assert_eq!(r("40-80"), r("4-8"));
    assert_eq!(r("aB-c0"), KeyRange { start: 0xab00_0000_0000_0000, end: Some(0xc000_0000_0000_0000) });
    assert_eq!(r("-0000000000000001"), KeyRange { start: 0, end: Some(1) });
    assert_eq!(r("fffffffffffffffe-ffffffffffffffff"), KeyRange { start: u64::MAX - 1, end: Some(u64::MAX) });
    for bad in ["", "80", "x-", "-80-", "80-40", "40-40", "-00", "-00000000000000001", "0x80-", " 80-"] {
        assert!(parse_key_range(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn key_ranges_all_or_none() {
    let s = "[[shards]]\nname = \"s0\"\nprimary = \"a:1\"\nkey_range = \"-80\"\n\
             [[shards]]\nname = \"s1\"\nprimary = \"b:1\"";
    shards(s).fails("shards[1].key_range", &["shards[0] (s0)", "every shard", "none"]);
    let s = "[[shards]]\nname = \"s0\"\nprimary = \"a:1\"\n\
             [[shards]]\nname = \"s1\"\nprimary = \"b:1\"\nkey_range = \"80-\"";
    shards(s).fails("shards[0].key_range", &["shards[1] (s1)"]);
}

#[test]
fn key_range_format_error_names_shard() {
    let s = ranged(&["-80", "8g-"]);
    shards(&s).fails("shards[1].key_range", &["\"8g-\"", "hex"]);
    let s = ranged(&["-80", "80"]);
    shards(&s).fails("shards[1].key_range", &["\"80\"", "Vitess"]);
}

#[test]
fn key_ranges_given_explicitly() {
    // Config order need not follow keyspace order.
    let s = ranged(&["c0-", "-40", "40-c0"]);
    let cfg = shards(&s).ok();
    assert_eq!(cfg.shards[0].key_range, KeyRange { start: 0xc0 << 56, end: None });
    assert_eq!(cfg.shards[1].key_range, KeyRange { start: 0, end: Some(0x40 << 56) });
    assert_eq!(cfg.shards[2].key_range, KeyRange { start: 0x40 << 56, end: Some(0xc0 << 56) });
    let s = ranged(&["-"]);
    shards(&s).ok();
}

#[test]
fn key_ranges_must_not_overlap() {
    let s = ranged(&["-80", "40-"]);
    shards(&s).fails("shards[1].key_range", &["overlaps shards[0] (s0, \"-80\")", "shards[1] (s1, \"40-\")"]);
    let s = ranged(&["-", "80-"]);
    shards(&s).fails("shards[1].key_range", &["overlaps shards[0] (s0", "8000000000000000..ffffffffffffffff"]);
    let s = ranged(&["-80", "80-", "-80"]);
    shards(&s).fails("shards[2].key_range", &["overlaps shards[0]"]);
}

#[test]
fn key_ranges_must_not_leave_gaps() {
    let s = ranged(&["-40", "80-"]);
    shards(&s).fails(
        "shards[1].key_range",
        &["4000000000000000..7fffffffffffffff", "no shard", "shards[0] (s0", "shards[1] (s1"],
    );
    let s = ranged(&["10-80", "80-"]);
    shards(&s).fails("shards[0].key_range", &["0000000000000000..0fffffffffffffff", "no shard"]);
    let s = ranged(&["-80", "80-f0"]);
    shards(&s).fails("shards[1].key_range", &["f000000000000000..ffffffffffffffff", "no shard"]);
}
