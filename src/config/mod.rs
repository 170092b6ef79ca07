//! Configuration: the TOML schema ([`schema`]), validation into a resolved
//! [`Config`] snapshot ([`validate`]), and the live handle the proxy reads
//! through an arc-swap snapshot (no locks on the query path).

pub mod diff;
pub mod schema;
pub mod validate;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use schema::{Algorithm, FailoverMode, Flavor, KeyType, LogFormat, RejoinMode, TransactionMode, UnparsedMode};
pub use validate::ConfigError;

/// The validated configuration the proxy runs on. Immutable; replaced whole on reload.
#[derive(Debug, Clone)]
pub struct Config {
    pub proxy: schema::ProxySection,
    pub backend: schema::BackendSection,
    pub health: schema::HealthSection,
    /// Client accounts by name.
    pub users: HashMap<String, User>,
    /// Shards in config order; a shard's index is its id everywhere else.
    pub shards: Vec<Shard>,
    /// Index of `proxy.default_shard` in `shards`.
    pub default_shard: usize,
    /// Table rules keyed by lower-cased table name.
    pub tables: HashMap<String, TableRule>,
    /// Sequence columns (`[[tables]] sequence`): lower-cased table name → column name as written.
    pub sequences: HashMap<String, String>,
}

/// A client account.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    /// SHA1(SHA1(password)): what mysql_native_password verifies against.
    pub stage2_hash: [u8; 20],
    /// SHA256(SHA256(password)): what caching_sha2_password's fast path
    /// verifies against. Known only when the config holds the password itself.
    pub sha256_stage2: Option<[u8; 32]>,
    /// Logins must come over TLS.
    pub require_tls: bool,
    /// May run shardgate's admin statements.
    pub admin: bool,
}

/// One shard: a primary (or an active-active pair) and its replicas.
#[derive(Debug, Clone)]
pub struct Shard {
    pub name: String,
    /// Where writes go: `primary`, or the first of `primaries`.
    pub primary: Server,
    /// Active-active shards (`primaries = [a, b]`): `b`, the hot standby in
    /// two-way replication with `primary`. For now it is probed and serves
    /// reads like a replica when fit; writes only ever go to `primary`
    /// (flipping to the standby comes with failover).
    pub standby: Option<Server>,
    pub replicas: Vec<Server>,
    /// The part of the 64-bit keyspace this shard owns for `hash` tables.
    pub key_range: KeyRange,
    /// Connections to this shard's servers use TLS (verified against `backend.tls_ca`).
    pub tls: bool,
}

/// One backend server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// `host:port`, as written in the config.
    pub addr: String,
    /// Its zone, compared with `proxy.zone` to prefer local replicas.
    pub zone: Option<String>,
}

/// A half-open range `[start, end)` of the 64-bit keyspace; `end == None` means up to and including u64::MAX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    pub start: u64,
    pub end: Option<u64>,
}

impl KeyRange {
    pub fn contains(&self, keyspace_id: u64) -> bool {
        keyspace_id >= self.start && self.end.is_none_or(|end| keyspace_id < end)
    }
}

/// How one listed table is placed.
#[derive(Debug, Clone)]
pub enum TableRule {
    /// A full copy on every shard.
    Broadcast,
    Sharded(ShardedTable),
}

#[derive(Debug, Clone)]
pub struct ShardedTable {
    pub name: String,
    /// Lower-cased shard key column name.
    pub shard_key: String,
    pub algorithm: Algorithm,
    /// `range` boundaries (ascending, `shards.len() - 1` of them).
    pub boundaries: Vec<i64>,
    pub key_type: KeyType,
    /// Collation of a string key column (lower-cased), e.g. "utf8mb4_general_ci".
    pub collation: String,
}

impl Config {
    /// The rule for a table name as written in SQL (case-insensitive).
    pub fn table(&self, name: &str) -> Option<&TableRule> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.tables.get(&name.to_ascii_lowercase())
        } else {
            self.tables.get(name)
        }
    }

    /// The sequence column of a listed table (name as written in SQL, case-insensitive).
    pub fn sequence(&self, table: &str) -> Option<&str> {
        if self.sequences.is_empty() {
            return None;
        }
        self.sequences.get(&table.to_ascii_lowercase()).map(String::as_str)
    }

    /// Index of a shard by name.
    pub fn shard_index(&self, name: &str) -> Option<usize> {
        self.shards.iter().position(|s| s.name.eq_ignore_ascii_case(name))
    }
}

/// The live configuration: one atomic pointer, read once per statement with `load()`.
#[derive(Debug)]
pub struct ConfigHandle {
    current: ArcSwap<Config>,
}

impl ConfigHandle {
    pub fn new(cfg: Config) -> Self {
        ConfigHandle { current: ArcSwap::from_pointee(cfg) }
    }
    /// A snapshot for the duration of one statement.
    pub fn load(&self) -> Arc<Config> {
        self.current.load_full()
    }
    pub fn store(&self, cfg: Config) {
        self.current.store(Arc::new(cfg));
    }
}
