//! DescribeProducers: the idempotent producers each partition knows (Kafka's
//! `kafka-transactions.sh describe-producers`): id, epoch, the last sequence and
//! timestamp of its latest batch. There are no transactions yet, so the coordinator
//! epoch and the open transaction's start offset are always -1. A partition this node
//! does not host is UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, ProducerId, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::log_error_code;
use crate::broker::state::BrokerState;
use crate::protocol::error_codes as ec;

/// What is described of one producer: (id, epoch, last sequence, last timestamp).
type Described = (i64, i16, i32, i64);

pub async fn handle(
    state: &Arc<BrokerState>,
    request: DescribeProducersRequest,
    _version: i16,
) -> ResponseKind {
    let mut topics = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.as_str().to_string();
        let mut partitions = Vec::new();
        for index in topic.partition_indexes {
            let response = PartitionResponse::default().with_partition_index(index);
            let Some(partition) = state.partition(&name, index) else {
                partitions.push(
                    response
                        .with_error_code(ec::UNKNOWN_TOPIC_OR_PARTITION)
                        .with_error_message(Some(StrBytes::from_static_str(
                            "This server does not host this topic-partition.",
                        ))),
                );
                continue;
            };
            let described = partition
                .handle
                .run(|log| {
                    log.producers()
                        .iter()
                        .filter_map(|(id, entry)| {
                            let last = entry.batches.back()?;
                            Some((
                                id.0,
                                entry.epoch.0,
                                last.last_sequence.0,
                                entry.last_timestamp_ms,
                            ))
                        })
                        .collect::<Vec<Described>>()
                })
                .await;
            partitions.push(match described {
                Ok(producers) => response.with_error_code(ec::NONE).with_active_producers(
                    producers
                        .into_iter()
                        .map(|(id, epoch, last_sequence, last_timestamp)| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(id))
                                .with_producer_epoch(i32::from(epoch))
                                .with_last_sequence(last_sequence)
                                .with_last_timestamp(last_timestamp)
                                .with_coordinator_epoch(-1)
                                .with_current_txn_start_offset(-1)
                        })
                        .collect(),
                ),
                Err(e) => response
                    .with_error_code(log_error_code(&e))
                    .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            });
        }
        topics.push(
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ResponseKind::DescribeProducers(
        DescribeProducersResponse::default()
            .with_throttle_time_ms(0)
            .with_topics(topics),
    )
}
