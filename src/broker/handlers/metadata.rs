//! Metadata: brokers, cluster id, controller, and topics with their partitions, from the
//! committed image. Unknown topics are created when `auto.create.topics.enable` is on and
//! the client allows it (v4+), as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, MetadataRequest, MetadataResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::create_topics::auto_create;
use crate::broker::state::BrokerState;
use crate::controller::{validate_topic_name, MetadataImage, TopicId, TopicImage};
use crate::protocol::error_codes as ec;

pub fn uuid_of(id: TopicId) -> uuid::Uuid {
    uuid::Uuid::from_bytes(id.0)
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub async fn handle(
    state: &Arc<BrokerState>,
    request: MetadataRequest,
    version: i16,
) -> ResponseKind {
    let auto_create_allowed = state.config.settings.auto_create_topics_enable
        && (version < 4 || request.allow_auto_topic_creation);
    let mut topics = Vec::new();
    match &request.topics {
        None => {
            let image = state.image();
            for topic in image.topics.values() {
                topics.push(topic_response(&image, topic, version));
            }
        }
        Some(requested) => {
            for wanted in requested {
                let by_name = wanted.name.as_ref().map(|n| n.0.as_str().to_string());
                let image = state.image();
                let response = match by_name {
                    Some(name) => match image.topic(&name) {
                        Some(topic) => topic_response(&image, topic, version),
                        None => {
                            if let Err(e) = validate_topic_name(&name) {
                                error_topic(Some(&name), e.code)
                            } else if auto_create_allowed {
                                match auto_create(state, &name).await {
                                    Ok(()) => {
                                        let image = state.image();
                                        match image.topic(&name) {
                                            Some(topic) => topic_response(&image, topic, version),
                                            None => {
                                                error_topic(Some(&name), ec::LEADER_NOT_AVAILABLE)
                                            }
                                        }
                                    }
                                    Err(e) if e.code == ec::TOPIC_ALREADY_EXISTS => {
                                        let image = state.image();
                                        match image.topic(&name) {
                                            Some(topic) => topic_response(&image, topic, version),
                                            None => {
                                                error_topic(Some(&name), ec::LEADER_NOT_AVAILABLE)
                                            }
                                        }
                                    }
                                    Err(e) => error_topic(Some(&name), e.code),
                                }
                            } else {
                                error_topic(Some(&name), ec::UNKNOWN_TOPIC_OR_PARTITION)
                            }
                        }
                    },
                    None => {
                        let id = TopicId(*wanted.topic_id.as_bytes());
                        match image.topic_by_id(&id) {
                            Some(topic) => topic_response(&image, topic, version),
                            None => {
                                let mut t = error_topic(None, ec::UNKNOWN_TOPIC_ID);
                                t.topic_id = wanted.topic_id;
                                t
                            }
                        }
                    }
                };
                topics.push(response);
            }
        }
    }
    let image = state.image();
    let brokers = image
        .brokers
        .values()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.node_id.0))
                .with_host(StrBytes::from_string(b.host.clone()))
                .with_port(b.port)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    ResponseKind::Metadata(
        MetadataResponse::default()
            .with_throttle_time_ms(0)
            .with_brokers(brokers)
            .with_cluster_id(image.cluster_id.clone().map(StrBytes::from_string))
            .with_controller_id(BrokerId(state.node_id.0))
            .with_topics(topics),
    )
}

fn error_topic(name: Option<&str>, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name.map(topic_name))
}

fn topic_response(
    _image: &MetadataImage,
    topic: &TopicImage,
    version: i16,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .values()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_error_code(ec::NONE)
                .with_partition_index(p.index.0)
                .with_leader_id(BrokerId(p.leader.0))
                .with_leader_epoch(p.leader_epoch.0)
                .with_replica_nodes(p.replicas.iter().map(|n| BrokerId(n.0)).collect())
                .with_isr_nodes(p.isr.iter().map(|n| BrokerId(n.0)).collect())
                .with_offline_replicas(Vec::new())
        })
        .collect();
    let mut response = MetadataResponseTopic::default()
        .with_error_code(ec::NONE)
        .with_name(Some(topic_name(&topic.name)))
        .with_is_internal(false)
        .with_partitions(partitions);
    if version >= 10 {
        response.topic_id = uuid_of(topic.id);
    }
    response
}
