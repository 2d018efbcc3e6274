//! `NodeConfig`: one node's settings, with broker settings by Kafka's names. Broker-level
//! `log.*` keys are the defaults of the topic configs (`log.retention.ms` is the default
//! of `retention.ms`, `message.max.bytes` of `max.message.bytes`, ...). Parsing is
//! strict: an unknown key or a bad value is an error naming it, never ignored.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::base::NodeId;
use crate::broker::log_driver::DriverSettings;
use crate::log::config::{parse_bool, parse_int, parse_long};
use crate::log::{ConfigError, LogConfig};

/// Kafka broker keys that set a topic config's default, and the topic key they set.
/// `log.retention.minutes`/`hours`, `log.roll.hours` and `log.roll.jitter.hours` are
/// converted to ms.
const LOG_DEFAULT_KEYS: &[(&str, &str)] = &[
    ("compression.gzip.level", "compression.gzip.level"),
    ("compression.lz4.level", "compression.lz4.level"),
    ("compression.type", "compression.type"),
    ("compression.zstd.level", "compression.zstd.level"),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    ("log.cleaner.max.compaction.lag.ms", "max.compaction.lag.ms"),
    (
        "log.cleaner.min.cleanable.ratio",
        "min.cleanable.dirty.ratio",
    ),
    ("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
    ("log.cleanup.policy", "cleanup.policy"),
    ("log.local.retention.bytes", "local.retention.bytes"),
    ("log.local.retention.ms", "local.retention.ms"),
    (
        "log.message.downconversion.enable",
        "message.downconversion.enable",
    ),
    (
        "log.message.timestamp.difference.max.ms",
        "message.timestamp.difference.max.ms",
    ),
    ("log.preallocate", "preallocate"),
    ("log.roll.jitter.ms", "segment.jitter.ms"),
    ("log.segment.delete.delay.ms", "file.delete.delay.ms"),
    ("min.insync.replicas", "min.insync.replicas"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
    ("log.flush.interval.messages", "flush.messages"),
    ("log.flush.interval.ms", "flush.ms"),
    ("log.index.interval.bytes", "index.interval.bytes"),
    ("log.index.size.max.bytes", "segment.index.bytes"),
    (
        "log.message.timestamp.after.max.ms",
        "message.timestamp.after.max.ms",
    ),
    (
        "log.message.timestamp.before.max.ms",
        "message.timestamp.before.max.ms",
    ),
    ("log.message.timestamp.type", "message.timestamp.type"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.retention.ms", "retention.ms"),
    ("log.roll.ms", "segment.ms"),
    ("log.segment.bytes", "segment.bytes"),
    ("message.max.bytes", "max.message.bytes"),
];

/// Broker keys that are converted to a topic key in milliseconds: (key, topic key, ms per unit).
const LOG_DEFAULT_UNIT_KEYS: &[(&str, &str, i64)] = &[
    ("log.retention.hours", "retention.ms", 3_600_000),
    ("log.retention.minutes", "retention.ms", 60_000),
    ("log.roll.hours", "segment.ms", 3_600_000),
    ("log.roll.jitter.hours", "segment.jitter.ms", 3_600_000),
];

/// Broker settings, by Kafka's names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerSettings {
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics with -1.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`: Metadata and Produce create unknown topics.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`: DeleteTopics is refused (TOPIC_DELETION_DISABLED) when false.
    pub delete_topic_enable: bool,
    /// `connections.max.idle.ms`: idle connections are closed after this.
    pub connections_max_idle_ms: u64,
    /// `socket.request.max.bytes`: largest request frame.
    pub socket_request_max_bytes: u32,
    /// `max.connections`: connections served at once.
    pub max_connections: usize,
    /// The partition drivers' periodic work: `log.retention.check.interval.ms`,
    /// `log.flush.offset.checkpoint.interval.ms`, `producer.id.expiration.ms` and
    /// `producer.id.expiration.check.interval.ms`.
    pub log_driver: DriverSettings,
    /// Topic-config defaults (the `log.*` keys and `message.max.bytes`).
    pub log_defaults: LogConfig,
    /// Every key set explicitly, with its value, for DescribeConfigs.
    pub overrides: BTreeMap<String, String>,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        let log_defaults = LogConfig {
            // Kafka's message.max.bytes default.
            max_message_bytes: 1_048_588,
            ..LogConfig::default()
        };
        BrokerSettings {
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            connections_max_idle_ms: 600_000,
            socket_request_max_bytes: 104_857_600,
            max_connections: crate::base::limits::BROKER_CONNECTIONS_MAX,
            log_driver: DriverSettings::default(),
            log_defaults,
            overrides: BTreeMap::new(),
        }
    }
}

impl BrokerSettings {
    /// Applies one broker setting by its Kafka name.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "num.partitions" => self.num_partitions = parse_int(key, value, 1, i32::MAX)?,
            "default.replication.factor" => {
                self.default_replication_factor =
                    parse_int(key, value, 1, i32::from(i16::MAX))? as i16;
            }
            "auto.create.topics.enable" => self.auto_create_topics_enable = parse_bool(key, value)?,
            "delete.topic.enable" => self.delete_topic_enable = parse_bool(key, value)?,
            "connections.max.idle.ms" => {
                self.connections_max_idle_ms = parse_long(key, value, 1)? as u64;
            }
            "socket.request.max.bytes" => {
                let max = crate::base::limits::FRAME_BYTES_MAX as i32;
                self.socket_request_max_bytes = parse_int(key, value, 1, max)? as u32;
            }
            "log.flush.offset.checkpoint.interval.ms" => {
                self.log_driver.checkpoint_interval_ms = parse_int(key, value, 0, i32::MAX)? as u64;
            }
            "log.retention.check.interval.ms" => {
                self.log_driver.retention_check_interval_ms = parse_long(key, value, 1)? as u64;
            }
            "producer.id.expiration.ms" => {
                self.log_driver.producer_id_expiration_ms =
                    i64::from(parse_int(key, value, 1, i32::MAX)?);
            }
            "producer.id.expiration.check.interval.ms" => {
                self.log_driver.producer_id_expiration_check_interval_ms =
                    parse_int(key, value, 1, i32::MAX)? as u64;
            }
            "max.connections" => {
                let max = crate::base::limits::BROKER_CONNECTIONS_MAX;
                self.max_connections = (parse_int(key, value, 0, i32::MAX)? as usize).min(max);
            }
            _ => {
                if let Some((_, topic_key)) = LOG_DEFAULT_KEYS.iter().find(|(k, _)| *k == key) {
                    self.log_defaults.set(topic_key, value)?;
                } else if let Some((_, topic_key, unit_ms)) =
                    LOG_DEFAULT_UNIT_KEYS.iter().find(|(k, _, _)| *k == key)
                {
                    let n = parse_long(key, value, i64::MIN)?;
                    let ms = if n < 0 {
                        -1
                    } else {
                        n.saturating_mul(*unit_ms)
                    };
                    self.log_defaults.set(topic_key, &ms.to_string())?;
                } else {
                    return Err(ConfigError::UnknownKey(key.to_string()));
                }
            }
        }
        self.overrides.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// Every broker key this node understands, sorted.
    pub fn keys() -> Vec<&'static str> {
        let mut keys: Vec<&str> = vec![
            "auto.create.topics.enable",
            "connections.max.idle.ms",
            "default.replication.factor",
            "delete.topic.enable",
            "log.flush.offset.checkpoint.interval.ms",
            "log.retention.check.interval.ms",
            "max.connections",
            "num.partitions",
            "producer.id.expiration.check.interval.ms",
            "producer.id.expiration.ms",
            "socket.request.max.bytes",
        ];
        keys.extend(LOG_DEFAULT_KEYS.iter().map(|(k, _)| *k));
        keys.extend(LOG_DEFAULT_UNIT_KEYS.iter().map(|(k, _, _)| *k));
        keys.sort();
        keys
    }

    /// The current value of a broker key, as DescribeConfigs shows it.
    pub fn value_of(&self, key: &str) -> Option<String> {
        if let Some(v) = self.overrides.get(key) {
            return Some(v.clone());
        }
        let log = &self.log_defaults;
        Some(match key {
            "num.partitions" => self.num_partitions.to_string(),
            "default.replication.factor" => self.default_replication_factor.to_string(),
            "auto.create.topics.enable" => self.auto_create_topics_enable.to_string(),
            "delete.topic.enable" => self.delete_topic_enable.to_string(),
            "connections.max.idle.ms" => self.connections_max_idle_ms.to_string(),
            "socket.request.max.bytes" => self.socket_request_max_bytes.to_string(),
            "max.connections" => self.max_connections.to_string(),
            "log.flush.offset.checkpoint.interval.ms" => {
                self.log_driver.checkpoint_interval_ms.to_string()
            }
            "log.retention.check.interval.ms" => {
                self.log_driver.retention_check_interval_ms.to_string()
            }
            "producer.id.expiration.ms" => self.log_driver.producer_id_expiration_ms.to_string(),
            "producer.id.expiration.check.interval.ms" => self
                .log_driver
                .producer_id_expiration_check_interval_ms
                .to_string(),
            _ => {
                if let Some((_, topic_key)) = LOG_DEFAULT_KEYS.iter().find(|(k, _)| *k == key) {
                    return topic_config_value(log, topic_key);
                }
                // The unit keys are shown as unset when the ms key decides (as Kafka).
                return None;
            }
        })
    }
}

/// A topic config's value in `config`, as Kafka prints it.
pub fn topic_config_value(config: &LogConfig, key: &str) -> Option<String> {
    config.value_of(key)
}

/// The topic config whose default a broker key sets (directly, not by unit conversion).
pub fn broker_topic_key(broker_key: &str) -> Option<&'static str> {
    LOG_DEFAULT_KEYS
        .iter()
        .find(|(k, _)| *k == broker_key)
        .map(|(_, t)| *t)
}

/// The broker key whose value is the default of a topic config, for DescribeConfigs'
/// DEFAULT vs STATIC_BROKER_CONFIG source.
pub fn broker_key_for_topic_key(topic_key: &str) -> Option<&'static str> {
    LOG_DEFAULT_KEYS
        .iter()
        .find(|(_, t)| *t == topic_key)
        .map(|(k, _)| *k)
}

/// The data directory when nothing says otherwise.
pub const DEFAULT_LOG_DIR: &str = "./skald-data";

/// One node's configuration. `Node::start` takes it as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    pub node_id: NodeId,
    /// Where the node listens (port 0: any free port; see `NodeHandle::local_addr`).
    pub listener: SocketAddr,
    /// The host clients are told to connect to (default: the listener's IP).
    pub advertised_host: Option<String>,
    /// The port clients are told to connect to (default: the bound port).
    pub advertised_port: Option<u16>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// The data directory as DescribeLogDirs names it (Kafka's `log.dirs`); the node
    /// reaches its files only through its `Disk`, so this is a label.
    pub log_dir: String,
    pub settings: BrokerSettings,
}

impl NodeConfig {
    /// Defaults for every setting.
    pub fn new(node_id: i32, listener: SocketAddr) -> NodeConfig {
        NodeConfig {
            node_id: NodeId(node_id),
            listener,
            advertised_host: None,
            advertised_port: None,
            rack: None,
            log_dir: DEFAULT_LOG_DIR.to_string(),
            settings: BrokerSettings::default(),
        }
    }

    /// Applies a broker setting by its Kafka name (see `BrokerSettings::set`), plus
    /// `broker.rack`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        if key == "broker.rack" {
            self.rack = Some(value.to_string());
            return Ok(());
        }
        self.settings.set(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_drivers_intervals_are_broker_settings() {
        let mut c = NodeConfig::new(1, "127.0.0.1:0".parse().unwrap());
        for (key, default, bad) in [
            ("log.flush.offset.checkpoint.interval.ms", "60000", "-1"),
            ("log.retention.check.interval.ms", "300000", "0"),
            ("producer.id.expiration.ms", "86400000", "0"),
            ("producer.id.expiration.check.interval.ms", "600000", "0"),
        ] {
            assert_eq!(c.settings.value_of(key).as_deref(), Some(default), "{key}");
            assert!(c.set(key, bad).is_err(), "{key}={bad}");
            assert!(c.set(key, "soon").is_err(), "{key}");
            assert!(BrokerSettings::keys().contains(&key), "{key}");
            c.set(key, "1500").unwrap();
        }
        let driver = c.settings.log_driver;
        assert_eq!(
            (
                driver.checkpoint_interval_ms,
                driver.retention_check_interval_ms,
                driver.producer_id_expiration_ms,
                driver.producer_id_expiration_check_interval_ms
            ),
            (1500, 1500, 1500, 1500)
        );
    }

    #[test]
    fn broker_keys_map_onto_topic_defaults_and_unknown_keys_fail() {
        let mut c = NodeConfig::new(1, "127.0.0.1:0".parse().unwrap());
        c.set("log.retention.hours", "2").unwrap();
        assert_eq!(c.settings.log_defaults.retention_ms, 7_200_000);
        c.set("log.retention.ms", "5").unwrap();
        assert_eq!(c.settings.log_defaults.retention_ms, 5);
        c.set("message.max.bytes", "100").unwrap();
        assert_eq!(c.settings.log_defaults.max_message_bytes, 100);
        c.set("log.flush.interval.messages", "1").unwrap();
        assert!(c.settings.log_defaults.fsync_before_ack());
        c.set("num.partitions", "4").unwrap();
        assert_eq!(c.settings.num_partitions, 4);
        c.set("auto.create.topics.enable", "false").unwrap();
        assert!(!c.settings.auto_create_topics_enable);
        assert!(matches!(
            c.set("no.such.key", "1"),
            Err(ConfigError::UnknownKey(_))
        ));
        assert!(matches!(
            c.set("num.partitions", "0"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            c.set("auto.create.topics.enable", "yes"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            c.set("log.segment.bytes", "1"),
            Err(ConfigError::InvalidValue { .. })
        ));
        for key in BrokerSettings::keys() {
            let mut probe = BrokerSettings::default();
            assert!(
                !matches!(probe.set(key, "x"), Err(ConfigError::UnknownKey(_))),
                "{key}"
            );
        }
        assert_eq!(
            c.settings.value_of("log.retention.ms").as_deref(),
            Some("5")
        );
        assert_eq!(
            c.settings.value_of("log.segment.bytes").as_deref(),
            Some("1073741824")
        );
    }
}
