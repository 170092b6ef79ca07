"""The eight driver-matrix steps for a Python DB-API driver (see tests/drivers/README.md).

A driver's check script builds a `Driver` (how to connect, which cursor runs prepared
statements, how its errors carry the MySQL error number) and calls `run_steps`, which prints
`STEP <n> <name> ok|fail <detail>` lines and returns True when every step passed.

Connections use autocommit: under the proxy's default `transactions = "single"` one
transaction may write to one shard only, and steps 3 and 4 touch both; step 5 opens its
transactions explicitly, each on one shard.

Reads outside a transaction go to a replica, which applies the primary's writes
asynchronously: a read right after a write may not see it yet. Checks that follow writes
therefore wait (`eventually`, at most 5 s) and say in the detail how long the replicas took;
checks that something is absent read inside a transaction, which the proxy sends to the
primary.
"""

import os
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

ENV = os.environ
TABLE = ENV["SG_TABLE"]
AI_TABLE = ENV["SG_AI_TABLE"]
IDS = range(1, 21)  # hash-sharded: these land on both shards


def row_for(i: int) -> tuple:
    return (i, f"name{i}", i * 10)


class CheckFailed(Exception):
    pass


@dataclass
class Driver:
    connect: Callable[[], Any]
    # A cursor that runs statements as server-side prepared statements when the driver can,
    # else the driver's ordinary parameterised cursor.
    prepared_cursor: Callable[[Any], Any]
    # The placeholder the prepared cursor takes.
    placeholder: str = "%s"
    # Step-name suffix when one script checks several modes (e.g. "/pure").
    suffix: str = ""

    def errno(self, e: Exception) -> Optional[int]:
        n = getattr(e, "errno", None)
        if n is None and e.args and isinstance(e.args[0], int):
            n = e.args[0]
        return n


class Steps:
    def __init__(self, suffix: str):
        self.suffix = suffix
        self.ok = True

    def run(self, n: int, name: str, fn: Callable[[], str]) -> None:
        try:
            detail = fn() or ""
            status = "ok"
        except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
            self.ok = False
            status = "fail"
            detail = f"{type(e).__name__}: {e}"
            if not isinstance(e, (AssertionError, CheckFailed)) and ENV.get("SG_DEBUG"):
                traceback.print_exc()
        detail = " ".join(str(detail).split())
        print(f"STEP {n} {name}{self.suffix} {status} {detail}", flush=True)


def expect(got, want, what: str) -> None:
    if got != want:
        raise CheckFailed(f"{what}: got {got!r}, want {want!r}")


def eventually(check: Callable[[], None], timeout: float = 5.0) -> float:
    """Runs check() until it stops raising (a mismatch, or an error such as a table the replica
    has not created yet); returns the seconds waited (0 when the first try passed)."""
    t0 = time.monotonic()
    tries = 0
    while True:
        try:
            check()
            return time.monotonic() - t0 if tries else 0.0
        except Exception:  # noqa: BLE001 - retried, and raised once the time is up
            if time.monotonic() - t0 > timeout:
                raise
            tries += 1
            time.sleep(0.01)


def lag_note(seconds: float) -> str:
    return f" (replicas caught up after {seconds * 1000:.0f} ms)" if seconds else ""


def one(cur, sql: str, args=None):
    if args is None:
        cur.execute(sql)
    else:
        cur.execute(sql, args)
    rows = cur.fetchall()
    if len(rows) != 1:
        raise CheckFailed(f"{sql}: {len(rows)} rows, want 1")
    return tuple(rows[0])


def run_steps(drv: Driver) -> bool:
    st = Steps(drv.suffix)
    ph = drv.placeholder
    state: dict = {}

    def conn():
        if "conn" not in state:
            raise CheckFailed("no connection (step 1 failed)")
        return state["conn"]

    def connect():
        c = drv.connect()
        state["conn"] = c
        (cid,) = one(c.cursor(), "SELECT CONNECTION_ID()")
        # The id the handshake gave (what KILL takes), next to what CONNECTION_ID() answers.
        hid = getattr(c, "connection_id", None)
        if hid is None and callable(getattr(c, "thread_id", None)):
            hid = c.thread_id()
        return f"handshake connection id {hid}, SELECT CONNECTION_ID() {cid}"

    def version():
        c = conn()
        handshake = c.get_server_info()
        if isinstance(handshake, bytes):
            handshake = handshake.decode()
        (selected,) = one(c.cursor(), "SELECT VERSION()")
        if not str(handshake).endswith("-shardgate"):
            raise CheckFailed(f"handshake version {handshake!r} does not end with -shardgate")
        return f"{handshake} (SELECT VERSION(): {selected})"

    def insert():
        c = conn()
        cur = c.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(f"CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, name VARCHAR(64), n INT)")
        for i in IDS[:10]:
            cur.execute("INSERT INTO %s (id, name, n) VALUES (%d, '%s', %d)" % ((TABLE,) + row_for(i)))
        pc = drv.prepared_cursor(c)
        sql = f"INSERT INTO {TABLE} (id, name, n) VALUES ({ph}, {ph}, {ph})"
        for i in IDS[10:]:
            pc.execute(sql, row_for(i))
            expect(pc.rowcount, 1, f"rowcount of prepared INSERT id={i}")
        return f"{len(IDS)} rows (10 plain, 10 prepared)"

    def read():
        c = conn()
        pc = drv.prepared_cursor(c)
        cur = c.cursor()
        waited = eventually(lambda: expect(one(cur, f"SELECT COUNT(*) FROM {TABLE}")[0], len(IDS), "COUNT(*)"))
        for i in IDS:
            got = one(pc, f"SELECT id, name, n FROM {TABLE} WHERE id = {ph}", (i,))
            expect(tuple(got), row_for(i), f"row {i}")
        cur.execute(f"SELECT id FROM {TABLE} ORDER BY id LIMIT 5")
        expect([r[0] for r in cur.fetchall()], [1, 2, 3, 4, 5], "ORDER BY id LIMIT 5")
        s, lo, hi, avg = one(cur, f"SELECT SUM(n), MIN(id), MAX(id), AVG(n) FROM {TABLE}")
        expect((int(s), lo, hi, float(avg)), (2100, 1, 20, 105.0), "SUM(n), MIN(id), MAX(id), AVG(n)")
        # The same scatter aggregate as a prepared statement with a bound value.
        (cnt,) = one(pc, f"SELECT COUNT(*) FROM {TABLE} WHERE n > {ph}", (100,))
        expect(cnt, 10, "prepared COUNT(*) WHERE n > 100")
        return "COUNT, 20 prepared point reads, ORDER BY LIMIT, SUM/MIN/MAX/AVG, prepared COUNT" + lag_note(waited)

    def transactions():
        c = conn()
        cur = c.cursor()
        pc = drv.prepared_cursor(c)
        ins = f"INSERT INTO {TABLE} (id, name, n) VALUES ({ph}, {ph}, {ph})"
        sel = f"SELECT COUNT(*) FROM {TABLE} WHERE id = {ph}"
        cur.execute("START TRANSACTION")
        pc.execute(ins, row_for(101))
        c.commit()
        waited = eventually(lambda: expect(one(pc, sel, (101,))[0], 1, "row 101 after COMMIT"))
        cur.execute("START TRANSACTION")
        pc.execute(ins, row_for(102))
        expect(one(pc, sel, (102,))[0], 1, "row 102 inside its transaction")
        c.rollback()
        cur.execute("START TRANSACTION")  # read on the primary: no replica can hide the row
        expect(one(pc, sel, (102,))[0], 0, "row 102 after ROLLBACK")
        c.commit()
        return "commit visible, rollback not visible" + lag_note(waited)

    def last_insert_id():
        c = conn()
        cur = c.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {AI_TABLE}")
        cur.execute(f"CREATE TABLE {AI_TABLE} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        seen = []
        for kind, k in (("plain", cur), ("prepared", drv.prepared_cursor(c))):
            for v in (1, 2):
                if kind == "plain":
                    k.execute(f"INSERT INTO {AI_TABLE} (v) VALUES ({v})")
                else:
                    k.execute(f"INSERT INTO {AI_TABLE} (v) VALUES ({ph})", (v,))
                rowid = k.lastrowid
                (lid,) = one(cur, "SELECT LAST_INSERT_ID()")
                expect(rowid, lid, f"{kind} lastrowid vs SELECT LAST_INSERT_ID()")
                seen.append(rowid)
        expect(seen, [1, 2, 3, 4], "ids")
        return f"lastrowid = LAST_INSERT_ID() = {seen}"

    def duplicate():
        c = conn()
        got = []
        for kind, k in (("plain", c.cursor()), ("prepared", drv.prepared_cursor(c))):
            try:
                if kind == "plain":
                    k.execute(f"INSERT INTO {TABLE} (id, name, n) VALUES (1, 'again', 0)")
                else:
                    k.execute(f"INSERT INTO {TABLE} (id, name, n) VALUES ({ph}, {ph}, {ph})", (2, "again", 0))
            except Exception as e:  # noqa: BLE001 - checked below
                n = drv.errno(e)
                if n != 1062:
                    raise CheckFailed(f"{kind}: {type(e).__name__} {e} (errno {n}), want 1062")
                got.append(f"{kind} {type(e).__name__} {n}")
            else:
                raise CheckFailed(f"{kind}: duplicate INSERT succeeded")
        return ", ".join(got)

    def reconnect():
        old = state.pop("conn", None)
        if old is not None:
            old.close()
        c = drv.connect()
        state["conn"] = c
        expect(one(c.cursor(), "SELECT 1")[0], 1, "SELECT 1")
        return "closed, connected again, SELECT 1"

    st.run(1, "connect", connect)
    st.run(2, "server_version", version)
    st.run(3, "insert", insert)
    st.run(4, "read", read)
    st.run(5, "transactions", transactions)
    st.run(6, "last_insert_id", last_insert_id)
    st.run(7, "duplicate_key", duplicate)
    st.run(8, "reconnect", reconnect)
    if "conn" in state:
        try:
            state["conn"].close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
    return st.ok


def connect_args() -> dict:
    return dict(
        host=ENV["SG_HOST"],
        port=int(ENV["SG_PORT"]),
        user=ENV["SG_USER"],
        password=ENV["SG_PASS"],
        database=ENV["SG_DB"],
    )


def finish(name: str, version: str, ok: bool) -> int:
    print(f"DRIVER {name} {version} {'ok' if ok else 'fail'}", flush=True)
    return 0 if ok else 1
