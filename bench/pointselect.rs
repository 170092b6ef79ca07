//! Point-select latency and idle-connection footprint, for the numbers in
//! README "Performance". Not part of CI.
//!
//!   cargo run --release --example pointselect -- latency ADDR [N] [TABLE]
//!       1 client, N (default 10000) point selects by key (text protocol),
//!       prints median / p99 / mean in microseconds.
//!   cargo run --release --example pointselect -- idle ADDR N PID
//!       opens N idle connections to ADDR, then prints the RSS of process PID.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

fn opts(addr: &str) -> OptsBuilder {
    let (host, port) = addr.rsplit_once(':').expect("ADDR is host:port");
    OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port.parse().expect("port"))
        .prefer_socket(false)
        .user(Some("app"))
        .pass(Some("app"))
        .db_name(Some("app"))
}

fn rss_kib(pid: &str, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("latency") => {
            let addr = &args[2];
            let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10_000);
            let table = args.get(4).cloned().unwrap_or_else(|| "bench_users".into());
            let mut c = Conn::new(opts(addr)).await.expect("connect");
            let mut lat = Vec::with_capacity(n);
            for i in 0..(n + 500) {
                let q = format!("SELECT user_id, name FROM {table} WHERE user_id = {}", (i % 1000) + 1);
                let t = Instant::now();
                let _r: Option<(i64, String)> = c.query_first(q).await.expect("query");
                if i >= 500 {
                    lat.push(t.elapsed());
                }
            }
            lat.sort();
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            let mean = lat.iter().map(|d| us(*d)).sum::<f64>() / lat.len() as f64;
            println!(
                "{addr}: n={} median={:.1}us p99={:.1}us mean={:.1}us",
                lat.len(),
                us(lat[lat.len() / 2]),
                us(lat[lat.len() * 99 / 100]),
                mean
            );
        }
        Some("idle") => {
            let addr = &args[2];
            let n: usize = args[3].parse().expect("N");
            let pid = &args[4];
            let before = rss_kib(pid, "VmRSS:");
            let mut conns = Vec::with_capacity(n);
            for _ in 0..n {
                conns.push(Conn::new(opts(addr)).await.expect("connect"));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = rss_kib(pid, "VmRSS:");
            let peak = rss_kib(pid, "VmHWM:");
            println!(
                "{n} idle connections: RSS {before} KiB -> {after} KiB (peak {peak} KiB), {:.1} KiB per connection",
                (after.saturating_sub(before)) as f64 / n as f64
            );
            drop(conns);
        }
        _ => eprintln!("usage: pointselect latency ADDR [N] [TABLE] | idle ADDR N PID"),
    }
}
