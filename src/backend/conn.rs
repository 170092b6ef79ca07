//! One connection from shardgate to a MySQL server, on our own codec.
//!
//! The relay path reads raw frames from it ([`BackendConn::next_frame`]) and
//! copies them to the client; control operations (state sync, BEGIN/COMMIT,
//! PREPARE) are in [`super::control`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_common::constants::CapabilityFlags;
use tokio::net::TcpStream;

use super::state::SessionVars;
use super::stmt_cache::StmtCache;
use super::BackendError;
use crate::protocol::handshake::{self, ServerHello};
use crate::protocol::packet::{Frame, PacketError, PacketReader, PacketWriter};
use crate::protocol::stream::{StreamRead, StreamWrite};

type Tls = tokio_rustls::client::TlsStream<TcpStream>;
use crate::protocol::wire;

/// Client capability bits that change what a backend sends back, so a backend
/// connection only serves clients that agree on them (its "class").
pub const CLASS_BITS: CapabilityFlags = CapabilityFlags::CLIENT_DEPRECATE_EOF
    .union(CapabilityFlags::CLIENT_FOUND_ROWS)
    .union(CapabilityFlags::CLIENT_MULTI_STATEMENTS);

/// The capability class of a client: the [`CLASS_BITS`] it set.
pub fn class_of(client_caps: CapabilityFlags) -> u32 {
    (client_caps & CLASS_BITS).bits()
}

/// Largest packet we accept from a backend (MySQL's hard maximum).
pub const BACKEND_MAX_PACKET: usize = 1 << 30;

/// How shardgate logs in to backends.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub password: String,
    pub database: String,
    pub connect_timeout: Duration,
    /// Which servers are reached over TLS (shards with `tls = true`).
    pub tls: Option<Arc<super::tls::TlsPolicy>>,
}

pub struct BackendConn {
    pub(crate) rd: PacketReader<StreamRead<Tls>>,
    pub(crate) wr: PacketWriter<StreamWrite<Tls>>,
    /// The connection is TLS.
    pub tls: bool,
    pub addr: Arc<str>,
    /// The server's thread id for this connection (for KILL QUERY).
    pub thread_id: u32,
    pub server_version: String,
    /// Capability class (see [`class_of`]).
    pub class: u32,
    pub deprecate_eof: bool,
    /// Session variables currently applied on this connection.
    pub vars: Arc<SessionVars>,
    /// Current schema on this connection.
    pub schema: String,
    /// Status flags from the last OK/EOF the server sent.
    pub status: u16,
    /// Server-side prepared statements on this connection.
    pub stmts: StmtCache,
    pub last_used: Instant,
    /// Pool generation when opened; older generations are discarded.
    pub generation: u64,
    /// Set when the connection's state is unknown (I/O error, protocol error,
    /// abandoned response): it must be closed, never reused.
    pub broken: bool,
}

impl std::fmt::Debug for BackendConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendConn").field("addr", &self.addr).field("thread_id", &self.thread_id).finish()
    }
}

impl BackendConn {
    /// Connect and log in, all within `login.connect_timeout`.
    pub async fn connect(
        addr: Arc<str>,
        login: &Login,
        class: u32,
        generation: u64,
    ) -> Result<BackendConn, BackendError> {
        let timeout = login.connect_timeout;
        match tokio::time::timeout(timeout, Self::connect_inner(addr.clone(), login, class, generation)).await {
            Ok(r) => r,
            Err(_) => Err(BackendError::Connect {
                addr,
                reason: format!("no answer within connect_timeout_ms = {}", timeout.as_millis()),
            }),
        }
    }

    async fn connect_inner(
        addr: Arc<str>,
        login: &Login,
        class: u32,
        generation: u64,
    ) -> Result<BackendConn, BackendError> {
        let connect_err = |reason: String| BackendError::Connect { addr: addr.clone(), reason };
        let stream = TcpStream::connect(&*addr).await.map_err(|e| connect_err(e.to_string()))?;
        stream.set_nodelay(true).ok();
        let (r, w) = stream.into_split();
        let mut rd = PacketReader::new(StreamRead::Plain(r));
        let mut wr = PacketWriter::new(StreamWrite::Plain(w));
        let (seq, hello) = rd.next_payload(BACKEND_MAX_PACKET).await.map_err(|e| connect_err(e.to_string()))?;
        if hello.first() == Some(&wire::ERR_HEADER) {
            let err = wire::parse_err(&hello).map(|e| e.message).unwrap_or_default();
            return Err(connect_err(format!("server refused the connection: {err}")));
        }
        let server: ServerHello =
            handshake::parse_server_hello(&hello).ok_or_else(|| connect_err("malformed server handshake".into()))?;
        let caps = CapabilityFlags::CLIENT_LONG_PASSWORD
            | CapabilityFlags::CLIENT_LONG_FLAG
            | CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_TRANSACTIONS
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_MULTI_RESULTS
            | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
            | CapabilityFlags::CLIENT_CONNECT_WITH_DB
            | CapabilityFlags::from_bits_truncate(class);
        if class & CapabilityFlags::CLIENT_DEPRECATE_EOF.bits() != 0
            && !server.capabilities.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
        {
            return Err(connect_err(
                "server does not support CLIENT_DEPRECATE_EOF (MySQL 5.7+ / MariaDB 10.2+ required)".into(),
            ));
        }
        let mut wseq = seq.wrapping_add(1);
        let tls = match login.tls.as_ref().and_then(|p| p.for_addr(&addr)) {
            None => false,
            Some(Err(e)) => return Err(connect_err(format!("backend TLS: {e}"))),
            Some(Ok((connector, name))) => {
                if !server.capabilities.contains(CapabilityFlags::CLIENT_SSL) {
                    return Err(connect_err("the shard has tls = true but the server does not offer TLS".into()));
                }
                // SSLRequest, then the TLS handshake; the login continues inside it.
                let ssl = handshake::ssl_request(caps | CapabilityFlags::CLIENT_SSL, server.collation);
                wr.push(&mut wseq, &ssl);
                wr.flush().await.map_err(|e| connect_err(e.to_string()))?;
                let (StreamRead::Plain(r), _) = rd.into_parts() else { unreachable!("plain until now") };
                let StreamWrite::Plain(w) = wr.into_inner() else { unreachable!("plain until now") };
                let tcp = r.reunite(w).map_err(|e| connect_err(e.to_string()))?;
                let stream = connector.connect(name, tcp).await.map_err(|e| connect_err(format!("TLS: {e}")))?;
                let (r, w) = tokio::io::split(stream);
                rd = PacketReader::new(StreamRead::Tls(r));
                wr = PacketWriter::new(StreamWrite::Tls(w));
                true
            }
        };
        let caps = if tls { caps | CapabilityFlags::CLIENT_SSL } else { caps };
        let resp = handshake::backend_hello(&server, &login.user, &login.password, &login.database, caps)
            .ok_or_else(|| connect_err(format!("unsupported auth plugin {}", server.auth_plugin)))?;
        wr.push(&mut wseq, &resp);
        wr.flush().await.map_err(|e| connect_err(e.to_string()))?;
        // Auth result: OK, ERR, AuthSwitchRequest or AuthMoreData.
        loop {
            let (seq, p) = rd.next_payload(BACKEND_MAX_PACKET).await.map_err(|e| connect_err(e.to_string()))?;
            match p.first() {
                Some(&wire::OK_HEADER) => break,
                Some(&wire::ERR_HEADER) => {
                    let err = wire::parse_err(&p).map(|e| format!("{} ({})", e.message, e.code)).unwrap_or_default();
                    return Err(connect_err(format!("login as backend.user {:?} failed: {err}", login.user)));
                }
                Some(&0xFE) => {
                    let mut pos = 1;
                    let plugin = wire::get_null_str(&p, &mut pos).map(|s| String::from_utf8_lossy(s).into_owned()).unwrap_or_default();
                    let mut nonce = p[pos.min(p.len())..].to_vec();
                    if nonce.last() == Some(&0) {
                        nonce.pop();
                    }
                    let scramble = handshake::scramble_for(&plugin, &nonce, &login.password)
                        .ok_or_else(|| connect_err(format!("backend asked for unsupported auth plugin {plugin}")))?;
                    let mut s = seq.wrapping_add(1);
                    wr.push(&mut s, &scramble);
                    wr.flush().await.map_err(|e| connect_err(e.to_string()))?;
                }
                Some(&0x01) if p.get(1) == Some(&0x03) => continue, // caching_sha2 fast auth success
                Some(&0x01) if p.get(1) == Some(&0x04) && tls => {
                    // caching_sha2 full authentication: over TLS the password goes as is.
                    let mut s = seq.wrapping_add(1);
                    let mut pw = login.password.as_bytes().to_vec();
                    pw.push(0);
                    wr.push(&mut s, &pw);
                    wr.flush().await.map_err(|e| connect_err(e.to_string()))?;
                }
                Some(&0x01) => {
                    return Err(connect_err(
                        "caching_sha2_password full authentication needs TLS; give backend.user a mysql_native_password account".into(),
                    ))
                }
                _ => return Err(connect_err("unexpected packet during login".into())),
            }
        }
        Ok(BackendConn {
            rd,
            wr,
            tls,
            addr,
            thread_id: server.connection_id,
            server_version: server.version,
            class,
            deprecate_eof: class & CapabilityFlags::CLIENT_DEPRECATE_EOF.bits() != 0,
            vars: SessionVars::empty(),
            schema: login.database.clone(),
            status: wire::STATUS_AUTOCOMMIT,
            stmts: StmtCache::default(),
            last_used: Instant::now(),
            generation,
            broken: false,
        })
    }

    /// Queue a command packet (sequence id 0) without flushing.
    pub fn queue_command(&mut self, payload: &[u8]) {
        let mut seq = 0;
        self.wr.push(&mut seq, payload);
    }

    /// Queue a command whose payload is `cmd` followed by `body`.
    pub fn queue_command_parts(&mut self, cmd: u8, body: &[u8]) {
        let mut seq = 0;
        if body.len() + 1 < crate::protocol::packet::MAX_FRAME {
            self.wr.push_with(&mut seq, |b| {
                b.extend_from_slice(&[cmd]);
                b.extend_from_slice(body);
            });
        } else {
            let mut p = Vec::with_capacity(body.len() + 1);
            p.push(cmd);
            p.extend_from_slice(body);
            self.wr.push(&mut seq, &p);
        }
    }

    /// Send everything queued.
    pub async fn flush(&mut self) -> Result<(), BackendError> {
        let r = self.wr.flush().await;
        r.map_err(|e| self.io_error(e.into()))
    }

    /// Read the next raw frame of a response.
    pub async fn next_frame(&mut self) -> Result<Frame, BackendError> {
        let r = self.rd.next_frame().await;
        r.map_err(|e| self.io_error(e))
    }

    /// Length (header included) of the next frame once it is wholly buffered;
    /// the frame is then at the start of `rd.buffered_mut()`, and `rd.consume`
    /// drops it.
    pub async fn next_frame_len(&mut self) -> Result<usize, BackendError> {
        if let Some(n) = self.rd.buffered_frame_len() {
            return Ok(n);
        }
        let r = self.rd.fill_frame().await;
        r.map_err(|e| self.io_error(e))
    }

    /// Read the next whole payload of a response.
    pub async fn next_payload(&mut self) -> Result<bytes::BytesMut, BackendError> {
        let r = self.rd.next_payload(BACKEND_MAX_PACKET).await;
        r.map(|(_, p)| p).map_err(|e| self.io_error(e))
    }

    /// Mark broken and describe an I/O failure.
    pub fn io_error(&mut self, e: PacketError) -> BackendError {
        self.broken = true;
        BackendError::Lost { addr: self.addr.clone(), reason: e.to_string() }
    }

    /// Did the server close this idle connection, or send something unasked
    /// (e.g. a shutdown error)? One non-blocking read, no round trip.
    pub fn is_stale(&mut self) -> bool {
        if self.rd.buffered() > 0 {
            return true;
        }
        let mut probe = [0u8; 1];
        match self.rd.get_mut() {
            StreamRead::Plain(r) => {
                !matches!(r.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
            other => {
                // TLS: one poll without a waker; records the TLS layer handles itself
                // (session tickets) leave it pending, anything else means stale.
                use tokio::io::AsyncRead;
                let mut buf = tokio::io::ReadBuf::new(&mut probe);
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                !std::pin::Pin::new(other).poll_read(&mut cx, &mut buf).is_pending()
            }
        }
    }

    pub fn in_transaction(&self) -> bool {
        self.status & wire::STATUS_IN_TRANS != 0
    }
}
