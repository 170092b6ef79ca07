//! `GET /metrics` on the admin port over a real 2-shard cluster: a known
//! workload moves each counter by exactly its size.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use support::fixtures::{owner, sharded};
use support::proxy::{err_code, unique, Proxy};
use support::Cluster;

/// One sample line: its labels and value.
type Sample = (BTreeMap<String, String>, f64);

/// The samples of a scrape, by metric name.
struct Scrape(BTreeMap<String, Vec<Sample>>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {line}"));
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let labels = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("bad label in {line}"));
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            out.entry(name.to_owned()).or_default().push((labels, value.parse().expect("a number")));
        }
        Scrape(out)
    }

    /// The sample with exactly these labels (0 when the series does not exist yet).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.0.get(name).and_then(|s| s.iter().find(|(l, _)| *l == want)).map_or(0.0, |(_, v)| *v)
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.0.get(name).is_some_and(|s| s.iter().any(|(l, _)| *l == want))
    }

    fn series(&self, name: &str) -> &[Sample] {
        self.0.get(name).map_or(&[], |v| v.as_slice())
    }
}

/// GET /metrics: (Content-Type, parsed body).
async fn scrape(admin: SocketAddr) -> (String, Scrape) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(admin).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap_or_else(|| panic!("no Content-Type in {head}"))
        .to_owned();
    (content_type, Scrape::parse(body))
}

/// Polls until the client connections gauge reads `n`.
async fn wait_clients(admin: SocketAddr, n: f64) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, s) = scrape(admin).await;
        if s.get("shardgate_client_connections", &[]) == n {
            return s;
        }
        assert!(Instant::now() < deadline, "client connections never reached {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_known_workload_moves_every_counter_by_its_size() {
    let cluster = Cluster::shared();
    let t = unique("m_users");
    let cfg =
        cluster.shardgate_config(&sharded(&t)).replacen("[proxy]\n", "[proxy]\nadmin_listen = \"127.0.0.1:0\"\n", 1);
    let proxy = Proxy::start(&cfg);
    let admin = proxy.admin_addr().expect("admin port");
    let mut c = proxy.conn().await;
    c.query_drop(format!("CREATE TABLE {t} (user_id BIGINT PRIMARY KEY, name VARCHAR(64))")).await.unwrap();
    let stmt = c.prep(format!("SELECT name FROM {t} WHERE user_id = ?")).await.unwrap();
    let second = proxy.conn().await;

    // The baseline: after the driver's own statements at connect, and the setup.
    let (content_type, before) = scrape(admin).await;
    assert_eq!(content_type, "text/plain; version=0.0.4");
    assert_eq!(before.get("shardgate_client_connections", &[]), 2.0);

    let point_keys = [1i64, 2, 3, 4, 5];
    for k in point_keys {
        c.query_drop(format!("SELECT name FROM {t} WHERE user_id = {k}")).await.unwrap();
    }
    let prepared_keys = [6i64, 7];
    for k in prepared_keys {
        // COM_STMT_EXECUTE counts; the COM_STMT_PREPARE above did not.
        let _: Option<String> = c.exec_first(&stmt, (k,)).await.unwrap();
    }
    let insert_keys = [10i64, 11, 12];
    for k in insert_keys {
        c.query_drop(format!("INSERT INTO {t} (user_id, name) VALUES ({k}, 'n{k}')")).await.unwrap();
    }
    for _ in 0..2 {
        c.query_drop(format!("SELECT user_id FROM {t}")).await.unwrap();
    }
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!("INSERT INTO {t} (user_id, name) VALUES (20, 'tx')")).await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    let (code, _) = err_code(&mut c, &format!("INSERT INTO {t} (user_id, name) VALUES (10, 'again')")).await;
    assert_eq!(code, 1062, "the server's duplicate key error");
    let (code, _) = err_code(&mut c, "XA START 'metrics'").await;
    assert_eq!(code, 1235, "refused by the router");
    let (code, msg) = err_code(&mut c, &format!("SELEC user_id FRM {t}")).await;
    assert_eq!(code, 1235, "unparsable: {msg}");
    match Conn::new(Opts::from(proxy.opts().pass(Some("wrong")))).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045),
        other => panic!("expected access denied, got {other:?}"),
    }
    // The refused login's connection closes on its own; two stay open.
    let after = wait_clients(admin, 2.0).await;

    let delta = |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    let queries = |kind, route| delta("shardgate_queries_total", &[("kind", kind), ("route", route)]);
    let expected = [
        (("read", "single"), 7.0),
        (("write", "single"), 5.0), // 3 inserts, 1 in the transaction, 1 duplicate
        (("read", "all"), 2.0),
        (("tx", "admin"), 2.0),    // BEGIN (opens lazily), XA START (refused)
        (("tx", "single"), 1.0),   // COMMIT on the one shard the transaction touched
        (("other", "admin"), 1.0), // the unparsable statement
    ];
    let mut total = 0.0;
    for (labels, _) in after.series("shardgate_queries_total") {
        let (kind, route) = (labels["kind"].as_str(), labels["route"].as_str());
        let want = expected.iter().find(|(k, _)| *k == (kind, route)).map_or(0.0, |(_, n)| *n);
        assert_eq!(queries(kind, route), want, "queries_total{{kind={kind},route={route}}}");
        total += queries(kind, route);
    }
    assert_eq!(total, 18.0);
    for (route, n) in [("single", 13.0), ("all", 2.0), ("admin", 3.0), ("multi", 0.0)] {
        let count = delta("shardgate_query_duration_seconds_count", &[("route", route)]);
        assert_eq!(count, n, "query_duration_seconds_count{{route={route}}}");
    }
    let errors = |source| delta("shardgate_query_errors_total", &[("source", source)]);
    // client: XA START, the unparsable statement, the wrong password.
    assert_eq!((errors("client"), errors("backend"), errors("proxy")), (3.0, 1.0, 0.0));
    assert_eq!(delta("shardgate_unparsed_statements_total", &[]), 1.0);
    assert_eq!(delta("shardgate_auth_failures_total", &[]), 1.0);
    assert_eq!(delta("shardgate_client_connections_total", &[]), 1.0, "the refused login");

    // Statements per server: reads on the owning shard's replica (scatter
    // reads on both), writes on the owning shard's primary.
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    for k in point_keys.iter().chain(&prepared_keys) {
        *want.entry(cluster.shards()[owner(&proxy, &t, *k)].replicas[0].to_string()).or_default() += 1.0;
    }
    for k in insert_keys.iter().chain(&[20, 10]) {
        *want.entry(cluster.shards()[owner(&proxy, &t, *k)].primary.to_string()).or_default() += 1.0;
    }
    for s in cluster.shards() {
        *want.entry(s.replicas[0].to_string()).or_default() += 2.0;
    }
    for s in cluster.shards() {
        for (addr, role) in [(s.primary, "primary"), (s.replicas[0], "replica")] {
            let addr = addr.to_string();
            let labels = [("shard", s.name.as_str()), ("addr", addr.as_str()), ("role", role)];
            let sent = delta("shardgate_backend_queries_total", &labels);
            assert_eq!(sent, want.get(&addr).copied().unwrap_or(0.0), "backend_queries_total of {role} {addr}");
            assert_eq!(after.get("shardgate_backend_up", &labels), 1.0, "{role} {addr} is up");
            if role == "replica" {
                let lag = [("shard", s.name.as_str()), ("addr", addr.as_str())];
                assert!(after.has("shardgate_replica_lag_seconds", &lag), "lag of {addr}");
            }
            for state in ["idle", "active"] {
                let labels = [("shard", s.name.as_str()), ("addr", addr.as_str()), ("state", state)];
                assert!(after.has("shardgate_pool_connections", &labels), "pool {state} of {addr}");
            }
        }
    }
    assert_eq!(after.series("shardgate_backend_up").len(), 4, "one series per configured server");
    let idle: f64 = after.series("shardgate_pool_connections").iter().map(|(_, v)| v).sum();
    assert!(idle >= 1.0, "pooled connections are counted");
    assert_eq!(after.get("shardgate_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);

    second.disconnect().await.unwrap();
    wait_clients(admin, 1.0).await;
    c.disconnect().await.unwrap();
    wait_clients(admin, 0.0).await;
}
