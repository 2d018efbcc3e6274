//! OffsetForLeaderEpoch: the end offset of the largest known epoch at or below the one
//! asked for, from the partition's leader-epoch cache (what a client uses to detect
//! truncation after a leader change).

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ResponseKind,
};

use super::{check_leader_epoch, log_error_code};
use crate::base::LeaderEpoch;
use crate::broker::state::BrokerState;
use crate::protocol::error_codes as ec;

pub async fn handle(
    state: &Arc<BrokerState>,
    request: OffsetForLeaderEpochRequest,
    _version: i16,
) -> ResponseKind {
    let mut topics = Vec::new();
    for topic in request.topics {
        let name = topic.topic.0.as_str().to_string();
        let mut partitions = Vec::new();
        for p in topic.partitions {
            let result = EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            let outcome = match state.partition(&name, p.partition) {
                None => Err(ec::UNKNOWN_TOPIC_OR_PARTITION),
                Some(local) => match check_leader_epoch(p.current_leader_epoch, local.leader_epoch)
                {
                    Err(code) => Err(code),
                    Ok(()) => {
                        let wanted = LeaderEpoch(p.leader_epoch);
                        match local
                            .handle
                            .run(move |log| {
                                log.epochs().end_offset_for(wanted, log.log_end_offset())
                            })
                            .await
                        {
                            Ok(found) => Ok(found),
                            Err(e) => Err(log_error_code(&e)),
                        }
                    }
                },
            };
            partitions.push(match outcome {
                Ok(Some((epoch, end))) => result
                    .with_error_code(ec::NONE)
                    .with_leader_epoch(epoch.0)
                    .with_end_offset(end.0),
                Ok(None) => result.with_error_code(ec::NONE),
                Err(code) => result.with_error_code(code),
            });
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions),
        );
    }
    ResponseKind::OffsetForLeaderEpoch(
        OffsetForLeaderEpochResponse::default()
            .with_throttle_time_ms(0)
            .with_topics(topics),
    )
}
