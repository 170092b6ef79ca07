//! TLS from shardgate to backends: which servers (those of shards with
//! `tls = true`) and the verifier (certificates must chain to
//! `backend.tls_ca`, and name the address connected to).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::config::Config;

/// The servers to reach over TLS, and how.
pub struct TlsPolicy {
    /// An error when the CA could not be loaded: those servers then fail to
    /// connect with it, never fall back to plain TCP.
    connector: Result<TlsConnector, String>,
    addrs: HashSet<String>,
}

impl std::fmt::Debug for TlsPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPolicy").field("addrs", &self.addrs).finish()
    }
}

impl TlsPolicy {
    /// The connector and server name for `addr`, when it is reached over TLS.
    pub fn for_addr(&self, addr: &str) -> Option<Result<(TlsConnector, ServerName<'static>), String>> {
        if !self.addrs.contains(addr) {
            return None;
        }
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_matches(['[', ']']);
        Some(match (&self.connector, ServerName::try_from(host.to_owned())) {
            (Ok(c), Ok(name)) => Ok((c.clone(), name)),
            (Err(e), _) => Err(e.clone()),
            (_, Err(e)) => Err(format!("{host} is not a valid TLS server name: {e}")),
        })
    }
}

fn connector(ca: &str) -> Result<TlsConnector, String> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca).map_err(|e| format!("backend.tls_ca = {ca:?}: {e}"))?;
    for c in certs {
        roots
            .add(c.map_err(|e| format!("backend.tls_ca = {ca:?}: {e}"))?)
            .map_err(|e| format!("backend.tls_ca = {ca:?}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("backend.tls_ca = {ca:?}: no certificate in the file"));
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The policy of `cfg` (`None` when no shard uses TLS). Connectors are built
/// once per CA file and reused by every login.
pub fn policy(cfg: &Config) -> Option<Arc<TlsPolicy>> {
    let addrs: HashSet<String> = cfg
        .shards
        .iter()
        .filter(|s| s.tls)
        .flat_map(|s| std::iter::once(&s.primary).chain(&s.standby).chain(&s.replicas))
        .map(|s| s.addr.clone())
        .collect();
    if addrs.is_empty() {
        return None;
    }
    let Some(ca) = cfg.backend.tls_ca.as_deref() else {
        return Some(Arc::new(TlsPolicy { connector: Err("backend.tls_ca is not set".into()), addrs }));
    };
    static CONNECTORS: OnceLock<Mutex<HashMap<String, TlsConnector>>> = OnceLock::new();
    let cache = CONNECTORS.get_or_init(Default::default);
    let existing = cache.lock().ok().and_then(|m| m.get(ca).cloned());
    let connector = match existing {
        Some(c) => Ok(c),
        None => connector(ca).inspect(|c| {
            if let Ok(mut m) = cache.lock() {
                m.insert(ca.to_owned(), c.clone());
            }
        }),
    };
    Some(Arc::new(TlsPolicy { connector, addrs }))
}

/// Startup check: the CA loads when a shard needs it.
pub fn check(cfg: &Config) -> Result<(), String> {
    match policy(cfg) {
        Some(p) => p.connector.as_ref().map(|_| ()).map_err(Clone::clone),
        None => Ok(()),
    }
}
