//! AlterConfigs (legacy): a topic's overrides are replaced by the given set. Broker
//! configs are static in this version: altering one is INVALID_CONFIG, as Kafka answers
//! for keys it cannot update dynamically.

use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ResponseKind};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{error_fields, unsupported_resource_type};
use crate::broker::state::BrokerState;
use crate::controller::ApiError;
use crate::protocol::error_codes as ec;

/// The answer for any change to a broker resource.
pub fn broker_configs_are_static(keys: &[String]) -> ApiError {
    ApiError::new(
        ec::INVALID_CONFIG,
        format!("Cannot update these configs dynamically: {keys:?}"),
    )
}

pub async fn handle(
    state: &Arc<BrokerState>,
    request: AlterConfigsRequest,
    _version: i16,
) -> ResponseKind {
    let mut responses = Vec::new();
    for resource in request.resources {
        let name = resource.resource_name.as_str().to_string();
        let configs: Vec<(String, Option<String>)> = resource
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.as_str().to_string(),
                    c.value.as_ref().map(|v| v.as_str().to_string()),
                )
            })
            .collect();
        let outcome = match resource.resource_type {
            RESOURCE_TOPIC => {
                let mut meta = state.metadata.lock().await;
                match meta.controller.replace_topic_configs(&name, &configs) {
                    Ok(_) if request.validate_only => Ok(()),
                    Ok(result) => state.commit(&mut meta, result.records).await,
                    Err(e) => Err(e),
                }
            }
            RESOURCE_BROKER => Err(broker_configs_are_static(
                &configs.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )),
            other => Err(unsupported_resource_type(other)),
        };
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        let (code, message) = error_fields(outcome);
        responses.push(response.with_error_code(code).with_error_message(message));
    }
    ResponseKind::AlterConfigs(
        AlterConfigsResponse::default()
            .with_throttle_time_ms(0)
            .with_responses(responses),
    )
}
