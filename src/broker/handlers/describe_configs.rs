//! DescribeConfigs for topics (every topic config: override, static broker default or
//! Kafka default) and for this broker (every broker key it understands).

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::create_topics::{effective_configs, SOURCE_DEFAULT, SOURCE_STATIC_BROKER};
use crate::broker::config::BrokerSettings;
use crate::broker::state::BrokerState;
use crate::protocol::error_codes as ec;

/// (key, value, source, read only) of one described config.
type Entry = (String, Option<String>, i8, bool);

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Kafka's ConfigType for a key (v3+): 1 boolean, 2 string, 3 int, 5 long.
fn config_type(key: &str) -> i8 {
    match key {
        "message.timestamp.type" | "log.message.timestamp.type" | "broker.rack" => 2,
        "auto.create.topics.enable" | "delete.topic.enable" => 1,
        "index.interval.bytes"
        | "segment.bytes"
        | "segment.index.bytes"
        | "max.message.bytes"
        | "message.max.bytes"
        | "log.segment.bytes"
        | "log.index.size.max.bytes"
        | "log.index.interval.bytes"
        | "num.partitions"
        | "socket.request.max.bytes"
        | "max.connections"
        | "log.retention.hours"
        | "log.retention.minutes"
        | "log.roll.hours" => 3,
        "default.replication.factor" => 4,
        _ => 5,
    }
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
                Some(topic) => Ok(effective_configs(state, &topic.configs)
                    .into_iter()
                    .map(|(k, v, s)| (k, Some(v), s, false))
                    .collect()),
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
                            let source = if settings.overrides.contains_key(k) {
                                SOURCE_STATIC_BROKER
                            } else {
                                SOURCE_DEFAULT
                            };
                            (k.to_string(), settings.value_of(k), source, true)
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
            other => Err((
                ec::INVALID_REQUEST,
                format!("Unsupported resource type {other}"),
            )),
        };
        let mut result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        match entries {
            Ok(entries) => {
                let wanted = resource.configuration_keys.as_ref();
                result.error_code = ec::NONE;
                result.configs = entries
                    .into_iter()
                    .filter(|(k, ..)| {
                        wanted.is_none_or(|keys| keys.iter().any(|w| w.as_str() == k))
                    })
                    .map(|(key, value, source, read_only)| {
                        let mut entry = DescribeConfigsResourceResult::default()
                            .with_name(StrBytes::from_string(key.clone()))
                            .with_value(value.map(StrBytes::from_string))
                            .with_read_only(read_only)
                            .with_config_source(source);
                        if version >= 3 {
                            entry.config_type = config_type(&key);
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
