//! `BrokerState`: what the handlers share — the node's settings, the controller with the
//! metadata log (one async mutex: metadata changes are serialised, as a quorum's log is),
//! a read-only snapshot of the image for request paths, and one `LogHandle` per local
//! partition (each partition's log is owned by its driver task, never shared).
//!
//! Commit order for a metadata change: records are appended and fsynced to the metadata
//! log, then replayed into the controller's image, then their effects are applied
//! (partition logs opened, closed or reconfigured), then the snapshot is published, then
//! the client is answered.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::Mutex;

use super::config::NodeConfig;
use super::log_driver::{self, LogHandle};
use super::metadata_log::MetadataLog;
use crate::base::{LeaderEpoch, NodeId};
use crate::controller::{
    ApiError, ConfigResourceKind, Controller, MetadataImage, MetadataRecord, TopicId,
};
use crate::io::{join, Clock, DiskRef};
use crate::log::{LogConfig, LogError, PartitionLog};
use crate::protocol::error_codes as ec;

/// A partition this node hosts.
#[derive(Clone, Debug)]
pub struct LocalPartition {
    pub topic_id: TopicId,
    pub handle: LogHandle,
    pub leader_epoch: LeaderEpoch,
}

/// The controller and its log, changed together under one lock.
#[derive(Debug)]
pub struct MetadataState {
    pub controller: Controller,
    pub log: MetadataLog,
}

#[derive(Debug)]
pub struct BrokerState {
    pub config: NodeConfig,
    pub node_id: NodeId,
    pub disk: DiskRef,
    pub clock: Clock,
    pub metadata: Mutex<MetadataState>,
    image: StdMutex<Arc<MetadataImage>>,
    partitions: StdMutex<BTreeMap<(String, i32), LocalPartition>>,
    /// The producer ids this broker reserved and has not handed out yet: `[next, end)`.
    producer_ids: StdMutex<(i64, i64)>,
}

/// The directory of a partition's log.
pub fn partition_dir(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

impl BrokerState {
    pub fn new(
        config: NodeConfig,
        disk: DiskRef,
        clock: Clock,
        metadata: MetadataState,
    ) -> BrokerState {
        let image = Arc::new(metadata.controller.image().clone());
        BrokerState {
            node_id: config.node_id,
            config,
            disk,
            clock,
            metadata: Mutex::new(metadata),
            image: StdMutex::new(image),
            partitions: StdMutex::new(BTreeMap::new()),
            producer_ids: StdMutex::new((0, 0)),
        }
    }

    /// A producer id never handed out before, by this broker or any other, across
    /// restarts: from the block this broker reserved, reserving the next block (a
    /// committed metadata record) when it is used up. A restart abandons the rest of
    /// the block, as Kafka does.
    pub async fn next_producer_id(&self) -> Result<i64, ApiError> {
        if let Some(id) = self.take_producer_id() {
            return Ok(id);
        }
        let mut meta = self.metadata.lock().await;
        // Another request may have reserved a block while this one waited for the lock.
        if let Some(id) = self.take_producer_id() {
            return Ok(id);
        }
        let reserved = meta.controller.allocate_producer_ids(self.node_id)?;
        let (first, end) = reserved.response;
        self.commit(&mut meta, reserved.records).await?;
        *self.producer_ids.lock().expect("producer ids lock") = (first + 1, end);
        Ok(first)
    }

    fn take_producer_id(&self) -> Option<i64> {
        let mut block = self.producer_ids.lock().expect("producer ids lock");
        let (next, end) = *block;
        (next < end).then(|| {
            block.0 += 1;
            next
        })
    }

    /// The latest committed image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.lock().expect("image lock").clone()
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<LocalPartition> {
        self.partitions
            .lock()
            .expect("partitions lock")
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    /// Every local partition, in (topic, index) order.
    pub fn partitions(&self) -> Vec<((String, i32), LocalPartition)> {
        self.partitions
            .lock()
            .expect("partitions lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A topic's effective log config: the broker defaults, overridden by its configs.
    pub fn topic_log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let mut config = self.config.settings.log_defaults.clone();
        for (key, value) in overrides {
            // Stored configs were validated before they were committed.
            if let Err(e) = config.set(key, value) {
                tracing::error!(error = %e, "stored topic config no longer parses");
            }
        }
        config
    }

    /// Opens (recovering) every partition of `image` this node hosts. Start-up only.
    pub fn open_all(&self, image: &MetadataImage) -> Result<(), LogError> {
        for topic in image.topics.values() {
            for partition in topic.partitions.values() {
                if partition.replicas.contains(&self.node_id) {
                    self.open_partition(
                        &topic.name,
                        topic.id,
                        partition.index.0,
                        partition.leader_epoch,
                        &topic.configs,
                        partition.replicas.len() == 1,
                    )?;
                }
            }
        }
        Ok(())
    }

    fn open_partition(
        &self,
        topic: &str,
        topic_id: TopicId,
        index: i32,
        leader_epoch: LeaderEpoch,
        configs: &BTreeMap<String, String>,
        sole_replica: bool,
    ) -> Result<(), LogError> {
        let key = (topic.to_string(), index);
        if let Some(existing) = self
            .partitions
            .lock()
            .expect("partitions lock")
            .get_mut(&key)
        {
            existing.leader_epoch = leader_epoch;
            return Ok(());
        }
        let config = self.topic_log_config(configs);
        let (log, report) = PartitionLog::open(
            self.disk.clone(),
            &partition_dir(topic, index),
            config,
            self.clock.clone(),
        )?;
        let mut log = log;
        if sole_replica {
            // The only replica: everything recovery kept is committed. The checkpointed
            // high watermark may be stale after a crash (the appends since the last
            // checkpoint are in the log but not in the checkpoint), and until the next
            // append consumers would not see them (found by skald-sim,
            // single-crash-loop-fsync seed 3).
            log.set_high_watermark(log.log_end_offset());
        }
        tracing::info!(topic, partition = index, ?report, "partition opened");
        let handle = log_driver::spawn_with(log, self.config.settings.log_driver);
        self.partitions.lock().expect("partitions lock").insert(
            key,
            LocalPartition {
                topic_id,
                handle,
                leader_epoch,
            },
        );
        Ok(())
    }

    /// Makes `records` durable, applies them, and publishes the new image. The caller
    /// holds the metadata lock (`meta`), so changes are applied in log order.
    pub async fn commit(
        &self,
        meta: &mut MetadataState,
        records: Vec<MetadataRecord>,
    ) -> Result<(), ApiError> {
        if records.is_empty() {
            return Ok(());
        }
        let before = meta.controller.image().clone();
        meta.log.append(&records).map_err(|e| {
            tracing::error!(error = %e, "metadata log append failed");
            ApiError::new(ec::UNKNOWN_SERVER_ERROR, format!("metadata log: {e}"))
        })?;
        for record in &records {
            meta.controller.replay(record);
        }
        let after = meta.controller.image().clone();
        let result = self.apply_effects(&before, &after, &records).await;
        *self.image.lock().expect("image lock") = Arc::new(after);
        result
    }

    async fn apply_effects(
        &self,
        before: &MetadataImage,
        after: &MetadataImage,
        records: &[MetadataRecord],
    ) -> Result<(), ApiError> {
        let storage = |e: LogError| ApiError::new(ec::KAFKA_STORAGE_ERROR, e.to_string());
        for record in records {
            match record {
                MetadataRecord::Partition {
                    topic_id,
                    index,
                    replicas,
                    leader_epoch,
                    ..
                } if replicas.contains(&self.node_id) => {
                    let Some(topic) = after.topic_by_id(topic_id) else {
                        continue;
                    };
                    self.open_partition(
                        &topic.name,
                        *topic_id,
                        index.0,
                        *leader_epoch,
                        &topic.configs,
                        replicas.len() == 1,
                    )
                    .map_err(storage)?;
                }
                MetadataRecord::RemoveTopic { id } => {
                    let Some(topic) = before.topic_by_id(id) else {
                        continue;
                    };
                    self.remove_topic_partitions(&topic.name)
                        .await
                        .map_err(storage)?;
                }
                MetadataRecord::Config {
                    kind: ConfigResourceKind::Topic,
                    resource,
                    ..
                } => {
                    if let Some(topic) = after.topic(resource) {
                        let config = self.topic_log_config(&topic.configs);
                        for ((name, _), partition) in self.partitions() {
                            if name == *resource {
                                let config = config.clone();
                                partition
                                    .handle
                                    .run(move |log| log.set_config(config))
                                    .await
                                    .map_err(storage)?;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Closes and deletes every local partition of `topic` (after its removal committed).
    async fn remove_topic_partitions(&self, topic: &str) -> Result<(), LogError> {
        let doomed: Vec<((String, i32), LocalPartition)> = {
            let mut map = self.partitions.lock().expect("partitions lock");
            let keys: Vec<(String, i32)> =
                map.keys().filter(|(t, _)| t == topic).cloned().collect();
            keys.into_iter()
                .filter_map(|k| map.remove(&k).map(|v| (k, v)))
                .collect()
        };
        for ((name, index), partition) in doomed {
            if let Err(e) = partition.handle.close().await {
                tracing::warn!(error = %e, topic = name, partition = index, "closing a deleted partition failed");
            }
            remove_dir_all(&self.disk, &partition_dir(&name, index))?;
        }
        Ok(())
    }

    /// Removes directories under the root that look like partition logs but belong to
    /// no local partition of the image (a topic whose deletion committed just before a
    /// crash). Start-up only, before any partition is opened.
    pub fn remove_stray_logs(&self, image: &MetadataImage) -> Result<(), LogError> {
        let mut expected = std::collections::BTreeSet::new();
        expected.insert(super::metadata_log::metadata_dir());
        for topic in image.topics.values() {
            for p in topic.partitions.values() {
                expected.insert(partition_dir(&topic.name, p.index.0));
            }
        }
        for name in self.disk.list("")? {
            let looks_like_partition = name.rsplit_once('-').is_some_and(|(t, p)| {
                !t.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
            });
            if looks_like_partition && !expected.contains(&name) && self.disk.list(&name).is_ok() {
                tracing::warn!(dir = name, "removing the log of a deleted topic");
                remove_dir_all(&self.disk, &name)?;
            }
        }
        Ok(())
    }

    /// Closes every partition log (flush + checkpoint). Shutdown only.
    pub async fn close_all(&self) -> Vec<LogError> {
        let all: Vec<LocalPartition> = {
            let mut map = self.partitions.lock().expect("partitions lock");
            std::mem::take(&mut *map).into_values().collect()
        };
        let mut errors = Vec::new();
        for partition in all {
            if let Err(e) = partition.handle.close().await {
                errors.push(e);
            }
        }
        errors
    }
}

/// Removes a directory's files, then the directory, durably.
fn remove_dir_all(disk: &DiskRef, dir: &str) -> Result<(), LogError> {
    if !disk.exists(dir)? {
        return Ok(());
    }
    for name in disk.list(dir)? {
        disk.remove(&join(dir, &name))?;
    }
    disk.remove(dir)?;
    disk.sync_dir(crate::io::parent_of(dir))?;
    Ok(())
}
