//! Tests for `[proxy]`, `[backend]`, `[health]`, `[[users]]`, parsing and the example config.
//! Shared helpers live here; shard and table checks are in `tests_shards` / `tests_tables`.

use super::{load, parse, stage2_hash, ConfigError};
use crate::config::{Algorithm, Flavor, KeyRange, KeyType, TableRule};

/// A config document assembled from section bodies; `..Doc::default()` fills the rest
/// with a small valid config (two shards, one user, no tables).
pub(super) struct Doc<'a> {
    pub proxy: &'a str,
    pub backend: &'a str,
    pub health: &'a str,
    pub users: &'a str,
    pub shards: &'a str,
    pub tables: &'a str,
}

pub(super) const PROXY: &str = "listen = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"\n";
pub(super) const BACKEND: &str = "user = \"app\"\npassword = \"app\"\ndatabase = \"app\"\n";
pub(super) const USERS: &str = "[[users]]\nname = \"app\"\npassword = \"app\"\n";
pub(super) const SHARDS: &str = "
[[shards]]
name = \"s0\"
primary = \"127.0.0.1:13306\"
[[shards]]
name = \"s1\"
primary = \"127.0.0.1:13308\"
";

impl Default for Doc<'_> {
    fn default() -> Self {
        Doc { proxy: PROXY, backend: BACKEND, health: "", users: USERS, shards: SHARDS, tables: "" }
    }
}

impl Doc<'_> {
    pub fn text(&self) -> String {
        format!(
            "[proxy]\n{}\n[backend]\n{}\n[health]\n{}\n{}\n{}\n{}\n",
            self.proxy, self.backend, self.health, self.users, self.shards, self.tables
        )
    }

    /// The validation error, asserting it is an `Invalid` error for `key`
    /// whose message contains each of `parts`.
    #[track_caller]
    pub fn fails(&self, key: &str, parts: &[&str]) {
        match parse(&self.text()) {
            Ok(_) => panic!("expected an error for {key}, but the config is valid:\n{}", self.text()),
            Err(e @ ConfigError::Invalid { .. }) => {
                let msg = e.to_string();
                let ConfigError::Invalid { key: k, .. } = &e else { unreachable!() };
                assert_eq!(k, key, "wrong key in: {msg}");
                assert!(msg.starts_with(key), "key path missing from: {msg}");
                for p in parts {
                    assert!(msg.contains(p), "{p:?} missing from: {msg}");
                }
            }
            Err(e) => panic!("expected Invalid for {key}, got: {e}"),
        }
    }

    #[track_caller]
    pub fn ok(&self) -> crate::config::Config {
        parse(&self.text()).unwrap_or_else(|e| panic!("{e}\n{}", self.text()))
    }
}

#[test]
fn minimal_config_is_valid_with_defaults() {
    let cfg = Doc::default().ok();
    assert_eq!(cfg.proxy.max_connections, 10_000);
    assert_eq!(cfg.proxy.max_allowed_packet, 64 << 20);
    assert_eq!(cfg.backend.pool_size, 32);
    assert_eq!(cfg.backend.connect_timeout_ms, 2000);
    assert_eq!(cfg.health.interval_ms, 500);
    assert_eq!(cfg.health.timeout_ms, 1000);
    assert_eq!(cfg.health.down_after, 3);
    assert_eq!(cfg.default_shard, 0);
    assert!(cfg.tables.is_empty());
}

#[test]
fn toml_errors_keep_location_and_key() {
    let err = parse("[proxy]\nlisten = \"127.0.0.1:3307\"\nlisten_typo = 1\n").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConfigError::Parse(_)));
    assert!(msg.contains("listen_typo"), "{msg}");
    assert!(msg.contains("line 3"), "{msg}");

    let msg = parse("[proxy\n").unwrap_err().to_string();
    assert!(msg.contains("line 1"), "{msg}");

    let doc = Doc { proxy: "listen = \"127.0.0.1:3307\"\n", ..Doc::default() };
    let msg = parse(&doc.text()).unwrap_err().to_string();
    assert!(msg.contains("default_shard"), "{msg}");
}

#[test]
fn load_reads_a_file_and_reports_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shardgate.toml");
    std::fs::write(&path, Doc::default().text()).unwrap();
    assert_eq!(load(&path).unwrap().shards.len(), 2);
    let missing = dir.path().join("nope.toml");
    let msg = load(&missing).unwrap_err().to_string();
    assert!(msg.contains("nope.toml"), "{msg}");
}

#[test]
fn listen_addresses() {
    let d = |proxy| Doc { proxy, ..Doc::default() };
    d("listen = \"localhost:3307\"\ndefault_shard = \"s0\"").fails("proxy.listen", &["localhost:3307"]);
    d("listen = \"3307\"\ndefault_shard = \"s0\"").fails("proxy.listen", &["ip:port"]);
    d("listen = \"[::1]:3307\"\nadmin_listen = \"0.0.0.0\"\ndefault_shard = \"s0\"")
        .fails("proxy.admin_listen", &["\"0.0.0.0\""]);
    d("listen = \"127.0.0.1:3307\"\nadmin_listen = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"")
        .fails("proxy.admin_listen", &["same address"]);
    d("listen = \"[::1]:3307\"\nadmin_listen = \"127.0.0.1:9107\"\ndefault_shard = \"s0\"").ok();
}

#[test]
fn proxy_limits() {
    let d = |proxy| Doc { proxy, ..Doc::default() };
    d("listen = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"\nmax_connections = 0")
        .fails("proxy.max_connections", &["at least 1"]);
    d("listen = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"\nmax_allowed_packet = 1023")
        .fails("proxy.max_allowed_packet", &["1023", "1024"]);
    d("listen = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"\nmax_allowed_packet = 1073741825")
        .fails("proxy.max_allowed_packet", &["1 GiB"]);
    d("listen = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"\nmax_allowed_packet = 1024").ok();
    d("listen = \"127.0.0.1:3307\"\ndefault_shard = \"s0\"\nmax_allowed_packet = 1073741824").ok();
}

#[test]
fn default_shard_must_exist() {
    let doc = Doc { proxy: "listen = \"127.0.0.1:3307\"\ndefault_shard = \"s9\"", ..Doc::default() };
    doc.fails("proxy.default_shard", &["\"s9\" is not the name of any [[shards]] entry (have: s0, s1)"]);
    let doc = Doc { proxy: "listen = \"127.0.0.1:3307\"\ndefault_shard = \"S1\"", ..Doc::default() };
    assert_eq!(doc.ok().default_shard, 1);
}

#[test]
fn backend_limits() {
    let d = |extra: &'static str| format!("{BACKEND}{extra}");
    let b = d("pool_size = 0");
    Doc { backend: &b, ..Doc::default() }.fails("backend.pool_size", &["at least 1"]);
    let b = d("connect_timeout_ms = 0");
    Doc { backend: &b, ..Doc::default() }.fails("backend.connect_timeout_ms", &["at least 1"]);
    Doc { backend: "user = \"\"\ndatabase = \"app\"", ..Doc::default() }.fails("backend.user", &["empty"]);
    Doc { backend: "user = \"app\"\ndatabase = \"\"", ..Doc::default() }.fails("backend.database", &["empty"]);
    let b = d("flavor = \"mysql\"\npool_size = 1\nconnect_timeout_ms = 1");
    assert_eq!(Doc { backend: &b, ..Doc::default() }.ok().backend.flavor, Flavor::Mysql);
}

#[test]
fn health_limits() {
    let h = |health| Doc { health, ..Doc::default() };
    h("interval_ms = 0").fails("health.interval_ms", &["at least 1"]);
    h("timeout_ms = 0").fails("health.timeout_ms", &["at least 1"]);
    h("down_after = 0").fails("health.down_after", &["at least 1"]);
    let cfg = h("interval_ms = 1\ntimeout_ms = 1\ndown_after = 1").ok();
    assert_eq!((cfg.health.interval_ms, cfg.health.timeout_ms, cfg.health.down_after), (1, 1, 1));
}

#[test]
fn users_required_and_unique() {
    Doc { users: "", ..Doc::default() }.fails("users", &["at least one [[users]]"]);
    let users = format!("{USERS}[[users]]\nname = \"app\"\npassword = \"x\"\n");
    Doc { users: &users, ..Doc::default() }.fails("users[1].name", &["\"app\"", "users[0]", "unique"]);
    // MySQL user names are case-sensitive.
    let users = format!("{USERS}[[users]]\nname = \"App\"\npassword = \"x\"\n");
    assert_eq!(Doc { users: &users, ..Doc::default() }.ok().users.len(), 2);
    Doc { users: "[[users]]\nname = \"\"\npassword = \"x\"", ..Doc::default() }.fails("users[0].name", &["empty"]);
}

#[test]
fn users_password_xor_hash() {
    let u = |users| Doc { users, ..Doc::default() };
    u("[[users]]\nname = \"a\"").fails("users[0]", &["password or password_hash"]);
    u("[[users]]\nname = \"a\"\npassword = \"x\"\npassword_hash = \"*0000000000000000000000000000000000000000\"")
        .fails("users[0]", &["both"]);
    u("[[users]]\nname = \"a\"\npassword = \"\"").fails("users[0].password", &["empty"]);
}

#[test]
fn users_password_hash_format() {
    fn u(users: &str) -> Doc<'_> {
        Doc { users, ..Doc::default() }
    }
    let bad = [
        "0000000000000000000000000000000000000000",   // no '*'
        "*000000000000000000000000000000000000000",   // 39 digits
        "*00000000000000000000000000000000000000000", // 41 digits
        "*g000000000000000000000000000000000000000",  // not hex
    ];
    for hash in bad {
        let users = format!("[[users]]\nname = \"a\"\npassword_hash = \"{hash}\"");
        u(&users).fails("users[0].password_hash", &["40 hex digits"]);
        let msg = parse(&u(&users).text()).unwrap_err().to_string();
        assert!(!msg.contains(hash), "the hash must not be echoed: {msg}");
    }
}

#[test]
fn stage2_hash_from_password_or_hash() {
    // SHA1(SHA1('app')), computed independently with Python's hashlib.
    let known = "5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3";
    let from_pw = Doc::default().ok().users["app"].stage2_hash;
    let hex: String = from_pw.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(hex, known);
    assert_eq!(stage2_hash(b"app"), from_pw);
    for hash in [known.to_string(), known.to_lowercase()] {
        let users = format!("[[users]]\nname = \"app\"\npassword_hash = \"*{hash}\"");
        let cfg = Doc { users: &users, ..Doc::default() }.ok();
        assert_eq!(cfg.users["app"].stage2_hash, from_pw);
        assert_eq!(cfg.users["app"].name, "app");
    }
}

const EXAMPLE: &str = include_str!("../../../conf/shardgate.toml");

#[test]
fn example_config_parses_and_validates() {
    let cfg = parse(EXAMPLE).unwrap_or_else(|e| panic!("conf/shardgate.toml: {e}"));
    assert_eq!(cfg.proxy.listen, "127.0.0.1:3307");
    assert_eq!(cfg.proxy.admin_listen.as_deref(), Some("127.0.0.1:9107"));
    assert_eq!(cfg.shards[cfg.default_shard].name, "s0");
    assert_eq!(cfg.users["app"].stage2_hash, stage2_hash(b"app"));
    assert_eq!(
        (cfg.backend.user.as_str(), cfg.backend.password.as_str(), cfg.backend.database.as_str()),
        ("app", "app", "app")
    );
    assert_eq!((cfg.backend.pool_size, cfg.backend.connect_timeout_ms), (32, 2000));
    assert_eq!(cfg.backend.flavor, Flavor::Mariadb);
    assert_eq!((cfg.health.interval_ms, cfg.health.timeout_ms, cfg.health.down_after), (500, 1000, 3));
    let shards: Vec<_> = cfg
        .shards
        .iter()
        .map(|s| (s.name.as_str(), s.primary.addr.as_str(), s.replicas.iter().map(|r| r.addr.as_str()).collect()))
        .collect();
    assert_eq!(
        shards,
        [("s0", "127.0.0.1:13306", vec!["127.0.0.1:13307"]), ("s1", "127.0.0.1:13308", vec!["127.0.0.1:13309"])]
    );
    assert!(cfg.shards.iter().all(|s| s.standby.is_none() && s.primary.zone.is_none()));
    assert_eq!(cfg.health.max_replica_lag_s, 10);
    assert_eq!(cfg.health.failover_buffer_ms, 5000);
    assert_eq!(cfg.shards[0].key_range, KeyRange { start: 0, end: Some(1 << 63) });
    assert_eq!(cfg.shards[1].key_range, KeyRange { start: 1 << 63, end: None });
    for name in ["users", "orders"] {
        let Some(TableRule::Sharded(t)) = cfg.table(name) else { panic!("{name} is not sharded") };
        assert_eq!((t.shard_key.as_str(), t.algorithm, t.key_type), ("user_id", Algorithm::Hash, KeyType::Int));
    }
    assert!(matches!(cfg.table("COUNTRIES"), Some(TableRule::Broadcast)));
    assert_eq!(cfg.tables.len(), 3);
}
