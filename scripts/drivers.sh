#!/usr/bin/env bash
# Driver compatibility matrix: real client drivers through shardgate against a real 2-shard
# MariaDB cluster (one replica per shard).
#
#   scripts/drivers.sh [NAME...]     every driver in tests/drivers/ (sorted), or only those named
#
# Builds shardgate (release), starts the cluster (scripts/cluster.sh) and the proxy on free ports,
# then for each driver runs tests/drivers/NAME/install and tests/drivers/NAME/run with a timeout
# (the contract they follow is in tests/drivers/README.md). Writes tests/drivers/results.md (a
# table of driver, version, result and the failing steps) and prints it. Every driver's output
# goes to tests/drivers/logs/NAME.{install,run}.log, the proxy's to tests/drivers/logs/shardgate.log.
# Exits non-zero if a driver failed or could not be installed. Everything started is stopped at
# exit.
#
# Environment: SG_DRIVERS_CACHE (default ~/.cache/shardgate-drivers) holds what the drivers
# install; SG_INSTALL_TIMEOUT (default 1800 s) and SG_RUN_TIMEOUT (default 300 s) bound each
# driver's scripts; CARGO_TARGET_DIR is honoured.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
DRIVERS_DIR=$REPO/tests/drivers
LOGS=$DRIVERS_DIR/logs
RESULTS=$DRIVERS_DIR/results.md
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/shardgate
INSTALL_TIMEOUT=${SG_INSTALL_TIMEOUT:-1800}
RUN_TIMEOUT=${SG_RUN_TIMEOUT:-300}
export SG_DRIVERS_CACHE=${SG_DRIVERS_CACHE:-$HOME/.cache/shardgate-drivers}

say() { echo "drivers.sh: $*"; }
die() {
    echo "drivers.sh: $*" >&2
    exit 1
}
now_s() { date +%s; }

# --- which drivers ------------------------------------------------------------------------------

# A driver is a directory with both an `install` and a `run` script; directories with neither
# (tests/drivers/lib, logs) are helpers.
ALL=()
for d in "$DRIVERS_DIR"/*/; do
    name=$(basename "$d")
    if [ -f "$d/install" ] && [ -f "$d/run" ]; then
        [[ $name =~ ^[a-z0-9_]+$ ]] || die "driver directory '$name' must be named [a-z0-9_]+"
        ALL+=("$name")
    elif [ -f "$d/install" ] || [ -f "$d/run" ]; then
        die "tests/drivers/$name has only one of 'install' and 'run'"
    fi
done
# The glob is sorted already; LC_ALL=C makes it the same everywhere.
mapfile -t ALL < <(printf '%s\n' "${ALL[@]}" | LC_ALL=C sort)
if [ $# -gt 0 ]; then
    DRIVERS=()
    for want in "$@"; do
        [[ " ${ALL[*]} " == *" $want "* ]] || die "no driver '$want' (have: ${ALL[*]})"
        DRIVERS+=("$want")
    done
else
    DRIVERS=("${ALL[@]}")
fi
[ "${#DRIVERS[@]}" -gt 0 ] || die "no drivers in tests/drivers/"

# --- free ports ---------------------------------------------------------------------------------

# Ports some socket is bound to (any state), from /proc: no tool needed on a bare Debian.
used_ports() {
    local _sl local_addr _rest
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | while read -r _sl local_addr _rest; do
        [[ $local_addr == *:* ]] && [[ ${local_addr##*:} =~ ^[0-9A-F]{4}$ ]] && echo $((16#${local_addr##*:}))
    done | sort -un
}

# Prints the first port of N consecutive free ones in 20000-39999, starting at a random place.
free_ports() {
    local n=$1 used p i ok
    used=" $(used_ports | tr '\n' ' ') "
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 20000))
        ok=1
        for ((i = 0; i < n; i++)); do
            [[ $used == *" $((p + i)) "* ]] && ok=0 && break
        done
        [ "$ok" = 1 ] && echo "$p" && return
    done
    die "no $n consecutive free ports found"
}

# --- cluster and proxy --------------------------------------------------------------------------

TMP=
PROXY_PID=
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_proxy
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        bash "$REPO/scripts/cluster.sh" stop --dir "$TMP/cluster" --wipe >/dev/null 2>&1 || true
        rm -rf "$TMP"
    fi
    exit "$status"
}

# shellcheck disable=SC2317 # called from cleanup
stop_proxy() {
    [ -n "$PROXY_PID" ] || return 0
    if kill -0 "$PROXY_PID" 2>/dev/null; then
        kill -TERM "$PROXY_PID" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$PROXY_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$PROXY_PID" 2>/dev/null || true
    fi
    wait "$PROXY_PID" 2>/dev/null || true
    PROXY_PID=
}

write_config() {
    local base=$1 proxy_port=$2 name
    cat <<EOF
# Written by scripts/drivers.sh for one run of the driver matrix.
[proxy]
listen = "127.0.0.1:$proxy_port"
default_shard = "s0"
workers = 2

[[users]]
name = "app"
password = "app"

[backend]
user = "app"
password = "app"
database = "app"
pool_size = 16
admin_user = "shardgate"
admin_password = "shardgate"
replication_user = "repl"
replication_password = "repl"

[[shards]]
name = "s0"
primary = "127.0.0.1:$base"
replicas = ["127.0.0.1:$((base + 1))"]

[[shards]]
name = "s1"
primary = "127.0.0.1:$((base + 2))"
replicas = ["127.0.0.1:$((base + 3))"]
EOF
    for name in "${ALL[@]}"; do
        printf '\n[[tables]]\nname = "drv_%s"\nshard_key = "id"\nalgorithm = "hash"\n' "$name"
    done
}

proxy_login() {
    mariadb --no-defaults --connect-timeout=2 -h127.0.0.1 -P"$PROXY_PORT" -uapp -papp app \
        -N -B -e 'SELECT 1' >/dev/null 2>&1
}

start_proxy() {
    "$BIN" --config "$TMP/shardgate.toml" </dev/null >>"$LOGS/shardgate.log" 2>&1 &
    PROXY_PID=$!
    local deadline=$(($(now_s) + 30))
    until proxy_login; do
        if ! kill -0 "$PROXY_PID" 2>/dev/null || [ "$(now_s)" -ge "$deadline" ]; then
            echo "drivers.sh: shardgate did not accept a login on port $PROXY_PORT; end of its log:" >&2
            tail -n 30 "$LOGS/shardgate.log" >&2
            return 1
        fi
        sleep 0.2
    done
}

# --- one driver ---------------------------------------------------------------------------------

# Results, one entry per driver.
declare -A VERSION RESULT DETAIL TIMES

# Keeps the last `n` lines of a file, each prefixed for the results' detail block.
tail_of() {
    tail -n "$2" "$1" | sed 's/^/    /'
}

run_driver() {
    local name=$1 dir=$DRIVERS_DIR/$1 t0 t1 t2 status=0
    local ilog=$LOGS/$name.install.log rlog=$LOGS/$name.run.log
    say "$name: install"
    t0=$(now_s)
    timeout --kill-after=10 "$INSTALL_TIMEOUT" bash "$dir/install" >"$ilog" 2>&1 </dev/null || status=$?
    t1=$(now_s)
    if [ "$status" != 0 ]; then
        VERSION[$name]="-"
        if [ "$status" = 124 ]; then
            RESULT[$name]="install timed out"
        else
            RESULT[$name]="install failed"
        fi
        DETAIL[$name]="install exited $status after $((t1 - t0)) s; end of logs/$name.install.log:
$(tail_of "$ilog" 15)"
        TIMES[$name]="install $((t1 - t0)) s"
        return
    fi
    say "$name: run"
    if ! kill -0 "$PROXY_PID" 2>/dev/null; then
        say "shardgate is not running (it exited during the previous driver); starting it again"
        start_proxy || die "cannot restart shardgate"
    fi
    SG_HOST=127.0.0.1 SG_PORT=$PROXY_PORT SG_USER=app SG_PASS=app SG_DB=app \
        SG_TABLE=drv_$name SG_AI_TABLE=drv_${name}_ai \
        timeout --kill-after=10 "$RUN_TIMEOUT" bash "$dir/run" >"$rlog" 2>&1 </dev/null || status=$?
    t2=$(now_s)
    TIMES[$name]="install $((t1 - t0)) s, run $((t2 - t1)) s"
    local line
    line=$(grep -E '^DRIVER ' "$rlog" | tail -n 1 || true)
    VERSION[$name]=$(awk '{ v = ""; for (i = 3; i < NF; i++) v = v (v ? " " : "") $i; print v }' <<<"$line")
    [ -n "${VERSION[$name]}" ] || VERSION[$name]="?"
    local failed
    failed=$(grep -E '^STEP [0-9]+ [^ ]+ fail' "$rlog" || true)
    if [ "$status" = 0 ] && [ "${line##* }" = ok ] && [ -z "$failed" ]; then
        RESULT[$name]=ok
        DETAIL[$name]=
        return
    fi
    RESULT[$name]=fail
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
        RESULT[$name]="timed out"
        failed="run timed out after ${RUN_TIMEOUT} s${failed:+
$failed}"
    elif [ -z "$failed" ]; then
        failed="run exited $status without a failing STEP line; end of logs/$name.run.log:
$(tail_of "$rlog" 15)"
    fi
    if ! kill -0 "$PROXY_PID" 2>/dev/null; then
        failed="$failed
shardgate exited during this driver; see logs/shardgate.log"
    fi
    DETAIL[$name]=$failed
}

write_results() {
    local name failures=0
    {
        echo "# Driver compatibility matrix"
        echo
        echo "Written by \`scripts/drivers.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'): shardgate $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')," \
            "MariaDB $("$(command -v mariadbd || echo /usr/sbin/mariadbd)" --version | awk '{print $3}'), 2 shards with one replica each."
        echo
        echo "| driver | version | result |"
        echo "|---|---|---|"
        for name in "${DRIVERS[@]}"; do
            echo "| $name | ${VERSION[$name]} | ${RESULT[$name]} |"
            [ "${RESULT[$name]}" = ok ] || failures=$((failures + 1))
        done
        if [ "$failures" -gt 0 ]; then
            echo
            echo "## Failures"
            for name in "${DRIVERS[@]}"; do
                [ "${RESULT[$name]}" != ok ] || continue
                echo
                echo "### $name"
                echo
                echo '```'
                echo "${DETAIL[$name]}"
                echo '```'
            done
        fi
        echo
        echo "## Time"
        echo
        for name in "${DRIVERS[@]}"; do
            echo "- $name: ${TIMES[$name]}"
        done
    } >"$RESULTS"
    [ "$failures" = 0 ]
}

# --- main ---------------------------------------------------------------------------------------

T_START=$(now_s)
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$REPO/scripts/install-deps.sh" mariadb
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    PATH=$HOME/.cargo/bin:$PATH
fi
say "building shardgate (cargo build --release)"
cargo build --release --quiet --bin shardgate

mkdir -p "$LOGS"
rm -f "$LOGS"/*.log
TMP=$(mktemp -d /tmp/sg-drivers.XXXXXX)
BASE_PORT=$(free_ports 5)
PROXY_PORT=$((BASE_PORT + 4))
say "cluster on ports $BASE_PORT-$((BASE_PORT + 3)), shardgate on $PROXY_PORT"
bash "$REPO/scripts/cluster.sh" start --dir "$TMP/cluster" --base-port "$BASE_PORT" >"$LOGS/cluster.log" 2>&1 ||
    { cat "$LOGS/cluster.log" >&2; die "the cluster did not start"; }
write_config "$BASE_PORT" "$PROXY_PORT" >"$TMP/shardgate.toml"
cp "$TMP/shardgate.toml" "$LOGS/shardgate.toml"
"$BIN" --config "$TMP/shardgate.toml" --check >/dev/null
start_proxy || die "shardgate did not start"
say "shardgate is up ($(($(now_s) - T_START)) s); drivers: ${DRIVERS[*]}"

for name in "${DRIVERS[@]}"; do
    run_driver "$name"
    say "$name: ${RESULT[$name]} (${TIMES[$name]})"
done

status=0
write_results || status=1
echo
cat "$RESULTS"
echo
say "$(grep -c '| ok |' "$RESULTS" || true) of ${#DRIVERS[@]} drivers ok in $(($(now_s) - T_START)) s"
exit "$status"
