//! The test cluster itself: servers up, GTID replication flowing, replicas read-only.

mod support;

use shardgate::config::schema::ServerEntry;
use support::Cluster;

fn one(rows: Vec<Vec<Option<String>>>) -> String {
    rows.into_iter().next().and_then(|row| row.into_iter().next().flatten()).expect("one non-NULL value")
}

#[test]
fn writes_on_each_primary_reach_its_replica() {
    let cluster = Cluster::shared();
    assert_eq!(cluster.shards().len(), 2);
    for shard in cluster.shards() {
        assert_eq!(shard.replicas.len(), 1, "{}", shard.name);
        cluster.exec(shard.primary, "CREATE TABLE smoke_replication (id INT PRIMARY KEY, shard VARCHAR(8));");
        let insert = format!("INSERT INTO smoke_replication VALUES (1, '{}')", shard.name);
        cluster.exec(shard.primary, &insert);
        cluster.wait_replicated(shard);
        let rows = cluster.sql(shard.replicas[0], "SELECT id, shard FROM smoke_replication");
        assert_eq!(rows, vec![vec![Some("1".to_string()), Some(shard.name.clone())]]);
    }
}

#[test]
fn replicas_are_read_only_and_primaries_are_not() {
    let cluster = Cluster::shared();
    for shard in cluster.shards() {
        assert_eq!(one(cluster.sql(shard.primary, "SELECT @@read_only")), "0");
        for &replica in &shard.replicas {
            assert_eq!(one(cluster.sql(replica, "SELECT @@read_only")), "1");
            let status = support::cluster::replica_status(replica).expect("a replica");
            assert_eq!(status["Slave_IO_Running"], "Yes", "{status:?}");
            assert_eq!(status["Slave_SQL_Running"], "Yes", "{status:?}");
            assert_eq!(status["Master_Port"], shard.primary.port().to_string());
            assert_eq!(status["Using_Gtid"], "Slave_Pos");
        }
    }
}

#[test]
fn every_server_runs_gtid_row_binlogs_with_unique_ids() {
    let cluster = Cluster::shared();
    let mut ids = Vec::new();
    for addr in cluster.servers() {
        let row = cluster
            .sql(
                addr,
                "SELECT @@log_bin, @@log_slave_updates, @@binlog_format, @@gtid_strict_mode, \
                 @@server_id, @@character_set_server",
            )
            .remove(0);
        let row: Vec<String> = row.into_iter().map(Option::unwrap).collect();
        assert_eq!(row[..4], ["1", "1", "ROW", "1"], "{addr}");
        assert_eq!(row[5], "utf8mb4", "{addr}");
        ids.push(row[4].clone());
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "server ids are not unique: {ids:?}");
}

#[test]
fn config_for_the_cluster_matches_the_schema() {
    let cluster = Cluster::shared();
    let text =
        cluster.shardgate_config("[[tables]]\nname = \"smoke_extra\"\nshard_key = \"id\"\nalgorithm = \"mod\"\n");
    let file: shardgate::config::schema::ConfigFile = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(file.proxy.listen, "127.0.0.1:0");
    assert_eq!(file.shards.len(), 2);
    assert_eq!(file.shards[1].primary, Some(ServerEntry::plain(cluster.shards()[1].primary.to_string())));
    assert_eq!(file.shards[1].replicas, [ServerEntry::plain(cluster.shards()[1].replicas[0].to_string())]);
    let tables: Vec<&str> = file.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tables, ["users", "orders", "countries", "smoke_extra"]);
}

/// Set in the environment of the child process that `servers_die_with_the_test_process` starts.
const ORPHAN_PROBE: &str = "SHARDGATE_ORPHAN_PROBE";

/// Does nothing in a normal run. As the child of `servers_die_with_the_test_process`, starts a
/// cluster, prints its pids and dir, and waits to be killed.
#[test]
fn orphan_probe_child() {
    use std::io::Write;
    if std::env::var_os(ORPHAN_PROBE).is_none() {
        return;
    }
    let cluster = support::Cluster::start(support::ClusterOptions { shards: 1, replicas: 1, semi_sync: false });
    let pids: Vec<String> = cluster.pids().iter().map(u32::to_string).collect();
    // Not println!, which the harness captures unless run with --nocapture.
    let mut out = std::io::stdout();
    writeln!(out, "PROBE {} {}", cluster.dir().display(), pids.join(" ")).unwrap();
    out.flush().unwrap();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// A test process killed with SIGKILL (no destructor, no atexit) takes its servers with it, and
/// the next cluster start removes the directory it left.
#[test]
fn servers_die_with_the_test_process() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "orphan_probe_child", "--nocapture", "--test-threads=1"])
        .env(ORPHAN_PROBE, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    // The harness's "test orphan_probe_child ... " may precede it on the same line.
    let line = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("PROBE ").map(|(_, rest)| rest.to_string()))
        .expect("the probe child exited before starting its cluster");
    let mut fields = line.split_whitespace();
    let dir = std::path::PathBuf::from(fields.next().unwrap());
    let pids: Vec<u32> = fields.map(|p| p.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2, "{line}");
    for pid in &pids {
        assert!(is_alive(*pid), "server {pid} is not running before the kill");
    }

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&pid| is_alive(pid)) {
        assert!(Instant::now() < deadline, "servers outlived their test process: {pids:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dir.exists(), "nothing ran atexit, so the dir is still there");
    let fresh = support::process::new_cluster_dir();
    assert!(!dir.exists(), "{} was not reaped", dir.display());
    support::process::remove_dir(&fresh);
}

/// True while `pid` exists and is not a zombie (a killed child waits for init to reap it).
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}
