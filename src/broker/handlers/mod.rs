//! One file per Kafka API. `Dispatcher` is the `net::Service` of a node: it decodes a
//! frame (`request::decode_request`), routes it to its handler and encodes the answer.
//!
//! Handlers that must order side effects by arrival (Produce enqueues its appends) do
//! that before returning their `Pending`; everything else may finish later, and the
//! connection still answers in request order.

pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod fetch;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod produce;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::request::{decode_request, encode_response, DecodeError};
use super::state::BrokerState;
use crate::base::LeaderEpoch;
use crate::controller::ApiError;
use crate::log::producer_state::SequenceError;
use crate::log::LogError;
use crate::net::server::{Pending, Reply, Service};
use crate::protocol::error_codes as ec;

/// Routes requests of one node to their handlers.
#[derive(Debug)]
pub struct Dispatcher {
    pub state: Arc<BrokerState>,
}

fn ready(reply: Reply) -> Pending {
    Box::pin(std::future::ready(reply))
}

/// Encodes a response, or closes the connection if it cannot be encoded at this
/// version (a handler bug, logged).
pub fn respond(api_key: ApiKey, version: i16, correlation_id: i32, body: ResponseKind) -> Reply {
    match encode_response(api_key, version, correlation_id, &body) {
        Ok(bytes) => Reply::Respond(bytes),
        Err(e) => {
            tracing::error!(?api_key, version, error = %e, "response does not encode; closing");
            Reply::Close
        }
    }
}

impl Service for Dispatcher {
    fn call(self: Arc<Self>, frame: Bytes) -> Pin<Box<dyn Future<Output = Pending> + Send>> {
        let state = self.state.clone();
        Box::pin(dispatch(state, frame))
    }
}

/// Decodes and starts one request.
pub async fn dispatch(state: Arc<BrokerState>, frame: Bytes) -> Pending {
    let request = match decode_request(frame) {
        Ok(request) => request,
        Err(DecodeError::UnsupportedVersion {
            api_key,
            version,
            correlation_id,
        }) if api_key == ApiKey::ApiVersions as i16 => {
            tracing::debug!(version, "ApiVersions at an unsupported version");
            return ready(api_versions::unsupported_version(correlation_id));
        }
        Err(e) => {
            tracing::info!(error = %e, "closing connection on an undecodable request");
            return ready(Reply::Close);
        }
    };
    let api_key = request.api_key;
    let version = request.version();
    let correlation_id = request.correlation_id();
    let done = move |body: ResponseKind| respond(api_key, version, correlation_id, body);
    match request.body {
        RequestKind::ApiVersions(r) => ready(done(api_versions::handle(&r, version))),
        RequestKind::Metadata(r) => ready(done(metadata::handle(&state, r, version).await)),
        RequestKind::Produce(r) => {
            let pending = produce::start(&state, r, version).await;
            Box::pin(async move {
                match pending.await {
                    produce::Outcome::Respond(body) => done(*body),
                    produce::Outcome::NoResponse => Reply::NoResponse,
                    produce::Outcome::Close => Reply::Close,
                }
            })
        }
        RequestKind::Fetch(r) => {
            Box::pin(async move { done(fetch::handle(&state, r, version).await) })
        }
        RequestKind::ListOffsets(r) => ready(done(list_offsets::handle(&state, r, version).await)),
        RequestKind::CreateTopics(r) => {
            ready(done(create_topics::handle(&state, r, version).await))
        }
        RequestKind::DeleteTopics(r) => {
            ready(done(delete_topics::handle(&state, r, version).await))
        }
        RequestKind::CreatePartitions(r) => {
            ready(done(create_partitions::handle(&state, r, version).await))
        }
        RequestKind::DescribeConfigs(r) => {
            ready(done(describe_configs::handle(&state, r, version)))
        }
        RequestKind::AlterConfigs(r) => {
            ready(done(alter_configs::handle(&state, r, version).await))
        }
        RequestKind::IncrementalAlterConfigs(r) => ready(done(
            incremental_alter_configs::handle(&state, r, version).await,
        )),
        RequestKind::DescribeCluster(r) => {
            ready(done(describe_cluster::handle(&state, r, version)))
        }
        RequestKind::DescribeLogDirs(r) => {
            ready(done(describe_log_dirs::handle(&state, r, version).await))
        }
        RequestKind::DeleteRecords(r) => {
            ready(done(delete_records::handle(&state, r, version).await))
        }
        RequestKind::DescribeProducers(r) => {
            ready(done(describe_producers::handle(&state, r, version).await))
        }
        RequestKind::InitProducerId(r) => {
            ready(done(init_producer_id::handle(&state, r, version).await))
        }
        RequestKind::OffsetForLeaderEpoch(r) => ready(done(
            offset_for_leader_epoch::handle(&state, r, version).await,
        )),
        // decode_request only admits the APIs listed in SUPPORTED_APIS, all routed above.
        other => {
            tracing::error!(?other, "decoded request without a handler; closing");
            ready(Reply::Close)
        }
    }
}

/// The Kafka error code for a log error on a request path.
pub fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::Batch(b) => b.kafka_error_code(),
        LogError::RecordTooLarge { .. } => ec::MESSAGE_TOO_LARGE,
        LogError::InvalidTimestamp { .. } => ec::INVALID_TIMESTAMP,
        LogError::OffsetOutOfRange { .. } => ec::OFFSET_OUT_OF_RANGE,
        LogError::Corrupt { .. } => ec::CORRUPT_MESSAGE,
        LogError::Io(_) | LogError::Offline(_) => ec::KAFKA_STORAGE_ERROR,
        LogError::Sequence(s) => match s {
            SequenceError::StaleEpoch { .. } => ec::INVALID_PRODUCER_EPOCH,
            SequenceError::OutOfOrder { .. } => ec::OUT_OF_ORDER_SEQUENCE_NUMBER,
            SequenceError::DuplicateAmongOthers { .. } => ec::DUPLICATE_SEQUENCE_NUMBER,
        },
    }
}

/// Kafka's check of a client's `current_leader_epoch` against the partition's.
pub fn check_leader_epoch(requested: i32, current: LeaderEpoch) -> Result<(), i16> {
    if requested < 0 || requested == current.0 {
        Ok(())
    } else if requested > current.0 {
        Err(ec::UNKNOWN_LEADER_EPOCH)
    } else {
        Err(ec::FENCED_LEADER_EPOCH)
    }
}

/// An admin outcome as responses carry it: the error code, and the message if it failed.
pub fn error_fields(outcome: Result<(), ApiError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (ec::NONE, None),
        Err(e) => (e.code, Some(StrBytes::from_string(e.message))),
    }
}

/// Kafka's refusal of a config request about a resource type other than topic or broker.
pub fn unsupported_resource_type(resource_type: i8) -> ApiError {
    ApiError::new(
        ec::INVALID_REQUEST,
        format!("Unsupported resource type {resource_type}"),
    )
}
