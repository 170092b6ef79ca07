-- Runs once per server at first start (the image's /docker-entrypoint-initdb.d), on primaries
-- and replicas alike: the same accounts as scripts/cluster.sh bootstraps into its template.
-- Nothing here may reach the binlog: a replica would replay it and hit "user exists", and under
-- gtid_strict_mode a replica's own GTIDs would conflict with its primary's.
SET SESSION sql_log_bin = 0;

CREATE DATABASE IF NOT EXISTS app CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;

CREATE USER IF NOT EXISTS 'app'@'127.0.0.1' IDENTIFIED BY 'app';
CREATE USER IF NOT EXISTS 'app'@'localhost' IDENTIFIED BY 'app';
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'app';
GRANT ALL PRIVILEGES ON *.* TO 'app'@'127.0.0.1', 'app'@'localhost', 'app'@'%';
-- No READ_ONLY ADMIN for the application: read_only then stops its writes on
-- replicas and on a replaced (fenced) primary.
REVOKE READ_ONLY ADMIN ON *.* FROM 'app'@'127.0.0.1', 'app'@'localhost', 'app'@'%';
-- shardgate's health checker and failover (backend.admin_user).
CREATE USER IF NOT EXISTS 'shardgate'@'127.0.0.1' IDENTIFIED BY 'shardgate';
CREATE USER IF NOT EXISTS 'shardgate'@'localhost' IDENTIFIED BY 'shardgate';
CREATE USER IF NOT EXISTS 'shardgate'@'%' IDENTIFIED BY 'shardgate';
GRANT ALL PRIVILEGES ON *.* TO 'shardgate'@'127.0.0.1', 'shardgate'@'localhost', 'shardgate'@'%';

CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY 'repl';
CREATE USER IF NOT EXISTS 'repl'@'localhost' IDENTIFIED BY 'repl';
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'127.0.0.1', 'repl'@'localhost', 'repl'@'%';
