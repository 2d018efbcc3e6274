//! One TCP connection from the client to one broker.
//!
//! Owns: correlation ids, request/response header versions, pipelining (many requests
//! in flight, responses matched in order, as Kafka brokers answer them), the request
//! timeout, and the ApiVersions handshake that picks the version used for each API.
//! Must never: leave a written frame unflushed (madsim sends nothing until `flush`),
//! hand a response to the wrong request, keep using a connection after a timeout or a
//! protocol error (its later responses can no longer be trusted), or panic on any bytes
//! a broker sends.
//!
//! Shape: the caller encodes a request and passes it to a writer task through a bounded
//! channel; the writer records the request in the pending queue *before* writing it, so
//! the reader task, which pops the queue head for every response and checks its
//! correlation id, can never see a response for a request it does not know. Dropping
//! the caller's future does not disturb the stream: the frame is written whole by the
//! writer and its response is read and discarded.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Request, StrBytes, VersionRange,
};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::base::limits::{CLIENT_IN_FLIGHT_REQUESTS_MAX, CLIENT_RESPONSE_BYTES_MAX};
use crate::client::errors::{code, ClientError};
use crate::net::frame::{read_frame, write_frame};

/// The ApiVersions version sent first; brokers that do not know it answer with a v0
/// response carrying UNSUPPORTED_VERSION, and the client retries with v0 (KIP-511).
const API_VERSIONS_VERSION_FIRST: i16 = 3;

/// Settings of one connection.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// Sent in every request header (`client.id`).
    pub client_id: String,
    pub connect_timeout_ms: u64,
    /// How long a request may wait for its response before the connection is closed.
    pub request_timeout_ms: u64,
    /// Largest response frame accepted (capped at `CLIENT_RESPONSE_BYTES_MAX`).
    pub response_bytes_max: u32,
    /// Requests pipelined at once (capped at `CLIENT_IN_FLIGHT_REQUESTS_MAX`).
    pub in_flight_requests_max: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: "skald".to_string(),
            connect_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            response_bytes_max: CLIENT_RESPONSE_BYTES_MAX,
            in_flight_requests_max: 64,
        }
    }
}

/// The versions of `key` this client can speak: kafka-protocol's range, narrowed where
/// the client relies on by-name fields that later versions replaced with topic ids.
pub fn client_version_range(key: ApiKey) -> VersionRange {
    let supported = key.valid_versions();
    let cap = match key {
        // v13 identifies topics by id only.
        ApiKey::Produce | ApiKey::Fetch => VersionRange { min: 0, max: 12 },
        // v0 cannot ask for "all topics" with a null list.
        ApiKey::Metadata => VersionRange {
            min: 1,
            max: i16::MAX,
        },
        _ => VersionRange {
            min: 0,
            max: i16::MAX,
        },
    };
    supported.intersect(&cap)
}

/// Picks, for every API both sides know, the highest version both support.
/// `broker` holds (api key, min, max) as the broker advertised them.
pub fn negotiate_versions(broker: &[(i16, i16, i16)]) -> BTreeMap<i16, i16> {
    let mut versions = BTreeMap::new();
    for &(api_key, broker_min, broker_max) in broker {
        let Ok(key) = ApiKey::try_from(api_key) else {
            continue;
        };
        let common = client_version_range(key).intersect(&VersionRange {
            min: broker_min,
            max: broker_max,
        });
        if !common.is_empty() {
            versions.insert(api_key, common.max);
        }
    }
    versions
}

/// A readable name for an API key, for errors.
pub fn api_name(api_key: i16) -> String {
    match ApiKey::try_from(api_key) {
        Ok(key) => format!("{key:?}"),
        Err(()) => format!("api {api_key}"),
    }
}

enum Reply {
    /// Wait for the broker's response.
    Response(
        oneshot::Sender<Result<Bytes, ClientError>>,
        OwnedSemaphorePermit,
    ),
    /// The broker sends no response (Produce with acks=0): report once written.
    Written(oneshot::Sender<Result<(), ClientError>>),
}

struct Outgoing {
    correlation_id: i32,
    frame: Bytes,
    reply: Reply,
}

struct Pending {
    correlation_id: i32,
    reply: oneshot::Sender<Result<Bytes, ClientError>>,
    /// Held until the response is read, so the pending queue stays bounded even when
    /// callers give up on their requests.
    _slot: OwnedSemaphorePermit,
}

struct State {
    pending: VecDeque<Pending>,
    /// Set once; every later request fails with it.
    broken: Option<ClientError>,
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // No code panics while holding the lock; recover the data if one ever did.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn broken(&self) -> Option<ClientError> {
        self.lock().broken.clone()
    }

    /// Marks the connection broken (first error wins) and fails every pending request.
    fn fail(&self, error: ClientError) {
        let drained: Vec<Pending> = {
            let mut state = self.lock();
            if state.broken.is_none() {
                state.broken = Some(error);
            }
            state.pending.drain(..).collect()
        };
        let error = self.broken().unwrap_or(ClientError::Closed);
        for pending in drained {
            let _ = pending.reply.send(Err(error.clone()));
        }
    }

    fn push(&self, pending: Pending) -> Result<(), (Pending, ClientError)> {
        let mut state = self.lock();
        match &state.broken {
            Some(error) => Err((pending, error.clone())),
            None => {
                state.pending.push_back(pending);
                Ok(())
            }
        }
    }

    fn pop(&self, correlation_id: i32, addr: &str) -> Result<Pending, ClientError> {
        let mut state = self.lock();
        match state.pending.front() {
            None => Err(ClientError::Protocol {
                addr: addr.to_string(),
                detail: format!("response with correlation id {correlation_id} to no request"),
            }),
            Some(head) if head.correlation_id != correlation_id => Err(ClientError::Protocol {
                addr: addr.to_string(),
                detail: format!(
                    "response correlation id {correlation_id}, expected {}",
                    head.correlation_id
                ),
            }),
            Some(_) => state.pending.pop_front().ok_or(ClientError::Closed),
        }
    }
}

/// A connection to one broker, with the API versions negotiated at connect.
/// Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Connection {
    addr: String,
    config: ConnectionConfig,
    shared: Arc<Shared>,
    outgoing: mpsc::Sender<Outgoing>,
    slots: Arc<Semaphore>,
    next_correlation_id: AtomicI32,
    /// api key -> (broker min, broker max), as advertised.
    broker_versions: BTreeMap<i16, (i16, i16)>,
    /// api key -> the version this connection uses.
    versions: BTreeMap<i16, i16>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .field("broken", &self.shared.broken())
            .finish()
    }
}

impl Connection {
    /// Opens a TCP connection to `addr` ("host:port") and runs the ApiVersions handshake.
    pub async fn connect(addr: &str, config: ConnectionConfig) -> Result<Connection, ClientError> {
        let connect_error = |detail: String| ClientError::Connect {
            addr: addr.to_string(),
            detail,
        };
        let stream = tokio::time::timeout(
            Duration::from_millis(config.connect_timeout_ms),
            TcpStream::connect(addr),
        )
        .await
        .map_err(|_| connect_error(format!("timed out after {} ms", config.connect_timeout_ms)))?
        .map_err(|error| connect_error(error.to_string()))?;
        #[cfg(not(madsim))]
        let _ = stream.set_nodelay(true);
        let mut connection = Connection::start(addr, config, stream);
        connection.handshake().await?;
        Ok(connection)
    }

    fn start(addr: &str, config: ConnectionConfig, stream: TcpStream) -> Connection {
        let in_flight_max = config
            .in_flight_requests_max
            .clamp(1, CLIENT_IN_FLIGHT_REQUESTS_MAX);
        let response_bytes_max = config.response_bytes_max.min(CLIENT_RESPONSE_BYTES_MAX);
        let (read_half, write_half) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: VecDeque::new(),
                broken: None,
            }),
        });
        let (outgoing, outgoing_rx) = mpsc::channel(in_flight_max);
        let reader = tokio::spawn(read_loop(
            read_half,
            shared.clone(),
            addr.to_string(),
            response_bytes_max,
        ));
        let writer = tokio::spawn(write_loop(
            write_half,
            outgoing_rx,
            shared.clone(),
            addr.to_string(),
        ));
        Connection {
            addr: addr.to_string(),
            config,
            shared,
            outgoing,
            slots: Arc::new(Semaphore::new(in_flight_max)),
            next_correlation_id: AtomicI32::new(0),
            broker_versions: BTreeMap::new(),
            versions: BTreeMap::new(),
            reader,
            writer,
        }
    }

    async fn handshake(&mut self) -> Result<(), ClientError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("skald"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let first = self.send_at(&request, API_VERSIONS_VERSION_FIRST).await;
        let response = match first {
            Ok(response) if response.error_code != code::UNSUPPORTED_VERSION => response,
            // A v0 answer to a v3 request either decodes with UNSUPPORTED_VERSION or does
            // not decode at all; both mean "ask again with v0".
            Ok(_) | Err(ClientError::Protocol { .. }) => self.send_at(&request, 0).await?,
            Err(error) => return Err(error),
        };
        ClientError::check(response.error_code, None, || {
            format!("ApiVersions from {}", self.addr)
        })?;
        let advertised: Vec<(i16, i16, i16)> = response
            .api_keys
            .iter()
            .map(|api| (api.api_key, api.min_version, api.max_version))
            .collect();
        self.broker_versions = advertised
            .iter()
            .map(|&(key, min, max)| (key, (min, max)))
            .collect();
        self.versions = negotiate_versions(&advertised);
        Ok(())
    }

    /// The broker address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection failed (closed, timed out, protocol error). A broken
    /// connection fails every request; open a new one.
    pub fn is_broken(&self) -> bool {
        self.shared.broken().is_some()
    }

    /// The API ranges the broker advertised: api key -> (min, max).
    pub fn broker_versions(&self) -> &BTreeMap<i16, (i16, i16)> {
        &self.broker_versions
    }

    /// The version negotiated for `key`, or `UnsupportedApi`.
    pub fn version(&self, key: ApiKey) -> Result<i16, ClientError> {
        self.versions
            .get(&(key as i16))
            .copied()
            .ok_or_else(|| ClientError::UnsupportedApi {
                addr: self.addr.clone(),
                api: format!("{key:?}"),
            })
    }

    /// Closes the connection: every pending and later request fails with `error`.
    pub fn close(&self, error: ClientError) {
        self.shared.fail(error);
        self.reader.abort();
        self.writer.abort();
    }

    /// Sends `request` at the negotiated version and waits for its response.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response, ClientError> {
        let version = self.version(api_key::<R>()?)?;
        self.send_at(request, version).await
    }

    /// Like `send`, with a request timeout of `timeout_ms` instead of the configured one
    /// (a long-polling Fetch needs `max_wait_ms` on top of it).
    pub async fn send_with_timeout<R: Request>(
        &self,
        request: &R,
        timeout_ms: u64,
    ) -> Result<R::Response, ClientError> {
        let version = self.version(api_key::<R>()?)?;
        self.roundtrip(request, version, timeout_ms).await
    }

    /// Sends `request` at an explicit `version` and waits for its response.
    pub async fn send_at<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        self.roundtrip(request, version, self.config.request_timeout_ms)
            .await
    }

    /// Sends a request the broker will not answer (Produce with acks=0). Returns once the
    /// frame is written and flushed.
    pub async fn send_without_response<R: Request>(&self, request: &R) -> Result<(), ClientError> {
        let version = self.version(api_key::<R>()?)?;
        let correlation_id = self.next_correlation_id();
        let frame = self.encode(request, version, correlation_id)?;
        let (reply, written) = oneshot::channel();
        let timeout_ms = self.config.request_timeout_ms;
        let exchange = async {
            self.outgoing
                .send(Outgoing {
                    correlation_id,
                    frame,
                    reply: Reply::Written(reply),
                })
                .await
                .map_err(|_| self.broken_error())?;
            written.await.map_err(|_| self.broken_error())?
        };
        match tokio::time::timeout(Duration::from_millis(timeout_ms), exchange).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out(R::KEY, timeout_ms)),
        }
    }

    async fn roundtrip<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout_ms: u64,
    ) -> Result<R::Response, ClientError> {
        let correlation_id = self.next_correlation_id();
        let frame = self.encode(request, version, correlation_id)?;
        let exchange = async {
            let slot = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| self.broken_error())?;
            let (reply, response) = oneshot::channel();
            self.outgoing
                .send(Outgoing {
                    correlation_id,
                    frame,
                    reply: Reply::Response(reply, slot),
                })
                .await
                .map_err(|_| self.broken_error())?;
            response.await.map_err(|_| self.broken_error())?
        };
        let mut body = match tokio::time::timeout(Duration::from_millis(timeout_ms), exchange).await
        {
            Ok(result) => result?,
            Err(_) => return Err(self.timed_out(R::KEY, timeout_ms)),
        };
        let protocol_error = |what: &str, error: anyhow::Error| {
            let error = ClientError::Protocol {
                addr: self.addr.clone(),
                detail: format!("{what} of {} v{version}: {error}", api_name(R::KEY)),
            };
            // The stream itself is intact, but a broker that sends undecodable
            // responses is not one to keep talking to on this connection.
            self.close(error.clone());
            error
        };
        ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|error| protocol_error("response header", error))?;
        R::Response::decode(&mut body, version).map_err(|error| protocol_error("response", error))
    }

    fn timed_out(&self, api_key: i16, timeout_ms: u64) -> ClientError {
        let error = ClientError::RequestTimeout {
            addr: self.addr.clone(),
            api: api_name(api_key),
            timeout_ms,
        };
        // Later responses would be matched against requests the caller gave up on, and a
        // silent broker is likely gone: close, as the Java client does.
        self.close(error.clone());
        error
    }

    fn broken_error(&self) -> ClientError {
        self.shared
            .broken()
            .unwrap_or_else(|| ClientError::Disconnected {
                addr: self.addr.clone(),
                detail: "connection closed".to_string(),
            })
    }

    fn next_correlation_id(&self) -> i32 {
        // Wraps after 2^31 requests; only equality with the pending head matters.
        self.next_correlation_id.fetch_add(1, Ordering::Relaxed) & i32::MAX
    }

    fn encode<R: Request>(
        &self,
        request: &R,
        version: i16,
        correlation_id: i32,
    ) -> Result<Bytes, ClientError> {
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.config.client_id.clone())));
        let mut buf = BytesMut::new();
        let encode_error = |error: anyhow::Error| {
            ClientError::Encode(format!("{} v{version}: {error}", api_name(R::KEY)))
        };
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(encode_error)?;
        request.encode(&mut buf, version).map_err(encode_error)?;
        Ok(buf.freeze())
    }
}

fn api_key<R: Request>() -> Result<ApiKey, ClientError> {
    ApiKey::try_from(R::KEY)
        .map_err(|()| ClientError::InvalidArgument(format!("api key {}", R::KEY)))
}

async fn read_loop(
    mut reader: ReadHalf<TcpStream>,
    shared: Arc<Shared>,
    addr: String,
    response_bytes_max: u32,
) {
    loop {
        let frame = match read_frame(&mut reader, response_bytes_max).await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                shared.fail(ClientError::Disconnected {
                    addr,
                    detail: "closed by the broker".to_string(),
                });
                return;
            }
            Err(error) => {
                shared.fail(ClientError::Disconnected {
                    addr,
                    detail: error.to_string(),
                });
                return;
            }
        };
        let Some(prefix) = frame.get(..4) else {
            shared.fail(ClientError::Protocol {
                addr,
                detail: format!("{}-byte response has no correlation id", frame.len()),
            });
            return;
        };
        let correlation_id = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        match shared.pop(correlation_id, &addr) {
            // The caller may have given up; its response is read and dropped.
            Ok(pending) => {
                let _ = pending.reply.send(Ok(frame));
            }
            Err(error) => {
                shared.fail(error);
                return;
            }
        }
    }
}

async fn write_loop(
    mut writer: WriteHalf<TcpStream>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
    addr: String,
) {
    while let Some(request) = outgoing.recv().await {
        let written = match request.reply {
            Reply::Response(reply, slot) => {
                let pending = Pending {
                    correlation_id: request.correlation_id,
                    reply,
                    _slot: slot,
                };
                if let Err((pending, error)) = shared.push(pending) {
                    let _ = pending.reply.send(Err(error));
                    continue;
                }
                None
            }
            Reply::Written(reply) => {
                if let Some(error) = shared.broken() {
                    let _ = reply.send(Err(error));
                    continue;
                }
                Some(reply)
            }
        };
        match write_frame(&mut writer, &request.frame).await {
            Ok(()) => {
                if let Some(reply) = written {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(error) => {
                let error = ClientError::Disconnected {
                    addr,
                    detail: error.to_string(),
                };
                shared.fail(error.clone());
                if let Some(reply) = written {
                    let _ = reply.send(Err(error));
                }
                return;
            }
        }
    }
    // The connection was dropped: say goodbye so the broker closes its side.
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        let versions = negotiate_versions(&[
            (ApiKey::Produce as i16, 0, 11),
            (ApiKey::Fetch as i16, 0, 17),
            (ApiKey::Metadata as i16, 0, 0),
            (ApiKey::ListOffsets as i16, 0, 7),
            (9999, 0, 3),
        ]);
        assert_eq!(versions.get(&(ApiKey::Produce as i16)), Some(&11));
        // Capped by what this client speaks (topic names, not ids).
        assert_eq!(versions.get(&(ApiKey::Fetch as i16)), Some(&12));
        // Metadata v0 only: nothing in common.
        assert_eq!(versions.get(&(ApiKey::Metadata as i16)), None);
        assert_eq!(versions.get(&(ApiKey::ListOffsets as i16)), Some(&7));
        assert_eq!(versions.get(&9999), None);
        // A broker whose minimum is above ours.
        let versions = negotiate_versions(&[(ApiKey::Produce as i16, 13, 13)]);
        assert!(versions.is_empty());
    }
}
