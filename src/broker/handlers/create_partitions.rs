//! CreatePartitions: grows topics; new partitions are placed by the controller or taken
//! from the request's assignments. `validate_only` commits nothing.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, ResponseKind};

use super::error_fields;
use crate::base::NodeId;
use crate::broker::state::BrokerState;
use crate::controller::ApiError;
use crate::protocol::error_codes as ec;

pub async fn handle(
    state: &Arc<BrokerState>,
    request: CreatePartitionsRequest,
    _version: i16,
) -> ResponseKind {
    let mut results = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for topic in request.topics {
        let name = topic.name.0.as_str().to_string();
        let outcome = if !seen.insert(name.clone()) {
            Err(ApiError::new(
                ec::INVALID_REQUEST,
                "Duplicate topic in request.",
            ))
        } else {
            let assignments = topic.assignments.map(|list| {
                list.into_iter()
                    .map(|a| a.broker_ids.into_iter().map(|b| NodeId(b.0)).collect())
                    .collect()
            });
            let mut meta = state.metadata.lock().await;
            match meta
                .controller
                .create_partitions(&name, topic.count, assignments)
            {
                Ok(_) if request.validate_only => Ok(()),
                Ok(result) => state.commit(&mut meta, result.records).await,
                Err(e) => Err(e),
            }
        };
        let result = CreatePartitionsTopicResult::default().with_name(topic.name);
        let (code, message) = error_fields(outcome);
        results.push(result.with_error_code(code).with_error_message(message));
    }
    ResponseKind::CreatePartitions(
        CreatePartitionsResponse::default()
            .with_throttle_time_ms(0)
            .with_results(results),
    )
}
