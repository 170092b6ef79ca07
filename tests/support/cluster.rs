//! A real MariaDB cluster for tests: N shards, each a primary with GTID replicas.
//!
//! `scripts/cluster.sh` is the one implementation of a cluster (template datadir, my.cnf,
//! replication). This file calls its `prepare` step, spawns each server's run script itself
//! through [`super::process`] (so no server outlives the test process), then calls its
//! `configure` step, which waits for the servers and sets up replication.
//!
//! Most tests use [`Cluster::shared`] and isolate themselves with unique table names. Tests that
//! kill or stop servers start their own with [`Cluster::start`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::process;
use super::sql::{self, Rows};

/// How long servers get to start, replicate or stop before a test fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// What to start.
#[derive(Debug, Clone, Copy)]
pub struct ClusterOptions {
    pub shards: usize,
    /// Replicas per shard.
    pub replicas: usize,
    /// Semi-synchronous replication on every server.
    pub semi_sync: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions { shards: 2, replicas: 1, semi_sync: false }
    }
}

/// One shard as the cluster was started: names `s0`, `s1`, ...
#[derive(Debug, Clone)]
pub struct Shard {
    pub name: String,
    pub primary: SocketAddr,
    pub replicas: Vec<SocketAddr>,
}

/// One mariadbd.
#[derive(Debug)]
struct Server {
    /// `s0-primary`, `s0-replica`, ...: its directory under the cluster dir.
    name: String,
    addr: SocketAddr,
    /// Pid while running (spawned by us).
    pid: Mutex<Option<u32>>,
}

/// A running cluster in its own temp dir. Dropping it kills its servers and removes the dir.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    shards: Vec<Shard>,
    servers: Vec<Server>,
}

impl Cluster {
    /// The cluster shared by every test of this test binary, started on first use.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(|| Cluster::start(ClusterOptions::default()))
    }

    /// Starts a fresh cluster on free ports. Panics (never skips) if MariaDB is missing or a
    /// server does not come up.
    pub fn start(opts: ClusterOptions) -> Cluster {
        require_mariadb();
        let started = Instant::now();
        let count = opts.shards * (opts.replicas + 1);
        let mut last_error = String::new();
        for _attempt in 0..5 {
            let dir = process::new_cluster_dir();
            let base = free_port_range(count);
            let mut args = vec![
                "--dir".to_string(),
                dir.display().to_string(),
                "--base-port".into(),
                base.to_string(),
                "--shards".into(),
                opts.shards.to_string(),
                "--replicas".into(),
                opts.replicas.to_string(),
            ];
            if opts.semi_sync {
                args.push("--semi-sync".into());
            }
            cluster_sh("prepare", &args).unwrap_or_else(|e| panic!("{e}"));
            // From here on, dropping `cluster` (also when panicking) kills its servers and
            // removes its dir.
            let cluster = Cluster::from_layout(&dir);
            for server in &cluster.servers {
                cluster.launch(server);
            }
            match cluster_sh("configure", &["--dir".into(), dir.display().to_string()]) {
                Ok(summary) => {
                    eprintln!("test cluster up in {:.2?} in {}:\n{summary}", started.elapsed(), dir.display());
                    return cluster;
                }
                // A port taken since we probed it: start over on other ports.
                Err(e) if e.contains("Address already in use") => last_error = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("could not start a test cluster on free ports:\n{last_error}");
    }

    /// Reads `servers.tsv` written by `cluster.sh prepare`.
    fn from_layout(dir: &Path) -> Cluster {
        let path = dir.join("servers.tsv");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut shards: Vec<Shard> = Vec::new();
        let mut servers = Vec::new();
        for line in text.lines() {
            // name shard role port server_id primary_name
            let f: Vec<&str> = line.split('\t').collect();
            assert!(f.len() == 6, "bad line in {}: {line:?}", path.display());
            let addr: SocketAddr = format!("127.0.0.1:{}", f[3]).parse().expect("port");
            if f[2] == "primary" {
                shards.push(Shard { name: f[1].to_string(), primary: addr, replicas: Vec::new() });
            } else {
                let shard = shards.iter_mut().find(|s| s.name == f[1]).expect("replica listed before its primary");
                shard.replicas.push(addr);
            }
            servers.push(Server { name: f[0].to_string(), addr, pid: Mutex::new(None) });
        }
        Cluster { dir: dir.to_path_buf(), shards, servers }
    }

    /// The cluster's directory (each server's error.log is in `<dir>/<name>/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Every server's address, primaries and replicas.
    pub fn servers(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.servers.iter().map(|s| s.addr)
    }

    /// Pids of the servers now running.
    pub fn pids(&self) -> Vec<u32> {
        self.servers.iter().filter_map(|s| *s.pid.lock().unwrap_or_else(|e| e.into_inner())).collect()
    }

    /// Runs `query` directly on the server at `addr` as `app`; rows as text, NULL as `None`.
    pub fn sql(&self, addr: SocketAddr, query: &str) -> Rows {
        sql::sql(addr, query)
    }

    /// Runs statements directly on the server at `addr`, discarding results.
    pub fn exec(&self, addr: SocketAddr, query: &str) {
        sql::exec(addr, query)
    }

    /// Waits until every replica of `shard` has applied everything its primary had binlogged
    /// when this was called: the replica's `gtid_slave_pos` reaches the primary's
    /// `gtid_binlog_pos` in every replication domain.
    pub fn wait_replicated(&self, shard: &Shard) {
        let target = sql::scalar(shard.primary, "SELECT @@gtid_binlog_pos").unwrap_or_default();
        for &replica in &shard.replicas {
            let deadline = Instant::now() + DEADLINE;
            loop {
                let pos = sql::try_sql(replica, "SELECT @@gtid_slave_pos")
                    .ok()
                    .and_then(|rows| rows.into_iter().next())
                    .and_then(|row| row.into_iter().next().flatten());
                if pos.as_deref().is_some_and(|pos| gtid_covers(pos, &target)) {
                    break;
                }
                if Instant::now() > deadline {
                    panic!(
                        "replica {replica} of {} did not reach the primary's gtid_binlog_pos \
                         {target:?} within {DEADLINE:?}: its gtid_slave_pos is {pos:?}; \
                         replication status: {:?}",
                        shard.name,
                        replica_status(replica)
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// SIGKILLs the primary of `shard` (a crash: no clean shutdown).
    pub fn kill_primary(&self, shard: &Shard) {
        self.kill_server(shard.primary);
    }

    /// SIGKILLs the server at `addr`.
    pub fn kill_server(&self, addr: SocketAddr) {
        let server = self.server(addr);
        if let Some(pid) = server.pid.lock().unwrap_or_else(|e| e.into_inner()).take() {
            process::kill(pid);
        }
    }

    /// SIGSTOPs the server at `addr`: alive, but answering nothing (a hung server).
    pub fn pause_server(&self, addr: SocketAddr) {
        if let Some(pid) = *self.server(addr).pid.lock().unwrap_or_else(|e| e.into_inner()) {
            process::signal(pid, libc::SIGSTOP);
        }
    }

    /// SIGCONTs a server paused by [`Cluster::pause_server`].
    pub fn resume_server(&self, addr: SocketAddr) {
        if let Some(pid) = *self.server(addr).pid.lock().unwrap_or_else(|e| e.into_inner()) {
            process::signal(pid, libc::SIGCONT);
        }
    }

    /// Shuts the server at `addr` down cleanly and waits until its process is gone.
    pub fn stop_server(&self, addr: SocketAddr) {
        let server = self.server(addr);
        let mut pid = server.pid.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = pid.take() else {
            return;
        };
        let _ = sql::try_sql(addr, "SHUTDOWN");
        if !process::wait_exit(p, DEADLINE) {
            eprintln!("{} did not shut down in {DEADLINE:?}; killed it", server.name);
        }
    }

    /// Starts the (stopped or killed) server at `addr` again with its data and waits until it
    /// accepts connections. A replica resumes replicating by itself.
    pub fn start_server(&self, addr: SocketAddr) {
        let server = self.server(addr);
        self.launch(server);
        let deadline = Instant::now() + DEADLINE;
        loop {
            let err = match sql::try_sql(addr, "SELECT 1") {
                Ok(_) => return,
                Err(e) => e,
            };
            let pid = *server.pid.lock().unwrap_or_else(|e| e.into_inner());
            let running = pid.is_some_and(process::is_running);
            if !running || Instant::now() > deadline {
                panic!(
                    "{} ({addr}) did not come back ({}; last error: {err}); end of its error.log:\n{}",
                    server.name,
                    if running { "timed out" } else { "it exited" },
                    self.log_tail(server)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A shardgate config for this cluster, shaped like `conf/shardgate.toml`: listens on
    /// 127.0.0.1:0, logs in as app/app, `users` and `orders` hashed on `user_id`, `countries`
    /// broadcast, then `extra_tables` (more `[[tables]]` entries) verbatim.
    pub fn shardgate_config(&self, extra_tables: &str) -> String {
        let mut out = String::from(
            "[proxy]\n\
             listen = \"127.0.0.1:0\"\n\
             default_shard = \"s0\"\n\
             \n\
             [[users]]\n\
             name = \"app\"\n\
             password = \"app\"\n\
             \n\
             [backend]\n\
             user = \"app\"\n\
             password = \"app\"\n\
             database = \"app\"\n\
             admin_user = \"shardgate\"\n\
             admin_password = \"shardgate\"\n\
             replication_user = \"repl\"\n\
             replication_password = \"repl\"\n",
        );
        for shard in &self.shards {
            let replicas: Vec<String> = shard.replicas.iter().map(|r| format!("\"{r}\"")).collect();
            let _ = write!(
                out,
                "\n[[shards]]\nname = \"{}\"\nprimary = \"{}\"\nreplicas = [{}]\n",
                shard.name,
                shard.primary,
                replicas.join(", ")
            );
        }
        for table in ["users", "orders"] {
            let _ = write!(out, "\n[[tables]]\nname = \"{table}\"\nshard_key = \"user_id\"\nalgorithm = \"hash\"\n");
        }
        out.push_str("\n[[tables]]\nname = \"countries\"\nbroadcast = true\n");
        if !extra_tables.trim().is_empty() {
            out.push('\n');
            out.push_str(extra_tables.trim());
            out.push('\n');
        }
        out
    }

    fn server(&self, addr: SocketAddr) -> &Server {
        self.servers.iter().find(|s| s.addr == addr).unwrap_or_else(|| panic!("{addr} is not a server of this cluster"))
    }

    /// Spawns `server`'s run script (which execs mariadbd) unless it is running.
    fn launch(&self, server: &Server) {
        let mut pid = server.pid.lock().unwrap_or_else(|e| e.into_inner());
        if pid.is_some_and(process::is_running) {
            return;
        }
        let dir = self.dir.join(&server.name);
        let spawned = process::spawn(&dir.join("run"), &[], &dir.join("stdout.log"))
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.name));
        *pid = Some(spawned);
    }

    fn kill_all(&self) {
        for server in &self.servers {
            self.kill_server(server.addr);
        }
    }

    fn log_tail(&self, server: &Server) -> String {
        let log = std::fs::read_to_string(self.dir.join(&server.name).join("error.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
        process::remove_dir(&self.dir);
    }
}

/// `SHOW SLAVE STATUS` of the server at `addr` as column → value, or `None` if it is not a
/// replica (or cannot be reached).
pub fn replica_status(addr: SocketAddr) -> Option<BTreeMap<String, String>> {
    let (columns, rows) = sql::try_query(addr, "SHOW SLAVE STATUS").ok()?;
    let row = rows.into_iter().next()?;
    Some(columns.into_iter().zip(row).map(|(c, v)| (c, v.unwrap_or_else(|| "NULL".into()))).collect())
}

/// True if GTID position `pos` ("d-s-n,...") has reached `target` in every domain of `target`.
pub fn gtid_covers(pos: &str, target: &str) -> bool {
    let parse = |s: &str| -> BTreeMap<u32, u64> {
        s.split(',')
            .filter_map(|g| {
                let mut parts = g.trim().split('-');
                let domain = parts.next()?.parse().ok()?;
                let _server = parts.next()?;
                let seq = parts.next()?.parse().ok()?;
                Some((domain, seq))
            })
            .collect()
    };
    let have = parse(pos);
    parse(target).iter().all(|(domain, seq)| have.get(domain).is_some_and(|h| h >= seq))
}

/// Panics, telling how to install MariaDB, unless `mariadbd` is installed: tests that need
/// real servers must fail without them, never pass by skipping.
fn require_mariadb() {
    let found = Command::new("sh")
        .args(["-c", "command -v mariadbd || test -x /usr/sbin/mariadbd || command -v mysqld"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "mariadbd is not installed, and these tests need real MariaDB servers. \
         Run scripts/test.sh (it installs mariadb-server and mariadb-client with apt-get), \
         or install them yourself: apt-get install mariadb-server mariadb-client"
    );
}

/// Runs `scripts/cluster.sh <cmd> <args>`; its stdout on success, both outputs on failure.
fn cluster_sh(cmd: &str, args: &[String]) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "scripts/cluster.sh {cmd} {} failed ({}):\n{stdout}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A base port such that `count` consecutive ports are free now. Ports come from below the
/// ephemeral range (which outgoing connections use) and are picked at random, since other test
/// binaries and other worktrees on the machine start clusters too.
fn free_port_range(count: usize) -> u16 {
    for _ in 0..200 {
        let base: u16 = rand::random_range(20_000..32_000);
        let listeners: Vec<_> =
            (0..count as u16).map_while(|i| TcpListener::bind(("127.0.0.1", base + i)).ok()).collect();
        if listeners.len() == count {
            return base;
        }
    }
    panic!("found no {count} consecutive free ports on 127.0.0.1");
}
