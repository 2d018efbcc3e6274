//! `skald produce`: one record per stdin line (optionally `key<SEP>value`), or `--count`
//! generated records, with headers, acks, compression and an optional fixed partition.
//!
//! Owns: reading lines (bounded in length, on a thread of their own so a slow stdin never
//! stalls the producer's task), and `DeliveryTracker`, which awaits every record's result
//! in send order, counts successes and failures, and times each record (also used by
//! `perf produce`). Must never: exit 0 when a record failed, or hold more than
//! `IN_FLIGHT_RECORDS_MAX` unresolved records.

use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cli::args::{parse_key_value, topic_partitions, ConnectArgs, ProducerArgs};
use crate::cli::rate::Latencies;
use crate::cli::{ExitStatus, Output};
use crate::client::{ClientError, DeliveryFuture, Producer, ProducerRecord};

/// Longest stdin line taken as a record (the producer's default `max.request.size`);
/// a longer one fails as that record, it is never read whole into memory.
pub const LINE_BYTES_MAX: usize = 1024 * 1024;
/// Records sent but not yet resolved; `send` waits beyond this.
pub const IN_FLIGHT_RECORDS_MAX: usize = 100_000;
/// Distinct errors kept for the final report.
const ERRORS_KEPT_MAX: usize = 5;
/// Lines read ahead of the producer.
const LINES_QUEUED_MAX: usize = 1024;

#[derive(Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Topic to produce to.
    #[arg(long, short = 't')]
    pub topic: String,
    #[command(flatten)]
    pub producer: ProducerArgs,
    /// Split each line at the first SEP into key and value (a line without it fails).
    #[arg(long, short = 'K', value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header on every record, `key=value`; repeatable.
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Partition to write to; default: by key hash, or sticky round robin without keys.
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Send N generated records instead of reading stdin.
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    /// Value size in bytes of generated records.
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    pub size: usize,
}

/// The counts and timings of resolved records.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub acked: u64,
    pub failed: u64,
    /// Key plus value bytes of acknowledged records.
    pub bytes_acked: u64,
    /// The first few distinct error messages.
    pub errors: Vec<String>,
    /// Send-to-acknowledgement time of every acknowledged record.
    pub latencies: Latencies,
    /// The same since the last `take_window`.
    pub window_acked: u64,
    pub window_bytes: u64,
    pub window_latencies: Latencies,
    /// When the last record resolved.
    pub last_resolved_at: Option<Instant>,
}

impl Tally {
    fn fail(&mut self, error: &ClientError) {
        self.failed += 1;
        let text = error.to_string();
        if self.errors.len() < ERRORS_KEPT_MAX && !self.errors.contains(&text) {
            self.errors.push(text);
        }
    }
}

struct Pending {
    sent_at: Instant,
    bytes: u64,
    delivery: DeliveryFuture,
}

/// Awaits record results in send order on a task of its own. A record's latency is
/// taken when it and every record sent before it have resolved, so it is exact for one
/// partition and an upper bound across partitions.
pub struct DeliveryTracker {
    pending: mpsc::Sender<Pending>,
    tally: Arc<Mutex<Tally>>,
    task: JoinHandle<()>,
}

impl Default for DeliveryTracker {
    fn default() -> Self {
        DeliveryTracker::start()
    }
}

impl DeliveryTracker {
    pub fn start() -> DeliveryTracker {
        let (pending, mut receiver) = mpsc::channel::<Pending>(IN_FLIGHT_RECORDS_MAX);
        let tally = Arc::new(Mutex::new(Tally::default()));
        let shared = tally.clone();
        let task = tokio::spawn(async move {
            while let Some(record) = receiver.recv().await {
                let result = record.delivery.await;
                let now = Instant::now();
                let mut tally = lock(&shared);
                match result {
                    Ok(_) => {
                        let latency = now.saturating_duration_since(record.sent_at);
                        tally.acked += 1;
                        tally.bytes_acked += record.bytes;
                        tally.latencies.record(latency);
                        tally.window_acked += 1;
                        tally.window_bytes += record.bytes;
                        tally.window_latencies.record(latency);
                    }
                    Err(error) => tally.fail(&error),
                }
                tally.last_resolved_at = Some(now);
            }
        });
        DeliveryTracker {
            pending,
            tally,
            task,
        }
    }

    /// Sends `record` and tracks its result; a record the producer refuses at once is
    /// counted as failed. Waits while `IN_FLIGHT_RECORDS_MAX` records are unresolved.
    pub async fn send(&self, producer: &Producer, record: ProducerRecord) {
        let bytes = record.key.as_ref().map_or(0, Bytes::len) as u64
            + record.value.as_ref().map_or(0, Bytes::len) as u64;
        let sent_at = Instant::now();
        match producer.send(record).await {
            Ok(delivery) => {
                let pending = Pending {
                    sent_at,
                    bytes,
                    delivery,
                };
                if self.pending.send(pending).await.is_err() {
                    lock(&self.tally).fail(&ClientError::Closed);
                }
            }
            Err(error) => lock(&self.tally).fail(&error),
        }
    }

    /// Counts a record that never reached the producer (a malformed line).
    pub fn fail(&self, error: &ClientError) {
        lock(&self.tally).fail(error);
    }

    /// The counts of the window since the last call, which starts a new window:
    /// (records acknowledged, their bytes, their latencies).
    pub fn take_window(&self) -> (u64, u64, Latencies) {
        take_window(&self.tally)
    }

    /// Waits until every sent record has resolved, handing `progress` the window of
    /// each `interval` meanwhile, and returns the totals.
    pub async fn finish(
        self,
        interval: Duration,
        mut progress: impl FnMut((u64, u64, Latencies)),
    ) -> Tally {
        let DeliveryTracker {
            pending,
            tally,
            mut task,
        } = self;
        drop(pending);
        // Each wait is bounded by `interval`, and every record by the producer's
        // delivery timeout, so this ends.
        while tokio::time::timeout(interval, &mut task).await.is_err() {
            progress(take_window(&tally));
        }
        let totals = lock(&tally).clone();
        totals
    }
}

fn take_window(tally: &Mutex<Tally>) -> (u64, u64, Latencies) {
    let mut tally = lock(tally);
    let window = (
        tally.window_acked,
        tally.window_bytes,
        tally.window_latencies.clone(),
    );
    tally.window_acked = 0;
    tally.window_bytes = 0;
    tally.window_latencies.clear();
    window
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads one line (without its `\n` or `\r\n`) of at most `max_bytes`. `None` at the
/// end of input; `Some(Err(length))` for a longer line, which is skipped to its end.
pub fn read_line(
    input: &mut dyn BufRead,
    max_bytes: usize,
) -> std::io::Result<Option<Result<Vec<u8>, usize>>> {
    let mut line = Vec::new();
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(2);
    let read = std::io::Read::take(&mut *input, limit).read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    let complete = line.last() == Some(&b'\n');
    if complete {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() > max_bytes {
        let mut skipped = line.len();
        if !complete {
            // Skip the rest of the line in bounded steps.
            loop {
                let available = input.fill_buf()?;
                if available.is_empty() {
                    break;
                }
                match available.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        skipped += end;
                        input.consume(end + 1);
                        break;
                    }
                    None => {
                        let n = available.len();
                        skipped += n;
                        input.consume(n);
                    }
                }
            }
        }
        return Ok(Some(Err(skipped)));
    }
    Ok(Some(Ok(line)))
}

/// `(key, value)` split at the first `separator`, or `None` if the line has none.
pub fn split_key<'a>(line: &'a [u8], separator: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    if separator.is_empty() || line.len() < separator.len() {
        return None;
    }
    let at = line
        .windows(separator.len())
        .position(|window| window == separator)?;
    Some((&line[..at], &line[at + separator.len()..]))
}

/// The value of generated record `index`: its number, zero-padded, then `.` up to
/// `size` bytes (cut to `size` if the number is longer).
pub fn generated_value(index: u64, size: usize) -> Bytes {
    let mut value = format!("{index:012}").into_bytes();
    value.resize(size, b'.');
    Bytes::from(value)
}

pub async fn run(
    args: ProduceArgs,
    input: Box<dyn BufRead + Send>,
    output: &mut Output<'_>,
) -> anyhow::Result<ExitStatus> {
    let cluster = args.connect.connect().await?;
    // Fail fast on an unknown topic or partition rather than once per record.
    topic_partitions(&cluster, &args.topic, args.partition).await?;
    let producer = Producer::new(cluster, args.producer.config()?);
    let tracker = DeliveryTracker::start();
    let headers: Vec<(String, Option<Bytes>)> = args
        .headers
        .iter()
        .map(|(key, value)| (key.clone(), Some(Bytes::from(value.clone()))))
        .collect();
    let record = |key: Option<Bytes>, value: Bytes| ProducerRecord {
        topic: args.topic.clone(),
        partition: args.partition,
        key,
        value: Some(value),
        headers: headers.clone(),
        timestamp_ms: None,
    };
    if let Some(count) = args.count {
        for index in 0..count {
            tracker
                .send(&producer, record(None, generated_value(index, args.size)))
                .await;
        }
    } else {
        let (lines_tx, mut lines) = mpsc::channel(LINES_QUEUED_MAX);
        let mut input = input;
        // A thread, not a task: stdin reads block. It ends at end of input, on a read
        // error, or when the receiver is gone.
        std::thread::spawn(move || loop {
            let line = read_line(&mut *input, LINE_BYTES_MAX);
            let last = !matches!(line, Ok(Some(_)));
            if lines_tx.blocking_send(line).is_err() || last {
                break;
            }
        });
        let mut line_number = 0u64;
        while let Some(line) = lines.recv().await {
            line_number += 1;
            let line = match line.context("reading stdin")? {
                None => break,
                Some(Ok(line)) => line,
                Some(Err(length)) => {
                    tracker.fail(&ClientError::InvalidArgument(format!(
                        "line {line_number} is {length} bytes, over {LINE_BYTES_MAX}"
                    )));
                    continue;
                }
            };
            let (key, value) = match &args.key_separator {
                None => (None, Bytes::from(line)),
                Some(separator) => match split_key(&line, separator.as_bytes()) {
                    Some((key, value)) => (
                        Some(Bytes::copy_from_slice(key)),
                        Bytes::copy_from_slice(value),
                    ),
                    None => {
                        tracker.fail(&ClientError::InvalidArgument(format!(
                            "line {line_number} has no key separator {separator:?}"
                        )));
                        continue;
                    }
                },
            };
            tracker.send(&producer, record(key, value)).await;
        }
    }
    producer.close().await;
    let tally = tracker.finish(Duration::from_secs(1), |_| {}).await;
    for error in &tally.errors {
        writeln!(output.err, "error: {error}")?;
    }
    writeln!(
        output.err,
        "{} records produced to {}, {} failed.",
        tally.acked, args.topic, tally.failed
    )?;
    Ok(if tally.failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::PartialFailure
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn lines(text: &[u8], max: usize) -> Vec<Result<Vec<u8>, usize>> {
        let mut input = Cursor::new(text.to_vec());
        let mut out = Vec::new();
        for _ in 0..100 {
            match read_line(&mut input, max).unwrap() {
                Some(line) => out.push(line),
                None => return out,
            }
        }
        panic!("too many lines");
    }

    #[test]
    fn lines_are_split_and_bounded() {
        assert_eq!(
            lines(b"a\nbb\r\n\nlast", 10),
            vec![
                Ok(b"a".to_vec()),
                Ok(b"bb".to_vec()),
                Ok(vec![]),
                Ok(b"last".to_vec())
            ]
        );
        // Exactly max bytes is fine; one more is rejected and skipped whole.
        assert_eq!(
            lines(b"1234\n12345\nok\n", 4),
            vec![Ok(b"1234".to_vec()), Err(5), Ok(b"ok".to_vec())]
        );
        let long = [vec![b'x'; 100_000], b"\nnext".to_vec()].concat();
        assert_eq!(lines(&long, 10), vec![Err(100_000), Ok(b"next".to_vec())]);
        assert!(lines(b"", 10).is_empty());
    }

    #[test]
    fn keys_split_at_the_first_separator() {
        assert_eq!(split_key(b"k:v:w", b":"), Some((&b"k"[..], &b"v:w"[..])));
        assert_eq!(split_key(b"::", b"::"), Some((&b""[..], &b""[..])));
        assert_eq!(split_key(b"k=>v", b"=>"), Some((&b"k"[..], &b"v"[..])));
        assert_eq!(split_key(b"no", b":"), None);
        assert_eq!(split_key(b"x", b""), None);
    }

    #[test]
    fn generated_values_have_the_size() {
        assert_eq!(&generated_value(42, 16)[..], b"000000000042....");
        assert_eq!(&generated_value(42, 3)[..], b"000");
        assert_eq!(generated_value(7, 1024).len(), 1024);
    }
}
