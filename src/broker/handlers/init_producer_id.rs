//! InitProducerId for idempotent producers: each request gets a producer id never handed
//! out before (from the broker's reserved block, see `BrokerState::next_producer_id`) at
//! epoch 0, as Kafka answers a request without a transactional id. A producer id and
//! epoch in the request (v3+, an idempotent producer resetting after a sequence error)
//! do not matter: it gets a fresh id.
//!
//! Transactions are not implemented: a request with a transactional id is refused with
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients treat as fatal, rather than with
//! a retriable error they would retry forever.

use std::sync::Arc;

use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind,
};

use crate::broker::state::BrokerState;
use crate::protocol::error_codes as ec;

pub async fn handle(
    state: &Arc<BrokerState>,
    request: InitProducerIdRequest,
    _version: i16,
) -> ResponseKind {
    let response = InitProducerIdResponse::default().with_throttle_time_ms(0);
    let answer = if request.transactional_id.is_some() {
        tracing::info!(
            "InitProducerId with a transactional id refused: transactions are not supported"
        );
        Err(ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else {
        state.next_producer_id().await.map_err(|e| {
            tracing::error!(error = e.message, "no producer id to hand out");
            e.code
        })
    };
    let response = match answer {
        Ok(producer_id) => response
            .with_error_code(ec::NONE)
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(0),
        Err(code) => response
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    };
    ResponseKind::InitProducerId(response)
}
