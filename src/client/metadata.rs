//! The client's cached view of the cluster: brokers, the controller, topics and, per
//! partition, its leader and leader epoch.
//!
//! Owns: turning Metadata responses into that view and answering lookups from it. Pure
//! data: never does I/O (the `cluster` module refreshes it), and uses only ordered maps
//! so that every iteration is deterministic under simulation.

use std::collections::BTreeMap;

use kafka_protocol::messages::MetadataResponse;

use crate::base::{LeaderEpoch, NodeId};

/// A topic and partition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A broker as Metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerMetadata {
    pub node_id: NodeId,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerMetadata {
    /// "host:port", as `TcpStream::connect` takes it.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition's leadership and replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    /// The partition-level error code (LEADER_NOT_AVAILABLE while electing, ...).
    pub error_code: i16,
    /// `None` when the broker reported no leader (-1).
    pub leader: Option<NodeId>,
    pub leader_epoch: LeaderEpoch,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub offline_replicas: Vec<NodeId>,
}

/// One topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    /// The topic-level error code (UNKNOWN_TOPIC_OR_PARTITION, ...).
    pub error_code: i16,
    pub topic_id: [u8; 16],
    pub is_internal: bool,
    pub partitions: BTreeMap<i32, PartitionMetadata>,
}

/// The whole cached view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    pub controller: Option<NodeId>,
    pub brokers: BTreeMap<NodeId, BrokerMetadata>,
    pub topics: BTreeMap<String, TopicMetadata>,
}

impl ClusterMetadata {
    /// Merges a Metadata response. Brokers and controller are replaced. With
    /// `all_topics`, the topic map is replaced too; otherwise only the topics in the
    /// response are (a topic the broker reports with an error replaces the old entry
    /// as well, so a deleted topic stops resolving).
    pub fn apply(&mut self, response: &MetadataResponse, all_topics: bool) {
        self.cluster_id = response.cluster_id.as_ref().map(|id| id.to_string());
        self.controller =
            (response.controller_id.0 >= 0).then_some(NodeId(response.controller_id.0));
        self.brokers = response
            .brokers
            .iter()
            .map(|broker| {
                let node_id = NodeId(broker.node_id.0);
                let metadata = BrokerMetadata {
                    node_id,
                    host: broker.host.to_string(),
                    port: broker.port,
                    rack: broker.rack.as_ref().map(|rack| rack.to_string()),
                };
                (node_id, metadata)
            })
            .collect();
        if all_topics {
            self.topics.clear();
        }
        for topic in &response.topics {
            let Some(name) = topic.name.as_ref() else {
                continue;
            };
            let name = name.0.to_string();
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let metadata = PartitionMetadata {
                        partition: partition.partition_index,
                        error_code: partition.error_code,
                        leader: (partition.leader_id.0 >= 0)
                            .then_some(NodeId(partition.leader_id.0)),
                        leader_epoch: LeaderEpoch(partition.leader_epoch),
                        replicas: partition
                            .replica_nodes
                            .iter()
                            .map(|id| NodeId(id.0))
                            .collect(),
                        isr: partition.isr_nodes.iter().map(|id| NodeId(id.0)).collect(),
                        offline_replicas: partition
                            .offline_replicas
                            .iter()
                            .map(|id| NodeId(id.0))
                            .collect(),
                    };
                    (partition.partition_index, metadata)
                })
                .collect();
            let metadata = TopicMetadata {
                name: name.clone(),
                error_code: topic.error_code,
                topic_id: *topic.topic_id.as_bytes(),
                is_internal: topic.is_internal,
                partitions,
            };
            self.topics.insert(name, metadata);
        }
    }

    /// The leader and its epoch for a partition, if the cache knows one.
    pub fn leader(&self, tp: &TopicPartition) -> Option<(NodeId, LeaderEpoch)> {
        let partition = self.topics.get(&tp.topic)?.partitions.get(&tp.partition)?;
        partition
            .leader
            .map(|leader| (leader, partition.leader_epoch))
    }

    /// The number of partitions of a topic the cache knows without error.
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        let topic = self.topics.get(topic)?;
        (topic.error_code == 0 && !topic.partitions.is_empty()).then_some(topic.partitions.len())
    }

    /// "host:port" of a broker.
    pub fn broker_addr(&self, node: NodeId) -> Option<String> {
        self.brokers.get(&node).map(BrokerMetadata::addr)
    }

    /// Forgets a partition's leader, so the next lookup refreshes metadata.
    pub fn forget_leader(&mut self, tp: &TopicPartition) {
        if let Some(partition) = self
            .topics
            .get_mut(&tp.topic)
            .and_then(|topic| topic.partitions.get_mut(&tp.partition))
        {
            partition.leader = None;
        }
    }
}
