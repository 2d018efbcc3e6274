//! A simple consumer: the caller assigns partitions (no consumer groups yet) and polls.
//!
//! Owns: each assigned partition's position, resolving start positions (earliest,
//! latest, an offset, a timestamp) through ListOffsets, one Fetch per leader per poll,
//! OFFSET_OUT_OF_RANGE handling by the reset policy, leadership errors (metadata
//! refresh, then the next poll retries), and decoding fetched batches: records below
//! the position are skipped (a batch may start before it), control batches are skipped,
//! a partial batch at the end of a response is ignored (it is fetched whole next time).
//!
//! Must never: return a record twice or skip one within a poll sequence (positions move
//! only past records returned, or past whole batches that hold none to return), iterate
//! unordered collections, or trust fetched bytes without the CRC check.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::base::NodeId;
use crate::client::cluster::Cluster;
use crate::client::errors::{code, ClientError};
use crate::client::metadata::TopicPartition;
use crate::protocol::record_batch::LOG_OVERHEAD_BYTES;
use crate::protocol::{frame_batch, records, TimestampType};

/// ListOffsets' special timestamp for the log end offset.
pub const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets' special timestamp for the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;

/// Where a newly assigned partition starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartOffset {
    Earliest,
    Latest,
    Offset(i64),
    /// The first offset whose timestamp is at or after this (ms); the log end if none.
    Timestamp(i64),
}

/// What to do when the position is out of the log's range (OFFSET_OUT_OF_RANGE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetResetPolicy {
    Earliest,
    Latest,
    /// Return the error from `poll`.
    None,
}

/// Consumer settings.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// `fetch.max.wait.ms`: how long the broker may hold a fetch for `min_bytes`.
    pub max_wait_ms: i32,
    /// `fetch.min.bytes`.
    pub min_bytes: i32,
    /// `fetch.max.bytes`: per Fetch request.
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub partition_max_bytes: i32,
    /// 0 read_uncommitted, 1 read_committed.
    pub isolation_level: i8,
    pub reset_policy: OffsetResetPolicy,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            isolation_level: 0,
            reset_policy: OffsetResetPolicy::Latest,
        }
    }
}

/// A record returned by `poll`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub timestamp_type: TimestampType,
    /// The partition leader epoch stamped on the record's batch.
    pub leader_epoch: i32,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

#[derive(Clone, Debug)]
struct Assignment {
    /// `None` until resolved from `start`.
    position: Option<i64>,
    start: StartOffset,
    high_watermark: Option<i64>,
    log_start_offset: Option<i64>,
}

/// Decodes the record batches of one fetched partition, returning the records at or
/// after `fetch_offset` and the offset after the last complete batch (`None` if no
/// complete batch was present). A partial batch at the end is ignored.
pub fn decode_fetched(
    tp: &TopicPartition,
    data: &Bytes,
    fetch_offset: i64,
) -> Result<(Vec<ConsumerRecord>, Option<i64>), ClientError> {
    let corrupt = |detail: String| ClientError::Protocol {
        addr: format!("leader of {tp}"),
        detail,
    };
    let mut out = Vec::new();
    let mut next_offset = None;
    let mut pos = 0usize;
    while data.len() - pos >= LOG_OVERHEAD_BYTES {
        let length_bytes = &data[pos + 8..pos + 12];
        let batch_length = i32::from_be_bytes([
            length_bytes[0],
            length_bytes[1],
            length_bytes[2],
            length_bytes[3],
        ]);
        let Ok(batch_length) = usize::try_from(batch_length) else {
            return Err(corrupt(format!("negative batch length at byte {pos}")));
        };
        let size = LOG_OVERHEAD_BYTES + batch_length;
        if size > data.len() - pos {
            break; // partial trailing batch: the broker cut at max_bytes
        }
        let batch = data.slice(pos..pos + size);
        pos += size;
        let header = frame_batch(&batch).map_err(|e| corrupt(format!("batch: {e}")))?;
        let last_offset = header
            .last_offset()
            .ok_or_else(|| corrupt("batch last offset overflows".to_string()))?;
        next_offset = Some(last_offset.0 + 1);
        if header.is_control() || last_offset.0 < fetch_offset {
            continue;
        }
        let decoded = records(&batch).map_err(|e| corrupt(format!("records: {e}")))?;
        let log_append = header.timestamp_type() == TimestampType::LogAppendTime;
        for record in decoded {
            let offset = header.base_offset.0 + i64::from(record.offset_delta);
            if offset < fetch_offset {
                continue;
            }
            let timestamp_ms = if log_append {
                header.max_timestamp_ms
            } else {
                header
                    .base_timestamp_ms
                    .saturating_add(record.timestamp_delta_ms)
            };
            out.push(ConsumerRecord {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset,
                timestamp_ms,
                timestamp_type: header.timestamp_type(),
                leader_epoch: header.partition_leader_epoch.0,
                key: record.key,
                value: record.value,
                headers: record.headers,
            });
        }
    }
    Ok((out, next_offset))
}

/// Looks up offsets by timestamp (`LATEST_TIMESTAMP`, `EARLIEST_TIMESTAMP` or ms) for
/// many partitions, one ListOffsets per leader. Returns (offset, timestamp) or the
/// error per partition; leadership errors refresh metadata before returning.
pub async fn list_offsets(
    cluster: &Cluster,
    requests: &BTreeMap<TopicPartition, i64>,
    isolation_level: i8,
) -> BTreeMap<TopicPartition, Result<(i64, i64), ClientError>> {
    let mut results = BTreeMap::new();
    let mut by_leader: BTreeMap<NodeId, Vec<(TopicPartition, i64, i32)>> = BTreeMap::new();
    for (tp, timestamp) in requests {
        match cluster.leader(tp).await {
            Ok((leader, epoch)) => {
                by_leader
                    .entry(leader)
                    .or_default()
                    .push((tp.clone(), *timestamp, epoch.0))
            }
            Err(error) => {
                results.insert(tp.clone(), Err(error));
            }
        }
    }
    let mut stale = BTreeSet::new();
    for (leader, partitions) in by_leader {
        let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for (tp, timestamp, epoch) in &partitions {
            topics.entry(tp.topic.as_str()).or_default().push(
                ListOffsetsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_current_leader_epoch(*epoch)
                    .with_timestamp(*timestamp),
            );
        }
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(isolation_level)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let response = match cluster.connection_to_node(leader).await {
            Ok(connection) => connection.send(&request).await,
            Err(error) => Err(error),
        };
        match response {
            Err(error) => {
                for (tp, _, _) in partitions {
                    if error.needs_metadata_refresh() {
                        stale.insert(tp.topic.clone());
                    }
                    results.insert(tp, Err(error.clone()));
                }
            }
            Ok(response) => {
                for topic in &response.topics {
                    for partition in &topic.partitions {
                        let tp = TopicPartition::new(
                            topic.name.0.to_string(),
                            partition.partition_index,
                        );
                        let result = if partition.error_code == code::NONE {
                            Ok((partition.offset, partition.timestamp))
                        } else {
                            let error = ClientError::kafka(
                                partition.error_code,
                                None,
                                format!("list offsets of {tp}"),
                            );
                            if error.needs_metadata_refresh() {
                                cluster.invalidate_leader(&tp);
                                stale.insert(tp.topic.clone());
                            }
                            Err(error)
                        };
                        results.insert(tp, result);
                    }
                }
                for (tp, _, _) in partitions {
                    results.entry(tp.clone()).or_insert_with(|| {
                        Err(ClientError::Protocol {
                            addr: format!("node {}", leader.0),
                            detail: format!("list offsets response has no result for {tp}"),
                        })
                    });
                }
            }
        }
    }
    if !stale.is_empty() {
        let topics: Vec<String> = stale.into_iter().collect();
        let _ = cluster.refresh_metadata(Some(&topics)).await;
    }
    results
}

/// An assignment-based consumer. Not shared: one owner polls it.
#[derive(Debug)]
pub struct Consumer {
    cluster: Arc<Cluster>,
    config: ConsumerConfig,
    assignments: BTreeMap<TopicPartition, Assignment>,
}

impl Consumer {
    pub fn new(cluster: Arc<Cluster>, config: ConsumerConfig) -> Consumer {
        Consumer {
            cluster,
            config,
            assignments: BTreeMap::new(),
        }
    }

    /// Adds (or restarts) a partition, starting at `start` on the next poll.
    pub fn assign(&mut self, tp: TopicPartition, start: StartOffset) {
        let position = match start {
            StartOffset::Offset(offset) => Some(offset),
            _ => None,
        };
        self.assignments.insert(
            tp,
            Assignment {
                position,
                start,
                high_watermark: None,
                log_start_offset: None,
            },
        );
    }

    /// Removes a partition.
    pub fn unassign(&mut self, tp: &TopicPartition) {
        self.assignments.remove(tp);
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assignments.keys().cloned().collect()
    }

    /// The offset of the next record `poll` returns for `tp`, once resolved.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.assignments.get(tp).and_then(|a| a.position)
    }

    /// The high watermark the last fetch of `tp` reported.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.assignments.get(tp).and_then(|a| a.high_watermark)
    }

    /// The log start offset the last fetch of `tp` reported.
    pub fn log_start_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.assignments.get(tp).and_then(|a| a.log_start_offset)
    }

    /// Resolves start positions that need ListOffsets.
    async fn resolve_positions(&mut self) -> Result<(), ClientError> {
        let mut wanted = BTreeMap::new();
        for (tp, assignment) in &self.assignments {
            if assignment.position.is_some() {
                continue;
            }
            let timestamp = match assignment.start {
                StartOffset::Earliest => EARLIEST_TIMESTAMP,
                StartOffset::Latest => LATEST_TIMESTAMP,
                StartOffset::Timestamp(timestamp_ms) => timestamp_ms,
                StartOffset::Offset(offset) => {
                    // assign() set the position; keep it.
                    let _ = offset;
                    continue;
                }
            };
            wanted.insert(tp.clone(), timestamp);
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let results = list_offsets(&self.cluster, &wanted, self.config.isolation_level).await;
        let mut no_match = Vec::new();
        let mut first_error = None;
        for (tp, result) in results {
            match result {
                // No record at or after the timestamp: start at the log end.
                Ok((-1, _)) => no_match.push(tp),
                Ok((offset, _)) => {
                    if let Some(assignment) = self.assignments.get_mut(&tp) {
                        assignment.position = Some(offset);
                    }
                }
                Err(error) if error.is_retriable() => {}
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        for tp in no_match {
            if let Some(assignment) = self.assignments.get_mut(&tp) {
                assignment.start = StartOffset::Latest;
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Fetches once from every leader of an assigned partition with a position and
    /// returns the records, in partition order then offset order. May return no
    /// records (nothing new within `max_wait_ms`, or only errors that were handled).
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        self.resolve_positions().await?;
        let mut by_leader: BTreeMap<NodeId, Vec<(TopicPartition, i64, i32)>> = BTreeMap::new();
        let mut stale: BTreeSet<String> = BTreeSet::new();
        for (tp, assignment) in &self.assignments {
            let Some(position) = assignment.position else {
                continue;
            };
            match self.cluster.cached_leader(tp) {
                Some((leader, epoch)) => {
                    by_leader
                        .entry(leader)
                        .or_default()
                        .push((tp.clone(), position, epoch.0))
                }
                None => {
                    stale.insert(tp.topic.clone());
                }
            }
        }
        // One fetch per leader, concurrently; results are taken in node order.
        let mut fetches = Vec::new();
        for (leader, partitions) in by_leader {
            let request = self.fetch_request(&partitions);
            let cluster = self.cluster.clone();
            let timeout_ms = cluster.config().connection.request_timeout_ms
                + u64::try_from(self.config.max_wait_ms).unwrap_or(0);
            let handle = tokio::spawn(async move {
                let connection = cluster.connection_to_node(leader).await?;
                connection.send_with_timeout(&request, timeout_ms).await
            });
            fetches.push((partitions, handle));
        }
        let mut out = Vec::new();
        let mut errors = false;
        for (partitions, handle) in fetches {
            let response = handle.await.unwrap_or_else(|error| {
                Err(ClientError::InvalidArgument(format!(
                    "fetch task failed: {error}"
                )))
            });
            match response {
                Ok(response) => {
                    errors |= self.absorb(&response, &partitions, &mut out, &mut stale)?;
                }
                Err(error) => {
                    errors = true;
                    if !error.is_retriable() {
                        return Err(error);
                    }
                    for (tp, _, _) in &partitions {
                        stale.insert(tp.topic.clone());
                    }
                }
            }
        }
        if !stale.is_empty() {
            let topics: Vec<String> = stale.into_iter().collect();
            let _ = self.cluster.refresh_metadata(Some(&topics)).await;
            errors = true;
        }
        if errors && out.is_empty() {
            // Nothing to hand back: pause so a caller polling in a loop does not spin.
            let backoff_ms = self.cluster.config().retry_backoff_ms;
            tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
        }
        Ok(out)
    }

    fn fetch_request(&self, partitions: &[(TopicPartition, i64, i32)]) -> FetchRequest {
        let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
        for (tp, position, epoch) in partitions {
            topics.entry(tp.topic.as_str()).or_default().push(
                FetchPartition::default()
                    .with_partition(tp.partition)
                    .with_current_leader_epoch(*epoch)
                    .with_fetch_offset(*position)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(self.config.partition_max_bytes),
            );
        }
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(self.config.max_wait_ms)
            .with_min_bytes(self.config.min_bytes)
            .with_max_bytes(self.config.max_bytes)
            .with_isolation_level(self.config.isolation_level)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        FetchTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            )
    }

    /// Applies one fetch response: records out, positions forward, errors handled.
    /// Returns whether any partition reported an error.
    fn absorb(
        &mut self,
        response: &FetchResponse,
        requested: &[(TopicPartition, i64, i32)],
        out: &mut Vec<ConsumerRecord>,
        stale: &mut BTreeSet<String>,
    ) -> Result<bool, ClientError> {
        ClientError::check(response.error_code, None, || "fetch".to_string())?;
        let mut errors = false;
        for topic in &response.responses {
            for partition in &topic.partitions {
                let tp = TopicPartition::new(topic.topic.0.to_string(), partition.partition_index);
                // Only partitions we asked for, at the position we asked from: a
                // response for anything else is ignored.
                let Some((_, fetch_offset, _)) = requested.iter().find(|(t, _, _)| *t == tp) else {
                    continue;
                };
                let Some(assignment) = self.assignments.get_mut(&tp) else {
                    continue;
                };
                if assignment.position != Some(*fetch_offset) {
                    continue;
                }
                match partition.error_code {
                    code::NONE => {}
                    code::OFFSET_OUT_OF_RANGE => {
                        errors = true;
                        match self.config.reset_policy {
                            OffsetResetPolicy::Earliest => {
                                assignment.position = None;
                                assignment.start = StartOffset::Earliest;
                            }
                            OffsetResetPolicy::Latest => {
                                assignment.position = None;
                                assignment.start = StartOffset::Latest;
                            }
                            OffsetResetPolicy::None => {
                                return Err(ClientError::kafka(
                                    code::OFFSET_OUT_OF_RANGE,
                                    Some(format!("offset {fetch_offset}")),
                                    format!("fetch {tp}"),
                                ));
                            }
                        }
                        continue;
                    }
                    error_code => {
                        errors = true;
                        let error = ClientError::kafka(error_code, None, format!("fetch {tp}"));
                        if error.needs_metadata_refresh() {
                            self.cluster.invalidate_leader(&tp);
                            stale.insert(tp.topic.clone());
                        } else if !error.is_retriable() {
                            return Err(error);
                        }
                        continue;
                    }
                }
                assignment.high_watermark = Some(partition.high_watermark);
                assignment.log_start_offset = Some(partition.log_start_offset);
                let Some(data) = partition.records.as_ref() else {
                    continue;
                };
                let (records, next_offset) = decode_fetched(&tp, data, *fetch_offset)?;
                if let Some(next_offset) = next_offset {
                    if next_offset > *fetch_offset {
                        assignment.position = Some(next_offset);
                    }
                }
                out.extend(records);
            }
        }
        Ok(errors)
    }
}
