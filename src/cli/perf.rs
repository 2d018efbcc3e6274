//! `skald perf produce|consume`: load generators in the spirit of Kafka's
//! kafka-producer-perf-test and kafka-consumer-perf-test.
//!
//! Owns: the perf arguments, the send loop under the throughput cap, the progress line
//! each second, and the final report (records/s, MB/s; for produce also latency
//! average, max and p50/p99/p99.9 from an HDR histogram). Must never: run unbounded —
//! produce stops after `--num-records` (and each record after the delivery timeout),
//! consume after `--num-records` or `--timeout-ms` without a record.

use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use tokio::time::Instant;

use crate::base::Rng;
use crate::cli::args::{acks_name, compression_name, topic_partitions, ConnectArgs, ProducerArgs};
use crate::cli::produce::DeliveryTracker;
use crate::cli::rate::{consumer_line, producer_line, throttle_delay};
use crate::cli::{ExitStatus, Output};
use crate::client::{Consumer, ConsumerConfig, Producer, ProducerRecord, StartOffset};

/// How often a progress line is printed.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// Largest record perf produce generates (the broker's default `message.max.bytes`
/// is about 1 MiB).
const RECORD_BYTES_MAX: usize = 1024 * 1024;

#[derive(Args, Debug)]
pub struct PerfArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub action: PerfAction,
}

#[derive(Subcommand, Debug)]
pub enum PerfAction {
    /// Produce generated records as fast as allowed and report throughput and latency.
    Produce(PerfProduceArgs),
    /// Consume a topic from the beginning and report throughput.
    Consume(PerfConsumeArgs),
}

#[derive(Args, Debug)]
pub struct PerfProduceArgs {
    /// Topic to produce to (it must exist).
    #[arg(long, short = 't')]
    pub topic: String,
    /// Records to send.
    #[arg(long, value_name = "N")]
    pub num_records: u64,
    /// Value size of each record in bytes.
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    pub record_size: usize,
    /// Cap in records/s; -1: no cap.
    #[arg(long, default_value_t = -1.0, allow_negative_numbers = true, value_name = "RECORDS_PER_SEC")]
    pub throughput: f64,
    #[command(flatten)]
    pub producer: ProducerArgs,
}

#[derive(Args, Debug)]
pub struct PerfConsumeArgs {
    /// Topic to read, every partition from the beginning.
    #[arg(long, short = 't')]
    pub topic: String,
    /// Records to read before stopping.
    #[arg(long, value_name = "N")]
    pub num_records: u64,
    /// Stop after this long without a record.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub timeout_ms: u64,
    /// Largest fetch response (`fetch.max.bytes`).
    #[arg(long, default_value_t = 50 * 1024 * 1024, value_name = "BYTES")]
    pub fetch_max_bytes: i32,
}

pub async fn run(args: PerfArgs, output: &mut Output<'_>) -> anyhow::Result<ExitStatus> {
    match args.action {
        PerfAction::Produce(perf) => produce(&args.connect, perf, output).await,
        PerfAction::Consume(perf) => consume(&args.connect, perf, output).await,
    }
}

/// A value of `size` random upper-case letters, reused for every record as Kafka's
/// perf tool does (seeded: runs are comparable).
pub fn payload(size: usize) -> Bytes {
    let mut rng = Rng::with_seed(0x5ca1d);
    (0..size)
        .map(|_| b'A' + u8::try_from(rng.below(26)).unwrap_or(0))
        .collect::<Vec<u8>>()
        .into()
}

async fn produce(
    connect: &ConnectArgs,
    args: PerfProduceArgs,
    output: &mut Output<'_>,
) -> anyhow::Result<ExitStatus> {
    if args.record_size > RECORD_BYTES_MAX {
        anyhow::bail!("--record-size is at most {RECORD_BYTES_MAX}");
    }
    let cluster = connect.connect().await?;
    // Unknown topic: fail now, not once per record.
    topic_partitions(&cluster, &args.topic, None).await?;
    writeln!(
        output.err,
        "perf produce: {} records of {} bytes to {}, acks={}, compression={}, throughput cap {}",
        args.num_records,
        args.record_size,
        args.topic,
        acks_name(args.producer.acks),
        compression_name(args.producer.compression),
        if args.throughput > 0.0 {
            format!("{} records/s", args.throughput)
        } else {
            "none".to_string()
        }
    )?;
    let producer = Producer::new(cluster, args.producer.config()?);
    let tracker = DeliveryTracker::start();
    let value = payload(args.record_size);
    let start = Instant::now();
    let mut window_start = start;
    for sent in 0..args.num_records {
        if let Some(wait) = throttle_delay(sent, start.elapsed(), args.throughput) {
            tokio::time::sleep(wait).await;
        }
        let record = ProducerRecord {
            topic: args.topic.clone(),
            value: Some(value.clone()),
            ..ProducerRecord::default()
        };
        tracker.send(&producer, record).await;
        if window_start.elapsed() >= PROGRESS_INTERVAL {
            let (records, bytes, latencies) = tracker.take_window();
            let line = producer_line(records, bytes, window_start.elapsed(), &latencies, false);
            writeln!(output.err, "{line}")?;
            window_start = Instant::now();
        }
    }
    producer.flush().await;
    let mut progress_error = None;
    let tally = tracker
        .finish(PROGRESS_INTERVAL, |(records, bytes, latencies)| {
            let line = producer_line(records, bytes, window_start.elapsed(), &latencies, false);
            if let Err(error) = writeln!(output.err, "{line}") {
                progress_error.get_or_insert(error);
            }
            window_start = Instant::now();
        })
        .await;
    producer.close().await;
    if let Some(error) = progress_error {
        return Err(error.into());
    }
    let elapsed = tally
        .last_resolved_at
        .map_or(Duration::ZERO, |at| at.saturating_duration_since(start));
    let line = producer_line(
        tally.acked,
        tally.bytes_acked,
        elapsed,
        &tally.latencies,
        true,
    );
    writeln!(output.out, "{line}")?;
    for error in &tally.errors {
        writeln!(output.err, "error: {error}")?;
    }
    if tally.failed > 0 {
        writeln!(output.err, "{} records failed.", tally.failed)?;
        return Ok(ExitStatus::PartialFailure);
    }
    Ok(ExitStatus::Success)
}

async fn consume(
    connect: &ConnectArgs,
    args: PerfConsumeArgs,
    output: &mut Output<'_>,
) -> anyhow::Result<ExitStatus> {
    let cluster = connect.connect().await?;
    let assignment = topic_partitions(&cluster, &args.topic, None).await?;
    let config = ConsumerConfig {
        max_bytes: args.fetch_max_bytes,
        max_wait_ms: 100,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(cluster, config);
    for tp in assignment {
        consumer.assign(tp, StartOffset::Earliest);
    }
    let idle_timeout = Duration::from_millis(args.timeout_ms);
    let start = Instant::now();
    let mut last_record_at = start;
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut window_start = start;
    let (mut window_records, mut window_bytes) = (0u64, 0u64);
    // Each poll is bounded by the fetch wait and the request timeout; the loop by the
    // record count and the idle timeout.
    while records < args.num_records && last_record_at.elapsed() < idle_timeout {
        let batch = consumer.poll().await?;
        if !batch.is_empty() {
            last_record_at = Instant::now();
        }
        let wanted = usize::try_from(args.num_records - records).unwrap_or(usize::MAX);
        for record in batch.iter().take(wanted) {
            let size = record.key.as_ref().map_or(0, Bytes::len)
                + record.value.as_ref().map_or(0, Bytes::len);
            records += 1;
            bytes += size as u64;
            window_records += 1;
            window_bytes += size as u64;
        }
        if window_start.elapsed() >= PROGRESS_INTERVAL {
            let line = consumer_line(window_records, window_bytes, window_start.elapsed());
            writeln!(output.err, "{line}")?;
            (window_records, window_bytes) = (0, 0);
            window_start = Instant::now();
        }
    }
    let elapsed = last_record_at.saturating_duration_since(start);
    writeln!(output.out, "{}", consumer_line(records, bytes, elapsed))?;
    if records < args.num_records {
        writeln!(
            output.err,
            "only {records} of {} records within {} ms of the last one",
            args.num_records, args.timeout_ms
        )?;
        return Ok(ExitStatus::PartialFailure);
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        perf: PerfArgs,
    }

    #[test]
    fn produce_arguments() {
        let cli = Cli::try_parse_from([
            "x",
            "produce",
            "-t",
            "t",
            "--num-records",
            "10",
            "--throughput",
            "-1",
            "--acks",
            "1",
            "--compression",
            "lz4",
        ])
        .unwrap();
        let PerfAction::Produce(args) = cli.perf.action else {
            panic!("not produce");
        };
        assert_eq!(args.num_records, 10);
        assert_eq!(args.record_size, 1024);
        assert_eq!(args.throughput, -1.0);
        assert_eq!(args.producer.acks, crate::client::Acks::Leader);
        assert_eq!(args.producer.compression, crate::protocol::Compression::Lz4);
        assert!(Cli::try_parse_from(["x", "produce", "-t", "t"]).is_err());
        assert!(Cli::try_parse_from([
            "x",
            "produce",
            "-t",
            "t",
            "--num-records",
            "1",
            "--acks",
            "2"
        ])
        .is_err());
    }

    #[test]
    fn payload_is_letters_and_repeatable() {
        let a = payload(1024);
        assert_eq!(a.len(), 1024);
        assert!(a.iter().all(u8::is_ascii_uppercase));
        assert_eq!(a, payload(1024));
        assert!(payload(0).is_empty());
    }
}
