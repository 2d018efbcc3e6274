//! Produce (v3+; advertised from v0, see `request::SUPPORTED_APIS`). Appends are
//! enqueued on each partition's driver in request order before `start` returns; the
//! answer waits for them (and, for fsync-before-ack topics, for their group commit).
//!
//! acks: 0 (no answer; on any partition error the connection is closed, as Kafka does so
//! the client refreshes metadata), 1 and -1 (all). On one node the in-sync replicas are
//! this node, so acks=all is answered when the leader's append (and its fsync, if the
//! topic is fsync-before-ack) is done — exactly when acks=1 is. A topic whose
//! `min.insync.replicas` is above 1 refuses acks=all writes with NOT_ENOUGH_REPLICAS, as
//! Kafka does while its ISR is that small.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::log_error_code;
use crate::broker::state::BrokerState;
use crate::log::{AppendInfo, LogError};
use crate::protocol::error_codes as ec;

/// The in-sync replicas of every partition: this node.
const IN_SYNC_REPLICAS: i32 = 1;

/// What the connection does once the appends are done.
pub enum Outcome {
    Respond(Box<ResponseKind>),
    NoResponse,
    Close,
}

type AppendFuture = Pin<Box<dyn Future<Output = Result<AppendInfo, LogError>> + Send>>;

enum Slot {
    Failed(i16, Option<String>),
    Waiting(AppendFuture),
}

/// Starts a Produce request: validates what can be checked up front and enqueues every
/// append, in order. The returned future builds the answer.
pub async fn start(
    state: &Arc<BrokerState>,
    request: ProduceRequest,
    _version: i16,
) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
    let acks = request.acks;
    let mut topics: Vec<(kafka_protocol::messages::TopicName, Vec<(i32, Slot)>)> = Vec::new();
    let image = state.image();
    for topic in request.topic_data {
        let name = topic.name.0.as_str().to_string();
        // acks=all needs `min.insync.replicas` in-sync replicas; this node is the one.
        let too_few_replicas = acks == -1
            && image.topic(&name).is_some_and(|t| {
                state.topic_log_config(&t.configs).min_insync_replicas > IN_SYNC_REPLICAS
            });
        let mut partitions = Vec::new();
        for data in topic.partition_data {
            let slot = if !matches!(acks, -1..=1) {
                Slot::Failed(ec::INVALID_REQUIRED_ACKS, None)
            } else {
                match (state.partition(&name, data.index), data.records) {
                    (None, _) => Slot::Failed(ec::UNKNOWN_TOPIC_OR_PARTITION, None),
                    (Some(_), _) if too_few_replicas => Slot::Failed(
                        ec::NOT_ENOUGH_REPLICAS,
                        Some(format!(
                            "The size of the current ISR ({IN_SYNC_REPLICAS}) is insufficient to satisfy the min.isr requirement of the topic"
                        )),
                    ),
                    (Some(_), None) => Slot::Failed(
                        ec::INVALID_RECORD,
                        Some("Produce request without records".to_string()),
                    ),
                    (Some(partition), Some(records)) => {
                        match partition
                            .handle
                            .submit_append(records.to_vec(), partition.leader_epoch)
                            .await
                        {
                            Ok(reply) => Slot::Waiting(Box::pin(reply)),
                            Err(e) => Slot::Failed(log_error_code(&e), Some(e.to_string())),
                        }
                    }
                }
            };
            partitions.push((data.index, slot));
        }
        topics.push((topic.name, partitions));
    }
    Box::pin(async move {
        let mut any_error = false;
        let mut responses = Vec::new();
        for (name, partitions) in topics {
            let mut partition_responses = Vec::new();
            for (index, slot) in partitions {
                let outcome = match slot {
                    Slot::Failed(code, message) => Err((code, message)),
                    Slot::Waiting(reply) => reply.await.map_err(|e| {
                        tracing::debug!(topic = name.0.as_str(), partition = index, error = %e, "produce rejected");
                        (log_error_code(&e), Some(e.to_string()))
                    }),
                };
                let response = match outcome {
                    Ok(info) => PartitionProduceResponse::default()
                        .with_index(index)
                        .with_error_code(ec::NONE)
                        .with_base_offset(info.first_offset.0)
                        .with_log_append_time_ms(info.log_append_time_ms)
                        .with_log_start_offset(info.log_start_offset.0),
                    Err((code, message)) => {
                        any_error = true;
                        PartitionProduceResponse::default()
                            .with_index(index)
                            .with_error_code(code)
                            .with_base_offset(-1)
                            .with_log_append_time_ms(-1)
                            .with_log_start_offset(-1)
                            .with_error_message(message.map(StrBytes::from_string))
                    }
                };
                partition_responses.push(response);
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(partition_responses),
            );
        }
        if acks == 0 {
            return if any_error {
                Outcome::Close
            } else {
                Outcome::NoResponse
            };
        }
        Outcome::Respond(Box::new(ResponseKind::Produce(
            ProduceResponse::default()
                .with_throttle_time_ms(0)
                .with_responses(responses),
        )))
    })
}
