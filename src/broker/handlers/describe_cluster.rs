//! DescribeCluster: the registered brokers, the cluster id and the controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::state::BrokerState;
use crate::protocol::error_codes as ec;

pub fn handle(
    state: &Arc<BrokerState>,
    _request: DescribeClusterRequest,
    _version: i16,
) -> ResponseKind {
    let image = state.image();
    let brokers = image
        .brokers
        .values()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.node_id.0))
                .with_host(StrBytes::from_string(b.host.clone()))
                .with_port(b.port)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    ResponseKind::DescribeCluster(
        DescribeClusterResponse::default()
            .with_throttle_time_ms(0)
            .with_error_code(ec::NONE)
            .with_cluster_id(StrBytes::from_string(
                image.cluster_id.clone().unwrap_or_default(),
            ))
            .with_controller_id(BrokerId(state.node_id.0))
            .with_brokers(brokers),
    )
}
