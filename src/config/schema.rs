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
}

/// `[backend]`: how shardgate logs in to every MySQL server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
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
}

impl Default for HealthSection {
    fn default() -> Self {
        HealthSection {
            interval_ms: default_interval_ms(),
            timeout_ms: default_timeout_ms(),
            down_after: default_down_after(),
        }
    }
}

/// `[[shards]]`: one primary and its replicas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardEntry {
    pub name: String,
    /// `host:port` of the primary.
    pub primary: String,
    #[serde(default)]
    pub replicas: Vec<String>,
    /// Hex keyspace range for `hash` tables, Vitess style: "-80", "80-", "40-80".
    /// Default: an even split of the 64-bit keyspace in shard order.
    pub key_range: Option<String>,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnparsedMode {
    #[default]
    Error,
    DefaultShard,
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
