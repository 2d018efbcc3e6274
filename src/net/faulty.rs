//! The faulty transport: a TCP proxy that carries Kafka frames between a client and a
//! server and injects the faults a madsim clog cannot (DESIGN 2.3).
//!
//! Owns: accepting client connections, opening one upstream connection per client
//! connection, forwarding request frames client→server and response frames
//! server→client (one tokio task per direction), and deciding, from a seeded `Rng` or on
//! demand through a `FaultHandle`, which frames to drop, duplicate, delay, or where to
//! reset the connection. Every injected fault is recorded as a `TransportEvent`.
//!
//! Must never: draw randomness from anything but the seed it was given, iterate an
//! unordered collection, hold the shared lock across an `.await`, reorder frames within a
//! direction (TCP never does), or parse more of a frame than the correlation id (it stays
//! ignorant of the Kafka API so that neither the client nor the broker knows it is there).
//!
//! # Matching responses to requests
//! Kafka answers requests on a connection in order, with the request's correlation id as
//! the first four bytes of the response (request header: api_key i16, api_version i16,
//! correlation_id i32). The proxy keeps a queue of outstanding requests per connection
//! and matches each response to the oldest entry with its correlation id; entries it
//! skips belong to requests that get no response at all (Produce with acks=0). A frame too
//! short to carry a correlation id is matched by position. This is what makes "drop this
//! request's response" well defined.
//!
//! # Fault semantics
//! * Drop request after apply: the request is forwarded, and its response is swallowed.
//!   The server applied it; the client never hears back.
//! * Drop response: decided when a response arrives; the response is swallowed. The
//!   client sees the same thing as above; the two differ in where the decision is made
//!   (and so which random stream it draws from) and in the event recorded.
//!   In both cases the connection stays open: the client notices by its request timeout,
//!   or by an unexpected correlation id on its next response, and a Kafka client then
//!   closes the connection. Combine with a reset to model a link that dies instead.
//! * Duplicate request: the frame is sent twice upstream. The server answers both, in
//!   order; the proxy delivers the *first* response (the one to the original) and
//!   swallows the second, because the client is waiting for exactly one response per
//!   correlation id and a second one would be a protocol violation no network produces.
//!   The duplicate's effect is therefore visible only in server state (e.g. a record
//!   appended twice by a non-idempotent producer), which is the point.
//! * Delay: the frame is held for 1..=`delay_ms_max` ms (or the asked-for time) before it
//!   is forwarded. A delayed frame holds back the frames behind it in the same direction,
//!   like a stalled TCP link; the other direction is not affected.
//! * Reset: both sockets of the connection are closed. Decided on a request frame, the
//!   request is *not* forwarded (clean loss); decided on a response frame, the response is
//!   not delivered (applied but unacknowledged, and the connection is gone). `reset_now`
//!   closes every open connection at once. Under real TCP the peers see an orderly close
//!   (FIN), not an RST; under madsim they see end of stream.
//! * Responses that are going to be swallowed anyway draw no randomness and inject no
//!   further fault, so that every fault event happens before the client can observe the
//!   frame it concerns (this keeps the event log ordered by cause, even on real sockets).
//!
//! # Determinism
//! The proxy's `Rng` is forked once per accepted connection and then once per direction,
//! so a direction's decisions depend only on the seed, the accept order and the frames
//! it carries, not on how the two directions interleave.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::frame::{read_frame, write_frame, FrameError};
use crate::base::limits::{
    SIM_FRAME_BYTES_MAX, TRANSPORT_CONNECTIONS_MAX, TRANSPORT_DELAY_MS_MAX, TRANSPORT_EVENTS_MAX,
    TRANSPORT_MESSAGES_MAX, TRANSPORT_OUTSTANDING_REQUESTS_MAX,
};
use crate::base::Rng;

/// How long the accept loop waits after a failed accept (e.g. out of file descriptors)
/// before trying again, so that a persistent error does not spin.
const ACCEPT_RETRY_MS: u64 = 10;

/// Fault rates, each a probability per frame in 0..=1 (values outside are clamped). All
/// zero by default: the proxy then forwards every frame unchanged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransportFaults {
    /// Per request: forward it, then swallow its response.
    pub drop_request_after_apply_rate: f64,
    /// Per response that would be delivered: swallow it.
    pub drop_response_rate: f64,
    /// Per request: send it upstream twice (the second response is swallowed).
    pub duplicate_request_rate: f64,
    /// Per frame, in both directions: hold it for 1..=`delay_ms_max` ms.
    pub delay_rate: f64,
    /// Longest random delay; 0 disables random delays. Clamped to TRANSPORT_DELAY_MS_MAX.
    pub delay_ms_max: u64,
    /// Per frame, in both directions: close the connection instead of forwarding it.
    pub reset_rate: f64,
}

/// Which way a frame travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// A request, from the client to the server.
    ClientToServer,
    /// A response, from the server to the client.
    ServerToClient,
}

/// What fault was injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// The request was forwarded; its response will be swallowed.
    DropRequestAfterApply,
    /// The response was swallowed.
    DropResponse,
    /// The request was sent upstream twice; the second response will be swallowed.
    DuplicateRequest,
    /// The frame was held back for `delay_ms` before being forwarded.
    Delay { delay_ms: u64 },
    /// The connection was closed on both sides instead of forwarding the frame.
    Reset,
}

/// One injected fault, for the simulator's trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransportEvent {
    /// Connections are numbered from 0 in accept order.
    pub connection_id: u64,
    pub direction: Direction,
    /// Index of the frame within its direction on this connection, from 0. For a
    /// `reset_now`, the number of request frames the connection had read by then.
    pub frame_index: u64,
    pub kind: FaultKind,
}

/// One frame the proxy read, for the simulator's trace (`FaultHandle::log_messages`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageEvent {
    pub connection_id: u64,
    pub direction: Direction,
    /// Index of the frame within its direction on this connection, from 0.
    pub frame_index: u64,
    pub bytes: u64,
    /// A request's API key (the first field of every request header).
    pub api_key: Option<i16>,
    /// The correlation id (a request's header, a response's first field).
    pub correlation_id: Option<i32>,
}

impl MessageEvent {
    fn of(connection_id: u64, direction: Direction, frame_index: u64, frame: &[u8]) -> Self {
        let (api_key, correlation_id) = match direction {
            Direction::ClientToServer => (
                frame.get(0..2).map(|b| i16::from_be_bytes([b[0], b[1]])),
                request_correlation_id(frame),
            ),
            Direction::ServerToClient => (None, response_correlation_id(frame)),
        };
        MessageEvent {
            connection_id,
            direction,
            frame_index,
            bytes: frame.len() as u64,
            api_key,
            correlation_id,
        }
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot bind the faulty proxy to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Faults asked for on demand, each consumed by the next frame it applies to (on any
/// connection).
#[derive(Debug, Default)]
struct OnDemand {
    drop_request_after_apply_count: u32,
    drop_response_count: u32,
    duplicate_request_count: u32,
    delay_request_ms: Option<u64>,
    delay_response_ms: Option<u64>,
}

#[derive(Debug)]
struct ConnectionControl {
    /// Set to true to close both sockets of the connection.
    close_tx: watch::Sender<bool>,
    /// Request frames read so far (for the event of a `reset_now`).
    requests_read: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Shared {
    faults: TransportFaults,
    on_demand: OnDemand,
    events: Vec<TransportEvent>,
    events_dropped_count: u64,
    /// Forked once per accepted connection.
    rng: Rng,
    next_connection_id: u64,
    /// Ordered, so that `reset_now` records its events in a deterministic order.
    connections: BTreeMap<u64, ConnectionControl>,
    /// Set to true when the proxy is closed; the accept loop stops.
    proxy_close_tx: watch::Sender<bool>,
    /// Every frame carried, when the simulator asked for them (`log_messages`).
    messages: Option<Vec<MessageEvent>>,
    messages_unlogged: u64,
}

impl Shared {
    fn record(&mut self, event: TransportEvent) {
        tracing::debug!(?event, "transport fault");
        if self.events.len() < TRANSPORT_EVENTS_MAX {
            self.events.push(event);
        } else {
            self.events_dropped_count += 1;
        }
    }
}

/// Controls a running `FaultyProxy` and reads its event log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FaultHandle {
    shared: Arc<Mutex<Shared>>,
}

impl FaultHandle {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // The lock is never held across an await or a panic-prone call; if a holder did
        // panic, the state is still consistent field by field.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the fault rates; frames read from now on use the new ones.
    pub fn set_faults(&self, faults: TransportFaults) {
        self.lock().faults = faults;
    }

    pub fn faults(&self) -> TransportFaults {
        self.lock().faults.clone()
    }

    /// The next request (on any connection) is forwarded and its response swallowed.
    pub fn drop_next_request_after_apply(&self) {
        self.lock().on_demand.drop_request_after_apply_count += 1;
    }

    /// The next response that would be delivered (on any connection) is swallowed.
    pub fn drop_next_response(&self) {
        self.lock().on_demand.drop_response_count += 1;
    }

    /// The next request (on any connection) is sent upstream twice.
    pub fn duplicate_next_request(&self) {
        self.lock().on_demand.duplicate_request_count += 1;
    }

    /// The next request (on any connection) is held for `delay_ms` (clamped to
    /// TRANSPORT_DELAY_MS_MAX). Replaces an earlier pending request delay.
    pub fn delay_next_request(&self, delay_ms: u64) {
        self.lock().on_demand.delay_request_ms = Some(delay_ms.min(TRANSPORT_DELAY_MS_MAX));
    }

    /// The next response that would be delivered is held for `delay_ms` (clamped).
    /// Replaces an earlier pending response delay.
    pub fn delay_next_response(&self, delay_ms: u64) {
        self.lock().on_demand.delay_response_ms = Some(delay_ms.min(TRANSPORT_DELAY_MS_MAX));
    }

    /// Closes every open connection now, on both sides. Returns how many were reset.
    pub fn reset_now(&self) -> usize {
        let mut shared = self.lock();
        let mut resets = Vec::new();
        for (connection_id, control) in &shared.connections {
            if !*control.close_tx.borrow() {
                control.close_tx.send_replace(true);
                resets.push(TransportEvent {
                    connection_id: *connection_id,
                    direction: Direction::ClientToServer,
                    frame_index: control.requests_read.load(Ordering::SeqCst),
                    kind: FaultKind::Reset,
                });
            }
        }
        let reset_count = resets.len();
        for event in resets {
            shared.record(event);
        }
        reset_count
    }

    /// Stops accepting and closes every connection (no events are recorded for these).
    pub fn close(&self) {
        let shared = self.lock();
        shared.proxy_close_tx.send_replace(true);
        for control in shared.connections.values() {
            control.close_tx.send_replace(true);
        }
    }

    /// A copy of the event log, in the order the faults were injected.
    pub fn events(&self) -> Vec<TransportEvent> {
        self.lock().events.clone()
    }

    /// Takes the event log, leaving it empty.
    pub fn take_events(&self) -> Vec<TransportEvent> {
        std::mem::take(&mut self.lock().events)
    }

    /// Starts (or stops and clears) recording every frame read, for `take_messages`.
    pub fn log_messages(&self, on: bool) {
        let mut shared = self.lock();
        shared.messages = on.then(Vec::new);
        shared.messages_unlogged = 0;
    }

    /// The frames recorded since the last call, in the order they were read, and how
    /// many were not recorded because the log held TRANSPORT_MESSAGES_MAX.
    pub fn take_messages(&self) -> (Vec<MessageEvent>, u64) {
        let mut shared = self.lock();
        let messages = shared
            .messages
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        (messages, std::mem::take(&mut shared.messages_unlogged))
    }

    fn log_message(&self, event: MessageEvent) {
        let mut shared = self.lock();
        let full = shared
            .messages
            .as_ref()
            .map(|log| log.len() >= TRANSPORT_MESSAGES_MAX);
        match (full, &mut shared.messages) {
            (Some(false), Some(log)) => log.push(event),
            (Some(true), _) => shared.messages_unlogged += 1,
            _ => {}
        }
    }

    /// Events not stored because the log held TRANSPORT_EVENTS_MAX already.
    pub fn events_dropped_count(&self) -> u64 {
        self.lock().events_dropped_count
    }

    /// Connections currently carried (accepted and not yet fully closed).
    pub fn connections_open_count(&self) -> usize {
        self.lock().connections.len()
    }
}

/// A proxy listening on one address and forwarding each accepted connection to
/// `upstream_addr`, injecting faults on the way. Neither side needs to know it is there.
#[derive(Debug)]
pub struct FaultyProxy {
    listener: TcpListener,
    upstream_addr: SocketAddr,
    frame_bytes_max: u32,
    handle: FaultHandle,
}

impl FaultyProxy {
    /// Binds the listening socket (port 0 picks a free one; see `local_addr`). Frames up
    /// to SIM_FRAME_BYTES_MAX are carried; a larger or malformed frame closes the
    /// connection. Fault decisions are drawn from `Rng::with_seed(seed)`.
    pub async fn bind(
        listen_addr: SocketAddr,
        upstream_addr: SocketAddr,
        seed: u64,
        faults: TransportFaults,
    ) -> Result<FaultyProxy, ProxyError> {
        let listener = TcpListener::bind(listen_addr)
            .await
            .map_err(|source| ProxyError::Bind {
                addr: listen_addr,
                source,
            })?;
        let (proxy_close_tx, _) = watch::channel(false);
        let shared = Shared {
            faults,
            on_demand: OnDemand::default(),
            events: Vec::new(),
            events_dropped_count: 0,
            rng: Rng::with_seed(seed),
            next_connection_id: 0,
            connections: BTreeMap::new(),
            proxy_close_tx,
            messages: None,
            messages_unlogged: 0,
        };
        Ok(FaultyProxy {
            listener,
            upstream_addr,
            frame_bytes_max: SIM_FRAME_BYTES_MAX,
            handle: FaultHandle {
                shared: Arc::new(Mutex::new(shared)),
            },
        })
    }

    /// The address clients should connect to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn handle(&self) -> FaultHandle {
        self.handle.clone()
    }

    /// Runs the accept loop on a new task; it ends when `FaultHandle::close` is called.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// The accept loop; returns when `FaultHandle::close` is called.
    pub async fn run(self) {
        let proxy_close_rx = self.handle.lock().proxy_close_tx.subscribe();
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = wait_closed(proxy_close_rx.clone()) => return,
            };
            let client = match accepted {
                Ok((client, _)) => client,
                Err(error) => {
                    tracing::warn!(%error, "faulty proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                    continue;
                }
            };
            let Some(connection) = self.register_connection() else {
                tracing::warn!("faulty proxy: connection refused (closed or at the bound)");
                continue; // Dropping `client` closes it.
            };
            tokio::spawn(connection.run(client, self.upstream_addr));
        }
    }

    fn register_connection(&self) -> Option<Connection> {
        let mut shared = self.handle.lock();
        if *shared.proxy_close_tx.borrow() {
            return None;
        }
        if shared.connections.len() >= TRANSPORT_CONNECTIONS_MAX {
            return None;
        }
        let connection_id = shared.next_connection_id;
        shared.next_connection_id += 1;
        let mut connection_rng = shared.rng.fork();
        let (close_tx, close_rx) = watch::channel(false);
        let requests_read = Arc::new(AtomicU64::new(0));
        shared.connections.insert(
            connection_id,
            ConnectionControl {
                close_tx: close_tx.clone(),
                requests_read: requests_read.clone(),
            },
        );
        Some(Connection {
            connection_id,
            handle: self.handle.clone(),
            frame_bytes_max: self.frame_bytes_max,
            request_rng: connection_rng.fork(),
            response_rng: connection_rng.fork(),
            requests_read,
            close_tx,
            close_rx,
        })
    }
}

/// Resolves when the flag turns true or its sender is gone.
async fn wait_closed(mut close_rx: watch::Receiver<bool>) {
    // An error means the sender was dropped: treat it as closed too.
    let _ = close_rx.wait_for(|closed| *closed).await;
}

/// A request still waiting for its response.
#[derive(Clone, Copy, Debug)]
struct Outstanding {
    correlation_id: Option<i32>,
    /// False: swallow the response (dropped after apply, or a duplicate's response).
    deliver: bool,
}

type OutstandingQueue = Arc<Mutex<VecDeque<Outstanding>>>;

fn lock_queue(queue: &OutstandingQueue) -> MutexGuard<'_, VecDeque<Outstanding>> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The correlation id of a request frame (after api_key i16 and api_version i16).
fn request_correlation_id(frame: &[u8]) -> Option<i32> {
    let bytes: [u8; 4] = frame.get(4..8)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

/// The correlation id of a response frame (its first field).
fn response_correlation_id(frame: &[u8]) -> Option<i32> {
    let bytes: [u8; 4] = frame.get(0..4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

/// Removes and returns the outstanding request a response answers, or None for a
/// response that matches nothing (it is then delivered as is).
fn match_response(
    queue: &mut VecDeque<Outstanding>,
    correlation_id: Option<i32>,
) -> Option<Outstanding> {
    let Some(correlation_id) = correlation_id else {
        return queue.pop_front();
    };
    let position = queue
        .iter()
        .position(|entry| entry.correlation_id == Some(correlation_id));
    match position {
        Some(position) => {
            // Entries before it were requests that get no response (acks=0 produce).
            queue.drain(..position);
            queue.pop_front()
        }
        None if queue
            .front()
            .is_some_and(|entry| entry.correlation_id.is_none()) =>
        {
            queue.pop_front()
        }
        None => None,
    }
}

fn push_outstanding(queue: &OutstandingQueue, entry: Outstanding) {
    let mut queue = lock_queue(queue);
    while queue.len() >= TRANSPORT_OUTSTANDING_REQUESTS_MAX {
        tracing::warn!("faulty proxy: outstanding request queue full, forgetting the oldest");
        queue.pop_front();
    }
    queue.push_back(entry);
}

fn take_count(count: &mut u32) -> bool {
    if *count == 0 {
        return false;
    }
    *count -= 1;
    true
}

fn random_delay_ms(rng: &mut Rng, faults: &TransportFaults) -> Option<u64> {
    let delay_ms_max = faults.delay_ms_max.min(TRANSPORT_DELAY_MS_MAX);
    if delay_ms_max == 0 || !rng.chance(faults.delay_rate) {
        return None;
    }
    Some(rng.range_inclusive(1, delay_ms_max))
}

/// What to do with one request frame.
#[derive(Debug, Default)]
struct RequestPlan {
    reset: bool,
    delay_ms: Option<u64>,
    drop_after_apply: bool,
    duplicate: bool,
}

/// What to do with one response frame that would be delivered.
#[derive(Debug, Default)]
struct ResponsePlan {
    reset: bool,
    drop: bool,
    delay_ms: Option<u64>,
}

/// One proxied connection: its id, its random streams and its close signal.
struct Connection {
    connection_id: u64,
    handle: FaultHandle,
    frame_bytes_max: u32,
    request_rng: Rng,
    response_rng: Rng,
    requests_read: Arc<AtomicU64>,
    close_tx: watch::Sender<bool>,
    close_rx: watch::Receiver<bool>,
}

/// Why a direction stopped (only logged: either way the connection is closed).
#[derive(Debug)]
enum PumpEnd {
    /// The sending side closed the stream between frames.
    Eof,
    /// A reset fault closed the connection.
    Reset,
    /// A read or write failed, or a frame was malformed.
    Frame(FrameError),
}

impl PumpEnd {
    fn log(&self, connection_id: u64, direction: Direction) {
        match self {
            PumpEnd::Eof => {
                tracing::debug!(connection_id, ?direction, "faulty proxy: stream ended")
            }
            PumpEnd::Reset => tracing::debug!(connection_id, ?direction, "faulty proxy: closed"),
            PumpEnd::Frame(error) => {
                tracing::debug!(connection_id, ?direction, %error, "faulty proxy: frame error")
            }
        }
    }
}

impl Connection {
    async fn run(self, client: TcpStream, upstream_addr: SocketAddr) {
        let Connection {
            connection_id,
            handle,
            frame_bytes_max,
            request_rng,
            response_rng,
            requests_read,
            close_tx,
            close_rx,
        } = self;
        let upstream = tokio::select! {
            upstream = TcpStream::connect(upstream_addr) => upstream,
            () = wait_closed(close_rx.clone()) => {
                handle.lock().connections.remove(&connection_id);
                return;
            }
        };
        let upstream = match upstream {
            Ok(upstream) => upstream,
            Err(error) => {
                tracing::debug!(connection_id, %error, "faulty proxy: upstream connect failed");
                handle.lock().connections.remove(&connection_id);
                return; // Dropping `client` closes it.
            }
        };
        // Frames are small and latency-bound; Nagle would only add delay on real sockets.
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        // Under madsim TcpStream::into_split does not exist; io::split works in both.
        let (client_read, client_write) = tokio::io::split(client);
        let (upstream_read, upstream_write) = tokio::io::split(upstream);
        let outstanding: OutstandingQueue = Arc::new(Mutex::new(VecDeque::new()));

        let responses = ResponsePump {
            connection_id,
            handle: handle.clone(),
            frame_bytes_max,
            rng: response_rng,
            outstanding: outstanding.clone(),
        };
        let response_close_rx = close_rx.clone();
        let response_close_tx = close_tx.clone();
        let response_task = tokio::spawn(async move {
            let end = tokio::select! {
                end = responses.run(upstream_read, client_write) => end,
                () = wait_closed(response_close_rx) => PumpEnd::Reset,
            };
            tracing::debug!(
                connection_id,
                ?end,
                "faulty proxy: response direction ended"
            );
            response_close_tx.send_replace(true);
        });

        let requests = RequestPump {
            connection_id,
            handle: handle.clone(),
            frame_bytes_max,
            rng: request_rng,
            outstanding,
            requests_read,
        };
        let end = tokio::select! {
            end = requests.run(client_read, upstream_write) => end,
            () = wait_closed(close_rx) => PumpEnd::Reset,
        };
        end.log(connection_id, Direction::ClientToServer);
        close_tx.send_replace(true);
        // The response task ends promptly once the close flag is set.
        let _ = response_task.await;
        handle.lock().connections.remove(&connection_id);
    }
}

/// Carries request frames from the client to the server.
struct RequestPump {
    connection_id: u64,
    handle: FaultHandle,
    frame_bytes_max: u32,
    rng: Rng,
    outstanding: OutstandingQueue,
    requests_read: Arc<AtomicU64>,
}

impl RequestPump {
    async fn run<R, W>(mut self, mut client_read: R, mut upstream_write: W) -> PumpEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            let frame = match read_frame(&mut client_read, self.frame_bytes_max).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return PumpEnd::Eof,
                Err(error) => return PumpEnd::Frame(error),
            };
            let frame_index = self.requests_read.fetch_add(1, Ordering::SeqCst);
            self.handle.log_message(MessageEvent::of(
                self.connection_id,
                Direction::ClientToServer,
                frame_index,
                &frame,
            ));
            let plan = self.plan(frame_index);
            if plan.reset {
                return PumpEnd::Reset;
            }
            if let Some(delay_ms) = plan.delay_ms {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            if let Err(error) = self.forward(&mut upstream_write, &frame, &plan).await {
                return PumpEnd::Frame(error);
            }
        }
    }

    /// Draws this frame's faults and records them, in a fixed order.
    fn plan(&mut self, frame_index: u64) -> RequestPlan {
        let mut shared = self.handle.lock();
        let faults = shared.faults.clone();
        let on_demand = &mut shared.on_demand;
        let mut plan = RequestPlan {
            reset: self.rng.chance(faults.reset_rate),
            ..RequestPlan::default()
        };
        if !plan.reset {
            plan.delay_ms = match on_demand.delay_request_ms.take() {
                Some(delay_ms) => Some(delay_ms),
                None => random_delay_ms(&mut self.rng, &faults),
            };
            plan.drop_after_apply = take_count(&mut on_demand.drop_request_after_apply_count)
                || self.rng.chance(faults.drop_request_after_apply_rate);
            plan.duplicate = take_count(&mut on_demand.duplicate_request_count)
                || self.rng.chance(faults.duplicate_request_rate);
        }
        let event = |kind| TransportEvent {
            connection_id: self.connection_id,
            direction: Direction::ClientToServer,
            frame_index,
            kind,
        };
        if plan.reset {
            shared.record(event(FaultKind::Reset));
        }
        if let Some(delay_ms) = plan.delay_ms {
            shared.record(event(FaultKind::Delay { delay_ms }));
        }
        if plan.drop_after_apply {
            shared.record(event(FaultKind::DropRequestAfterApply));
        }
        if plan.duplicate {
            shared.record(event(FaultKind::DuplicateRequest));
        }
        plan
    }

    async fn forward<W>(
        &self,
        upstream_write: &mut W,
        frame: &Bytes,
        plan: &RequestPlan,
    ) -> Result<(), FrameError>
    where
        W: AsyncWrite + Unpin,
    {
        let correlation_id = request_correlation_id(frame);
        // Queue before writing, so the response can never arrive before its entry.
        push_outstanding(
            &self.outstanding,
            Outstanding {
                correlation_id,
                deliver: !plan.drop_after_apply,
            },
        );
        if plan.duplicate {
            push_outstanding(
                &self.outstanding,
                Outstanding {
                    correlation_id,
                    deliver: false,
                },
            );
        }
        write_frame(upstream_write, frame).await?;
        if plan.duplicate {
            write_frame(upstream_write, frame).await?;
        }
        Ok(())
    }
}

/// Carries response frames from the server to the client.
struct ResponsePump {
    connection_id: u64,
    handle: FaultHandle,
    frame_bytes_max: u32,
    rng: Rng,
    outstanding: OutstandingQueue,
}

impl ResponsePump {
    async fn run<R, W>(mut self, mut upstream_read: R, mut client_write: W) -> PumpEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut frame_index: u64 = 0;
        loop {
            let frame = match read_frame(&mut upstream_read, self.frame_bytes_max).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return PumpEnd::Eof,
                Err(error) => return PumpEnd::Frame(error),
            };
            let this_index = frame_index;
            frame_index += 1;
            self.handle.log_message(MessageEvent::of(
                self.connection_id,
                Direction::ServerToClient,
                this_index,
                &frame,
            ));
            let matched = match_response(
                &mut lock_queue(&self.outstanding),
                response_correlation_id(&frame),
            );
            if matched.is_some_and(|entry| !entry.deliver) {
                tracing::debug!(
                    connection_id = self.connection_id,
                    frame_index = this_index,
                    "faulty proxy: swallowed a response"
                );
                continue;
            }
            let plan = self.plan(this_index);
            if plan.reset {
                return PumpEnd::Reset;
            }
            if plan.drop {
                continue;
            }
            if let Some(delay_ms) = plan.delay_ms {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            if let Err(error) = write_frame(&mut client_write, &frame).await {
                return PumpEnd::Frame(error);
            }
        }
    }

    /// Draws this frame's faults and records them, in a fixed order.
    fn plan(&mut self, frame_index: u64) -> ResponsePlan {
        let mut shared = self.handle.lock();
        let faults = shared.faults.clone();
        let on_demand = &mut shared.on_demand;
        let mut plan = ResponsePlan {
            reset: self.rng.chance(faults.reset_rate),
            ..ResponsePlan::default()
        };
        if !plan.reset {
            plan.drop = take_count(&mut on_demand.drop_response_count)
                || self.rng.chance(faults.drop_response_rate);
        }
        if !plan.reset && !plan.drop {
            plan.delay_ms = match on_demand.delay_response_ms.take() {
                Some(delay_ms) => Some(delay_ms),
                None => random_delay_ms(&mut self.rng, &faults),
            };
        }
        let event = |kind| TransportEvent {
            connection_id: self.connection_id,
            direction: Direction::ServerToClient,
            frame_index,
            kind,
        };
        if plan.reset {
            shared.record(event(FaultKind::Reset));
        }
        if plan.drop {
            shared.record(event(FaultKind::DropResponse));
        }
        if let Some(delay_ms) = plan.delay_ms {
            shared.record(event(FaultKind::Delay { delay_ms }));
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    //! Everything runs on one host over loopback, so the same tests run on real tokio and
    //! inside madsim (where the test's single node talks to itself).

    use std::future::Future;

    use tokio::time::{timeout, Instant};

    use super::*;

    /// Bound on a whole test, so a hang fails instead of stalling the suite.
    const TEST_MS_MAX: u64 = 30_000;
    /// How long a test client waits for a response it expects.
    const RESPONSE_WAIT_MS: u64 = 2_000;
    /// How long a test client waits for a response that should never come. Generous
    /// relative to the injected delays, so a slow machine does not turn a late response
    /// into a "lost" one (that would change what the client sends next).
    const SILENCE_WAIT_MS: u64 = 250;
    const TEST_FRAME_BYTES_MAX: u32 = 1 << 20;

    async fn within<F: Future<Output = ()>>(test: F) {
        timeout(Duration::from_millis(TEST_MS_MAX), test)
            .await
            .expect("test ran past TEST_MS_MAX");
    }

    fn loopback() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    /// A request frame with a Kafka request header prefix: api_key, api_version,
    /// correlation_id, then the payload.
    fn request(correlation_id: i32, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0, 0, 0, 0];
        frame.extend_from_slice(&correlation_id.to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    fn expected_response(correlation_id: i32, payload: &[u8]) -> Vec<u8> {
        let mut frame = correlation_id.to_be_bytes().to_vec();
        frame.extend_from_slice(b"echo:");
        frame.extend_from_slice(payload);
        frame
    }

    /// An upstream that answers every request with `correlation_id ++ "echo:" ++ payload`.
    struct EchoServer {
        addr: SocketAddr,
        requests_received: Arc<AtomicU64>,
        connections_ended: Arc<AtomicU64>,
    }

    async fn start_echo_server() -> EchoServer {
        let listener = TcpListener::bind(loopback())
            .await
            .expect("bind echo server");
        let server = EchoServer {
            addr: listener.local_addr().expect("echo server address"),
            requests_received: Arc::new(AtomicU64::new(0)),
            connections_ended: Arc::new(AtomicU64::new(0)),
        };
        let requests_received = server.requests_received.clone();
        let connections_ended = server.connections_ended.clone();
        // Ends with the test's runtime.
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let requests_received = requests_received.clone();
                let connections_ended = connections_ended.clone();
                tokio::spawn(async move {
                    let (mut reader, mut writer) = tokio::io::split(stream);
                    while let Ok(Some(frame)) = read_frame(&mut reader, TEST_FRAME_BYTES_MAX).await
                    {
                        requests_received.fetch_add(1, Ordering::SeqCst);
                        let correlation_id = request_correlation_id(&frame).unwrap_or(-1);
                        let payload = frame.get(8..).unwrap_or_default();
                        let response = expected_response(correlation_id, payload);
                        if write_frame(&mut writer, &response).await.is_err() {
                            break;
                        }
                    }
                    connections_ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        server
    }

    async fn start_proxy(
        upstream: SocketAddr,
        seed: u64,
        faults: TransportFaults,
    ) -> (SocketAddr, FaultHandle) {
        let proxy = FaultyProxy::bind(loopback(), upstream, seed, faults)
            .await
            .expect("bind proxy");
        let addr = proxy.local_addr().expect("proxy address");
        let handle = proxy.handle();
        proxy.spawn();
        (addr, handle)
    }

    #[derive(Debug, PartialEq)]
    enum Reply {
        Frame(Bytes),
        Silence,
        Closed,
    }

    async fn send(stream: &mut TcpStream, correlation_id: i32, payload: &[u8]) {
        write_frame(stream, &request(correlation_id, payload))
            .await
            .expect("send request");
    }

    /// Reads one frame, waiting at most `wait_ms`. After `Silence` nothing of a frame has
    /// been read (responses arrive whole or not at all here), so the stream stays usable.
    async fn receive(stream: &mut TcpStream, wait_ms: u64) -> Reply {
        match timeout(
            Duration::from_millis(wait_ms),
            read_frame(stream, TEST_FRAME_BYTES_MAX),
        )
        .await
        {
            Err(_) => Reply::Silence,
            Ok(Ok(Some(frame))) => Reply::Frame(frame),
            Ok(Ok(None)) | Ok(Err(_)) => Reply::Closed,
        }
    }

    async fn call(
        stream: &mut TcpStream,
        correlation_id: i32,
        payload: &[u8],
        wait_ms: u64,
    ) -> Reply {
        send(stream, correlation_id, payload).await;
        receive(stream, wait_ms).await
    }

    fn echoed(correlation_id: i32, payload: &[u8]) -> Reply {
        Reply::Frame(Bytes::from(expected_response(correlation_id, payload)))
    }

    fn event(
        connection_id: u64,
        direction: Direction,
        frame_index: u64,
        kind: FaultKind,
    ) -> TransportEvent {
        TransportEvent {
            connection_id,
            direction,
            frame_index,
            kind,
        }
    }

    /// Polls `condition` every 5 ms, at most `wait_ms`.
    async fn eventually(wait_ms: u64, condition: impl Fn() -> bool) -> bool {
        for _ in 0..wait_ms / 5 {
            if condition() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        condition()
    }

    #[tokio::test]
    async fn passes_frames_through_unchanged_without_faults() {
        within(async {
            let server = start_echo_server().await;
            let (proxy_addr, handle) =
                start_proxy(server.addr, 1, TransportFaults::default()).await;
            let mut sequential = TcpStream::connect(proxy_addr).await.unwrap();
            for correlation_id in 0..20 {
                let payload = vec![correlation_id as u8; correlation_id as usize * 100];
                let reply = call(&mut sequential, correlation_id, &payload, RESPONSE_WAIT_MS).await;
                assert_eq!(reply, echoed(correlation_id, &payload));
            }
            // Pipelined on a second connection: responses come back in request order.
            let mut pipelined = TcpStream::connect(proxy_addr).await.unwrap();
            for correlation_id in 100..105 {
                send(&mut pipelined, correlation_id, b"p").await;
            }
            for correlation_id in 100..105 {
                assert_eq!(
                    receive(&mut pipelined, RESPONSE_WAIT_MS).await,
                    echoed(correlation_id, b"p")
                );
            }
            assert_eq!(server.requests_received.load(Ordering::SeqCst), 25);
            assert_eq!(handle.events(), vec![]);
            assert_eq!(handle.connections_open_count(), 2);
        })
        .await;
    }

    #[tokio::test]
    async fn the_message_log_records_each_frame_read_when_asked() {
        within(async {
            let server = start_echo_server().await;
            let (proxy_addr, handle) =
                start_proxy(server.addr, 1, TransportFaults::default()).await;
            let mut client = TcpStream::connect(proxy_addr).await.unwrap();
            call(&mut client, 6, b"before", RESPONSE_WAIT_MS).await;
            handle.log_messages(true);
            assert_eq!(
                call(&mut client, 7, b"xyz", RESPONSE_WAIT_MS).await,
                echoed(7, b"xyz")
            );
            let (messages, unlogged) = handle.take_messages();
            assert_eq!(unlogged, 0);
            assert_eq!(
                messages,
                vec![
                    MessageEvent {
                        connection_id: 0,
                        direction: Direction::ClientToServer,
                        frame_index: 1,
                        bytes: 11,
                        api_key: Some(0),
                        correlation_id: Some(7),
                    },
                    MessageEvent {
                        connection_id: 0,
                        direction: Direction::ServerToClient,
                        frame_index: 1,
                        bytes: 12,
                        api_key: None,
                        correlation_id: Some(7),
                    },
                ]
            );
            assert!(handle.take_messages().0.is_empty());
        })
        .await;
    }

    #[tokio::test]
    async fn drop_request_after_apply_reaches_the_server_but_not_the_client() {
        within(async {
            let server = start_echo_server().await;
            let (proxy_addr, handle) =
                start_proxy(server.addr, 1, TransportFaults::default()).await;
            let mut client = TcpStream::connect(proxy_addr).await.unwrap();
            assert_eq!(
                call(&mut client, 0, b"a", RESPONSE_WAIT_MS).await,
                echoed(0, b"a")
            );
            handle.drop_next_request_after_apply();
            assert_eq!(
                call(&mut client, 1, b"b", SILENCE_WAIT_MS).await,
                Reply::Silence
            );
            assert_eq!(
                server.requests_received.load(Ordering::SeqCst),
                2,
                "applied"
            );
            // The connection stays usable, and the next response is the next request's.
            assert_eq!(
                call(&mut client, 2, b"c", RESPONSE_WAIT_MS).await,
                echoed(2, b"c")
            );
            assert_eq!(
                handle.events(),
                vec![event(
                    0,
                    Direction::ClientToServer,
                    1,
                    FaultKind::DropRequestAfterApply
                )]
            );
        })
        .await;
    }

    #[tokio::test]
    async fn drop_response_swallows_exactly_one_response() {
        within(async {
            let server = start_echo_server().await;
            let (proxy_addr, handle) =
                start_proxy(server.addr, 1, TransportFaults::default()).await;
            let mut client = TcpStream::connect(proxy_addr).await.unwrap();
            assert_eq!(
                call(&mut client, 0, b"a", RESPONSE_WAIT_MS).await,
                echoed(0, b"a")
            );
            handle.drop_next_response();
            assert_eq!(
                call(&mut client, 1, b"b", SILENCE_WAIT_MS).await,
                Reply::Silence
            );
            assert_eq!(server.requests_received.load(Ordering::SeqCst), 2);
            assert_eq!(
                call(&mut client, 2, b"c", RESPONSE_WAIT_MS).await,
                echoed(2, b"c")
            );
            assert_eq!(
                handle.events(),
                vec![event(
                    0,
                    Direction::ServerToClient,
                    1,
                    FaultKind::DropResponse
                )]
            );
        })
        .await;
    }

    #[tokio::test]
    async fn duplicate_request_is_applied_twice_and_answered_once() {
        within(async {
            let server = start_echo_server().await;
            let (proxy_addr, handle) =
                start_proxy(server.addr, 1, TransportFaults::default()).await;
            let mut client = TcpStream::connect(proxy_addr).await.unwrap();
            handle.duplicate_next_request();
            assert_eq!(
                call(&mut client, 0, b"a", RESPONSE_WAIT_MS).await,
                echoed(0, b"a")
            );
            // The duplicate's response must not show up as the answer to the next request.
            assert_eq!(
                call(&mut client, 1, b"b", RESPONSE_WAIT_MS).await,
                echoed(1, b"b")
            );
            assert_eq!(server.requests_received.load(Ordering::SeqCst), 3);
            assert_eq!(receive(&mut client, SILENCE_WAIT_MS).await, Reply::Silence);
            assert_eq!(
                handle.events(),
                vec![event(
                    0,
                    Direction::ClientToServer,
                    0,
                    FaultKind::DuplicateRequest
                )]
            );
        })
        .await;
    }

    #[tokio::test]
    async fn delays_hold_frames_back_in_order() {
        within(async {
            let server = start_echo_server().await;
            let (proxy_addr, handle) =
                start_proxy(server.addr, 1, TransportFaults::default()).await;
            let mut client = TcpStream::connect(proxy_addr).await.unwrap();
            for (delay_request, first_correlation_id) in [(true, 0), (false, 10)] {
                if delay_request {
                    handle.delay_next_request(150);
                } else {
                    handle.delay_next_response(150);
                }
                let start = Instant::now();
                for correlation_id in first_correlation_id..first_correlation_id + 3 {
                    send(&mut client, correlation_id, b"d").await;
                }
                for correlation_id in first_correlation_id..first_correlation_id + 3 {
                    assert_eq!(
                        receive(&mut client, RESPONSE_WAIT_MS).await,
                        echoed(correlation_id, b"d")
                    );
                }
                assert!(
                    start.elapsed() >= Duration::from_millis(150),
                    "delay_request={delay_request}"
                );
            }
            assert_eq!(
                handle.events(),
                vec![
                    event(
                        0,
                        Direction::ClientToServer,
                        0,
                        FaultKind::Delay { delay_ms: 150 }
                    ),
                    event(
                        0,
                        Direction::ServerToClient,
                        3,
                        FaultKind::Delay { delay_ms: 150 }
                    ),
                ]
            );
        })
        .await;
    }

    #[tokio::test]
    async fn reset_now_closes_both_sides_and_new_connections_work() {
        within(async {
            let server = start_echo_server().await;
            let (proxy_addr, handle) =
                start_proxy(server.addr, 1, TransportFaults::default()).await;
            let mut client = TcpStream::connect(proxy_addr).await.unwrap();
            assert_eq!(
                call(&mut client, 0, b"a", RESPONSE_WAIT_MS).await,
                echoed(0, b"a")
            );
            assert_eq!(handle.reset_now(), 1);
            assert_eq!(receive(&mut client, RESPONSE_WAIT_MS).await, Reply::Closed);
            let connections_ended = server.connections_ended.clone();
            assert!(
                eventually(RESPONSE_WAIT_MS, || connections_ended
                    .load(Ordering::SeqCst)
                    == 1)
                .await,
                "the server side was closed too"
            );
            assert!(eventually(RESPONSE_WAIT_MS, || handle.connections_open_count() == 0).await);
            let mut again = TcpStream::connect(proxy_addr).await.unwrap();
            assert_eq!(
                call(&mut again, 1, b"b", RESPONSE_WAIT_MS).await,
                echoed(1, b"b")
            );
            assert_eq!(
                handle.events(),
                vec![event(0, Direction::ClientToServer, 1, FaultKind::Reset)]
            );
        })
        .await;
    }

    #[tokio::test]
    async fn garbage_or_unreachable_upstream_closes_the_connection_only() {
        within(async {
            let server = start_echo_server().await;
            let (proxy_addr, handle) =
                start_proxy(server.addr, 1, TransportFaults::default()).await;
            let mut client = TcpStream::connect(proxy_addr).await.unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut client, &(-5i32).to_be_bytes())
                .await
                .unwrap();
            tokio::io::AsyncWriteExt::flush(&mut client).await.unwrap();
            assert_eq!(receive(&mut client, RESPONSE_WAIT_MS).await, Reply::Closed);
            let mut again = TcpStream::connect(proxy_addr).await.unwrap();
            assert_eq!(
                call(&mut again, 1, b"b", RESPONSE_WAIT_MS).await,
                echoed(1, b"b")
            );
            assert_eq!(handle.events(), vec![]);

            // An upstream nobody listens on: the client's connection is closed at once.
            let unused = TcpListener::bind(loopback()).await.unwrap();
            let unused_addr = unused.local_addr().unwrap();
            // Bound while the proxy binds, so the proxy cannot take the same port (madsim
            // hands out the lowest free one) and end up forwarding to itself.
            let (dead_proxy_addr, dead_handle) =
                start_proxy(unused_addr, 1, TransportFaults::default()).await;
            drop(unused);
            let mut orphan = TcpStream::connect(dead_proxy_addr).await.unwrap();
            assert_eq!(receive(&mut orphan, RESPONSE_WAIT_MS).await, Reply::Closed);
            assert!(
                eventually(RESPONSE_WAIT_MS, || dead_handle.connections_open_count()
                    == 0)
                .await
            );
        })
        .await;
    }

    /// Sends `request_count` sequential requests through a proxy with every fault at a
    /// moderate rate, reconnecting when the proxy closes the connection, and checks that
    /// every response delivered answers the request just sent. Returns the event log.
    async fn faulty_run(seed: u64, request_count: i32) -> Vec<TransportEvent> {
        let server = start_echo_server().await;
        let faults = TransportFaults {
            drop_request_after_apply_rate: 0.05,
            drop_response_rate: 0.05,
            duplicate_request_rate: 0.1,
            delay_rate: 0.2,
            delay_ms_max: 10,
            reset_rate: 0.03,
        };
        let (proxy_addr, handle) = start_proxy(server.addr, seed, faults).await;
        let mut client = TcpStream::connect(proxy_addr).await.unwrap();
        for correlation_id in 0..request_count {
            let payload = correlation_id.to_be_bytes();
            match call(&mut client, correlation_id, &payload, SILENCE_WAIT_MS).await {
                Reply::Frame(frame) => {
                    assert_eq!(&frame[..], &expected_response(correlation_id, &payload)[..])
                }
                Reply::Silence => {}
                Reply::Closed => client = TcpStream::connect(proxy_addr).await.unwrap(),
            }
        }
        handle.close();
        handle.events()
    }

    #[tokio::test]
    async fn seeded_rates_replay_the_same_events_and_seeds_differ() {
        within(async {
            let first = faulty_run(42, 40).await;
            let again = faulty_run(42, 40).await;
            let other = faulty_run(43, 40).await;
            assert_eq!(first, again, "same seed, same fault events");
            assert_ne!(first, other, "different seeds, different fault events");
            let has = |kind: fn(&FaultKind) -> bool| {
                first.iter().chain(&other).any(|event| kind(&event.kind))
            };
            assert!(has(|kind| matches!(kind, FaultKind::Delay { .. })));
            assert!(has(|kind| *kind == FaultKind::DuplicateRequest));
            assert!(has(|kind| *kind == FaultKind::Reset));
            assert!(has(|kind| *kind == FaultKind::DropRequestAfterApply
                || *kind == FaultKind::DropResponse));
        })
        .await;
    }

    #[test]
    fn responses_match_the_oldest_request_with_their_correlation_id() {
        let entry = |correlation_id, deliver| Outstanding {
            correlation_id,
            deliver,
        };
        let mut queue: VecDeque<Outstanding> = VecDeque::new();
        // Duplicated request 1: the first response is delivered, the second swallowed.
        queue.push_back(entry(Some(1), true));
        queue.push_back(entry(Some(1), false));
        assert!(match_response(&mut queue, Some(1)).unwrap().deliver);
        assert!(!match_response(&mut queue, Some(1)).unwrap().deliver);
        // Request 2 gets no response (acks=0); the response to 3 skips it.
        queue.push_back(entry(Some(2), false));
        queue.push_back(entry(Some(3), true));
        assert!(match_response(&mut queue, Some(3)).unwrap().deliver);
        assert!(queue.is_empty());
        // A response nobody asked for matches nothing and consumes nothing.
        queue.push_back(entry(Some(4), true));
        assert!(match_response(&mut queue, Some(9)).is_none());
        assert_eq!(queue.len(), 1);
        // Frames too short for a correlation id are matched by position.
        assert!(match_response(&mut queue, None).is_some());
        queue.push_back(entry(None, false));
        assert!(!match_response(&mut queue, Some(5)).unwrap().deliver);
        assert!(match_response(&mut queue, None).is_none());
        assert_eq!(request_correlation_id(&[0, 1, 2]), None);
        assert_eq!(response_correlation_id(&[0, 0, 0, 7, 1]), Some(7));
    }
}
