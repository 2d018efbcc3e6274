//! The accept loop: a connection limit, one task per connection (see `connection`), and
//! a graceful stop — stop accepting, let every connection finish the requests it already
//! read, then return.
//!
//! The server knows nothing of Kafka: a `Service` turns each request frame into a reply.
//! It runs unchanged on real sockets and under madsim.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use super::connection;

/// What to do with one request.
#[derive(Debug)]
pub enum Reply {
    /// Send this response frame body.
    Respond(Bytes),
    /// Send nothing (Produce with acks=0).
    NoResponse,
    /// Close the connection without answering (what Kafka does with requests it cannot
    /// parse or does not support).
    Close,
}

/// The rest of a request's work, which may wait (for an fsync, a long poll) while
/// later requests of the same connection are read and started.
pub type Pending = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// Handles request frames. `call` runs in request order on the connection's task: work
/// whose order matters (enqueueing appends) happens there, before it returns; the
/// returned `Pending` completes the request, and responses are written in request order.
pub trait Service: Send + Sync + 'static {
    fn call(self: Arc<Self>, frame: Bytes) -> Pin<Box<dyn Future<Output = Pending> + Send>>;
}

/// Connection limits and timeouts.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub max_connections: usize,
    pub in_flight_requests_max: usize,
    pub idle_timeout: Duration,
    pub frame_bytes_max: u32,
    /// How long `shutdown` waits for connections to finish in-flight requests.
    pub drain_timeout: Duration,
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept_task: tokio::task::JoinHandle<()>,
    active: Arc<Active>,
    drain_timeout: Duration,
}

/// Counts live connections; wakes `shutdown` when the last one ends.
#[derive(Debug, Default)]
pub struct Active {
    count: AtomicUsize,
    idle: Notify,
}

/// Decrements the live-connection count when a connection task ends, however it ends.
pub struct ActiveGuard(Arc<Active>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Starts accepting on `listener`.
pub fn serve<S: Service>(
    listener: TcpListener,
    service: Arc<S>,
    config: ServerConfig,
) -> std::io::Result<ServerHandle> {
    let local_addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    let active = Arc::new(Active::default());
    let drain_timeout = config.drain_timeout;
    let accept_task = tokio::spawn(accept_loop(
        listener,
        service,
        config,
        stop_rx,
        active.clone(),
    ));
    Ok(ServerHandle {
        local_addr,
        stop,
        accept_task,
        active,
        drain_timeout,
    })
}

async fn accept_loop<S: Service>(
    listener: TcpListener,
    service: Arc<S>,
    config: ServerConfig,
    mut stop: watch::Receiver<bool>,
    active: Arc<Active>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors and the like: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let live = active.count.fetch_add(1, Ordering::SeqCst) + 1;
        let guard = ActiveGuard(active.clone());
        if live > config.max_connections {
            tracing::warn!(%peer, live, "connection limit reached; closing new connection");
            drop(stream);
            drop(guard);
            continue;
        }
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection::run(
            stream,
            peer,
            service.clone(),
            config.clone(),
            stop.clone(),
            guard,
        ));
    }
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, asks every connection to stop reading, and waits (at most the
    /// drain timeout) for them to answer what they already read.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.accept_task.await;
        let wait = async {
            loop {
                let notified = self.active.idle.notified();
                if self.active.count.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(self.drain_timeout, wait)
            .await
            .is_err()
        {
            tracing::warn!(
                live = self.active.count.load(Ordering::SeqCst),
                "connections still open after the drain timeout"
            );
        }
    }
}
