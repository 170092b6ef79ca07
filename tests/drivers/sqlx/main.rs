//! Driver check: Rust sqlx (MySQL) through shardgate. `sqlx::query(..)` runs as a server-side
//! prepared statement (binary protocol), `sqlx::raw_sql(..)` as plain text (COM_QUERY).
//! Prints `STEP <n> <name> ok|fail <detail>` per step and `DRIVER sqlx <version> ok|fail` last;
//! exits 0 iff every step passed. Reads SG_HOST, SG_PORT, SG_USER, SG_PASS, SG_DB, SG_TABLE and
//! SG_AI_TABLE from the environment.
//!
//! Reads outside a transaction go to a replica, which applies the primary's writes asynchronously:
//! checks that follow writes wait for them (`eventually!`, at most 5 s) and say how long that
//! took; checks that a row is absent read inside a transaction, which shardgate sends to the primary.

use std::fmt::Display;
use std::io::Read;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlRow};
use sqlx::{AssertSqlSafe, Connection, Row};

/// The sqlx version Cargo.toml pins (`=`); keep the two in step.
const SQLX_VERSION: &str = "0.9.0";
/// A step that hangs fails after this long; its connection is dropped so the later steps go on.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a step failed: the step's detail.
struct Fail(String);

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if let Some(my) = db.try_downcast_ref::<MySqlDatabaseError>() {
                return Fail(format!("error {} sqlstate {}: {}", my.number(), my.code().unwrap_or("?"), my.message()));
            }
        }
        Fail(format!("sqlx error: {e}"))
    }
}

fn fail<T>(what: impl Display) -> Result<T, Fail> {
    Err(Fail(what.to_string()))
}

fn expect(cond: bool, what: impl Display) -> Result<(), Fail> {
    if cond {
        Ok(())
    } else {
        fail(what)
    }
}

/// Runs the block until it stops failing, for at most 5 s; evaluates to the milliseconds waited
/// (0: none). A macro, as the block borrows the context mutably on every try.
macro_rules! eventually {
    ($body:block) => {{
        let t0 = std::time::Instant::now();
        let mut tries = 0u32;
        loop {
            let r: Result<(), Fail> = async { $body }.await;
            match r {
                Ok(()) => break if tries == 0 { 0 } else { t0.elapsed().as_millis().max(1) },
                Err(e) if t0.elapsed() > Duration::from_secs(5) => return Err(e),
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }};
}

fn lag_note(ms: u128) -> String {
    if ms > 0 {
        format!(" (replicas caught up after {ms} ms)")
    } else {
        String::new()
    }
}

struct Ctx {
    opts: MySqlConnectOptions,
    addr: (String, u16),
    t: String,
    ai: String,
    conn: Option<MySqlConnection>,
}

impl Ctx {
    fn conn(&mut self) -> Result<&mut MySqlConnection, Fail> {
        self.conn.as_mut().ok_or_else(|| Fail("no connection (connect failed or an earlier step timed out)".into()))
    }

    /// The one row of a plain-text query.
    async fn text_row(&mut self, sql: String) -> Result<MySqlRow, Fail> {
        let rows = sqlx::raw_sql(AssertSqlSafe(sql.clone())).fetch_all(self.conn()?).await?;
        expect(rows.len() == 1, format!("{sql}: {} rows, expected 1", rows.len()))?;
        Ok(rows.into_iter().next().unwrap())
    }

    async fn text_exec(&mut self, sql: String) -> Result<sqlx::mysql::MySqlQueryResult, Fail> {
        Ok(sqlx::raw_sql(AssertSqlSafe(sql)).execute(self.conn()?).await?)
    }

    /// The row with key `id` as "name,n" (prepared), or None.
    async fn row_by_id(&mut self, id: i64) -> Result<Option<String>, Fail> {
        let sql = format!("SELECT name, n FROM {} WHERE id = ?", self.t);
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(self.conn()?).await?;
        row.map(|r| Ok(format!("{},{}", r.try_get::<String, _>(0)?, r.try_get::<i32, _>(1)?))).transpose()
    }

    async fn insert_row(&mut self, id: i64, name: &str, n: i32) -> Result<(), Fail> {
        let sql = format!("INSERT INTO {} (id, name, n) VALUES (?, ?, ?)", self.t);
        let r = sqlx::query(AssertSqlSafe(sql)).bind(id).bind(name).bind(n).execute(self.conn()?).await?;
        expect(r.rows_affected() == 1, format!("prepared INSERT of id {id} reported {} rows", r.rows_affected()))
    }
}

/// Runs one step with a timeout and prints its line; true if it passed.
async fn step(ctx: &mut Ctx, n: u32, name: &str, f: impl AsyncFnOnce(&mut Ctx) -> Result<String, Fail>) -> bool {
    let (ok, detail) = match tokio::time::timeout(STEP_TIMEOUT, f(ctx)).await {
        Ok(Ok(detail)) => (true, detail),
        Ok(Err(Fail(detail))) => (false, detail),
        Err(_) => {
            ctx.conn = None;
            (false, format!("no answer within {}s", STEP_TIMEOUT.as_secs()))
        }
    };
    let detail = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    println!("STEP {n} {name} {} {detail}", if ok { "ok" } else { "fail" });
    ok
}

/// The server version from shardgate's greeting: sqlx reads it but keeps only the leading
/// numbers, so this reads the initial handshake packet itself.
fn greeting_version((host, port): &(String, u16)) -> Result<String, Fail> {
    let io = |e: std::io::Error| Fail(format!("reading the greeting from {host}:{port}: {e}"));
    let mut s = std::net::TcpStream::connect((host.as_str(), *port)).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(io)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).map_err(io)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).map_err(io)?;
    expect(body.first() == Some(&10), format!("greeting is not protocol 10: {:?}", &body[..body.len().min(16)]))?;
    let end = body.iter().skip(1).position(|&b| b == 0).ok_or_else(|| Fail("greeting version has no NUL".into()))?;
    Ok(String::from_utf8_lossy(&body[1..1 + end]).into_owned())
}

async fn connect(ctx: &mut Ctx) -> Result<String, Fail> {
    ctx.conn = Some(MySqlConnection::connect_with(&ctx.opts).await?);
    Ok("connected (sqlx sent its SET sql_mode/time_zone/NAMES at connect)".into())
}

async fn server_version(ctx: &mut Ctx) -> Result<String, Fail> {
    // What sqlx set at connect must be in force on whichever backend serves the session.
    let row = ctx.text_row("SELECT @@time_zone, @@sql_mode, @@character_set_client".into()).await?;
    let (tz, mode, cs): (String, String, String) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    expect(tz == "+00:00", format!("@@time_zone is '{tz}', sqlx set '+00:00' at connect"))?;
    expect(mode.contains("PIPES_AS_CONCAT"), format!("@@sql_mode '{mode}' lacks PIPES_AS_CONCAT set at connect"))?;
    expect(cs == "utf8mb4", format!("@@character_set_client is '{cs}', sqlx set NAMES utf8mb4 at connect"))?;
    let v = greeting_version(&ctx.addr)?;
    expect(v.ends_with("-shardgate"), format!("server version '{v}' does not end with -shardgate"))?;
    Ok(format!("version={v} (greeting; sqlx exposes no version) time_zone={tz} character_set_client={cs}"))
}

async fn create_insert(ctx: &mut Ctx) -> Result<String, Fail> {
    let t = ctx.t.clone();
    ctx.text_exec(format!("DROP TABLE IF EXISTS {t}")).await?;
    ctx.text_exec(format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, name VARCHAR(64), n INT)")).await?;
    let values: Vec<String> = (1..=10).map(|id| format!("({id}, 'name-{id}', {})", id * 10)).collect();
    let r = ctx.text_exec(format!("INSERT INTO {t} (id, name, n) VALUES {}", values.join(", "))).await?;
    expect(r.rows_affected() == 10, format!("raw_sql INSERT of ids 1..10 reported {} rows", r.rows_affected()))?;
    for id in 11..=20i64 {
        ctx.insert_row(id, &format!("name-{id}"), (id * 10) as i32).await?;
    }
    Ok("ids 1..10 by raw_sql, 11..20 by query().bind() (prepared)".into())
}

async fn read(ctx: &mut Ctx) -> Result<String, Fail> {
    let t = ctx.t.clone();
    let waited = eventually!({
        let count: i64 = ctx.text_row(format!("SELECT COUNT(*) FROM {t}")).await?.try_get(0)?;
        expect(count == 20, format!("SELECT COUNT(*) gave {count}, expected 20"))
    });
    for id in 1..=20i64 {
        let sql = format!("SELECT id, name, n FROM {t} WHERE id = ?");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_all(ctx.conn()?).await?;
        expect(rows.len() == 1, format!("prepared SELECT WHERE id = {id}: {} rows, expected 1", rows.len()))?;
        let r = &rows[0];
        let got = format!("{},{},{}", r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?, r.try_get::<i32, _>(2)?);
        let want = format!("{id},name-{id},{}", id * 10);
        expect(got == want, format!("prepared SELECT WHERE id = {id}: got {got}, expected {want}"))?;
    }
    let rows =
        sqlx::raw_sql(AssertSqlSafe(format!("SELECT id FROM {t} ORDER BY id LIMIT 5"))).fetch_all(ctx.conn()?).await?;
    let ids = rows.iter().map(|r| r.try_get::<i64, _>(0)).collect::<Result<Vec<_>, _>>()?;
    expect(ids == [1, 2, 3, 4, 5], format!("SELECT id ORDER BY id LIMIT 5 gave {ids:?}, expected [1, 2, 3, 4, 5]"))?;
    // SUM of an INT column is a DECIMAL; sqlx decodes DECIMAL only with a decimal crate, so read
    // its text (what the server sends for a DECIMAL in both protocols).
    let sum: String = ctx.text_row(format!("SELECT SUM(n) FROM {t}")).await?.try_get_unchecked(0)?;
    expect(sum == "2100", format!("SELECT SUM(n) gave {sum}, expected 2100"))?;
    let sql = format!("SELECT id FROM {t} WHERE n >= ? ORDER BY id DESC LIMIT 3");
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(50).fetch_all(ctx.conn()?).await?;
    let top = rows.iter().map(|r| r.try_get::<i64, _>(0)).collect::<Result<Vec<_>, _>>()?;
    expect(top == [20, 19, 18], format!("prepared SELECT id WHERE n >= 50 ORDER BY id DESC LIMIT 3 gave {top:?}"))?;
    Ok(format!(
        "20 rows by key (prepared), COUNT(*)=20, first ids {ids:?}, SUM(n)={sum}, prepared scatter top 3 {top:?}{}",
        lag_note(waited)
    ))
}

async fn transactions(ctx: &mut Ctx) -> Result<String, Fail> {
    let t = ctx.t.clone();
    // Transaction<'_, MySql> borrows the connection, so these run on it directly.
    let ins = format!("INSERT INTO {t} (id, name, n) VALUES (?, ?, ?)");
    let sel = format!("SELECT name, n FROM {t} WHERE id = ?");
    {
        let mut tx = ctx.conn()?.begin().await?;
        sqlx::query(AssertSqlSafe(ins.clone())).bind(101i64).bind("committed").bind(1).execute(&mut *tx).await?;
        let seen = sqlx::query(AssertSqlSafe(sel.clone())).bind(101i64).fetch_optional(&mut *tx).await?;
        expect(seen.is_some(), "id 101 not visible inside its own transaction")?;
        tx.commit().await?;
    }
    let waited = eventually!({
        let after = ctx.row_by_id(101).await?;
        expect(
            after.as_deref() == Some("committed,1"),
            format!("id 101 after COMMIT: got {after:?}, expected committed,1"),
        )
    });
    {
        let mut tx = ctx.conn()?.begin().await?;
        sqlx::query(AssertSqlSafe(ins)).bind(102i64).bind("rolled-back").bind(2).execute(&mut *tx).await?;
        let seen = sqlx::query(AssertSqlSafe(sel.clone())).bind(102i64).fetch_optional(&mut *tx).await?;
        expect(seen.is_some(), "id 102 not visible inside its own transaction")?;
        tx.rollback().await?;
    }
    {
        // Read inside a transaction, on the primary: a lagging replica cannot hide the row.
        let mut tx = ctx.conn()?.begin().await?;
        let gone = sqlx::query(AssertSqlSafe(sel)).bind(102i64).fetch_optional(&mut *tx).await?;
        expect(gone.is_none(), "id 102 after ROLLBACK: still there, expected no row")?;
        tx.commit().await?;
    }
    Ok(format!("begin+commit: id 101 visible; begin+rollback: id 102 absent{}", lag_note(waited)))
}

async fn last_insert_id(ctx: &mut Ctx) -> Result<String, Fail> {
    let ai = ctx.ai.clone();
    ctx.text_exec(format!("DROP TABLE IF EXISTS {ai}")).await?;
    ctx.text_exec(format!("CREATE TABLE {ai} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")).await?;
    let plain = ctx.text_exec(format!("INSERT INTO {ai} (v) VALUES (1)")).await?.last_insert_id();
    // LAST_INSERT_ID() is BIGINT UNSIGNED on MariaDB and MySQL.
    let lii: u64 = ctx.text_row("SELECT LAST_INSERT_ID()".into()).await?.try_get(0)?;
    expect(plain == lii, format!("raw_sql INSERT: last_insert_id() {plain} but SELECT LAST_INSERT_ID() = {lii}"))?;
    let sql = format!("INSERT INTO {ai} (v) VALUES (?)");
    let prepared = sqlx::query(AssertSqlSafe(sql)).bind(2).execute(ctx.conn()?).await?.last_insert_id();
    let lii2: u64 = ctx.text_row("SELECT LAST_INSERT_ID()".into()).await?.try_get(0)?;
    expect(
        prepared == lii2,
        format!("prepared INSERT: last_insert_id() {prepared} but SELECT LAST_INSERT_ID() = {lii2}"),
    )?;
    expect(prepared > plain, format!("prepared INSERT: last_insert_id() {prepared} not above the first {plain}"))?;
    Ok(format!("last_insert_id() {plain} (raw_sql), {prepared} (prepared) = LAST_INSERT_ID()"))
}

async fn duplicate_key(ctx: &mut Ctx) -> Result<String, Fail> {
    let t = ctx.t.clone();
    let mut seen = Vec::new();
    for how in ["raw_sql", "prepared"] {
        let res = if how == "raw_sql" {
            sqlx::raw_sql(AssertSqlSafe(format!("INSERT INTO {t} (id, name, n) VALUES (1, 'dup', 0)")))
                .execute(ctx.conn()?)
                .await
        } else {
            let sql = format!("INSERT INTO {t} (id, name, n) VALUES (?, ?, ?)");
            sqlx::query(AssertSqlSafe(sql)).bind(2i64).bind("dup").bind(0).execute(ctx.conn()?).await
        };
        let err = match res {
            Ok(_) => return fail(format!("{how} INSERT of a duplicate id succeeded")),
            Err(e) => e,
        };
        let number = match &err {
            sqlx::Error::Database(db) => db.try_downcast_ref::<MySqlDatabaseError>().map(|m| m.number()),
            _ => None,
        };
        let Fail(text) = Fail::from(err);
        expect(number == Some(1062), format!("{how} INSERT of a duplicate id: {text}, expected error 1062"))?;
        seen.push(format!("{how}: {text}"));
    }
    let one: i64 = ctx.text_row("SELECT 1".into()).await?.try_get(0)?;
    expect(one == 1, "SELECT 1 after the errors did not give 1")?;
    Ok(format!("{}; connection still usable", seen.join(", ")))
}

async fn reconnect(ctx: &mut Ctx) -> Result<String, Fail> {
    if let Some(c) = ctx.conn.take() {
        c.close().await?;
    }
    ctx.conn = Some(MySqlConnection::connect_with(&ctx.opts).await?);
    ctx.conn()?.ping().await?;
    let one: i64 = ctx.text_row("SELECT 1".into()).await?.try_get(0)?;
    expect(one == 1, format!("SELECT 1 gave {one}"))?;
    Ok("closed, connected again, ping and SELECT 1 ok".into())
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("sqlx-check: {name} is not set");
        std::process::exit(2)
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (host, port) = (env("SG_HOST"), env("SG_PORT"));
    let port_num: u16 = port.parse().unwrap_or_else(|_| {
        eprintln!("sqlx-check: SG_PORT '{port}' is not a port");
        std::process::exit(2)
    });
    let opts = MySqlConnectOptions::new()
        .host(&host)
        .port(port_num)
        .username(&env("SG_USER"))
        .password(&env("SG_PASS"))
        .database(&env("SG_DB"));
    let mut ctx = Ctx { opts, addr: (host, port_num), t: env("SG_TABLE"), ai: env("SG_AI_TABLE"), conn: None };
    let mut ok = true;
    ok &= step(&mut ctx, 1, "connect", connect).await;
    ok &= step(&mut ctx, 2, "server_version", server_version).await;
    ok &= step(&mut ctx, 3, "insert", create_insert).await;
    ok &= step(&mut ctx, 4, "read", read).await;
    ok &= step(&mut ctx, 5, "transactions", transactions).await;
    ok &= step(&mut ctx, 6, "last_insert_id", last_insert_id).await;
    ok &= step(&mut ctx, 7, "duplicate_key", duplicate_key).await;
    ok &= step(&mut ctx, 8, "reconnect", reconnect).await;
    if let Some(c) = ctx.conn.take() {
        let _ = c.close().await;
    }
    println!("DRIVER sqlx {SQLX_VERSION} {}", if ok { "ok" } else { "fail" });
    std::process::exit(if ok { 0 } else { 1 });
}
