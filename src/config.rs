//! L5 — the `skald broker` configuration: a TOML file and command-line flags, both by
//! Kafka's key names, turned into a `NodeConfig`, a data directory and a log level.
//! Flags override the file. Unknown keys and bad values are errors naming the key.
//!
//! TOML keys may be quoted (`"log.retention.ms" = 1000`) or dotted
//! (`log.retention.ms = 1000`, which TOML nests; it is flattened back). Values may be
//! strings, integers or booleans.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::broker::NodeConfig;

/// Where the broker listens and keeps data when nothing says otherwise.
pub const DEFAULT_LISTENER: &str = "127.0.0.1:9092";
pub const DEFAULT_DATA_DIR: &str = crate::broker::config::DEFAULT_LOG_DIR;
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// The broker's inputs, before validation: file keys, then flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerInputs {
    /// Contents of the `--config` file, if any.
    pub file_text: Option<String>,
    pub listener: Option<String>,
    pub advertised_listener: Option<String>,
    pub data_dir: Option<String>,
    pub node_id: Option<i32>,
    pub log_level: Option<String>,
    /// `--set key=value`, in order.
    pub sets: Vec<String>,
}

/// Everything `main` needs to start a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerSetup {
    pub node: NodeConfig,
    pub data_dir: PathBuf,
    pub log_level: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigFileError {
    #[error("config file is not valid TOML: {0}")]
    Toml(String),
    #[error("config key `{key}`: {reason}")]
    Key { key: String, reason: String },
    #[error("--set `{0}` is not key=value")]
    BadSet(String),
}

fn flatten(
    prefix: &str,
    value: &toml::Value,
    out: &mut BTreeMap<String, String>,
) -> Result<(), ConfigFileError> {
    let key = prefix.to_string();
    match value {
        toml::Value::Table(table) => {
            for (k, v) in table {
                let nested = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&nested, v, out)?;
            }
        }
        toml::Value::String(s) => {
            out.insert(key, s.clone());
        }
        toml::Value::Integer(i) => {
            out.insert(key, i.to_string());
        }
        toml::Value::Boolean(b) => {
            out.insert(key, b.to_string());
        }
        _ => {
            return Err(ConfigFileError::Key {
                key,
                reason: "must be a string, an integer or a boolean".into(),
            })
        }
    }
    Ok(())
}

/// Parses `PLAINTEXT://host:port` or `host:port` into (host, port).
fn parse_endpoint(key: &str, text: &str) -> Result<(String, u16), ConfigFileError> {
    let bad = |reason: &str| ConfigFileError::Key {
        key: key.to_string(),
        reason: format!("`{text}`: {reason}"),
    };
    if text.contains(',') {
        return Err(bad("only one listener is supported"));
    }
    let rest = match text.split_once("://") {
        Some(("PLAINTEXT", rest)) => rest,
        Some((protocol, _)) => {
            return Err(bad(&format!(
                "security protocol {protocol} is not supported"
            )))
        }
        None => text,
    };
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    Ok((host.to_string(), port))
}

impl BrokerInputs {
    /// Validates and combines the inputs.
    pub fn resolve(&self) -> Result<BrokerSetup, ConfigFileError> {
        let mut keys = BTreeMap::new();
        if let Some(text) = &self.file_text {
            let value: toml::Table =
                toml::from_str(text).map_err(|e| ConfigFileError::Toml(e.to_string()))?;
            flatten("", &toml::Value::Table(value), &mut keys)?;
        }
        for set in &self.sets {
            let (k, v) = set
                .split_once('=')
                .ok_or_else(|| ConfigFileError::BadSet(set.clone()))?;
            keys.insert(k.trim().to_string(), v.trim().to_string());
        }
        let mut take = |names: &[&str]| {
            let mut found = None;
            for name in names {
                if let Some(v) = keys.remove(*name) {
                    found = Some(v);
                }
            }
            found
        };
        let file_node_id = take(&["node.id", "broker.id"]);
        let file_listener = take(&["listeners"]);
        let file_advertised = take(&["advertised.listeners"]);
        let file_data_dir = take(&["log.dirs", "log.dir"]);
        let file_log_level = take(&["log.level"]);
        // Kafka's process.roles for a single node; only the combined mode exists here.
        if let Some(roles) = take(&["process.roles"]) {
            let mut roles: Vec<&str> = roles.split(',').map(str::trim).collect();
            roles.sort();
            if roles != ["broker", "controller"] {
                return Err(ConfigFileError::Key {
                    key: "process.roles".into(),
                    reason: "only `broker,controller` (the combined single node) is supported"
                        .into(),
                });
            }
        }
        let node_id = match (self.node_id, file_node_id) {
            (Some(id), _) => id,
            (None, Some(text)) => text.trim().parse().map_err(|_| ConfigFileError::Key {
                key: "node.id".into(),
                reason: format!("`{text}` is not an integer"),
            })?,
            (None, None) => 1,
        };
        if node_id < 0 {
            return Err(ConfigFileError::Key {
                key: "node.id".into(),
                reason: "must be at least 0".into(),
            });
        }
        let listener_text = self
            .listener
            .clone()
            .or(file_listener)
            .unwrap_or_else(|| DEFAULT_LISTENER.to_string());
        let (host, port) = parse_endpoint("listeners", &listener_text)?;
        let ip: std::net::IpAddr = if host.is_empty() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else if host == "localhost" {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            host.parse().map_err(|_| ConfigFileError::Key {
                key: "listeners".into(),
                reason: format!(
                    "`{host}` is not an IP address (hostnames are for advertised.listeners)"
                ),
            })?
        };
        let mut node = NodeConfig::new(node_id, SocketAddr::new(ip, port));
        if let Some(text) = self.advertised_listener.clone().or(file_advertised) {
            let (host, port) = parse_endpoint("advertised.listeners", &text)?;
            node.advertised_host = Some(host);
            node.advertised_port = Some(port);
        }
        for (key, value) in keys {
            node.set(&key, &value).map_err(|e| ConfigFileError::Key {
                key: key.clone(),
                reason: e.to_string(),
            })?;
        }
        let log_level = self
            .log_level
            .clone()
            .or(file_log_level)
            .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_string());
        if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
            return Err(ConfigFileError::Key {
                key: "log.level".into(),
                reason: format!("`{log_level}` is not one of error, warn, info, debug, trace"),
            });
        }
        let data_dir = self
            .data_dir
            .clone()
            .or(file_data_dir)
            .unwrap_or_else(|| DEFAULT_DATA_DIR.to_string());
        node.log_dir = data_dir.clone();
        Ok(BrokerSetup {
            node,
            data_dir: PathBuf::from(data_dir),
            log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_inputs_give_the_documented_defaults() {
        let setup = BrokerInputs::default().resolve().unwrap();
        assert_eq!(setup.node.node_id.0, 1);
        assert_eq!(setup.node.listener, "127.0.0.1:9092".parse().unwrap());
        assert_eq!(setup.data_dir, PathBuf::from("./skald-data"));
        assert_eq!(setup.log_level, "info");
    }

    #[test]
    fn file_keys_by_kafka_names_and_flags_override_them() {
        let file = r#"
            "node.id" = 3
            listeners = "PLAINTEXT://127.0.0.1:9192"
            "advertised.listeners" = "PLAINTEXT://broker.example:9192"
            "log.dirs" = "/var/lib/skald"
            num.partitions = 6
            log.retention.ms = 1000
            "auto.create.topics.enable" = false
        "#;
        let inputs = BrokerInputs {
            file_text: Some(file.into()),
            node_id: Some(4),
            sets: vec!["log.retention.ms=2000".into()],
            ..BrokerInputs::default()
        };
        let setup = inputs.resolve().unwrap();
        assert_eq!(setup.node.node_id.0, 4);
        assert_eq!(setup.node.listener.port(), 9192);
        assert_eq!(
            setup.node.advertised_host.as_deref(),
            Some("broker.example")
        );
        assert_eq!(setup.data_dir, PathBuf::from("/var/lib/skald"));
        assert_eq!(setup.node.settings.num_partitions, 6);
        assert_eq!(setup.node.settings.log_defaults.retention_ms, 2000);
        assert!(!setup.node.settings.auto_create_topics_enable);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        for (file, sets) in [
            ("\"no.such.key\" = 1", vec![]),
            ("", vec!["num.partitions=zero".to_string()]),
            ("", vec!["nonsense".to_string()]),
            ("listeners = \"SSL://127.0.0.1:9093\"", vec![]),
            ("listeners = \"myhost:9093\"", vec![]),
            ("\"log.level\" = \"loud\"", vec![]),
            ("\"process.roles\" = \"broker\"", vec![]),
            ("x = [1]", vec![]),
            ("this is not toml", vec![]),
        ] {
            let inputs = BrokerInputs {
                file_text: Some(file.into()),
                sets,
                ..BrokerInputs::default()
            };
            assert!(inputs.resolve().is_err(), "{file}");
        }
    }
}
