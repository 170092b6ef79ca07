#!/usr/bin/env bash
# PyMySQL's own test suite against MariaDB directly and through shardgate (unsharded), compared.
#
#   scripts/pymysql-suite.sh [--keep]
#
# Downloads the PyMySQL sdist from PyPI into a cache, starts one plain MariaDB server
# (scripts/cluster.sh: 1 shard, no replica) on free ports, creates what the suite needs there
# (databases test1 and test2, the accounts of pymysql/tests/databases.json), builds shardgate
# (release) and starts it with an unsharded config (that server as the only shard's primary,
# no replicas, no [[tables]]). Then it runs the suite twice with JUnit XML output, first
# directly against MariaDB, then through shardgate, each time on freshly created databases,
# and prints both totals and every test whose outcome differs.
#
# Exit status: 0 when every test that passed directly also passed through shardgate or is
# listed in scripts/pymysql-suite.expected (one pytest node id per line, each with a
# `# reason`); 1 otherwise, or when something could not be set up.
#
# Which PyMySQL: 0.10.1, the newest sdist on PyPI that ships its test suite (pymysql/tests).
# The sdists of 1.0.0 and later leave the suite out (their MANIFEST.in includes only README,
# LICENSE and CHANGELOG); a PYMYSQL_VERSION without pymysql/tests is refused. The suite
# imports `imp`, so it needs Python 3.11 or older, and pytest 9 needs 3.10 (PYTHON=... picks
# the interpreter).
# The sdist also lacks pymysql/tests/data/: the file the LOAD DATA LOCAL tests read is written
# here (22749 rows of two integers; the tests only count the rows).
#
# Both runs use the same databases.json apart from the port: TCP to 127.0.0.1 (shardgate listens
# on TCP only), account `pymysql` (ALL PRIVILEGES WITH GRANT OPTION, also shardgate's
# backend.user) on test1 and `test2` (privileges on test2 only, as in PyMySQL's CI) on test2.
#
# Environment:
#   SG_DRIVERS_CACHE   cache root (default ~/.cache/shardgate-drivers); this script uses
#                      its pymysql/ folder: the sdist and a venv with pytest
#   PYTHON             interpreter for the venv (default: the first of python3.11, python3.10,
#                      python3 that is 3.10 or 3.11)
#   SHARDGATE_BIN      use this shardgate binary instead of building one
#   CARGO_TARGET_DIR   as for cargo (where the release build goes)
#   RUST_LOG           shardgate's log filter (default info)
#   PYMYSQL_VERSION    another sdist (default 0.10.1; it must ship pymysql/tests)
#   SG_PYMYSQL_TIMEOUT seconds one pytest run may take (default 900)
#   --keep             keep the work directory (JUnit XML, pytest output, shardgate and MariaDB
#                      logs, the MariaDB datadir); when the run fails it is kept anyway, without
#                      the datadir
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYMYSQL_VERSION=${PYMYSQL_VERSION:-0.10.1}
# sha256 of PyMySQL-0.10.1.tar.gz as PyPI serves it.
PYMYSQL_SHA256_0_10_1=263040d2779a3b84930f7ac9da5132be0fefcd6f453a885756656103f8ee1fdd
PYTEST_REQ="pytest==9.2.0"
CACHE=${SG_DRIVERS_CACHE:-${HOME:-/tmp}/.cache/shardgate-drivers}/pymysql
EXPECTED=$REPO/scripts/pymysql-suite.expected
SUITE_TIMEOUT=${SG_PYMYSQL_TIMEOUT:-900}
KEEP=0

# Passwords of the test accounts (test2's is the one PyMySQL's CI uses).
MAIN_USER=pymysql
MAIN_PASS=pymysql-pass
TEST2_PASS="some password"

say() { echo "pymysql-suite: $*"; }
die() {
    echo "pymysql-suite: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (try --help)" ;;
    esac
    shift
done

T0=$SECONDS

# --- cleanup ------------------------------------------------------------------------------------

WORK=
PROXY_PID=
CLUSTER_STARTED=0
OK=0
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local rc=$?
    set +e
    if [ -n "$PROXY_PID" ] && kill -0 "$PROXY_PID" 2>/dev/null; then
        kill -TERM "$PROXY_PID" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$PROXY_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$PROXY_PID" 2>/dev/null
        wait "$PROXY_PID" 2>/dev/null
    fi
    if [ "$CLUSTER_STARTED" = 1 ]; then
        # The datadir (100 MB) goes unless --keep; its error log stays with the other logs.
        cp "$WORK/cluster/s0-primary/error.log" "$WORK/mariadb-error.log" 2>/dev/null
        if [ "$KEEP" = 1 ]; then
            bash "$REPO/scripts/cluster.sh" stop --dir "$WORK/cluster" >/dev/null 2>&1
        else
            bash "$REPO/scripts/cluster.sh" stop --dir "$WORK/cluster" --wipe >/dev/null 2>&1
        fi
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "$KEEP" = 1 ] || [ "$OK" != 1 ]; then
            echo "pymysql-suite: work directory kept: $WORK" >&2
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools --------------------------------------------------------------------------------------

bash "$REPO/scripts/install-deps.sh" mariadb

pick_python() {
    local p
    if [ -n "${PYTHON:-}" ]; then
        echo "$PYTHON"
        return
    fi
    for p in python3.11 python3.10 python3; do
        if command -v "$p" >/dev/null 2>&1 &&
            "$p" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] < (3, 12) else 1)' 2>/dev/null; then
            command -v "$p"
            return
        fi
    done
    die "no Python 3.10 or 3.11 found (PyMySQL $PYMYSQL_VERSION's tests import 'imp', gone in 3.12; $PYTEST_REQ needs 3.10); set PYTHON"
}
PY=$(pick_python)
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

mkdir -p "$CACHE"
exec 8>"$CACHE/.lock"
flock 8

VENV=$CACHE/venv-py$PYVER
if [ "$(cat "$VENV/.ready" 2>/dev/null)" != "$PYTEST_REQ" ]; then
    say "creating $VENV ($PYTEST_REQ)"
    rm -rf "$VENV"
    if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
        # Debian's python3 has venv in a separate package.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python$PYVER-venv" >/dev/null ||
                { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python$PYVER-venv" >/dev/null; } ||
                die "cannot install python$PYVER-venv"
            rm -rf "$VENV"
            "$PY" -m venv "$VENV" || die "cannot create a venv with $PY"
        else
            die "cannot create a venv with $PY (install python$PYVER-venv)"
        fi
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check "$PYTEST_REQ" || die "pip install $PYTEST_REQ failed"
    echo "$PYTEST_REQ" >"$VENV/.ready"
fi

# pip names the file PyMySQL-X.tar.gz or pymysql-X.tar.gz, depending on the release.
find_sdist() {
    find "$CACHE" -maxdepth 1 -type f -iname "pymysql-$PYMYSQL_VERSION.tar.gz" | head -n1
}
SDIST=$(find_sdist)
if [ -z "$SDIST" ]; then
    say "downloading the PyMySQL $PYMYSQL_VERSION sdist from PyPI"
    "$VENV/bin/pip" download -q --disable-pip-version-check --no-binary :all: --no-deps \
        -d "$CACHE" "PyMySQL==$PYMYSQL_VERSION" || die "pip download PyMySQL==$PYMYSQL_VERSION failed"
    SDIST=$(find_sdist)
    [ -n "$SDIST" ] || die "pip download left no PyMySQL-$PYMYSQL_VERSION.tar.gz in $CACHE"
fi
if [ "$PYMYSQL_VERSION" = 0.10.1 ]; then
    sum=$(sha256sum "$SDIST" | cut -d' ' -f1)
    if [ "$sum" != "$PYMYSQL_SHA256_0_10_1" ]; then
        rm -f "$SDIST"
        die "$SDIST has sha256 $sum, expected $PYMYSQL_SHA256_0_10_1 (removed; run again)"
    fi
fi
exec 8>&-

# --- work directory, sources --------------------------------------------------------------------

# Short: the server's unix socket path lives under it.
WORK=$(mktemp -d /tmp/sg-pym.XXXXXX)
tar -xzf "$SDIST" -C "$WORK"
SRC=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -iname "pymysql-$PYMYSQL_VERSION" | head -n1)
if [ -z "$SRC" ] || [ ! -d "$SRC/pymysql/tests" ]; then
    die "the PyMySQL $PYMYSQL_VERSION sdist has no pymysql/tests (sdists from 1.0.0 on leave the suite out)"
fi
mkdir -p "$SRC/pymysql/tests/data"
seq 1 22749 | awk '{ print $1 "," $1 * 2 }' >"$SRC/pymysql/tests/data/load_local_data.txt"

# --- ports, MariaDB -----------------------------------------------------------------------------

# A port nothing listens on (and the next one free too), from a range below the ephemeral ports.
free_port() {
    "$PY" - <<'EOF'
import random, socket
for _ in range(200):
    p = random.randrange(20000, 32000)
    ok = True
    for q in (p, p + 1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", q))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(p)
        break
else:
    raise SystemExit("no free port")
EOF
}
DB_PORT=$(free_port)
PROXY_PORT=$((DB_PORT + 1))

say "starting MariaDB on 127.0.0.1:$DB_PORT"
CLUSTER_STARTED=1
bash "$REPO/scripts/cluster.sh" start --dir "$WORK/cluster" --base-port "$DB_PORT" --shards 1 --replicas 0 >"$WORK/cluster.log" 2>&1 ||
    { cat "$WORK/cluster.log" >&2; die "cluster.sh start failed"; }
SOCK=$WORK/cluster/s0-primary/mariadbd.sock

root_sql() {
    mariadb --no-defaults -S "$SOCK" -uroot -N -B -e "$1"
}

# What PyMySQL's CI creates (its .travis/initializedb.sh at 0.10.1): test1 and test2, and test2,
# an account limited to test2. The first account is ours (the CI used root without a password,
# which a shardgate [[users]] entry cannot have): everything, like root.
root_sql "
CREATE USER '$MAIN_USER'@'%' IDENTIFIED BY '$MAIN_PASS';
GRANT ALL PRIVILEGES ON *.* TO '$MAIN_USER'@'%' WITH GRANT OPTION;
CREATE USER '$MAIN_USER'@'localhost' IDENTIFIED BY '$MAIN_PASS';
GRANT ALL PRIVILEGES ON *.* TO '$MAIN_USER'@'localhost' WITH GRANT OPTION;
CREATE USER test2 IDENTIFIED BY '$TEST2_PASS';
GRANT ALL ON test2.* TO test2;
CREATE USER test2@localhost IDENTIFIED BY '$TEST2_PASS';
GRANT ALL ON test2.* TO test2@localhost;
SET GLOBAL local_infile = ON;"
SERVER_VERSION=$(root_sql "SELECT VERSION()")

fresh_databases() {
    root_sql "
DROP DATABASE IF EXISTS test1; CREATE DATABASE test1 DEFAULT CHARACTER SET utf8mb4;
DROP DATABASE IF EXISTS test2; CREATE DATABASE test2 DEFAULT CHARACTER SET utf8mb4;"
}
fresh_databases

# --- shardgate ----------------------------------------------------------------------------------

if [ -n "${SHARDGATE_BIN:-}" ]; then
    BIN=$SHARDGATE_BIN
else
    say "building shardgate (cargo build --release)"
    (cd "$REPO" && cargo build --release --bin shardgate) >"$WORK/build.log" 2>&1 ||
        { tail -n 40 "$WORK/build.log" >&2; die "cargo build failed"; }
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/shardgate
    case $BIN in /*) ;; *) BIN=$REPO/$BIN ;; esac
fi
[ -x "$BIN" ] || die "no shardgate binary at $BIN"

# Unsharded: one shard, that server as its primary, no replicas, no [[tables]]; every option
# not given keeps its default (unparsed = "error", transactions = "single", ...).
cat >"$WORK/shardgate.toml" <<EOF
[proxy]
listen = "127.0.0.1:$PROXY_PORT"
default_shard = "s0"

[[users]]
name = "$MAIN_USER"
password = "$MAIN_PASS"

[[users]]
name = "test2"
password = "$TEST2_PASS"

[backend]
user = "$MAIN_USER"
password = "$MAIN_PASS"
database = "test1"
admin_user = "shardgate"
admin_password = "shardgate"

[[shards]]
name = "s0"
primary = "127.0.0.1:$DB_PORT"
replicas = []
EOF
"$BIN" --config "$WORK/shardgate.toml" --check >/dev/null || die "the generated config does not validate"

say "starting shardgate on 127.0.0.1:$PROXY_PORT"
# setsid: a Ctrl-C reaches this script and pytest, not the proxy (the EXIT trap stops it).
RUST_LOG=${RUST_LOG:-info} setsid "$BIN" --config "$WORK/shardgate.toml" </dev/null >"$WORK/shardgate.log" 2>&1 &
PROXY_PID=$!
deadline=$((SECONDS + 30))
until mariadb --no-defaults --connect-timeout=2 -h127.0.0.1 -P"$PROXY_PORT" -u"$MAIN_USER" -p"$MAIN_PASS" \
    -e 'SELECT 1' >/dev/null 2>&1; do
    if ! kill -0 "$PROXY_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
        tail -n 30 "$WORK/shardgate.log" >&2
        die "shardgate did not accept a login on 127.0.0.1:$PROXY_PORT"
    fi
    sleep 0.2
done

# --- the two runs -------------------------------------------------------------------------------

# run_suite NAME PORT: the whole suite against PORT, JUnit XML in $WORK/NAME.xml.
run_suite() {
    local name=$1 port=$2 rc=0 t=$SECONDS
    fresh_databases
    cat >"$SRC/pymysql/tests/databases.json" <<EOF
[
    {"host": "127.0.0.1", "port": $port, "user": "$MAIN_USER", "passwd": "$MAIN_PASS", "db": "test1",
     "use_unicode": true, "local_infile": true},
    {"host": "127.0.0.1", "port": $port, "user": "test2", "password": "$TEST2_PASS", "db": "test2"}
]
EOF
    say "running the suite $3"
    # --foreground: pytest gets the terminal's Ctrl-C (and stops) like this script does.
    (cd "$SRC" && timeout --foreground "$SUITE_TIMEOUT" "$VENV/bin/python" -m pytest pymysql/tests -p no:cacheprovider \
        -q -rfEsx --junitxml="$WORK/$name.xml" -o junit_suite_name="$name") >"$WORK/$name.out" 2>&1 || rc=$?
    # pytest: 0 all passed, 1 some failed; anything else means the run itself went wrong.
    if [ "$rc" -gt 1 ]; then
        tail -n 30 "$WORK/$name.out" >&2
        die "pytest $3 exited with $rc (output: $WORK/$name.out)"
    fi
    if ! kill -0 "$PROXY_PID" 2>/dev/null; then
        tail -n 30 "$WORK/shardgate.log" >&2
        die "shardgate exited during the run $3"
    fi
    say "  $(tail -n 5 "$WORK/$name.out" | grep -E 'passed|failed' | tail -n1) ($((SECONDS - t)) s)"
}
run_suite direct "$DB_PORT" "directly against MariaDB ($SERVER_VERSION, port $DB_PORT)"
run_suite shardgate "$PROXY_PORT" "through shardgate (port $PROXY_PORT)"

# --- comparison ---------------------------------------------------------------------------------

rc=0
"$PY" - "$WORK/direct.xml" "$WORK/shardgate.xml" "$EXPECTED" "$SRC" "$PYMYSQL_VERSION" <<'EOF' || rc=$?
import os
import sys
import xml.etree.ElementTree as ET

direct_xml, proxy_xml, expected_path, src, version = sys.argv[1:6]


def node_id(classname, name):
    """pytest's node id from a JUnit classname (a.b.test_mod.Class) and test name."""
    parts = classname.split(".")
    for i in range(len(parts), 0, -1):
        path = "/".join(parts[:i]) + ".py"
        if os.path.isfile(os.path.join(src, path)):
            return "::".join([path] + parts[i:] + [name])
    return classname + "::" + name


def load(path):
    results = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in tc:
            if child.tag not in ("failure", "error", "skipped"):
                continue
            outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
            if child.tag == "skipped" and (child.get("type") or "").endswith("xfail"):
                outcome = "xfailed"
            text = (child.get("message") or child.text or "").strip()
            message = text.splitlines()[0] if text else ""
            # A failing call and a failing teardown give two elements: the first decides.
            break
        results[node_id(tc.get("classname", ""), tc.get("name", ""))] = (outcome, message)
    return results


def load_expected(path):
    expected = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            test, _, reason = line.partition("#")
            if not reason.strip():
                sys.exit(f"{path}:{n}: '{test.strip()}' has no '# reason'")
            expected[test.strip()] = reason.strip()
    return expected


direct, proxy = load(direct_xml), load(proxy_xml)
expected = load_expected(expected_path)
kinds = ("passed", "failed", "error", "skipped", "xfailed")


def totals(results):
    return [sum(1 for o, _ in results.values() if o == k) for k in kinds]


print()
print(f"PyMySQL {version} test suite".ljust(34) + "".join(k.rjust(9) for k in kinds) + "    total")
for label, results in (("MariaDB directly", direct), ("through shardgate", proxy)):
    print(("  " + label).ljust(34) + "".join(str(v).rjust(9) for v in totals(results)) + str(len(results)).rjust(9))

diffs = []
for test in sorted(set(direct) | set(proxy)):
    d = direct.get(test, ("missing", ""))
    p = proxy.get(test, ("missing", ""))
    if d[0] != p[0]:
        diffs.append((test, d, p))

print()
unexplained = []
if not diffs:
    print("No test has a different outcome.")
else:
    print(f"Tests whose outcome differs ({len(diffs)}):")
    for test, d, p in diffs:
        worse = d[0] == "passed"
        if test in expected:
            tag = "expected"
        elif worse:
            tag = "NOT EXPECTED"
            unexplained.append(test)
        else:
            tag = "better through shardgate"
        print(f"  {test}")
        print(f"      direct {d[0]}, shardgate {p[0]} [{tag}]")
        if p[1]:
            print(f"      shardgate: {p[1][:300]}")
        if test in expected:
            print(f"      reason: {expected[test]}")

stale = [t for t in expected if t not in {d[0] for d in diffs}]
if stale:
    print()
    print("Listed in scripts/pymysql-suite.expected but not differing (remove them?):")
    for t in stale:
        print(f"  {t}")

print()
dp, pp = totals(direct)[0], totals(proxy)[0]
if dp == 0:
    print("FAIL: no test passed directly; the setup is broken")
    sys.exit(1)
if unexplained:
    print(f"FAIL: {len(unexplained)} test(s) passed directly but not through shardgate and are not "
          "listed in scripts/pymysql-suite.expected")
    sys.exit(1)
print(f"OK: {pp} passed through shardgate, {dp} directly; every difference is listed with its reason")
EOF
say "total time $((SECONDS - T0)) s"
if [ "$rc" = 0 ]; then
    OK=1
fi
exit "$rc"
