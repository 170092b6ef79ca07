# shellcheck shell=bash
# Helpers the driver install scripts source: Debian packages and the shared Python venv.
#
#   apt_ensure PKG...   installs the Debian packages not installed yet (apt-get update first,
#                       at most once an hour); quiet on success, prints apt's output on failure
#   venv_ensure         makes ${SG_DRIVERS_CACHE}/venv from Debian's python3 if it is missing
#   pip_ensure SPEC...  pip-installs into the venv each requirement not already satisfied
#
# All of them exit the calling script with a message on stderr when they cannot install.

SG_DRIVERS_CACHE=${SG_DRIVERS_CACHE:-$HOME/.cache/shardgate-drivers}
VENV=$SG_DRIVERS_CACHE/venv
# Debian's interpreter, not whatever python3 comes first in PATH: python3-dev (for mysqlclient's
# build) must match it, and a fresh Debian 12 has nothing else.
SYSTEM_PYTHON=/usr/bin/python3

_die() {
    echo "${0##*/tests/drivers/}: $*" >&2
    exit 1
}

apt_ensure() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    command -v apt-get >/dev/null 2>&1 || _die "needs Debian packages ${missing[*]} and there is no apt-get"
    local sudo=() log stamp=$SG_DRIVERS_CACHE/.apt-updated
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    mkdir -p "$SG_DRIVERS_CACHE"
    log=$(mktemp)
    # One lock for every driver's apt-get (dpkg's own lock fails instead of waiting).
    if ! (
        flock 8
        if [ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]; then
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -q && touch "$stamp"
        fi &&
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
    ) 8>"$SG_DRIVERS_CACHE/.apt.lock" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        _die "apt-get install ${missing[*]} failed"
    fi
    rm -f "$log"
}

venv_ensure() {
    [ -x "$SYSTEM_PYTHON" ] || apt_ensure python3
    # python3-venv brings ensurepip, without which `python3 -m venv` fails on Debian.
    apt_ensure python3-venv
    if ! "$VENV/bin/python" -c 'import pip' >/dev/null 2>&1; then
        rm -rf "$VENV"
        mkdir -p "$SG_DRIVERS_CACHE"
        "$SYSTEM_PYTHON" -m venv "$VENV" || _die "python3 -m venv $VENV failed"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip ||
            _die "cannot upgrade pip in $VENV"
    fi
}

pip_ensure() {
    local missing=() spec
    for spec in "$@"; do
        # pip's own resolver answers "is this requirement satisfied?" without the network.
        "$VENV/bin/python" - "$spec" >/dev/null 2>&1 <<'PY' || missing+=("$spec")
import sys
from importlib.metadata import version
from pip._vendor.packaging.requirements import Requirement
req = Requirement(sys.argv[1])
sys.exit(0 if req.specifier.contains(version(req.name), prereleases=True) else 1)
PY
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    local log
    log=$(mktemp)
    if ! (flock 8 && "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${missing[@]}") \
        8>"$SG_DRIVERS_CACHE/.pip.lock" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        _die "pip install ${missing[*]} failed"
    fi
    rm -f "$log"
}
