#!/usr/bin/env bash
# Quick start on one machine (Debian 12): a 2-shard MariaDB cluster and shardgate in front of it.
#
#   scripts/quickstart.sh        install MariaDB if missing, build, start cluster and proxy
#   scripts/quickstart.sh stop   stop the proxy and the cluster (data is kept in .cluster/)
#
# The cluster is scripts/cluster.sh's default one (.cluster/, ports 13306-13309), matching
# conf/shardgate.toml; shardgate listens on 127.0.0.1:3307 and logs to .cluster/shardgate.log.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
CLUSTER_DIR=$REPO/.cluster
LOG=$CLUSTER_DIR/shardgate.log
PIDFILE=$CLUSTER_DIR/shardgate.pid
CONFIG=conf/shardgate.toml
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/shardgate
WAIT_SECS=30

say() { echo "quickstart: $*"; }
die() {
    echo "quickstart: $*" >&2
    exit 1
}

# The pid of the shardgate we started, if it is still running.
proxy_pid() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q shardgate || return 1
    echo "$pid"
}

login() {
    mariadb --connect-timeout=2 -h127.0.0.1 -P3307 -uapp -papp app -e 'select 1' >/dev/null 2>&1
}

stop() {
    local pid
    if pid=$(proxy_pid); then
        kill -TERM "$pid"
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "shardgate (pid $pid) did not stop in 10s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped shardgate (pid $pid)"
    else
        say "shardgate is not running"
    fi
    rm -f "$PIDFILE"
    bash "$REPO/scripts/cluster.sh" stop --dir "$CLUSTER_DIR"
}

start() {
    bash "$REPO/scripts/install-deps.sh" mariadb
    if ! command -v cargo >/dev/null 2>&1; then
        if [ -x "$HOME/.cargo/bin/cargo" ]; then
            PATH=$HOME/.cargo/bin:$PATH
        else
            die "cargo not found. Install Rust with rustup (see https://rustup.rs), open a new shell, and run this again."
        fi
    fi
    [ -f "$CONFIG" ] || die "$CONFIG is missing"

    say "building shardgate (cargo build --release)"
    cargo build --release --bin shardgate
    "$BIN" --config "$CONFIG" --check || die "$CONFIG does not validate"

    bash "$REPO/scripts/cluster.sh" start --dir "$CLUSTER_DIR"

    local pid
    if pid=$(proxy_pid); then
        say "shardgate is already running (pid $pid)"
    else
        mkdir -p "$CLUSTER_DIR"
        # setsid: the proxy keeps running after this script and ignores this terminal's Ctrl-C.
        setsid "$BIN" --config "$CONFIG" </dev/null >>"$LOG" 2>&1 &
        pid=$!
        echo "$pid" >"$PIDFILE"
        say "started shardgate (pid $pid), log $LOG"
    fi

    local deadline=$((SECONDS + WAIT_SECS))
    until login; do
        if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            if kill -0 "$pid" 2>/dev/null; then
                echo "quickstart: shardgate did not accept a login on 127.0.0.1:3307 within ${WAIT_SECS}s" >&2
            else
                echo "quickstart: shardgate exited" >&2
                rm -f "$PIDFILE"
            fi
            echo "--- last lines of $LOG:" >&2
            tail -n 30 "$LOG" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    say "shardgate is up. Connect with:"
    echo "mariadb -h127.0.0.1 -P3307 -uapp -papp app"
}

case ${1:-start} in
start) start ;;
stop) stop ;;
-h | --help | help) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
*) die "unknown command '$1' (start, stop)" ;;
esac
