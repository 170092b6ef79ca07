//! Checking a client's credentials: at login and on COM_CHANGE_USER.
//! mysql_native_password against SHA1(SHA1(password)); caching_sha2_password
//! on its fast path against SHA256(SHA256(password)) when the config holds the
//! password, else by full authentication (the password over TLS, or RSA
//! encrypted with the proxy's key, [`super::rsa_auth`]) against the native hash.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use mysql_common::collations::{Collation, CollationId};

use super::errors::{Failure, MyErr};
use super::rsa_auth;
use super::session::{names_for, Session};
use crate::backend::state::SessionVars;
use crate::protocol::handshake;
use crate::protocol::packet::PacketError;
use crate::protocol::wire::{self, OkInfo};

impl Session {
    /// Check a login's credentials. `auth` is the response computed for
    /// `plugin` with this session's salt. caching_sha2_password is verified on
    /// its fast path (the proxy knows SHA256(SHA256(password)) for users whose
    /// config holds the password) and confirmed with "fast auth success";
    /// anything else is switched to mysql_native_password. Returns whether the
    /// credentials hold, and the response that was checked.
    pub(crate) async fn authenticate(
        &mut self,
        user: &str,
        plugin: &str,
        mut auth: Vec<u8>,
    ) -> Result<(bool, Vec<u8>), PacketError> {
        let cfg = self.shared.config.load();
        let account = cfg.users.get(user);
        if plugin == handshake::CACHING_SHA2 {
            if let Some(stage2) = account.and_then(|u| u.sha256_stage2) {
                let ok = handshake::verify_caching_sha2(&self.salt, &auth, &stage2);
                if ok {
                    self.wr.push(&mut self.seq, &handshake::FAST_AUTH_SUCCESS);
                }
                return Ok((ok, auth));
            }
            // Full authentication, checked against the account's mysql_native_password
            // hash: over TLS the client sends the password itself; without, encrypted
            // with the proxy's RSA public key (which it may ask for first).
            self.wr.push(&mut self.seq, &handshake::PERFORM_FULL_AUTH);
            self.wr.flush().await?;
            let (seq, p) = self.rd.next_payload(64 * 1024).await?;
            self.seq = seq.wrapping_add(1);
            let password = if self.tls {
                p.strip_suffix(&[0]).unwrap_or(&p).to_vec()
            } else {
                self.rsa_password(p.to_vec()).await?
            };
            let ok = !password.is_empty()
                && account.is_some_and(|u| handshake::same_hash(&handshake::stage2_hash(&password), &u.stage2_hash));
            return Ok((ok, if password.is_empty() { p.to_vec() } else { password }));
        }
        if plugin != handshake::NATIVE_PASSWORD {
            // Another plugin, or caching_sha2 for an account known only by its
            // mysql_native_password hash: ask for a native scramble.
            self.wr.push(&mut self.seq, &handshake::auth_switch_request(&self.salt));
            self.wr.flush().await?;
            let (seq, p) = self.rd.next_payload(64 * 1024).await?;
            self.seq = seq.wrapping_add(1);
            auth = p.to_vec();
        }
        let ok = account.is_some_and(|u| handshake::verify_native(&self.salt, &auth, &u.stage2_hash));
        Ok((ok, auth))
    }

    /// The password of a caching_sha2_password full authentication without TLS:
    /// send the public key if the client asks for it (`first` is the byte 2,
    /// or sha256_password's 1), then decrypt what it sends. Empty when it
    /// does not decrypt, or no key pair can be had.
    async fn rsa_password(&mut self, first: Vec<u8>) -> Result<Vec<u8>, PacketError> {
        let ciphertext = if let [1 | rsa_auth::REQUEST_PUBLIC_KEY] = first[..] {
            let pair = match self.shared.rsa.get().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "no RSA key pair for a caching_sha2_password login without TLS");
                    return Ok(Vec::new());
                }
            };
            let mut more = Vec::with_capacity(1 + pair.public_pem.len());
            more.push(0x01); // AuthMoreData
            more.extend_from_slice(pair.public_pem.as_bytes());
            self.wr.push(&mut self.seq, &more);
            self.wr.flush().await?;
            let (seq, p) = self.rd.next_payload(64 * 1024).await?;
            self.seq = seq.wrapping_add(1);
            p.to_vec()
        } else {
            first
        };
        let Ok(pair) = self.shared.rsa.get().await else { return Ok(Vec::new()) };
        Ok(pair.decrypt_password(&ciphertext, &self.salt).unwrap_or_default())
    }

    /// COM_CHANGE_USER: re-authenticate against the configured users.
    pub(crate) async fn com_change_user(&mut self, body: &[u8]) -> Result<(), Failure> {
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
        let plugin = wire::get_null_str(body, &mut pos)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_else(|| handshake::NATIVE_PASSWORD.into());
        let (ok, checked) = self.authenticate(&user, &plugin, auth).await.map_err(|e| Failure::Close(e.to_string()))?;
        auth = checked;
        let tls_missing = !self.tls && self.shared.config.load().users.get(&user).is_some_and(|u| u.require_tls);
        if ok && tls_missing {
            self.shared.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
            let msg = format!("Access denied for user '{user}': this account requires TLS; connect with --ssl");
            self.send_err(&MyErr::new(1045, "28000", msg));
            return Err(Failure::Close("COM_CHANGE_USER to an account that requires TLS".into()));
        }
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
                vars.names = Some(names_for(c.charset(), c.collation(), &self.shared.config.load()));
            }
            self.login_vars = if vars == SessionVars::default() { SessionVars::empty() } else { Arc::new(vars) };
            self.vars = self.login_vars.clone();
            self.note_wait_timeout();
        }
        if let Some(db) = db {
            self.use_database(&db).await?;
        }
        self.send_ok(OkInfo::default());
        Ok(())
    }
}
