#!/usr/bin/env bash
# Local MariaDB test cluster for shardgate: N shards, each one primary and R GTID replicas.
#
# This is the one implementation of "start a cluster": quickstart.sh, the benchmarks and the
# Rust test support (tests/support/cluster.rs) all go through it.
#
#   scripts/cluster.sh start  [--dir DIR] [--base-port P] [--shards N] [--replicas R] [--semi-sync]
#   scripts/cluster.sh stop   [--dir DIR] [--wipe]
#   scripts/cluster.sh status [--dir DIR]
#
# Lower-level steps, for callers that launch the servers themselves (the Rust tests do, so that
# every mariadbd dies with the test process):
#   scripts/cluster.sh prepare   [options as for start]  template, instance dirs, my.cnf, run scripts
#   scripts/cluster.sh configure [--dir DIR]             wait for every server, set up replication
# `start` is prepare + launch every server not running + configure.
#
# Layout: DIR/cluster.env (the options), DIR/servers.tsv (one line per server:
# name shard role port server_id primary_name), DIR/tls/ (a test CA, ca.pem, and the servers'
# certificate for 127.0.0.1), and per server DIR/NAME/ with data/, my.cnf,
# run (exec's mariadbd in the foreground), launch.pid, mariadbd.sock and error.log.
# Ports are consecutive from the base port: s0 primary P, its replicas P+1.., s1 primary next...
# Defaults: DIR=<repo>/.cluster, P=13306, 2 shards, 1 replica each, semi-sync off.
#
# Speed: one template datadir is made once with mariadb-install-db (users and the `app` database
# bootstrapped into it, so no server has binlog events to begin with) and cached under
# ${SHARDGATE_TEMPLATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shardgate}; each server gets a copy.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

DIR=$REPO/.cluster
BASE_PORT=13306
SHARDS=2
REPLICAS=1
SEMI_SYNC=0
# What this script sets up in a new data directory (accounts app/shardgate/repl, TLS); bumped when
# that changes, so a directory made by an older version is refused with the wipe command instead
# of starting servers that lack what shardgate now expects.
SETUP_VERSION=2
WIPE=0
# Seconds to wait for a server to accept connections and for replication threads to run.
WAIT_SECS=${SHARDGATE_CLUSTER_WAIT_SECS:-60}

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

# --- options ------------------------------------------------------------------------------------

CMD=${1:-}
[ -n "$CMD" ] || usage 2
shift
case $CMD in -h | --help | help) usage 0 ;; esac

LAYOUT_GIVEN=0
while [ $# -gt 0 ]; do
    case $1 in
    --dir) DIR=${2:?--dir needs a value}; shift ;;
    --base-port) BASE_PORT=${2:?--base-port needs a value}; LAYOUT_GIVEN=1; shift ;;
    --shards) SHARDS=${2:?--shards needs a value}; LAYOUT_GIVEN=1; shift ;;
    --replicas) REPLICAS=${2:?--replicas needs a value}; LAYOUT_GIVEN=1; shift ;;
    --semi-sync) SEMI_SYNC=1; LAYOUT_GIVEN=1 ;;
    --wipe) WIPE=1 ;;
    -h | --help) usage 0 ;;
    *) die "unknown option '$1' (try --help)" ;;
    esac
    shift
done
for v in BASE_PORT SHARDS REPLICAS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, not '${!v}'"
done
[ "$SHARDS" -ge 1 ] || die "--shards must be at least 1"
[ "$((BASE_PORT + SHARDS * (REPLICAS + 1)))" -le 65536 ] || die "ports past 65535"
case $CMD in start | prepare) mkdir -p "$DIR" ;; esac
# An absolute path: it ends up in my.cnf and run scripts.
if [ -d "$DIR" ]; then DIR=$(cd "$DIR" && pwd); else DIR=$(realpath -m "$DIR"); fi

# --- binaries -----------------------------------------------------------------------------------

find_bin() {
    local b
    for b in "$@"; do
        if command -v "$b" >/dev/null 2>&1; then
            command -v "$b"
            return
        fi
        if [ -x "/usr/sbin/$b" ]; then
            echo "/usr/sbin/$b"
            return
        fi
    done
    die "$1 not found: install MariaDB (apt-get install mariadb-server mariadb-client, or run scripts/test.sh)"
}

load_bins() {
    MARIADBD=$(find_bin mariadbd mysqld)
    CLIENT=$(find_bin mariadb mysql)
    ADMIN=$(find_bin mariadb-admin mysqladmin)
    INSTALL_DB=$(find_bin mariadb-install-db mysql_install_db)
}

# mariadbd refuses to run as root unless told to.
user_opt() {
    if [ "$(id -u)" = 0 ]; then echo "--user=root"; fi
}

# --- layout -------------------------------------------------------------------------------------

# Writes DIR/cluster.env and DIR/servers.tsv, refusing to change the layout of an existing cluster.
write_layout() {
    local env
    env=$(printf 'BASE_PORT=%s\nSHARDS=%s\nREPLICAS=%s\nSEMI_SYNC=%s\nSETUP_VERSION=%s\n' \
        "$BASE_PORT" "$SHARDS" "$REPLICAS" "$SEMI_SYNC" "$SETUP_VERSION")
    if [ -f "$DIR/cluster.env" ]; then
        if [ "$(cat "$DIR/cluster.env")" != "$env" ]; then
            die "$DIR holds a cluster with another layout, or one made by an older version of this script ($(tr '\n' ' ' <"$DIR/cluster.env")); run 'scripts/cluster.sh stop --dir $DIR --wipe' first"
        fi
    else
        echo "$env" >"$DIR/cluster.env"
    fi
    local s r port=$BASE_PORT id=1 primary
    : >"$DIR/servers.tsv.new"
    for ((s = 0; s < SHARDS; s++)); do
        primary=s$s-primary
        printf '%s\ts%s\tprimary\t%s\t%s\t-\n' "$primary" "$s" "$port" "$id" >>"$DIR/servers.tsv.new"
        port=$((port + 1)) id=$((id + 1))
        for ((r = 1; r <= REPLICAS; r++)); do
            local name=s$s-replica
            [ "$r" = 1 ] || name=s$s-replica$r
            printf '%s\ts%s\treplica\t%s\t%s\t%s\n' "$name" "$s" "$port" "$id" "$primary" >>"$DIR/servers.tsv.new"
            port=$((port + 1)) id=$((id + 1))
        done
    done
    mv "$DIR/servers.tsv.new" "$DIR/servers.tsv"
}

# Loads the layout an earlier prepare wrote (stop/status/configure take only --dir).
read_layout() {
    [ -f "$DIR/cluster.env" ] && [ -f "$DIR/servers.tsv" ] || return 1
    if [ "$LAYOUT_GIVEN" = 1 ]; then
        # Options given again must match; write_layout says so if they do not.
        write_layout
    fi
    # shellcheck disable=SC1091
    . "$DIR/cluster.env"
    NAMES=() ROLE=() PORT=() SERVER_ID=() PRIMARY_OF=()
    local name role port id primary
    while IFS=$'\t' read -r name _ role port id primary; do
        NAMES+=("$name")
        ROLE[${#NAMES[@]} - 1]=$role
        PORT[${#NAMES[@]} - 1]=$port
        SERVER_ID[${#NAMES[@]} - 1]=$id
        PRIMARY_OF[${#NAMES[@]} - 1]=$primary
    done <"$DIR/servers.tsv"
}

index_of() {
    local i
    for i in "${!NAMES[@]}"; do
        [ "${NAMES[$i]}" = "$1" ] && echo "$i" && return
    done
    die "no server named $1"
}

# --- template -----------------------------------------------------------------------------------

# Runs once per template, inside mariadb-install-db's bootstrap (so nothing reaches a binlog).
bootstrap_sql() {
    cat <<'SQL'
FLUSH PRIVILEGES;
DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1');
DELETE FROM mysql.proxies_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '::1');
FLUSH PRIVILEGES;
CREATE DATABASE app CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'app';
CREATE USER 'app'@'localhost' IDENTIFIED BY 'app';
CREATE USER 'app'@'%' IDENTIFIED BY 'app';
GRANT ALL PRIVILEGES ON *.* TO 'app'@'127.0.0.1', 'app'@'localhost', 'app'@'%';
REVOKE READ_ONLY ADMIN ON *.* FROM 'app'@'127.0.0.1', 'app'@'localhost', 'app'@'%';
CREATE USER 'shardgate'@'127.0.0.1' IDENTIFIED BY 'shardgate';
CREATE USER 'shardgate'@'localhost' IDENTIFIED BY 'shardgate';
CREATE USER 'shardgate'@'%' IDENTIFIED BY 'shardgate';
GRANT ALL PRIVILEGES ON *.* TO 'shardgate'@'127.0.0.1', 'shardgate'@'localhost', 'shardgate'@'%';
CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl';
CREATE USER 'repl'@'localhost' IDENTIFIED BY 'repl';
CREATE USER 'repl'@'%' IDENTIFIED BY 'repl';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'127.0.0.1', 'repl'@'localhost', 'repl'@'%';
SQL
}

# Options the template is made with; instances must use the same redo log size.
TEMPLATE_OPTS=(--innodb-log-file-size=16M --innodb-buffer-pool-size=32M
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci)

# Prints the template datadir, making it first if needed (under a lock: tests may race).
ensure_template() {
    local version hash root tpl build
    version=$("$MARIADBD" --version | awk '{print $3}')
    hash=$({ bootstrap_sql; echo "${TEMPLATE_OPTS[*]}"; } | sha256sum | cut -c1-12)
    root=${SHARDGATE_TEMPLATE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/shardgate}
    tpl=$root/mariadb-template-$version-$hash
    if [ ! -d "$tpl/data" ]; then
        mkdir -p "$root"
        exec 9>"$root/.lock"
        flock 9
        if [ ! -d "$tpl/data" ]; then
            echo "cluster.sh: making the MariaDB template datadir $tpl (once)" >&2
            build=$root/.build.$$
            rm -rf "$build"
            mkdir -p "$build"
            bootstrap_sql >"$build/bootstrap.sql"
            # shellcheck disable=SC2046
            if ! "$INSTALL_DB" --no-defaults $(user_opt) --datadir="$build/data" \
                --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
                --extra-file="$build/bootstrap.sql" "${TEMPLATE_OPTS[@]}" >"$build/install.log" 2>&1; then
                cat "$build/install.log" >&2
                rm -rf "$build"
                die "mariadb-install-db failed"
            fi
            rm -f "$build/data/ib_buffer_pool"
            mv "$build" "$tpl"
        fi
        exec 9>&-
    fi
    echo "$tpl/data"
}

# --- instances ----------------------------------------------------------------------------------

write_instance_files() {
    local i=$1 name=${NAMES[$1]} d=$DIR/${NAMES[$1]}
    [ "${#d}" -lt 90 ] || die "instance dir $d is too long for a unix socket path; use a shorter --dir"
    {
        echo "# Generated by scripts/cluster.sh; rewritten on every start."
        echo "[mariadbd]"
        echo "datadir=$d/data"
        echo "port=${PORT[$i]}"
        echo "bind-address=127.0.0.1"
        echo "socket=$d/mariadbd.sock"
        echo "pid-file=$d/mariadbd.pid"
        echo "log-error=$d/error.log"
        echo "server-id=${SERVER_ID[$i]}"
        echo "report-host=127.0.0.1"
        echo "report-port=${PORT[$i]}"
        echo "# Every server logs binlog events (replicas too) so any replica can be promoted."
        echo "log-bin=binlog"
        echo "relay-log=relay-bin"
        echo "log-slave-updates=1"
        echo "binlog-format=ROW"
        echo "gtid-domain-id=0"
        echo "gtid-strict-mode=1"
        if [ "${ROLE[$i]}" = replica ]; then
            echo "read-only=1"
        fi
        if [ "$SEMI_SYNC" = 1 ]; then
            # The source side only on the primary: a replica with it on would make its own SQL
            # thread wait rpl_semi_sync_master_timeout for acks nobody sends. Failover turns it on
            # at the promoted replica (and off at an old primary that rejoins as a replica).
            echo "rpl-semi-sync-slave-enabled=1"
            if [ "${ROLE[$i]}" = primary ]; then
                echo "rpl-semi-sync-master-enabled=1"
            fi
            # Lossless: wait for the ack before the engine commit, so a crashed primary that
            # restarts (with the replica side on) truncates what no replica acknowledged.
            echo "rpl-semi-sync-master-wait-point=AFTER_SYNC"
        fi
        if [ -f "$DIR/tls/server.pem" ]; then
            echo "ssl-ca=$DIR/tls/ca.pem"
            echo "ssl-cert=$DIR/tls/server.pem"
            echo "ssl-key=$DIR/tls/server-key.pem"
        fi
        echo "character-set-server=utf8mb4"
        echo "collation-server=utf8mb4_general_ci"
        echo "skip-name-resolve"
        echo "max-connections=1000"
        echo "max-allowed-packet=64M"
        echo "# Small and fast: a test server, but a real one (InnoDB, binlog, replication)."
        echo "performance-schema=OFF"
        echo "innodb-buffer-pool-size=32M"
        echo "innodb-log-file-size=16M"
        echo "innodb-flush-log-at-trx-commit=2"
        echo "sync-binlog=0"
        echo "key-buffer-size=1M"
        echo "aria-pagecache-buffer-size=8M"
    } >"$d/my.cnf"
    {
        echo "#!/usr/bin/env bash"
        echo "# Generated by scripts/cluster.sh: runs ${name} in the foreground."
        echo "# launch.pid is written before exec, so it names the mariadbd process itself."
        echo "echo \$\$ > $(printf %q "$d/launch.pid.new")"
        echo "mv $(printf %q "$d/launch.pid.new") $(printf %q "$d/launch.pid")"
        echo "exec $(printf %q "$MARIADBD") --defaults-file=$(printf %q "$d/my.cnf") $(user_opt) \"\$@\""
    } >"$d/run"
    chmod +x "$d/run"
}

# True while NAME's mariadbd (or its run script, just before exec) is alive and not a zombie.
is_alive() {
    local d=$DIR/$1 pid stat
    pid=$(cat "$d/launch.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ] || return 1
    # Guards against a reused pid: the command line names this instance's files.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$d/" || return 1
}

pid_of() {
    cat "$DIR/$1/launch.pid"
}

# Runs SQL as root over NAME's socket: tab-separated, no column names.
sql() {
    local name=$1
    shift
    "$CLIENT" --no-defaults --connect-timeout=2 -S "$DIR/$name/mariadbd.sock" -uroot -N -B -e "$*"
}

is_up() {
    sql "$1" "SELECT 1" >/dev/null 2>&1
}

# One field of SHOW SLAVE STATUS on NAME.
slave_field() {
    "$CLIENT" --no-defaults --connect-timeout=2 -S "$DIR/$1/mariadbd.sock" -uroot -E \
        -e "SHOW SLAVE STATUS" 2>/dev/null | awk -v f="$2" '$1 == f":" { sub(/^[^:]*: ?/, ""); print; exit }'
}

now_ms() {
    local t=${EPOCHREALTIME/./}
    echo "${t:0:-3}"
}

launch() {
    local name=$1 d=$DIR/$1
    rm -f "$d/launch.pid"
    # setsid: the server must outlive this script and ignore the terminal's Ctrl-C.
    setsid "$d/run" </dev/null >>"$d/stdout.log" 2>&1 &
}

# Waits until NAME accepts connections. Fails at once if its process died, and if nothing was
# launched for it (no launch.pid) within 10s.
wait_up() {
    local name=$1 d=$DIR/$1 t0 deadline
    t0=$(now_ms)
    deadline=$((t0 + WAIT_SECS * 1000))
    until is_up "$name"; do
        if [ -f "$d/launch.pid" ] && ! is_alive "$name"; then
            is_up "$name" && return 0
            echo "cluster.sh: $name (port ${PORT[$(index_of "$name")]}) exited; end of $d/error.log:" >&2
            tail -n 20 "$d/error.log" >&2 2>/dev/null || true
            return 1
        fi
        if [ ! -f "$d/launch.pid" ] && [ "$(now_ms)" -gt $((t0 + 10000)) ]; then
            echo "cluster.sh: $name was not launched (no $d/launch.pid)" >&2
            return 1
        fi
        if [ "$(now_ms)" -gt "$deadline" ]; then
            echo "cluster.sh: $name did not accept connections within ${WAIT_SECS}s; end of its error.log:" >&2
            tail -n 20 "$d/error.log" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.05
    done
}

configure_replica() {
    local i=$1 name=${NAMES[$1]} primary=${PRIMARY_OF[$1]} pport
    pport=${PORT[$(index_of "$primary")]}
    if [ -z "$(slave_field "$name" Master_Host)" ]; then
        sql "$name" "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$pport,
            MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos,
            MASTER_CONNECT_RETRY=1; START SLAVE"
    elif [ "$(slave_field "$name" Slave_IO_Running)" != Yes ] ||
        [ "$(slave_field "$name" Slave_SQL_Running)" != Yes ]; then
        sql "$name" "START SLAVE" 2>/dev/null || true
    fi
}

wait_replica() {
    local name=$1 deadline=$(($(now_ms) + WAIT_SECS * 1000)) io sql_t
    while :; do
        io=$(slave_field "$name" Slave_IO_Running)
        sql_t=$(slave_field "$name" Slave_SQL_Running)
        [ "$io" = Yes ] && [ "$sql_t" = Yes ] && return 0
        if [ "$(now_ms)" -gt "$deadline" ]; then
            echo "cluster.sh: replication on $name not running within ${WAIT_SECS}s (io=$io sql=$sql_t)" >&2
            echo "  Last_IO_Error: $(slave_field "$name" Last_IO_Error)" >&2
            echo "  Last_SQL_Error: $(slave_field "$name" Last_SQL_Error)" >&2
            return 1
        fi
        sleep 0.05
    done
}

# With --semi-sync, the primary must see all its replicas as semi-sync clients before writes.
wait_semi_sync() {
    local name=$1 deadline=$(($(now_ms) + WAIT_SECS * 1000)) n
    while :; do
        n=$(sql "$name" "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
            WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS'")
        [ "${n:-0}" -ge "$REPLICAS" ] && return 0
        if [ "$(now_ms)" -gt "$deadline" ]; then
            echo "cluster.sh: $name has $n semi-sync replicas, expected $REPLICAS" >&2
            return 1
        fi
        sleep 0.05
    done
}

summary_line() {
    local i=$1 name=${NAMES[$1]} state extra=""
    if is_alive "$name" && is_up "$name"; then
        state="up   pid=$(pid_of "$name")"
        if [ "${ROLE[$i]}" = replica ]; then
            extra="io=$(slave_field "$name" Slave_IO_Running) sql=$(slave_field "$name" Slave_SQL_Running) gtid_slave_pos=$(sql "$name" "SELECT @@gtid_slave_pos")"
        else
            extra="gtid_binlog_pos=$(sql "$name" "SELECT @@gtid_binlog_pos")"
        fi
        [ "$SEMI_SYNC" = 1 ] && extra="$extra semi_sync=on"
    else
        state="down"
    fi
    local role=${ROLE[$i]}
    [ "$role" = replica ] && role="replica of ${PRIMARY_OF[$i]}"
    printf '%-14s 127.0.0.1:%-5s %-24s server_id=%-3s %s %s\n' \
        "$name" "${PORT[$i]}" "$role" "${SERVER_ID[$i]}" "$state" "$extra"
}

# --- commands -----------------------------------------------------------------------------------

# A CA and a server certificate for 127.0.0.1 in DIR/tls, made once per cluster dir, so every
# server offers TLS (clients that do not ask for it are unaffected); tests point shardgate's
# backend TLS at DIR/tls/ca.pem. Skipped, with a note, when openssl is missing.
ensure_tls() {
    local t=$DIR/tls
    [ -f "$t/server.pem" ] && return 0
    command -v openssl >/dev/null 2>&1 || {
        echo "cluster.sh: openssl not found; servers will not offer TLS" >&2
        return 0
    }
    mkdir -p "$t"
    (
        cd "$t"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
            -subj "/CN=shardgate test CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj "/CN=127.0.0.1" -keyout server-key.pem -out server.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
            -extfile san.ext -out server.pem 2>/dev/null
    ) || die "cannot make test certificates in $t"
}

cmd_prepare() {
    load_bins
    write_layout
    read_layout
    ensure_tls
    local tpl i
    tpl=$(ensure_template)
    for i in "${!NAMES[@]}"; do
        local d=$DIR/${NAMES[$i]}
        mkdir -p "$d"
        if [ ! -d "$d/data" ]; then
            cp -a --reflink=auto "$tpl" "$d/data.new"
            mv "$d/data.new" "$d/data"
        fi
        write_instance_files "$i"
    done
}

cmd_configure() {
    load_bins
    read_layout || die "no cluster in $DIR (run start or prepare first)"
    local i
    for i in "${!NAMES[@]}"; do
        wait_up "${NAMES[$i]}"
    done
    for i in "${!NAMES[@]}"; do
        [ "${ROLE[$i]}" = replica ] && configure_replica "$i"
    done
    for i in "${!NAMES[@]}"; do
        [ "${ROLE[$i]}" = replica ] && wait_replica "${NAMES[$i]}"
    done
    if [ "$SEMI_SYNC" = 1 ] && [ "$REPLICAS" -gt 0 ]; then
        for i in "${!NAMES[@]}"; do
            [ "${ROLE[$i]}" = primary ] && wait_semi_sync "${NAMES[$i]}"
        done
    fi
    for i in "${!NAMES[@]}"; do
        summary_line "$i"
    done
}

cmd_start() {
    local t0 i launched=0 running=0
    t0=$(now_ms)
    if [ -f "$DIR/cluster.env" ] && [ "$LAYOUT_GIVEN" = 0 ]; then
        # Restart an existing cluster with the layout it was made with.
        read_layout
    fi
    cmd_prepare
    for i in "${!NAMES[@]}"; do
        if is_alive "${NAMES[$i]}"; then
            running=$((running + 1))
        else
            launch "${NAMES[$i]}"
            launched=$((launched + 1))
        fi
    done
    if [ "$launched" = 0 ]; then
        echo "cluster.sh: the cluster in $DIR is already running"
    fi
    cmd_configure
    local ms=$(($(now_ms) - t0))
    printf 'cluster.sh: %d servers up in %s (%d.%03ds)\n' "${#NAMES[@]}" "$DIR" $((ms / 1000)) $((ms % 1000))
}

cmd_stop() {
    if ! read_layout; then
        echo "cluster.sh: no cluster in $DIR"
        return 0
    fi
    load_bins
    local i name pids=() names=()
    for i in "${!NAMES[@]}"; do
        name=${NAMES[$i]}
        if is_alive "$name"; then
            pids+=("$(pid_of "$name")")
            names+=("$name")
            # Clean shutdown, all servers at once; mariadb-admin waits for each to finish.
            "$ADMIN" --no-defaults --connect-timeout=2 -S "$DIR/$name/mariadbd.sock" -uroot \
                --shutdown-timeout=20 shutdown >/dev/null 2>&1 &
        fi
    done
    if [ "${#names[@]}" -gt 0 ]; then
        local deadline=$(($(now_ms) + 30000))
        for i in "${!names[@]}"; do
            while is_alive "${names[$i]}" && [ "$(now_ms)" -lt "$deadline" ]; do
                sleep 0.05
            done
            if is_alive "${names[$i]}"; then
                echo "cluster.sh: ${names[$i]} did not shut down; killing pid ${pids[$i]}" >&2
                kill -KILL "${pids[$i]}" 2>/dev/null || true
            fi
        done
        wait
        echo "cluster.sh: stopped ${names[*]}"
    else
        echo "cluster.sh: nothing running in $DIR"
    fi
    if [ "$WIPE" = 1 ]; then
        # Remove only what prepare made, never DIR's other contents.
        for name in "${NAMES[@]}"; do
            rm -rf "${DIR:?}/$name"
        done
        rm -f "$DIR/cluster.env" "$DIR/servers.tsv"
        rmdir "$DIR" 2>/dev/null || true
        echo "cluster.sh: wiped the cluster in $DIR"
    fi
}

cmd_status() {
    read_layout || die "no cluster in $DIR"
    load_bins
    local i
    for i in "${!NAMES[@]}"; do
        summary_line "$i"
    done
}

case $CMD in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
prepare) cmd_prepare ;;
configure) cmd_configure ;;
*) die "unknown command '$CMD' (try --help)" ;;
esac
