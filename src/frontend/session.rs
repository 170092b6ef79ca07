//! One client connection: handshake, authentication, then the command loop.
//! Statement execution lives in the sibling modules; this file owns the
//! session's state and the protocol-level commands.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mysql_common::collations::{Collation, CollationId};
use mysql_common::constants::CapabilityFlags;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::errors::{Failure, MyErr};
use super::prepared::ProxyStmt;
use super::txn::{Held, Tx};
use super::{SessionHandle, Shared};
use crate::backend::conn::class_of;
use crate::backend::state::SessionVars;
use crate::protocol::command;
use crate::protocol::handshake::{self, ClientHello};
use crate::protocol::packet::{PacketError, PacketReader, PacketWriter};
use crate::protocol::wire::{self, OkInfo};
use crate::router::SessionView;

/// Flush the client buffer once this much is pending during a relay.
pub const FLUSH_AT: usize = 64 * 1024;

pub struct Session {
    pub(crate) id: u32,
    pub(crate) shared: Arc<Shared>,
    pub(crate) handle: Arc<SessionHandle>,
    pub(crate) rd: PacketReader<OwnedReadHalf>,
    pub(crate) wr: PacketWriter<OwnedWriteHalf>,
    pub(crate) peer: SocketAddr,
    pub(crate) caps: CapabilityFlags,
    /// Capability class: which pooled backend connections this client may use.
    pub(crate) class: u32,
    pub(crate) deprecate_eof: bool,
    pub(crate) user: String,
    pub(crate) salt: [u8; 20],
    /// Current schema (USE); `None` when the client selected none.
    pub(crate) schema: Option<String>,
    /// Tracked session variables, replayed on every backend connection used.
    pub(crate) vars: Arc<SessionVars>,
    /// Variables at login (the handshake character set), for COM_RESET_CONNECTION.
    pub(crate) login_vars: Arc<SessionVars>,
    pub(crate) autocommit: bool,
    /// An explicit transaction (BEGIN) is open.
    pub(crate) tx: Option<Tx>,
    /// `tx` is the implicit XA transaction of one autocommit statement that
    /// writes several shards: its status flags never show a transaction.
    pub(crate) implicit_xa: bool,
    /// `SET TRANSACTION …` for the next transaction only.
    pub(crate) next_tx: Option<String>,
    /// Backend connections held by this session (transaction or pinned state).
    pub(crate) held: Vec<Held>,
    /// The session holds connection-bound state: keep its primary connections.
    pub(crate) pinned: bool,
    pub(crate) stmts: HashMap<u32, ProxyStmt>,
    pub(crate) next_stmt_id: u32,
    /// Sequence id of the next packet to the client.
    pub(crate) seq: u8,
    pub(crate) max_packet: usize,
    /// The last OK the client saw (affected rows, insert id, warnings).
    pub(crate) last_ok: OkInfo,
    pub(crate) attributes: Vec<(String, String)>,
}

impl Session {
    /// Serve one client until it quits or fails.
    pub async fn run(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
        let id = shared.new_conn_id();
        let handle = Arc::new(SessionHandle { kill: tokio::sync::Notify::new(), running: std::sync::Mutex::new(None) });
        if let Ok(mut map) = shared.sessions.lock() {
            map.insert(id, handle.clone());
        }
        let (r, w) = stream.into_split();
        let cfg = shared.config.load();
        let mut session = Session {
            id,
            shared: shared.clone(),
            handle,
            rd: PacketReader::new(r),
            wr: PacketWriter::new(w),
            peer,
            caps: CapabilityFlags::empty(),
            class: 0,
            deprecate_eof: false,
            user: String::new(),
            salt: handshake::new_salt(),
            schema: None,
            vars: SessionVars::empty(),
            login_vars: SessionVars::empty(),
            autocommit: true,
            tx: None,
            implicit_xa: false,
            next_tx: None,
            held: Vec::new(),
            pinned: false,
            stmts: HashMap::new(),
            next_stmt_id: 1,
            seq: 0,
            max_packet: cfg.proxy.max_allowed_packet as usize,
            last_ok: OkInfo::default(),
            attributes: Vec::new(),
        };
        // A client that never finishes logging in must not hold a connection
        // slot forever (MySQL's connect_timeout is 10 s too).
        let login_timeout = std::time::Duration::from_millis(cfg.proxy.login_timeout_ms);
        drop(cfg); // a session must not pin a config snapshot for its whole life
        match tokio::time::timeout(login_timeout, session.handshake()).await {
            Ok(Ok(true)) => session.command_loop().await,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::debug!(conn = id, error = %e, "handshake failed"),
            Err(_) => tracing::debug!(conn = id, "handshake timed out"),
        }
        session.close_backends();
        let _ = session.wr.flush().await;
        if let Ok(mut map) = shared.sessions.lock() {
            map.remove(&id);
        }
    }

    /// The connection phase. `Ok(true)`: logged in.
    async fn handshake(&mut self) -> Result<bool, PacketError> {
        let version = self.shared.server_version.load();
        let hs = handshake::server_handshake(self.id, &self.salt, &version, 45);
        self.seq = 0;
        self.wr.push(&mut self.seq, &hs);
        self.wr.flush().await?;
        let (seq, payload) = self.rd.next_payload(64 * 1024).await?;
        self.seq = seq.wrapping_add(1);
        let hello = match handshake::parse_client_hello(&payload) {
            Ok(h) => h,
            Err(e) => {
                self.send_err(&MyErr::new(1043, "08S01", format!("Bad handshake: {e}")));
                self.wr.flush().await?;
                return Ok(false);
            }
        };
        let cfg = self.shared.config.load();
        let mut auth = hello.auth_response.clone();
        if hello.auth_plugin.as_deref().is_some_and(|p| p != handshake::NATIVE_PASSWORD) {
            // e.g. a MySQL 8 client defaulting to caching_sha2_password: ask for native.
            self.wr.push(&mut self.seq, &handshake::auth_switch_request(&self.salt));
            self.wr.flush().await?;
            let (seq, p) = self.rd.next_payload(64 * 1024).await?;
            self.seq = seq.wrapping_add(1);
            auth = p.to_vec();
        }
        let ok =
            cfg.users.get(&hello.user).is_some_and(|u| handshake::verify_native(&self.salt, &auth, &u.stage2_hash));
        if !ok {
            self.shared.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
            tracing::info!(conn = self.id, user = %hello.user, peer = %self.peer, "access denied");
            self.send_err(&MyErr::access_denied(&hello.user, &self.peer.ip().to_string(), !auth.is_empty()));
            self.wr.flush().await?;
            return Ok(false);
        }
        if self.shared.clients.load(Ordering::Relaxed) > cfg.proxy.max_connections as usize {
            self.send_err(&MyErr::too_many_connections(cfg.proxy.max_connections));
            self.wr.flush().await?;
            return Ok(false);
        }
        self.apply_hello(&hello);
        if let Some(db) = hello.database.clone() {
            if let Err(e) = self.use_database(&db).await {
                let e = match e {
                    Failure::Err(e) => e,
                    Failure::Close(_) => return Ok(false),
                };
                self.send_err(&e);
                self.wr.flush().await?;
                return Ok(false);
            }
        }
        self.send_ok(OkInfo::default());
        self.wr.flush().await?;
        tracing::debug!(conn = self.id, user = %self.user, peer = %self.peer, "logged in");
        Ok(true)
    }

    fn apply_hello(&mut self, hello: &ClientHello) {
        self.caps = hello.capabilities & handshake::server_capabilities();
        self.class = class_of(self.caps);
        self.deprecate_eof = self.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
        self.user = hello.user.clone();
        self.attributes = hello.attributes.clone();
        let mut vars = SessionVars::default();
        if hello.collation != 45 && hello.collation != 0 {
            let c = Collation::resolve(CollationId::from(u16::from(hello.collation)));
            if c.id() != CollationId::UNKNOWN_COLLATION_ID {
                vars.names = Some(format!("{} COLLATE {}", c.charset(), c.collation()));
            }
        }
        self.login_vars = if vars == SessionVars::default() { SessionVars::empty() } else { Arc::new(vars) };
        self.vars = self.login_vars.clone();
    }

    async fn command_loop(&mut self) {
        loop {
            let read = tokio::select! {
                r = self.rd.next_payload(self.max_packet) => r,
                // KILL from another session while this one is idle: close, as MySQL does.
                _ = self.handle.kill.notified() => return,
            };
            let payload = match read {
                Ok((seq, p)) => {
                    self.seq = seq.wrapping_add(1);
                    p
                }
                Err(PacketError::TooLarge { limit, .. }) => {
                    self.seq = self.seq.wrapping_add(1);
                    self.send_err(&MyErr::packet_too_large(limit));
                    let _ = self.wr.flush().await;
                    return;
                }
                Err(_) => return,
            };
            let Some(&cmd) = payload.first() else {
                self.send_err(&MyErr::malformed("empty command packet"));
                let _ = self.wr.flush().await;
                return;
            };
            if cmd == command::QUIT {
                return;
            }
            let result = self.dispatch(cmd, &payload[1..]).await;
            match result {
                Ok(()) => {}
                Err(Failure::Err(e)) => self.send_err(&e),
                Err(Failure::Close(reason)) => {
                    tracing::debug!(conn = self.id, %reason, "closing client");
                    let _ = self.wr.flush().await;
                    return;
                }
            }
            if self.wr.flush().await.is_err() {
                return;
            }
            self.rd.shrink();
        }
    }

    async fn dispatch(&mut self, cmd: u8, body: &[u8]) -> Result<(), Failure> {
        match cmd {
            command::QUERY => self.com_query(body).await,
            command::INIT_DB => {
                let db = String::from_utf8_lossy(body).into_owned();
                self.use_database(&db).await?;
                self.send_ok(OkInfo::default());
                Ok(())
            }
            command::PING => {
                self.send_ok(OkInfo::default());
                Ok(())
            }
            command::FIELD_LIST => self.com_field_list(body).await,
            command::STATISTICS => {
                let mut seq = self.seq;
                let text = format!("Uptime: 0  Threads: {}  shardgate", self.shared.clients.load(Ordering::Relaxed));
                self.wr.push(&mut seq, text.as_bytes());
                self.seq = seq;
                Ok(())
            }
            command::STMT_PREPARE => self.com_stmt_prepare(body).await,
            command::STMT_EXECUTE => self.com_stmt_execute(body).await,
            command::STMT_SEND_LONG_DATA => self.com_stmt_send_long_data(body),
            command::STMT_CLOSE => {
                self.com_stmt_close(body);
                Ok(())
            }
            command::STMT_RESET => self.com_stmt_reset(body),
            command::STMT_FETCH => Err(MyErr::not_supported(
                "shardgate does not support server-side cursors (COM_STMT_FETCH) yet; fetch the whole result (e.g. useCursorFetch=false)",
            )
            .into()),
            command::SET_OPTION => self.com_set_option(body),
            command::RESET_CONNECTION => {
                self.reset_session();
                self.send_ok(OkInfo::default());
                Ok(())
            }
            command::CHANGE_USER => self.com_change_user(body).await,
            other => Err(MyErr::unknown_command(other).into()),
        }
    }

    /// The router's view of this session.
    pub(crate) fn view(&self) -> SessionView<'_> {
        SessionView {
            in_transaction: self.in_transaction(),
            autocommit: self.autocommit,
            pinned: self.pinned,
            database: self.schema.as_deref(),
            catalog: None,
        }
    }

    /// A transaction is open: explicit, or implicit under autocommit=0.
    pub(crate) fn in_transaction(&self) -> bool {
        self.tx.is_some() || self.held.iter().any(|h| h.conn.in_transaction())
    }

    /// Server status flags as this session's client should see them.
    pub(crate) fn status(&self) -> u16 {
        let mut s = 0;
        if self.autocommit {
            s |= wire::STATUS_AUTOCOMMIT;
        }
        if self.in_transaction() {
            s |= wire::STATUS_IN_TRANS;
        }
        s
    }

    pub(crate) fn send_ok(&mut self, mut ok: OkInfo) {
        ok.status = (ok.status & !(wire::STATUS_AUTOCOMMIT | wire::STATUS_IN_TRANS)) | self.status();
        self.last_ok = ok;
        let mut seq = self.seq;
        self.wr.push_with(&mut seq, |b| wire::put_ok(b, &ok, false, b""));
        self.seq = seq;
    }

    pub(crate) fn send_err(&mut self, e: &MyErr) {
        let mut seq = self.seq;
        self.wr.push_with(&mut seq, |b| wire::put_err(b, e.code, &e.sqlstate, &e.message));
        self.seq = seq;
    }

    /// COM_SET_OPTION: multi-statements on (0) or off (1).
    fn com_set_option(&mut self, body: &[u8]) -> Result<(), Failure> {
        match body.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]])) {
            Some(0) => self.caps.insert(CapabilityFlags::CLIENT_MULTI_STATEMENTS),
            Some(1) => self.caps.remove(CapabilityFlags::CLIENT_MULTI_STATEMENTS),
            _ => return Err(MyErr::malformed("COM_SET_OPTION").into()),
        }
        self.class = class_of(self.caps);
        // The server answers with an EOF packet (an OK with the 0xFE header under DEPRECATE_EOF).
        let status = self.status();
        let deprecate = self.deprecate_eof;
        let mut seq = self.seq;
        self.wr.push_with(&mut seq, |b| {
            if deprecate {
                wire::put_ok(b, &OkInfo { status, ..OkInfo::default() }, true, b"")
            } else {
                wire::put_eof(b, 0, status)
            }
        });
        self.seq = seq;
        Ok(())
    }

    /// Forget everything the client set up: transaction, pinned connections,
    /// variables, prepared statements (COM_RESET_CONNECTION, COM_CHANGE_USER).
    pub(crate) fn reset_session(&mut self) {
        self.close_backends();
        self.tx = None;
        self.next_tx = None;
        self.pinned = false;
        self.vars = self.login_vars.clone();
        self.autocommit = true;
        self.stmts.clear();
        self.last_ok = OkInfo::default();
    }

    /// Drop held backend connections. Those mid-transaction or holding session
    /// state are closed (the server rolls back and forgets); never pooled dirty.
    pub(crate) fn close_backends(&mut self) {
        for h in self.held.drain(..) {
            drop(h.conn);
        }
    }

    /// COM_CHANGE_USER: re-authenticate against the configured users.
    async fn com_change_user(&mut self, body: &[u8]) -> Result<(), Failure> {
        let mut pos = 0;
        let user = wire::get_null_str(body, &mut pos).map(|u| String::from_utf8_lossy(u).into_owned());
        let auth = body
            .get(pos)
            .and_then(|&n| body.get(pos + 1..pos + 1 + usize::from(n)).map(|a| (a.to_vec(), 1 + usize::from(n))));
        let (Some(user), Some((mut auth, used))) = (user, auth) else {
            return Err(Failure::Close("malformed COM_CHANGE_USER".into()));
        };
        pos += used;
        let db = wire::get_null_str(body, &mut pos)
            .filter(|d| !d.is_empty())
            .map(|d| String::from_utf8_lossy(d).into_owned());
        let charset = body.get(pos..pos + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        pos += 2;
        let plugin = wire::get_null_str(body, &mut pos).map(|p| String::from_utf8_lossy(p).into_owned());
        if plugin.as_deref().is_some_and(|p| p != handshake::NATIVE_PASSWORD) {
            self.wr.push(&mut self.seq, &handshake::auth_switch_request(&self.salt));
            self.wr.flush().await.map_err(|e| Failure::Close(e.to_string()))?;
            let (seq, p) = self.rd.next_payload(64 * 1024).await.map_err(|e| Failure::Close(e.to_string()))?;
            self.seq = seq.wrapping_add(1);
            auth = p.to_vec();
        }
        let cfg = self.shared.config.load();
        let ok = cfg.users.get(&user).is_some_and(|u| handshake::verify_native(&self.salt, &auth, &u.stage2_hash));
        if !ok {
            self.shared.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
            self.send_err(&MyErr::access_denied(&user, &self.peer.ip().to_string(), !auth.is_empty()));
            return Err(Failure::Close("COM_CHANGE_USER with wrong credentials".into()));
        }
        self.reset_session();
        self.user = user;
        self.schema = None;
        if let Some(cs) = charset {
            let c = Collation::resolve(CollationId::from(cs));
            let mut vars = SessionVars::default();
            if cs != 45 && c.id() != CollationId::UNKNOWN_COLLATION_ID {
                vars.names = Some(format!("{} COLLATE {}", c.charset(), c.collation()));
            }
            self.login_vars = if vars == SessionVars::default() { SessionVars::empty() } else { Arc::new(vars) };
            self.vars = self.login_vars.clone();
        }
        if let Some(db) = db {
            self.use_database(&db).await?;
        }
        self.send_ok(OkInfo::default());
        Ok(())
    }
}
