//! L3 — the controller, sans I/O: cluster metadata as records, the image they build, and
//! the validation of admin requests (create/delete topics, create partitions, alter
//! configs). As Kafka's QuorumController does, each request returns
//! `(records, response)`: the caller makes the records durable in the
//! `__cluster_metadata` log, then `replay`s them into the image. The same `replay`
//! rebuilds the image at start-up. Nothing here touches a disk, a clock or a socket.
//!
//! Must never: apply a change to the image that is not a replayed record, accept a
//! config key the log does not understand, or iterate an unordered collection.
//!
//! - `records`: the record enum and its versioned, total binary encoding.
//! - `image`: `MetadataImage` and `replay`.

pub mod image;
pub mod records;

use std::collections::BTreeMap;

pub use image::{BrokerRegistration, MetadataImage, PartitionImage, ReplayError, TopicImage};
pub use records::{ConfigResourceKind, MetadataRecord, RecordDecodeError, TopicId};

use crate::base::limits::TOPIC_PARTITIONS_MAX;
use crate::base::{LeaderEpoch, NodeId, PartitionId, Rng};
use crate::log::{ConfigError, LogConfig};
use crate::protocol::error_codes as ec;

/// The metadata topic's name. Clients cannot create, see or delete it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// Kafka's longest topic name.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Producer ids a broker reserves at a time (Kafka's block size).
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// A request-level or per-item failure, as Kafka reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: i16,
    pub message: String,
}

impl ApiError {
    pub fn new(code: i16, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

/// The records a request produced and what to answer once they are durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerResult<T> {
    pub records: Vec<MetadataRecord>,
    pub response: T,
}

/// Cluster-wide defaults the controller applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerSettings {
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
}

/// One topic of a CreateTopics request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTopic {
    pub name: String,
    /// -1: `num.partitions` (or the assignments' count).
    pub num_partitions: i32,
    /// -1: `default.replication.factor` (or the assignments' length).
    pub replication_factor: i16,
    /// Explicit replica lists by partition index (then both counts must be -1).
    pub assignments: BTreeMap<i32, Vec<NodeId>>,
    /// Topic config overrides; a `None` value is refused.
    pub configs: Vec<(String, Option<String>)>,
}

/// What was (or, with validate_only, would be) created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedTopic {
    pub id: TopicId,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// One config change of an IncrementalAlterConfigs request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlterOp {
    Set,
    Delete,
    Append,
    Subtract,
}

impl AlterOp {
    /// Kafka's operation codes: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
    pub fn from_code(code: i8) -> Option<AlterOp> {
        match code {
            0 => Some(AlterOp::Set),
            1 => Some(AlterOp::Delete),
            2 => Some(AlterOp::Append),
            3 => Some(AlterOp::Subtract),
            _ => None,
        }
    }
}

/// Kafka's topic-name rule: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let invalid = |why: &str| {
        Err(ApiError::new(
            ec::INVALID_TOPIC_EXCEPTION,
            format!("Topic name \"{name}\" is illegal, {why}"),
        ))
    };
    if name.is_empty() {
        return invalid("it can't be empty");
    }
    if name == "." || name == ".." {
        return invalid("it can't be '.' or '..'");
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return invalid("it can't be longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid("it contains a character other than ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}

/// Validates topic config overrides against the log's keys and value rules.
pub fn validate_topic_configs(
    configs: &[(String, Option<String>)],
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut probe = LogConfig::default();
    let mut out = BTreeMap::new();
    for (key, value) in configs {
        let Some(value) = value else {
            return Err(ApiError::new(
                ec::INVALID_CONFIG,
                format!("Null value not supported for topic configs: {key}"),
            ));
        };
        probe.set(key, value).map_err(|e| match e {
            ConfigError::UnknownKey(_) => ApiError::new(
                ec::INVALID_CONFIG,
                format!("Unknown topic config name: {key}"),
            ),
            ConfigError::InvalidValue { .. } => ApiError::new(ec::INVALID_CONFIG, e.to_string()),
        })?;
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

/// The controller: the image plus the request logic that extends it.
#[derive(Debug)]
pub struct Controller {
    image: MetadataImage,
    settings: ControllerSettings,
    rng: Rng,
}

impl Controller {
    pub fn new(image: MetadataImage, settings: ControllerSettings, rng: Rng) -> Controller {
        Controller {
            image,
            settings,
            rng,
        }
    }

    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub fn settings(&self) -> &ControllerSettings {
        &self.settings
    }

    /// Applies a record that is now durable. Records the controller produced always fit
    /// the image it produced them from; a misfit is a bug.
    pub fn replay(&mut self, record: &MetadataRecord) {
        if let Err(e) = self.image.replay(record) {
            panic!("controller produced a record that does not fit its image: {e}");
        }
    }

    /// A fresh random topic id, never zero and never in use.
    fn new_topic_id(&mut self) -> TopicId {
        loop {
            let mut bytes = [0u8; 16];
            self.rng.fill(&mut bytes);
            let id = TopicId::from_random(bytes);
            if id != TopicId::ZERO && !self.image.topic_names.contains_key(&id) {
                return id;
            }
        }
    }

    /// The records that register (or re-register) a broker.
    pub fn register_broker(
        &mut self,
        node_id: NodeId,
        host: &str,
        port: i32,
        rack: Option<String>,
    ) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        if self.image.cluster_id.is_none() {
            let mut bytes = [0u8; 16];
            self.rng.fill(&mut bytes);
            records.push(MetadataRecord::ClusterId {
                cluster_id: cluster_id_string(&bytes),
            });
        }
        let current = self.image.brokers.get(&node_id);
        let unchanged = current.is_some_and(|b| b.host == host && b.port == port && b.rack == rack);
        if !unchanged {
            records.push(MetadataRecord::RegisterBroker {
                node_id,
                epoch: current.map_or(0, |b| b.epoch + 1),
                host: host.to_string(),
                port,
                rack,
            });
        }
        records
    }

    /// Replicas for `count` new partitions starting at `first_index`: round robin over
    /// the registered brokers from a random start, so leaders spread evenly.
    fn place(
        &mut self,
        first_index: i32,
        count: i32,
        replication_factor: i16,
    ) -> BTreeMap<i32, Vec<NodeId>> {
        let brokers: Vec<NodeId> = self.image.brokers.keys().copied().collect();
        assert!(
            brokers.len() >= replication_factor as usize,
            "placement is only asked for a replication factor the brokers can hold"
        );
        let start = self.rng.below(brokers.len() as u64) as usize;
        (0..count)
            .map(|i| {
                let index = first_index + i;
                let replicas = (0..replication_factor as usize)
                    .map(|r| brokers[(start + index as usize + r) % brokers.len()])
                    .collect();
                (index, replicas)
            })
            .collect()
    }

    fn check_assignment(&self, replicas: &[NodeId]) -> Result<(), ApiError> {
        if replicas.is_empty() {
            return Err(ApiError::new(
                ec::INVALID_REPLICA_ASSIGNMENT,
                "The manual partition assignment includes an empty replica list.",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for node in replicas {
            if !seen.insert(*node) {
                return Err(ApiError::new(
                    ec::INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "The manual partition assignment includes the broker {} more than once.",
                        node.0
                    ),
                ));
            }
            if !self.image.brokers.contains_key(node) {
                return Err(ApiError::new(
                    ec::INVALID_REPLICA_ASSIGNMENT,
                    format!("The manual partition assignment includes broker {}, but no such broker is registered.", node.0),
                ));
            }
        }
        Ok(())
    }

    fn partition_records(
        topic_id: TopicId,
        assignments: &BTreeMap<i32, Vec<NodeId>>,
    ) -> Vec<MetadataRecord> {
        assignments
            .iter()
            .map(|(index, replicas)| MetadataRecord::Partition {
                topic_id,
                index: PartitionId(*index),
                leader: replicas[0],
                replicas: replicas.clone(),
                isr: replicas.clone(),
                leader_epoch: LeaderEpoch(0),
                partition_epoch: 0,
            })
            .collect()
    }

    /// Validates one topic creation and returns its records. Nothing changes until the
    /// records are replayed.
    pub fn create_topic(
        &mut self,
        request: &CreateTopic,
    ) -> Result<ControllerResult<CreatedTopic>, ApiError> {
        validate_topic_name(&request.name)?;
        if request.name == METADATA_TOPIC {
            return Err(ApiError::new(
                ec::INVALID_REQUEST,
                format!("Creation of internal topic {METADATA_TOPIC} is prohibited."),
            ));
        }
        if self.image.topics.contains_key(&request.name) {
            return Err(ApiError::new(
                ec::TOPIC_ALREADY_EXISTS,
                format!("Topic '{}' already exists.", request.name),
            ));
        }
        let collides = |a: &str| a.replace('.', "_") == request.name.replace('.', "_");
        if let Some(other) = self.image.topics.keys().find(|t| collides(t)) {
            return Err(ApiError::new(
                ec::INVALID_TOPIC_EXCEPTION,
                format!(
                    "Topic '{}' collides with existing topic: {other}",
                    request.name
                ),
            ));
        }
        let assignments = if request.assignments.is_empty() {
            let num_partitions = match request.num_partitions {
                -1 => self.settings.num_partitions,
                n => n,
            };
            if num_partitions <= 0 {
                return Err(ApiError::new(
                    ec::INVALID_PARTITIONS,
                    "Number of partitions was set to an invalid non-positive value.",
                ));
            }
            if num_partitions > TOPIC_PARTITIONS_MAX {
                return Err(ApiError::new(
                    ec::INVALID_PARTITIONS,
                    format!("Number of partitions is above the limit of {TOPIC_PARTITIONS_MAX}."),
                ));
            }
            let replication_factor = match request.replication_factor {
                -1 => self.settings.default_replication_factor,
                n => n,
            };
            if replication_factor <= 0 {
                return Err(ApiError::new(
                    ec::INVALID_REPLICATION_FACTOR,
                    "Replication factor must be larger than 0, or -1 to use the default value.",
                ));
            }
            let brokers = self.image.brokers.len();
            if replication_factor as usize > brokers {
                return Err(ApiError::new(
                    ec::INVALID_REPLICATION_FACTOR,
                    format!("Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only {brokers} broker(s) are registered."),
                ));
            }
            self.place(0, num_partitions, replication_factor)
        } else {
            if request.num_partitions != -1 || request.replication_factor != -1 {
                return Err(ApiError::new(
                    ec::INVALID_REQUEST,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
                ));
            }
            if request.assignments.len() > TOPIC_PARTITIONS_MAX as usize {
                return Err(ApiError::new(
                    ec::INVALID_PARTITIONS,
                    format!("Number of partitions is above the limit of {TOPIC_PARTITIONS_MAX}."),
                ));
            }
            for (expected, (index, replicas)) in request.assignments.iter().enumerate() {
                if *index != expected as i32 {
                    return Err(ApiError::new(
                        ec::INVALID_REPLICA_ASSIGNMENT,
                        "partitions should be a consecutive 0-based integer sequence",
                    ));
                }
                self.check_assignment(replicas)?;
            }
            let first_len = request.assignments.values().next().map_or(0, Vec::len);
            if request.assignments.values().any(|r| r.len() != first_len) {
                return Err(ApiError::new(
                    ec::INVALID_REPLICA_ASSIGNMENT,
                    "All partitions should have the same number of replicas.",
                ));
            }
            request.assignments.clone()
        };
        let configs = validate_topic_configs(&request.configs)?;
        let id = self.new_topic_id();
        let mut records = vec![MetadataRecord::Topic {
            name: request.name.clone(),
            id,
        }];
        for (key, value) in &configs {
            records.push(MetadataRecord::Config {
                kind: ConfigResourceKind::Topic,
                resource: request.name.clone(),
                key: key.clone(),
                value: Some(value.clone()),
            });
        }
        records.extend(Self::partition_records(id, &assignments));
        let replication_factor = assignments.values().next().map_or(0, |r| r.len() as i16);
        Ok(ControllerResult {
            records,
            response: CreatedTopic {
                id,
                num_partitions: assignments.len() as i32,
                replication_factor,
                configs,
            },
        })
    }

    /// Deletes a topic by name.
    pub fn delete_topic(&self, name: &str) -> Result<ControllerResult<TopicId>, ApiError> {
        let topic = self.image.topic(name).ok_or_else(|| {
            ApiError::new(
                ec::UNKNOWN_TOPIC_OR_PARTITION,
                "This server does not host this topic-partition.",
            )
        })?;
        Ok(ControllerResult {
            records: vec![MetadataRecord::RemoveTopic { id: topic.id }],
            response: topic.id,
        })
    }

    /// Reserves the next block of producer ids for `broker`, which hands them out one
    /// per InitProducerId (Kafka's AllocateProducerIds). The answer is the block
    /// `[first, end)`; no id in it is ever reserved again.
    pub fn allocate_producer_ids(
        &self,
        broker: NodeId,
    ) -> Result<ControllerResult<(i64, i64)>, ApiError> {
        let first = self.image.next_producer_id;
        let end = first
            .checked_add(PRODUCER_ID_BLOCK)
            .ok_or_else(|| ApiError::new(ec::UNKNOWN_SERVER_ERROR, "producer ids exhausted"))?;
        Ok(ControllerResult {
            records: vec![MetadataRecord::ProducerIds {
                broker,
                next_producer_id: end,
            }],
            response: (first, end),
        })
    }

    /// Grows a topic to `count` partitions, placing the new ones or using `assignments`
    /// (one replica list per new partition).
    pub fn create_partitions(
        &mut self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<NodeId>>>,
    ) -> Result<ControllerResult<()>, ApiError> {
        let topic = self.image.topic(name).ok_or_else(|| {
            ApiError::new(
                ec::UNKNOWN_TOPIC_OR_PARTITION,
                "This server does not host this topic-partition.",
            )
        })?;
        let current = topic.partitions.len() as i32;
        let topic_id = topic.id;
        let replication_factor = topic
            .partitions
            .values()
            .next()
            .map_or(1, |p| p.replicas.len() as i16);
        if count < current {
            return Err(ApiError::new(
                ec::INVALID_PARTITIONS,
                format!("The topic {name} currently has {current} partition(s); {count} would not be an increase."),
            ));
        }
        if count == current {
            return Err(ApiError::new(
                ec::INVALID_PARTITIONS,
                format!("Topic already has {current} partition(s)."),
            ));
        }
        if count > TOPIC_PARTITIONS_MAX {
            return Err(ApiError::new(
                ec::INVALID_PARTITIONS,
                format!("Number of partitions is above the limit of {TOPIC_PARTITIONS_MAX}."),
            ));
        }
        let added = count - current;
        let placed = match assignments {
            Some(lists) => {
                if lists.len() != added as usize {
                    return Err(ApiError::new(
                        ec::INVALID_REPLICA_ASSIGNMENT,
                        format!("Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.", lists.len()),
                    ));
                }
                let mut placed = BTreeMap::new();
                for (i, replicas) in lists.into_iter().enumerate() {
                    self.check_assignment(&replicas)?;
                    if replicas.len() != replication_factor as usize {
                        return Err(ApiError::new(
                            ec::INVALID_REPLICA_ASSIGNMENT,
                            format!("The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {replication_factor} replica(s).", replicas.len()),
                        ));
                    }
                    placed.insert(current + i as i32, replicas);
                }
                placed
            }
            None => {
                if replication_factor as usize > self.image.brokers.len() {
                    return Err(ApiError::new(
                        ec::INVALID_REPLICATION_FACTOR,
                        "Not enough registered brokers for the topic's replication factor.",
                    ));
                }
                self.place(current, added, replication_factor)
            }
        };
        Ok(ControllerResult {
            records: Self::partition_records(topic_id, &placed),
            response: (),
        })
    }

    /// IncrementalAlterConfigs on a topic. Broker configs are static in this version:
    /// altering one is refused (INVALID_CONFIG), as Kafka refuses non-dynamic keys.
    pub fn incremental_alter_topic_configs(
        &self,
        name: &str,
        changes: &[(String, AlterOp, Option<String>)],
    ) -> Result<ControllerResult<()>, ApiError> {
        let topic = self.image.topic(name).ok_or_else(|| {
            ApiError::new(
                ec::UNKNOWN_TOPIC_OR_PARTITION,
                format!("Topic {name} does not exist"),
            )
        })?;
        let mut seen = std::collections::BTreeSet::new();
        let mut result = topic.configs.clone();
        for (key, op, value) in changes {
            if !seen.insert(key.clone()) {
                return Err(ApiError::new(
                    ec::INVALID_REQUEST,
                    format!("Error due to duplicate config keys: {key}"),
                ));
            }
            match op {
                AlterOp::Set => {
                    let value = validate_topic_configs(&[(key.clone(), value.clone())])?;
                    result.extend(value);
                }
                AlterOp::Delete => {
                    if crate::log::config::topic_config_def(key).is_none() {
                        return Err(ApiError::new(
                            ec::INVALID_CONFIG,
                            format!("Unknown topic config name: {key}"),
                        ));
                    }
                    result.remove(key);
                }
                AlterOp::Append | AlterOp::Subtract => {
                    // Only list configs take APPEND/SUBTRACT: the current list (the
                    // override, else the topic default) gains the values it lacks, or
                    // loses the given ones; the result is validated like a SET.
                    let is_list = crate::log::config::topic_config_def(key)
                        .is_some_and(|d| d.kind == crate::log::config::ConfigType::List);
                    if !is_list {
                        return Err(ApiError::new(
                            ec::INVALID_CONFIG,
                            format!("Config value append is not allowed for config key: {key}"),
                        ));
                    }
                    let current = result
                        .get(key)
                        .cloned()
                        .or_else(|| LogConfig::default().value_of(key))
                        .unwrap_or_default();
                    let split = |v: &str| -> Vec<String> {
                        v.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    };
                    let mut list = split(&current);
                    let given = split(value.as_deref().unwrap_or(""));
                    if *op == AlterOp::Append {
                        for v in given {
                            if !list.contains(&v) {
                                list.push(v);
                            }
                        }
                    } else {
                        list.retain(|v| !given.contains(v));
                    }
                    let value = validate_topic_configs(&[(key.clone(), Some(list.join(",")))])?;
                    result.extend(value);
                }
            }
        }
        Ok(ControllerResult {
            records: config_diff(name, &topic.configs, &result),
            response: (),
        })
    }

    /// Legacy AlterConfigs on a topic: the given set replaces every override.
    pub fn replace_topic_configs(
        &self,
        name: &str,
        configs: &[(String, Option<String>)],
    ) -> Result<ControllerResult<()>, ApiError> {
        let topic = self.image.topic(name).ok_or_else(|| {
            ApiError::new(
                ec::UNKNOWN_TOPIC_OR_PARTITION,
                format!("Topic {name} does not exist"),
            )
        })?;
        let result = validate_topic_configs(configs)?;
        Ok(ControllerResult {
            records: config_diff(name, &topic.configs, &result),
            response: (),
        })
    }
}

/// The Config records that turn `before` into `after`.
fn config_diff(
    topic: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for key in before.keys().filter(|k| !after.contains_key(*k)) {
        records.push(MetadataRecord::Config {
            kind: ConfigResourceKind::Topic,
            resource: topic.to_string(),
            key: key.clone(),
            value: None,
        });
    }
    for (key, value) in after {
        if before.get(key) != Some(value) {
            records.push(MetadataRecord::Config {
                kind: ConfigResourceKind::Topic,
                resource: topic.to_string(),
                key: key.clone(),
                value: Some(value.clone()),
            });
        }
    }
    records
}

/// Kafka's cluster-id format: 16 bytes, URL-safe base64 without padding (22 chars).
fn cluster_id_string(bytes: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests;
