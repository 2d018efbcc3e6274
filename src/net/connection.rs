//! One client connection: read size-bounded frames, start each request in order, and
//! write the responses in request order (pipelining), with at most
//! `in_flight_requests_max` requests started but not yet answered. A connection idle for
//! `idle_timeout` is closed. Every write is flushed (madsim sends nothing until then).
//!
//! Two tasks: this one reads and starts requests; a writer task awaits each request's
//! `Pending` in order and writes its response. Either side ending ends the other.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::WriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::frame::{read_frame, write_frame};
use super::server::{ActiveGuard, Pending, Reply, ServerConfig, Service};

pub(super) async fn run<S: Service>(
    stream: TcpStream,
    peer: SocketAddr,
    service: Arc<S>,
    config: ServerConfig,
    mut stop: watch::Receiver<bool>,
    _guard: ActiveGuard,
) {
    let (mut reader, writer) = tokio::io::split(stream);
    let (queue, pending) = mpsc::channel::<Pending>(config.in_flight_requests_max.max(1));
    let writer_task = tokio::spawn(write_loop(writer, pending, peer));
    loop {
        if *stop.borrow() {
            break;
        }
        // Wait for an in-flight slot before reading: a client that pipelines more than
        // the bound waits in its socket buffer, not in our memory.
        let permit = tokio::select! {
            permit = queue.reserve() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let frame = tokio::select! {
            read = tokio::time::timeout(config.idle_timeout, read_frame(&mut reader, config.frame_bytes_max)) => read,
            _ = stop.changed() => break,
            _ = queue.closed() => break,
        };
        let frame = match frame {
            Err(_elapsed) => {
                tracing::debug!(%peer, "closing idle connection");
                break;
            }
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "closing connection on a bad frame");
                break;
            }
        };
        let started = service.clone().call(frame).await;
        permit.send(started);
    }
    drop(queue);
    let _ = writer_task.await;
}

async fn write_loop(
    mut writer: WriteHalf<TcpStream>,
    mut pending: mpsc::Receiver<Pending>,
    peer: SocketAddr,
) {
    while let Some(next) = pending.recv().await {
        match next.await {
            Reply::Respond(body) => {
                if let Err(e) = write_frame(&mut writer, &body).await {
                    tracing::debug!(%peer, error = %e, "write failed; closing");
                    break;
                }
            }
            Reply::NoResponse => {}
            Reply::Close => break,
        }
    }
    // Dropping the receiver makes the reader stop; dropping the write half (and the
    // reader's half) closes the socket.
    pending.close();
}
