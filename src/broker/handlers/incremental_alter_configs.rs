//! IncrementalAlterConfigs: SET/DELETE on topic configs, APPEND/SUBTRACT on the list ones
//! (`cleanup.policy`, the replication throttles; on any other: INVALID_CONFIG). Unknown
//! keys and bad values are INVALID_CONFIG; broker configs are static (INVALID_CONFIG).

use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ResponseKind,
};

use super::alter_configs::broker_configs_are_static;
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{error_fields, unsupported_resource_type};
use crate::broker::state::BrokerState;
use crate::controller::{AlterOp, ApiError};
use crate::protocol::error_codes as ec;

pub async fn handle(
    state: &Arc<BrokerState>,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> ResponseKind {
    let mut responses = Vec::new();
    for resource in request.resources {
        let name = resource.resource_name.as_str().to_string();
        let mut changes = Vec::new();
        let mut bad_op = None;
        for c in &resource.configs {
            match AlterOp::from_code(c.config_operation) {
                Some(op) => changes.push((
                    c.name.as_str().to_string(),
                    op,
                    c.value.as_ref().map(|v| v.as_str().to_string()),
                )),
                None => bad_op = Some(c.config_operation),
            }
        }
        let outcome = if let Some(op) = bad_op {
            Err(ApiError::new(
                ec::INVALID_REQUEST,
                format!("Unknown config operation {op}"),
            ))
        } else {
            match resource.resource_type {
                RESOURCE_TOPIC => {
                    let mut meta = state.metadata.lock().await;
                    match meta
                        .controller
                        .incremental_alter_topic_configs(&name, &changes)
                    {
                        Ok(_) if request.validate_only => Ok(()),
                        Ok(result) => state.commit(&mut meta, result.records).await,
                        Err(e) => Err(e),
                    }
                }
                RESOURCE_BROKER => Err(broker_configs_are_static(
                    &changes.into_iter().map(|(k, _, _)| k).collect::<Vec<_>>(),
                )),
                other => Err(unsupported_resource_type(other)),
            }
        };
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        let (code, message) = error_fields(outcome);
        responses.push(response.with_error_code(code).with_error_message(message));
    }
    ResponseKind::IncrementalAlterConfigs(
        IncrementalAlterConfigsResponse::default()
            .with_throttle_time_ms(0)
            .with_responses(responses),
    )
}
