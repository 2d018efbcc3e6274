//! ListOffsets: earliest (-2; -4 earliest-local is the same, nothing is tiered), latest
//! (-1: the high watermark, which is also the last stable offset without transactions),
//! max timestamp (-3), or the first offset whose timestamp is at least the one given.
//! Only offsets below the high watermark are ever returned.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, ResponseKind};

use super::{check_leader_epoch, log_error_code};
use crate::base::Offset;
use crate::broker::state::BrokerState;
use crate::log::{LogError, PartitionLog};
use crate::protocol::error_codes as ec;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

/// The leader epoch of the batch holding `offset` (from the epoch cache), or -1.
pub fn epoch_at(log: &PartitionLog, offset: Offset) -> i32 {
    log.epochs()
        .entries()
        .iter()
        .rev()
        .find(|(_, start)| *start <= offset)
        .map_or(-1, |(epoch, _)| epoch.0)
}

/// (offset, timestamp, leader epoch) for one lookup, on the driver task.
fn lookup(log: &mut PartitionLog, timestamp: i64) -> Result<(i64, i64, i32), LogError> {
    let hw = log.high_watermark();
    let latest_epoch = log.epochs().latest().map_or(-1, |(e, _)| e.0);
    Ok(match timestamp {
        LATEST => (hw.0, -1, latest_epoch),
        EARLIEST | EARLIEST_LOCAL => {
            let start = log.log_start_offset();
            (start.0, -1, epoch_at(log, start))
        }
        MAX_TIMESTAMP => match log.offset_of_max_timestamp()? {
            Some((offset, ts)) if offset < hw => (offset.0, ts, epoch_at(log, offset)),
            _ => (-1, -1, -1),
        },
        ts => match log.offset_for_timestamp(ts)? {
            Some((offset, found)) if offset < hw => (offset.0, found, epoch_at(log, offset)),
            _ => (-1, -1, -1),
        },
    })
}

pub async fn handle(
    state: &Arc<BrokerState>,
    request: ListOffsetsRequest,
    version: i16,
) -> ResponseKind {
    let mut topics = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.as_str().to_string();
        let mut partitions = Vec::new();
        for p in topic.partitions {
            let mut response = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1);
            let outcome = match state.partition(&name, p.partition_index) {
                None => Err(ec::UNKNOWN_TOPIC_OR_PARTITION),
                Some(local) => match check_leader_epoch(p.current_leader_epoch, local.leader_epoch)
                {
                    Err(code) => Err(code),
                    Ok(()) => {
                        let timestamp = p.timestamp;
                        match local.handle.run(move |log| lookup(log, timestamp)).await {
                            Ok(Ok(found)) => Ok(found),
                            Ok(Err(e)) | Err(e) => Err(log_error_code(&e)),
                        }
                    }
                },
            };
            match outcome {
                Ok((offset, timestamp, epoch)) => {
                    response.error_code = ec::NONE;
                    response.offset = offset;
                    response.timestamp = timestamp;
                    if version >= 4 {
                        response.leader_epoch = epoch;
                    }
                }
                Err(code) => response.error_code = code,
            }
            partitions.push(response);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ResponseKind::ListOffsets(
        ListOffsetsResponse::default()
            .with_throttle_time_ms(0)
            .with_topics(topics),
    )
}
