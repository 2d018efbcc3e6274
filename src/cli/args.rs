//! Options every command shares, and the value parsers clap calls for them.
//!
//! Owns: `--bootstrap-server` and connecting to it, and parsing `key=value`, acks and
//! codec names. Must never: accept a value it cannot represent (an unknown codec or acks
//! setting is an argument error, not a silent default).

use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::client::{
    Acks, Admin, ClientConfig, ClientError, Cluster, ProducerConfig, TopicPartition,
};
use crate::protocol::Compression;

/// How to reach the cluster.
#[derive(Args, Clone, Debug)]
pub struct ConnectArgs {
    /// Broker(s) to bootstrap from, `host:port[,host:port...]`.
    #[arg(
        long,
        short = 'b',
        global = true,
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT"
    )]
    pub bootstrap_server: String,
    /// How long one request may wait for its response.
    #[arg(long, global = true, default_value_t = 30_000, value_name = "MS")]
    pub request_timeout_ms: u64,
}

impl ConnectArgs {
    /// The bootstrap list, split on commas, blanks dropped.
    pub fn servers(&self) -> Vec<String> {
        self.bootstrap_server
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// A cluster handle that has fetched the broker list.
    pub async fn connect(&self) -> anyhow::Result<Arc<Cluster>> {
        let mut config = ClientConfig::new(self.servers());
        config.connection.request_timeout_ms = self.request_timeout_ms;
        Cluster::connect(config)
            .await
            .with_context(|| format!("connecting to {}", self.bootstrap_server))
    }
}

/// The partitions of `topic` to work on: `only`, or all of them. One Metadata request:
/// an unknown topic fails at once with Kafka's error name, rather than after the
/// client's metadata wait.
pub async fn topic_partitions(
    cluster: &Arc<Cluster>,
    topic: &str,
    only: Option<i32>,
) -> anyhow::Result<Vec<TopicPartition>> {
    let described = Admin::new(cluster.clone())
        .describe_topics(Some(&[topic.to_string()]))
        .await?;
    let Some(description) = described.into_iter().find(|d| d.name == topic) else {
        anyhow::bail!("the broker did not describe topic {topic}");
    };
    if description.error_code != 0 {
        return Err(ClientError::kafka(
            description.error_code,
            None,
            format!("looking up topic {topic}"),
        )
        .into());
    }
    let count = description.partitions.len();
    match only {
        Some(partition) if partition < 0 || partition as usize >= count => {
            anyhow::bail!("topic {topic} has partitions 0..{count}, not {partition}")
        }
        Some(partition) => Ok(vec![TopicPartition::new(topic, partition)]),
        None => Ok(description
            .partitions
            .iter()
            .map(|p| TopicPartition::new(topic, p.partition))
            .collect()),
    }
}

/// Producer settings shared by `produce` and `perf produce`.
#[derive(Args, Clone, Debug)]
pub struct ProducerArgs {
    /// Replicas that must have a record before it is acknowledged: 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = parse_acks, allow_negative_numbers = true)]
    pub acks: Acks,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,
    /// How long a batch waits for more records (`linger.ms`).
    #[arg(long, default_value_t = 5, value_name = "MS")]
    pub linger_ms: u64,
    /// Batch size in bytes (`batch.size`).
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    pub batch_size: usize,
    /// Give up on a record this long after it was sent (`delivery.timeout.ms`).
    #[arg(long, default_value_t = 120_000, value_name = "MS")]
    pub delivery_timeout_ms: u64,
    /// Idempotent producer (`enable.idempotence`): producer id and sequence numbers, so
    /// retries never write a record twice. Needs `--acks all`.
    #[arg(long)]
    pub idempotence: bool,
}

impl ProducerArgs {
    /// The producer configuration; `--idempotence` without `--acks all` is refused, as
    /// Kafka's producer refuses it.
    pub fn config(&self) -> anyhow::Result<ProducerConfig> {
        if self.idempotence && self.acks != Acks::All {
            anyhow::bail!("--idempotence needs --acks all");
        }
        Ok(ProducerConfig {
            acks: self.acks,
            compression: self.compression,
            linger_ms: self.linger_ms,
            batch_bytes: self.batch_size,
            delivery_timeout_ms: self.delivery_timeout_ms,
            idempotence: self.idempotence,
            ..ProducerConfig::default()
        })
    }
}

/// `key=value`; the value may itself hold `=`, the key may not be empty.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// `0`, `1`, `-1` or `all`.
pub fn parse_acks(text: &str) -> Result<Acks, String> {
    Acks::parse(text).ok_or_else(|| format!("acks must be 0, 1, -1 or all, got {text:?}"))
}

/// `none`, `gzip`, `snappy`, `lz4` or `zstd` (Kafka's `compression.type` names).
pub fn parse_compression(text: &str) -> Result<Compression, String> {
    match text {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        _ => Err(format!(
            "compression must be none, gzip, snappy, lz4 or zstd, got {text:?}"
        )),
    }
}

/// The name `parse_compression` takes for `compression`.
pub fn compression_name(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

/// `0`, `1` or `all`, as Kafka's tools print acks.
pub fn acks_name(acks: Acks) -> &'static str {
    match acks {
        Acks::None => "0",
        Acks::Leader => "1",
        Acks::All => "all",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value() {
        assert_eq!(
            parse_key_value("retention.ms=1000"),
            Ok(("retention.ms".to_string(), "1000".to_string()))
        );
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_string(), "b=c".to_string()))
        );
        assert_eq!(parse_key_value("k="), Ok(("k".to_string(), String::new())));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=v").is_err());
    }

    #[test]
    fn acks_and_codecs_round_trip() {
        for text in ["0", "1", "all"] {
            assert_eq!(acks_name(parse_acks(text).unwrap()), text);
        }
        assert_eq!(parse_acks("-1"), Ok(Acks::All));
        assert!(parse_acks("2").is_err());
        for codec in Compression::ALL {
            assert_eq!(parse_compression(compression_name(codec)), Ok(codec));
        }
        assert!(parse_compression("brotli").is_err());
    }

    #[test]
    fn servers_split_on_commas() {
        let args = ConnectArgs {
            bootstrap_server: "a:1, b:2,,".to_string(),
            request_timeout_ms: 1,
        };
        assert_eq!(args.servers(), vec!["a:1".to_string(), "b:2".to_string()]);
    }
}
