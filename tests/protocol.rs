//! Wire-protocol behaviour through shardgate with a real driver. Each of the
//! opensrv-mysql 0.7 defects we found is a regression test here.

mod support;

use mysql_async::prelude::Queryable;
use mysql_async::{ChangeUserOpts, Conn, Opts};
use support::proxy::{err_code, rows, unique, Proxy};
use support::Cluster;

fn proxy_with(extra_proxy_keys: &str) -> Proxy {
    let cfg = Cluster::shared().shardgate_config("");
    let cfg = cfg.replacen("[proxy]\n", &format!("[proxy]\n{extra_proxy_keys}\n"), 1);
    Proxy::start(&cfg)
}

/// COM_CHANGE_USER back to app/app on database app.
fn app_again() -> ChangeUserOpts {
    ChangeUserOpts::default()
        .with_user(Some("app".into()))
        .with_pass(Some("app".into()))
        .with_db_name(Some("app".into()))
}

#[tokio::test]
async fn change_user_with_a_wrong_password_is_refused() {
    let proxy = proxy_with("");
    let mut c = proxy.conn().await;
    let r =
        c.change_user(ChangeUserOpts::default().with_user(Some("app".into())).with_pass(Some("wrong".into()))).await;
    assert!(r.is_err(), "COM_CHANGE_USER with a wrong password must fail");
    let mut c = proxy.conn().await;
    c.change_user(app_again()).await.expect("right password");
    assert_eq!(rows(&mut c, "SELECT 1").await[0][0].as_deref(), Some("1"));
}

#[tokio::test]
async fn login_with_a_wrong_password_gets_1045() {
    let proxy = proxy_with("");
    let opts = proxy.opts().pass(Some("nope"));
    match Conn::new(Opts::from(opts)).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045),
        other => panic!("expected 1045, got {other:?}"),
    }
}

#[tokio::test]
async fn reset_connection_really_resets() {
    let proxy = proxy_with("");
    let mut c = proxy.conn().await;
    c.query_drop("SET @marker = 'before'").await.unwrap();
    c.reset().await.unwrap();
    assert_eq!(rows(&mut c, "SELECT @marker").await[0][0], None, "user variable gone after COM_RESET_CONNECTION");
}

#[tokio::test]
async fn multi_statements_with_deprecate_eof() {
    // mysql_async sets CLIENT_DEPRECATE_EOF: several result sets must not desync it.
    let proxy = proxy_with("");
    let mut c = proxy.conn().await;
    let mut r = c.query_iter("SELECT 1; SELECT 2, 3; SELECT 'x'").await.unwrap();
    let a: Vec<i64> = r.collect().await.unwrap();
    let b: Vec<(i64, i64)> = r.collect().await.unwrap();
    let x: Vec<String> = r.collect().await.unwrap();
    drop(r);
    assert_eq!((a, b, x), (vec![1], vec![(2, 3)], vec!["x".to_string()]));
    assert_eq!(rows(&mut c, "SELECT 4").await[0][0].as_deref(), Some("4"), "still in sync");
}

#[tokio::test]
async fn payloads_at_and_over_16mb() {
    let proxy = proxy_with("max_allowed_packet = 67108864");
    let mut c = proxy.conn().await;
    let t = unique("blob");
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, b LONGBLOB)")).await.unwrap();
    for len in [0xFF_FFFF - 40, 0xFF_FFFF, 17 * 1024 * 1024] {
        let data = vec![b'z'; len];
        c.exec_drop(format!("REPLACE INTO {t} VALUES (1, ?)"), (data.clone(),)).await.unwrap();
        let got: Option<Vec<u8>> =
            c.query_first(format!("SELECT /* shardgate:primary */ b FROM {t} WHERE id = 1")).await.unwrap();
        assert_eq!(got.map(|g| g.len()), Some(len), "round trip of {len} bytes");
    }
}

#[tokio::test]
async fn max_allowed_packet_is_enforced() {
    let proxy = proxy_with("max_allowed_packet = 1048576");
    let mut c = proxy.conn().await;
    let big = format!("SELECT '{}'", "a".repeat(2 * 1024 * 1024));
    match c.query_drop(big).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1153, "{}", e.message),
        Err(mysql_async::Error::Io(_)) | Err(mysql_async::Error::Driver(_)) => {} // closed after the error, as MySQL does
        other => panic!("expected 1153, got {other:?}"),
    }
    // Other clients are unaffected.
    let mut d = proxy.conn().await;
    assert_eq!(rows(&mut d, "SELECT 1").await[0][0].as_deref(), Some("1"));
}

#[tokio::test]
async fn column_metadata_is_the_backends() {
    let proxy = proxy_with("");
    let mut c = proxy.conn().await;
    let r = c
        .query_iter("SELECT CAST('2020-01-01 00:00:00.123456' AS DATETIME(6)) AS dt, _binary'ab' AS bin")
        .await
        .unwrap();
    let cols = r.columns().expect("columns");
    assert_eq!(cols[0].decimals(), 6, "DATETIME(6) keeps its precision");
    assert_eq!(cols[1].character_set(), 63, "binary charset");
    drop(r);
}

#[tokio::test]
async fn server_version_names_shardgate() {
    let proxy = proxy_with("");
    let c = proxy.conn().await;
    let v = c.server_version();
    assert_eq!(v.0, 10, "MariaDB 10.x behind the proxy");
    let hello = support::proxy::handshake_version(proxy.addr).await;
    assert!(hello.ends_with("-shardgate"), "{hello}");
}

#[tokio::test]
async fn garbage_from_one_client_hurts_nobody_else() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let proxy = proxy_with("");
    let mut good = proxy.conn().await;
    for junk in [&b"\x01\x00\x00\x00"[..], b"\xff\xff\xff\x00garbage", b"\x05\x00\x00\x01\x03SELE", b""] {
        let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        let mut hello = [0u8; 256];
        let _ = s.read(&mut hello).await;
        let _ = s.write_all(junk).await;
        drop(s);
    }
    // Unknown command after login gets an error, not a hang.
    let (code, _) = err_code(&mut good, "SELECT 1; SELEC").await;
    assert!(code > 0);
    assert_eq!(rows(&mut good, "SELECT 1").await[0][0].as_deref(), Some("1"));
}

#[tokio::test]
async fn com_field_list_and_unknown_commands() {
    use shardgate::protocol::{command, handshake, packet::PacketReader, packet::PacketWriter, wire};
    let proxy = proxy_with("");
    let t = unique("fields");
    proxy.conn().await.query_drop(format!("CREATE TABLE {t} (a INT, b VARCHAR(3))")).await.unwrap();
    // A raw client on our own codec: no driver exposes COM_FIELD_LIST.
    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (r, w) = stream.into_split();
    let (mut rd, mut wr) = (PacketReader::new(r), PacketWriter::new(w));
    let (seq, hello) = rd.next_payload(1 << 20).await.unwrap();
    let server = handshake::parse_server_hello(&hello).unwrap();
    let caps = mysql_common::constants::CapabilityFlags::CLIENT_PROTOCOL_41
        | mysql_common::constants::CapabilityFlags::CLIENT_SECURE_CONNECTION
        | mysql_common::constants::CapabilityFlags::CLIENT_PLUGIN_AUTH
        | mysql_common::constants::CapabilityFlags::CLIENT_LONG_FLAG;
    let resp = handshake::backend_hello(&server, "app", "app", "app", caps).unwrap();
    let mut s = seq + 1;
    wr.push(&mut s, &resp);
    wr.flush().await.unwrap();
    let (_, ok) = rd.next_payload(1 << 20).await.unwrap();
    assert_eq!(ok[0], wire::OK_HEADER, "logged in");
    let mut s = 0;
    wr.push(&mut s, &[&[command::FIELD_LIST][..], t.as_bytes(), &[0]].concat());
    wr.flush().await.unwrap();
    let mut names = Vec::new();
    loop {
        let (_, p) = rd.next_payload(1 << 20).await.unwrap();
        if wire::is_terminator(&p) {
            break;
        }
        assert_ne!(p[0], wire::ERR_HEADER, "field list failed: {:?}", wire::parse_err(&p));
        let mut pos = 0;
        for _ in 0..4 {
            wire::get_lenenc_str(&p, &mut pos);
        }
        names.push(String::from_utf8_lossy(wire::get_lenenc_str(&p, &mut pos).unwrap()).into_owned());
    }
    assert_eq!(names, vec!["a", "b"]);
    // An unknown command gets ER_UNKNOWN_COM_ERROR and the session goes on.
    let mut s = 0;
    wr.push(&mut s, &[0x55]);
    wr.flush().await.unwrap();
    let (_, p) = rd.next_payload(1 << 20).await.unwrap();
    assert_eq!(wire::parse_err(&p).unwrap().code, 1047);
    let mut s = 0;
    wr.push(&mut s, &[command::PING]);
    wr.flush().await.unwrap();
    let (_, p) = rd.next_payload(1 << 20).await.unwrap();
    assert_eq!(p[0], wire::OK_HEADER, "still alive after an unknown command");
}

#[tokio::test]
async fn a_client_that_never_logs_in_is_dropped() {
    use tokio::io::AsyncReadExt;
    let proxy = proxy_with("login_timeout_ms = 300");
    let mut silent = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = silent.read(&mut buf).await.unwrap();
    assert!(n > 0, "got the handshake");
    let started = std::time::Instant::now();
    // Say nothing: the proxy must close the connection after login_timeout_ms.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "connection closed, not kept: {closed:?}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    // Logging in normally still works.
    let mut c = proxy.conn().await;
    assert_eq!(rows(&mut c, "SELECT 1").await[0][0].as_deref(), Some("1"));
}

#[tokio::test]
async fn caching_sha2_password_fast_auth_and_switching() {
    let cluster = Cluster::shared();
    // Offered in the handshake: mysql_async answers with a caching_sha2 scramble.
    let proxy = proxy_with("auth_plugin = \"caching_sha2_password\"");
    let mut c = proxy.conn().await;
    assert_eq!(rows(&mut c, "SELECT 1").await[0][0].as_deref(), Some("1"), "fast auth success");
    match Conn::new(Opts::from(proxy.opts().pass(Some("nope")))).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045),
        other => panic!("expected 1045, got {other:?}"),
    }
    c.change_user(app_again()).await.expect("COM_CHANGE_USER under caching_sha2_password");
    assert_eq!(rows(&mut c, "SELECT 2").await[0][0].as_deref(), Some("2"));
    // An account known only by its mysql_native_password hash: full authentication, the
    // password RSA-encrypted with the proxy's key (mysql_async asks for it).
    let hash = "*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3"; // PASSWORD('app')
    let cfg = cluster
        .shardgate_config("")
        .replacen("[proxy]\n", "[proxy]\nauth_plugin = \"caching_sha2_password\"\n", 1)
        .replacen("name = \"app\"\npassword = \"app\"", &format!("name = \"app\"\npassword_hash = \"{hash}\""), 1);
    let hashed = Proxy::start(&cfg);
    let mut c = hashed.conn().await;
    assert_eq!(
        rows(&mut c, "SELECT 3").await[0][0].as_deref(),
        Some("3"),
        "full authentication with the RSA key exchange"
    );
    match Conn::new(Opts::from(hashed.opts().pass(Some("nope")))).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045),
        other => panic!("expected 1045, got {other:?}"),
    }
}

#[tokio::test]
async fn connection_attributes_show_on_the_admin_port() {
    let proxy = proxy_with("admin_listen = \"127.0.0.1:0\"");
    let opts = proxy.opts().connect_attribute("program_name", "attr-test");
    let mut c = Conn::new(Opts::from(opts)).await.unwrap();
    c.query_drop("SELECT 1").await.unwrap();
    let admin = proxy.admin_addr().expect("admin port");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(admin).await.unwrap();
    s.write_all(b"GET /sessions HTTP/1.0\r\nHost: x\r\n\r\n").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let sessions: serde_json::Value = serde_json::from_str(body).expect("a JSON array");
    let me = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["attributes"].to_string().contains("attr-test"))
        .unwrap_or_else(|| panic!("no session with program_name=attr-test in {body}"));
    assert_eq!(me["user"], "app");
    assert_eq!(me["tls"], false);
}
