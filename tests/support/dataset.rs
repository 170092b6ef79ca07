//! The differential test's dataset: deterministic rows from a seeded PRNG of our own (so the
//! data never changes with a dependency's version), as SQL statements that are run unchanged on
//! the reference server and through the proxy.
//!
//! Tables (all hash-sharded on `id` through the proxy, except the broadcast `dx_countries`):
//! - `dx_items`: 5,000 rows with few distinct groups (ties), NULLs in every nullable column,
//!   DECIMAL, DOUBLE, DATETIME, VARBINARY, and names with case variants, accents, trailing
//!   spaces, CJK, an emoji, `''` and NULL.
//! - `dx_big`: 100,000 rows (large results).
//! - `dx_lopsided`: rows whose keys all live on one shard (the other shard's part is empty).
//! - `dx_empty`: no rows at all.
//! - `dx_countries`: a broadcast table joined on `dx_items.grp = dx_countries.code`.

/// SplitMix64: small, fast and good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One of [`NAMES`].
pub fn pick_name(rng: &mut Rng) -> &'static str {
    rng.pick(&NAMES)
}

pub const SEED: u64 = 0x5EED_D1FF;
pub const ITEMS: i64 = 5_000;
pub const BIG: i64 = 100_000;
pub const LOPSIDED: usize = 300;
/// Rows per multi-row INSERT.
const CHUNK: usize = 1_000;

/// Names in `dx_items.name`: collation classes with several members (`Bob`/`bob`/`BOB`/`bob `,
/// `Zoë`/`zoe`, `über`/`Uber`), multi-byte text, and the empty string.
pub const NAMES: [&str; 28] = [
    "Bob",
    "bob",
    "BOB",
    "bob ",
    "Alice",
    "alice",
    "Zoë",
    "zoe",
    "Ärger",
    "arger",
    "naïve",
    "naive",
    "日本",
    "日本語",
    "😀x",
    "😀X",
    "",
    "Émile",
    "emile",
    "Ölfass",
    "über",
    "Uber",
    "zed",
    "Zed",
    " lead",
    "x y",
    "O'Brien",
    "Ελλάδα",
];

/// `dx_items.id` of row `i` (1-based): multiples of 3 from -297, so some keys are negative.
pub fn item_id(i: i64) -> i64 {
    i * 3 - 300
}

/// The `[[tables]]` entries for the proxy.
pub fn proxy_tables() -> String {
    let mut out = String::new();
    for t in ["dx_items", "dx_big", "dx_lopsided", "dx_empty"] {
        out.push_str(&format!("[[tables]]\nname = \"{t}\"\nshard_key = \"id\"\nalgorithm = \"hash\"\n\n"));
    }
    out.push_str("[[tables]]\nname = \"dx_countries\"\nbroadcast = true\n");
    out
}

/// CREATE TABLE statements, the same on the reference and through the proxy; `options` (e.g.
/// `ENGINE=MyISAM`) is appended to each.
pub fn ddl(options: &str) -> Vec<String> {
    let small = "(id BIGINT PRIMARY KEY, grp INT NOT NULL, v INT NULL, name VARCHAR(32) NULL)";
    let tables = [
        "CREATE TABLE dx_items (id BIGINT PRIMARY KEY, grp INT NOT NULL, sub INT NULL, price DECIMAL(10,2) NULL, \
         score DOUBLE NULL, qty INT NULL, name VARCHAR(32) NULL, created DATETIME NULL, code VARBINARY(8) NULL)"
            .into(),
        "CREATE TABLE dx_big (id BIGINT PRIMARY KEY, grp INT NOT NULL, v INT NULL, s VARCHAR(16) NULL)".into(),
        format!("CREATE TABLE dx_lopsided {small}"),
        format!("CREATE TABLE dx_empty {small}"),
        "CREATE TABLE dx_countries (code INT PRIMARY KEY, name VARCHAR(32) NULL)".into(),
    ];
    tables.into_iter().map(|t: String| format!("{t} {options}").trim_end().to_string()).collect()
}

/// A string literal.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// `YYYY-MM-DD HH:MM:SS` of `minutes` after 2024-01-01 00:00.
pub fn datetime(minutes: i64) -> String {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let days = 19_723 + minutes.div_euclid(1440); // 2024-01-01
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let m = minutes.rem_euclid(1440);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:00", m / 60, m % 60)
}

fn or_null(rng: &mut Rng, null_pct: u64, value: impl FnOnce(&mut Rng) -> String) -> String {
    if rng.chance(null_pct) {
        "NULL".into()
    } else {
        value(rng)
    }
}

/// One table's rows as SQL tuples, in primary key order.
#[derive(Debug, Clone)]
pub struct Rows {
    pub table: &'static str,
    pub columns: &'static str,
    pub rows: Vec<String>,
}

impl Rows {
    /// Multi-row INSERTs of [`CHUNK`] rows; `reverse` inserts the last row first.
    pub fn inserts(&self, reverse: bool) -> Vec<String> {
        let mut rows: Vec<&str> = self.rows.iter().map(String::as_str).collect();
        if reverse {
            rows.reverse();
        }
        rows.chunks(CHUNK)
            .map(|c| format!("INSERT INTO {} ({}) VALUES {}", self.table, self.columns, c.join(", ")))
            .collect()
    }
}

/// Every table's rows; `lopsided_keys` are the keys of `dx_lopsided`.
pub fn all_rows(lopsided_keys: &[i64]) -> Vec<Rows> {
    vec![items(), big(), lopsided(lopsided_keys), countries()]
}

/// A price: cents from a limited set (ties), a few negative.
fn price(rng: &mut Rng) -> String {
    let cents = (rng.below(2_000) * 37 % 99_999) as i64 * if rng.chance(2) { -1 } else { 1 };
    format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, cents.abs() / 100, cents.abs() % 100)
}

/// A score: three decimals (not exact in binary, so sums depend on the order), some repeated
/// values, and a few large ones.
fn score(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => rng.pick(&["0", "1.5", "2.25", "-3.125", "100"]).to_string(),
        1 if rng.chance(5) => "1.5e15".into(),
        _ => format!("{:.3}", (rng.below(200_001) as f64 - 50_000.0) / 1000.0),
    }
}

fn code(rng: &mut Rng) -> String {
    let len = rng.below(5);
    let bytes: String =
        (0..len).map(|_| format!("{:02X}", rng.pick(&[0x00u8, 0x41, 0x61, 0x7F, 0xFF, 0x20]))).collect();
    format!("X'{bytes}'")
}

/// `dx_items`.
pub fn items() -> Rows {
    let mut rng = Rng::new(SEED);
    let rows = (1..=ITEMS)
        .map(|i| {
            let grp = rng.pick(&[1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7]);
            let sub = or_null(&mut rng, 10, |r| r.below(20).to_string());
            let price = or_null(&mut rng, 5, price);
            let score = or_null(&mut rng, 8, score);
            let qty = or_null(&mut rng, 6, |r| r.below(50).to_string());
            let name = or_null(&mut rng, 5, |r| quote(pick_name(r)));
            let created = or_null(&mut rng, 5, |r| quote(&datetime(r.below(20_000) as i64 * 29)));
            let code = or_null(&mut rng, 10, code);
            format!("({}, {grp}, {sub}, {price}, {score}, {qty}, {name}, {created}, {code})", item_id(i))
        })
        .collect();
    Rows { table: "dx_items", columns: "id, grp, sub, price, score, qty, name, created, code", rows }
}

/// `dx_big`.
pub fn big() -> Rows {
    let mut rng = Rng::new(SEED ^ 0xB16);
    let rows = (1..=BIG)
        .map(|id| {
            let grp = rng.below(10);
            let v = or_null(&mut rng, 1, |r| r.below(50_000).to_string());
            let s = quote(&format!("s{:05}", rng.below(30_000)));
            format!("({id}, {grp}, {v}, {s})")
        })
        .collect();
    Rows { table: "dx_big", columns: "id, grp, v, s", rows }
}

/// `dx_lopsided`, with these keys (all owned by one shard).
pub fn lopsided(keys: &[i64]) -> Rows {
    let mut rng = Rng::new(SEED ^ 0x10B);
    let rows = keys
        .iter()
        .map(|id| {
            let grp = rng.below(4);
            let v = or_null(&mut rng, 10, |r| r.below(100).to_string());
            let name = or_null(&mut rng, 10, |r| quote(pick_name(r)));
            format!("({id}, {grp}, {v}, {name})")
        })
        .collect();
    Rows { table: "dx_lopsided", columns: "id, grp, v, name", rows }
}

/// The broadcast table's rows: codes 0..=6 (grp 7 has no country; code 0 no item).
pub fn countries() -> Rows {
    let rows = [
        "(0, 'Nowhere')",
        "(1, 'France')",
        "(2, '日本')",
        "(3, 'Österreich')",
        "(4, 'Brasil')",
        "(5, 'Ελλάδα')",
        "(6, NULL)",
    ];
    Rows { table: "dx_countries", columns: "code, name", rows: rows.map(String::from).to_vec() }
}
