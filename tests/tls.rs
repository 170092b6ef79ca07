//! Client-facing TLS: a certificate from the config, clients that connect
//! with TLS (the `mariadb` CLI with --ssl, PyMySQL with ssl), accounts that
//! require it, and clients that do not ask for it.

mod support;

use std::process::Command;

use support::proxy::{rows, Proxy};
use support::Cluster;

/// A self-signed certificate for 127.0.0.1 in `dir`: (cert path, key path).
fn certificate(dir: &std::path::Path) -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    (c.display().to_string(), k.display().to_string())
}

fn tls_proxy(dir: &std::path::Path, users: &str) -> Proxy {
    let (cert, key) = certificate(dir);
    let cfg = Cluster::shared()
        .shardgate_config("")
        .replacen("[proxy]\n", &format!("[proxy]\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"\n"), 1)
        .replacen("[[users]]\n", &format!("{users}\n[[users]]\n"), 1);
    Proxy::start(&cfg)
}

/// Runs the mariadb CLI against `proxy`; returns (success, stdout + stderr).
fn cli(proxy: &Proxy, user: &str, ssl: bool, sql: &str) -> (bool, String) {
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h127.0.0.1", &format!("-P{}", proxy.addr.port()), &format!("-u{user}"), "-papp", "-N", "-e", sql]);
    cmd.arg(if ssl { "--ssl" } else { "--skip-ssl" });
    if ssl {
        cmd.arg("--disable-ssl-verify-server-cert");
    }
    let out = cmd.output().expect("the mariadb client (installed by scripts/install-deps.sh)");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn clients_connect_with_tls_and_accounts_can_require_it() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = tls_proxy(dir.path(), "[[users]]\nname = \"secure\"\npassword = \"app\"\nrequire_tls = true\n");
    // The CLI over TLS: the session says so.
    let (ok, out) = cli(&proxy, "app", true, "SHOW SESSION STATUS LIKE 'Ssl_cipher'");
    assert!(ok, "{out}");
    let (ok, out) = cli(&proxy, "secure", true, "SELECT 'tls ok'");
    assert!(ok && out.contains("tls ok"), "{out}");
    // Without TLS: fine for app, refused for the account that requires it.
    let (ok, out) = cli(&proxy, "app", false, "SELECT 'plain ok'");
    assert!(ok && out.contains("plain ok"), "{out}");
    let (ok, out) = cli(&proxy, "secure", false, "SELECT 1");
    assert!(!ok && out.contains("1045") && out.contains("requires TLS"), "{out}");
    // A driver (mysql_async, plain) still works, and a wrong password over TLS is 1045.
    let mut c = proxy.conn().await;
    assert_eq!(rows(&mut c, "SELECT 7").await[0][0].as_deref(), Some("7"));
    let mut cmd = Command::new("mariadb");
    let out = cmd
        .args(["-h127.0.0.1", &format!("-P{}", proxy.addr.port()), "-uapp", "-pnope", "--ssl"])
        .args(["--disable-ssl-verify-server-cert", "-e", "SELECT 1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("1045"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_missing_key_or_a_bad_certificate_fails_at_startup_naming_the_key() {
    let cfg = Cluster::shared().shardgate_config("").replacen(
        "[proxy]\n",
        "[proxy]\ntls_cert = \"/nonexistent/cert.pem\"\n",
        1,
    );
    let e = shardgate::config::validate::parse(&cfg).unwrap_err().to_string();
    assert!(e.contains("proxy.tls_key"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let cfg = Cluster::shared().shardgate_config("").replacen(
        "[proxy]\n",
        &format!("[proxy]\ntls_cert = \"{0}\"\ntls_key = \"{0}\"\n", bad.display()),
        1,
    );
    let config = shardgate::config::validate::parse(&cfg).unwrap();
    let e = shardgate::frontend::tls::acceptor(&config).err().expect("a bad certificate is refused").to_string();
    assert!(e.contains("proxy.tls_cert"), "{e}");
}

fn backend_tls_config(ca: &str) -> String {
    Cluster::shared().shardgate_config("").replace("[[shards]]\n", "[[shards]]\ntls = true\n").replacen(
        "[backend]\n",
        &format!("[backend]\ntls_ca = \"{ca}\"\n"),
        1,
    )
}

#[tokio::test]
async fn backend_connections_use_tls_verified_against_the_ca() {
    let cluster = Cluster::shared();
    let ca = cluster.dir().join("tls/ca.pem");
    assert!(ca.exists(), "scripts/cluster.sh makes a test CA (needs openssl)");
    let proxy = Proxy::start(&backend_tls_config(&ca.display().to_string()));
    let mut c = proxy.conn().await;
    // The statement runs on the backend connection: its own TLS status.
    let r = rows(&mut c, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").await;
    assert!(r[0][1].as_deref().is_some_and(|v| !v.is_empty()), "backend connection not encrypted: {r:?}");
    let r = rows(&mut c, "SELECT /* shardgate:primary */ 1").await;
    assert_eq!(r[0][0].as_deref(), Some("1"));

    // Certificates that do not chain to the configured CA are refused, never used in the clear.
    let dir = tempfile::tempdir().unwrap();
    let (other_ca, _) = certificate(dir.path());
    let proxy = Proxy::start(&backend_tls_config(&other_ca));
    // Logging in with a database already needs a backend (USE): it fails, naming the reason.
    match mysql_async::Conn::new(mysql_async::Opts::from(proxy.opts())).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1429, "{}", e.message);
            assert!(e.message.contains("TLS") && e.message.contains("certificate"), "{}", e.message);
        }
        other => panic!("expected 1429 for an untrusted backend certificate, got {other:?}"),
    }
}

#[tokio::test]
async fn caching_sha2_full_authentication_over_tls_for_an_account_known_by_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    // PASSWORD('app'): shardgate cannot check a caching_sha2 scramble against it, so
    // over TLS it asks for the password itself (full authentication).
    let cfg = Cluster::shared()
        .shardgate_config("")
        .replacen(
            "[proxy]\n",
            &format!("[proxy]\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"\nauth_plugin = \"caching_sha2_password\"\n"),
            1,
        )
        .replacen(
            "[[users]]\n",
            "[[users]]\nname = \"hashed\"\npassword_hash = \"*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3\"\n\n[[users]]\n",
            1,
        );
    let proxy = Proxy::start(&cfg);
    let (ok, out) = cli(&proxy, "hashed", true, "SELECT 'full auth ok'");
    assert!(ok && out.contains("full auth ok"), "{out}");
    let (ok, out) = cli(&proxy, "hashed", false, "SELECT 'rsa key exchange'");
    assert!(ok && out.contains("rsa key exchange"), "without TLS (RSA public key exchange): {out}");
    let out = Command::new("mariadb")
        .args(["-h127.0.0.1", &format!("-P{}", proxy.addr.port()), "-uhashed", "-pnope", "--ssl"])
        .args(["--disable-ssl-verify-server-cert", "-e", "SELECT 1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("1045"), "{}", String::from_utf8_lossy(&out.stderr));
}
