//! `Node`: one broker+controller process, started on any `Disk` and `Clock` — the real
//! ones from `main`, a `SimDisk` and madsim's clock from the simulator.
//!
//! Start: open and replay the metadata log, remove logs of topics whose deletion
//! committed, open every local partition (recovering it), bind the listener, register
//! the broker (its advertised endpoint) in the metadata log, then serve.
//! Shutdown: stop accepting, let connections answer what they read, then flush,
//! checkpoint and close every partition log and the metadata log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::config::NodeConfig;
use super::handlers::Dispatcher;
use super::metadata_log::{MetadataLog, MetadataLogError};
use super::state::{BrokerState, MetadataState};
use crate::base::limits::BROKER_IN_FLIGHT_REQUESTS_MAX;
use crate::base::Rng;
use crate::controller::{Controller, ControllerSettings};
use crate::io::{Clock, Disk};
use crate::log::LogError;
use crate::net::server::{serve, ServerConfig, ServerHandle};

/// How long shutdown waits for connections to finish what they read.
const SHUTDOWN_DRAIN_MS: u64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Metadata(#[from] MetadataLogError),
    #[error("opening partition logs: {0}")]
    Log(#[from] LogError),
    #[error("listener {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("registering the broker: {0}")]
    Register(String),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A node; see `Node::start`.
#[derive(Debug)]
pub struct Node;

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    server: ServerHandle,
    state: Arc<BrokerState>,
}

impl Node {
    /// Starts a node on `disk` (its data directory's root). Returns once the node
    /// accepts connections; every partition's data is then served.
    pub async fn start(
        config: NodeConfig,
        disk: Arc<dyn Disk>,
        clock: Clock,
        mut rng: Rng,
    ) -> Result<NodeHandle, NodeError> {
        if config.listener.ip().is_unspecified() && config.advertised_host.is_none() {
            return Err(NodeError::Config(format!(
                "listener {} is a wildcard address: set an advertised listener clients can reach",
                config.listener
            )));
        }
        let (log, image) = MetadataLog::open(disk.clone(), clock.clone())?;
        let settings = ControllerSettings {
            num_partitions: config.settings.num_partitions,
            default_replication_factor: config.settings.default_replication_factor,
        };
        let controller = Controller::new(image.clone(), settings, rng.fork());
        let listener_addr = config.listener;
        let state = Arc::new(BrokerState::new(
            config,
            disk,
            clock,
            MetadataState { controller, log },
        ));
        state.remove_stray_logs(&image)?;
        state.open_all(&image)?;
        let listener = TcpListener::bind(listener_addr)
            .await
            .map_err(|error| NodeError::Bind {
                addr: listener_addr,
                error,
            })?;
        let local_addr = listener.local_addr().map_err(|error| NodeError::Bind {
            addr: listener_addr,
            error,
        })?;
        {
            let host = state
                .config
                .advertised_host
                .clone()
                .unwrap_or_else(|| local_addr.ip().to_string());
            let port = state.config.advertised_port.unwrap_or(local_addr.port());
            let mut meta = state.metadata.lock().await;
            let records = meta.controller.register_broker(
                state.node_id,
                &host,
                i32::from(port),
                state.config.rack.clone(),
            );
            state
                .commit(&mut meta, records)
                .await
                .map_err(|e| NodeError::Register(e.message))?;
        }
        let settings = &state.config.settings;
        let server_config = ServerConfig {
            max_connections: settings.max_connections,
            in_flight_requests_max: BROKER_IN_FLIGHT_REQUESTS_MAX,
            idle_timeout: Duration::from_millis(settings.connections_max_idle_ms),
            frame_bytes_max: settings.socket_request_max_bytes,
            drain_timeout: Duration::from_millis(SHUTDOWN_DRAIN_MS),
        };
        let dispatcher = Arc::new(Dispatcher {
            state: state.clone(),
        });
        let server =
            serve(listener, dispatcher, server_config).map_err(|error| NodeError::Bind {
                addr: listener_addr,
                error,
            })?;
        tracing::info!(node_id = state.node_id.0, %local_addr, "broker started");
        Ok(NodeHandle { server, state })
    }
}

impl NodeHandle {
    /// The bound listener address (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The shared broker state (for tests and the simulator's inspections).
    pub fn state(&self) -> &Arc<BrokerState> {
        &self.state
    }

    /// Stops accepting, finishes in-flight requests, then flushes, checkpoints and
    /// closes every log. Errors are logged; the first is returned.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        self.server.shutdown().await;
        let mut errors = self.state.close_all().await;
        let mut meta = self.state.metadata.lock().await;
        if let Err(e) = meta.log.checkpoint() {
            errors.push(e);
        }
        drop(meta);
        for e in &errors {
            tracing::error!(error = %e, "closing a log failed");
        }
        tracing::info!(node_id = self.state.node_id.0, "broker stopped");
        match errors.into_iter().next() {
            Some(e) => Err(NodeError::Log(e)),
            None => Ok(()),
        }
    }
}
