//! DescribeConfigs for topics (every topic config: override, static broker default or
//! Kafka default) and for this broker (every broker key it understands).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::create_topics::{
    effective_configs, SOURCE_DEFAULT, SOURCE_DYNAMIC_TOPIC, SOURCE_STATIC_BROKER,
};
use super::unsupported_resource_type;
use crate::broker::config::{broker_key_for_topic_key, broker_topic_key, BrokerSettings};
use crate::broker::state::BrokerState;
use crate::log::config::{topic_config_def, ConfigType};
use crate::protocol::error_codes as ec;

/// One described config.
struct Entry {
    key: String,
    value: Option<String>,
    source: i8,
    read_only: bool,
    config_type: ConfigType,
    doc: Option<&'static str>,
    /// (name, value, source), most specific first.
    synonyms: Vec<(String, Option<String>, i8)>,
}

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Kafka's ConfigType of a broker key (v3+).
fn broker_config_type(key: &str) -> ConfigType {
    if let Some(def) = broker_topic_key(key).and_then(topic_config_def) {
        return def.kind;
    }
    match key {
        "broker.rack" => ConfigType::String,
        "auto.create.topics.enable" | "delete.topic.enable" => ConfigType::Boolean,
        "num.partitions"
        | "socket.request.max.bytes"
        | "max.connections"
        | "log.retention.hours"
        | "log.retention.minutes"
        | "log.roll.hours"
        | "log.roll.jitter.hours"
        | "default.replication.factor" => ConfigType::Int,
        _ => ConfigType::Long,
    }
}

/// A topic's configs: every Kafka topic config with its value, source and synonyms.
fn topic_entries(state: &BrokerState, overrides: &BTreeMap<String, String>) -> Vec<Entry> {
    let settings = &state.config.settings;
    effective_configs(state, overrides)
        .into_iter()
        .map(|(key, value, source)| {
            let def = topic_config_def(&key);
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(&key) {
                synonyms.push((key.clone(), Some(v.clone()), SOURCE_DYNAMIC_TOPIC));
            }
            if let Some(broker_key) = broker_key_for_topic_key(&key) {
                if let Some(v) = settings.overrides.get(broker_key) {
                    synonyms.push((
                        broker_key.to_string(),
                        Some(v.clone()),
                        SOURCE_STATIC_BROKER,
                    ));
                }
                synonyms.push((
                    broker_key.to_string(),
                    BrokerSettings::default().value_of(broker_key),
                    SOURCE_DEFAULT,
                ));
            }
            Entry {
                key,
                value: Some(value),
                source,
                read_only: false,
                config_type: def.map_or(ConfigType::String, |d| d.kind),
                doc: def.map(|d| d.doc),
                synonyms,
            }
        })
        .collect()
}

pub fn handle(
    state: &Arc<BrokerState>,
    request: DescribeConfigsRequest,
    version: i16,
) -> ResponseKind {
    let image = state.image();
    let mut results = Vec::new();
    for resource in request.resources {
        let name = resource.resource_name.as_str().to_string();
        let entries: Result<Vec<Entry>, (i16, String)> = match resource.resource_type {
            RESOURCE_TOPIC => match image.topic(&name) {
                Some(topic) => Ok(topic_entries(state, &topic.configs)),
                None => Err((
                    ec::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("Topic {name} does not exist"),
                )),
            },
            RESOURCE_BROKER => {
                if name.is_empty() || name == state.node_id.0.to_string() {
                    let settings = &state.config.settings;
                    Ok(BrokerSettings::keys()
                        .into_iter()
                        .map(|k| {
                            let value = settings.value_of(k);
                            let (source, synonyms) = if settings.overrides.contains_key(k) {
                                let default = BrokerSettings::default().value_of(k);
                                (
                                    SOURCE_STATIC_BROKER,
                                    vec![
                                        (k.to_string(), value.clone(), SOURCE_STATIC_BROKER),
                                        (k.to_string(), default, SOURCE_DEFAULT),
                                    ],
                                )
                            } else {
                                (
                                    SOURCE_DEFAULT,
                                    vec![(k.to_string(), value.clone(), SOURCE_DEFAULT)],
                                )
                            };
                            Entry {
                                key: k.to_string(),
                                value,
                                source,
                                read_only: true,
                                config_type: broker_config_type(k),
                                doc: None,
                                synonyms,
                            }
                        })
                        .collect())
                } else {
                    Err((
                        ec::INVALID_REQUEST,
                        format!(
                            "Unexpected broker id, expected {} but received {name}",
                            state.node_id.0
                        ),
                    ))
                }
            }
            other => {
                let e = unsupported_resource_type(other);
                Err((e.code, e.message))
            }
        };
        let mut result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        match entries {
            Ok(entries) => {
                // Null or empty: every config (as Kafka's ConfigHelper).
                let wanted = resource
                    .configuration_keys
                    .as_ref()
                    .filter(|keys| !keys.is_empty());
                result.error_code = ec::NONE;
                result.configs = entries
                    .into_iter()
                    .filter(|e| wanted.is_none_or(|keys| keys.iter().any(|w| w.as_str() == e.key)))
                    .map(|e| {
                        let mut entry = DescribeConfigsResourceResult::default()
                            .with_name(StrBytes::from_string(e.key))
                            .with_value(e.value.map(StrBytes::from_string))
                            .with_read_only(e.read_only)
                            .with_config_source(e.source)
                            .with_is_sensitive(false);
                        if request.include_synonyms {
                            entry.synonyms = e
                                .synonyms
                                .into_iter()
                                .map(|(name, value, source)| {
                                    DescribeConfigsSynonym::default()
                                        .with_name(StrBytes::from_string(name))
                                        .with_value(value.map(StrBytes::from_string))
                                        .with_source(source)
                                })
                                .collect();
                        }
                        if version >= 3 {
                            entry.config_type = e.config_type as i8;
                            if request.include_documentation {
                                entry.documentation = e.doc.map(StrBytes::from_static_str);
                            }
                        }
                        entry
                    })
                    .collect();
            }
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = Some(StrBytes::from_string(message));
            }
        }
        results.push(result);
    }
    ResponseKind::DescribeConfigs(
        DescribeConfigsResponse::default()
            .with_throttle_time_ms(0)
            .with_results(results),
    )
}
