#!/usr/bin/env bash
# Installs what shardgate's scripts and tests need from Debian, only if it is missing.
#
#   scripts/install-deps.sh mariadb          mariadb-server + mariadb-client (the tests' servers)
#   scripts/install-deps.sh docker-compose   docker-compose (to check docker-compose.yml)
#
# Exits non-zero if a package cannot be installed. Runs `apt-get update` once, and only when
# something is missing. Services are never started: the project runs its own servers.
set -euo pipefail

have() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]
}

missing=()
for want in "$@"; do
    case $want in
    mariadb)
        if ! { have mariadbd && have mariadb-install-db && have mariadb && have mariadb-admin; }; then
            missing+=(mariadb-server mariadb-client)
        fi
        ;;
    docker-compose)
        have docker-compose || missing+=(docker-compose)
        ;;
    *)
        echo "install-deps.sh: unknown dependency '$want' (mariadb, docker-compose)" >&2
        exit 2
        ;;
    esac
done
[ "${#missing[@]}" -gt 0 ] || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps.sh: ${missing[*]} missing and there is no apt-get; install them yourself" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "install-deps.sh: ${missing[*]} missing; run as root or install sudo" >&2
        exit 1
    }
    sudo=(sudo)
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q

# Forbid service starts while installing (the policy-rc.d convention): a container has no init
# to start mariadb with, and on a workstation the packaged server would only take port 3306.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    added_policy=1
fi
status=0
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" || status=$?
if [ "$added_policy" = 1 ]; then
    "${sudo[@]}" rm -f "$policy"
fi
if [ "$status" != 0 ]; then
    # A postinst that could not start its service may leave the package half-configured;
    # what the project needs is the binaries, so check for those rather than trusting apt.
    echo "install-deps.sh: apt-get install exited $status" >&2
    for want in "$@"; do
        case $want in
        mariadb) have mariadbd && have mariadb-install-db && have mariadb || exit 1 ;;
        docker-compose) have docker-compose || exit 1 ;;
        esac
    done
    echo "install-deps.sh: the binaries are there; going on" >&2
fi
