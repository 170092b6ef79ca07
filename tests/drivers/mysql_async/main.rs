//! Driver check: Rust mysql_async through shardgate. `query`/`query_drop` send plain text
//! (COM_QUERY); `exec`/`exec_drop`/`exec_first` with parameters run server-side prepared
//! statements (COM_STMT_PREPARE + COM_STMT_EXECUTE, binary protocol; mysql_async caches them per
//! connection). Prints `STEP <n> <name> ok|fail <detail>` per step and
//! `DRIVER mysql_async <version> ok|fail` last; exits 0 iff every step passed. Reads SG_HOST,
//! SG_PORT, SG_USER, SG_PASS, SG_DB, SG_TABLE and SG_AI_TABLE from the environment.
//!
//! An example of the shardgate crate (`cargo build --release --example driver-mysql-async`), so it
//! uses the mysql_async of shardgate's own Cargo.lock; the version printed is read from that
//! Cargo.lock, embedded at build time.
//!
//! The connection uses mysql_async's default options, as an application would: among them
//! `prefer_socket`, which at connect reads `@@socket` and, if it names a Unix socket, moves the
//! connection there. Step 2 checks, by `SELECT VERSION()`, that the connection still talks to
//! shardgate.
//!
//! Reads outside a transaction go to a replica, which applies the primary's writes asynchronously:
//! checks that follow writes wait for them (`eventually!`, at most 5 s) and say how long that
//! took; checks that a row is absent read inside a transaction, which shardgate sends to the primary.

use std::fmt::Display;
use std::io::Read;
use std::time::Duration;

use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::{Conn, Opts, OptsBuilder, Row, TxOpts};

/// A step that hangs fails after this long; its connection is dropped so the later steps go on.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The mysql_async version this binary was built with: the one in shardgate's Cargo.lock.
fn mysql_async_version() -> String {
    let lock = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"));
    let mut lines = lock.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line == r#"name = "mysql_async""# {
            if let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = ")) {
                return v.trim_matches('"').to_string();
            }
        }
    }
    "unknown".into()
}

/// Why a step failed: the step's detail.
struct Fail(String);

impl From<mysql_async::Error> for Fail {
    fn from(e: mysql_async::Error) -> Self {
        match e {
            mysql_async::Error::Server(s) => Fail(format!("error {} sqlstate {}: {}", s.code, s.state, s.message)),
            e => Fail(format!("mysql_async error: {e}")),
        }
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

/// Column `i` of a row as `T`; a NULL, a missing column or a value that does not convert is a
/// failure (mysql_async's own `from_row` would panic).
fn col<T: FromValue>(row: &Row, i: usize) -> Result<T, Fail> {
    match row.get_opt::<T, usize>(i) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => fail(format!("column {i}: {e}")),
        None => fail(format!("column {i}: no such column ({} columns)", row.len())),
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
    opts: Opts,
    addr: (String, u16),
    t: String,
    ai: String,
    conn: Option<Conn>,
}

impl Ctx {
    fn conn(&mut self) -> Result<&mut Conn, Fail> {
        self.conn.as_mut().ok_or_else(|| Fail("no connection (connect failed or an earlier step timed out)".into()))
    }

    /// The one row of a plain-text query.
    async fn text_row(&mut self, sql: String) -> Result<Row, Fail> {
        let rows: Vec<Row> = self.conn()?.query(sql.as_str()).await?;
        expect(rows.len() == 1, format!("{sql}: {} rows, expected 1", rows.len()))?;
        Ok(rows.into_iter().next().unwrap())
    }

    /// A plain-text statement without a result set; its affected rows.
    async fn text_exec(&mut self, sql: String) -> Result<u64, Fail> {
        let conn = self.conn()?;
        conn.query_drop(sql).await?;
        Ok(conn.affected_rows())
    }

    /// The row with key `id` as "name,n" (prepared), or None.
    async fn row_by_id(&mut self, id: i64) -> Result<Option<String>, Fail> {
        let sql = format!("SELECT name, n FROM {} WHERE id = ?", self.t);
        let row: Option<Row> = self.conn()?.exec_first(sql, (id,)).await?;
        row.map(|r| Ok(format!("{},{}", col::<String>(&r, 0)?, col::<i32>(&r, 1)?))).transpose()
    }

    async fn insert_row(&mut self, id: i64, name: &str, n: i32) -> Result<(), Fail> {
        let sql = format!("INSERT INTO {} (id, name, n) VALUES (?, ?, ?)", self.t);
        let conn = self.conn()?;
        conn.exec_drop(sql, (id, name, n)).await?;
        let affected = conn.affected_rows();
        expect(affected == 1, format!("prepared INSERT of id {id} reported {affected} rows"))
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

/// The server version from shardgate's greeting: mysql_async keeps only its leading numbers
/// (`Conn::server_version`), so this reads the initial handshake packet itself.
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

/// The leading `major.minor.patch` of a version string, as mysql_async parses it: MariaDB's
/// `5.5.5-` prefix (for clients that expect a 5.x server) is skipped.
fn numeric_version(v: &str) -> Option<(u16, u16, u16)> {
    let mut parts = v.strip_prefix("5.5.5-").unwrap_or(v).splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let rest = parts.next()?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    Some((major, minor, rest[..digits].parse().ok()?))
}

async fn connect(ctx: &mut Ctx) -> Result<String, Fail> {
    ctx.conn = Some(Conn::new(ctx.opts.clone()).await?);
    Ok("connected (mysql_async read @@max_allowed_packet, @@wait_timeout and @@socket at connect)".into())
}

async fn server_version(ctx: &mut Ctx) -> Result<String, Fail> {
    let v = ctx.conn()?.server_version();
    let greeting = greeting_version(&ctx.addr)?;
    expect(greeting.ends_with("-shardgate"), format!("server version '{greeting}' does not end with -shardgate"))?;
    expect(
        numeric_version(&greeting) == Some(v),
        format!("Conn::server_version() is {v:?}, the greeting says '{greeting}'"),
    )?;
    // mysql_async's prefer_socket moves the connection to the Unix socket @@socket names: if that
    // were a backend's, this connection would no longer reach shardgate.
    // (shardgate answers a lone `SELECT VERSION()` itself; a backend has no -shardgate. Like
    // MariaDB's, it lacks the greeting's `5.5.5-` prefix.)
    let version: String = col(&ctx.text_row("SELECT VERSION()".into()).await?, 0)?;
    expect(
        version == greeting.strip_prefix("5.5.5-").unwrap_or(&greeting),
        format!("SELECT VERSION() gave '{version}', the greeting '{greeting}': the connection left shardgate"),
    )?;
    let row = ctx.text_row("SELECT @@socket, @@max_allowed_packet".into()).await?;
    let (socket, map): (Option<String>, u64) = (col(&row, 0)?, col(&row, 1)?);
    Ok(format!(
        "version={greeting} (greeting; mysql_async exposes only server_version() = {}.{}.{}) \
         SELECT VERSION() agrees; @@socket={} @@max_allowed_packet={map}",
        v.0,
        v.1,
        v.2,
        socket.as_deref().map_or("NULL".into(), |s| format!("'{s}'")),
    ))
}

async fn create_insert(ctx: &mut Ctx) -> Result<String, Fail> {
    let t = ctx.t.clone();
    ctx.text_exec(format!("DROP TABLE IF EXISTS {t}")).await?;
    ctx.text_exec(format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, name VARCHAR(64), n INT)")).await?;
    let values: Vec<String> = (1..=10).map(|id| format!("({id}, 'name-{id}', {})", id * 10)).collect();
    let n = ctx.text_exec(format!("INSERT INTO {t} (id, name, n) VALUES {}", values.join(", "))).await?;
    expect(n == 10, format!("query_drop INSERT of ids 1..10 reported {n} rows"))?;
    for id in 11..=20i64 {
        ctx.insert_row(id, &format!("name-{id}"), (id * 10) as i32).await?;
    }
    Ok("ids 1..10 by query_drop (text), 11..20 by exec_drop (prepared)".into())
}

async fn read(ctx: &mut Ctx) -> Result<String, Fail> {
    let t = ctx.t.clone();
    let waited = eventually!({
        let count: i64 = col(&ctx.text_row(format!("SELECT COUNT(*) FROM {t}")).await?, 0)?;
        expect(count == 20, format!("SELECT COUNT(*) gave {count}, expected 20"))
    });
    let by_key = format!("SELECT id, name, n FROM {t} WHERE id = ?");
    for id in 1..=20i64 {
        let rows: Vec<Row> = ctx.conn()?.exec(by_key.as_str(), (id,)).await?;
        expect(rows.len() == 1, format!("prepared SELECT WHERE id = {id}: {} rows, expected 1", rows.len()))?;
        let r = &rows[0];
        let got = format!("{},{},{}", col::<i64>(r, 0)?, col::<String>(r, 1)?, col::<i32>(r, 2)?);
        let want = format!("{id},name-{id},{}", id * 10);
        expect(got == want, format!("prepared SELECT WHERE id = {id}: got {got}, expected {want}"))?;
    }
    let rows: Vec<Row> = ctx.conn()?.query(format!("SELECT id FROM {t} ORDER BY id LIMIT 5")).await?;
    let ids = rows.iter().map(|r| col::<i64>(r, 0)).collect::<Result<Vec<_>, _>>()?;
    expect(ids == [1, 2, 3, 4, 5], format!("SELECT id ORDER BY id LIMIT 5 gave {ids:?}, expected [1, 2, 3, 4, 5]"))?;
    // SUM of an INT column is a DECIMAL, which the server sends as text in both protocols.
    let sum: String = col(&ctx.text_row(format!("SELECT SUM(n) FROM {t}")).await?, 0)?;
    expect(sum == "2100", format!("SELECT SUM(n) gave {sum}, expected 2100"))?;
    let sql = format!("SELECT id FROM {t} WHERE n >= ? ORDER BY id DESC LIMIT 3");
    let rows: Vec<Row> = ctx.conn()?.exec(sql, (50,)).await?;
    let top = rows.iter().map(|r| col::<i64>(r, 0)).collect::<Result<Vec<_>, _>>()?;
    expect(top == [20, 19, 18], format!("prepared SELECT id WHERE n >= 50 ORDER BY id DESC LIMIT 3 gave {top:?}"))?;
    Ok(format!(
        "20 rows by key (prepared), COUNT(*)=20, first ids {ids:?}, SUM(n)={sum}, prepared scatter top 3 {top:?}{}",
        lag_note(waited)
    ))
}

async fn transactions(ctx: &mut Ctx) -> Result<String, Fail> {
    let t = ctx.t.clone();
    // Transaction<'_> borrows the connection, so these run on it directly.
    let ins = format!("INSERT INTO {t} (id, name, n) VALUES (?, ?, ?)");
    let sel = format!("SELECT name, n FROM {t} WHERE id = ?");
    {
        let mut tx = ctx.conn()?.start_transaction(TxOpts::default()).await?;
        tx.exec_drop(ins.as_str(), (101i64, "committed", 1)).await?;
        let seen: Option<Row> = tx.exec_first(sel.as_str(), (101i64,)).await?;
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
        let mut tx = ctx.conn()?.start_transaction(TxOpts::default()).await?;
        tx.exec_drop(ins.as_str(), (102i64, "rolled-back", 2)).await?;
        let seen: Option<Row> = tx.exec_first(sel.as_str(), (102i64,)).await?;
        expect(seen.is_some(), "id 102 not visible inside its own transaction")?;
        tx.rollback().await?;
    }
    {
        // Read inside a transaction, on the primary: a lagging replica cannot hide the row.
        let mut tx = ctx.conn()?.start_transaction(TxOpts::default()).await?;
        let gone: Option<Row> = tx.exec_first(sel.as_str(), (102i64,)).await?;
        expect(gone.is_none(), "id 102 after ROLLBACK: still there, expected no row")?;
        tx.commit().await?;
    }
    Ok(format!(
        "start_transaction+commit: id 101 visible; start_transaction+rollback: id 102 absent{}",
        lag_note(waited)
    ))
}

async fn last_insert_id(ctx: &mut Ctx) -> Result<String, Fail> {
    let ai = ctx.ai.clone();
    ctx.text_exec(format!("DROP TABLE IF EXISTS {ai}")).await?;
    ctx.text_exec(format!("CREATE TABLE {ai} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")).await?;
    ctx.text_exec(format!("INSERT INTO {ai} (v) VALUES (1)")).await?;
    let plain = ctx.conn()?.last_insert_id();
    // LAST_INSERT_ID() is BIGINT UNSIGNED on MariaDB and MySQL.
    let lii: u64 = col(&ctx.text_row("SELECT LAST_INSERT_ID()".into()).await?, 0)?;
    expect(
        plain == Some(lii),
        format!("query_drop INSERT: last_insert_id() {plain:?} but SELECT LAST_INSERT_ID() = {lii}"),
    )?;
    ctx.conn()?.exec_drop(format!("INSERT INTO {ai} (v) VALUES (?)"), (2,)).await?;
    let prepared = ctx.conn()?.last_insert_id();
    let lii2: u64 = col(&ctx.text_row("SELECT LAST_INSERT_ID()".into()).await?, 0)?;
    expect(
        prepared == Some(lii2),
        format!("exec_drop INSERT: last_insert_id() {prepared:?} but SELECT LAST_INSERT_ID() = {lii2}"),
    )?;
    expect(lii2 > lii, format!("exec_drop INSERT: last_insert_id() {lii2} not above the first {lii}"))?;
    Ok(format!("last_insert_id() {lii} (query_drop), {lii2} (exec_drop) = LAST_INSERT_ID()"))
}

async fn duplicate_key(ctx: &mut Ctx) -> Result<String, Fail> {
    let t = ctx.t.clone();
    let mut seen = Vec::new();
    for how in ["query_drop", "exec_drop"] {
        let conn = ctx.conn()?;
        let res = if how == "query_drop" {
            conn.query_drop(format!("INSERT INTO {t} (id, name, n) VALUES (1, 'dup', 0)")).await
        } else {
            conn.exec_drop(format!("INSERT INTO {t} (id, name, n) VALUES (?, ?, ?)"), (2i64, "dup", 0)).await
        };
        let err = match res {
            Ok(()) => return fail(format!("{how} INSERT of a duplicate id succeeded")),
            Err(e) => e,
        };
        let code = match &err {
            mysql_async::Error::Server(e) => Some(e.code),
            _ => None,
        };
        let Fail(text) = Fail::from(err);
        expect(code == Some(1062), format!("{how} INSERT of a duplicate id: {text}, expected error 1062"))?;
        seen.push(format!("{how}: {text}"));
    }
    let one: i64 = col(&ctx.text_row("SELECT 1".into()).await?, 0)?;
    expect(one == 1, "SELECT 1 after the errors did not give 1")?;
    Ok(format!("{}; connection still usable", seen.join(", ")))
}

async fn reconnect(ctx: &mut Ctx) -> Result<String, Fail> {
    if let Some(c) = ctx.conn.take() {
        c.disconnect().await?;
    }
    ctx.conn = Some(Conn::new(ctx.opts.clone()).await?);
    ctx.conn()?.ping().await?;
    let one: i64 = col(&ctx.text_row("SELECT 1".into()).await?, 0)?;
    expect(one == 1, format!("SELECT 1 gave {one}"))?;
    Ok("disconnected, connected again, ping and SELECT 1 ok".into())
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("driver-mysql-async: {name} is not set");
        std::process::exit(2)
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (host, port) = (env("SG_HOST"), env("SG_PORT"));
    let port_num: u16 = port.parse().unwrap_or_else(|_| {
        eprintln!("driver-mysql-async: SG_PORT '{port}' is not a port");
        std::process::exit(2)
    });
    // Defaults otherwise (prefer_socket included), as an application would connect.
    let opts = OptsBuilder::default()
        .ip_or_hostname(host.clone())
        .tcp_port(port_num)
        .user(Some(env("SG_USER")))
        .pass(Some(env("SG_PASS")))
        .db_name(Some(env("SG_DB")));
    let mut ctx =
        Ctx { opts: opts.into(), addr: (host, port_num), t: env("SG_TABLE"), ai: env("SG_AI_TABLE"), conn: None };
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
        let _ = c.disconnect().await;
    }
    println!("DRIVER mysql_async {} {}", mysql_async_version(), if ok { "ok" } else { "fail" });
    std::process::exit(if ok { 0 } else { 1 });
}
