use super::*;
use crate::config::validate::parse;
use crate::config::TableRule;

/// A valid config with `n` shards (even keyspace split unless `ranges` given) and tables:
/// `h` (hash, int), `hs` (hash, string, utf8mb4_general_ci), `hb` (hash, string, utf8mb4_bin),
/// `hx` (hash, string, binary), `m` (mod), `r` (range, boundaries).
fn config(n: usize, boundaries: &[i64], ranges: Option<&[&str]>) -> Config {
    let mut text = String::from(
        "[proxy]\nlisten = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"\n\
         [backend]\nuser = \"u\"\ndatabase = \"d\"\n\
         [[users]]\nname = \"app\"\npassword = \"app\"\n",
    );
    for i in 0..n {
        text += &format!("[[shards]]\nname = \"s{i}\"\nprimary = \"10.0.0.{i}:3306\"\n");
        if let Some(r) = ranges {
            text += &format!("key_range = \"{}\"\n", r[i]);
        }
    }
    let b: Vec<String> = boundaries.iter().map(i64::to_string).collect();
    text += &format!(
        "[[tables]]\nname = \"h\"\nshard_key = \"id\"\nalgorithm = \"hash\"\n\
         [[tables]]\nname = \"hs\"\nshard_key = \"id\"\nalgorithm = \"hash\"\nkey_type = \"string\"\n\
         [[tables]]\nname = \"hb\"\nshard_key = \"id\"\nalgorithm = \"hash\"\nkey_type = \"string\"\ncollation = \"utf8mb4_bin\"\n\
         [[tables]]\nname = \"hx\"\nshard_key = \"id\"\nalgorithm = \"hash\"\nkey_type = \"string\"\ncollation = \"binary\"\n\
         [[tables]]\nname = \"m\"\nshard_key = \"id\"\nalgorithm = \"mod\"\n\
         [[tables]]\nname = \"r\"\nshard_key = \"id\"\nalgorithm = \"range\"\nboundaries = [{}]\n",
        b.join(", ")
    );
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn even(n: usize) -> Config {
    let boundaries: Vec<i64> = (1..n as i64).map(|i| i * 100).collect();
    config(n, &boundaries, None)
}

fn table<'a>(cfg: &'a Config, name: &str) -> &'a ShardedTable {
    match cfg.table(name) {
        Some(TableRule::Sharded(t)) => t,
        _ => panic!("no sharded table {name}"),
    }
}

fn s(text: &str) -> KeyValue {
    KeyValue::Str(text.as_bytes().to_vec())
}

/// GOLDEN VECTORS: (key, keyspace id, shard under an even 2-shard split, under 4 shards).
///
/// Computed once and frozen (and cross-checked with an independent Python
/// implementation of the module doc). DO NOT CHANGE THEM: if this test fails,
/// the placement function changed, and every deployment that stored rows with
/// the old function would now route their keys to the wrong shard.
const GOLDEN_INT: &[(i64, u64, usize, usize)] = &[
    (0, 0x0000000000000000, 0, 0),
    (1, 0x5692161d100b05e5, 0, 1),
    (7, 0x12ae30237b17df14, 0, 0),
    (-1, 0xb4d055fcf2cbbd7b, 1, 2),
    (i64::MAX, 0x5a682afe7965debd, 0, 1),
    (i64::MIN, 0x25c26ea579cea98a, 0, 0),
    (1000, 0xc1936642eba4ead7, 1, 3),
    (123456789, 0xf21c87d4233ffd60, 1, 3),
];

/// GOLDEN VECTORS for string keys under utf8mb4_general_ci (the default). Frozen, see above.
const GOLDEN_STR: &[(&str, u64, usize, usize)] = &[
    ("", 0xf52a15e9a9b5e89b, 1, 3),
    ("a", 0x02c0bdbf481420f8, 0, 0),
    ("Bob", 0x6e8572d08b268dec, 0, 1),
    ("bob ", 0x6e8572d08b268dec, 0, 1),
    ("\u{c9}mile", 0xfca57770b56b8d87, 1, 3), // "Émile", precomposed
    ("emile", 0xfca57770b56b8d87, 1, 3),
    ("\u{65e5}\u{672c}", 0xb7f4ca9e3b0a2f06, 1, 2), // "日本"
];

#[test]
fn golden_vectors_int() {
    let (c2, c4) = (even(2), even(4));
    for &(v, id, on2, on4) in GOLDEN_INT {
        let k = KeyValue::Int(v);
        assert_eq!(keyspace_id(table(&c2, "h"), &k), Ok(id), "keyspace id of {v}");
        assert_eq!(shard_for(&c2, table(&c2, "h"), &k), Ok(on2), "2 shards, {v}");
        assert_eq!(shard_for(&c4, table(&c4, "h"), &k), Ok(on4), "4 shards, {v}");
    }
}

#[test]
fn golden_vectors_string() {
    let (c2, c4) = (even(2), even(4));
    for &(v, id, on2, on4) in GOLDEN_STR {
        assert_eq!(keyspace_id(table(&c2, "hs"), &s(v)), Ok(id), "keyspace id of {v:?}");
        assert_eq!(shard_for(&c2, table(&c2, "hs"), &s(v)), Ok(on2), "2 shards, {v:?}");
        assert_eq!(shard_for(&c4, table(&c4, "hs"), &s(v)), Ok(on4), "4 shards, {v:?}");
    }
}

#[test]
fn primitives_match_reference_values() {
    // FNV-1a 64 reference vectors (from the FNV specification's test suite).
    assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
    assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    // mix64 is a bijection with 0 as a fixed point.
    assert_eq!(mix64(0), 0);
    assert_ne!(mix64(1), mix64(2));
}

#[test]
fn int_keys_route_alike_from_any_representation() {
    let cfg = even(4);
    let n = |k: &KeyValue, t: &str| shard_for(&cfg, table(&cfg, t), k);
    for t in ["h", "m", "r"] {
        for v in [0i64, 7, -1, 250, i64::MAX, i64::MIN] {
            let want = n(&KeyValue::Int(v), t);
            for text in [v.to_string(), format!(" {v} "), format!("{v}.0"), format!("{v}e0")] {
                assert_eq!(n(&s(&text), t), want, "table {t}, {text:?}");
            }
            if v >= 0 {
                assert_eq!(n(&KeyValue::UInt(v as u64), t), want, "table {t}, UInt {v}");
                assert_eq!(n(&s(&format!("+{v}")), t), want, "table {t}, +{v}");
                assert_eq!(n(&s(&format!("00{v}")), t), want, "table {t}, 00{v}");
            }
        }
        assert_eq!(n(&s("0.7e1"), t), n(&KeyValue::Int(7), t));
        assert_eq!(n(&s("70e-1"), t), n(&KeyValue::Int(7), t));
        assert_eq!(n(&s("1e3"), t), n(&KeyValue::Int(1000), t));
        assert_eq!(n(&s("-0"), t), n(&KeyValue::Int(0), t));
        assert_eq!(n(&s("18446744073709551615"), t), n(&KeyValue::UInt(u64::MAX), t));
    }
}

#[test]
fn int_text_that_is_not_an_exact_integer_is_unusable() {
    let cfg = even(2);
    for bad in [
        "",
        " ",
        "7.5",
        ".5",
        "7abc",
        "0x7",
        "1e",
        "--1",
        "- 1",
        "+",
        ".",
        "1e20",
        "18446744073709551616",
        "-9223372036854775809",
        "1e-1",
        "\u{666}",
    ] {
        let r = shard_for(&cfg, table(&cfg, "h"), &s(bad));
        assert!(matches!(r, Err(KeyError::Unusable(_))), "{bad:?}: {r:?}");
    }
    let r = shard_for(&cfg, table(&cfg, "h"), &KeyValue::Str(vec![0xff, b'1']));
    assert!(matches!(r, Err(KeyError::Unusable(_))));
    assert_eq!(parse_int_text(b"0e999999999999999999999"), Some(0));
    assert_eq!(parse_int_text(b"1e999999999999999999999"), None);
    assert_eq!(parse_int_text(b"7."), Some(7));
    assert_eq!(parse_int_text(b"\t-9223372036854775808\n"), Some(i128::from(i64::MIN)));
}

#[test]
fn null_and_other_are_errors() {
    let cfg = even(2);
    for t in ["h", "hs", "m", "r"] {
        assert_eq!(shard_for(&cfg, table(&cfg, t), &KeyValue::Null), Err(KeyError::Null));
        assert!(matches!(shard_for(&cfg, table(&cfg, t), &KeyValue::Other), Err(KeyError::Unusable(_))));
    }
}

#[test]
fn mod_is_euclidean_on_the_exact_value() {
    let cfg = even(3);
    let m = |k: KeyValue| shard_for(&cfg, table(&cfg, "m"), &k).unwrap();
    assert_eq!(m(KeyValue::Int(0)), 0);
    assert_eq!(m(KeyValue::Int(4)), 1);
    assert_eq!(m(KeyValue::Int(-1)), 2);
    assert_eq!(m(KeyValue::Int(-3)), 0);
    // 2^63 mod 3 = 2 (a wrapping i64 cast would give i64::MIN mod 3 = 1).
    assert_eq!(m(KeyValue::UInt(1 << 63)), 2);
    assert_eq!(m(KeyValue::UInt(u64::MAX)), 0); // 2^64-1 = 3 * 6148914691236517205
    assert_eq!(m(KeyValue::Int(i64::MIN)), 1); // -2^63 mod 3 = 1
}

#[test]
fn range_boundaries_are_lower_inclusive() {
    let cfg = config(3, &[-10, 100], None);
    let r = |k: KeyValue| shard_for(&cfg, table(&cfg, "r"), &k).unwrap();
    assert_eq!(r(KeyValue::Int(i64::MIN)), 0);
    assert_eq!(r(KeyValue::Int(-11)), 0);
    assert_eq!(r(KeyValue::Int(-10)), 1);
    assert_eq!(r(KeyValue::Int(99)), 1);
    assert_eq!(r(KeyValue::Int(100)), 2);
    assert_eq!(r(KeyValue::Int(i64::MAX)), 2);
    // Above i64::MAX is above every boundary, not wrapped below them.
    assert_eq!(r(KeyValue::UInt(u64::MAX)), 2);
    assert_eq!(r(s("99")), 1);
}

#[test]
fn hash_uses_explicit_key_ranges() {
    let cfg = config(3, &[1, 2], Some(&["c0-", "-40", "40-c0"]));
    let t = table(&cfg, "h");
    for &(v, id, _, _) in GOLDEN_INT {
        let want = match id >> 56 {
            0x00..=0x3f => 1,
            0x40..=0xbf => 2,
            _ => 0,
        };
        assert_eq!(shard_for(&cfg, t, &KeyValue::Int(v)), Ok(want), "{v}");
    }
    assert_eq!(shard_for_keyspace_id(&cfg, 0), Some(1));
    assert_eq!(shard_for_keyspace_id(&cfg, 0x3fff_ffff_ffff_ffff), Some(1));
    assert_eq!(shard_for_keyspace_id(&cfg, 0x4000_0000_0000_0000), Some(2));
    assert_eq!(shard_for_keyspace_id(&cfg, u64::MAX), Some(0));
}

#[test]
fn ci_collation_folds_case_accents_and_trailing_spaces() {
    let ci = "utf8mb4_general_ci";
    let same =
        |a: &str, b: &str| assert_eq!(normalise(a.as_bytes(), ci), normalise(b.as_bytes(), ci), "{a:?} vs {b:?}");
    for v in ["Bob", "bob", "BOB ", "bob   ", "b\u{f6}b", "B\u{d6}B"] {
        same(v, "bob");
    }
    // Precomposed and decomposed accents, both cases.
    for v in ["\u{c9}mile", "\u{e9}mile", "E\u{301}mile", "e\u{301}mile", "EMILE", "emile  "] {
        same(v, "emile");
    }
    same("Fran\u{e7}ois", "FRANCOIS");
    same("\u{130}stanbul", "istanbul"); // İ: I + combining dot
    same("\u{3a3}\u{39f}\u{3a3}", "\u{3c3}\u{3bf}\u{3c2}"); // ΣΟΣ = σος (final sigma)
    same("\u{212a}", "k"); // KELVIN SIGN
    assert_eq!(normalise("\u{c9}mile ".as_bytes(), ci), b"emile");
    assert_eq!(normalise(b"", ci), b"");
    assert_eq!(normalise(b"   ", ci), b"");
    assert_ne!(normalise(b" bob", ci), normalise(b"bob", ci)); // leading spaces count
    assert_ne!(normalise("\u{65e5}".as_bytes(), ci), normalise("\u{672c}".as_bytes(), ci));
    // Collation names match case-insensitively.
    assert_eq!(normalise(b"BOB", "UTF8MB4_GENERAL_CI"), b"bob");
}

#[test]
fn ci_collation_on_invalid_utf8_folds_ascii_only() {
    let ci = "latin1_swedish_ci";
    assert_eq!(normalise(b"B\xc9b  ", ci), b"b\xc9b");
    assert_eq!(normalise(b"\xff\xfeABC", ci), b"\xff\xfeabc");
}

#[test]
fn bin_collation_only_ignores_trailing_spaces() {
    let bin = "utf8mb4_bin";
    assert_eq!(normalise(b"Bob   ", bin), b"Bob");
    assert_ne!(normalise(b"Bob", bin), normalise(b"bob", bin));
    assert_ne!(normalise("\u{e9}".as_bytes(), bin), normalise(b"e", bin));
    assert_eq!(normalise(b" a ", bin), b" a");
    let cfg = even(4);
    let hb = |v: &str| shard_for(&cfg, table(&cfg, "hb"), &s(v)).unwrap();
    assert_eq!(hb("Bob  "), hb("Bob"));
}

#[test]
fn binary_collation_is_exact() {
    assert_eq!(normalise(b"Bob  ", "binary"), b"Bob  ");
    assert_ne!(normalise(b"Bob ", "binary"), normalise(b"Bob", "binary"));
    let cfg = even(2);
    let hx = table(&cfg, "hx");
    assert_eq!(keyspace_id(hx, &s("a ")), Ok(mix64(fnv1a64(b"a "))));
}

#[test]
fn string_keys_given_as_numbers_use_their_decimal_text() {
    let cfg = even(4);
    let hs = table(&cfg, "hs");
    assert_eq!(keyspace_id(hs, &KeyValue::Int(-12)), keyspace_id(hs, &s("-12")));
    assert_eq!(keyspace_id(hs, &KeyValue::UInt(u64::MAX)), keyspace_id(hs, &s("18446744073709551615")));
}

/// 100k sequential keys land within 2% of an even share on every shard.
#[test]
fn sequential_int_keys_spread_evenly() {
    for n in [2usize, 4] {
        let cfg = even(n);
        let t = table(&cfg, "h");
        let mut counts = vec![0u32; n];
        let total = 100_000u32;
        for v in 0..total {
            counts[shard_for(&cfg, t, &KeyValue::Int(i64::from(v))).unwrap()] += 1;
        }
        let expected = f64::from(total) / n as f64;
        for (i, &c) in counts.iter().enumerate() {
            let off = (f64::from(c) - expected).abs() / expected;
            assert!(off <= 0.02, "{n} shards: shard {i} got {c} of {total} ({:.2}% off)", off * 100.0);
        }
    }
}
