//! Cross-shard merges run in flat proxy memory: 1,000,000 rows over 2 shards, read through the
//! real `shardgate` binary (a child process, so its memory can be read from /proc), with
//! `ORDER BY v DESC LIMIT 10` (checked against the shards) and a full `ORDER BY` streamed row by
//! row (order and count checked as they arrive). The proxy's peak RSS (VmHWM) may grow by less
//! than [`MAX_GROWTH`] over its value before the queries. Also prints `SELECT COUNT(*)` timed
//! through the proxy and directly on each shard (no timing assertion).
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-diff cargo test --test merge_memory -- --nocapture
//! ```
//!
//! The table is `algorithm = "mod"` on `id`, so the rows of each shard can be generated on the
//! shard itself (`INSERT ... SELECT` from MariaDB's SEQUENCE engine: even ids on s0, odd on s1),
//! which is far faster than 1M rows through a client. No replicas: reads go to the primaries.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row};
use shardgate::config::TableRule;
use shardgate::router::algorithm::shard_for;
use shardgate::router::KeyValue;
use support::{process, sql, Cluster, ClusterOptions};

const ROWS: i64 = 1_000_000;
/// Rows per `INSERT ... SELECT` on one shard.
const LOAD_CHUNK: i64 = 100_000;
/// How much the proxy's VmHWM may grow while it merges.
const MAX_GROWTH: u64 = 64 << 20;
/// `v` of row `id` is `id * V_MUL % V_MOD`: unique (V_MOD is a prime above ROWS), and not in id order.
const V_MUL: i64 = 7919;
const V_MOD: i64 = 1_000_003;

/// Filler per row: the whole result is ~150 MiB on the wire, so a proxy that buffered it (or
/// even one shard's half) would blow [`MAX_GROWTH`].
const PAD: usize = 120;
/// The streaming client stops reading for this long after [`PAUSE_AFTER`] rows: a proxy that
/// reads the shards without backpressure fills its memory meanwhile.
const PAUSE: Duration = Duration::from_secs(2);
const PAUSE_AFTER: i64 = 10_000;

const TABLE: &str = "[[tables]]\nname = \"mm_big\"\nshard_key = \"id\"\nalgorithm = \"mod\"\n";

/// VmRSS and VmHWM of process `pid`, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in status"));
        let kb: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB");
        kb * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Fills `mm_big` on every shard: the ids shard `i` owns under `mod` (`id % 2 == i`).
fn load(cluster: &Cluster) {
    let started = Instant::now();
    let shards = cluster.shards();
    std::thread::scope(|scope| {
        for (i, shard) in shards.iter().enumerate() {
            scope.spawn(move || {
                sql::exec(
                    shard.primary,
                    "CREATE TABLE mm_big (id BIGINT PRIMARY KEY, v INT NOT NULL, pad VARCHAR(160) NOT NULL)",
                );
                let n = shards.len() as i64;
                for lo in (0..ROWS).step_by(LOAD_CHUNK as usize) {
                    // The first id above `lo` that this shard owns, then every n-th.
                    let first = lo + 1 + (i as i64 - (lo + 1)).rem_euclid(n);
                    let last = lo + LOAD_CHUNK;
                    sql::exec(
                        shard.primary,
                        &format!(
                            "INSERT INTO mm_big (id, v, pad) SELECT seq, seq * {V_MUL} % {V_MOD}, \
                             CONCAT('row-', seq, '-', REPEAT('x', {PAD})) FROM seq_{first}_to_{last}_step_{n}"
                        ),
                    );
                }
            });
        }
    });
    let counts: Vec<i64> = shards
        .iter()
        .map(|s| sql::scalar(s.primary, "SELECT COUNT(*) FROM mm_big").unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<i64>(), ROWS, "rows per shard: {counts:?}");
    println!("loaded {ROWS} rows ({counts:?} per shard) in {:.1?}", started.elapsed());
}

/// The running binary: its pid and client address.
struct Child {
    pid: u32,
    addr: SocketAddr,
}

impl Drop for Child {
    fn drop(&mut self) {
        process::kill(self.pid);
    }
}

/// Starts `shardgate --config <dir>/shardgate.toml` and waits for its "serving" log line.
fn start_proxy(cluster: &Cluster) -> Child {
    let config = cluster.shardgate_config(TABLE);
    // The key filter of `load` is the proxy's own placement.
    let cfg = shardgate::config::validate::parse(&config).expect("config");
    let Some(TableRule::Sharded(t)) = cfg.table("mm_big") else { panic!("mm_big is not sharded") };
    for k in [1i64, 2, 3, 999_999, 1_000_000] {
        assert_eq!(shard_for(&cfg, t, &KeyValue::Int(k)).unwrap() as i64, k % 2, "owner of key {k}");
    }
    let path = cluster.dir().join("shardgate.toml");
    std::fs::write(&path, config).expect("write the config");
    let log = cluster.dir().join("shardgate.log");
    let bin = Path::new(env!("CARGO_BIN_EXE_shardgate"));
    let pid = process::spawn(bin, &["--config", path.to_str().expect("utf-8 path")], &log).expect("spawn shardgate");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        // Log fields may be wrapped in ANSI colour codes: drop every escape sequence.
        let plain = strip_ansi(&text);
        if let Some(line) = plain.lines().find(|l| l.contains("shardgate is serving")) {
            let addr = line.split("listen=").nth(1).and_then(|r| r.split_whitespace().next()).expect("listen= in log");
            return Child { pid, addr: addr.parse().expect("listen address") };
        }
        assert!(process::is_running(pid), "shardgate exited; its log:\n{text}");
        assert!(Instant::now() < deadline, "shardgate did not start within 30 s; its log:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn client(addr: SocketAddr) -> Conn {
    let opts = OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .prefer_socket(false)
        .user(Some("app"))
        .pass(Some("app"))
        .db_name(Some("app"));
    Conn::new(Opts::from(opts)).await.expect("connect through shardgate")
}

type Top = Vec<(i64, i64, String)>;

/// The 10 rows with the largest v, computed from each shard's own top 10.
fn expected_top10(cluster: &Cluster) -> Top {
    let mut all: Top = Vec::new();
    for s in cluster.shards() {
        for r in sql::sql(s.primary, "SELECT id, v, pad FROM mm_big ORDER BY v DESC, id LIMIT 10") {
            let cell = |i: usize| r[i].clone().expect("not null");
            all.push((cell(0).parse().unwrap(), cell(1).parse().unwrap(), cell(2)));
        }
    }
    all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(10);
    all
}

/// Streams the full ORDER BY through the proxy row by row, pausing once; checks order and count.
/// Returns the proxy's largest VmRSS seen while streaming.
async fn stream_all(c: &mut Conn, pid: u32) -> Result<u64, String> {
    let q = "SELECT id, v, pad FROM mm_big ORDER BY v, id";
    let started = Instant::now();
    let mut result = c.query_iter(q).await.map_err(|e| format!("{q}: {e}"))?;
    let mut n: i64 = 0;
    let mut prev: Option<(i64, i64)> = None;
    let mut peak_rss = 0;
    while let Some(row) = result.next().await.map_err(|e| format!("{q}: after {n} rows: {e}"))? {
        let row: Row = row;
        let (id, v): (i64, i64) = (row.get(0).expect("id"), row.get(1).expect("v"));
        if let Some(p) = prev {
            if (v, id) <= p {
                return Err(format!("{q}: row {n} (v={v}, id={id}) is not after (v={}, id={})", p.0, p.1));
            }
        }
        prev = Some((v, id));
        n += 1;
        if n == PAUSE_AFTER {
            tokio::time::sleep(PAUSE).await;
            peak_rss = peak_rss.max(memory(pid).0);
        }
        if n % 50_000 == 0 {
            peak_rss = peak_rss.max(memory(pid).0);
        }
    }
    println!("streamed {n} rows in order through the proxy in {:.1?}", started.elapsed());
    if n != ROWS {
        return Err(format!("{q}: {n} rows, expected {ROWS}"));
    }
    Ok(peak_rss)
}

/// `SELECT COUNT(*)` through the proxy and directly on each shard, timed.
async fn time_count(c: &mut Conn, cluster: &Cluster) {
    let q = "SELECT COUNT(*) FROM mm_big";
    let t = Instant::now();
    let through: Result<Option<i64>, _> = c.query_first(q).await;
    println!("COUNT(*) through the proxy: {through:?} in {:.1?}", t.elapsed());
    for s in cluster.shards() {
        let t = Instant::now();
        let n = sql::scalar(s.primary, q);
        println!("COUNT(*) directly on {}: {n:?} in {:.1?}", s.name, t.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_by_limit_and_full_sort_over_1m_rows_in_flat_proxy_memory() {
    let started = Instant::now();
    let cluster = Cluster::start(ClusterOptions { shards: 2, replicas: 0, semi_sync: false });
    load(&cluster);
    let proxy = start_proxy(&cluster);
    let mut c = client(proxy.addr).await;
    // Warm up pools and buffers with a small scatter read before the baseline.
    let warm: Vec<Row> = c.query("SELECT id, v FROM mm_big WHERE id IN (1, 2, 3, 4)").await.expect("warm-up read");
    assert_eq!(warm.len(), 4);
    let (rss0, hwm0) = memory(proxy.pid);
    println!("proxy before the queries: VmRSS {}, VmHWM {}", mib(rss0), mib(hwm0));
    let mut failures = Vec::new();

    let want = expected_top10(&cluster);
    let q = "SELECT id, v, pad FROM mm_big ORDER BY v DESC, id LIMIT 10";
    let t = Instant::now();
    match c.query::<(i64, i64, String), _>(q).await {
        Ok(got) if got == want => println!("{q}: the right 10 rows in {:.1?}", t.elapsed()),
        Ok(got) => failures.push(format!("{q}:\n  got  {got:?}\n  want {want:?}")),
        Err(e) => failures.push(format!("{q}: {e}")),
    }
    let (rss1, hwm1) = memory(proxy.pid);
    println!("proxy after ORDER BY ... LIMIT 10: VmRSS {}, VmHWM {}", mib(rss1), mib(hwm1));

    match stream_all(&mut c, proxy.pid).await {
        Ok(peak) => println!("proxy VmRSS peak while streaming: {}", mib(peak)),
        Err(e) => {
            failures.push(e);
            c = client(proxy.addr).await;
        }
    }
    let (rss2, hwm2) = memory(proxy.pid);
    println!("proxy after the full ORDER BY: VmRSS {}, VmHWM {}", mib(rss2), mib(hwm2));
    time_count(&mut c, &cluster).await;

    let growth = hwm2.saturating_sub(hwm0);
    println!("proxy VmHWM grew by {} (limit {}); test took {:.1?}", mib(growth), mib(MAX_GROWTH), started.elapsed());
    if growth >= MAX_GROWTH {
        failures.push(format!("proxy VmHWM grew by {}, from {} to {}", mib(growth), mib(hwm0), mib(hwm2)));
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
