//! Connection scaling: many idle-ish clients, a light query stream, the proxy's RSS.
//! Part of the benchmark suite (bench/run.sh), not of CI.
//!
//!   connscale ADDR CONNS INTERVAL_S SECS PID [TABLES] [TABLE_SIZE]
//!
//! 1. Reads VmRSS of process PID (the proxy).
//! 2. Opens CONNS client connections to ADDR (user app/app, database app), at most 256
//!    handshakes in flight, and keeps them open.
//! 3. Waits 2 s and reads VmRSS again: (after - before) / CONNS is the RSS per idle connection.
//! 4. For SECS seconds every connection sends one `SELECT c FROM sbtestT WHERE id = K` every
//!    INTERVAL_S seconds, start times spread evenly, so the stream is CONNS / INTERVAL_S queries/s.
//!    Latency is measured per query from send to the last packet of the result.
//! 5. Prints one `key=value` line (the suite parses it): rss before/idle/after, per-connection
//!    figures, achieved query rate, p50/p99/max latency, errors.
//!
//! The client speaks the MySQL protocol itself (handshake with mysql_native_password, COM_QUERY,
//! result sets read to their final EOF) so that 10,000 connections cost the load generator
//! a few KiB each and no per-connection setup queries reach the proxy, unlike a full driver.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const USER: &str = "app";
const PASS: &str = "app";
const DB: &str = "app";

type Res<T> = Result<T, String>;

struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn read_packet(&mut self) -> Res<(u8, Vec<u8>)> {
        let mut hdr = [0u8; 4];
        self.s.read_exact(&mut hdr).await.map_err(|e| format!("read header: {e}"))?;
        let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], 0]) as usize;
        let mut p = vec![0u8; len];
        self.s.read_exact(&mut p).await.map_err(|e| format!("read payload: {e}"))?;
        Ok((hdr[3], p))
    }

    async fn write_packet(&mut self, seq: u8, payload: &[u8]) -> Res<()> {
        self.buf.clear();
        let len = payload.len() as u32;
        self.buf.extend_from_slice(&len.to_le_bytes()[..3]);
        self.buf.push(seq);
        self.buf.extend_from_slice(payload);
        self.s.write_all(&self.buf).await.map_err(|e| format!("write: {e}"))
    }

    async fn connect(addr: &str) -> Res<Conn> {
        let s = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        s.set_nodelay(true).ok();
        let mut c = Conn { s, buf: Vec::with_capacity(256) };
        let (_, hs) = c.read_packet().await?;
        if hs.first() == Some(&0xff) {
            return Err(format!("server refused: {}", err_text(&hs)));
        }
        let scramble = parse_scramble(&hs).ok_or("bad handshake packet")?;
        // LONG_PASSWORD | CONNECT_WITH_DB | PROTOCOL_41 | TRANSACTIONS | SECURE_CONNECTION | PLUGIN_AUTH
        let caps: u32 = 0x1 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000;
        let mut p = Vec::with_capacity(128);
        p.extend_from_slice(&caps.to_le_bytes());
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(45); // utf8mb4_general_ci
        p.extend_from_slice(&[0u8; 23]);
        p.extend_from_slice(USER.as_bytes());
        p.push(0);
        let auth = native_password(&scramble, PASS);
        p.push(auth.len() as u8);
        p.extend_from_slice(&auth);
        p.extend_from_slice(DB.as_bytes());
        p.push(0);
        p.extend_from_slice(b"mysql_native_password\0");
        c.write_packet(1, &p).await?;
        let (seq, r) = c.read_packet().await?;
        match r.first() {
            Some(0x00) => Ok(c),
            Some(0xfe) => {
                // Auth switch: plugin name NUL, then the new scramble.
                let nul = r[1..].iter().position(|&b| b == 0).ok_or("bad auth switch")? + 1;
                let plugin = String::from_utf8_lossy(&r[1..nul]).to_string();
                if plugin != "mysql_native_password" {
                    return Err(format!("auth switch to unsupported plugin {plugin}"));
                }
                let mut data = r[nul + 1..].to_vec();
                if data.last() == Some(&0) {
                    data.pop();
                }
                let auth = native_password(&data, PASS);
                c.write_packet(seq.wrapping_add(1), &auth).await?;
                let (_, r2) = c.read_packet().await?;
                if r2.first() == Some(&0x00) {
                    Ok(c)
                } else {
                    Err(format!("login failed: {}", err_text(&r2)))
                }
            }
            _ => Err(format!("login failed: {}", err_text(&r))),
        }
    }

    /// COM_QUERY; reads the whole response. Returns an error for an ERR packet.
    async fn query(&mut self, sql: &str) -> Res<()> {
        let mut p = Vec::with_capacity(sql.len() + 1);
        p.push(0x03);
        p.extend_from_slice(sql.as_bytes());
        self.write_packet(0, &p).await?;
        let (_, first) = self.read_packet().await?;
        match first.first() {
            Some(0x00) => return Ok(()),
            Some(0xff) => return Err(format!("query error: {}", err_text(&first))),
            _ => {}
        }
        // Column definitions, EOF, rows, EOF (no CLIENT_DEPRECATE_EOF).
        let mut eofs = 0;
        while eofs < 2 {
            let (_, pk) = self.read_packet().await?;
            match pk.first() {
                Some(0xfe) if pk.len() < 9 => eofs += 1,
                Some(0xff) => return Err(format!("query error: {}", err_text(&pk))),
                _ => {}
            }
        }
        Ok(())
    }
}

fn parse_scramble(hs: &[u8]) -> Option<Vec<u8>> {
    if hs.first() != Some(&10) {
        return None;
    }
    let mut i = 1 + hs[1..].iter().position(|&b| b == 0)? + 1; // server version
    i += 4; // connection id
    let mut scramble = hs.get(i..i + 8)?.to_vec();
    i += 8 + 1 + 2 + 1 + 2 + 2; // part 1, filler, caps low, charset, status, caps high
    let auth_len = *hs.get(i)? as usize;
    i += 1 + 10;
    let part2 = auth_len.saturating_sub(8).max(13);
    let p2 = hs.get(i..i + part2)?;
    scramble.extend_from_slice(&p2[..12]);
    Some(scramble)
}

fn native_password(scramble: &[u8], pass: &str) -> Vec<u8> {
    let h1 = Sha1::digest(pass.as_bytes());
    let h2 = Sha1::digest(h1);
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(h2);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

fn err_text(p: &[u8]) -> String {
    if p.first() == Some(&0xff) && p.len() >= 3 {
        let code = u16::from_le_bytes([p[1], p[2]]);
        let msg = if p.get(3) == Some(&b'#') { &p[9.min(p.len())..] } else { &p[3..] };
        format!("{code} {}", String::from_utf8_lossy(msg))
    } else {
        format!("unexpected packet {:02x?}", &p[..p.len().min(16)])
    }
}

fn rss_kib(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Small xorshift: each connection its own sequence of keys, no shared RNG.
fn next_rand(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p / 100.0).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e6
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 6 {
        eprintln!("usage: connscale ADDR CONNS INTERVAL_S SECS PID [TABLES] [TABLE_SIZE]");
        std::process::exit(2);
    }
    let addr = a[1].clone();
    let n: usize = a[2].parse().expect("CONNS");
    let interval = Duration::from_secs_f64(a[3].parse().expect("INTERVAL_S"));
    let secs: f64 = a[4].parse().expect("SECS");
    let pid = a[5].clone();
    let tables: u64 = a.get(6).and_then(|s| s.parse().ok()).unwrap_or(8);
    let table_size: u64 = a.get(7).and_then(|s| s.parse().ok()).unwrap_or(100_000);

    let rss_before = rss_kib(&pid, "VmRSS:");
    let t_connect = Instant::now();
    let sem = Arc::new(Semaphore::new(256));
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        let sem = sem.clone();
        let addr = addr.clone();
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.unwrap();
            Conn::connect(&addr).await
        }));
    }
    let mut conns = Vec::with_capacity(n);
    let mut connect_errors = 0usize;
    let mut first_error = String::new();
    for h in handles {
        match h.await.unwrap() {
            Ok(c) => conns.push(c),
            Err(e) => {
                connect_errors += 1;
                if first_error.is_empty() {
                    first_error = e;
                }
            }
        }
    }
    let connect_secs = t_connect.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_kib(&pid, "VmRSS:");
    let opened = conns.len();

    // The light stream: connection i sends at start + i/opened * interval + k * interval.
    let lat = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let query_errors = Arc::new(AtomicU64::new(0));
    let first_qerr = Arc::new(Mutex::new(String::new()));
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::with_capacity(opened);
    for (i, mut c) in conns.into_iter().enumerate() {
        let lat = lat.clone();
        let query_errors = query_errors.clone();
        let first_qerr = first_qerr.clone();
        let offset = interval.mul_f64(i as f64 / opened.max(1) as f64);
        tasks.push(tokio::spawn(async move {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
            let mut mine = Vec::new();
            let mut at = start + offset;
            while at < end {
                tokio::time::sleep_until(at.into()).await;
                let t = 1 + next_rand(&mut rng) % tables;
                let id = 1 + next_rand(&mut rng) % table_size;
                let sql = format!("SELECT c FROM sbtest{t} WHERE id={id}");
                let t0 = Instant::now();
                match c.query(&sql).await {
                    Ok(()) => mine.push(t0.elapsed()),
                    Err(e) => {
                        if query_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            *first_qerr.lock().unwrap() = format!("{sql}: {e}");
                        }
                        break;
                    }
                }
                at += interval;
            }
            lat.lock().unwrap().extend(mine);
            c // keep the connection open until every task is done
        }));
    }
    let mut keep = Vec::with_capacity(opened);
    for t in tasks {
        keep.push(t.await.unwrap());
    }
    let stream_secs = start.elapsed().as_secs_f64();
    let rss_after = rss_kib(&pid, "VmRSS:");
    let rss_peak = rss_kib(&pid, "VmHWM:");
    drop(keep);

    let mut l = lat.lock().unwrap().clone();
    l.sort();
    let per = |after: u64| after.saturating_sub(rss_before) as f64 / opened.max(1) as f64;
    let qerr = first_qerr.lock().unwrap().clone();
    println!(
        "conns={n} opened={opened} connect_errors={connect_errors} connect_s={connect_secs:.2} \
         rss_before_kib={rss_before} rss_idle_kib={rss_idle} rss_after_kib={rss_after} rss_peak_kib={rss_peak} \
         idle_kib_per_conn={:.2} after_kib_per_conn={:.2} queries={} qps={:.1} \
         p50_us={:.0} p99_us={:.0} max_us={:.0} query_errors={}",
        per(rss_idle),
        per(rss_after),
        l.len(),
        l.len() as f64 / stream_secs,
        pct(&l, 50.0),
        pct(&l, 99.0),
        l.last().map(|d| d.as_secs_f64() * 1e6).unwrap_or(0.0),
        query_errors.load(Ordering::Relaxed),
    );
    if !first_error.is_empty() {
        println!("first_connect_error: {first_error}");
    }
    if !qerr.is_empty() {
        println!("first_query_error: {qerr}");
    }
}
