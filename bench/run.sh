#!/usr/bin/env bash
# shardgate benchmark suite: sysbench through direct / HAProxy (mode tcp) / shardgate, all three in
# front of the SAME MariaDB server; a 2-shard vs 1-shard comparison; connection scaling.
# Not part of CI. Results: bench/results/latest.md and latest.png; raw outputs bench/results/raw/.
#
#   bench/run.sh                 the whole suite (about 25 minutes on 2 vCPUs)
#   QUICK=1 bench/run.sh         smoke run: point_select only, 5 s, 1 round, no sharding/conns;
#                                its report goes to bench/results/raw/latest.{md,png}
#   bench/run.sh profile WORKLOAD THREADS PS_MODE [SECS]
#                                perf profile of shardgate under one workload (PS_MODE disable|auto),
#                                top symbols to bench/results/raw/perf-*.txt and stdout
#   bench/run.sh callgrind [EVENTS]
#                                instructions per point select (text and prepared, 1 thread) in
#                                shardgate and in HAProxy, counted by valgrind's callgrind: exact
#                                and repeatable on a noisy machine, so regressions show. Writes
#                                bench/results/callgrind.md (+ raw/callgrind-*.txt, top functions)
#   bench/run.sh stop            stop anything a killed run left behind (clusters keep their data)
#
# Knobs (environment):
#   DURATION=8 WARMUP=1 ROUNDS=3       seconds per measured run, per warm-up run, rounds per cell
#   TABLES=8 TABLE_SIZE=100000         sysbench data (always --auto_inc=off)
#   PS_THREADS="1 4 16 64"             oltp_point_select thread counts (text and prepared each)
#   OLTP_WORKLOADS="oltp_read_only oltp_read_write oltp_insert" OLTP_THREADS="4 16"
#   OLTP_PS_MODE=auto                  --db-ps-mode of the OLTP workloads (auto = sysbench default)
#   SHARDING=1 SHARD_THREADS=16        2-shard vs 1-shard point_select (text) comparison
#   CONNSCALE=1 CONNS="1000 5000 10000" CONN_INTERVAL=10 CONN_SECS=20
#                                      idle-ish clients, each sending one point select per
#                                      CONN_INTERVAL seconds for CONN_SECS seconds
#   CALLGRIND=1 CALLGRIND_EVENTS=20000
#                                      last phase: instructions per point select under callgrind
#                                      (shardgate and HAProxy, text and prepared, 1 thread)
#   SG_WORKERS=0                       shardgate proxy.workers (0: one per core)
#   SG_POOL_SIZE=128                   shardgate backend pool_size (>= the largest thread count, so
#                                      the pool never throttles; HAProxy opens one per client)
#   BUFFER_POOL=1G                     innodb_buffer_pool_size set on every server after start (the
#                                      cluster's 32M would make point selects disk-bound)
#   MAX_PREPARED=1048576               max_prepared_stmt_count set on every server ("keep": the
#                                      server default 16382, which shardgate's statement cache
#                                      exhausts during the suite)
#   FRESH=1                            wipe both clusters and reload the data
#   PROFILE_SHARDS=1|2                 profile: shardgate over cluster 1 or over the 2-shard cluster
#   BASE_PORT=33306 CLUSTER2_PORT=33310 SG_PORT=33300 HAPROXY_PORT=33301 SG2_PORT=33302
#
# Setup, all on 127.0.0.1: cluster 1 (bench/results/raw/cluster1) is ONE primary, no replica: the
# server behind direct, HAProxy and shardgate ("sg1": one shard, replicas = [], sbtest* unlisted
# so they live on the default shard). Cluster 2 (raw/cluster2) is two primaries behind "sg2", with
# sbtest1..N listed as hash-sharded on id; its data is loaded THROUGH sg2 (sysbench prepare).
# Every cell runs interleaved rounds (direct, haproxy, shardgate; x ROUNDS), each a WARMUP-second
# run and then a DURATION-second measured run; the report shows the median of the rounds.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    DURATION=${DURATION:-5} WARMUP=${WARMUP:-1} ROUNDS=${ROUNDS:-1}
    OLTP_WORKLOADS=${OLTP_WORKLOADS-} SHARDING=${SHARDING:-0} CONNSCALE=${CONNSCALE:-0} CALLGRIND=${CALLGRIND:-0}
fi
CALLGRIND=${CALLGRIND:-1}
CALLGRIND_EVENTS=${CALLGRIND_EVENTS:-20000}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
TABLES=${TABLES:-8}
TABLE_SIZE=${TABLE_SIZE:-100000}
PS_THREADS=${PS_THREADS:-1 4 16 64}
PS_MODES=${PS_MODES:-disable auto}
OLTP_WORKLOADS=${OLTP_WORKLOADS-oltp_read_only oltp_read_write oltp_insert}
OLTP_THREADS=${OLTP_THREADS:-4 16}
OLTP_PS_MODE=${OLTP_PS_MODE:-auto}
SHARDING=${SHARDING:-1}
SHARD_THREADS=${SHARD_THREADS:-16}
CONNSCALE=${CONNSCALE:-1}
CONNS=${CONNS:-1000 5000 10000}
CONN_INTERVAL=${CONN_INTERVAL:-10}
CONN_SECS=${CONN_SECS:-20}
SG_WORKERS=${SG_WORKERS:-0}
SG_POOL_SIZE=${SG_POOL_SIZE:-128}
BUFFER_POOL=${BUFFER_POOL:-1G}
MAX_PREPARED=${MAX_PREPARED:-1048576}
FRESH=${FRESH:-0}
BASE_PORT=${BASE_PORT:-33306}
CLUSTER2_PORT=${CLUSTER2_PORT:-33310}
SG_PORT=${SG_PORT:-33300}
HAPROXY_PORT=${HAPROXY_PORT:-33301}
SG2_PORT=${SG2_PORT:-33302}

RAW=$REPO/bench/results/raw
# Where latest.md and latest.png go: bench/results (committed) for a full run, raw/ for QUICK=1
# so a smoke run never replaces the committed results.
OUT=${REPORT_DIR:-$REPO/bench/results}
[ "$QUICK" = 1 ] && OUT=${REPORT_DIR:-$RAW}
C1=$RAW/cluster1
C2=$RAW/cluster2
SG_BIN=$CARGO_TARGET_DIR/release/shardgate
CLK_TCK=$(getconf CLK_TCK)

say() { echo "[bench $(date +%H:%M:%S)] $*"; }
die() {
    echo "bench: $*" >&2
    exit 1
}

# --- processes we start, and cleanup ---------------------------------------------------------------

SG1_PID= SG2_PID= HAPROXY_PID= CLUSTER2_STARTED=0 CLUSTER1_STARTED=0

stop_pid() {
    local pid=$1 name=$2
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "bench: $name (pid $pid) did not stop; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$SG1_PID" shardgate-1shard
    stop_pid "$SG2_PID" shardgate-2shard
    stop_pid "$HAPROXY_PID" haproxy
    rm -f "$RAW/pids"
    [ "$CLUSTER1_STARTED" = 1 ] && bash scripts/cluster.sh stop --dir "$C1" >/dev/null 2>&1
    [ "$CLUSTER2_STARTED" = 1 ] && bash scripts/cluster.sh stop --dir "$C2" >/dev/null 2>&1
    exit "$rc"
}

# A run killed with SIGKILL leaves its proxies: their pids are in raw/pids.
stop_leftovers() {
    local pid name
    if [ -f "$RAW/pids" ]; then
        while read -r pid name; do
            if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$RAW/"; then
                stop_pid "$pid" "$name (left by an earlier run)"
            fi
        done <"$RAW/pids"
        rm -f "$RAW/pids"
    fi
    [ -f "$C1/cluster.env" ] && bash scripts/cluster.sh stop --dir "$C1" >/dev/null
    [ -f "$C2/cluster.env" ] && bash scripts/cluster.sh stop --dir "$C2" >/dev/null
    return 0
}

# --- install and build -----------------------------------------------------------------------------

install_deps() {
    bash scripts/install-deps.sh mariadb
    local missing=()
    command -v sysbench >/dev/null || missing+=(sysbench)
    command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
    command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
    command -v perf >/dev/null || missing+=(linux-perf)
    command -v python3 >/dev/null || missing+=(python3)
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    fi
    export PATH=$PATH:/usr/sbin
    if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
        PATH=$HOME/.cargo/bin:$PATH
    fi
}

CONNSCALE_BIN=
build() {
    say "building shardgate (release) into $CARGO_TARGET_DIR"
    cargo build --release --bin shardgate -q
    # bench/connscale.rs: an [[example]] once Cargo.toml lists it; until then a throwaway
    # manifest under raw/ builds it with the proxy's own Cargo.lock (same tokio and sha1).
    if grep -q 'bench/connscale.rs' Cargo.toml; then
        cargo build --release --example connscale -q
        CONNSCALE_BIN=$CARGO_TARGET_DIR/release/examples/connscale
    else
        local d=$RAW/connscale-build
        mkdir -p "$d"
        cat >"$d/Cargo.toml" <<EOF
[package]
name = "connscale"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
tokio = { version = "1.47", features = ["rt", "net", "io-util", "time", "sync", "macros"] }
sha1 = "0.10"

[[bin]]
name = "connscale"
path = "$REPO/bench/connscale.rs"
EOF
        cp Cargo.lock "$d/Cargo.lock"
        cargo build --release -q --manifest-path "$d/Cargo.toml"
        CONNSCALE_BIN=$CARGO_TARGET_DIR/release/connscale
    fi
}

# --- servers ---------------------------------------------------------------------------------------

# root SQL over a server's socket: sql DIR NAME SQL
sql() {
    mariadb --no-defaults -S "$1/$2/mariadbd.sock" -uroot -N -B app -e "$3"
}

tune_server() {
    local dir=$1 name=$2
    # The cluster's my.cnf is a small test config (32M buffer pool, 16M redo log); 8 x 100k rows
    # must fit in memory or every point select reads pages from the OS cache.
    sql "$dir" "$name" "SET GLOBAL innodb_buffer_pool_size = $(numfmt --from=iec "$BUFFER_POOL")"
    # shardgate keeps backend prepared statements on pooled connections (up to 256 per
    # connection), which can exhaust the server-wide default of 16382 and then fail every
    # client's PREPARE, direct and HAProxy ones included (see latest.md). The suite measures
    # speed, so it lifts the limit; MAX_PREPARED=keep leaves the server default.
    if [ "$MAX_PREPARED" != keep ]; then
        sql "$dir" "$name" "SET GLOBAL max_prepared_stmt_count = $MAX_PREPARED"
    fi
    sql "$dir" "$name" "SET GLOBAL innodb_log_file_size = 512*1024*1024" 2>/dev/null ||
        say "note: $name kept its innodb_log_file_size (not dynamic here)"
    local deadline=$((SECONDS + 60))
    # The resize runs in the background; its status is empty or "Completed ..." when done.
    until sql "$dir" "$name" "SHOW STATUS LIKE 'Innodb_buffer_pool_resize_status'" |
        awk -F'\t' '$2 == "" || $2 ~ /^Completed/ {ok = 1} END {exit !ok}' || [ "$SECONDS" -ge "$deadline" ]; do
        sleep 0.2
    done
    sql "$dir" "$name" "SELECT CONCAT('$name: buffer pool ', @@innodb_buffer_pool_size DIV 1048576,
        'M, redo log ', @@innodb_log_file_size DIV 1048576, 'M, max_connections ', @@max_connections,
        ', max_prepared_stmt_count ', @@max_prepared_stmt_count)"
}

# Our ports sit inside Linux's ephemeral range (32768-60999): an outgoing connection of any
# process (the 10k connscale clients, a parallel test run) may hold one as its local port, and
# then a server cannot bind it. Reserve them, adding to whatever is reserved already.
reserve_ports() {
    local f=/proc/sys/net/ipv4/ip_local_reserved_ports want cur
    want="$SG_PORT-$((SG2_PORT)),$BASE_PORT,$CLUSTER2_PORT-$((CLUSTER2_PORT + 1))"
    cur=$(cat "$f" 2>/dev/null) || return 0
    if [ -w "$f" ] && ! grep -qF "$SG_PORT" <<<"$cur"; then
        echo "${cur:+$cur,}$want" >"$f" 2>/dev/null && say "reserved ports $want (net.ipv4.ip_local_reserved_ports)" ||
            say "note: could not reserve $want; a server may fail to bind if a client holds its port"
    fi
}

# cluster.sh start, once more after a bind failure (a client may have held the port briefly).
cluster_start() {
    local log=$1
    shift
    bash scripts/cluster.sh start "$@" >"$log" 2>&1 && return 0
    say "cluster.sh start failed ($(grep -m1 -o 'Address already in use' "$log" || tail -1 "$log")); retrying once"
    sleep 2
    bash scripts/cluster.sh start "$@" >>"$log" 2>&1 || {
        tail -n 25 "$log" >&2
        die "cluster.sh start $* failed twice; see $log"
    }
}

start_clusters() {
    reserve_ports
    if [ "$FRESH" = 1 ]; then
        bash scripts/cluster.sh stop --dir "$C1" --wipe >/dev/null 2>&1 || true
        bash scripts/cluster.sh stop --dir "$C2" --wipe >/dev/null 2>&1 || true
    fi
    mkdir -p "$C1"
    CLUSTER1_STARTED=1
    say "starting cluster 1 (1 shard, primary only) on port $BASE_PORT"
    cluster_start "$RAW/cluster1.log" --dir "$C1" --base-port "$BASE_PORT" --shards 1 --replicas 0
    tune_server "$C1" s0-primary
    if [ "${1:-}" = with2 ]; then
        mkdir -p "$C2"
        CLUSTER2_STARTED=1
        say "starting cluster 2 (2 shards, primaries only) on ports $CLUSTER2_PORT-$((CLUSTER2_PORT + 1))"
        cluster_start "$RAW/cluster2.log" --dir "$C2" --base-port "$CLUSTER2_PORT" --shards 2 --replicas 0
        tune_server "$C2" s0-primary
        tune_server "$C2" s1-primary
    fi
}

mariadbd_pid() { cat "$1/s0-primary/launch.pid"; }

login_ok() {
    mariadb --no-defaults --connect-timeout=2 -h127.0.0.1 -P"$1" -uapp -papp app -e 'SELECT 1' >/dev/null 2>&1
}

wait_login() {
    local port=$1 pid=$2 name=$3 log=$4 deadline=$((SECONDS + ${5:-30}))
    until login_ok "$port"; do
        if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            echo "bench: $name did not accept a login on port $port; end of $log:" >&2
            tail -n 20 "$log" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}

# The [proxy], [[users]] and [backend] sections of both shardgate configs: sg_header PORT
sg_header() {
    cat <<EOF
[proxy]
listen = "127.0.0.1:$1"
max_connections = 12000
workers = $SG_WORKERS
default_shard = "s0"

[[users]]
name = "app"
password = "app"

[backend]
user = "app"
password = "app"
database = "app"
pool_size = $SG_POOL_SIZE
EOF
}

write_sg_configs() {
    {
        cat <<EOF
# shardgate over cluster 1: one shard, no replicas (reads go to the primary, the same server
# direct and HAProxy use). sbtest* are not listed: they live on the default shard.
EOF
        sg_header "$SG_PORT"
        cat <<EOF

[[shards]]
name = "s0"
primary = "127.0.0.1:$BASE_PORT"
replicas = []
EOF
    } >"$RAW/sg1.toml"
    {
        cat <<EOF
# shardgate over cluster 2: two shards, no replicas; sbtest1..$TABLES hash-sharded on id.
EOF
        sg_header "$SG2_PORT"
        cat <<EOF

[[shards]]
name = "s0"
primary = "127.0.0.1:$CLUSTER2_PORT"
replicas = []

[[shards]]
name = "s1"
primary = "127.0.0.1:$((CLUSTER2_PORT + 1))"
replicas = []
EOF
        for ((i = 1; i <= TABLES; i++)); do
            printf '\n[[tables]]\nname = "sbtest%d"\nshard_key = "id"\nalgorithm = "hash"\n' "$i"
        done
    } >"$RAW/sg2.toml"
    "$SG_BIN" --config "$RAW/sg1.toml" --check >/dev/null
    "$SG_BIN" --config "$RAW/sg2.toml" --check >/dev/null
}

start_sg() { # which(1|2) -> sets SG1_PID / SG2_PID
    local which=$1 port log
    port=$SG_PORT
    [ "$which" = 2 ] && port=$SG2_PORT
    log=$RAW/sg$which.log
    SHARDGATE_LOG=${SHARDGATE_LOG:-warn} "$SG_BIN" --config "$RAW/sg$which.toml" </dev/null >>"$log" 2>&1 &
    local pid=$!
    echo "$pid shardgate-$which" >>"$RAW/pids"
    if [ "$which" = 1 ]; then SG1_PID=$pid; else SG2_PID=$pid; fi
    wait_login "$port" "$pid" "shardgate ($which shard)" "$log"
    say "shardgate ($which shard) pid $pid on port $port, open files limit $(awk '/Max open files/ {print $4}' "/proc/$pid/limits")"
}

start_haproxy() {
    cat >"$RAW/haproxy.cfg" <<EOF
global
    # 2 fds per connection; the suite needs at most 64 (20000 would need 40k fds).
    maxconn 4000
    log stdout format raw local0 err

defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h

listen mysql
    bind 127.0.0.1:$HAPROXY_PORT
    server s0 127.0.0.1:$BASE_PORT
EOF
    haproxy -f "$RAW/haproxy.cfg" -db </dev/null >>"$RAW/haproxy.log" 2>&1 &
    HAPROXY_PID=$!
    echo "$HAPROXY_PID haproxy" >>"$RAW/pids"
    wait_login "$HAPROXY_PORT" "$HAPROXY_PID" haproxy "$RAW/haproxy.log"
    say "haproxy pid $HAPROXY_PID on port $HAPROXY_PORT ($(haproxy -v | head -1 | cut -d' ' -f1-3))"
}

# --- data ------------------------------------------------------------------------------------------

SB_COMMON=()
sb_common() {
    SB_COMMON=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user=app --mysql-password=app
        --mysql-db=app --tables="$TABLES" --table-size="$TABLE_SIZE" --auto_inc=off)
}

# Rows per table on cluster DIR (summed over its shards) equal TABLE_SIZE, ids 1..TABLE_SIZE?
data_ok() {
    local dir=$1 shards=$2 i s n total
    for ((i = 1; i <= TABLES; i++)); do
        total=0
        for ((s = 0; s < shards; s++)); do
            n=$(sql "$dir" "s$s-primary" "SELECT COUNT(*) FROM sbtest$i WHERE id BETWEEN 1 AND $TABLE_SIZE" 2>/dev/null) || return 1
            total=$((total + n))
        done
        [ "$total" = "$TABLE_SIZE" ] || return 1
    done
}

# oltp_insert adds rows with random ids; put the tables back to ids 1..TABLE_SIZE.
trim_inserted() {
    local dir=$1 shards=$2 i s
    for ((s = 0; s < shards; s++)); do
        for ((i = 1; i <= TABLES; i++)); do
            sql "$dir" "s$s-primary" "DELETE FROM sbtest$i WHERE id < 1 OR id > $TABLE_SIZE"
        done
    done
}

prepare_data() {
    if data_ok "$C1" 1; then
        say "cluster 1 already holds $TABLES x $TABLE_SIZE rows; reusing it (FRESH=1 reloads)"
    else
        say "loading $TABLES x $TABLE_SIZE rows into cluster 1 (direct)"
        sysbench oltp_read_only "${SB_COMMON[@]}" --mysql-port="$BASE_PORT" cleanup >"$RAW/prepare-direct.txt" 2>&1
        sysbench oltp_read_only "${SB_COMMON[@]}" --mysql-port="$BASE_PORT" --threads=2 prepare >>"$RAW/prepare-direct.txt" 2>&1 ||
            die "sysbench prepare (direct) failed: see $RAW/prepare-direct.txt"
        data_ok "$C1" 1 || die "cluster 1 does not hold the expected rows after prepare"
    fi
    trim_inserted "$C1" 1
    sql "$C1" s0-primary "ANALYZE TABLE $(seq -s, -f 'sbtest%g' 1 "$TABLES")" >/dev/null
}

# Loads the sharded data THROUGH sg2. Sets SHARDED_OK=1 on success, else records why.
SHARDED_OK=0
prepare_sharded() {
    if data_ok "$C2" 2; then
        say "cluster 2 already holds the sharded rows; reusing them"
    else
        say "loading $TABLES x $TABLE_SIZE rows into cluster 2 THROUGH shardgate (sysbench prepare, --auto_inc=off)"
        local s i
        for s in 0 1; do
            for ((i = 1; i <= TABLES; i++)); do sql "$C2" "s$s-primary" "DROP TABLE IF EXISTS sbtest$i"; done
        done
        if ! sysbench oltp_read_only "${SB_COMMON[@]}" --mysql-port="$SG2_PORT" --threads=2 prepare >"$RAW/prepare-sharded.txt" 2>&1; then
            say "sysbench prepare THROUGH shardgate (2 shards) FAILED; see $RAW/prepare-sharded.txt:"
            grep -iE 'error|fatal' "$RAW/prepare-sharded.txt" | head -5
            return 0
        fi
        if ! data_ok "$C2" 2; then
            say "after prepare through shardgate the shards do not hold $TABLE_SIZE rows per table"
            return 0
        fi
    fi
    trim_inserted "$C2" 2
    # Every row must be on the shard the proxy routes its id to: fetch a sample through sg2.
    local s0 s1 n
    s0=$(sql "$C2" s0-primary "SELECT COUNT(*) FROM sbtest1")
    s1=$(sql "$C2" s1-primary "SELECT COUNT(*) FROM sbtest1")
    n=$(for id in 1 2 3 17 4242 99999; do
        mariadb --no-defaults -h127.0.0.1 -P"$SG2_PORT" -uapp -papp app -N -B -e "SELECT id FROM sbtest1 WHERE id = $id"
    done | wc -l)
    say "sharded sbtest1: $s0 rows on s0, $s1 on s1; $n/6 sample ids found through shardgate"
    echo "sbtest1 rows: s0=$s0 s1=$s1; sample ids found through sg2: $n/6" >"$RAW/sharded-check.txt"
    [ "$n" = 6 ] && SHARDED_OK=1
    for s in 0 1; do
        sql "$C2" "s$s-primary" "ANALYZE TABLE $(seq -s, -f 'sbtest%g' 1 "$TABLES")" >/dev/null
    done
    return 0
}

# --- one measured run ------------------------------------------------------------------------------

# utime + stime of one or more processes (pids separated by commas), in clock ticks.
cpu_ticks() {
    local pid sum=0
    for pid in ${1//,/ }; do
        sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$sum"
}

# run_one NAME PORT PROXY_PID SERVER_PIDS WORKLOAD THREADS PS_MODE [extra sysbench args]
# Writes RUNS/NAME.txt (sysbench output) and RUNS/NAME.meta.
run_one() {
    local name=$1 port=$2 ppid=$3 spid=$4 wl=$5 threads=$6 ps=$7
    shift 7
    local f=$RUNS/$name args
    args=("${SB_COMMON[@]}" --mysql-port="$port" --threads="$threads" --db-ps-mode="$ps"
        --percentile=99 --histogram=on --report-interval=0 "$@")
    sysbench "$wl" "${args[@]}" --time="$WARMUP" run >"$f.warmup" 2>&1 || true
    local p0=0 p1=0 s0 s1 rc=0 sampler
    [ "$ppid" != - ] && p0=$(cpu_ticks "$ppid")
    s0=$(cpu_ticks "$spid")
    if [ "$ppid" != - ]; then
        (while :; do awk '/^VmRSS:/ {print $2}' "/proc/$ppid/status" 2>/dev/null || true; sleep 0.5; done) >"$f.rss" &
        sampler=$!
    fi
    sysbench "$wl" "${args[@]}" --time="$DURATION" run >"$f.txt" 2>&1 || rc=$?
    [ "$ppid" != - ] && p1=$(cpu_ticks "$ppid")
    s1=$(cpu_ticks "$spid")
    local rss=0
    if [ "$ppid" != - ]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        rss=$(sort -n "$f.rss" | tail -1)
    fi
    printf 'rc=%s proxy_cpu_ticks=%s server_cpu_ticks=%s clk_tck=%s proxy_rss_max_kib=%s\n' \
        "$rc" "$((p1 - p0))" "$((s1 - s0))" "$CLK_TCK" "${rss:-0}" >"$f.meta"
    local qps
    qps=$(awk '/^ *queries:/ {gsub(/\(/, "", $3); print $3}' "$f.txt")
    if [ "$rc" != 0 ] || grep -q FATAL "$f.txt"; then
        say "  $name: FAILED (rc=$rc): $(grep -m1 -E 'FATAL|error' "$f.txt" || tail -1 "$f.txt")"
    else
        say "  $name: ${qps:-?} qps"
    fi
}

# A cell: ROUNDS interleaved rounds of direct, haproxy, shardgate.
run_cell() {
    local wl=$1 threads=$2 ps=$3 r extra=()
    [ "$wl" = oltp_insert ] && extra=(--mysql-ignore-errors=1062)
    for ((r = 1; r <= ROUNDS; r++)); do
        run_one "main__${wl}__${ps}__t${threads}__direct__r$r" "$BASE_PORT" - "$SERVER1_PID" "$wl" "$threads" "$ps" "${extra[@]}"
        [ "$wl" = oltp_insert ] && trim_inserted "$C1" 1
        run_one "main__${wl}__${ps}__t${threads}__haproxy__r$r" "$HAPROXY_PORT" "$HAPROXY_PID" "$SERVER1_PID" "$wl" "$threads" "$ps" "${extra[@]}"
        [ "$wl" = oltp_insert ] && trim_inserted "$C1" 1
        run_one "main__${wl}__${ps}__t${threads}__shardgate__r$r" "$SG_PORT" "$SG1_PID" "$SERVER1_PID" "$wl" "$threads" "$ps" "${extra[@]}"
        [ "$wl" = oltp_insert ] && trim_inserted "$C1" 1
    done
    # Server-wide prepared statements still open once every sysbench client has gone: those
    # are shardgate's pooled backend connections' (HAProxy's and direct clients' close).
    printf '%s %s %s: %s\n' "$wl" "$ps" "t$threads" \
        "$(sql "$C1" s0-primary "SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'" | cut -f2)" >>"$RAW/prepared-stmt-count.txt"
    return 0
}

# --- phases ----------------------------------------------------------------------------------------

phase_main() {
    local t ps wl
    for ps in $PS_MODES; do
        for t in $PS_THREADS; do
            say "oltp_point_select ps-mode=$ps threads=$t"
            run_cell oltp_point_select "$t" "$ps"
        done
    done
    for wl in $OLTP_WORKLOADS; do
        for t in $OLTP_THREADS; do
            say "$wl ps-mode=$OLTP_PS_MODE threads=$t"
            run_cell "$wl" "$t" "$OLTP_PS_MODE"
        done
    done
}

phase_sharding() {
    prepare_sharded
    if [ "$SHARDED_OK" != 1 ]; then
        say "skipping the 2-shard comparison (data could not be loaded through shardgate)"
        return 0
    fi
    local r s2pid
    s2pid=$(cat "$C2/s0-primary/launch.pid"),$(cat "$C2/s1-primary/launch.pid")
    say "sharding: oltp_point_select text threads=$SHARD_THREADS, shardgate over 1 shard vs 2 shards"
    for ((r = 1; r <= ROUNDS; r++)); do
        run_one "shard__oltp_point_select__disable__t${SHARD_THREADS}__sg1shard__r$r" "$SG_PORT" "$SG1_PID" "$SERVER1_PID" oltp_point_select "$SHARD_THREADS" disable
        run_one "shard__oltp_point_select__disable__t${SHARD_THREADS}__sg2shard__r$r" "$SG2_PORT" "$SG2_PID" "$s2pid" oltp_point_select "$SHARD_THREADS" disable
    done
}

phase_connscale() {
    local soft hard n
    soft=$(ulimit -n)
    hard=$(ulimit -Hn)
    echo "ulimit -n: soft $soft hard $hard (raised to $hard for this run)" >"$RAW/conns/ulimit.txt"
    cat "$RAW/conns/ulimit.txt"
    # Reference: the same kind of light stream straight to MariaDB (max_connections 1000, so 500
    # clients, interval halved to match the 1000-client level's rate). Its RSS columns are
    # mariadbd's and mean little; its latency is the floor for the proxy's.
    say "connscale reference: 500 clients direct to MariaDB, one point select each per $((CONN_INTERVAL / 2))s"
    "$CONNSCALE_BIN" "127.0.0.1:$BASE_PORT" 500 "$(awk -v i="$CONN_INTERVAL" 'BEGIN {print i / 2}')" "$CONN_SECS" "$SERVER1_PID" "$TABLES" "$TABLE_SIZE" \
        >"$RAW/conns/direct-500.txt" 2>&1 || true
    sed 's/^/    /' "$RAW/conns/direct-500.txt"
    for n in $CONNS; do
        if [ "$hard" != unlimited ] && [ "$n" -gt $((hard - 100)) ]; then
            say "connscale $n: SKIPPED, the open files hard limit is $hard"
            echo "conns=$n skipped=ulimit_hard_$hard" >"$RAW/conns/conns-$n.txt"
            continue
        fi
        # A fresh proxy per level, so the RSS baseline holds no earlier level's memory.
        stop_pid "$SG1_PID" shardgate-1shard
        start_sg 1
        # Warm the backend pool and the allocator with a short point_select run first.
        sysbench oltp_point_select "${SB_COMMON[@]}" --mysql-port="$SG_PORT" --threads=16 --time=2 run >/dev/null 2>&1 || true
        say "connscale: $n clients, one point select each per ${CONN_INTERVAL}s for ${CONN_SECS}s"
        "$CONNSCALE_BIN" "127.0.0.1:$SG_PORT" "$n" "$CONN_INTERVAL" "$CONN_SECS" "$SG1_PID" "$TABLES" "$TABLE_SIZE" \
            >"$RAW/conns/conns-$n.txt" 2>&1 || true
        sed 's/^/    /' "$RAW/conns/conns-$n.txt"
        # Let the proxy see every client close before the next level.
        sleep 2
    done
}

write_env() {
    {
        echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
        echo "commit: $(git rev-parse --short HEAD) ($(git log -1 --format=%s))"
        echo "cpu: $(nproc) x $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
        echo "kernel: $(uname -r)"
        echo "mariadb: $(mariadbd --version 2>/dev/null | awk '{print $3}' || /usr/sbin/mariadbd --version | awk '{print $3}')"
        echo "sysbench: $(sysbench --version)"
        echo "haproxy: $(haproxy -v | head -1)"
        echo "duration: ${DURATION}s measured after ${WARMUP}s warm-up, rounds: $ROUNDS, tables: $TABLES x $TABLE_SIZE rows"
        echo "shardgate pool_size: $SG_POOL_SIZE, workers: $SG_WORKERS, log level: ${SHARDGATE_LOG:-warn}"
        echo "oltp ps-mode: $OLTP_PS_MODE"
        echo "connscale: interval ${CONN_INTERVAL}s, ${CONN_SECS}s stream"
        echo "server: $(sql "$C1" s0-primary "SELECT CONCAT('buffer pool ', @@innodb_buffer_pool_size DIV 1048576, 'M, redo ', @@innodb_log_file_size DIV 1048576, 'M, flush_log_at_trx_commit ', @@innodb_flush_log_at_trx_commit, ', binlog ', @@log_bin)")"
    } >"$RAW/env.txt"
}

# --- commands --------------------------------------------------------------------------------------

cmd_run() {
    local t0=$SECONDS
    mkdir -p "$RAW"
    stop_leftovers
    trap cleanup EXIT INT TERM
    install_deps
    build
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    local with2=
    [ "$SHARDING" = 1 ] && with2=with2
    start_clusters $with2
    SERVER1_PID=$(mariadbd_pid "$C1")
    write_sg_configs
    sb_common
    prepare_data
    start_haproxy
    start_sg 1
    [ "$SHARDING" = 1 ] && start_sg 2
    RUNS=$RAW/runs
    rm -rf "$RUNS" "$RAW/conns" "$RAW/prepared-stmt-count.txt"
    mkdir -p "$RUNS" "$RAW/conns"
    write_env
    phase_main
    [ "$SHARDING" = 1 ] && phase_sharding
    [ "$SHARDING" = 1 ] && stop_pid "$SG2_PID" shardgate-2shard && bash scripts/cluster.sh stop --dir "$C2" >/dev/null && CLUSTER2_STARTED=0
    [ "$CONNSCALE" = 1 ] && phase_connscale
    [ "$CALLGRIND" = 1 ] && phase_callgrind
    echo "total: $((SECONDS - t0)) s" >>"$RAW/env.txt"
    say "writing $OUT/latest.md and $OUT/latest.png"
    python3 bench/report.py "$RAW" "$OUT"
    say "done in $((SECONDS - t0)) s"
}

cmd_profile() {
    local wl=${1:?workload} threads=${2:?threads} ps=${3:?ps mode disable|auto} secs=${4:-15}
    mkdir -p "$RAW"
    stop_leftovers
    trap cleanup EXIT INT TERM
    install_deps
    build
    local shards=${PROFILE_SHARDS:-1} pid port
    if [ "$shards" = 2 ]; then start_clusters with2; else start_clusters; fi
    SERVER1_PID=$(mariadbd_pid "$C1")
    write_sg_configs
    sb_common
    prepare_data
    start_sg 1
    pid=$SG1_PID port=$SG_PORT
    if [ "$shards" = 2 ]; then
        start_sg 2
        prepare_sharded
        [ "$SHARDED_OK" = 1 ] || die "the sharded data could not be loaded through shardgate"
        pid=$SG2_PID port=$SG2_PORT
    fi
    local tag=perf-$wl-$ps-t$threads-${shards}shard data
    data=$RAW/$tag.data
    say "profiling shardgate ($shards shard(s), pid $pid) under $wl threads=$threads ps-mode=$ps for ${secs}s"
    sysbench "$wl" "${SB_COMMON[@]}" --mysql-port="$port" --threads="$threads" --db-ps-mode="$ps" --time=3 run >/dev/null 2>&1 || true
    sysbench "$wl" "${SB_COMMON[@]}" --mysql-port="$port" --threads="$threads" --db-ps-mode="$ps" \
        --time=$((secs + 2)) run >"$RAW/$tag.sysbench.txt" 2>&1 &
    local sbpid=$!
    sleep 1
    local c0 c1
    c0=$(cpu_ticks "$pid")
    perf record -F 1999 -g -p "$pid" -o "$data" -- sleep "$secs" 2>"$RAW/$tag.record.log"
    c1=$(cpu_ticks "$pid")
    wait "$sbpid" || true
    {
        echo "# shardgate under $wl threads=$threads ps-mode=$ps: $(awk '/^ *queries:/ {print $3, $4, $5}' "$RAW/$tag.sysbench.txt")"
        echo "# shardgate CPU over the profile: $(((c1 - c0) * 1000 / CLK_TCK)) ms in ${secs}s (perf's own overhead included)"
        echo "## by shared object (self)"
        perf report -i "$data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -6
        python3 bench/perfsummary.py "$data"
    } >"$RAW/$tag.txt"
    cat "$RAW/$tag.txt"
}

# Instructions per query of one proxy under valgrind: callgrind_one NAME PORT PS_MODE EVENTS CMD...
# Collection is switched on only after a warm-up (startup, pool fill, plan cache), then exactly
# EVENTS point selects run on one thread; Ir / EVENTS is the per-query cost.
callgrind_one() {
    local name=$1 port=$2 ps=$3 events=$4
    shift 4
    local out=$RAW/callgrind-$name-$ps.out log=$RAW/callgrind-$name-$ps.log
    rm -f "$out"
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$@" </dev/null >"$log" 2>&1 &
    local pid=$!
    echo "$pid callgrind-$name" >>"$RAW/pids"
    wait_login "$port" "$pid" "$name under callgrind" "$log" 120
    sysbench oltp_point_select "${SB_COMMON[@]}" --mysql-port="$port" --threads=1 --db-ps-mode="$ps" \
        --events=2000 --time=0 run >/dev/null 2>&1 || die "warm-up through $name failed"
    callgrind_control -i on "$pid" >/dev/null
    sysbench oltp_point_select "${SB_COMMON[@]}" --mysql-port="$port" --threads=1 --db-ps-mode="$ps" \
        --events="$events" --time=0 run >"$RAW/callgrind-$name-$ps.sysbench.txt" 2>&1 || die "run through $name failed"
    callgrind_control -i off "$pid" >/dev/null
    # The counts are written when the process ends (SIGTERM: shardgate and HAProxy exit cleanly).
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    local ir
    ir=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n++ {gsub(",", "", $1); print $1}')
    [[ "$ir" =~ ^[0-9]+$ ]] || die "no callgrind totals for $name (see $log)"
    callgrind_annotate --inclusive=no "$out" 2>/dev/null | awk '/file:function/ {on = 1} on && n++ < 40' >"$RAW/callgrind-$name-$ps.txt"
    echo "| $name | $ps | $events | $ir | $((ir / events)) |" >>"$RAW/callgrind-table.md"
    say "$name $ps: $((ir / events)) instructions per point select"
}

# The suite's last phase: the proxies are stopped, then each runs once more under callgrind.
phase_callgrind() {
    command -v valgrind >/dev/null || apt-get install -y -q valgrind >/dev/null
    stop_pid "$SG1_PID" shardgate-1shard
    SG1_PID=
    stop_pid "$HAPROXY_PID" haproxy
    HAPROXY_PID=
    rm -f "$RAW/callgrind-table.md"
    local ps
    for ps in disable auto; do
        say "callgrind: shardgate and haproxy, ps-mode=$ps, $CALLGRIND_EVENTS point selects"
        SHARDGATE_LOG=warn callgrind_one shardgate "$SG_PORT" "$ps" "$CALLGRIND_EVENTS" "$SG_BIN" --config "$RAW/sg1.toml"
        callgrind_one haproxy "$HAPROXY_PORT" "$ps" "$CALLGRIND_EVENTS" haproxy -f "$RAW/haproxy.cfg" -db
    done
}

cmd_callgrind() {
    local events=${1:-20000}
    mkdir -p "$RAW"
    stop_leftovers
    trap cleanup EXIT INT TERM
    install_deps
    command -v valgrind >/dev/null || apt-get install -y -q valgrind >/dev/null
    build
    start_clusters
    SERVER1_PID=$(mariadbd_pid "$C1")
    write_sg_configs
    sb_common
    prepare_data
    rm -f "$RAW/callgrind-table.md"
    start_haproxy
    stop_pid "$HAPROXY_PID" haproxy
    local ps
    for ps in disable auto; do
        SHARDGATE_LOG=warn callgrind_one shardgate "$SG_PORT" "$ps" "$events" "$SG_BIN" --config "$RAW/sg1.toml"
        callgrind_one haproxy "$HAPROXY_PORT" "$ps" "$events" haproxy -f "$RAW/haproxy.cfg" -db
    done
    {
        echo "# Instructions per point select (callgrind)"
        echo
        echo "Generated by \`bench/run.sh callgrind\` on $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)."
        echo "User-space instructions of the proxy process only (the kernel's share, e.g. the socket"
        echo "system calls, is not counted); one sysbench thread, after a 2000-query warm-up."
        echo "\`disable\` is the text protocol, \`auto\` the binary (prepared) protocol."
        echo
        echo "| proxy | ps-mode | queries | instructions | per query |"
        echo "|---|---|---:|---:|---:|"
        cat "$RAW/callgrind-table.md"
        for f in "$RAW"/callgrind-shardgate-*.txt; do
            echo
            echo "## top functions (self): $(basename "$f" .txt)"
            echo '```'
            cat "$f"
            echo '```'
        done
    } >"$OUT/callgrind.md"
    cat "$RAW/callgrind-table.md"
}

case ${1:-run} in
run) cmd_run ;;
callgrind)
    shift
    cmd_callgrind "$@"
    ;;
profile)
    shift
    cmd_profile "$@"
    ;;
stop)
    mkdir -p "$RAW"
    stop_leftovers
    ;;
-h | --help | help) sed -n '2,36p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
*) die "unknown command '$1' (run, profile, callgrind, stop, help)" ;;
esac
