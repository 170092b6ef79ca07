//! Differential test: the same dataset in one plain MariaDB (the reference) and, through
//! shardgate, in a 2-shard cluster (primary + replica each); every corpus query runs on both and
//! the answers must match (rules in `support::diff` and `support::diff_rules`).
//!
//! Corpus: `tests/differential/corpus.sql` (hand-written), [`GENERATED`] queries from the seeded
//! generator (`support::querygen`), and `tests/differential/refused.sql`, queries the proxy must
//! refuse with error 1235 (not compared).
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-diff cargo test --test differential -- --nocapture
//! SHARDGATE_DIFF_ONLY=gen:01 cargo test --test differential corpus -- --nocapture  # a subset
//! SHARDGATE_DIFF_SEED=7 ...      # another generated corpus (default: dataset::SEED)
//! SHARDGATE_DIFF_VERBOSE=1 ...   # also list passing queries
//! ```
//!
//! The tests at the end check the comparator and the rules without servers.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use support::corpus::{self, Query};
use support::diff::{compare, fold, Col, Kind, Mismatch, Order, ResultSet, Rules};
use support::diff_rules::{Annotation, Shape};
use support::diff_run::{fetch, judge, Failure, Outcome, Protocol};
use support::proxy::Proxy;
use support::{dataset, fixtures, querygen, Cluster, ClusterOptions};

/// Generated queries, on top of the hand-written corpus.
const GENERATED: usize = 120;
/// The corpus must have at least this many compared queries.
const MIN_QUERIES: usize = 200;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A plain MariaDB: one shard, no replica.
const PLAIN: ClusterOptions = ClusterOptions { shards: 1, replicas: 0, semi_sync: false };

/// A connection to a plain server as app on db app, with ONLY_FULL_GROUP_BY.
async fn reference_conn(reference: &Cluster) -> Conn {
    let addr = reference.shards()[0].primary;
    let opts = OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .prefer_socket(false)
        .user(Some("app"))
        .pass(Some("app"))
        .db_name(Some("app"));
    let mut c = Conn::new(Opts::from(opts)).await.expect("connect to the reference server");
    // Queries that are not valid under ONLY_FULL_GROUP_BY fail here, as corpus errors.
    c.query_drop("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ONLY_FULL_GROUP_BY')").await.unwrap();
    c
}

/// Runs `stmt` on the reference and through the proxy.
async fn both(reference: &mut Conn, proxy: &mut Conn, stmt: &str) {
    let (r, p) = tokio::join!(reference.query_drop(stmt), proxy.query_drop(stmt));
    let short: String = stmt.chars().take(120).collect();
    r.unwrap_or_else(|e| panic!("reference: {short}...: {e}"));
    p.unwrap_or_else(|e| panic!("through the proxy: {short}...: {e}"));
}

/// Creates and fills the tables on both sides, then checks that every row landed once.
async fn load(cluster: &Cluster, ref_addr: SocketAddr, proxy: &Proxy, reference: &mut Conn, pc: &mut Conn) {
    let started = Instant::now();
    for stmt in dataset::ddl("") {
        both(reference, pc, &stmt).await;
    }
    // dx_lopsided: keys that all hash to shard s1, so s0's part is empty.
    let keys: Vec<i64> =
        (1..).filter(|&k| fixtures::owner(proxy, "dx_lopsided", k) == 1).take(dataset::LOPSIDED).collect();
    let show = format!("SHOW SHARDGATE ROUTE SELECT * FROM dx_lopsided WHERE id = {}", keys[0]);
    let route = support::proxy::rows(pc, &show).await;
    assert_eq!(route[0][0].as_deref(), Some("s1"), "SHOW SHARDGATE ROUTE agrees on the owner: {route:?}");
    for table in dataset::all_rows(&keys) {
        for stmt in table.inserts(false) {
            both(reference, pc, &stmt).await;
        }
    }
    for s in cluster.shards() {
        cluster.wait_replicated(s);
    }
    let tables = ["dx_items", "dx_big", "dx_lopsided", "dx_empty", "dx_countries"];
    for table in tables {
        let want: i64 = fixtures::count_on(ref_addr, table, "");
        let counts: Vec<i64> = cluster.shards().iter().map(|s| fixtures::count_on(s.replicas[0], table, "")).collect();
        if table == "dx_countries" {
            assert!(
                counts.iter().all(|&c| c == want),
                "broadcast {table}: {counts:?} on the shards, {want} in the reference"
            );
        } else {
            assert_eq!(counts.iter().sum::<i64>(), want, "{table}: shards hold {counts:?}, the reference {want}");
        }
        println!("loaded {table}: reference {want} rows, shard replicas {counts:?}");
    }
    let lop: Vec<i64> = cluster.shards().iter().map(|s| fixtures::count_on(s.primary, "dx_lopsided", "")).collect();
    assert_eq!(lop[0], 0, "dx_lopsided must leave shard s0 empty: {lop:?}");
    println!("dataset loaded in {:.1?}", started.elapsed());
}

/// Judges every query, printing each failure's report as it comes (passes too, verbose).
async fn run_all<F, Fut>(
    queries: &[Query],
    reference: &mut Conn,
    other: &mut Conn,
    reconnect: F,
    protocol: Protocol,
) -> Vec<Outcome>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Conn>,
{
    let verbose = env("SHARDGATE_DIFF_VERBOSE").is_some();
    let mut outcomes = Vec::new();
    for q in queries {
        let t = Instant::now();
        let o = judge(q, reference, other, &reconnect, protocol).await;
        if !o.passed() {
            println!("{}", o.report());
        } else if verbose {
            println!("ok   [{}] {:.0?} {}", q.id, t.elapsed(), q.sql);
        }
        outcomes.push(o);
    }
    outcomes
}

/// Every compared query: the hand-written corpus, then the generated one.
fn compared_queries() -> Vec<Query> {
    let seed = env("SHARDGATE_DIFF_SEED").map_or(dataset::SEED, |s| s.parse().expect("SHARDGATE_DIFF_SEED: a number"));
    let mut all = corpus::load("corpus.sql");
    all.extend(querygen::generate(seed, GENERATED));
    all
}

fn summary(outcomes: &[Outcome]) -> String {
    let passed = outcomes.iter().filter(|o| o.passed()).count();
    let mut out =
        format!("differential: {} queries, {passed} passed, {} failed\n", outcomes.len(), outcomes.len() - passed);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut sources: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut orders: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unchecked = Vec::new();
    for o in outcomes {
        if !o.passed() {
            *kinds.entry(o.kind()).or_default() += 1;
        }
        let source = o.query.id.split(':').next().unwrap_or("").to_string();
        let e = sources.entry(source).or_default();
        e.0 += usize::from(o.passed());
        e.1 += 1;
        let order = match o.rules.as_ref().map(|r| &r.order) {
            Some(Order::Unordered) => "unordered",
            Some(Order::Total) => "total order",
            Some(Order::Keys(_)) => "key sequence",
            Some(Order::Unchecked(_)) => "order unchecked",
            None => "not compared",
        };
        *orders.entry(order).or_default() += 1;
        if matches!(o.rules.as_ref().map(|r| &r.order), Some(Order::Unchecked(_))) {
            unchecked.push(o.query.id.clone());
        }
    }
    let list = |m: &BTreeMap<String, usize>| m.iter().map(|(k, n)| format!("{k}: {n}")).collect::<Vec<_>>().join(", ");
    if !kinds.is_empty() {
        out.push_str(&format!("  failures by kind: {}\n", list(&kinds)));
    }
    let by_source: Vec<String> = sources.iter().map(|(s, (p, n))| format!("{s} {p}/{n} passed")).collect();
    out.push_str(&format!("  by source: {}\n", by_source.join(", ")));
    let by_order: Vec<String> = orders.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    out.push_str(&format!("  comparison: {}", by_order.join(", ")));
    if !unchecked.is_empty() {
        out.push_str(&format!("\n  order unchecked (no ORDER BY key in the output): {}", unchecked.join(" ")));
    }
    out
}

/// The refused corpus: each query must be valid on the reference and answer 1235 through the
/// proxy. Returns the failure reports.
async fn check_refused(reference: &mut Conn, pc: &mut Conn, proxy: &Proxy, only: Option<&str>) -> (usize, Vec<String>) {
    let queries = corpus::only(corpus::load("refused.sql"), only);
    let mut failures = Vec::new();
    for q in &queries {
        let (r, p) = tokio::join!(fetch(reference, &q.sql), fetch(pc, &q.sql));
        let problem = match (&r, &p) {
            (Err(f), _) => Some(format!("the reference server refused it too (fix the corpus): {f}")),
            (_, Err(Failure::Server { code: 1235, .. })) => None,
            (_, Err(f)) => Some(format!("proxy: {f}, expected error 1235")),
            (_, Ok(rs)) => Some(format!("proxy answered {} rows, expected error 1235", rs.rows.len())),
        };
        if matches!(&p, Err(f) if f.broken()) {
            *pc = proxy.conn().await;
        }
        match problem {
            Some(why) => failures.push(format!("REFUSAL FAIL [{}] {}\n  {why}", q.id, q.sql)),
            None if env("SHARDGATE_DIFF_VERBOSE").is_some() => println!("refused ok [{}] {}", q.id, q.sql),
            None => {}
        }
    }
    (queries.len(), failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_matches_plain_mariadb() {
    let started = Instant::now();
    let only = env("SHARDGATE_DIFF_ONLY");
    let queries = corpus::only(compared_queries(), only.as_deref());
    assert!(!queries.is_empty(), "SHARDGATE_DIFF_ONLY={only:?} matches no query");
    // The plain reference MariaDB starts while the cluster does.
    let ref_thread = std::thread::spawn(|| Cluster::start(PLAIN));
    let cluster = Cluster::shared();
    let reference = ref_thread.join().expect("reference server start");
    let proxy = Proxy::start(&cluster.shardgate_config(&dataset::proxy_tables()));
    let mut rc = reference_conn(&reference).await;
    let mut pc = proxy.conn().await;
    load(cluster, reference.shards()[0].primary, &proxy, &mut rc, &mut pc).await;

    let outcomes = run_all(&queries, &mut rc, &mut pc, || proxy.conn(), Protocol::Text).await;
    // The same corpus as prepared statements (binary protocol) on both sides.
    let prepared = run_all(&queries, &mut rc, &mut pc, || proxy.conn(), Protocol::Prepared).await;
    let (refused, refusal_failures) = check_refused(&mut rc, &mut pc, &proxy, only.as_deref()).await;
    for f in &refusal_failures {
        println!("{f}");
    }
    println!("{}", summary(&outcomes));
    println!("prepared (binary protocol): {}", summary(&prepared));
    println!(
        "refused: {refused} queries, {} answered 1235, {} did not",
        refused - refusal_failures.len(),
        refusal_failures.len()
    );
    println!("differential run took {:.1?}", started.elapsed());

    let failed = outcomes.iter().chain(&prepared).filter(|o| !o.passed()).count();
    if only.is_none() {
        assert!(outcomes.len() >= MIN_QUERIES, "the corpus has {} queries, fewer than {MIN_QUERIES}", outcomes.len());
    }
    assert!(
        failed == 0 && refusal_failures.is_empty(),
        "{failed} of {} queries differ from the reference and {} refusals failed (reports above)",
        outcomes.len(),
        refusal_failures.len()
    );
}

/// The harness itself: a second plain MariaDB with the same rows, but stored as MyISAM and
/// inserted in reverse order, scans rows in another order (other tie orders, other GROUP BY
/// representatives such as 'bob' for 'Bob', DOUBLE sums added in another order). It is a
/// correct answer to every query, so every comparison must pass: no false alarms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_accepts_a_server_that_scans_in_another_order() {
    let only = env("SHARDGATE_DIFF_ONLY");
    let queries = corpus::only(compared_queries(), only.as_deref());
    let other_thread = std::thread::spawn(|| Cluster::start(PLAIN));
    let reference = Cluster::start(PLAIN);
    let other = other_thread.join().expect("second server start");
    let mut rc = reference_conn(&reference).await;
    let mut oc = reference_conn(&other).await;
    let keys: Vec<i64> = (1..=dataset::LOPSIDED as i64).collect();
    for (c, options, reverse) in [(&mut rc, "", false), (&mut oc, "ENGINE=MyISAM", true)] {
        for stmt in dataset::ddl(options) {
            c.query_drop(stmt).await.unwrap();
        }
        for table in dataset::all_rows(&keys) {
            for stmt in table.inserts(reverse) {
                c.query_drop(stmt).await.unwrap();
            }
        }
    }
    let scan = "SELECT id, name FROM dx_items LIMIT 1";
    let (a, b) = (support::proxy::rows(&mut rc, scan).await, support::proxy::rows(&mut oc, scan).await);
    println!("first row scanned: {a:?} on the reference, {b:?} on the other server");
    let outcomes = run_all(&queries, &mut rc, &mut oc, || reference_conn(&other), Protocol::Text).await;
    println!("harness self-check: {}", summary(&outcomes));
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    assert_eq!(failed, 0, "the harness rejected {failed} correct answers (reports above)");
}

// --- the comparator and the rules, without servers ------------------------------------------

fn rs(columns: &[(&str, Kind)], rows: &[&[Option<&str>]]) -> ResultSet {
    ResultSet {
        columns: columns.iter().map(|(n, k)| Col::new(n, "T", *k)).collect(),
        rows: rows.iter().map(|r| r.iter().map(|c| c.map(str::to_string)).collect()).collect(),
    }
}

fn rules_of(sql: &str, names: &[&str]) -> Rules {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    Shape::parse(sql).unwrap().rules(&names, None)
}

#[test]
fn ties_may_come_in_any_order_but_key_values_may_not() {
    let cols = [("grp", Kind::Exact), ("id", Kind::Exact)];
    let reference = rs(&cols, &[&[Some("1"), Some("10")], &[Some("1"), Some("11")], &[Some("2"), Some("12")]]);
    let ties_swapped = rs(&cols, &[&[Some("1"), Some("11")], &[Some("1"), Some("10")], &[Some("2"), Some("12")]]);
    let keys = Rules { order: Order::Keys(vec![0]), ambiguous: vec![] };
    assert_eq!(compare(&reference, &ties_swapped, &keys), Ok(()));
    let total = Rules { order: Order::Total, ambiguous: vec![] };
    assert!(matches!(compare(&reference, &ties_swapped, &total), Err(Mismatch::Order { at: 0, .. })));
    let keys_wrong = rs(&cols, &[&[Some("1"), Some("10")], &[Some("2"), Some("12")], &[Some("1"), Some("11")]]);
    let err = compare(&reference, &keys_wrong, &keys).unwrap_err();
    assert!(matches!(err, Mismatch::Order { at: 1, .. }), "{err}");
    assert!(err.to_string().contains("#2"), "the report names the first differing row: {err}");
    assert_eq!(compare(&reference, &keys_wrong, &Rules::unordered()), Ok(()), "same multiset");
}

#[test]
fn floats_compare_with_relative_tolerance_and_decimals_exactly() {
    let f = [("s", Kind::Float)];
    let a = rs(&f, &[&[Some("0.30000000000000004")], &[Some("1e15")]]);
    let b = rs(&f, &[&[Some("1000000000000000.1")], &[Some("0.3")]]);
    assert_eq!(compare(&a, &b, &Rules::unordered()), Ok(()));
    let c = rs(&f, &[&[Some("0.3001")], &[Some("1e15")]]);
    assert!(compare(&a, &c, &Rules::unordered()).is_err());
    let near_zero = |v: &str| rs(&f, &[&[Some(v)]]);
    assert_eq!(compare(&near_zero("0"), &near_zero("3.552713678800501e-15"), &Rules::unordered()), Ok(()));
    assert!(compare(&near_zero("0"), &near_zero("0.001"), &Rules::unordered()).is_err());
    let d = [("avg", Kind::Exact)];
    assert!(compare(&rs(&d, &[&[Some("1.5000")]]), &rs(&d, &[&[Some("1.50")]]), &Rules::unordered()).is_err());
}

#[test]
fn null_is_not_the_empty_string_and_rows_are_counted() {
    let t = [("name", Kind::Text)];
    let null = rs(&t, &[&[None]]);
    let empty = rs(&t, &[&[Some("")]]);
    let err = compare(&null, &empty, &Rules::unordered()).unwrap_err();
    assert!(err.to_string().contains("NULL") && err.to_string().contains("''"), "{err}");
    let twice = rs(&t, &[&[Some("a")], &[Some("a")]]);
    let once = rs(&t, &[&[Some("a")]]);
    assert!(matches!(compare(&twice, &once, &Rules::unordered()), Err(Mismatch::Rows { counts: (1, 0), .. })));
}

#[test]
fn collation_equal_text_is_accepted_only_where_ambiguous() {
    assert_eq!(fold("bob "), fold("BOB"));
    assert_eq!(fold("Zoë"), fold("zoe"));
    assert_eq!(fold("Ärger"), fold("arger"));
    assert_ne!(fold("日本"), fold("日本語"));
    assert_ne!(fold(" lead"), fold("lead"));
    let t = [("name", Kind::Text), ("n", Kind::Exact)];
    let a = rs(&t, &[&[Some("Bob"), Some("4")], &[Some("zoe"), Some("2")]]);
    let b = rs(&t, &[&[Some("Zoë"), Some("2")], &[Some("bob "), Some("4")]]);
    assert!(compare(&a, &b, &Rules::unordered()).is_err(), "plain rows: exact text");
    assert_eq!(compare(&a, &b, &Rules { order: Order::Unordered, ambiguous: vec![0] }), Ok(()));
    // Binary strings never fold.
    let bin = [("code", Kind::Binary)];
    assert!(compare(&rs(&bin, &[&[Some("0x61")]]), &rs(&bin, &[&[Some("0x41")]]), &Rules::unordered()).is_err());
}

#[test]
fn extra_or_renamed_columns_fail_the_header_check() {
    let a = rs(&[("grp", Kind::Exact)], &[&[Some("1")]]);
    let b = rs(&[("grp", Kind::Exact), ("__sg_sort", Kind::Exact)], &[&[Some("1"), Some("1")]]);
    let err = compare(&a, &b, &Rules::unordered()).unwrap_err();
    assert!(matches!(err, Mismatch::Header { .. }) && err.to_string().contains("__sg_sort"), "{err}");
}

#[test]
fn order_rules_from_the_query_text() {
    let r = rules_of("SELECT name, price FROM dx_items ORDER BY price DESC, name", &["name", "price"]);
    assert_eq!(r.order, Order::Keys(vec![1, 0]));
    assert!(r.ambiguous.is_empty());
    let r = rules_of("SELECT name FROM dx_items ORDER BY price, id LIMIT 5", &["name"]);
    assert_eq!(r.order, Order::Total);
    let r = rules_of("SELECT grp, COUNT(*) AS n FROM dx_items GROUP BY grp ORDER BY n DESC", &["grp", "n"]);
    assert_eq!(r.order, Order::Keys(vec![1]));
    let r = rules_of("SELECT grp, COUNT(*) AS n FROM dx_items GROUP BY grp ORDER BY n DESC, 1 LIMIT 3", &["grp", "n"]);
    assert_eq!(r.order, Order::Total);
    let r =
        rules_of("SELECT name, MIN(name), COUNT(*) FROM dx_items GROUP BY name", &["name", "MIN(name)", "COUNT(*)"]);
    assert_eq!(r.ambiguous, vec![0, 1]);
    let r = rules_of("SELECT price*qty AS t FROM dx_items ORDER BY price * qty", &["t"]);
    assert_eq!(r.order, Order::Keys(vec![0]));
    let r = rules_of("SELECT * FROM dx_items ORDER BY score", &["id", "grp", "score"]);
    assert_eq!(r.order, Order::Keys(vec![2]));
    let r = rules_of("SELECT name FROM dx_items ORDER BY LOWER(name)", &["name"]);
    assert!(matches!(r.order, Order::Unchecked(_)));
    let r = rules_of("SELECT DISTINCT grp, sub FROM dx_items ORDER BY sub, grp LIMIT 4", &["grp", "sub"]);
    assert_eq!(r.order, Order::Total);
    let r = rules_of("SELECT COUNT(*), MAX(name) FROM dx_items ORDER BY 1 LIMIT 1", &["COUNT(*)", "MAX(name)"]);
    assert_eq!((r.order, r.ambiguous), (Order::Unordered, vec![1]));
    let s = Shape::parse("SELECT grp FROM dx_items ORDER BY grp LIMIT 3").unwrap();
    assert!(s.check_limit(&s.rules(&["grp".into()], None)).is_err(), "LIMIT on ties is a corpus error");
    let annotated = s.rules(&["grp".into()], Annotation::parse("order: total").unwrap().as_ref());
    assert_eq!(annotated.order, Order::Total);
}

#[test]
fn corpus_files_parse_and_comments_respect_quotes() {
    assert_eq!(corpus::split_comment("SELECT '#x' FROM t # keys: 1"), ("SELECT '#x' FROM t ", Some(" keys: 1")));
    let q = corpus::parse("t", "# comment\n\nSELECT 1; # order: total\nSELECT 'a#b'\n");
    assert_eq!(q.len(), 2);
    assert_eq!(
        (q[0].id.as_str(), q[0].sql.as_str(), q[0].annotation.clone()),
        ("t:3", "SELECT 1", Some(Annotation::Total))
    );
    assert_eq!(q[1].sql, "SELECT 'a#b'");
    let hand = corpus::load("corpus.sql");
    assert!(hand.len() >= 120, "the hand-written corpus has {} queries", hand.len());
    for q in hand.iter().chain(&corpus::load("refused.sql")) {
        Shape::parse(&q.sql).unwrap_or_else(|e| panic!("[{}] {}: {e}", q.id, q.sql));
    }
}

#[test]
fn generated_queries_are_deterministic_and_obey_the_limit_rule() {
    let a = querygen::generate(dataset::SEED, GENERATED);
    let b = querygen::generate(dataset::SEED, GENERATED);
    assert_eq!(a.iter().map(|q| &q.sql).collect::<Vec<_>>(), b.iter().map(|q| &q.sql).collect::<Vec<_>>());
    let all_columns: Vec<String> =
        ["id", "grp", "sub", "price", "score", "qty", "name", "created", "code"].map(String::from).to_vec();
    for q in &a {
        let shape = Shape::parse(&q.sql).unwrap_or_else(|e| panic!("[{}] {}: {e}", q.id, q.sql));
        let names = shape.width().map_or(all_columns.clone(), |w| (0..w).map(|i| format!("c{i}")).collect());
        let rules = shape.rules(&names, None);
        shape.check_limit(&rules).unwrap_or_else(|e| panic!("[{}] {}: {e}", q.id, q.sql));
    }
    assert_eq!(dataset::datetime(0), "2024-01-01 00:00:00");
    assert_eq!(dataset::datetime(60 * 1440 + 61), "2024-03-01 01:01:00", "2024 is a leap year");
}

/// Prints the generated corpus: `cargo test --test differential dump_generated -- --ignored --nocapture`.
#[test]
#[ignore = "a debugging aid, not a check: prints the generated corpus (run with --ignored --nocapture)"]
fn dump_generated() {
    for q in querygen::generate(dataset::SEED, GENERATED) {
        println!("{} {}", q.id, q.sql);
    }
}
