//! DeleteRecords: moves a partition's log start offset (offset -1 means the high
//! watermark, as Kafka); offsets past the high watermark are OFFSET_OUT_OF_RANGE.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};

use super::log_error_code;
use crate::base::Offset;
use crate::broker::state::BrokerState;
use crate::protocol::error_codes as ec;

pub async fn handle(
    state: &Arc<BrokerState>,
    request: DeleteRecordsRequest,
    _version: i16,
) -> ResponseKind {
    let mut topics = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.as_str().to_string();
        let mut partitions = Vec::new();
        for p in topic.partitions {
            let result =
                DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            let outcome = match state.partition(&name, p.partition_index) {
                None => Err(ec::UNKNOWN_TOPIC_OR_PARTITION),
                Some(local) => {
                    let offset = p.offset;
                    match local
                        .handle
                        .run(move |log| {
                            let target = if offset == -1 {
                                log.high_watermark()
                            } else {
                                Offset(offset)
                            };
                            log.delete_records(target)
                        })
                        .await
                    {
                        Ok(Ok(start)) => Ok(start.0),
                        Ok(Err(e)) | Err(e) => Err(log_error_code(&e)),
                    }
                }
            };
            partitions.push(match outcome {
                Ok(low) => result.with_error_code(ec::NONE).with_low_watermark(low),
                Err(code) => result.with_error_code(code).with_low_watermark(-1),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ResponseKind::DeleteRecords(
        DeleteRecordsResponse::default()
            .with_throttle_time_ms(0)
            .with_topics(topics),
    )
}
