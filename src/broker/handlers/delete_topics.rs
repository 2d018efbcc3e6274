//! DeleteTopics, by name (v1–v5) or by name or id (v6).

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::metadata::{topic_name, uuid_of};
use crate::broker::state::BrokerState;
use crate::controller::{ApiError, TopicId};
use crate::protocol::error_codes as ec;

const TOPIC_DELETION_DISABLED: i16 = 73;

pub async fn handle(
    state: &Arc<BrokerState>,
    request: DeleteTopicsRequest,
    version: i16,
) -> ResponseKind {
    // (name, id) as given; v6 may name a topic by id only.
    let wanted: Vec<(Option<String>, Option<TopicId>)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| match &t.name {
                Some(name) => (Some(name.0.as_str().to_string()), None),
                None => (None, Some(TopicId(*t.topic_id.as_bytes()))),
            })
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.as_str().to_string()), None))
            .collect()
    };
    let mut responses = Vec::new();
    for (name, id) in wanted {
        let image = state.image();
        let resolved = match (&name, id) {
            (Some(name), _) => Ok(name.clone()),
            (None, Some(id)) => image
                .topic_by_id(&id)
                .map(|t| t.name.clone())
                .ok_or_else(|| {
                    ApiError::new(
                        ec::UNKNOWN_TOPIC_ID,
                        "This server does not host this topic ID.",
                    )
                }),
            (None, None) => Err(ApiError::new(ec::INVALID_REQUEST, "no topic named")),
        };
        let outcome = match resolved {
            Err(e) => Err(e),
            Ok(_) if !state.config.settings.delete_topic_enable => Err(ApiError::new(
                TOPIC_DELETION_DISABLED,
                "Topic deletion is disabled.",
            )),
            Ok(resolved) => {
                let mut meta = state.metadata.lock().await;
                match meta.controller.delete_topic(&resolved) {
                    Ok(result) => {
                        let deleted = result.response;
                        state
                            .commit(&mut meta, result.records)
                            .await
                            .map(|()| (resolved, deleted))
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let mut result = DeletableTopicResult::default();
        match outcome {
            Ok((resolved, deleted)) => {
                result.name = Some(topic_name(&resolved));
                result.error_code = ec::NONE;
                if version >= 6 {
                    result.topic_id = uuid_of(deleted);
                }
            }
            Err(e) => {
                result.name = name.as_deref().map(topic_name);
                result.error_code = e.code;
                if version >= 6 {
                    if let Some(id) = id {
                        result.topic_id = uuid_of(id);
                    }
                }
                if version >= 5 {
                    result.error_message = Some(StrBytes::from_string(e.message));
                }
            }
        }
        responses.push(result);
    }
    ResponseKind::DeleteTopics(
        DeleteTopicsResponse::default()
            .with_throttle_time_ms(0)
            .with_responses(responses),
    )
}
