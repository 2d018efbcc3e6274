//! The producer: batches records per partition, compresses, sends them to partition
//! leaders with the configured acks, retries retriable errors, and reports a result for
//! every record.
//!
//! Owns: partition choice (explicit, murmur2 of the key, or a deterministic sticky round
//! robin for keyless records), the per-partition batch queues (`linger_ms`,
//! `batch_bytes`), the bounded record buffer (`buffer_bytes`: `send` waits when it is
//! full), retries with backoff until `retries_max` or `delivery_timeout_ms`, and
//! grouping ready batches into one ProduceRequest per leader.
//!
//! Guarantees: at most one batch per partition is in flight, so records of one
//! partition are appended in `send` order even across retries (Kafka's
//! `max.in.flight.requests.per.connection=1` per partition; different partitions are
//! pipelined on the same connection). Without idempotence a retry after a lost response
//! can append a batch twice; such results are reported as the retry's offsets. An error
//! whose outcome is unknown (`ClientError::is_indeterminate`) may still have been
//! appended.
//!
//! Idempotence (`enable.idempotence`, acks=all only): the producer gets an id from
//! InitProducerId before its first send and stamps each batch, when it is first sent,
//! with that id, epoch 0 and the partition's next sequence number; retries resend the
//! same bytes, so the broker recognises a batch it already has and answers with its
//! original offsets instead of appending it again. When a sequenced batch fails for
//! good, the broker may or may not hold it, so the partition's sequence is unknown: the
//! producer then takes a fresh id (sequences from 0), as Kafka's producer does.
//!
//! Must never: block a thread, iterate unordered collections, reuse a batch's bytes for
//! different records, or complete a record twice.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    InitProducerIdRequest, ProduceRequest, ProducerId as KafkaProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

use crate::base::limits::{PRODUCER_BUFFER_BYTES_MAX, PRODUCER_REQUEST_BYTES_MAX};
use crate::base::{NodeId, ProducerEpoch, ProducerId, Sequence};
use crate::client::cluster::Cluster;
use crate::client::errors::{code, ClientError};
use crate::client::metadata::TopicPartition;
use crate::client::partitioner::partition_for_key;
use crate::io::Clock;
use crate::protocol::{increment_sequence, Compression, RecordBatchBuilder, RecordInput};

/// Bytes a batch header takes (RecordBatch v2).
const BATCH_OVERHEAD_BYTES: usize = 61;
/// Upper bound of a record's framing (length, attributes, deltas, key/value/header
/// lengths as varints), added to its payload to estimate its encoded size.
const RECORD_OVERHEAD_BYTES: usize = 32;

/// How many replicas must have a batch before the broker answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acks {
    /// acks=0: the broker sends no response; offsets are reported as -1.
    None,
    /// acks=1: the leader appended it.
    Leader,
    /// acks=all (-1): every in-sync replica has it.
    All,
}

impl Acks {
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// Parses "0", "1", "-1" or "all".
    pub fn parse(text: &str) -> Option<Acks> {
        match text {
            "0" => Some(Acks::None),
            "1" => Some(Acks::Leader),
            "-1" | "all" => Some(Acks::All),
            _ => None,
        }
    }
}

/// Producer settings; units last, Kafka's names in the comments.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// `acks`.
    pub acks: Acks,
    /// `compression.type`.
    pub compression: Compression,
    /// `linger.ms`: how long a non-full batch waits for more records.
    pub linger_ms: u64,
    /// `batch.size`: a batch is sent once its estimated size reaches this.
    pub batch_bytes: usize,
    /// `max.request.size`: largest record, and largest ProduceRequest built.
    pub request_bytes_max: usize,
    /// `buffer.memory`: records buffered (queued and in flight) before `send` waits.
    pub buffer_bytes: usize,
    /// `retries`: attempts after the first for a batch that failed retriably.
    pub retries_max: u32,
    /// `retry.backoff.ms`.
    pub retry_backoff_ms: u64,
    /// `delivery.timeout.ms`: from `send` to the final result, retries included.
    pub delivery_timeout_ms: u64,
    /// `request.timeout.ms`: how long the broker may wait for acks (sent in the request).
    pub request_timeout_ms: i32,
    /// `enable.idempotence`: producer id and sequence numbers, so retries never
    /// duplicate a batch. Needs `acks = All`.
    pub idempotence: bool,
    /// Wall clock for record timestamps the caller did not set.
    pub clock: Clock,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            compression: Compression::None,
            linger_ms: 5,
            batch_bytes: 64 * 1024,
            request_bytes_max: 1024 * 1024,
            buffer_bytes: 32 * 1024 * 1024,
            retries_max: u32::MAX,
            retry_backoff_ms: 100,
            delivery_timeout_ms: 120_000,
            request_timeout_ms: 30_000,
            idempotence: false,
            clock: Clock::system(),
        }
    }
}

/// A record to send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub topic: String,
    /// `None`: murmur2 of the key, or sticky round robin without a key.
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// `None`: the producer's clock at `send`.
    pub timestamp_ms: Option<i64>,
}

impl ProducerRecord {
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            value: Some(value.into()),
            ..ProducerRecord::default()
        }
    }

    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    pub fn with_header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push((key.into(), value));
        self
    }

    pub fn with_timestamp_ms(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// Estimated encoded size of the record inside a batch.
    fn size_bytes(&self) -> usize {
        let field = |bytes: &Option<Bytes>| bytes.as_ref().map_or(0, Bytes::len);
        let headers: usize = self
            .headers
            .iter()
            .map(|(key, value)| key.len() + field(value) + 10)
            .sum();
        RECORD_OVERHEAD_BYTES + field(&self.key) + field(&self.value) + headers
    }
}

/// Where an acknowledged record was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    /// -1 with acks=0 (the broker does not say).
    pub offset: i64,
    /// The broker's LogAppendTime if the topic uses it, else the record's timestamp.
    pub timestamp_ms: i64,
}

/// The result of one `send`, resolved when the record is acknowledged or has failed.
#[derive(Debug)]
pub struct DeliveryFuture {
    result: oneshot::Receiver<Result<RecordMetadata, ClientError>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.result)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(ClientError::Closed)))
    }
}

/// How the accumulator places a record.
#[derive(Clone, Copy, Debug)]
enum Placement {
    Fixed(i32),
    /// Keyless: the topic's current sticky partition among `partition_count`.
    Sticky {
        partition_count: usize,
    },
}

struct QueuedRecord {
    input: RecordInput,
    /// Buffer permits to give back when the record completes.
    permits: u32,
    seq: u64,
    reply: oneshot::Sender<Result<RecordMetadata, ClientError>>,
}

enum Command {
    Enqueue {
        topic: String,
        placement: Placement,
        input: RecordInput,
        size_bytes: usize,
        permits: u32,
        reply: oneshot::Sender<Result<RecordMetadata, ClientError>>,
    },
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// Sends records. Cheap to clone; all clones share one background task, which runs
/// until `close` or until every clone is dropped (then it sends what is queued first).
#[derive(Clone)]
pub struct Producer {
    cluster: Arc<Cluster>,
    config: Arc<ProducerConfig>,
    commands: mpsc::UnboundedSender<Command>,
    buffer: Arc<Semaphore>,
    buffer_permits_max: u32,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.config)
            .finish()
    }
}

impl Producer {
    /// Starts a producer on `cluster`. Spawns its background task.
    pub fn new(cluster: Arc<Cluster>, config: ProducerConfig) -> Producer {
        let mut config = config;
        config.request_bytes_max = config
            .request_bytes_max
            .clamp(1024, PRODUCER_REQUEST_BYTES_MAX);
        config.batch_bytes = config.batch_bytes.clamp(1, config.request_bytes_max);
        config.buffer_bytes = config
            .buffer_bytes
            .clamp(config.request_bytes_max, PRODUCER_BUFFER_BYTES_MAX);
        let buffer_permits_max =
            u32::try_from(config.buffer_bytes.min(Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        let buffer = Arc::new(Semaphore::new(buffer_permits_max as usize));
        let config = Arc::new(config);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (events, events_rx) = mpsc::unbounded_channel();
        let accumulator = Accumulator {
            cluster: cluster.clone(),
            config: config.clone(),
            buffer: buffer.clone(),
            queues: BTreeMap::new(),
            sticky: BTreeMap::new(),
            events,
            flush_waiters: Vec::new(),
            close_waiters: Vec::new(),
            closing: false,
            next_seq: 0,
            incomplete: BTreeSet::new(),
            refresh_in_flight: false,
            identity: None,
            identity_in_flight: false,
            identity_retry_at: None,
            sequences: BTreeMap::new(),
        };
        tokio::spawn(accumulator.run(commands_rx, events_rx));
        Producer {
            cluster,
            config,
            commands,
            buffer,
            buffer_permits_max,
        }
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// Queues `record` and returns a future of its result. Waits for metadata if the
    /// topic's partition count is unknown, and for buffer space if the buffer is full.
    /// Fails at once on an oversized record, an unknown topic or a bad partition.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ClientError> {
        if self.config.idempotence && self.config.acks != Acks::All {
            return Err(ClientError::InvalidArgument(
                "an idempotent producer needs acks=all".to_string(),
            ));
        }
        let size_bytes = record.size_bytes();
        if size_bytes + BATCH_OVERHEAD_BYTES > self.config.request_bytes_max {
            return Err(ClientError::kafka(
                code::MESSAGE_TOO_LARGE,
                Some(format!(
                    "record of about {size_bytes} bytes exceeds request_bytes_max {}",
                    self.config.request_bytes_max
                )),
                format!("produce to {}", record.topic),
            ));
        }
        let partition_count = self.cluster.partition_count(&record.topic).await?;
        let placement = match (record.partition, &record.key) {
            (Some(partition), _) => {
                if partition < 0 || partition as usize >= partition_count {
                    return Err(ClientError::InvalidArgument(format!(
                        "partition {partition} of {} which has {partition_count}",
                        record.topic
                    )));
                }
                Placement::Fixed(partition)
            }
            (None, Some(key)) => Placement::Fixed(partition_for_key(key, partition_count)),
            (None, None) => Placement::Sticky { partition_count },
        };
        let permits = u32::try_from(size_bytes)
            .unwrap_or(u32::MAX)
            .min(self.buffer_permits_max);
        self.buffer
            .acquire_many(permits)
            .await
            .map_err(|_| ClientError::Closed)?
            .forget();
        let input = RecordInput {
            timestamp_ms: record
                .timestamp_ms
                .unwrap_or_else(|| self.config.clock.now_ms()),
            key: record.key,
            value: record.value,
            headers: record.headers,
        };
        let (reply, result) = oneshot::channel();
        let command = Command::Enqueue {
            topic: record.topic,
            placement,
            input,
            size_bytes,
            permits,
            reply,
        };
        if self.commands.send(command).is_err() {
            self.buffer.add_permits(permits as usize);
            return Err(ClientError::Closed);
        }
        Ok(DeliveryFuture { result })
    }

    /// `send`, then wait for the result.
    pub async fn send_and_wait(
        &self,
        record: ProducerRecord,
    ) -> Result<RecordMetadata, ClientError> {
        self.send(record).await?.await
    }

    /// Sends every queued record at once (ignoring `linger_ms`) and waits until every
    /// record queued before the call has its result.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// Flushes, then stops the background task; later `send`s fail with `Closed`.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Close(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

struct Batch {
    records: Vec<QueuedRecord>,
    size_bytes: usize,
    created_at: Instant,
    /// Sends so far.
    attempts: u32,
    retry_at: Option<Instant>,
    last_error: Option<ClientError>,
    /// Encoded on first send; every retry resends these bytes.
    encoded: Option<Bytes>,
    /// The producer id and base sequence stamped in `encoded` (idempotence only).
    stamp: Option<(i64, i32)>,
    /// No more records may join (it was sent, or the next record did not fit).
    sealed: bool,
}

impl Batch {
    fn new(now: Instant) -> Batch {
        Batch {
            records: Vec::new(),
            size_bytes: BATCH_OVERHEAD_BYTES,
            created_at: now,
            attempts: 0,
            retry_at: None,
            last_error: None,
            encoded: None,
            stamp: None,
            sealed: false,
        }
    }

    /// Encodes the batch on its first send, stamped with `stamp` (producer id, base
    /// sequence) if given; later calls return the same bytes.
    fn encode(
        &mut self,
        compression: Compression,
        stamp: Option<(i64, i32)>,
    ) -> Result<Bytes, ClientError> {
        if let Some(encoded) = &self.encoded {
            return Ok(encoded.clone());
        }
        let mut builder = RecordBatchBuilder::new(compression);
        if let Some((producer_id, sequence)) = stamp {
            builder = builder.producer(
                ProducerId(producer_id),
                ProducerEpoch(0),
                Sequence(sequence),
            );
        }
        for record in &self.records {
            builder.append(record.input.clone());
        }
        let encoded = builder
            .build()
            .map_err(|error| ClientError::Encode(error.to_string()))?;
        self.encoded = Some(encoded.clone());
        self.stamp = stamp;
        Ok(encoded)
    }
}

#[derive(Default)]
struct PartitionQueue {
    batches: VecDeque<Batch>,
    in_flight: bool,
}

enum Event {
    /// A batch came back from a produce request: (base offset, log append time) or why not.
    Completed {
        tp: TopicPartition,
        batch: Box<Batch>,
        outcome: Result<(i64, i64), ClientError>,
    },
    MetadataRefreshed,
    /// InitProducerId answered: the producer id, or why not.
    Identity(Result<i64, ClientError>),
}

/// The producer's background task: sole owner of every queue.
struct Accumulator {
    cluster: Arc<Cluster>,
    config: Arc<ProducerConfig>,
    buffer: Arc<Semaphore>,
    queues: BTreeMap<TopicPartition, PartitionQueue>,
    /// topic -> (sticky partition, partition count) for keyless records.
    sticky: BTreeMap<String, (i32, usize)>,
    events: mpsc::UnboundedSender<Event>,
    flush_waiters: Vec<(u64, oneshot::Sender<()>)>,
    close_waiters: Vec<oneshot::Sender<()>>,
    closing: bool,
    next_seq: u64,
    /// Sequence numbers of records without a result yet.
    incomplete: BTreeSet<u64>,
    refresh_in_flight: bool,
    /// Idempotence: the producer id batches are stamped with, once InitProducerId gave
    /// it; the request for it, and when to ask again after a failure.
    identity: Option<i64>,
    identity_in_flight: bool,
    identity_retry_at: Option<Instant>,
    /// Idempotence: the next sequence number per partition under `identity`.
    sequences: BTreeMap<TopicPartition, i32>,
}

impl Accumulator {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut events: mpsc::UnboundedReceiver<Event>,
    ) {
        let mut commands_open = true;
        loop {
            let now = Instant::now();
            self.expire(now);
            self.drain(now);
            self.notify_flush_waiters();
            if self.closing && self.incomplete.is_empty() {
                for waiter in self.close_waiters.drain(..) {
                    let _ = waiter.send(());
                }
                return;
            }
            let wakeup = self.next_wakeup();
            tokio::select! {
                command = commands.recv(), if commands_open => match command {
                    Some(command) => self.handle(command),
                    None => {
                        commands_open = false;
                        self.closing = true;
                    }
                },
                Some(event) = events.recv() => self.handle_event(event),
                _ = tokio::time::sleep_until(wakeup.unwrap_or(now)), if wakeup.is_some() => {}
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Enqueue {
                topic,
                placement,
                input,
                size_bytes,
                permits,
                reply,
            } => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.incomplete.insert(seq);
                let record = QueuedRecord {
                    input,
                    permits,
                    seq,
                    reply,
                };
                self.enqueue(topic, placement, record, size_bytes);
            }
            Command::Flush(done) => {
                // Everything enqueued so far: sequence numbers below next_seq.
                self.flush_waiters.push((self.next_seq, done));
            }
            Command::Close(done) => {
                self.closing = true;
                self.close_waiters.push(done);
            }
        }
    }

    fn enqueue(
        &mut self,
        topic: String,
        placement: Placement,
        record: QueuedRecord,
        size_bytes: usize,
    ) {
        let batch_bytes = self.config.batch_bytes;
        let fits = |queue: Option<&PartitionQueue>| {
            queue
                .and_then(|queue| queue.batches.back())
                .is_some_and(|batch| !batch.sealed && batch.size_bytes + size_bytes <= batch_bytes)
        };
        let partition = match placement {
            Placement::Fixed(partition) => partition,
            Placement::Sticky { partition_count } => {
                let count = partition_count.max(1);
                let entry = self.sticky.entry(topic.clone()).or_insert((0, count));
                entry.1 = count;
                let mut partition = entry.0 % count as i32;
                let tp = TopicPartition::new(topic.clone(), partition);
                let has_open = self
                    .queues
                    .get(&tp)
                    .and_then(|queue| queue.batches.back())
                    .is_some_and(|batch| !batch.sealed);
                if has_open && !fits(self.queues.get(&tp)) {
                    // The sticky partition's batch is full: move on, as the Java
                    // client's sticky partitioner does when it starts a new batch.
                    partition = (partition + 1) % count as i32;
                }
                self.sticky.insert(topic.clone(), (partition, count));
                partition
            }
        };
        let tp = TopicPartition::new(topic, partition);
        let now = Instant::now();
        let fits_open = fits(self.queues.get(&tp));
        let queue = self.queues.entry(tp).or_default();
        if !fits_open {
            if let Some(open) = queue.batches.back_mut() {
                open.sealed = true;
            }
            queue.batches.push_back(Batch::new(now));
        }
        let batch = queue
            .batches
            .back_mut()
            .expect("a batch was just ensured at the back");
        batch.size_bytes += size_bytes;
        batch.records.push(record);
    }

    fn flushing(&self) -> bool {
        self.closing || !self.flush_waiters.is_empty()
    }

    /// When the front batch of `queue` may be sent.
    fn ready_at(&self, queue: &PartitionQueue) -> Option<Instant> {
        if queue.in_flight || !self.has_identity() {
            return None;
        }
        let front = queue.batches.front()?;
        let full = front.sealed || front.size_bytes >= self.config.batch_bytes;
        let mut ready = if full || self.flushing() {
            front.created_at
        } else {
            front.created_at + Duration::from_millis(self.config.linger_ms)
        };
        if let Some(retry_at) = front.retry_at {
            ready = ready.max(retry_at);
        }
        Some(ready)
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let delivery_timeout = Duration::from_millis(self.config.delivery_timeout_ms);
        if !self.has_identity() {
            // Waiting for a producer id: wake to ask again, or to expire batches.
            let expiry = self
                .queues
                .values()
                .filter(|queue| !queue.in_flight)
                .filter_map(|queue| Some(queue.batches.front()?.created_at + delivery_timeout));
            let retry = self.identity_retry_at.filter(|_| !self.identity_in_flight);
            return expiry.chain(retry).min();
        }
        self.queues
            .values()
            .filter_map(|queue| {
                let ready = self.ready_at(queue)?;
                let expiry = queue.batches.front()?.created_at + delivery_timeout;
                Some(ready.min(expiry))
            })
            .min()
    }

    /// Fails queued (not in-flight) batches older than the delivery timeout.
    fn expire(&mut self, now: Instant) {
        let delivery_timeout = Duration::from_millis(self.config.delivery_timeout_ms);
        let mut expired = Vec::new();
        for queue in self.queues.values_mut() {
            if queue.in_flight {
                continue;
            }
            while queue
                .batches
                .front()
                .is_some_and(|batch| now >= batch.created_at + delivery_timeout)
            {
                if let Some(batch) = queue.batches.pop_front() {
                    expired.push(batch);
                }
            }
        }
        for batch in expired {
            let error = self.delivery_timeout(&batch);
            self.complete(batch, "", -1, Err(error));
        }
    }

    fn delivery_timeout(&self, batch: &Batch) -> ClientError {
        ClientError::DeliveryTimeout {
            timeout_ms: self.config.delivery_timeout_ms,
            last_error: batch
                .last_error
                .as_ref()
                .map_or_else(|| "never sent".to_string(), ToString::to_string),
        }
    }

    /// Takes every ready front batch whose leader is known and sends them, one
    /// ProduceRequest per leader (split at `request_bytes_max`).
    fn drain(&mut self, now: Instant) {
        if !self.has_identity() {
            self.request_identity(now);
            return;
        }
        let mut by_node: BTreeMap<NodeId, (Vec<(TopicPartition, Batch)>, usize)> = BTreeMap::new();
        let mut missing_leader: BTreeSet<String> = BTreeSet::new();
        let mut failed = Vec::new();
        let ready: Vec<TopicPartition> = self
            .queues
            .iter()
            .filter(|(_, queue)| self.ready_at(queue).is_some_and(|ready| ready <= now))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in ready {
            let Some((leader, _epoch)) = self.cluster.cached_leader(&tp) else {
                missing_leader.insert(tp.topic.clone());
                if let Some(front) = self.queues.get_mut(&tp).and_then(|q| q.batches.front_mut()) {
                    front.retry_at =
                        Some(now + Duration::from_millis(self.config.retry_backoff_ms));
                }
                continue;
            };
            let Some(queue) = self.queues.get_mut(&tp) else {
                continue;
            };
            let Some(mut batch) = queue.batches.pop_front() else {
                continue;
            };
            batch.sealed = true;
            let stamp = match (self.identity, &batch.encoded) {
                (Some(producer_id), None) => {
                    let next = self.sequences.entry(tp.clone()).or_insert(0);
                    let sequence = *next;
                    let records = i32::try_from(batch.records.len()).unwrap_or(i32::MAX);
                    *next = increment_sequence(sequence, records);
                    Some((producer_id, sequence))
                }
                _ => None,
            };
            if let Err(error) = batch.encode(self.config.compression, stamp) {
                failed.push((batch, error));
                continue;
            }
            queue.in_flight = true;
            if let Some((partition, count)) = self.sticky.get(&tp.topic).copied() {
                if partition == tp.partition {
                    self.sticky.insert(
                        tp.topic.clone(),
                        ((partition + 1) % count.max(1) as i32, count),
                    );
                }
            }
            let batch_bytes = batch.encoded.as_ref().map_or(0, Bytes::len);
            let (batches, request_bytes) = by_node.entry(leader).or_default();
            if !batches.is_empty() && *request_bytes + batch_bytes > self.config.request_bytes_max {
                let full = std::mem::take(batches);
                *request_bytes = 0;
                self.spawn_request(leader, full);
            }
            let (batches, request_bytes) = by_node.entry(leader).or_default();
            *request_bytes += batch_bytes;
            batches.push((tp, batch));
        }
        for (batch, error) in failed {
            self.complete(batch, "", -1, Err(error));
        }
        for (node, (batches, _)) in by_node {
            if !batches.is_empty() {
                self.spawn_request(node, batches);
            }
        }
        if !missing_leader.is_empty() && !self.refresh_in_flight {
            self.refresh_in_flight = true;
            let cluster = self.cluster.clone();
            let events = self.events.clone();
            let topics: Vec<String> = missing_leader.into_iter().collect();
            tokio::spawn(async move {
                let _ = cluster.refresh_metadata(Some(&topics)).await;
                let _ = events.send(Event::MetadataRefreshed);
            });
        }
    }

    fn spawn_request(&self, node: NodeId, batches: Vec<(TopicPartition, Batch)>) {
        let cluster = self.cluster.clone();
        let events = self.events.clone();
        let acks = self.config.acks;
        let timeout_ms = self.config.request_timeout_ms;
        tokio::spawn(async move {
            let mut outcomes = produce(&cluster, node, acks, timeout_ms, &batches).await;
            // Refresh leadership before the batches come back for their retry, so the
            // retry goes to the new leader.
            let mut stale: BTreeSet<String> = BTreeSet::new();
            for (tp, outcome) in &outcomes {
                if let Err(error) = outcome {
                    if error.needs_metadata_refresh() {
                        cluster.invalidate_leader(tp);
                        stale.insert(tp.topic.clone());
                    }
                }
            }
            if !stale.is_empty() {
                let topics: Vec<String> = stale.into_iter().collect();
                let _ = cluster.refresh_metadata(Some(&topics)).await;
            }
            for (tp, batch) in batches {
                let outcome = outcomes.remove(&tp).unwrap_or_else(|| {
                    Err(ClientError::Protocol {
                        addr: format!("node {}", node.0),
                        detail: format!("produce response has no result for {tp}"),
                    })
                });
                let _ = events.send(Event::Completed {
                    tp,
                    batch: Box::new(batch),
                    outcome,
                });
            }
        });
    }

    /// Idempotence without a producer id yet: asks for one (once at a time, after the
    /// backoff if the last attempt failed) when there is something to send.
    fn request_identity(&mut self, now: Instant) {
        let waiting = self.queues.values().any(|queue| !queue.batches.is_empty());
        if self.identity_in_flight || !waiting || self.identity_retry_at.is_some_and(|at| now < at)
        {
            return;
        }
        self.identity_in_flight = true;
        let cluster = self.cluster.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let _ = events.send(Event::Identity(init_producer_id(&cluster).await));
        });
    }

    fn has_identity(&self) -> bool {
        !self.config.idempotence || self.identity.is_some()
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::MetadataRefreshed => self.refresh_in_flight = false,
            Event::Identity(outcome) => {
                self.identity_in_flight = false;
                match outcome {
                    Ok(producer_id) => {
                        self.identity = Some(producer_id);
                        self.identity_retry_at = None;
                        self.sequences.clear();
                    }
                    Err(error) if error.is_retriable() => {
                        self.identity_retry_at = Some(
                            Instant::now() + Duration::from_millis(self.config.retry_backoff_ms),
                        );
                    }
                    Err(error) => {
                        // Nothing can be sent idempotently: fail what waits (not what is
                        // in flight), and ask again only for later records.
                        let mut failed = Vec::new();
                        for queue in self.queues.values_mut() {
                            if !queue.in_flight {
                                failed.extend(queue.batches.drain(..));
                            }
                        }
                        for batch in failed {
                            self.complete(batch, "", -1, Err(error.clone()));
                        }
                    }
                }
            }
            Event::Completed { tp, batch, outcome } => {
                let mut batch = *batch;
                let Some(queue) = self.queues.get_mut(&tp) else {
                    return;
                };
                queue.in_flight = false;
                // The broker already has this batch but cannot say where (Kafka answers
                // so when the original is too old to look up): delivered, offset unknown.
                let outcome = match outcome {
                    Err(ClientError::Kafka { code, .. })
                        if code == code::DUPLICATE_SEQUENCE_NUMBER && batch.stamp.is_some() =>
                    {
                        Ok((-1, -1))
                    }
                    other => other,
                };
                match outcome {
                    Ok((base_offset, log_append_time_ms)) => {
                        self.complete(
                            batch,
                            &tp.topic,
                            tp.partition,
                            Ok((base_offset, log_append_time_ms)),
                        );
                    }
                    Err(error) => {
                        let now = Instant::now();
                        batch.attempts += 1;
                        let expired = now
                            >= batch.created_at
                                + Duration::from_millis(self.config.delivery_timeout_ms);
                        let retries_left = batch.attempts <= self.config.retries_max;
                        if error.is_retriable() && retries_left && !expired {
                            batch.retry_at =
                                Some(now + Duration::from_millis(self.config.retry_backoff_ms));
                            batch.last_error = Some(error);
                            queue.batches.push_front(batch);
                        } else if error.is_retriable() && expired {
                            batch.last_error = Some(error);
                            let timeout = self.delivery_timeout(&batch);
                            self.complete(batch, &tp.topic, tp.partition, Err(timeout));
                        } else {
                            self.complete(batch, &tp.topic, tp.partition, Err(error));
                        }
                    }
                }
            }
        }
    }

    /// Resolves every record of `batch` and returns its buffer space.
    fn complete(
        &mut self,
        batch: Batch,
        topic: &str,
        partition: i32,
        outcome: Result<(i64, i64), ClientError>,
    ) {
        if let (Err(_), Some((producer_id, _))) = (&outcome, batch.stamp) {
            if self.identity == Some(producer_id) {
                // The broker may or may not hold this batch, so the next sequence of its
                // partition is unknown: start over under a fresh producer id.
                self.identity = None;
                self.sequences.clear();
            }
        }
        for (index, record) in batch.records.into_iter().enumerate() {
            self.incomplete.remove(&record.seq);
            self.buffer.add_permits(record.permits as usize);
            let result = match &outcome {
                Ok((base_offset, log_append_time_ms)) => Ok(RecordMetadata {
                    topic: topic.to_string(),
                    partition,
                    offset: if *base_offset >= 0 {
                        base_offset + index as i64
                    } else {
                        -1
                    },
                    timestamp_ms: if *log_append_time_ms >= 0 {
                        *log_append_time_ms
                    } else {
                        record.input.timestamp_ms
                    },
                }),
                Err(error) => Err(error.clone()),
            };
            let _ = record.reply.send(result);
        }
    }

    fn notify_flush_waiters(&mut self) {
        let oldest_incomplete = self.incomplete.first().copied().unwrap_or(u64::MAX);
        let (done, waiting): (Vec<_>, Vec<_>) = self
            .flush_waiters
            .drain(..)
            .partition(|(upto, _)| oldest_incomplete >= *upto);
        self.flush_waiters = waiting;
        for (_, waiter) in done {
            let _ = waiter.send(());
        }
    }
}

/// Asks any broker for a producer id (InitProducerId without a transactional id).
async fn init_producer_id(cluster: &Cluster) -> Result<i64, ClientError> {
    let connection = cluster.any_connection().await?;
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(-1)
        .with_producer_id(KafkaProducerId(-1))
        .with_producer_epoch(-1);
    let response = connection.send(&request).await?;
    if response.error_code != code::NONE {
        return Err(ClientError::kafka(
            response.error_code,
            None,
            "InitProducerId".to_string(),
        ));
    }
    Ok(response.producer_id.0)
}

/// Sends one ProduceRequest with `batches` to `node`; returns a result per partition.
async fn produce(
    cluster: &Cluster,
    node: NodeId,
    acks: Acks,
    timeout_ms: i32,
    batches: &[(TopicPartition, Batch)],
) -> BTreeMap<TopicPartition, Result<(i64, i64), ClientError>> {
    let all = |error: ClientError| {
        batches
            .iter()
            .map(|(tp, _)| (tp.clone(), Err(error.clone())))
            .collect()
    };
    let connection = match cluster.connection_to_node(node).await {
        Ok(connection) => connection,
        Err(error) => return all(error),
    };
    let mut topics: BTreeMap<&str, Vec<PartitionProduceData>> = BTreeMap::new();
    for (tp, batch) in batches {
        topics.entry(tp.topic.as_str()).or_default().push(
            PartitionProduceData::default()
                .with_index(tp.partition)
                .with_records(batch.encoded.clone()),
        );
    }
    let request = ProduceRequest::default()
        .with_acks(acks.as_i16())
        .with_timeout_ms(timeout_ms)
        .with_topic_data(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partition_data(partitions)
                })
                .collect(),
        );
    if acks == Acks::None {
        return match connection.send_without_response(&request).await {
            Ok(()) => batches
                .iter()
                .map(|(tp, _)| (tp.clone(), Ok((-1, -1))))
                .collect(),
            Err(error) => all(error),
        };
    }
    // The broker may wait up to `timeout_ms` for acks; give the network a second more.
    let wait_ms = u64::try_from(timeout_ms).unwrap_or(0) + 1_000;
    let response = match connection.send_with_timeout(&request, wait_ms).await {
        Ok(response) => response,
        Err(error) => return all(error),
    };
    let mut outcomes = BTreeMap::new();
    for topic in &response.responses {
        for partition in &topic.partition_responses {
            let tp = TopicPartition::new(topic.name.0.to_string(), partition.index);
            let outcome = if partition.error_code == code::NONE {
                Ok((partition.base_offset, partition.log_append_time_ms))
            } else {
                Err(ClientError::kafka(
                    partition.error_code,
                    partition.error_message.as_ref().map(|m| m.to_string()),
                    format!("produce to {tp}"),
                ))
            };
            outcomes.insert(tp, outcome);
        }
    }
    outcomes
}
