//! Turning a parsed [`super::schema::ConfigFile`] into a validated [`super::Config`].
//!
//! [`parse`] first lets `toml` + serde check the syntax and the schema (unknown
//! keys, wrong types and missing required keys are reported with toml's own
//! message, which carries line, column and key). It then checks everything the
//! types cannot express and resolves names into indexes. The first problem found
//! is returned as [`ConfigError::Invalid`], whose `key` is the path of the
//! offending key as the operator wrote it (`shards[1].primary`,
//! `tables[0].collation (users)`, `proxy.default_shard`) and whose message says
//! what is wrong and what to do.
//!
//! Check order: `[proxy]`, `[backend]`, `[health]`, `[[users]]`, `[[shards]]`
//! (then `proxy.default_shard` and `proxy.zone`, which need the shard list), `[[tables]]`.

mod shards;
mod tables;

use std::collections::HashMap;
use std::net::SocketAddr;

use sha1::{Digest, Sha1};

use super::schema::{BackendSection, ConfigFile, HealthSection, ProxySection, UserEntry};
use super::{Config, Shard, User};

/// Smallest accepted `proxy.max_allowed_packet` (bytes).
pub const MIN_MAX_ALLOWED_PACKET: u32 = 1024;
/// Largest accepted `proxy.max_allowed_packet`: 1 GiB, MySQL's own limit.
pub const MAX_MAX_ALLOWED_PACKET: u32 = 1 << 30;

/// A configuration that cannot be used. The message names the key and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Parse(String),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

/// Shorthand for a [`ConfigError::Invalid`].
pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), message: message.into() }
}

/// Parse and validate a config file's text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let file: ConfigFile =
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string().trim_end().to_string()))?;
    validate(file)
}

/// Read, parse and validate a config file.
pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.display().to_string(), source })?;
    parse(&text)
}

/// Validate an already parsed file and resolve it into a [`Config`].
pub fn validate(file: ConfigFile) -> Result<Config, ConfigError> {
    check_proxy(&file.proxy)?;
    check_backend(&file.backend)?;
    check_health(&file.health)?;
    let users = resolve_users(&file.users)?;
    if file.proxy.tls_cert.is_none() {
        if let Some(i) = file.users.iter().position(|u| u.require_tls) {
            return Err(invalid(
                format!("users[{i}].require_tls"),
                "needs client TLS: set proxy.tls_cert and proxy.tls_key, or drop require_tls",
            ));
        }
    }
    let shards = shards::resolve(&file.shards)?;
    if file.backend.tls_ca.is_none() {
        if let Some(i) = file.shards.iter().position(|s| s.tls) {
            return Err(invalid(
                format!("shards[{i}].tls"),
                "needs backend.tls_ca (the PEM CA the servers' certificates chain to)",
            ));
        }
    }
    let default_shard =
        shards.iter().position(|s| s.name.eq_ignore_ascii_case(&file.proxy.default_shard)).ok_or_else(|| {
            let have: Vec<&str> = shards.iter().map(|s| s.name.as_str()).collect();
            invalid(
                "proxy.default_shard",
                format!(
                    "{:?} is not the name of any [[shards]] entry (have: {}); \
                     name the shard that holds unlisted tables",
                    file.proxy.default_shard,
                    have.join(", ")
                ),
            )
        })?;
    check_proxy_zone(&file.proxy, &shards)?;
    let tables = tables::resolve(&file.tables, shards.len())?;
    let sequences = tables::sequences(&file.tables, &tables)?;
    Ok(Config {
        proxy: file.proxy,
        backend: file.backend,
        health: file.health,
        users,
        shards,
        default_shard,
        tables,
        sequences,
    })
}

fn check_socket_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse::<SocketAddr>().map_err(|_| {
        invalid(
            key,
            format!(
                "{value:?} is not an IP socket address; write ip:port, \
                 e.g. \"127.0.0.1:3307\", \"0.0.0.0:3307\" or \"[::1]:3307\""
            ),
        )
    })
}

fn at_least_one(key: &str, value: u64, what: &str) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(invalid(key, format!("must be at least 1 ({what}); remove the key for the default")));
    }
    Ok(())
}

fn check_proxy(p: &ProxySection) -> Result<(), ConfigError> {
    let listen = check_socket_addr("proxy.listen", &p.listen)?;
    if let Some(admin) = &p.admin_listen {
        let admin_addr = check_socket_addr("proxy.admin_listen", admin)?;
        // Port 0 asks the OS for a free port each time: two of those never clash.
        if admin_addr == listen && listen.port() != 0 {
            return Err(invalid(
                "proxy.admin_listen",
                format!("{admin:?} is the same address as proxy.listen; give the admin endpoint its own port"),
            ));
        }
    }
    at_least_one("proxy.max_connections", p.max_connections.into(), "client connections accepted at once")?;
    if !matches!(p.auth_plugin.as_str(), "mysql_native_password" | "caching_sha2_password") {
        return Err(invalid(
            "proxy.auth_plugin",
            format!("{:?} is not an auth plugin shardgate offers; use \"mysql_native_password\" or \"caching_sha2_password\"", p.auth_plugin),
        ));
    }
    match (&p.tls_cert, &p.tls_key) {
        (Some(_), None) => return Err(invalid("proxy.tls_key", "is missing: tls_cert needs its private key")),
        (None, Some(_)) => return Err(invalid("proxy.tls_cert", "is missing: tls_key needs its certificate")),
        _ => {}
    }
    if p.admin_token.is_some() && p.admin_token_file.is_some() {
        return Err(invalid("proxy.admin_token_file", "give admin_token or admin_token_file, not both"));
    }
    if p.admin_token.as_deref().is_some_and(|t| t.trim().len() < 16) {
        return Err(invalid("proxy.admin_token", "is shorter than 16 characters; use a long random token"));
    }
    at_least_one("proxy.merge_memory_mb", p.merge_memory_mb.into(), "MiB a cross-shard merge may buffer")?;
    at_least_one("proxy.login_timeout_ms", p.login_timeout_ms, "milliseconds a client may take to log in")?;
    at_least_one("proxy.sequence_block", p.sequence_block, "ids reserved per sequence allocation")?;
    if !(MIN_MAX_ALLOWED_PACKET..=MAX_MAX_ALLOWED_PACKET).contains(&p.max_allowed_packet) {
        return Err(invalid(
            "proxy.max_allowed_packet",
            format!(
                "{} is out of range; give a size in bytes between {MIN_MAX_ALLOWED_PACKET} and \
                 {MAX_MAX_ALLOWED_PACKET} (1 GiB); the default is 67108864 (64 MiB)",
                p.max_allowed_packet
            ),
        ));
    }
    Ok(())
}

/// `proxy.zone` must be the zone of at least one backend, so a typo cannot
/// silently turn the same-zone preference off.
fn check_proxy_zone(p: &ProxySection, shards: &[Shard]) -> Result<(), ConfigError> {
    let Some(zone) = &p.zone else { return Ok(()) };
    shards::check_zone("proxy.zone", zone)?;
    let mut known: Vec<&str> = shards
        .iter()
        .flat_map(|s| std::iter::once(&s.primary).chain(&s.standby).chain(&s.replicas))
        .filter_map(|b| b.zone.as_deref())
        .collect();
    if known.contains(&zone.as_str()) {
        return Ok(());
    }
    known.sort_unstable();
    known.dedup();
    let have =
        if known.is_empty() { "no backend has a zone".to_string() } else { format!("zones: {}", known.join(", ")) };
    Err(invalid(
        "proxy.zone",
        format!(
            "{zone:?} is not the zone of any backend ({have}); give servers a zone with \
             {{ addr = \"host:port\", zone = {zone:?} }}, or remove proxy.zone"
        ),
    ))
}

fn check_backend(b: &BackendSection) -> Result<(), ConfigError> {
    if b.user.is_empty() {
        return Err(invalid("backend.user", "must not be empty; give the MySQL account shardgate logs in with"));
    }
    if b.database.is_empty() {
        return Err(invalid("backend.database", "must not be empty; give the schema that exists on every shard"));
    }
    at_least_one("backend.pool_size", b.pool_size.into(), "connections per backend server")?;
    at_least_one("backend.connect_timeout_ms", b.connect_timeout_ms, "milliseconds")?;
    Ok(())
}

fn check_health(h: &HealthSection) -> Result<(), ConfigError> {
    at_least_one("health.interval_ms", h.interval_ms, "milliseconds between probes")?;
    at_least_one("health.timeout_ms", h.timeout_ms, "milliseconds a probe may take")?;
    at_least_one("health.down_after", h.down_after.into(), "consecutive probe results")?;
    Ok(())
}

/// SHA1(SHA1(password)): what `mysql_native_password` verifies against.
pub fn stage2_hash(password: &[u8]) -> [u8; 20] {
    let stage1 = Sha1::digest(password);
    Sha1::digest(stage1).into()
}

/// Decode a `password_hash` (`*` + 40 hex digits, any case).
fn decode_password_hash(key: &str, hash: &str) -> Result<[u8; 20], ConfigError> {
    // Never echo the hash itself: it is a secret.
    let bad = || {
        invalid(
            key,
            format!(
                "must be \"*\" followed by 40 hex digits (got {} characters), as \
                 SELECT authentication_string FROM mysql.user shows it for mysql_native_password",
                hash.chars().count()
            ),
        )
    };
    let hex = hash.strip_prefix('*').ok_or_else(bad)?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn resolve_users(entries: &[UserEntry]) -> Result<HashMap<String, User>, ConfigError> {
    if entries.is_empty() {
        return Err(invalid(
            "users",
            "at least one [[users]] entry is required; add one with name and password (or password_hash)",
        ));
    }
    let mut users: HashMap<String, User> = HashMap::with_capacity(entries.len());
    let mut first_index: HashMap<&str, usize> = HashMap::new();
    for (i, u) in entries.iter().enumerate() {
        let key = format!("users[{i}]");
        if u.name.is_empty() {
            return Err(invalid(format!("{key}.name"), "must not be empty"));
        }
        // MySQL user names are case-sensitive, so uniqueness is too.
        if let Some(first) = first_index.insert(&u.name, i) {
            return Err(invalid(
                format!("{key}.name"),
                format!("{:?} is already the name of users[{first}]; user names must be unique", u.name),
            ));
        }
        let sha256_stage2 = u.password.as_deref().map(|pw| crate::protocol::handshake::sha256_stage2(pw.as_bytes()));
        let stage2 = match (&u.password, &u.password_hash) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    &key,
                    format!("user {:?} has both password and password_hash; keep only one", u.name),
                ))
            }
            (None, None) => {
                return Err(invalid(&key, format!("user {:?} needs password or password_hash (exactly one)", u.name)))
            }
            (Some(pw), None) => {
                if pw.is_empty() {
                    return Err(invalid(
                        format!("{key}.password"),
                        "must not be empty; accounts without a password are not supported",
                    ));
                }
                stage2_hash(pw.as_bytes())
            }
            (None, Some(hash)) => decode_password_hash(&format!("{key}.password_hash"), hash)?,
        };
        users.insert(
            u.name.clone(),
            User {
                name: u.name.clone(),
                stage2_hash: stage2,
                sha256_stage2,
                require_tls: u.require_tls,
                admin: u.admin,
            },
        );
    }
    Ok(users)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ha;
#[cfg(test)]
mod tests_shards;
#[cfg(test)]
mod tests_tables;
