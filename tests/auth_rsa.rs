//! caching_sha2_password full authentication without TLS: the RSA public key
//! exchange, spoken byte by byte (so the test sees every step), against a key
//! pair given in the config; and a real driver doing the same.

mod support;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use support::proxy::Proxy;
use support::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// PASSWORD('app'): an account known only by its mysql_native_password hash,
/// so a caching_sha2_password login cannot use the fast path.
const APP_HASH: &str = "*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3";

async fn read_packet(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await.expect("packet header");
    let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.expect("packet body");
    (h[3], body)
}

async fn write_packet(s: &mut TcpStream, seq: u8, body: &[u8]) {
    let mut p = (body.len() as u32).to_le_bytes();
    p[3] = seq;
    s.write_all(&p).await.unwrap();
    s.write_all(body).await.unwrap();
}

/// The 20-byte scramble of a HandshakeV10 packet.
fn scramble(hello: &[u8]) -> [u8; 20] {
    let version_end = 1 + hello[1..].iter().position(|&b| b == 0).unwrap();
    let part1 = version_end + 1 + 4;
    let mut salt = [0u8; 20];
    salt[..8].copy_from_slice(&hello[part1..part1 + 8]);
    // filler, caps low, charset, status, caps high, auth data length, 10 reserved.
    let part2 = part1 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
    salt[8..].copy_from_slice(&hello[part2..part2 + 12]);
    salt
}

/// HandshakeResponse41 for `user`, no database, plugin caching_sha2_password.
fn login(user: &str, auth: &[u8]) -> Vec<u8> {
    const CAPS: u32 = 0x0000_0200 | 0x0000_8000 | 0x0008_0000 | 0x0000_0001; // PROTOCOL_41, SECURE_CONN, PLUGIN_AUTH, LONG_PASSWORD
    let mut b = Vec::new();
    b.extend_from_slice(&CAPS.to_le_bytes());
    b.extend_from_slice(&(16u32 << 20).to_le_bytes());
    b.push(45);
    b.extend_from_slice(&[0; 23]);
    b.extend_from_slice(user.as_bytes());
    b.push(0);
    b.push(auth.len() as u8);
    b.extend_from_slice(auth);
    b.extend_from_slice(b"caching_sha2_password\0");
    b
}

/// Log in as `user` with `password` the way MySQL clients do without TLS:
/// wrong scramble → "perform full authentication" → ask for the key →
/// send the password encrypted with it. Returns the PEM received and the final packet.
async fn rsa_login(addr: std::net::SocketAddr, user: &str, password: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (_, hello) = read_packet(&mut s).await;
    let salt = scramble(&hello);
    write_packet(&mut s, 1, &login(user, &[0x55; 32])).await;
    let (seq, more) = read_packet(&mut s).await;
    assert_eq!(more, [0x01, 0x04], "perform full authentication");
    write_packet(&mut s, seq + 1, &[0x02]).await;
    let (seq, key) = read_packet(&mut s).await;
    assert_eq!(key[0], 0x01, "AuthMoreData with the public key");
    let pem = String::from_utf8(key[1..].to_vec()).unwrap();
    let public = RsaPublicKey::from_public_key_pem(&pem).expect("an RSA public key in PEM");
    let mut plain: Vec<u8> = password.bytes().chain([0]).collect();
    for (i, b) in plain.iter_mut().enumerate() {
        *b ^= salt[i % 20];
    }
    let ct = public.encrypt(&mut rsa::rand_core::OsRng, Oaep::new::<sha1::Sha1>(), &plain).unwrap();
    write_packet(&mut s, seq + 1, &ct).await;
    let (_, last) = read_packet(&mut s).await;
    (pem, last)
}

#[tokio::test]
async fn full_authentication_with_the_rsa_key_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let key_path = dir.path().join("rsa.pem");
    std::fs::write(&key_path, key.to_pkcs1_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    let cfg = Cluster::shared()
        .shardgate_config("")
        .replacen(
            "[proxy]\n",
            &format!(
                "[proxy]\nauth_plugin = \"caching_sha2_password\"\nrsa_private_key = \"{}\"\n",
                key_path.display()
            ),
            1,
        )
        .replacen(
            "[[users]]\n",
            &format!("[[users]]\nname = \"hashed\"\npassword_hash = \"{APP_HASH}\"\n\n[[users]]\n"),
            1,
        );
    let proxy = Proxy::start(&cfg);

    let (pem, ok) = rsa_login(proxy.addr, "hashed", "app").await;
    assert_eq!(pem, key.to_public_key().to_public_key_pem(LineEnding::LF).unwrap(), "the configured key is served");
    assert_eq!(ok[0], 0x00, "OK after the right password: {ok:?}");

    let (_, err) = rsa_login(proxy.addr, "hashed", "wrong").await;
    assert_eq!(err[0], 0xff, "ERR after a wrong password: {err:?}");
    assert_eq!(u16::from_le_bytes([err[1], err[2]]), 1045);
    let (_, err) = rsa_login(proxy.addr, "nobody", "app").await;
    assert_eq!(u16::from_le_bytes([err[1], err[2]]), 1045, "unknown account");

    // A real driver (mysql_async asks for the key and encrypts, as libmysqlclient does).
    let opts = proxy.opts().user(Some("hashed")).pass(Some("app"));
    let mut c = Conn::new(Opts::from(opts)).await.expect("mysql_async full authentication over RSA");
    let one: Option<u8> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    match Conn::new(Opts::from(proxy.opts().user(Some("hashed")).pass(Some("nope")))).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045),
        other => panic!("expected 1045, got {other:?}"),
    }
}

#[tokio::test]
async fn a_generated_key_serves_when_none_is_configured() {
    let cfg = Cluster::shared()
        .shardgate_config("")
        .replacen("[proxy]\n", "[proxy]\nauth_plugin = \"caching_sha2_password\"\n", 1)
        .replacen("name = \"app\"\npassword = \"app\"", &format!("name = \"app\"\npassword_hash = \"{APP_HASH}\""), 1);
    let proxy = Proxy::start(&cfg);
    let (pem, ok) = rsa_login(proxy.addr, "app", "app").await;
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    assert_eq!(ok[0], 0x00, "OK: {ok:?}");
    // The same key for every login of this process.
    let (again, _) = rsa_login(proxy.addr, "app", "app").await;
    assert_eq!(pem, again);
}
