//! The TOML schema of `conf/shardgate.toml`, exactly as the operator writes it.
//!
//! Every struct rejects unknown keys so a typo is an error, not a silent default.
//! These types are only the parsed file; [`super::Config`] is the validated,
//! resolved snapshot the proxy runs on.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub proxy: ProxySection,
    #[serde(default)]
    pub users: Vec<UserEntry>,
    pub backend: BackendSection,
    #[serde(default)]
    pub health: HealthSection,
    #[serde(default)]
    pub shards: Vec<ShardEntry>,
    #[serde(default)]
    pub tables: Vec<TableEntry>,
}

/// `[proxy]`: the client-facing side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// MySQL protocol listen address. Restart-only.
    pub listen: String,
    /// HTTP admin listen address (/healthz). Restart-only.
    pub admin_listen: Option<String>,
    /// Client connections accepted at once; more get error 1040. Default 10000.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Shard that holds every table not listed under `[[tables]]`.
    pub default_shard: String,
    /// Runtime worker threads; 0 means one per CPU core. Restart-only.
    #[serde(default)]
    pub workers: u16,
    /// How long a client may take to connect and log in before it is
    /// disconnected. Default 10000 (MySQL's connect_timeout).
    #[serde(default = "default_login_timeout_ms")]
    pub login_timeout_ms: u64,
    /// Largest packet a client may send, in bytes. Default 64 MiB.
    #[serde(default = "default_max_allowed_packet")]
    pub max_allowed_packet: u32,
    /// What a transaction that writes to a second shard does:
    /// "single" refuses it, "best_effort" commits shard by shard. Default "single".
    #[serde(default)]
    pub transactions: TransactionMode,
    /// Statements sqlparser cannot parse and no hint routes:
    /// "error" (error 1235, the default) or "default_shard".
    #[serde(default)]
    pub unparsed: UnparsedMode,
    /// PEM certificate chain for client-facing TLS; with `tls_key`, clients may
    /// connect with TLS (SSLRequest). Restart-only.
    pub tls_cert: Option<String>,
    /// PEM private key for `tls_cert`. Restart-only.
    pub tls_key: Option<String>,
    /// PEM RSA private key for caching_sha2_password logins without TLS (the
    /// client fetches the public key, or has it). Default: a 2048-bit key
    /// generated at startup. Restart-only.
    pub rsa_private_key: Option<String>,
    /// The auth plugin offered in the initial handshake: "mysql_native_password"
    /// (default) or "caching_sha2_password". Both are accepted either way.
    #[serde(default = "default_auth_plugin")]
    pub auth_plugin: String,
    /// Memory one cross-shard merge may buffer (a sort after GROUP BY, DISTINCT
    /// ordered differently), in MiB; over it the query fails with error 1038.
    /// Ordered merges stream and need none. Default 64.
    #[serde(default = "default_merge_memory_mb")]
    pub merge_memory_mb: u32,
    /// This proxy's name in XA transaction ids (letters, digits, `_`). A
    /// restarted proxy recognises its own in-doubt transactions by it and
    /// settles them at once. Default: the host name.
    pub name: Option<String>,
    /// This proxy's zone (data centre). Reads prefer fit replicas whose `zone`
    /// is the same and cross zones only when none is fit. Default: none (no preference).
    pub zone: Option<String>,
    /// Ids one allocation reserves from a table's sequence (`[[tables]] sequence`)
    /// for this proxy process. Default 1000.
    #[serde(default = "default_sequence_block")]
    pub sequence_block: u64,
    /// On SIGTERM: how long running statements and open transactions may take
    /// to finish before their clients are disconnected. Default 30.
    #[serde(default = "default_shutdown_timeout_s")]
    pub shutdown_timeout_s: u64,
    /// Bearer token the admin endpoints that change state (POST /reload,
    /// POST /switchover) require. Give this or `admin_token_file`.
    pub admin_token: Option<String>,
    /// A file holding that token (e.g. a mounted Kubernetes Secret); read at
    /// every request, so a rotated secret applies at once.
    pub admin_token_file: Option<String>,
    /// Reload when the config file changes (saved in place, by rename, or by a
    /// Kubernetes ConfigMap symlink swap). Default true. Restart-only.
    #[serde(default = "default_true")]
    pub watch_config: bool,
    /// Accept a reload that changes where existing rows of a table live (its
    /// algorithm, key, boundaries, the shard list or key ranges, default_shard)
    /// even when the table has rows. Default false: such a reload is refused.
    #[serde(default)]
    pub allow_reshard: bool,
    /// Log lines as "text" (default) or "json" (one object per line). Restart-only.
    #[serde(default)]
    pub log_format: LogFormat,
}

impl ProxySection {
    /// The admin token: `admin_token`, or the trimmed content of
    /// `admin_token_file` (read now); `None` when neither is set (or the file is empty).
    pub fn admin_token(&self) -> Result<Option<String>, String> {
        if let Some(t) = &self.admin_token {
            return Ok(Some(t.clone()));
        }
        match &self.admin_token_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|t| Some(t.trim().to_owned()).filter(|t| !t.is_empty()))
                .map_err(|e| format!("cannot read proxy.admin_token_file {path}: {e}")),
            None => Ok(None),
        }
    }
}

/// `proxy.log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn default_shutdown_timeout_s() -> u64 {
    30
}

fn default_true() -> bool {
    true
}

/// `[[users]]`: an account clients log in with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    /// Clear-text password. Give this or `password_hash`, not both.
    pub password: Option<String>,
    /// `*` + 40 hex digits: SHA1(SHA1(password)), as MySQL's mysql.user stores it.
    pub password_hash: Option<String>,
    /// Logins of this account must use TLS (error 1045 otherwise).
    #[serde(default)]
    pub require_tls: bool,
    /// May run shardgate's admin statements (SHOW SHARDGATE BACKENDS/SHARDS/POOLS,
    /// SHARDGATE RELOAD, SHARDGATE SWITCHOVER). Default false.
    #[serde(default)]
    pub admin: bool,
}

/// `[backend]`: how shardgate logs in to every MySQL server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    /// PEM CA certificate(s) that backend servers' certificates must chain to,
    /// for shards with `tls = true`.
    pub tls_ca: Option<String>,
    pub user: String,
    #[serde(default)]
    pub password: String,
    /// The schema on every shard; clients see the same name.
    pub database: String,
    /// Most connections per backend server. Default 32.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Connect (and login) timeout per backend connection. Default 2000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long a statement waits for a free pooled connection. Default 5000.
    #[serde(default = "default_pool_wait_ms")]
    pub pool_wait_ms: u64,
    /// "mariadb" or "mysql": chooses replication and failover SQL.
    #[serde(default)]
    pub flavor: Flavor,
    /// Account for the health checker and failover: probes (SHOW SLAVE STATUS
    /// needs SLAVE MONITOR / REPLICATION CLIENT) and promotion (STOP SLAVE,
    /// CHANGE MASTER, SET GLOBAL read_only: SUPER and READ_ONLY ADMIN on
    /// MariaDB 10.11). Keep READ_ONLY ADMIN away from `user`, so `read_only`
    /// stops application writes on replicas. Unset: `user`/`password`.
    pub admin_user: Option<String>,
    #[serde(default)]
    pub admin_password: String,
    /// Account replicas use to connect to a new primary after failover
    /// (CHANGE MASTER TO ... MASTER_USER). Unset: replicas keep the account
    /// they had; an old primary can then not rejoin as a replica.
    pub replication_user: Option<String>,
    #[serde(default)]
    pub replication_password: String,
}

/// `[health]`: backend probing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// Probe period per backend. Default 500.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Probe timeout. Default 1000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive failures before a backend is down (and successes before it is up). Default 3.
    #[serde(default = "default_down_after")]
    pub down_after: u32,
    /// Replicas whose Seconds_Behind_Master exceeds this leave the read rotation. Default 10.
    #[serde(default = "default_max_replica_lag_s")]
    pub max_replica_lag_s: u64,
    /// What happens when a shard's primary dies. Default "promote".
    #[serde(default)]
    pub failover: FailoverMode,
    /// RPO = 0: promote only a replica that holds every transaction the primary
    /// acknowledged under semi-synchronous replication. Default false.
    #[serde(default)]
    pub require_semi_sync: bool,
    /// What happens to an old primary that comes back. Default "manual".
    #[serde(default)]
    pub rejoin: RejoinMode,
    /// How long new statements wait for a new primary during failover. Default 5000.
    #[serde(default = "default_failover_buffer_ms")]
    pub failover_buffer_ms: u64,
}

impl Default for HealthSection {
    fn default() -> Self {
        HealthSection {
            interval_ms: default_interval_ms(),
            timeout_ms: default_timeout_ms(),
            down_after: default_down_after(),
            max_replica_lag_s: default_max_replica_lag_s(),
            failover: FailoverMode::default(),
            require_semi_sync: false,
            rejoin: RejoinMode::default(),
            failover_buffer_ms: default_failover_buffer_ms(),
        }
    }
}

/// `[[shards]]`: one primary (or an active-active pair) and its replicas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardEntry {
    pub name: String,
    /// The primary. Give this or `primaries`, not both.
    pub primary: Option<ServerEntry>,
    /// Active-active: two primaries in two-way replication, each with its own
    /// replicas. Writes go to one at a time (the first); the other is a hot standby.
    pub primaries: Option<Vec<ServerEntry>>,
    #[serde(default)]
    pub replicas: Vec<ServerEntry>,
    /// Hex keyspace range for `hash` tables, Vitess style: "-80", "80-", "40-80".
    /// Default: an even split of the 64-bit keyspace in shard order.
    pub key_range: Option<String>,
    /// Connections to this shard's servers use TLS, verified against `backend.tls_ca`.
    #[serde(default)]
    pub tls: bool,
}

/// `[[tables]]`: a sharded or broadcast table. Unlisted tables live on `default_shard`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    pub name: String,
    /// Column whose value picks the shard. Required unless `broadcast = true`.
    pub shard_key: Option<String>,
    pub algorithm: Option<Algorithm>,
    /// For `range`: ascending integer boundaries, one fewer than there are shards.
    /// Shard i holds keys in [boundaries[i-1], boundaries[i]).
    #[serde(default)]
    pub boundaries: Vec<i64>,
    /// "int" (default) or "string": how key literals are compared and hashed.
    #[serde(default)]
    pub key_type: KeyType,
    /// For string keys: the column's collation, so that equal strings hash equal.
    /// Default "utf8mb4_general_ci".
    pub collation: Option<String>,
    /// A full copy on every shard: writes go to every primary, reads to one shard.
    #[serde(default)]
    pub broadcast: bool,
    /// A column whose values shardgate generates on INSERT (like AUTO_INCREMENT,
    /// unique across shards), from a block-allocated sequence on the default shard.
    pub sequence: Option<String>,
}

/// One backend server: `"host:port"`, or `{ addr = "host:port", zone = "dc1" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// `host:port`.
    pub addr: String,
    /// Data centre / availability zone, compared with `proxy.zone`.
    pub zone: Option<String>,
}

impl ServerEntry {
    /// A server given as a plain address, without a zone.
    pub fn plain(addr: impl Into<String>) -> Self {
        ServerEntry { addr: addr.into(), zone: None }
    }
}

/// The inline-table form of a [`ServerEntry`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerTable {
    addr: String,
    zone: Option<String>,
}

impl<'de> Deserialize<'de> for ServerEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ServerEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"host:port\" or an inline table { addr = \"host:port\", zone = \"...\" }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ServerEntry, E> {
                Ok(ServerEntry::plain(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<ServerEntry, A::Error> {
                let t = ServerTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ServerEntry { addr: t.addr, zone: t.zone })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverMode {
    /// shardgate promotes the most advanced replica itself.
    #[default]
    Promote,
    /// An external tool promotes; writes follow the server with read_only = OFF.
    Follow,
    /// No failover: writes fail while the primary is down.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejoinMode {
    /// A returning old primary is fenced (read_only) and left for an operator.
    #[default]
    Manual,
    /// A returning old primary is fenced and re-attached as a replica of the new one.
    Replica,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    Hash,
    Mod,
    Range,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    #[default]
    Int,
    String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    #[default]
    Mariadb,
    Mysql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionMode {
    #[default]
    Single,
    BestEffort,
    /// Two-phase commit over XA branches, with a decision log and recovery.
    Xa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnparsedMode {
    #[default]
    Error,
    DefaultShard,
}

fn default_sequence_block() -> u64 {
    1000
}

fn default_auth_plugin() -> String {
    "mysql_native_password".into()
}

fn default_merge_memory_mb() -> u32 {
    64
}

fn default_max_connections() -> u32 {
    10_000
}
fn default_login_timeout_ms() -> u64 {
    10_000
}
fn default_max_allowed_packet() -> u32 {
    64 << 20
}
fn default_pool_size() -> u32 {
    32
}
fn default_connect_timeout_ms() -> u64 {
    2000
}
fn default_pool_wait_ms() -> u64 {
    5000
}
fn default_interval_ms() -> u64 {
    500
}
fn default_timeout_ms() -> u64 {
    1000
}
fn default_down_after() -> u32 {
    3
}
fn default_max_replica_lag_s() -> u64 {
    10
}
fn default_failover_buffer_ms() -> u64 {
    5000
}

impl BackendSection {
    /// The control-plane account: `admin_user`, else `user`.
    pub fn admin_account(&self) -> (&str, &str) {
        match &self.admin_user {
            Some(u) => (u, &self.admin_password),
            None => (&self.user, &self.password),
        }
    }
}
