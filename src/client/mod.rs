//! L4 — the project's own async Kafka client, used by followers, the CLI, the
//! deterministic simulator and the Jepsen harness. It speaks the Kafka protocol (through
//! kafka-protocol's message codecs, and `protocol` for record batches), so it works
//! against any Kafka-compatible broker.
//!
//! Owns: connections and version negotiation (`connection`), the metadata cache and
//! connection pool (`metadata`, `cluster`), the producer, the assignment-based consumer,
//! admin operations, the key partitioner, and the typed errors (`errors`). Must never:
//! use `HashMap` iteration or OS randomness to decide anything (it runs under madsim),
//! block a thread, read `std::time::Instant`, or compress with kafka-protocol's record
//! codecs (batches are built by `protocol::RecordBatchBuilder`).
//!
//! - `errors`: `ClientError`, and the Kafka error-code table (name, retriable).
//! - `connection`: one TCP connection: pipelining, timeouts, ApiVersions.
//! - `metadata`: the cached cluster view (pure data).
//! - `cluster`: bootstrap, metadata refresh, one connection per broker.
//! - `partitioner`: murmur2 key hashing, as the Java client does it.
//! - `producer`: batching, compression, acks, retries, delivery timeout.
//! - `consumer`: assignment-based fetching, offset reset, batch decoding.
//! - `admin`: topics, configs, offsets, record deletion.

pub mod admin;
pub mod cluster;
pub mod connection;
pub mod consumer;
pub mod errors;
pub mod metadata;
pub mod partitioner;
pub mod producer;

pub use admin::{
    Admin, AlterConfigOp, ConfigEntry, ConfigResource, NewTopic, PartitionDescription,
    TopicDescription,
};
pub use cluster::{ClientConfig, Cluster};
pub use connection::{Connection, ConnectionConfig};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetResetPolicy, StartOffset};
pub use errors::{ClientError, KafkaErrorInfo, KAFKA_ERRORS};
pub use metadata::{
    BrokerMetadata, ClusterMetadata, PartitionMetadata, TopicMetadata, TopicPartition,
};
pub use producer::{
    Acks, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
