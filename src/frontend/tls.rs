//! Client-facing TLS: the certificate from the config, the SSLRequest
//! upgrade in the connection phase, and the client stream that is either a
//! plain TCP half or a TLS half behind one type.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::protocol::stream::{StreamRead, StreamWrite};

/// The acceptor for `proxy.tls_cert` / `proxy.tls_key`, or `None` without TLS.
pub fn acceptor(cfg: &Config) -> io::Result<Option<TlsAcceptor>> {
    let (Some(cert), Some(key)) = (&cfg.proxy.tls_cert, &cfg.proxy.tls_key) else { return Ok(None) };
    let bad = |key: &str, path: &str, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("proxy.{key} = {path:?}: {e}"))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("tls_cert", cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("tls_cert", cert, &e))?;
    if certs.is_empty() {
        return Err(bad("tls_cert", cert, &"no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("tls_key", key, &e))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("tls_cert", cert, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| bad("tls_key", key, &e))?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// A TCP stream with bytes already read from it put back in front (the start
/// of a TLS ClientHello that arrived with the SSLRequest).
pub struct Prefixed {
    prefix: bytes::BytesMut,
    inner: TcpStream,
}

impl Prefixed {
    pub fn new(prefix: bytes::BytesMut, inner: TcpStream) -> Self {
        Prefixed { prefix, inner }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Tls = TlsStream<Prefixed>;

/// The read side of a client connection.
pub type ClientRead = StreamRead<Tls>;
/// The write side of a client connection.
pub type ClientWrite = StreamWrite<Tls>;

/// Upgrade a plain client connection: `buffered` are bytes read past the SSLRequest.
pub async fn upgrade(
    acceptor: &TlsAcceptor,
    rd: ClientRead,
    wr: ClientWrite,
    buffered: bytes::BytesMut,
) -> io::Result<(ClientRead, ClientWrite)> {
    let (StreamRead::Plain(r), StreamWrite::Plain(w)) = (rd, wr) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS requested twice"));
    };
    let tcp = r.reunite(w).map_err(|e| io::Error::other(e.to_string()))?;
    let tls = acceptor.accept(Prefixed::new(buffered, tcp)).await?;
    let (r, w) = tokio::io::split(tls);
    Ok((StreamRead::Tls(r), StreamWrite::Tls(w)))
}
