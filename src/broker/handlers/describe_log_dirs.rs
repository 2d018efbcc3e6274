//! DescribeLogDirs: the node has one log dir (its data directory). Every local
//! partition is listed in it, with its size on disk; offset lag is 0 and no partition is
//! a "future" replica (there are no replica moves between dirs). A null topic list means
//! every partition; otherwise only the named partitions that exist here, as Kafka.
//!
//! Total and usable bytes are -1 (unknown, as Kafka reports when it cannot tell): the
//! `Disk` seam does not expose the file system's capacity.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::metadata::topic_name;
use crate::broker::state::BrokerState;
use crate::protocol::error_codes as ec;

/// Kafka's value for a capacity it does not know.
const UNKNOWN_BYTES: i64 = -1;

pub async fn handle(
    state: &Arc<BrokerState>,
    request: DescribeLogDirsRequest,
    _version: i16,
) -> ResponseKind {
    // The wanted (topic, partition) pairs, or None for all.
    let wanted: Option<Vec<(String, i32)>> = request.topics.map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                let name = t.topic.0.as_str().to_string();
                t.partitions.iter().map(move |p| (name.clone(), *p))
            })
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for ((topic, index), local) in state.partitions() {
        if wanted
            .as_ref()
            .is_some_and(|w| !w.iter().any(|(t, p)| *t == topic && *p == index))
        {
            continue;
        }
        // A partition whose driver is gone (deleted meanwhile) is left out.
        let Ok(size) = local.handle.run(|log| log.size_bytes()).await else {
            continue;
        };
        by_topic.entry(topic).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(index)
                .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
                .with_offset_lag(0)
                .with_is_future_key(false),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            DescribeLogDirsTopic::default()
                .with_name(topic_name(&name))
                .with_partitions(partitions)
        })
        .collect();
    let dir = DescribeLogDirsResult::default()
        .with_error_code(ec::NONE)
        .with_log_dir(StrBytes::from_string(state.config.log_dir.clone()))
        .with_topics(topics)
        .with_total_bytes(UNKNOWN_BYTES)
        .with_usable_bytes(UNKNOWN_BYTES);
    ResponseKind::DescribeLogDirs(
        DescribeLogDirsResponse::default()
            .with_throttle_time_ms(0)
            .with_error_code(ec::NONE)
            .with_results(vec![dir]),
    )
}
