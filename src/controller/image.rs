//! `MetadataImage`: the cluster state that the metadata records describe, built only by
//! `replay(record)` — the same function serves the live path (after the records are
//! durable) and start-up (reading the metadata log from the beginning).
//!
//! Ordered collections only: the broker iterates these maps to answer Metadata and to
//! open partitions, and the simulator needs that order to be the same on every run.

use std::collections::BTreeMap;

use super::records::{ConfigResourceKind, MetadataRecord, TopicId};
use crate::base::{LeaderEpoch, NodeId, PartitionId};

/// A registered broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub node_id: NodeId,
    pub epoch: i64,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// One partition's assignment and leadership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionImage {
    pub index: PartitionId,
    pub leader: NodeId,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: i32,
}

/// One topic: id, partitions by index, and its config overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: TopicId,
    pub partitions: BTreeMap<i32, PartitionImage>,
    pub configs: BTreeMap<String, String>,
}

/// A record that does not fit the image (a metadata log that is not a valid history).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("topic `{0}` already exists with another id")]
    DuplicateTopic(String),
    #[error("record names unknown topic id {0:?}")]
    UnknownTopicId(TopicId),
    #[error("config record for unknown topic `{0}`")]
    UnknownTopicName(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataImage {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<NodeId, BrokerRegistration>,
    pub topics: BTreeMap<String, TopicImage>,
    pub topic_names: BTreeMap<TopicId, String>,
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// Records replayed so far (the metadata offset the image reflects).
    pub records_applied: u64,
}

impl MetadataImage {
    pub fn new() -> MetadataImage {
        MetadataImage::default()
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &TopicId) -> Option<&TopicImage> {
        self.topic_names
            .get(id)
            .and_then(|name| self.topics.get(name))
    }

    /// Applies one record. An error means the record contradicts the image; the image
    /// is then unchanged.
    pub fn replay(&mut self, record: &MetadataRecord) -> Result<(), ReplayError> {
        match record {
            MetadataRecord::ClusterId { cluster_id } => {
                self.cluster_id = Some(cluster_id.clone());
            }
            MetadataRecord::RegisterBroker {
                node_id,
                epoch,
                host,
                port,
                rack,
            } => {
                self.brokers.insert(
                    *node_id,
                    BrokerRegistration {
                        node_id: *node_id,
                        epoch: *epoch,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                    },
                );
            }
            MetadataRecord::Topic { name, id } => {
                if let Some(existing) = self.topics.get(name) {
                    if existing.id != *id {
                        return Err(ReplayError::DuplicateTopic(name.clone()));
                    }
                } else {
                    self.topics.insert(
                        name.clone(),
                        TopicImage {
                            name: name.clone(),
                            id: *id,
                            partitions: BTreeMap::new(),
                            configs: BTreeMap::new(),
                        },
                    );
                    self.topic_names.insert(*id, name.clone());
                }
            }
            MetadataRecord::Partition {
                topic_id,
                index,
                leader,
                replicas,
                isr,
                leader_epoch,
                partition_epoch,
            } => {
                let name = self
                    .topic_names
                    .get(topic_id)
                    .ok_or(ReplayError::UnknownTopicId(*topic_id))?;
                let topic = self
                    .topics
                    .get_mut(name)
                    .expect("topic_names and topics agree");
                topic.partitions.insert(
                    index.0,
                    PartitionImage {
                        index: *index,
                        leader: *leader,
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        leader_epoch: *leader_epoch,
                        partition_epoch: *partition_epoch,
                    },
                );
            }
            MetadataRecord::Config {
                kind,
                resource,
                key,
                value,
            } => {
                let configs = match kind {
                    ConfigResourceKind::Topic => {
                        &mut self
                            .topics
                            .get_mut(resource)
                            .ok_or_else(|| ReplayError::UnknownTopicName(resource.clone()))?
                            .configs
                    }
                    ConfigResourceKind::Broker => {
                        self.broker_configs.entry(resource.clone()).or_default()
                    }
                };
                match value {
                    Some(value) => {
                        configs.insert(key.clone(), value.clone());
                    }
                    None => {
                        configs.remove(key);
                    }
                }
            }
            MetadataRecord::RemoveTopic { id } => {
                let name = self
                    .topic_names
                    .remove(id)
                    .ok_or(ReplayError::UnknownTopicId(*id))?;
                self.topics.remove(&name);
            }
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                // Ids only move forward, whatever order blocks were reserved in.
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
        }
        self.records_applied += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_builds_topics_partitions_and_configs_and_removes_them() {
        let id = TopicId([1; 16]);
        let mut image = MetadataImage::new();
        let records = vec![
            MetadataRecord::Topic {
                name: "a".into(),
                id,
            },
            MetadataRecord::Partition {
                topic_id: id,
                index: PartitionId(0),
                leader: NodeId(1),
                replicas: vec![NodeId(1)],
                isr: vec![NodeId(1)],
                leader_epoch: LeaderEpoch(0),
                partition_epoch: 0,
            },
            MetadataRecord::Config {
                kind: ConfigResourceKind::Topic,
                resource: "a".into(),
                key: "retention.ms".into(),
                value: Some("5".into()),
            },
        ];
        for r in &records {
            image.replay(r).unwrap();
        }
        let topic = image.topic("a").unwrap();
        assert_eq!(topic.partitions.len(), 1);
        assert_eq!(topic.configs["retention.ms"], "5");
        assert_eq!(image.topic_by_id(&id).unwrap().name, "a");
        image
            .replay(&MetadataRecord::Config {
                kind: ConfigResourceKind::Topic,
                resource: "a".into(),
                key: "retention.ms".into(),
                value: None,
            })
            .unwrap();
        assert!(image.topic("a").unwrap().configs.is_empty());
        image.replay(&MetadataRecord::RemoveTopic { id }).unwrap();
        assert!(image.topics.is_empty());
        assert!(image.topic_names.is_empty());
        assert_eq!(
            image.replay(&MetadataRecord::RemoveTopic { id }),
            Err(ReplayError::UnknownTopicId(id))
        );
        assert_eq!(image.records_applied, 5);
    }

    #[test]
    fn a_partition_of_an_unknown_topic_is_refused_and_changes_nothing() {
        let mut image = MetadataImage::new();
        let before = image.clone();
        let r = MetadataRecord::Partition {
            topic_id: TopicId([2; 16]),
            index: PartitionId(0),
            leader: NodeId(1),
            replicas: vec![],
            isr: vec![],
            leader_epoch: LeaderEpoch(0),
            partition_epoch: 0,
        };
        assert!(image.replay(&r).is_err());
        assert_eq!(image, before);
    }
}
