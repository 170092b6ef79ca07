#!/bin/bash
# Runs once per replica at first start (the image's /docker-entrypoint-initdb.d, after
# users.sql): points it at $SHARDGATE_PRIMARY with GTID replication. The image sources or runs
# this while its temporary init server is up; replication starts by itself when the real server
# starts, and retries every second until the primary accepts the repl login.
# No `set -u`/`set -e`: when sourced, they would change the entrypoint's own shell.
: "${SHARDGATE_PRIMARY:?set SHARDGATE_PRIMARY to the primary service name}"
mariadb --protocol=socket -uroot -p"${MARIADB_ROOT_PASSWORD}" <<SQL
CHANGE MASTER TO
  MASTER_HOST = '${SHARDGATE_PRIMARY}',
  MASTER_PORT = 3306,
  MASTER_USER = 'repl',
  MASTER_PASSWORD = 'repl',
  MASTER_USE_GTID = slave_pos,
  MASTER_CONNECT_RETRY = 1;
SQL
