#!/usr/bin/env bash
# Every check the project has, as CI runs it (.ci/run) and as a developer runs it before pushing:
# installs MariaDB if missing (the tests start real servers), checks docker-compose.yml, then
# cargo fmt --check, clippy with warnings denied, cargo test --all-targets, the driver
# compatibility matrix (scripts/drivers.sh: real client drivers through shardgate) and PyMySQL's own
# test suite direct vs through shardgate (scripts/pymysql-suite.sh).
# Exits non-zero on the first failure of the checks before the tests, and at the end if the tests,
# the driver matrix or the PyMySQL comparison failed. Needs nothing from outside but Debian packages and the drivers'
# registries (PyPI, npm, ...).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# Let cargo use every core; a CARGO_BUILD_JOBS left in the environment would cap it.
unset CARGO_BUILD_JOBS
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    PATH=$HOME/.cargo/bin:$PATH
fi
command -v cargo >/dev/null 2>&1 || {
    echo "test.sh: cargo not found; install Rust with rustup" >&2
    exit 1
}

step() { printf '\n== %s\n' "$*"; }

step "dependencies (Debian packages)"
bash scripts/install-deps.sh mariadb
echo "mariadb: $(mariadbd --version 2>/dev/null || /usr/sbin/mariadbd --version)"

step "docker-compose config -q"
if bash scripts/install-deps.sh docker-compose; then
    docker-compose config -q
    echo "docker-compose.yml is valid"
else
    echo "skipped: apt-get could not provide docker-compose"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --all-targets"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# --no-fail-fast: one failing test binary must not hide the others' results.
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log" || status=$?

step "driver compatibility matrix (scripts/drivers.sh)"
drivers_status=0
bash scripts/drivers.sh || drivers_status=$?

step "PyMySQL's own test suite, direct and through shardgate (scripts/pymysql-suite.sh)"
pymysql_status=0
bash scripts/pymysql-suite.sh || pymysql_status=$?

step "summary"
grep -E '^test result:' "$log" || echo "(cargo printed no test result line)"
awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i + 1) ~ /^passed/) p += $i
            if ($(i + 1) ~ /^failed/) f += $i
            if ($(i + 1) ~ /^ignored/) s += $i
        }
    }
    END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
if [ "$drivers_status" != 0 ]; then
    echo "driver matrix: failed (tests/drivers/results.md, logs in tests/drivers/logs/)"
fi
if [ "$pymysql_status" != 0 ]; then
    echo "PyMySQL suite: a test passes directly but not through shardgate (see its output above)"
fi
[ "$status" = 0 ] || exit "$status"
[ "$drivers_status" = 0 ] || exit "$drivers_status"
exit "$pymysql_status"
