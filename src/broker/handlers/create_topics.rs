//! CreateTopics (and automatic creation for Metadata): validated by the controller,
//! committed to the metadata log one topic at a time, `validate_only` honoured.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::metadata::{topic_name, uuid_of};
use crate::base::NodeId;
use crate::broker::config::{broker_key_for_topic_key, topic_config_value};
use crate::broker::state::BrokerState;
use crate::controller::{ApiError, CreateTopic};
use crate::log::config::TOPIC_CONFIGS;
use crate::protocol::error_codes as ec;

/// DescribeConfigs/CreateTopics config sources (Kafka's ConfigSource ids).
pub const SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

/// Creates `name` with the broker's defaults (auto topic creation).
pub async fn auto_create(state: &Arc<BrokerState>, name: &str) -> Result<(), ApiError> {
    let request = CreateTopic {
        name: name.to_string(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: BTreeMap::new(),
        configs: Vec::new(),
    };
    let mut meta = state.metadata.lock().await;
    let result = meta.controller.create_topic(&request)?;
    state.commit(&mut meta, result.records).await?;
    tracing::info!(topic = name, "auto-created topic");
    Ok(())
}

/// Every topic config with its effective value and source, for responses.
pub fn effective_configs(
    state: &BrokerState,
    overrides: &BTreeMap<String, String>,
) -> Vec<(String, String, i8)> {
    let config = state.topic_log_config(overrides);
    TOPIC_CONFIGS
        .iter()
        .filter_map(|def| {
            let key = def.name;
            let value = topic_config_value(&config, key)?;
            let source = if overrides.contains_key(key) {
                SOURCE_DYNAMIC_TOPIC
            } else if broker_key_for_topic_key(key)
                .is_some_and(|b| state.config.settings.overrides.contains_key(b))
            {
                SOURCE_STATIC_BROKER
            } else {
                SOURCE_DEFAULT
            };
            Some((key.to_string(), value, source))
        })
        .collect()
}

pub async fn handle(
    state: &Arc<BrokerState>,
    request: CreateTopicsRequest,
    version: i16,
) -> ResponseKind {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for topic in &request.topics {
        *counts.entry(topic.name.0.as_str().to_string()).or_default() += 1;
    }
    let duplicates: BTreeSet<String> = counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(name, _)| name)
        .collect();
    let mut results = Vec::new();
    let mut answered_duplicates = BTreeSet::new();
    for topic in request.topics {
        let name = topic.name.0.as_str().to_string();
        if duplicates.contains(&name) {
            if answered_duplicates.insert(name.clone()) {
                results.push(error_result(
                    &name,
                    &ApiError::new(ec::INVALID_REQUEST, "Duplicate topic name."),
                    version,
                ));
            }
            continue;
        }
        let create = CreateTopic {
            name: name.clone(),
            num_partitions: topic.num_partitions,
            replication_factor: topic.replication_factor,
            assignments: topic
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| NodeId(b.0)).collect(),
                    )
                })
                .collect(),
            configs: topic
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.as_str().to_string(),
                        c.value.as_ref().map(|v| v.as_str().to_string()),
                    )
                })
                .collect(),
        };
        if create.assignments.len() != topic.assignments.len() {
            results.push(error_result(
                &name,
                &ApiError::new(
                    ec::INVALID_REPLICA_ASSIGNMENT,
                    "Duplicate partition index in the assignment.",
                ),
                version,
            ));
            continue;
        }
        let mut meta = state.metadata.lock().await;
        let outcome = match meta.controller.create_topic(&create) {
            Ok(result) if request.validate_only => Ok(result.response),
            Ok(result) => {
                let response = result.response.clone();
                state
                    .commit(&mut meta, result.records)
                    .await
                    .map(|()| response)
            }
            Err(e) => Err(e),
        };
        drop(meta);
        match outcome {
            Ok(created) => {
                let mut result = CreatableTopicResult::default()
                    .with_name(topic_name(&name))
                    .with_error_code(ec::NONE)
                    .with_num_partitions(created.num_partitions)
                    .with_replication_factor(created.replication_factor);
                if version >= 7 {
                    result.topic_id = uuid_of(created.id);
                }
                if version >= 5 {
                    let configs = effective_configs(state, &created.configs)
                        .into_iter()
                        .map(|(key, value, source)| {
                            CreatableTopicConfigs::default()
                                .with_name(StrBytes::from_string(key))
                                .with_value(Some(StrBytes::from_string(value)))
                                .with_config_source(source)
                        })
                        .collect();
                    result.configs = Some(configs);
                }
                results.push(result);
            }
            Err(e) => results.push(error_result(&name, &e, version)),
        }
    }
    ResponseKind::CreateTopics(
        CreateTopicsResponse::default()
            .with_throttle_time_ms(0)
            .with_topics(results),
    )
}

fn error_result(name: &str, error: &ApiError, version: i16) -> CreatableTopicResult {
    let mut result = CreatableTopicResult::default()
        .with_name(topic_name(name))
        .with_error_code(error.code)
        .with_num_partitions(-1)
        .with_replication_factor(-1);
    if version >= 1 {
        result.error_message = Some(StrBytes::from_string(error.message.clone()));
    }
    result
}
