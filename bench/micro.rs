//! Criterion micro-benchmarks of the hot pieces: codec, router, shard hash,
//! and the response scanner the relay runs per row. Also prints heap
//! allocations per routed statement (a counting allocator), so allocation
//! regressions show even where timings are noisy.
//!
//!   cargo bench --bench micro

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardgate::config::{validate, TableRule};
use shardgate::protocol::packet::{write_frames, PacketReader};
use shardgate::protocol::response::ResponseScanner;
use shardgate::protocol::wire::{self, OkInfo};
use shardgate::router::{self, algorithm, KeyValue, SessionView};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const STATEMENTS: &[(&str, &str)] = &[
    ("point_select", "SELECT user_id, name FROM users WHERE user_id = 7"),
    ("in_list_split", "SELECT * FROM users WHERE user_id IN (1, 2, 3, 4, 5, 6, 7, 8)"),
    ("insert_3_rows", "INSERT INTO users (user_id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')"),
    ("scatter_update", "UPDATE users SET name = 'x' WHERE name = 'y'"),
    ("unlisted_table", "SELECT c FROM sbtest1 WHERE id = 42"),
    ("begin", "BEGIN"),
    ("set_names", "SET NAMES utf8mb4"),
];

fn config() -> shardgate::config::Config {
    validate::parse(include_str!("../conf/shardgate.toml")).expect("conf/shardgate.toml is valid")
}

const VIEW: SessionView<'static> =
    SessionView { in_transaction: false, autocommit: true, pinned: false, database: Some("app"), catalog: None };

fn report_allocations(cfg: &shardgate::config::Config) {
    for (name, sql) in STATEMENTS {
        let before = ALLOCS.load(Ordering::Relaxed);
        for _ in 0..100 {
            black_box(router::route(sql, cfg, &VIEW));
        }
        let per = (ALLOCS.load(Ordering::Relaxed) - before) as f64 / 100.0;
        println!("allocations per route(): {name:>16} {per:.1}");
    }
}

fn bench_router(c: &mut Criterion) {
    let cfg = config();
    report_allocations(&cfg);
    let mut g = c.benchmark_group("router");
    for (name, sql) in STATEMENTS {
        g.bench_function(*name, |b| b.iter(|| router::route(black_box(sql), &cfg, &VIEW)));
    }
    g.finish();
}

fn bench_plan_cache(c: &mut Criterion) {
    let cfg = std::sync::Arc::new(config());
    let catalog = std::sync::Arc::new(shardgate::router::catalog::Catalog::default());
    let cache = shardgate::frontend::plan_cache::PlanCache::default();
    let texts: Vec<String> =
        (0..1000).map(|k| format!("SELECT user_id, name FROM users WHERE user_id = {k}")).collect();
    for t in &texts {
        cache.route(t, &cfg, &catalog, &VIEW);
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for t in &texts {
        black_box(cache.route(t, &cfg, &catalog, &VIEW));
    }
    let per = (ALLOCS.load(Ordering::Relaxed) - before) as f64 / texts.len() as f64;
    println!("allocations per cached route(): point_select {per:.1}");
    let mut i = 0;
    c.bench_function("plan_cache/point_select", |b| {
        b.iter(|| {
            i = (i + 1) % texts.len();
            cache.route(black_box(&texts[i]), &cfg, &catalog, &VIEW)
        })
    });
}

fn bench_hash(c: &mut Criterion) {
    let cfg = config();
    let Some(TableRule::Sharded(users)) = cfg.table("users") else { panic!("users is sharded") };
    let mut g = c.benchmark_group("hash");
    g.bench_function("int_key", |b| {
        b.iter(|| algorithm::shard_for(&cfg, users, black_box(&KeyValue::Int(123_456_789))))
    });
    let mut string_table = users.clone();
    string_table.key_type = shardgate::config::KeyType::String;
    let key = KeyValue::Str(b"Emile Zola".to_vec());
    g.bench_function("string_key_ci", |b| b.iter(|| algorithm::shard_for(&cfg, &string_table, black_box(&key))));
    g.finish();
}

fn bench_codec(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut g = c.benchmark_group("codec");
    for size in [64usize, 16 * 1024, 1 << 20] {
        let payload = vec![7u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("encode_{size}"), |b| {
            let mut out = BytesMut::with_capacity(size + 64);
            b.iter(|| {
                out.clear();
                let mut seq = 0;
                write_frames(&mut out, &mut seq, black_box(&payload));
            })
        });
        let mut wire_bytes = BytesMut::new();
        let mut seq = 0;
        write_frames(&mut wire_bytes, &mut seq, &payload);
        let wire_bytes = wire_bytes.freeze();
        g.bench_function(format!("decode_{size}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut r = PacketReader::new(&wire_bytes[..]);
                    black_box(r.next_payload(64 << 20).await.expect("decode"))
                })
            })
        });
    }
    g.finish();
}

fn bench_scanner(c: &mut Criterion) {
    // A result set of 10,000 two-column rows, as the relay sees it frame by frame.
    let mut frames: Vec<Vec<u8>> =
        vec![vec![2], b"\x03def\x00\x00\x00\x01a".to_vec(), b"\x03def\x00\x00\x00\x01b".to_vec()];
    for i in 0..10_000u32 {
        let mut row = BytesMut::new();
        wire::put_text_row(&mut row, [Some(i.to_string().as_bytes()), Some(&b"some name"[..])]);
        frames.push(row.to_vec());
    }
    let mut end = BytesMut::new();
    wire::put_ok(&mut end, &OkInfo { status: 2, ..OkInfo::default() }, true, b"");
    frames.push(end.to_vec());
    let mut g = c.benchmark_group("relay_scanner");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("rows", |b| {
        b.iter(|| {
            let mut s = ResponseScanner::query(true);
            for f in &frames {
                black_box(s.feed(f).expect("valid"));
            }
            assert!(s.done());
        })
    });
    g.finish();
}

criterion_group!(benches, bench_router, bench_plan_cache, bench_hash, bench_codec, bench_scanner);
criterion_main!(benches);
