//! Connection phase, both sides: the handshake shardgate sends to clients and
//! verifies (mysql_native_password), and the login shardgate performs against
//! backends. Packet layouts come from mysql_common.

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakePacket, HandshakeResponse};
use mysql_common::proto::{MyDeserialize, MySerialize};
use rand::Rng;
use sha1::{Digest, Sha1};

/// Auth plugins shardgate accepts from clients.
pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2: &str = "caching_sha2_password";

/// caching_sha2_password's "fast auth success": the scramble matched.
pub const FAST_AUTH_SUCCESS: [u8; 2] = [0x01, 0x03];
/// caching_sha2_password's "perform full authentication": send the password
/// (over TLS, as is).
pub const PERFORM_FULL_AUTH: [u8; 2] = [0x01, 0x04];

/// Constant-time equality of two hashes of one length.
pub fn same_hash(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Capabilities shardgate offers clients.
pub fn server_capabilities() -> CapabilityFlags {
    CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_FOUND_ROWS
        | CapabilityFlags::CLIENT_LONG_FLAG
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB
        | CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS
        | CapabilityFlags::CLIENT_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_CONNECT_ATTRS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CapabilityFlags::CLIENT_DEPRECATE_EOF
}

/// A fresh 20-byte salt of printable ASCII (some clients treat it as a C string).
pub fn new_salt() -> [u8; 20] {
    let mut rng = rand::rng();
    let mut salt = [0u8; 20];
    for b in &mut salt {
        *b = rng.random_range(0x21..0x7F);
    }
    salt
}

/// The initial handshake packet payload sent to a client.
/// `tls`: CLIENT_SSL is offered (a certificate is configured).
pub fn server_handshake(
    connection_id: u32,
    salt: &[u8; 20],
    version: &str,
    collation: u8,
    plugin: &str,
    tls: bool,
) -> Vec<u8> {
    let caps = if tls { server_capabilities() | CapabilityFlags::CLIENT_SSL } else { server_capabilities() };
    let mut scramble_1 = [0u8; 8];
    scramble_1.copy_from_slice(&salt[..8]);
    let mut scramble_2 = salt[8..].to_vec();
    scramble_2.push(0);
    let packet = HandshakePacket::new(
        10,
        version.as_bytes(),
        connection_id,
        scramble_1,
        Some(scramble_2),
        caps,
        collation,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(plugin.as_bytes()),
    );
    let mut out = Vec::with_capacity(128);
    packet.serialize(&mut out);
    out
}

/// What a client sent in its handshake response.
#[derive(Debug, Clone)]
pub struct ClientHello {
    pub capabilities: CapabilityFlags,
    pub collation: u8,
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
    pub attributes: Vec<(String, String)>,
}

/// Why a handshake response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    #[error("the client asked for TLS, which this shardgate does not offer (no proxy.tls_cert); connect without TLS (e.g. --ssl=0 / ssl-mode=DISABLED)")]
    TlsRequested,
    #[error("the client does not speak protocol 4.1; use a MySQL 4.1 or newer client")]
    OldProtocol,
    #[error("malformed handshake response")]
    Malformed,
}

/// A client's SSLRequest: the 32-byte start of a handshake response with CLIENT_SSL set.
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32
        && u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) & CapabilityFlags::CLIENT_SSL.bits()
            != 0
}

/// Parse a client's handshake response.
pub fn parse_client_hello(payload: &[u8]) -> Result<ClientHello, HelloError> {
    if payload.len() >= 4 {
        let caps = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
        if caps & CapabilityFlags::CLIENT_SSL.bits() != 0 && payload.len() == 32 {
            return Err(HelloError::TlsRequested);
        }
        if caps & CapabilityFlags::CLIENT_PROTOCOL_41.bits() == 0 {
            return Err(HelloError::OldProtocol);
        }
    }
    let resp = HandshakeResponse::deserialize((), &mut ParseBuf(payload)).map_err(|_| HelloError::Malformed)?;
    let mut attributes: Vec<(String, String)> = resp.connect_attributes().unwrap_or_default().into_iter().collect();
    attributes.sort();
    Ok(ClientHello {
        capabilities: resp.capabilities(),
        collation: resp.collation(),
        user: String::from_utf8_lossy(resp.user()).into_owned(),
        auth_response: resp.scramble_buf().to_vec(),
        database: resp.db_name().filter(|d| !d.is_empty()).map(|d| String::from_utf8_lossy(d).into_owned()),
        auth_plugin: resp.auth_plugin().map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned()),
        attributes,
    })
}

/// SHA1(SHA1(password)): what a server stores for mysql_native_password.
pub fn stage2_hash(password: &[u8]) -> [u8; 20] {
    let stage1: [u8; 20] = Sha1::digest(password).into();
    Sha1::digest(stage1).into()
}

/// Check a mysql_native_password scramble against the stored stage-2 hash.
/// An empty response matches only an empty password.
pub fn verify_native(salt: &[u8; 20], response: &[u8], stage2: &[u8; 20]) -> bool {
    if response.is_empty() {
        return *stage2 == stage2_hash(b"");
    }
    if response.len() != 20 {
        return false;
    }
    let mut h = Sha1::new();
    h.update(salt);
    h.update(stage2);
    let mask: [u8; 20] = h.finalize().into();
    let mut stage1 = [0u8; 20];
    for i in 0..20 {
        stage1[i] = response[i] ^ mask[i];
    }
    let check: [u8; 20] = Sha1::digest(stage1).into();
    same_hash(&check, stage2)
}

/// SHA256(SHA256(password)): what caching_sha2_password's fast path checks against.
pub fn sha256_stage2(password: &[u8]) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    let stage1: [u8; 32] = Sha256::digest(password).into();
    Sha256::digest(stage1).into()
}

/// Check a caching_sha2_password scramble, `SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce)`,
/// against SHA256(SHA256(pw)). An empty response matches only an empty password.
pub fn verify_caching_sha2(nonce: &[u8; 20], response: &[u8], stage2: &[u8; 32]) -> bool {
    use sha2::{Digest as _, Sha256};
    if response.is_empty() {
        return *stage2 == sha256_stage2(b"");
    }
    if response.len() != 32 {
        return false;
    }
    let mut h = Sha256::new();
    h.update(stage2);
    h.update(nonce);
    let mask: [u8; 32] = h.finalize().into();
    let mut stage1 = [0u8; 32];
    for i in 0..32 {
        stage1[i] = response[i] ^ mask[i];
    }
    let check: [u8; 32] = Sha256::digest(stage1).into();
    same_hash(&check, stage2)
}

/// An AuthSwitchRequest asking the client for a mysql_native_password scramble.
pub fn auth_switch_request(salt: &[u8; 20]) -> Vec<u8> {
    let mut out = Vec::with_capacity(44);
    out.push(0xFE);
    out.extend_from_slice(NATIVE_PASSWORD.as_bytes());
    out.push(0);
    out.extend_from_slice(salt);
    out.push(0);
    out
}

/// The parts of a backend's initial handshake a client login needs.
#[derive(Debug, Clone)]
pub struct ServerHello {
    pub version: String,
    pub version_tuple: (u16, u16, u16),
    pub connection_id: u32,
    pub capabilities: CapabilityFlags,
    pub nonce: Vec<u8>,
    pub auth_plugin: String,
    pub collation: u8,
}

/// Parse a backend's initial handshake.
pub fn parse_server_hello(payload: &[u8]) -> Option<ServerHello> {
    let hs = HandshakePacket::deserialize((), &mut ParseBuf(payload)).ok()?;
    Some(ServerHello {
        version: String::from_utf8_lossy(hs.server_version_ref()).into_owned(),
        version_tuple: hs.server_version_parsed().unwrap_or((5, 7, 0)),
        connection_id: hs.connection_id(),
        capabilities: hs.capabilities(),
        nonce: hs.nonce(),
        auth_plugin: hs
            .auth_plugin_name_str()
            .map(|s| s.trim_end_matches('\0').to_string())
            .unwrap_or_else(|| NATIVE_PASSWORD.into()),
        collation: hs.default_collation(),
    })
}

/// The scramble for `plugin`, or `None` if shardgate cannot log in with it.
pub fn scramble_for(plugin: &str, nonce: &[u8], password: &str) -> Option<Vec<u8>> {
    if password.is_empty() {
        return Some(Vec::new());
    }
    match plugin {
        NATIVE_PASSWORD => mysql_common::scramble::scramble_native(nonce, password.as_bytes()).map(|s| s.to_vec()),
        "caching_sha2_password" => {
            mysql_common::scramble::scramble_sha256(nonce, password.as_bytes()).map(|s| s.to_vec())
        }
        _ => None,
    }
}

/// The SSLRequest shardgate sends a backend before the TLS handshake: the
/// first 32 bytes of a handshake response (capabilities with CLIENT_SSL,
/// max packet, collation, 23 reserved bytes).
pub fn ssl_request(caps: CapabilityFlags, collation: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&caps.bits().to_le_bytes());
    out.extend_from_slice(&(1u32 << 30).to_le_bytes());
    out.push(collation);
    out.extend_from_slice(&[0; 23]);
    out
}

/// The handshake response shardgate sends to a backend.
pub fn backend_hello(
    server: &ServerHello,
    user: &str,
    password: &str,
    database: &str,
    caps: CapabilityFlags,
) -> Option<Vec<u8>> {
    let scramble = scramble_for(&server.auth_plugin, &server.nonce, password)?;
    let plugin = match server.auth_plugin.as_str() {
        "caching_sha2_password" => AuthPlugin::CachingSha2Password,
        _ => AuthPlugin::MysqlNativePassword,
    };
    let resp = HandshakeResponse::new(
        Some(scramble),
        server.version_tuple,
        Some(user.as_bytes()),
        Some(database.as_bytes()),
        Some(plugin),
        caps & server.capabilities,
        None,
        1 << 30,
    );
    let mut out = Vec::with_capacity(128);
    resp.serialize(&mut out);
    Some(out)
}
