//! Per-partition log settings, by Kafka's topic-config names. Parsing is strict: an
//! unknown key or an invalid value is an error naming it (the broker turns it into
//! INVALID_CONFIG), never silently ignored.

use std::collections::BTreeMap;

/// How record timestamps are set (`message.timestamp.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
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
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime may be.
    pub timestamp_after_max_ms: i64,
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown topic config `{0}`")]
    UnknownKey(String),
    #[error("invalid value `{value}` for `{key}`: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
}

/// The topic-config keys this log understands, in sorted order.
pub const LOG_CONFIG_KEYS: &[&str] = &[
    "flush.messages",
    "flush.ms",
    "index.interval.bytes",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.ms",
];

fn parse_long(key: &str, value: &str, min: i64) -> Result<i64, ConfigError> {
    let parsed: i64 = value
        .trim()
        .parse()
        .map_err(|_| ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: "not an integer".to_string(),
        })?;
    if parsed < min {
        return Err(ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: format!("must be at least {min}"),
        });
    }
    Ok(parsed)
}

impl LogConfig {
    /// Applies one `key = value` setting.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "segment.bytes" => {
                self.segment_bytes = parse_long(key, value, 14)?.min(i32::MAX as i64) as u64
            }
            "segment.ms" => self.segment_ms = parse_long(key, value, 1)?,
            "segment.index.bytes" => self.segment_index_bytes = parse_long(key, value, 8)? as u64,
            "index.interval.bytes" => self.index_interval_bytes = parse_long(key, value, 0)? as u64,
            "retention.ms" => self.retention_ms = parse_long(key, value, -1)?,
            "retention.bytes" => self.retention_bytes = parse_long(key, value, -1)?,
            "flush.messages" => self.flush_messages = parse_long(key, value, 1)?,
            "flush.ms" => self.flush_ms = parse_long(key, value, 0)?,
            "max.message.bytes" => self.max_message_bytes = parse_long(key, value, 0)? as u64,
            "message.timestamp.before.max.ms" => {
                self.timestamp_before_max_ms = parse_long(key, value, 0)?
            }
            "message.timestamp.after.max.ms" => {
                self.timestamp_after_max_ms = parse_long(key, value, 0)?
            }
            "message.timestamp.type" => {
                self.timestamp_type = match value {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => {
                        return Err(ConfigError::InvalidValue {
                            key: key.to_string(),
                            value: value.to_string(),
                            reason: "must be CreateTime or LogAppendTime".to_string(),
                        })
                    }
                }
            }
            _ => return Err(ConfigError::UnknownKey(key.to_string())),
        }
        Ok(())
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
        for key in LOG_CONFIG_KEYS {
            assert!(
                !matches!(c.clone().set(key, "x"), Err(ConfigError::UnknownKey(_))),
                "{key}"
            );
        }
    }
}
