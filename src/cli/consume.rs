//! `skald consume`: reads one topic (all partitions, or one) from the beginning, the
//! end, an offset or a timestamp, and prints each record as its value, `key:value`, or
//! a JSON line.
//!
//! Owns: the start position and format arguments, record formatting, and when to stop:
//! after `--count` records, at the end of the log (`--exit-at-end`: every partition's
//! position has reached the high watermark its last fetch reported), or after
//! `--timeout-ms` without a record. Must never: print more than `--count` records, or
//! turn bytes that are not UTF-8 into different text silently (JSON shows them as hex).

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::cli::args::{topic_partitions, ConnectArgs};
use crate::cli::{ExitStatus, Output};
use crate::client::{Consumer, ConsumerConfig, ConsumerRecord, OffsetResetPolicy, StartOffset};
use crate::protocol::TimestampType;

/// How long one fetch may wait for data when stopping at the end of the log: short, so
/// the end is noticed quickly.
const FETCH_WAIT_AT_END_MS: i32 = 100;

/// What each record prints as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The value only.
    Value,
    /// `key<SEP>value` (`--separator`, default `:`).
    KeyValue,
    /// One JSON object a line: topic, partition, offset, timestamp, timestamp_type, key,
    /// value, headers.
    Json,
}

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Topic to read.
    #[arg(long, short = 't')]
    pub topic: String,
    /// Read only this partition (default: all).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Where to start: beginning, end, offset:N or timestamp:MS.
    #[arg(long, default_value = "end", value_parser = parse_start)]
    pub from: StartOffset,
    /// Exit after N records.
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    /// How each record is printed.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Value)]
    pub format: Format,
    /// Between key and value in the key-value format.
    #[arg(long, default_value = ":")]
    pub separator: String,
    /// Exit once every partition has been read to its end.
    #[arg(long)]
    pub exit_at_end: bool,
    /// Exit after this long without a new record.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
}

/// `beginning`/`earliest`, `end`/`latest`, `offset:N` (N >= 0) or `timestamp:MS`.
pub fn parse_start(text: &str) -> Result<StartOffset, String> {
    let number = |digits: &str| {
        digits
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("expected a number >= 0 after ':', got {digits:?}"))
    };
    match text {
        "beginning" | "earliest" => Ok(StartOffset::Earliest),
        "end" | "latest" => Ok(StartOffset::Latest),
        _ => match text.split_once(':') {
            Some(("offset", n)) => number(n).map(StartOffset::Offset),
            Some(("timestamp", ms)) => number(ms).map(StartOffset::Timestamp),
            _ => Err(format!(
                "expected beginning, end, offset:N or timestamp:MS, got {text:?}"
            )),
        },
    }
}

/// A record in the JSON format; fields in this order.
#[derive(Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    timestamp_type: &'static str,
    key: Value,
    value: Value,
    headers: Vec<JsonHeader<'a>>,
}

#[derive(Serialize)]
struct JsonHeader<'a> {
    key: &'a str,
    value: Value,
}

/// Bytes as JSON: null, the string if it is UTF-8, else `{"hex": "..."}`.
fn json_bytes(bytes: &Option<Bytes>) -> Value {
    match bytes {
        None => Value::Null,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Value::String(text.to_string()),
            Err(_) => {
                let mut hex = String::with_capacity(bytes.len() * 2);
                for byte in bytes.iter() {
                    let _ = write!(hex, "{byte:02x}");
                }
                json!({ "hex": hex })
            }
        },
    }
}

/// One record in `format`, with its line end.
pub fn format_record(record: &ConsumerRecord, format: Format, separator: &str) -> Vec<u8> {
    let mut line = match format {
        Format::Value => record
            .value
            .as_ref()
            .map_or_else(Vec::new, |value| value.to_vec()),
        Format::KeyValue => {
            let mut line = record
                .key
                .as_ref()
                .map_or_else(Vec::new, |key| key.to_vec());
            line.extend_from_slice(separator.as_bytes());
            if let Some(value) = &record.value {
                line.extend_from_slice(value);
            }
            line
        }
        Format::Json => {
            let line = JsonRecord {
                topic: &record.topic,
                partition: record.partition,
                offset: record.offset,
                timestamp: record.timestamp_ms,
                timestamp_type: match record.timestamp_type {
                    TimestampType::CreateTime => "CreateTime",
                    TimestampType::LogAppendTime => "LogAppendTime",
                },
                key: json_bytes(&record.key),
                value: json_bytes(&record.value),
                headers: record
                    .headers
                    .iter()
                    .map(|(key, value)| JsonHeader {
                        key,
                        value: json_bytes(value),
                    })
                    .collect(),
            };
            // Serialising strings, numbers and `Value`s cannot fail.
            serde_json::to_vec(&line).unwrap_or_default()
        }
    };
    line.push(b'\n');
    line
}

/// Whether every assigned partition has been read up to the high watermark its last
/// fetch reported.
pub fn at_end(consumer: &Consumer) -> bool {
    consumer.assignment().iter().all(|tp| {
        matches!(
            (consumer.position(tp), consumer.high_watermark(tp)),
            (Some(position), Some(high_watermark)) if position >= high_watermark
        )
    })
}

pub async fn run(args: ConsumeArgs, output: &mut Output<'_>) -> anyhow::Result<ExitStatus> {
    let cluster = args.connect.connect().await?;
    let assignment = topic_partitions(&cluster, &args.topic, args.partition).await?;
    let stop_early = args.exit_at_end || args.timeout_ms.is_some();
    let config = ConsumerConfig {
        max_wait_ms: if stop_early {
            FETCH_WAIT_AT_END_MS
        } else {
            ConsumerConfig::default().max_wait_ms
        },
        // An offset the user named must exist: say so rather than jump elsewhere.
        reset_policy: match args.from {
            StartOffset::Offset(_) => OffsetResetPolicy::None,
            _ => OffsetResetPolicy::Earliest,
        },
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(cluster, config);
    for tp in assignment {
        consumer.assign(tp, args.from);
    }
    let count_max = args.count.unwrap_or(u64::MAX);
    let idle_timeout = args.timeout_ms.map(Duration::from_millis);
    let mut printed = 0u64;
    let mut last_record_at = Instant::now();
    // Each poll is bounded by the fetch wait plus the request timeout; the loop ends by
    // count, end of log or idle timeout, or runs until interrupted if none is given.
    while printed < count_max {
        let records = consumer.poll().await?;
        if !records.is_empty() {
            last_record_at = Instant::now();
        }
        for record in &records {
            if printed >= count_max {
                break;
            }
            output
                .out
                .write_all(&format_record(record, args.format, &args.separator))?;
            printed += 1;
        }
        output.out.flush()?;
        if args.exit_at_end && at_end(&consumer) {
            break;
        }
        if idle_timeout.is_some_and(|timeout| last_record_at.elapsed() >= timeout) {
            break;
        }
    }
    writeln!(output.err, "Consumed {printed} records.")?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".to_string(),
            partition: 2,
            offset: 7,
            timestamp_ms: 1_700_000_000_000,
            timestamp_type: TimestampType::CreateTime,
            leader_epoch: 0,
            key: Some(Bytes::from_static(b"k1")),
            value: Some(Bytes::from_static(b"hello")),
            headers: vec![
                ("h".to_string(), Some(Bytes::from_static(b"v"))),
                ("bin".to_string(), Some(Bytes::from_static(&[0xff, 0x00]))),
                ("null".to_string(), None),
            ],
        }
    }

    #[test]
    fn start_positions_parse() {
        assert_eq!(parse_start("beginning"), Ok(StartOffset::Earliest));
        assert_eq!(parse_start("earliest"), Ok(StartOffset::Earliest));
        assert_eq!(parse_start("end"), Ok(StartOffset::Latest));
        assert_eq!(parse_start("offset:42"), Ok(StartOffset::Offset(42)));
        assert_eq!(
            parse_start("timestamp:1700000000000"),
            Ok(StartOffset::Timestamp(1_700_000_000_000))
        );
        for bad in [
            "offset:-1",
            "offset:",
            "offset:x",
            "timestamp",
            "middle",
            "time:5",
        ] {
            assert!(parse_start(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats() {
        let r = record();
        assert_eq!(format_record(&r, Format::Value, ":"), b"hello\n");
        assert_eq!(format_record(&r, Format::KeyValue, ":"), b"k1:hello\n");
        assert_eq!(
            format_record(&r, Format::KeyValue, " => "),
            b"k1 => hello\n"
        );
        let keyless = ConsumerRecord {
            key: None,
            value: None,
            ..record()
        };
        assert_eq!(format_record(&keyless, Format::KeyValue, ":"), b":\n");
        let line = format_record(&r, Format::Json, ":");
        assert_eq!(line.last(), Some(&b'\n'));
        assert!(
            line.starts_with(
                br#"{"topic":"t","partition":2,"offset":7,"timestamp":1700000000000,"#
            ),
            "{}",
            String::from_utf8_lossy(&line)
        );
        let parsed: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            parsed,
            json!({
                "topic": "t", "partition": 2, "offset": 7,
                "timestamp": 1_700_000_000_000i64, "timestamp_type": "CreateTime",
                "key": "k1", "value": "hello",
                "headers": [
                    {"key": "h", "value": "v"},
                    {"key": "bin", "value": {"hex": "ff00"}},
                    {"key": "null", "value": null}
                ]
            })
        );
        let parsed: Value =
            serde_json::from_slice(&format_record(&keyless, Format::Json, ":")).unwrap();
        assert_eq!(parsed["key"], Value::Null);
        assert_eq!(parsed["value"], Value::Null);
    }
}
