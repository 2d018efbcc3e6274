//! ApiVersions: exactly the table in `request::SUPPORTED_APIS`.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseKind};

use super::respond;
use crate::broker::request::SUPPORTED_APIS;
use crate::net::server::Reply;
use crate::protocol::error_codes as ec;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.key as i16)
                .with_min_version(s.advertised_min)
                .with_max_version(s.max)
        })
        .collect()
}

pub fn handle(_request: &ApiVersionsRequest, _version: i16) -> ResponseKind {
    ResponseKind::ApiVersions(
        ApiVersionsResponse::default()
            .with_error_code(ec::NONE)
            .with_api_keys(api_keys())
            .with_throttle_time_ms(0)
            .with_finalized_features_epoch(-1),
    )
}

/// Kafka's answer to an ApiVersions request newer than it knows: UNSUPPORTED_VERSION with
/// the supported table, in a v0 body, so the client can retry at a version it shares.
pub fn unsupported_version(correlation_id: i32) -> Reply {
    let body = ResponseKind::ApiVersions(
        ApiVersionsResponse::default()
            .with_error_code(ec::UNSUPPORTED_VERSION)
            .with_api_keys(api_keys()),
    );
    respond(ApiKey::ApiVersions, 0, correlation_id, body)
}
