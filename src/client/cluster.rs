//! The client's handle on a cluster: bootstrap, metadata refresh, and one connection
//! per broker.
//!
//! Owns: the bootstrap server list, the `ClusterMetadata` cache and when to refresh it,
//! and the connection pool (keyed by "host:port", one live connection each, replaced
//! when it breaks). Producer, consumer and admin all go through one shared `Cluster`.
//! Must never: hold a lock across an await except the per-address connect slot and the
//! refresh lock, iterate an unordered collection, or retry a non-retriable error.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::base::{LeaderEpoch, NodeId};
use crate::client::connection::{Connection, ConnectionConfig};
use crate::client::errors::{code, ClientError};
use crate::client::metadata::{ClusterMetadata, TopicPartition};

/// Settings shared by everything that talks to one cluster.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// "host:port" addresses tried, in order, when no broker is known yet.
    pub bootstrap_servers: Vec<String>,
    pub connection: ConnectionConfig,
    /// Pause between retries of a failed request (`retry.backoff.ms`).
    pub retry_backoff_ms: u64,
    /// How long a lookup (leader, partition count) keeps refreshing metadata before it
    /// gives up (the Java producer's `max.block.ms`).
    pub metadata_wait_ms: u64,
    /// Ask brokers to create unknown topics on Metadata requests.
    pub allow_auto_topic_creation: bool,
}

impl ClientConfig {
    pub fn new(bootstrap_servers: Vec<String>) -> ClientConfig {
        ClientConfig {
            bootstrap_servers,
            connection: ConnectionConfig::default(),
            retry_backoff_ms: 100,
            metadata_wait_ms: 10_000,
            allow_auto_topic_creation: false,
        }
    }
}

type ConnectionSlot = Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>;

/// A cluster: metadata cache plus connection pool. Share it as `Arc<Cluster>`.
pub struct Cluster {
    config: ClientConfig,
    metadata: Mutex<ClusterMetadata>,
    connections: Mutex<BTreeMap<String, ConnectionSlot>>,
    /// Serialises refreshes so a burst of errors causes one Metadata request, not many.
    refresh: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bootstrap_servers", &self.config.bootstrap_servers)
            .finish()
    }
}

impl Cluster {
    /// A cluster handle that has not talked to any broker yet.
    pub fn new(config: ClientConfig) -> Arc<Cluster> {
        Arc::new(Cluster {
            config,
            metadata: Mutex::new(ClusterMetadata::default()),
            connections: Mutex::new(BTreeMap::new()),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    /// A cluster handle that has fetched the broker list from a bootstrap server.
    pub async fn connect(config: ClientConfig) -> Result<Arc<Cluster>, ClientError> {
        if config.bootstrap_servers.is_empty() {
            return Err(ClientError::InvalidArgument(
                "no bootstrap servers".to_string(),
            ));
        }
        let cluster = Cluster::new(config);
        cluster.refresh_metadata(Some(&[])).await?;
        Ok(cluster)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn lock_metadata(&self) -> std::sync::MutexGuard<'_, ClusterMetadata> {
        self.metadata
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of the cached metadata.
    pub fn metadata(&self) -> ClusterMetadata {
        self.lock_metadata().clone()
    }

    /// The cached leader of `tp`, without any I/O.
    pub fn cached_leader(&self, tp: &TopicPartition) -> Option<(NodeId, LeaderEpoch)> {
        self.lock_metadata().leader(tp)
    }

    /// Forgets the cached leader of `tp`, so the next lookup asks the cluster.
    pub fn invalidate_leader(&self, tp: &TopicPartition) {
        self.lock_metadata().forget_leader(tp);
    }

    /// The live connection to `addr`, opening one if there is none or it broke.
    pub async fn connection_to(&self, addr: &str) -> Result<Arc<Connection>, ClientError> {
        let slot = {
            let mut connections = self
                .connections
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            connections.entry(addr.to_string()).or_default().clone()
        };
        let mut guard = slot.lock().await;
        if let Some(connection) = guard.as_ref() {
            if !connection.is_broken() {
                return Ok(connection.clone());
            }
        }
        *guard = None;
        let connection = Arc::new(Connection::connect(addr, self.config.connection.clone()).await?);
        *guard = Some(connection.clone());
        Ok(connection)
    }

    /// The live connection to broker `node`, whose address comes from metadata.
    pub async fn connection_to_node(&self, node: NodeId) -> Result<Arc<Connection>, ClientError> {
        let addr = self.lock_metadata().broker_addr(node);
        match addr {
            Some(addr) => self.connection_to(&addr).await,
            None => Err(ClientError::Connect {
                addr: format!("node {}", node.0),
                detail: "broker not in metadata".to_string(),
            }),
        }
    }

    /// Addresses to try for a request any broker can serve: brokers with a live
    /// connection first, then the other known brokers, then the bootstrap servers.
    fn candidate_addrs(&self) -> Vec<String> {
        let known: Vec<String> = self
            .lock_metadata()
            .brokers
            .values()
            .map(|broker| broker.addr())
            .collect();
        let live: Vec<String> = {
            let connections = self
                .connections
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            connections
                .iter()
                .filter(|(_, slot)| {
                    slot.try_lock()
                        .ok()
                        .and_then(|guard| guard.as_ref().map(|c| !c.is_broken()))
                        .unwrap_or(false)
                })
                .map(|(addr, _)| addr.clone())
                .collect()
        };
        let mut addrs: Vec<String> = Vec::new();
        let ordered = live
            .iter()
            .filter(|addr| known.contains(addr) || self.config.bootstrap_servers.contains(addr))
            .chain(known.iter())
            .chain(self.config.bootstrap_servers.iter());
        for addr in ordered {
            if !addrs.contains(addr) {
                addrs.push(addr.clone());
            }
        }
        addrs
    }

    /// A connection to any reachable broker.
    pub async fn any_connection(&self) -> Result<Arc<Connection>, ClientError> {
        let mut last_error = None;
        for addr in self.candidate_addrs() {
            match self.connection_to(&addr).await {
                Ok(connection) => return Ok(connection),
                Err(error) => last_error = Some(error),
            }
        }
        Err(no_broker(last_error))
    }

    /// A connection to the controller if metadata names one (KRaft brokers report a
    /// random broker, which forwards admin requests), else to any broker.
    pub async fn controller_connection(&self) -> Result<Arc<Connection>, ClientError> {
        let controller = self.lock_metadata().controller;
        if let Some(node) = controller {
            if let Ok(connection) = self.connection_to_node(node).await {
                return Ok(connection);
            }
        }
        self.any_connection().await
    }

    /// Sends a Metadata request for `topics` (`None`: all topics) to any reachable
    /// broker and returns the raw response, without touching the cache.
    pub async fn fetch_metadata(
        &self,
        topics: Option<&[String]>,
    ) -> Result<MetadataResponse, ClientError> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|topics| {
                topics
                    .iter()
                    .map(|topic| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(topic.clone()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(self.config.allow_auto_topic_creation);
        let mut last_error = None;
        for addr in self.candidate_addrs() {
            let connection = match self.connection_to(&addr).await {
                Ok(connection) => connection,
                Err(error) => {
                    last_error = Some(error);
                    continue;
                }
            };
            match connection.send(&request).await {
                Ok(response) => {
                    ClientError::check(response.error_code, None, || {
                        format!("metadata from {addr}")
                    })?;
                    return Ok(response);
                }
                Err(error) if error.is_retriable() => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(no_broker(last_error))
    }

    /// Refreshes the cache for `topics` (`None`: all topics; `Some(&[])`: brokers only).
    pub async fn refresh_metadata(&self, topics: Option<&[String]>) -> Result<(), ClientError> {
        let _refreshing = self.refresh.lock().await;
        let response = self.fetch_metadata(topics).await?;
        self.lock_metadata().apply(&response, topics.is_none());
        Ok(())
    }

    /// Why the cache has no leader for `tp`, as the Kafka error a broker would give.
    fn missing_leader_error(&self, tp: &TopicPartition) -> ClientError {
        let metadata = self.lock_metadata();
        let context = format!("metadata for {tp}");
        let Some(topic) = metadata.topics.get(&tp.topic) else {
            return ClientError::kafka(code::UNKNOWN_TOPIC_OR_PARTITION, None, context);
        };
        if topic.error_code != code::NONE {
            return ClientError::kafka(topic.error_code, None, context);
        }
        match topic.partitions.get(&tp.partition) {
            None => ClientError::kafka(code::UNKNOWN_TOPIC_OR_PARTITION, None, context),
            Some(partition) if partition.error_code != code::NONE => {
                ClientError::kafka(partition.error_code, None, context)
            }
            Some(_) => ClientError::kafka(code::LEADER_NOT_AVAILABLE, None, context),
        }
    }

    /// Runs `lookup` against the cache, refreshing `topic`'s metadata with backoff until
    /// it answers or `metadata_wait_ms` passes; `error` explains a final miss.
    async fn wait_for<T>(
        &self,
        topic: &str,
        lookup: impl Fn(&ClusterMetadata) -> Option<T>,
        error: impl Fn() -> ClientError,
    ) -> Result<T, ClientError> {
        if let Some(found) = lookup(&self.lock_metadata()) {
            return Ok(found);
        }
        let deadline = Instant::now() + Duration::from_millis(self.config.metadata_wait_ms);
        let topics = [topic.to_string()];
        loop {
            let refreshed = self.refresh_metadata(Some(&topics)).await;
            if let Some(found) = lookup(&self.lock_metadata()) {
                return Ok(found);
            }
            let failure = refreshed.err().unwrap_or_else(&error);
            let backoff = Duration::from_millis(self.config.retry_backoff_ms);
            if !failure.is_retriable() || Instant::now() + backoff >= deadline {
                return Err(failure);
            }
            tokio::time::sleep(backoff).await;
        }
    }

    /// The leader of `tp` and its epoch, refreshing metadata if the cache has none.
    pub async fn leader(&self, tp: &TopicPartition) -> Result<(NodeId, LeaderEpoch), ClientError> {
        self.wait_for(
            &tp.topic,
            |m| m.leader(tp),
            || self.missing_leader_error(tp),
        )
        .await
    }

    /// The partition count of `topic`, refreshing metadata if the cache has none.
    pub async fn partition_count(&self, topic: &str) -> Result<usize, ClientError> {
        self.wait_for(
            topic,
            |m| m.partition_count(topic),
            || self.missing_leader_error(&TopicPartition::new(topic, 0)),
        )
        .await
    }
}

fn no_broker(last_error: Option<ClientError>) -> ClientError {
    ClientError::NoBrokerAvailable {
        last_error: last_error.map_or_else(|| "no address to try".to_string(), |e| e.to_string()),
    }
}
