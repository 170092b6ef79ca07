//! One stream type for a connection that is plain TCP or TLS: the halves of a
//! split TCP stream, or the halves of a split TLS stream (`T`). Used for
//! clients (server-side TLS) and backends (client-side TLS).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The read side.
pub enum StreamRead<T> {
    Plain(OwnedReadHalf),
    Tls(ReadHalf<T>),
    /// Between taking the plain halves apart and putting the TLS ones in.
    Detached,
}

/// The write side.
pub enum StreamWrite<T> {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<T>),
    Detached,
}

fn detached() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "stream is being upgraded to TLS")
}

impl<T: AsyncRead + AsyncWrite> AsyncRead for StreamRead<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            StreamRead::Plain(r) => Pin::new(r).poll_read(cx, buf),
            StreamRead::Tls(r) => Pin::new(r).poll_read(cx, buf),
            StreamRead::Detached => Poll::Ready(Err(detached())),
        }
    }
}

impl<T: AsyncRead + AsyncWrite> AsyncWrite for StreamWrite<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            StreamWrite::Plain(w) => Pin::new(w).poll_write(cx, buf),
            StreamWrite::Tls(w) => Pin::new(w).poll_write(cx, buf),
            StreamWrite::Detached => Poll::Ready(Err(detached())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            StreamWrite::Plain(w) => Pin::new(w).poll_flush(cx),
            StreamWrite::Tls(w) => Pin::new(w).poll_flush(cx),
            StreamWrite::Detached => Poll::Ready(Err(detached())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            StreamWrite::Plain(w) => Pin::new(w).poll_shutdown(cx),
            StreamWrite::Tls(w) => Pin::new(w).poll_shutdown(cx),
            StreamWrite::Detached => Poll::Ready(Err(detached())),
        }
    }
}
