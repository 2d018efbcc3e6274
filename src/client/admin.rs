//! Admin operations over the Kafka protocol: topics, configs, offsets, record deletion.
//!
//! Owns: building the admin requests, routing them (topic and config changes to the
//! controller or any broker, which forwards in KRaft; ListOffsets and DeleteRecords to
//! partition leaders), retrying request-level transport and NOT_CONTROLLER failures, and
//! turning per-resource error codes into per-resource `ClientError`s. Must never retry a
//! non-idempotent request whose outcome a broker already reported, nor iterate
//! unordered collections.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteRecordsRequest,
    DeleteTopicsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::base::NodeId;
use crate::client::cluster::Cluster;
use crate::client::consumer::list_offsets;
use crate::client::errors::{code, ClientError};
use crate::client::metadata::TopicPartition;

/// Attempts for an admin request that fails at the request level (transport errors,
/// NOT_CONTROLLER) before the error is returned.
const ADMIN_ATTEMPTS_MAX: u32 = 5;

/// A topic to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }
}

/// One partition of a described topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionDescription {
    pub partition: i32,
    pub leader: Option<NodeId>,
    pub leader_epoch: i32,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub offline_replicas: Vec<NodeId>,
    pub error_code: i16,
}

/// A topic as Metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub topic_id: [u8; 16],
    pub is_internal: bool,
    pub error_code: i16,
    pub partitions: Vec<PartitionDescription>,
}

/// What a config describe or alter is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    Broker(NodeId),
}

impl ConfigResource {
    fn kafka_type(&self) -> i8 {
        match self {
            ConfigResource::Topic(_) => 2,
            ConfigResource::Broker(_) => 4,
        }
    }

    fn kafka_name(&self) -> String {
        match self {
            ConfigResource::Topic(name) => name.clone(),
            ConfigResource::Broker(node) => node.0.to_string(),
        }
    }
}

/// One config as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    /// Kafka's ConfigSource: 1 dynamic topic, 4 static broker, 5 default, ...
    pub source: i8,
    pub is_sensitive: bool,
}

/// One change of an IncrementalAlterConfigs request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlterConfigOp {
    Set(String, String),
    Delete(String),
    Append(String, String),
    Subtract(String, String),
}

impl AlterConfigOp {
    fn to_kafka(&self) -> AlterableConfig {
        let (name, operation, value) = match self {
            AlterConfigOp::Set(name, value) => (name, 0, Some(value)),
            AlterConfigOp::Delete(name) => (name, 1, None),
            AlterConfigOp::Append(name, value) => (name, 2, Some(value)),
            AlterConfigOp::Subtract(name, value) => (name, 3, Some(value)),
        };
        AlterableConfig::default()
            .with_name(StrBytes::from_string(name.clone()))
            .with_config_operation(operation)
            .with_value(value.map(|v| StrBytes::from_string(v.clone())))
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Fails with NOT_CONTROLLER when every per-topic code in a response is NOT_CONTROLLER:
/// nothing was applied, so `retrying` may send the whole request again.
fn check_not_controller(
    codes: impl IntoIterator<Item = i16>,
    what: &str,
) -> Result<(), ClientError> {
    let mut codes = codes.into_iter().peekable();
    if codes.peek().is_some() && codes.all(|c| c == code::NOT_CONTROLLER) {
        return Err(ClientError::kafka(code::NOT_CONTROLLER, None, what));
    }
    Ok(())
}

/// Per-topic answers `(name, error code, message)` as results in the order the caller
/// asked (`asked`); a topic the response left out is a protocol error. `what` names
/// the operation in errors: "create topic" gives "create topic t: broker returned ...".
fn per_topic_results<'a>(
    asked: impl IntoIterator<Item = &'a String>,
    answered: impl IntoIterator<Item = (String, i16, Option<&'a str>)>,
    what: &str,
) -> Vec<(String, Result<(), ClientError>)> {
    let mut results: BTreeMap<String, Result<(), ClientError>> = answered
        .into_iter()
        .map(|(name, code, message)| {
            let result = ClientError::check(code, message, || format!("{what} {name}"));
            (name, result)
        })
        .collect();
    asked
        .into_iter()
        .map(|name| {
            let result = results.remove(name).unwrap_or_else(|| {
                Err(ClientError::Protocol {
                    addr: "controller".to_string(),
                    detail: format!("no result for {what} {name}"),
                })
            });
            (name.clone(), result)
        })
        .collect()
}

/// Admin client over a shared `Cluster`.
#[derive(Clone, Debug)]
pub struct Admin {
    cluster: Arc<Cluster>,
}

impl Admin {
    pub fn new(cluster: Arc<Cluster>) -> Admin {
        Admin { cluster }
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Runs `attempt` until it succeeds, fails non-retriably, or ADMIN_ATTEMPTS_MAX
    /// attempts have failed; refreshes metadata between attempts.
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let backoff = Duration::from_millis(self.cluster.config().retry_backoff_ms);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retriable() && attempts < ADMIN_ATTEMPTS_MAX => {
                    tokio::time::sleep(backoff).await;
                    let _ = self.cluster.refresh_metadata(Some(&[])).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Sends a topic-changing request to the controller, retrying it whole on transport
    /// errors and when every per-topic code (`codes`) is NOT_CONTROLLER.
    async fn controller_request<R: Request>(
        &self,
        request: &R,
        codes: impl Fn(&R::Response) -> Vec<i16>,
        what: &str,
    ) -> Result<R::Response, ClientError> {
        let cluster = &self.cluster;
        let codes = &codes;
        self.retrying(|| async move {
            let response = cluster.controller_connection().await?.send(request).await?;
            check_not_controller(codes(&response), what)?;
            Ok(response)
        })
        .await
    }

    /// Creates topics; returns each topic's result in request order.
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        timeout_ms: i32,
        validate_only: bool,
    ) -> Result<Vec<(String, Result<(), ClientError>)>, ClientError> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(timeout_ms)
            .with_validate_only(validate_only)
            .with_topics(
                topics
                    .iter()
                    .map(|topic| {
                        CreatableTopic::default()
                            .with_name(topic_name(&topic.name))
                            .with_num_partitions(topic.partitions)
                            .with_replication_factor(topic.replication_factor)
                            .with_configs(
                                topic
                                    .configs
                                    .iter()
                                    .map(|(name, value)| {
                                        CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(name.clone()))
                                            .with_value(Some(StrBytes::from_string(value.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = self
            .controller_request(
                &request,
                |response| response.topics.iter().map(|t| t.error_code).collect(),
                "create topics",
            )
            .await?;
        Ok(per_topic_results(
            topics.iter().map(|topic| &topic.name),
            response.topics.iter().map(|topic| {
                (
                    topic.name.0.to_string(),
                    topic.error_code,
                    topic.error_message.as_deref(),
                )
            }),
            "create topic",
        ))
    }

    /// Deletes topics by name; returns each topic's result in request order.
    pub async fn delete_topics(
        &self,
        names: &[String],
        timeout_ms: i32,
    ) -> Result<Vec<(String, Result<(), ClientError>)>, ClientError> {
        let cluster = &self.cluster;
        let response = self
            .retrying(|| async move {
                let connection = cluster.controller_connection().await?;
                // v6 replaced the name list with (name, id) pairs.
                let version = connection.version(ApiKey::DeleteTopics)?;
                let request = if version >= 6 {
                    DeleteTopicsRequest::default().with_topics(
                        names
                            .iter()
                            .map(|name| {
                                DeleteTopicState::default().with_name(Some(topic_name(name)))
                            })
                            .collect(),
                    )
                } else {
                    DeleteTopicsRequest::default()
                        .with_topic_names(names.iter().map(|name| topic_name(name)).collect())
                }
                .with_timeout_ms(timeout_ms);
                connection.send_at(&request, version).await
            })
            .await?;
        Ok(per_topic_results(
            names,
            response.responses.iter().filter_map(|topic| {
                let name = topic.name.as_ref()?.0.to_string();
                Some((name, topic.error_code, topic.error_message.as_deref()))
            }),
            "delete topic",
        ))
    }

    /// Names of all topics, sorted; internal topics only if asked.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<String>, ClientError> {
        let descriptions = self.describe_topics(None).await?;
        Ok(descriptions
            .into_iter()
            .filter(|topic| include_internal || !topic.is_internal)
            .map(|topic| topic.name)
            .collect())
    }

    /// Describes `names` (`None`: every topic), sorted by name. A topic the broker does
    /// not know comes back with its error code (UNKNOWN_TOPIC_OR_PARTITION).
    pub async fn describe_topics(
        &self,
        names: Option<&[String]>,
    ) -> Result<Vec<TopicDescription>, ClientError> {
        let cluster = &self.cluster;
        let response = self
            .retrying(|| async move { cluster.fetch_metadata(names).await })
            .await?;
        let mut topics: Vec<TopicDescription> = response
            .topics
            .iter()
            .filter_map(|topic| {
                let name = topic.name.as_ref()?.0.to_string();
                let mut partitions: Vec<PartitionDescription> = topic
                    .partitions
                    .iter()
                    .map(|p| PartitionDescription {
                        partition: p.partition_index,
                        leader: (p.leader_id.0 >= 0).then_some(NodeId(p.leader_id.0)),
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.iter().map(|id| NodeId(id.0)).collect(),
                        isr: p.isr_nodes.iter().map(|id| NodeId(id.0)).collect(),
                        offline_replicas: p
                            .offline_replicas
                            .iter()
                            .map(|id| NodeId(id.0))
                            .collect(),
                        error_code: p.error_code,
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                Some(TopicDescription {
                    name,
                    topic_id: *topic.topic_id.as_bytes(),
                    is_internal: topic.is_internal,
                    error_code: topic.error_code,
                    partitions,
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// The configs of one resource (`keys`: `None` for all).
    pub async fn describe_configs(
        &self,
        resource: &ConfigResource,
        keys: Option<&[String]>,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource.kafka_type())
                .with_resource_name(StrBytes::from_string(resource.kafka_name()))
                .with_configuration_keys(keys.map(|keys| {
                    keys.iter()
                        .map(|key| StrBytes::from_string(key.clone()))
                        .collect()
                })),
        ]);
        let cluster = &self.cluster;
        let request = &request;
        let response = self
            .retrying(|| async move {
                // Broker configs are answered by that broker.
                let connection = match resource {
                    ConfigResource::Broker(node) => cluster.connection_to_node(*node).await?,
                    ConfigResource::Topic(_) => cluster.any_connection().await?,
                };
                connection.send(request).await
            })
            .await?;
        let result = response
            .results
            .first()
            .ok_or_else(|| ClientError::Protocol {
                addr: "broker".to_string(),
                detail: "describe configs response has no result".to_string(),
            })?;
        ClientError::check(result.error_code, result.error_message.as_deref(), || {
            format!("describe configs of {}", resource.kafka_name())
        })?;
        Ok(result
            .configs
            .iter()
            .map(|config| ConfigEntry {
                name: config.name.to_string(),
                value: config.value.as_ref().map(|v| v.to_string()),
                read_only: config.read_only,
                source: config.config_source,
                is_sensitive: config.is_sensitive,
            })
            .collect())
    }

    /// Applies config changes to one resource.
    pub async fn incremental_alter_configs(
        &self,
        resource: &ConfigResource,
        ops: &[AlterConfigOp],
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let request = IncrementalAlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(resource.kafka_type())
                .with_resource_name(StrBytes::from_string(resource.kafka_name()))
                .with_configs(ops.iter().map(AlterConfigOp::to_kafka).collect())]);
        let cluster = &self.cluster;
        let request = &request;
        let response = self
            .retrying(|| async move {
                let connection = match resource {
                    ConfigResource::Broker(node) => cluster.connection_to_node(*node).await?,
                    ConfigResource::Topic(_) => cluster.controller_connection().await?,
                };
                connection.send(request).await
            })
            .await?;
        let result = response
            .responses
            .first()
            .ok_or_else(|| ClientError::Protocol {
                addr: "broker".to_string(),
                detail: "alter configs response has no result".to_string(),
            })?;
        ClientError::check(result.error_code, result.error_message.as_deref(), || {
            format!("alter configs of {}", resource.kafka_name())
        })
    }

    /// Raises topics' partition counts (`(topic, new total count)`), with the broker
    /// placing the new replicas; returns each topic's result in request order. Kafka
    /// only grows a topic: a count at or below the current one is INVALID_PARTITIONS.
    pub async fn create_partitions(
        &self,
        counts: &[(String, i32)],
        timeout_ms: i32,
        validate_only: bool,
    ) -> Result<Vec<(String, Result<(), ClientError>)>, ClientError> {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(timeout_ms)
            .with_validate_only(validate_only)
            .with_topics(
                counts
                    .iter()
                    .map(|(name, count)| {
                        CreatePartitionsTopic::default()
                            .with_name(topic_name(name))
                            .with_count(*count)
                            .with_assignments(None)
                    })
                    .collect(),
            );
        let response = self
            .controller_request(
                &request,
                |response| response.results.iter().map(|t| t.error_code).collect(),
                "create partitions",
            )
            .await?;
        Ok(per_topic_results(
            counts.iter().map(|(name, _)| name),
            response.results.iter().map(|topic| {
                (
                    topic.name.0.to_string(),
                    topic.error_code,
                    topic.error_message.as_deref(),
                )
            }),
            "create partitions of",
        ))
    }

    /// Offsets by timestamp per partition (`consumer::LATEST_TIMESTAMP`,
    /// `consumer::EARLIEST_TIMESTAMP`, or ms): (offset, timestamp) or the error.
    pub async fn list_offsets(
        &self,
        requests: &BTreeMap<TopicPartition, i64>,
    ) -> BTreeMap<TopicPartition, Result<(i64, i64), ClientError>> {
        let mut results = list_offsets(&self.cluster, requests, 0).await;
        // One more round for partitions whose leader moved.
        let retry: BTreeMap<TopicPartition, i64> = results
            .iter()
            .filter(|(_, result)| result.as_ref().is_err_and(ClientError::is_retriable))
            .filter_map(|(tp, _)| requests.get(tp).map(|ts| (tp.clone(), *ts)))
            .collect();
        if !retry.is_empty() {
            results.extend(list_offsets(&self.cluster, &retry, 0).await);
        }
        results
    }

    /// Deletes records before the given offsets (-1: the high watermark); returns each
    /// partition's new low watermark or error.
    pub async fn delete_records(
        &self,
        before: &BTreeMap<TopicPartition, i64>,
        timeout_ms: i32,
    ) -> BTreeMap<TopicPartition, Result<i64, ClientError>> {
        let mut results = BTreeMap::new();
        let mut by_leader: BTreeMap<NodeId, Vec<(&TopicPartition, i64)>> = BTreeMap::new();
        for (tp, offset) in before {
            match self.cluster.leader(tp).await {
                Ok((leader, _)) => by_leader.entry(leader).or_default().push((tp, *offset)),
                Err(error) => {
                    results.insert(tp.clone(), Err(error));
                }
            }
        }
        let mut stale = BTreeSet::new();
        for (leader, partitions) in by_leader {
            let mut topics: BTreeMap<&str, Vec<DeleteRecordsPartition>> = BTreeMap::new();
            for (tp, offset) in &partitions {
                topics.entry(tp.topic.as_str()).or_default().push(
                    DeleteRecordsPartition::default()
                        .with_partition_index(tp.partition)
                        .with_offset(*offset),
                );
            }
            let request = DeleteRecordsRequest::default()
                .with_timeout_ms(timeout_ms)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(topic, partitions)| {
                            DeleteRecordsTopic::default()
                                .with_name(topic_name(topic))
                                .with_partitions(partitions)
                        })
                        .collect(),
                );
            let response = match self.cluster.connection_to_node(leader).await {
                Ok(connection) => connection.send(&request).await,
                Err(error) => Err(error),
            };
            match response {
                Err(error) => {
                    for (tp, _) in partitions {
                        results.insert(tp.clone(), Err(error.clone()));
                    }
                }
                Ok(response) => {
                    for topic in &response.topics {
                        for partition in &topic.partitions {
                            let tp = TopicPartition::new(
                                topic.name.0.to_string(),
                                partition.partition_index,
                            );
                            let result = ClientError::check(partition.error_code, None, || {
                                format!("delete records of {tp}")
                            })
                            .map(|()| partition.low_watermark);
                            if result
                                .as_ref()
                                .is_err_and(ClientError::needs_metadata_refresh)
                            {
                                stale.insert(tp.topic.clone());
                            }
                            results.insert(tp, result);
                        }
                    }
                    for (tp, _) in partitions {
                        results.entry(tp.clone()).or_insert_with(|| {
                            Err(ClientError::Protocol {
                                addr: format!("node {}", leader.0),
                                detail: format!("no delete records result for {tp}"),
                            })
                        });
                    }
                }
            }
        }
        if !stale.is_empty() {
            let topics: Vec<String> = stale.into_iter().collect();
            let _ = self.cluster.refresh_metadata(Some(&topics)).await;
        }
        results
    }
}
