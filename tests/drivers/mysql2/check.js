// Driver check: Node mysql2 through shardgate, with both `query` (text protocol, values escaped by
// the driver) and `execute` (server-side prepared statements, binary protocol).
// Prints `STEP <n> <name> ok|fail <detail>` per step and `DRIVER mysql2 <version> ok|fail` last;
// exits 0 iff every step passed. Reads SG_HOST, SG_PORT, SG_USER, SG_PASS, SG_DB, SG_TABLE,
// SG_AI_TABLE; mysql2 is found through NODE_PATH (set by ./run).
//
// Reads outside a transaction go to a replica, which applies the primary's writes asynchronously:
// checks that follow writes wait for them (`eventually`, at most 5 s) and say how long that took;
// checks that a row is absent read inside a transaction, which shardgate sends to the primary.
'use strict';

const mysql = require('mysql2/promise');
const { version } = require('mysql2/package.json');

const env = process.env;
const T = env.SG_TABLE;
const AI = env.SG_AI_TABLE;

let conn = null;
let allOk = true;

class Fail extends Error {}

function expect(cond, what) {
  if (!cond) throw new Fail(what);
}

// Runs probe until it stops failing a check, for at most 5 s; the milliseconds waited (0: none).
async function eventually(probe) {
  const t0 = Date.now();
  for (let tries = 0; ; tries++) {
    try {
      await probe();
      return tries === 0 ? 0 : Math.max(1, Date.now() - t0);
    } catch (e) {
      if (!(e instanceof Fail) || Date.now() - t0 > 5000) throw e;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

function lagNote(ms) {
  return ms > 0 ? ` (replicas caught up after ${ms} ms)` : '';
}

function describe(e) {
  if (e instanceof Fail) return e.message;
  if (e && e.errno !== undefined) {
    const state = e.sqlState ? ` sqlstate ${e.sqlState}` : '';
    return `error ${e.errno} ${e.code}${state}: ${e.message}`;
  }
  return String(e && e.stack ? e.stack.split('\n').slice(0, 2).join(' ') : e);
}

// A step that hangs fails after this long; its connection is dropped so the later steps go on.
const STEP_TIMEOUT_MS = 30000;

async function step(n, name, fn) {
  let line;
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Fail(`no answer within ${STEP_TIMEOUT_MS / 1000}s`)), STEP_TIMEOUT_MS);
  });
  try {
    line = `ok ${await Promise.race([fn(), timeout])}`;
  } catch (e) {
    allOk = false;
    line = `fail ${describe(e)}`;
    if (e instanceof Fail && e.message.startsWith('no answer') && conn) {
      conn.connection.destroy();
      conn = null;
    }
  } finally {
    clearTimeout(timer);
  }
  console.log(`STEP ${n} ${name} ${line.replace(/\s+/g, ' ')}`);
}

function connect() {
  return mysql.createConnection({
    host: env.SG_HOST,
    port: Number(env.SG_PORT),
    user: env.SG_USER,
    password: env.SG_PASS,
    database: env.SG_DB,
    connectTimeout: 10000,
  });
}

function c() {
  if (!conn) throw new Fail('no connection (connect failed or an earlier step timed out)');
  return conn;
}

// The one row and column of a text-protocol query, as a Number.
async function scalar(sql) {
  const [rows] = await c().query({ sql, rowsAsArray: true });
  expect(rows.length === 1, `${sql}: ${rows.length} rows, expected 1`);
  expect(rows[0][0] !== null, `${sql}: NULL`);
  return Number(rows[0][0]);
}

// The row with key `id` as "name,n" (prepared), or null.
async function rowById(id) {
  const [rows] = await c().execute(`SELECT name, n FROM ${T} WHERE id = ?`, [id]);
  return rows.length ? `${rows[0].name},${rows[0].n}` : null;
}

async function serverVersion() {
  const hs = c().connection._handshakePacket;
  const v = hs && hs.serverVersion;
  expect(typeof v === 'string' && v.endsWith('-shardgate'), `server version '${v}' does not end with -shardgate`);
  return `version=${v} isMariaDB=${c().connection._isMariaDB} connectionId=${c().connection.connectionId}`;
}

async function createInsert() {
  await c().query(`DROP TABLE IF EXISTS ${T}`);
  await c().query(`CREATE TABLE ${T} (id BIGINT PRIMARY KEY, name VARCHAR(64), n INT)`);
  const rows = [];
  for (let id = 1; id <= 10; id++) rows.push([id, `name-${id}`, id * 10]);
  // `VALUES ?` with nested arrays: the driver writes the values into the text (COM_QUERY).
  const [res] = await c().query(`INSERT INTO ${T} (id, name, n) VALUES ?`, [rows]);
  expect(res.affectedRows === 10, `query INSERT of ids 1..10 reported ${res.affectedRows} rows, expected 10`);
  for (let id = 11; id <= 20; id++) {
    const [r] = await c().execute(`INSERT INTO ${T} (id, name, n) VALUES (?, ?, ?)`, [id, `name-${id}`, id * 10]);
    expect(r.affectedRows === 1, `execute INSERT of id ${id} reported ${r.affectedRows} rows`);
  }
  return 'ids 1..10 by query (VALUES ?), 11..20 by execute';
}

async function read() {
  const waited = await eventually(async () => {
    const count = await scalar(`SELECT COUNT(*) FROM ${T}`);
    expect(count === 20, `SELECT COUNT(*) gave ${count}, expected 20`);
  });
  for (let id = 1; id <= 20; id++) {
    const [rows] = await c().execute(`SELECT id, name, n FROM ${T} WHERE id = ?`, [id]);
    expect(rows.length === 1, `execute SELECT WHERE id = ${id}: ${rows.length} rows, expected 1`);
    const got = `${rows[0].id},${rows[0].name},${rows[0].n}`;
    const want = `${id},name-${id},${id * 10}`;
    expect(got === want, `execute SELECT WHERE id = ${id}: got ${got}, expected ${want}`);
  }
  const [first] = await c().query(`SELECT id FROM ${T} ORDER BY id LIMIT 5`);
  const ids = first.map((r) => Number(r.id)).join(',');
  expect(ids === '1,2,3,4,5', `SELECT id ORDER BY id LIMIT 5 gave [${ids}], expected [1,2,3,4,5]`);
  const sum = await scalar(`SELECT SUM(n) FROM ${T}`);
  expect(sum === 2100, `SELECT SUM(n) gave ${sum}, expected 2100`);
  const [top] = await c().execute(`SELECT id FROM ${T} WHERE n >= ? ORDER BY id DESC LIMIT 3`, [50]);
  const topIds = top.map((r) => Number(r.id)).join(',');
  expect(topIds === '20,19,18', `execute SELECT id WHERE n >= 50 ORDER BY id DESC LIMIT 3 gave [${topIds}], expected [20,19,18]`);
  const [[agg]] = await c().execute(`SELECT COUNT(*) AS c, SUM(n) AS s FROM ${T} WHERE n > ?`, [100]);
  expect(Number(agg.c) === 10 && Number(agg.s) === 1550, `execute SELECT COUNT(*), SUM(n) WHERE n > 100 gave ${agg.c}, ${agg.s}, expected 10, 1550`);
  return `20 rows by key (execute), COUNT(*)=20, first ids [${ids}], SUM(n)=2100, execute scatter top 3 [${topIds}], execute COUNT/SUM WHERE n > 100 = 10/1550${lagNote(waited)}`;
}

async function transactions() {
  let waited;
  try {
    await c().beginTransaction();
    await c().execute(`INSERT INTO ${T} (id, name, n) VALUES (?, ?, ?)`, [101, 'committed', 1]);
    expect((await rowById(101)) === 'committed,1', 'id 101 not visible inside its own transaction');
    await c().commit();
    waited = await eventually(async () => {
      const after = await rowById(101);
      expect(after === 'committed,1', `id 101 after COMMIT: got ${after}, expected committed,1`);
    });

    await c().beginTransaction();
    await c().execute(`INSERT INTO ${T} (id, name, n) VALUES (?, ?, ?)`, [102, 'rolled-back', 2]);
    expect((await rowById(102)) !== null, 'id 102 not visible inside its own transaction');
    await c().rollback();
    // Read inside a transaction, on the primary: a lagging replica cannot hide the row.
    await c().beginTransaction();
    const gone = await rowById(102);
    expect(gone === null, `id 102 after ROLLBACK: got ${gone}, expected no row`);
    await c().commit();
  } catch (e) {
    if (conn) await conn.rollback().catch(() => {});
    throw e;
  }
  return `beginTransaction+commit: id 101 visible; beginTransaction+rollback: id 102 absent${lagNote(waited)}`;
}

async function lastInsertId() {
  await c().query(`DROP TABLE IF EXISTS ${AI}`);
  await c().query(`CREATE TABLE ${AI} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)`);
  const [q] = await c().query(`INSERT INTO ${AI} (v) VALUES (1)`);
  const lii = await scalar('SELECT LAST_INSERT_ID()');
  expect(q.insertId === lii, `query INSERT: insertId ${q.insertId} but SELECT LAST_INSERT_ID() = ${lii}`);
  const [p] = await c().execute(`INSERT INTO ${AI} (v) VALUES (?)`, [2]);
  const lii2 = await scalar('SELECT LAST_INSERT_ID()');
  expect(p.insertId === lii2, `execute INSERT: insertId ${p.insertId} but SELECT LAST_INSERT_ID() = ${lii2}`);
  expect(p.insertId > q.insertId, `execute INSERT: insertId ${p.insertId} not above the first ${q.insertId}`);
  return `insertId ${q.insertId} (query), ${p.insertId} (execute) = LAST_INSERT_ID()`;
}

async function duplicateKey() {
  const seen = [];
  const attempts = [
    ['query', () => c().query(`INSERT INTO ${T} (id, name, n) VALUES (1, 'dup', 0)`)],
    ['execute', () => c().execute(`INSERT INTO ${T} (id, name, n) VALUES (?, ?, ?)`, [2, 'dup', 0])],
  ];
  for (const [how, run] of attempts) {
    let err = null;
    try {
      await run();
    } catch (e) {
      if (e instanceof Fail) throw e;
      err = e;
    }
    expect(err !== null, `${how} INSERT of a duplicate id succeeded`);
    expect(err.errno === 1062, `${how} INSERT of a duplicate id: ${describe(err)}, expected error 1062`);
    seen.push(`${how}: ${err.errno} ${err.code} ${err.sqlState}`);
  }
  expect((await scalar('SELECT 1')) === 1, 'SELECT 1 after the errors did not give 1');
  return `${seen.join(', ')}; connection still usable`;
}

async function reconnect() {
  if (conn) {
    await conn.end();
    conn = null;
  }
  conn = await connect();
  await conn.ping();
  const one = await scalar('SELECT 1');
  expect(one === 1, `SELECT 1 gave ${one}`);
  return 'closed, connected again, ping and SELECT 1 ok';
}

async function main() {
  await step(1, 'connect', async () => {
    conn = await connect();
    return `threadId=${conn.threadId}`;
  });
  await step(2, 'server_version', serverVersion);
  await step(3, 'insert', createInsert);
  await step(4, 'read', read);
  await step(5, 'transactions', transactions);
  await step(6, 'last_insert_id', lastInsertId);
  await step(7, 'duplicate_key', duplicateKey);
  await step(8, 'reconnect', reconnect);
  if (conn) await conn.end().catch(() => {});
  console.log(`DRIVER mysql2 ${version} ${allOk ? 'ok' : 'fail'}`);
  process.exit(allOk ? 0 : 1);
}

main();
