//! Accepting client connections: one task per client, a connection limit
//! answered with error 1040 after the handshake (not a dropped socket).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::session::Session;
use super::Shared;

/// Accept clients until `shutdown` resolves.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    stream.set_nodelay(true).ok();
                    let shared = shared.clone();
                    shared.clients.fetch_add(1, Ordering::Relaxed);
                    shared.stats.clients_total.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        let guard = ClientGuard(shared.clone());
                        Session::run(stream, peer, shared).await;
                        drop(guard);
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Decrements the client count however the session ends (even by panic).
struct ClientGuard(Arc<Shared>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
    }
}
