//! Per-partition log settings, by Kafka's topic-config names. Parsing is strict: an
//! unknown key or an invalid value is an error naming it (the broker turns it into
//! INVALID_CONFIG), never silently ignored.
//!
//! Every standard Kafka topic config is known (`TOPIC_CONFIGS`), with Kafka's type and
//! range. A setting is either honoured or refused, never accepted and ignored:
//! - the log implements segment, retention, flush, index, size and timestamp settings;
//! - `min.insync.replicas` is enforced by Produce (acks=all needs that many in-sync
//!   replicas; one node is one replica, so a value above 1 refuses acks=all writes with
//!   NOT_ENOUGH_REPLICAS, as Kafka does when the ISR is too small);
//! - settings whose Kafka meaning is void here are accepted and stored and described:
//!   the compaction ones (`delete.retention.ms`, `min.compaction.lag.ms`,
//!   `max.compaction.lag.ms`, `min.cleanable.dirty.ratio`) only act on compacted
//!   topics, and `cleanup.policy` can only be `delete`; `unclean.leader.election.enable`
//!   and the replication throttles only act when there are other replicas (replication
//!   factor 1: there are none); `message.downconversion.enable` only acts on Fetch
//!   below v4, which this broker does not serve; the `compression.*.level` settings only
//!   act when the broker recompresses, which it does not (`compression.type` can only be
//!   `producer`); `file.delete.delay.ms` is the wait before a removed segment's files
//!   go, which exists so readers of the file finish — here a removed file stays
//!   readable through open handles, so it is removed at once;
//! - values that need what the log does not have are refused with a reason:
//!   `cleanup.policy` with `compact`, `compression.type` other than `producer`,
//!   `preallocate=true`, a non-zero `segment.jitter.ms`, `remote.storage.enable=true`
//!   and local retention settings other than -2.

use std::collections::BTreeMap;

/// How record timestamps are set (`message.timestamp.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// Kafka's config value types, with their DescribeConfigs (v3+) `config_type` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// One Kafka topic config: its name, type, default and a line of documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    pub doc: &'static str,
}

const fn def(name: &'static str, kind: ConfigType, doc: &'static str) -> TopicConfigDef {
    TopicConfigDef { name, kind, doc }
}

/// Every topic config this broker knows, sorted by name.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def("cleanup.policy", ConfigType::List, "How old segments are cleaned up: `delete` removes them by retention time and size. `compact` is not supported yet."),
    def("compression.gzip.level", ConfigType::Int, "gzip level for broker recompression; no effect, as the broker keeps the producer's codec."),
    def("compression.lz4.level", ConfigType::Int, "lz4 level for broker recompression; no effect, as the broker keeps the producer's codec."),
    def("compression.type", ConfigType::String, "The codec batches are stored with: `producer` keeps the producer's codec (the only value supported; the broker does not recompress)."),
    def("compression.zstd.level", ConfigType::Int, "zstd level for broker recompression; no effect, as the broker keeps the producer's codec."),
    def("delete.retention.ms", ConfigType::Long, "How long delete tombstones are kept on compacted topics; no effect, as topics are not compacted."),
    def("file.delete.delay.ms", ConfigType::Long, "Wait before a removed segment's files are deleted; files are deleted at once, as open readers keep them readable."),
    def("flush.messages", ConfigType::Long, "fsync after this many messages; 1 fsyncs every write before it is acknowledged."),
    def("flush.ms", ConfigType::Long, "fsync when the oldest unflushed write is this old."),
    def("follower.replication.throttled.replicas", ConfigType::List, "Replicas whose follower replication is throttled; no effect with one replica."),
    def("index.interval.bytes", ConfigType::Int, "Bytes of log between offset-index entries."),
    def("leader.replication.throttled.replicas", ConfigType::List, "Replicas whose leader-side replication is throttled; no effect with one replica."),
    def("local.retention.bytes", ConfigType::Long, "Local retention in bytes for tiered storage; only -2 (use retention.bytes) is supported."),
    def("local.retention.ms", ConfigType::Long, "Local retention in ms for tiered storage; only -2 (use retention.ms) is supported."),
    def("max.compaction.lag.ms", ConfigType::Long, "Longest a record stays uncompacted; no effect, as topics are not compacted."),
    def("max.message.bytes", ConfigType::Int, "Largest record batch accepted."),
    def("message.downconversion.enable", ConfigType::Boolean, "Whether Fetch may down-convert to old formats; no effect, as Fetch below v4 is not served."),
    def("message.timestamp.after.max.ms", ConfigType::Long, "How far in the future a CreateTime timestamp may be."),
    def("message.timestamp.before.max.ms", ConfigType::Long, "How far in the past a CreateTime timestamp may be."),
    def("message.timestamp.difference.max.ms", ConfigType::Long, "Deprecated: the before/after bound used where message.timestamp.before.max.ms or after.max.ms is not set."),
    def("message.timestamp.type", ConfigType::String, "CreateTime keeps the producer's timestamps; LogAppendTime sets the broker's."),
    def("min.cleanable.dirty.ratio", ConfigType::Double, "Dirty ratio that triggers compaction; no effect, as topics are not compacted."),
    def("min.compaction.lag.ms", ConfigType::Long, "Shortest a record stays uncompacted; no effect, as topics are not compacted."),
    def("min.insync.replicas", ConfigType::Int, "In-sync replicas an acks=all write needs; with one replica, a value above 1 refuses acks=all writes (NOT_ENOUGH_REPLICAS)."),
    def("preallocate", ConfigType::Boolean, "Preallocate segment files; only false is supported."),
    def("remote.storage.enable", ConfigType::Boolean, "Tiered storage; only false is supported."),
    def("retention.bytes", ConfigType::Long, "Delete the oldest segments while the partition is larger; -1 means no limit."),
    def("retention.ms", ConfigType::Long, "Delete segments whose newest record is older; -1 means forever."),
    def("segment.bytes", ConfigType::Int, "Roll the active segment when it would exceed this size."),
    def("segment.index.bytes", ConfigType::Int, "Roll the active segment when its offset index reaches this size."),
    def("segment.jitter.ms", ConfigType::Long, "Random jitter subtracted from segment.ms; only 0 is supported."),
    def("segment.ms", ConfigType::Long, "Roll the active segment when its first batch is this old."),
    def("unclean.leader.election.enable", ConfigType::Boolean, "Whether an out-of-sync replica may become leader; no effect with one replica."),
];

/// The definition of a topic config, if `key` is one.
pub fn topic_config_def(key: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == key)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would exceed this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older than this.
    pub segment_ms: i64,
    /// `segment.index.bytes`: roll when the offset index reaches this size.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: bytes of log between offset-index entries.
    pub index_interval_bytes: u64,
    /// `retention.ms`: delete segments whose newest record is older; -1 = forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest segments while the log is larger; -1 = no limit.
    pub retention_bytes: i64,
    /// `flush.messages`: fsync after this many messages. 1 means every write is fsynced
    /// before it is acknowledged (done as group commit).
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the oldest unflushed write is this old.
    pub flush_ms: i64,
    /// `max.message.bytes`: largest record batch accepted.
    pub max_message_bytes: u64,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime may be
    /// (see `timestamp_before_max_ms()` for the effective bound).
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime may be
    /// (see `timestamp_after_max_ms()` for the effective bound).
    pub timestamp_after_max_ms: i64,
    /// `message.timestamp.difference.max.ms` (deprecated), if set: the bound on either
    /// side that is not set explicitly.
    pub timestamp_difference_max_ms: Option<i64>,
    /// Whether `before.max.ms` / `after.max.ms` were set explicitly (here or in the
    /// broker default), which makes them win over `difference.max.ms` (as Kafka).
    pub timestamp_bounds_set: (bool, bool),
    /// `min.insync.replicas`: in-sync replicas an acks=all write needs.
    pub min_insync_replicas: i32,
    /// Accepted settings whose meaning is void on this broker (see the module docs),
    /// by key, in their canonical form.
    pub stored: BTreeMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            timestamp_difference_max_ms: None,
            timestamp_bounds_set: (false, false),
            min_insync_replicas: 1,
            stored: BTreeMap::new(),
        }
    }
}

/// Kafka's defaults of the settings kept in `LogConfig::stored`.
fn stored_default(key: &str) -> Option<&'static str> {
    Some(match key {
        "cleanup.policy" => "delete",
        "compression.type" => "producer",
        "compression.gzip.level" => "-1",
        "compression.lz4.level" => "9",
        "compression.zstd.level" => "3",
        "delete.retention.ms" => "86400000",
        "file.delete.delay.ms" => "60000",
        "follower.replication.throttled.replicas" | "leader.replication.throttled.replicas" => "",
        "local.retention.bytes" | "local.retention.ms" => "-2",
        "max.compaction.lag.ms" => "9223372036854775807",
        "message.downconversion.enable" => "true",
        "min.cleanable.dirty.ratio" => "0.5",
        "min.compaction.lag.ms" => "0",
        "preallocate" => "false",
        "remote.storage.enable" => "false",
        "segment.jitter.ms" => "0",
        "unclean.leader.election.enable" => "false",
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown config `{0}`")]
    UnknownKey(String),
    #[error("invalid value `{value}` for `{key}`: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// A Kafka LONG setting of at least `min`.
pub fn parse_long(key: &str, value: &str, min: i64) -> Result<i64, ConfigError> {
    let parsed: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "not a number of type LONG"))?;
    if parsed < min {
        return Err(invalid(key, value, format!("must be at least {min}")));
    }
    Ok(parsed)
}

/// A Kafka INT setting in `[min, max]`.
pub fn parse_int(key: &str, value: &str, min: i32, max: i32) -> Result<i32, ConfigError> {
    let parsed: i32 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "not a number of type INT"))?;
    if parsed < min || parsed > max {
        let range = if max == i32::MAX {
            format!("must be at least {min}")
        } else {
            format!("must be in [{min}, {max}]")
        };
        return Err(invalid(key, value, range));
    }
    Ok(parsed)
}

/// A Kafka boolean (`true`/`false`, any case).
pub fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid(key, value, "must be true or false"))
    }
}

/// Kafka's throttled-replica list: empty, `*`, or `partition:broker` pairs.
fn check_throttled_replicas(key: &str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim();
    if v.is_empty() || v == "*" {
        return Ok(v.to_string());
    }
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    for item in v.split(',') {
        let ok = item
            .trim()
            .split_once(':')
            .is_some_and(|(p, b)| numeric(p.trim()) && numeric(b.trim()));
        if !ok {
            return Err(invalid(
                key,
                value,
                "must be empty, `*`, or a list of partition:broker pairs",
            ));
        }
    }
    Ok(v.to_string())
}

impl LogConfig {
    /// Whether every message is fsynced before it is acknowledged (`flush.messages=1`).
    pub fn syncs_every_message(&self) -> bool {
        self.flush_messages <= 1
    }

    /// Applies one `key = value` setting.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let int_max = i32::MAX;
        match key {
            "segment.bytes" => self.segment_bytes = parse_int(key, value, 14, int_max)? as u64,
            "segment.ms" => self.segment_ms = parse_long(key, value, 1)?,
            "segment.index.bytes" => {
                self.segment_index_bytes = parse_int(key, value, 8, int_max)? as u64
            }
            "index.interval.bytes" => {
                self.index_interval_bytes = parse_int(key, value, 0, int_max)? as u64
            }
            "retention.ms" => self.retention_ms = parse_long(key, value, -1)?,
            "retention.bytes" => self.retention_bytes = parse_long(key, value, -1)?,
            "flush.messages" => self.flush_messages = parse_long(key, value, 1)?,
            "flush.ms" => self.flush_ms = parse_long(key, value, 0)?,
            "max.message.bytes" => {
                self.max_message_bytes = parse_int(key, value, 0, int_max)? as u64
            }
            "message.timestamp.before.max.ms" => {
                self.timestamp_before_max_ms = parse_long(key, value, 0)?;
                self.timestamp_bounds_set.0 = true;
            }
            "message.timestamp.after.max.ms" => {
                self.timestamp_after_max_ms = parse_long(key, value, 0)?;
                self.timestamp_bounds_set.1 = true;
            }
            "message.timestamp.difference.max.ms" => {
                self.timestamp_difference_max_ms = Some(parse_long(key, value, 0)?)
            }
            "message.timestamp.type" => {
                self.timestamp_type = match value.trim() {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(invalid(key, value, "must be CreateTime or LogAppendTime")),
                }
            }
            "min.insync.replicas" => self.min_insync_replicas = parse_int(key, value, 1, int_max)?,
            _ => {
                let canonical = Self::check_stored(key, value)?;
                self.stored.insert(key.to_string(), canonical);
            }
        }
        Ok(())
    }

    /// Validates a setting kept in `stored`, returning its canonical form.
    fn check_stored(key: &str, value: &str) -> Result<String, ConfigError> {
        let v = value.trim();
        match key {
            "cleanup.policy" => {
                if v.is_empty() {
                    return Err(invalid(
                        key,
                        value,
                        "an empty policy (keep every segment regardless of retention) is not supported; use delete with retention.ms=-1 and retention.bytes=-1",
                    ));
                }
                let mut policies = Vec::new();
                for p in v.split(',').map(str::trim) {
                    match p {
                        "delete" => policies.push(p),
                        "compact" => {
                            return Err(invalid(key, value, "log compaction is not supported yet"))
                        }
                        _ => return Err(invalid(key, value, "must be a list of delete, compact")),
                    }
                }
                policies.dedup();
                Ok(policies.join(","))
            }
            "compression.type" => match v {
                "producer" => Ok(v.to_string()),
                "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd" => Err(invalid(
                    key,
                    value,
                    "recompression on the broker is not supported yet; only `producer` (keep the producer's codec) is",
                )),
                _ => Err(invalid(
                    key,
                    value,
                    "must be one of uncompressed, zstd, lz4, snappy, gzip, producer",
                )),
            },
            "compression.gzip.level" => {
                let n = parse_int(key, value, -1, 9)?;
                if n == 0 {
                    return Err(invalid(key, value, "must be -1 or in [1, 9]"));
                }
                Ok(n.to_string())
            }
            "compression.lz4.level" => Ok(parse_int(key, value, 1, 17)?.to_string()),
            "compression.zstd.level" => Ok(parse_int(key, value, -131_072, 22)?.to_string()),
            "delete.retention.ms" | "file.delete.delay.ms" | "min.compaction.lag.ms" => {
                Ok(parse_long(key, value, 0)?.to_string())
            }
            "max.compaction.lag.ms" => Ok(parse_long(key, value, 1)?.to_string()),
            "min.cleanable.dirty.ratio" => {
                let r: f64 = v
                    .parse()
                    .map_err(|_| invalid(key, value, "not a number of type DOUBLE"))?;
                if !(0.0..=1.0).contains(&r) {
                    return Err(invalid(key, value, "must be in [0, 1]"));
                }
                Ok(r.to_string())
            }
            "unclean.leader.election.enable" | "message.downconversion.enable" => {
                Ok(parse_bool(key, value)?.to_string())
            }
            "follower.replication.throttled.replicas" | "leader.replication.throttled.replicas" => {
                check_throttled_replicas(key, value)
            }
            "preallocate" | "remote.storage.enable" => {
                if parse_bool(key, value)? {
                    Err(invalid(key, value, "not supported; only false is"))
                } else {
                    Ok("false".to_string())
                }
            }
            "segment.jitter.ms" => {
                if parse_long(key, value, 0)? != 0 {
                    Err(invalid(key, value, "segment jitter is not supported yet; only 0 is"))
                } else {
                    Ok("0".to_string())
                }
            }
            "local.retention.ms" | "local.retention.bytes" => {
                if parse_long(key, value, -2)? != -2 {
                    Err(invalid(
                        key,
                        value,
                        "tiered storage is not supported; only -2 (use the retention setting) is",
                    ))
                } else {
                    Ok("-2".to_string())
                }
            }
            _ => Err(ConfigError::UnknownKey(key.to_string())),
        }
    }

    /// The defaults overridden by `overrides`; the first bad entry is the error.
    pub fn from_overrides(overrides: &BTreeMap<String, String>) -> Result<LogConfig, ConfigError> {
        let mut config = LogConfig::default();
        for (key, value) in overrides {
            config.set(key, value)?;
        }
        Ok(config)
    }

    /// Whether every append must be fsynced before it is acknowledged.
    pub fn fsync_before_ack(&self) -> bool {
        self.flush_messages == 1
    }

    /// The effective bound on how old a CreateTime may be.
    pub fn timestamp_before_max_ms(&self) -> i64 {
        match self.timestamp_difference_max_ms {
            Some(d) if !self.timestamp_bounds_set.0 => d,
            _ => self.timestamp_before_max_ms,
        }
    }

    /// The effective bound on how far in the future a CreateTime may be.
    pub fn timestamp_after_max_ms(&self) -> i64 {
        match self.timestamp_difference_max_ms {
            Some(d) if !self.timestamp_bounds_set.1 => d,
            _ => self.timestamp_after_max_ms,
        }
    }

    /// A topic config's value, as Kafka prints it; None for an unknown key.
    pub fn value_of(&self, key: &str) -> Option<String> {
        Some(match key {
            "flush.messages" => self.flush_messages.to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            "index.interval.bytes" => self.index_interval_bytes.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "message.timestamp.after.max.ms" => self.timestamp_after_max_ms.to_string(),
            "message.timestamp.before.max.ms" => self.timestamp_before_max_ms.to_string(),
            "message.timestamp.difference.max.ms" => self
                .timestamp_difference_max_ms
                .unwrap_or(i64::MAX)
                .to_string(),
            "message.timestamp.type" => match self.timestamp_type {
                TimestampType::CreateTime => "CreateTime".to_string(),
                TimestampType::LogAppendTime => "LogAppendTime".to_string(),
            },
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.index.bytes" => self.segment_index_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            _ => match self.stored.get(key) {
                Some(v) => v.clone(),
                None => stored_default(key)?.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_parse_and_bad_ones_are_rejected() {
        let mut c = LogConfig::default();
        c.set("segment.bytes", "1048576").unwrap();
        c.set("message.timestamp.type", "LogAppendTime").unwrap();
        c.set("flush.messages", "1").unwrap();
        assert_eq!(c.segment_bytes, 1_048_576);
        assert!(c.fsync_before_ack());
        assert_eq!(
            c.set("segment.bytes", "10"),
            Err(ConfigError::InvalidValue {
                key: "segment.bytes".into(),
                value: "10".into(),
                reason: "must be at least 14".into(),
            })
        );
        assert!(matches!(
            c.set("retention.ms", "soon"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            c.set("no.such.key", "1"),
            Err(ConfigError::UnknownKey(_))
        ));
        for def in TOPIC_CONFIGS {
            assert!(
                !matches!(
                    c.clone().set(def.name, "x"),
                    Err(ConfigError::UnknownKey(_))
                ),
                "{}",
                def.name
            );
            assert!(
                LogConfig::default().value_of(def.name).is_some(),
                "{}",
                def.name
            );
        }
        assert!(TOPIC_CONFIGS.windows(2).all(|w| w[0].name < w[1].name));
    }

    fn reason(r: Result<(), ConfigError>) -> String {
        match r {
            Err(ConfigError::InvalidValue { reason, .. }) => reason,
            other => panic!("expected an invalid value, got {other:?}"),
        }
    }

    #[test]
    fn kafka_topic_configs_are_honoured_stored_or_refused() {
        let mut c = LogConfig::default();
        // Stored: accepted, validated and shown.
        c.set("cleanup.policy", "delete").unwrap();
        c.set("unclean.leader.election.enable", "TRUE").unwrap();
        c.set("min.cleanable.dirty.ratio", "0.25").unwrap();
        c.set("leader.replication.throttled.replicas", "0:1,1:1")
            .unwrap();
        c.set("compression.type", "producer").unwrap();
        c.set("min.insync.replicas", "2").unwrap();
        assert_eq!(c.value_of("cleanup.policy").as_deref(), Some("delete"));
        assert_eq!(
            c.value_of("unclean.leader.election.enable").as_deref(),
            Some("true")
        );
        assert_eq!(
            c.value_of("min.cleanable.dirty.ratio").as_deref(),
            Some("0.25")
        );
        assert_eq!(c.min_insync_replicas, 2);
        assert_eq!(
            LogConfig::default()
                .value_of("delete.retention.ms")
                .as_deref(),
            Some("86400000")
        );
        // Refused with a reason: what the log cannot do.
        assert_eq!(
            reason(c.set("cleanup.policy", "compact")),
            "log compaction is not supported yet"
        );
        assert!(reason(c.set("cleanup.policy", "delete,compact")).contains("compaction"));
        assert!(reason(c.set("compression.type", "gzip")).contains("recompression"));
        assert!(reason(c.set("preallocate", "true")).contains("not supported"));
        assert!(reason(c.set("segment.jitter.ms", "10")).contains("jitter"));
        assert!(reason(c.set("remote.storage.enable", "true")).contains("not supported"));
        // Kafka's types and ranges.
        for (key, value) in [
            ("cleanup.policy", "forever"),
            ("compression.type", "brotli"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("min.insync.replicas", "0"),
            ("max.message.bytes", "3000000000"),
            ("max.compaction.lag.ms", "0"),
            ("compression.gzip.level", "0"),
            ("compression.lz4.level", "18"),
            ("unclean.leader.election.enable", "yes"),
            ("follower.replication.throttled.replicas", "0-1"),
            ("message.timestamp.difference.max.ms", "-1"),
        ] {
            assert!(
                matches!(c.set(key, value), Err(ConfigError::InvalidValue { .. })),
                "{key}={value}"
            );
        }
        // The settings refused above left the config as it was.
        assert_eq!(c.value_of("cleanup.policy").as_deref(), Some("delete"));
        assert_eq!(c.min_insync_replicas, 2);
    }

    #[test]
    fn timestamp_difference_applies_where_the_new_bounds_are_unset() {
        let mut c = LogConfig::default();
        assert_eq!(c.timestamp_before_max_ms(), i64::MAX);
        c.set("message.timestamp.difference.max.ms", "1000")
            .unwrap();
        assert_eq!(
            (c.timestamp_before_max_ms(), c.timestamp_after_max_ms()),
            (1000, 1000)
        );
        c.set("message.timestamp.after.max.ms", "5").unwrap();
        assert_eq!(
            (c.timestamp_before_max_ms(), c.timestamp_after_max_ms()),
            (1000, 5)
        );
    }
}
