//! One simulated run: a (scenario, seed) pair executed inside a fresh madsim runtime.
//!
//! Owns the simulated world: one madsim node per broker (IP 10.0.0.N) running the real
//! `skald::broker::Node` on its own `SimDisk`, which outlives node restarts; a proxy node
//! carrying every client connection through a `FaultyProxy` per broker (brokers advertise
//! the proxy's address, so clients never bypass it); a client node running the
//! workload through `skald::client`; the fault injector on the main task; then healing,
//! the final drain and the checks. Everything a run does is recorded in a `Trace` and a
//! jepsen history, whose combined hash identifies the run.
//!
//! Must never: draw randomness from anything but the run seed (the seeded `Rng` here,
//! madsim's scheduler, the disks' and proxies' own seeds), iterate an unordered
//! collection, or run two seeds in one process (madsim issue #174).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use madsim::runtime::{Handle, NodeHandle as SimNode, Runtime};
use skald::base::Rng;
use skald::broker::{Node, NodeConfig};
use skald::client::consumer::{list_offsets, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use skald::client::errors::code;
use skald::client::{
    Acks as ClientAcks, Admin, ClientConfig, Cluster, Consumer, ConsumerConfig, ConsumerRecord,
    NewTopic, OffsetResetPolicy, Producer, ProducerConfig, ProducerRecord, StartOffset,
    TopicPartition,
};
use skald::io::sim::{FaultConfig, OneShotFault, SimDisk};
use skald::io::{Clock, Disk};
use skald::net::faulty::{FaultHandle, FaultyProxy, TransportFaults};
use skald_jepsen::history::{Body, Key, OpType, PollRecords, ProcessId, Value};
use skald_jepsen::scenario::{Acks, Fault, FaultKind, Scenario};
use tokio::time::Instant;

use crate::outcome::{check_run, Recorder, RunOutcome};

const BROKER_PORT: u16 = 9092;
const PROXY_PORT_BASE: u16 = 9100;
/// Pause between the end of the workload and the heal, so in-flight requests land.
const SETTLE_MS: u64 = 1_000;
/// How long the workload tasks get to finish their last operation.
const WORKLOAD_GRACE_MS: u64 = 1_500;
/// Shortest random fault duration.
const RANDOM_FAULT_MS_MIN: u64 = 100;
/// Values are `process * VALUE_PROCESS_STRIDE + n`.
const VALUE_PROCESS_STRIDE: i64 = 1_000_000_000;
/// Consumers' long-poll wait.
const POLL_WAIT_MS: i32 = 100;
/// Simulated time beyond the scenario's own bounds before madsim stops the run.
const TIME_LIMIT_SLACK_MS: u64 = 60_000;
/// Polls a drain may stay at one unreadable offset before stepping over it (only in
/// scenarios whose faults can destroy data at rest).
const DRAIN_STALLED_POLLS_MAX: u32 = 2;
/// How often disk operations and proxied frames move into the trace (virtual ms).
const IO_LOG_INTERVAL_MS: u64 = 20;
/// Attempts to create the scenario's topics before the run fails.
const SETUP_ATTEMPTS_MAX: u32 = 50;

fn broker_ip(node: u32) -> IpAddr {
    IpAddr::from([10, 0, 0, node as u8])
}

fn proxy_ip() -> IpAddr {
    IpAddr::from([10, 0, 1, 1])
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The value a producer sends and its record bytes.
pub fn encode_value(process: ProcessId, n: u64) -> (Value, String) {
    (
        process as i64 * VALUE_PROCESS_STRIDE + n as i64,
        format!("p{process}-{n}"),
    )
}

/// Parses record bytes back into a value; `None` for anything no producer writes.
pub fn decode_value(bytes: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (process, n) = text.strip_prefix('p')?.split_once('-')?;
    let process: i64 = process.parse().ok()?;
    let n: i64 = n.parse().ok()?;
    if !(0..VALUE_PROCESS_STRIDE).contains(&n) || process < 0 {
        return None;
    }
    Some(process * VALUE_PROCESS_STRIDE + n)
}

#[derive(Clone)]
struct Ctx {
    rec: Recorder,
    start: Instant,
    scenario: Arc<Scenario>,
    seed: u64,
}

impl Ctx {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn record(&self, node: &str, what: impl Into<String>) {
        self.rec.trace.record(self.now_ms(), node, what);
    }

    fn fail(&self, what: String) {
        self.record("check", format!("FAILURE {what}"));
        lock(&self.rec.failures).push(what);
    }

    fn op(&self, op_type: OpType, process: Option<ProcessId>, body: Body) {
        let time_ns = self.start.elapsed().as_nanos() as i64;
        let mut history = lock(&self.rec.history);
        history.at_ns(time_ns);
        history.push(op_type, process, body);
    }

    /// A nemesis action: counted, traced and put in the history as an event.
    fn nemesis(&self, what: String, body: Body) {
        self.rec.faults.fetch_add(1, Ordering::SeqCst);
        self.record("nemesis", what);
        self.op(OpType::Info, None, body);
    }

    fn fault_event(&self, name: &str, detail: String) {
        let body = Body::Fault {
            name: name.to_string(),
            detail: Some(detail.clone()),
        };
        self.nemesis(format!("{name} {detail}"), body);
    }

    fn topic(&self) -> &str {
        &self.scenario.workload.topic
    }

    fn partitions(&self) -> u32 {
        self.scenario
            .topics
            .iter()
            .find(|t| t.name == self.scenario.workload.topic)
            .map_or(1, |t| t.partitions)
    }

    fn client_config(&self) -> ClientConfig {
        let bootstrap = (1..=self.scenario.cluster.nodes)
            .map(|n| SocketAddr::new(proxy_ip(), PROXY_PORT_BASE + n as u16).to_string())
            .collect();
        let mut config = ClientConfig::new(bootstrap);
        config.connection.request_timeout_ms = self.scenario.workload.request_timeout_ms;
        config.connection.connect_timeout_ms = self.scenario.workload.request_timeout_ms;
        config.metadata_wait_ms = self.scenario.workload.request_timeout_ms;
        config
    }

    /// Maps polled records into history records; anything no producer sent is corrupt.
    fn poll_records(&self, process: ProcessId, records: &[ConsumerRecord]) -> PollRecords {
        let mut out = PollRecords::new();
        for record in records {
            if record.topic != self.topic() {
                continue;
            }
            let value = record.value.as_deref().and_then(decode_value);
            let known = value.is_some_and(|v| lock(&self.rec.sent).contains(&v));
            match value {
                Some(value) if known => out
                    .entry(record.partition as Key)
                    .or_default()
                    .push((record.offset, value)),
                _ => self.fail(format!(
                    "corrupt data: process {process} read {:?} at {}-{} offset {}, which no producer sent",
                    record.value.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
                    record.topic,
                    record.partition,
                    record.offset
                )),
            }
        }
        out
    }
}

/// Per-broker handles the fault injector works with.
struct World {
    handle: Handle,
    brokers: Vec<SimNode>,
    disks: Vec<SimDisk>,
    clocks: Vec<Clock>,
    proxies: Vec<FaultHandle>,
    down: BTreeSet<u32>,
    paused: BTreeSet<u32>,
    /// Nodes whose disk had a failed fsync since their last crash (poisoned files).
    poisoned: BTreeSet<u32>,
    clogged: BTreeSet<(u32, u32)>,
    standing_disk: FaultConfig,
    base_disk: FaultConfig,
    rng: Rng,
}

impl World {
    fn index(node: u32) -> usize {
        node as usize - 1
    }

    fn crash(&mut self, ctx: &Ctx, node: u32, why: &str) {
        let i = World::index(node);
        self.handle.kill(self.brokers[i].id());
        self.disks[i].crash();
        self.down.insert(node);
        self.paused.remove(&node);
        self.poisoned.remove(&node);
        ctx.nemesis(
            format!("crash n{node} ({why})"),
            Body::Crash {
                node: format!("n{node}"),
            },
        );
    }

    fn restart(&mut self, ctx: &Ctx, node: u32) {
        if self.down.remove(&node) {
            self.handle.restart(self.brokers[World::index(node)].id());
            ctx.record("nemesis", format!("restart n{node}"));
        }
    }

    fn clog(&mut self, ctx: &Ctx, from: u32, to: u32) {
        let net = madsim::net::NetSim::current();
        net.clog_link(
            self.brokers[World::index(from)].id(),
            self.brokers[World::index(to)].id(),
        );
        self.clogged.insert((from, to));
        ctx.record("nemesis", format!("clog n{from}->n{to}"));
    }

    fn unclog(&mut self, ctx: &Ctx, from: u32, to: u32) {
        if self.clogged.remove(&(from, to)) {
            let net = madsim::net::NetSim::current();
            net.unclog_link(
                self.brokers[World::index(from)].id(),
                self.brokers[World::index(to)].id(),
            );
            ctx.record("nemesis", format!("unclog n{from}->n{to}"));
        }
    }

    /// Applies one fault; returns the follow-up action that heals it, if any.
    fn apply(&mut self, ctx: &Ctx, fault: &Fault) -> Option<(u64, Action)> {
        match fault {
            Fault::Crash { node, down_ms } => {
                if self.down.contains(node) {
                    ctx.record("nemesis", format!("crash n{node} skipped: already down"));
                    return None;
                }
                self.crash(ctx, *node, &format!("down {down_ms} ms"));
                Some((*down_ms, Action::Restart(*node)))
            }
            Fault::Pause { node, pause_ms } => {
                if self.down.contains(node) || self.paused.contains(node) {
                    return None;
                }
                self.handle.pause(self.brokers[World::index(*node)].id());
                self.paused.insert(*node);
                ctx.fault_event("pause", format!("n{node} for {pause_ms} ms"));
                Some((*pause_ms, Action::Resume(*node)))
            }
            Fault::Partition {
                groups,
                heal_after_ms,
            } => {
                ctx.fault_event("partition", format!("{groups:?} for {heal_after_ms} ms"));
                let mut links = Vec::new();
                for (i, a) in groups.iter().enumerate() {
                    for b in groups.iter().skip(i + 1) {
                        for x in a {
                            for y in b {
                                links.push((*x, *y));
                                links.push((*y, *x));
                            }
                        }
                    }
                }
                for (from, to) in &links {
                    self.clog(ctx, *from, *to);
                }
                Some((*heal_after_ms, Action::Unclog(links)))
            }
            Fault::Clog {
                from,
                to,
                heal_after_ms,
            } => {
                ctx.fault_event("clog", format!("n{from}->n{to} for {heal_after_ms} ms"));
                self.clog(ctx, *from, *to);
                Some((*heal_after_ms, Action::Unclog(vec![(*from, *to)])))
            }
            Fault::ClockSkew { node, skew_ms } => {
                self.clocks[World::index(*node)].set_skew_ms(*skew_ms);
                ctx.fault_event("clock_skew", format!("n{node} {skew_ms} ms"));
                None
            }
            Fault::SyncError { node } => {
                self.disks[World::index(*node)].inject(OneShotFault::SyncEio { path: None });
                self.poisoned.insert(*node);
                ctx.fault_event("sync_error", format!("n{node} next fsync fails"));
                None
            }
            Fault::BitFlip { node } => {
                let disk = &self.disks[World::index(*node)];
                let prefix = format!("{}-", ctx.topic());
                let files: Vec<(String, u64)> = disk
                    .durable_snapshot()
                    .into_iter()
                    .filter(|(path, bytes)| {
                        path.starts_with(&prefix) && path.ends_with(".log") && !bytes.is_empty()
                    })
                    .map(|(path, bytes)| (path, bytes.len() as u64))
                    .collect();
                if files.is_empty() {
                    ctx.fault_event("bit_flip", format!("n{node}: no durable segment yet"));
                    return None;
                }
                let (path, len) = &files[self.rng.below(files.len() as u64) as usize];
                let position = self.rng.below(*len);
                disk.inject(OneShotFault::BitFlip {
                    path: path.clone(),
                    position,
                });
                ctx.fault_event("bit_flip", format!("n{node} {path} byte {position}"));
                None
            }
            Fault::DiskFull {
                node,
                heal_after_ms,
            } => {
                let disk = &self.disks[World::index(*node)];
                disk.set_faults(FaultConfig {
                    enospc_rate: 1.0,
                    ..self.standing_disk.clone()
                });
                ctx.fault_event("disk_full", format!("n{node} for {heal_after_ms} ms"));
                Some((*heal_after_ms, Action::DiskUnfull(*node)))
            }
            Fault::ResetConnections => {
                let reset: usize = self.proxies.iter().map(FaultHandle::reset_now).sum();
                ctx.fault_event("reset_connections", format!("{reset} connections"));
                None
            }
        }
    }

    fn act(&mut self, ctx: &Ctx, action: &Action) -> Option<(u64, Action)> {
        match action {
            Action::Fault(fault) => self.apply(ctx, fault),
            Action::Restart(node) => {
                self.restart(ctx, *node);
                None
            }
            Action::Resume(node) => {
                if self.paused.remove(node) {
                    self.handle.resume(self.brokers[World::index(*node)].id());
                    ctx.record("nemesis", format!("resume n{node}"));
                }
                None
            }
            Action::Unclog(links) => {
                for (from, to) in links {
                    self.unclog(ctx, *from, *to);
                }
                None
            }
            Action::DiskUnfull(node) => {
                self.disks[World::index(*node)].set_faults(self.standing_disk.clone());
                ctx.record("nemesis", format!("n{node} disk has space again"));
                None
            }
            Action::NextRandom => None,
        }
    }

    /// Draws the next random fault from the scenario's `faults.random`.
    fn draw(&mut self, ctx: &Ctx) -> Option<(u64, Fault)> {
        let random = ctx.scenario.faults.random.as_ref()?;
        let nodes = ctx.scenario.cluster.nodes;
        let wait = self
            .rng
            .range_inclusive(random.interval_ms_min, random.interval_ms_max);
        let kind = random.kinds[self.rng.below(random.kinds.len() as u64) as usize];
        let node = self.rng.range_inclusive(1, u64::from(nodes)) as u32;
        let duration = self.rng.range_inclusive(
            RANDOM_FAULT_MS_MIN.min(random.duration_ms_max),
            random
                .duration_ms_max
                .max(RANDOM_FAULT_MS_MIN.min(random.duration_ms_max)),
        );
        let other = if nodes > 1 {
            let mut other = self.rng.range_inclusive(1, u64::from(nodes - 1)) as u32;
            if other >= node {
                other += 1;
            }
            Some(other)
        } else {
            None
        };
        let fault = match kind {
            FaultKind::Crash => Fault::Crash {
                node,
                down_ms: duration,
            },
            FaultKind::Pause => Fault::Pause {
                node,
                pause_ms: duration,
            },
            FaultKind::Partition => Fault::Partition {
                groups: vec![
                    vec![node],
                    (1..=nodes).filter(|n| *n != node).collect::<Vec<_>>(),
                ],
                heal_after_ms: duration,
            },
            FaultKind::Clog => Fault::Clog {
                from: node,
                to: other.unwrap_or(node),
                heal_after_ms: duration,
            },
            FaultKind::ClockSkew => Fault::ClockSkew {
                node,
                skew_ms: duration as i64 - (random.duration_ms_max / 2) as i64,
            },
            FaultKind::SyncError => Fault::SyncError { node },
            FaultKind::BitFlip => Fault::BitFlip { node },
            FaultKind::DiskFull => Fault::DiskFull {
                node,
                heal_after_ms: duration,
            },
            FaultKind::ResetConnections => Fault::ResetConnections,
        };
        // Partition and clog need two nodes; with one, draw a crash-free no-op instead.
        if nodes == 1 && matches!(kind, FaultKind::Partition | FaultKind::Clog) {
            return Some((wait, Fault::ResetConnections));
        }
        Some((wait, fault))
    }

    /// Heals everything: rates off, links unclogged, paused nodes resumed, clocks
    /// unskewed, nodes with poisoned files crashed and restarted, dead nodes restarted.
    fn heal(&mut self, ctx: &Ctx) {
        ctx.record("nemesis", "heal");
        for disk in &self.disks {
            disk.set_faults(self.base_disk.clone());
        }
        for proxy in &self.proxies {
            proxy.set_faults(TransportFaults::default());
        }
        for (from, to) in self.clogged.clone() {
            self.unclog(ctx, from, to);
        }
        for node in std::mem::take(&mut self.paused) {
            self.handle.resume(self.brokers[World::index(node)].id());
            ctx.record("nemesis", format!("resume n{node}"));
        }
        for clock in &self.clocks {
            clock.set_skew_ms(0);
        }
        for node in self.poisoned.clone() {
            if !self.down.contains(&node) {
                self.crash(ctx, node, "heal: clear the failed fsync");
            }
        }
        for node in self.down.clone() {
            self.restart(ctx, node);
        }
    }
}

/// What the injector's timeline holds.
#[derive(Clone, Debug)]
enum Action {
    Fault(Fault),
    Restart(u32),
    Resume(u32),
    Unclog(Vec<(u32, u32)>),
    DiskUnfull(u32),
    NextRandom,
}

fn disk_config(scenario: &Scenario, standing: bool) -> FaultConfig {
    let rates = &scenario.faults.disk;
    let mut config = FaultConfig {
        torn_write_rate: rates.torn_write_rate,
        // fsync takes virtual time, so appends race with a flush as on a real disk.
        sync_latency_ms: rates.sync_latency_ms,
        ..FaultConfig::default()
    };
    if standing {
        config.read_eio_rate = rates.read_eio_rate;
        config.write_eio_rate = rates.write_eio_rate;
        config.sync_eio_rate = rates.sync_eio_rate;
        config.bit_flip_rate = rates.bit_flip_rate;
        config.short_read_rate = rates.short_read_rate;
        config.misdirected_write_rate = rates.misdirected_write_rate;
        config.latency_rate = rates.latency_rate;
        config.latency_ms_max = rates.latency_ms_max;
    }
    config
}

fn transport_faults(scenario: &Scenario) -> TransportFaults {
    let rates = &scenario.faults.transport;
    TransportFaults {
        drop_request_after_apply_rate: rates.drop_request_after_apply_rate,
        drop_response_rate: rates.drop_response_rate,
        duplicate_request_rate: rates.duplicate_request_rate,
        delay_rate: rates.delay_rate,
        delay_ms_max: rates.delay_ms_max,
        reset_rate: rates.reset_rate,
    }
}

/// One broker life: start the real node on the node's disk and serve until killed.
async fn broker_life(ctx: Ctx, node: u32, disk: SimDisk, clock: Clock, lives: Arc<AtomicU64>) {
    let life = lives.fetch_add(1, Ordering::SeqCst);
    let name = format!("n{node}");
    let mut config = NodeConfig::new(node as i32, SocketAddr::new(broker_ip(node), BROKER_PORT));
    config.advertised_host = Some(proxy_ip().to_string());
    config.advertised_port = Some(PROXY_PORT_BASE + node as u16);
    for (key, value) in &ctx.scenario.cluster.broker_configs {
        if let Err(e) = config.set(key, value) {
            ctx.fail(format!("broker config {key}={value}: {e}"));
        }
    }
    let rng = Rng::with_seed(ctx.seed ^ (u64::from(node) << 40) ^ life.wrapping_mul(0x9E37));
    let disk: Arc<dyn Disk> = Arc::new(disk);
    ctx.record(&name, format!("starting (life {life})"));
    match Node::start(config, disk, clock, rng).await {
        Ok(handle) => {
            ctx.record(&name, "serving");
            std::future::pending::<()>().await;
            drop(handle);
        }
        Err(e) => {
            ctx.fail(format!("n{node} failed to start (life {life}): {e}"));
        }
    }
}

/// Creates the scenario's topics through the client's admin.
async fn create_topics(ctx: &Ctx) -> Result<(), String> {
    let cluster = Cluster::new(ctx.client_config());
    let admin = Admin::new(cluster);
    let mut last_error = String::new();
    for _ in 0..SETUP_ATTEMPTS_MAX {
        let topics: Vec<NewTopic> = ctx
            .scenario
            .topics
            .iter()
            .map(|t| {
                let mut topic =
                    NewTopic::new(&t.name, t.partitions as i32, t.replication_factor as i16);
                topic.configs = t.configs.clone();
                topic
            })
            .collect();
        match admin.create_topics(&topics, 10_000, false).await {
            Ok(results) => {
                let errors: Vec<String> = results
                    .iter()
                    .filter_map(|(name, r)| match r {
                        Err(e) if e.kafka_code() != Some(code::TOPIC_ALREADY_EXISTS) => {
                            Some(format!("{name}: {e}"))
                        }
                        _ => None,
                    })
                    .collect();
                if errors.is_empty() {
                    ctx.record("client", "topics created");
                    return Ok(());
                }
                last_error = errors.join("; ");
            }
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("cannot create topics: {last_error}"))
}

fn producer_config(ctx: &Ctx) -> ProducerConfig {
    let workload = &ctx.scenario.workload;
    ProducerConfig {
        acks: match workload.acks {
            Acks::None => ClientAcks::None,
            Acks::Leader => ClientAcks::Leader,
            Acks::All => ClientAcks::All,
        },
        linger_ms: 0,
        retries_max: workload.retries,
        retry_backoff_ms: 100,
        request_timeout_ms: workload.request_timeout_ms as i32,
        delivery_timeout_ms: op_timeout_ms(ctx),
        idempotence: workload.idempotence,
        ..ProducerConfig::default()
    }
}

/// How long one send may take, retries included.
fn op_timeout_ms(ctx: &Ctx) -> u64 {
    let workload = &ctx.scenario.workload;
    (workload.request_timeout_ms + 100) * (u64::from(workload.retries) + 1)
}

async fn producer_task(ctx: Ctx, process: ProcessId, end: Instant) {
    let cluster = Cluster::new(ctx.client_config());
    let producer = Producer::new(cluster, producer_config(&ctx));
    let workload = &ctx.scenario.workload;
    let interval_ms =
        (u64::from(workload.producers) * 1000 / u64::from(workload.rate_per_second.max(1))).max(1);
    let mut rng = Rng::with_seed(ctx.seed ^ (process << 48) ^ 0x5e4d);
    let partitions = u64::from(ctx.partitions());
    let op_timeout = Duration::from_millis(op_timeout_ms(&ctx) + 500);
    let mut n = 0u64;
    while Instant::now() < end {
        let key = rng.below(partitions);
        let (value, text) = encode_value(process, n);
        n += 1;
        lock(&ctx.rec.sent).insert(value);
        ctx.op(OpType::Invoke, Some(process), send_body(key, value, None));
        let record = ProducerRecord::new(ctx.topic(), Bytes::from(text)).with_partition(key as i32);
        let result = tokio::time::timeout(op_timeout, producer.send_and_wait(record)).await;
        match result {
            Ok(Ok(meta)) if workload.acks != Acks::None && meta.partition as u64 == key => {
                ctx.op(
                    OpType::Ok,
                    Some(process),
                    send_body(key, value, Some(meta.offset)),
                );
            }
            Ok(Ok(meta)) => {
                if meta.partition as u64 != key {
                    ctx.fail(format!(
                        "send of {value} to partition {key} acked for partition {}",
                        meta.partition
                    ));
                }
                ctx.op(OpType::Info, Some(process), send_body(key, value, None));
            }
            Ok(Err(e)) => {
                ctx.record(&format!("p{process}"), format!("send {value} failed: {e}"));
                ctx.op(OpType::Info, Some(process), send_body(key, value, None));
            }
            Err(_) => {
                ctx.record(&format!("p{process}"), format!("send {value} timed out"));
                ctx.op(OpType::Info, Some(process), send_body(key, value, None));
            }
        }
        tokio::time::sleep(Duration::from_millis(interval_ms)).await;
    }
}

fn send_body(key: Key, value: Value, offset: Option<i64>) -> Body {
    Body::Send { key, value, offset }
}

fn empty_poll() -> Body {
    Body::Poll {
        records: PollRecords::new(),
    }
}

/// A consumer assigned every partition of the workload topic from the earliest offset;
/// records the assignment as an `assign` operation.
fn assign_all(ctx: &Ctx, process: ProcessId, consumer: &mut Consumer) {
    let keys: Vec<Key> = (0..u64::from(ctx.partitions())).collect();
    ctx.op(
        OpType::Invoke,
        Some(process),
        Body::Assign { keys: keys.clone() },
    );
    for key in &keys {
        consumer.assign(
            TopicPartition::new(ctx.topic(), *key as i32),
            StartOffset::Earliest,
        );
    }
    ctx.op(OpType::Ok, Some(process), Body::Assign { keys });
}

fn new_consumer(ctx: &Ctx) -> Consumer {
    let cluster = Cluster::new(ctx.client_config());
    Consumer::new(
        cluster,
        ConsumerConfig {
            max_wait_ms: POLL_WAIT_MS,
            reset_policy: OffsetResetPolicy::None,
            ..ConsumerConfig::default()
        },
    )
}

/// One recorded poll. Returns false when the poll failed.
async fn poll_once(ctx: &Ctx, process: ProcessId, consumer: &mut Consumer) -> bool {
    ctx.op(OpType::Invoke, Some(process), empty_poll());
    let timeout = Duration::from_millis(
        ctx.scenario.workload.request_timeout_ms * 2 + POLL_WAIT_MS as u64 + 500,
    );
    match tokio::time::timeout(timeout, consumer.poll()).await {
        Ok(Ok(records)) => {
            let records = ctx.poll_records(process, &records);
            ctx.op(OpType::Ok, Some(process), Body::Poll { records });
            true
        }
        Ok(Err(e)) => {
            ctx.op(OpType::Fail, Some(process), empty_poll());
            ctx.record(&format!("c{process}"), format!("poll failed: {e}"));
            let text = e.to_string();
            if text.contains("CRC mismatch") {
                // The client caught it, but the broker served a corrupt batch.
                let seen = lock(&ctx.rec.failures)
                    .iter()
                    .any(|f| f.starts_with("corrupt data served"));
                if !seen {
                    ctx.fail(format!("corrupt data served to process {process}: {text}"));
                }
            }
            if e.kafka_code() == Some(code::OFFSET_OUT_OF_RANGE) {
                // The log end moved below our position (a page-cache crash lost a
                // suffix): start over, as a consumer with auto.offset.reset would.
                assign_all(ctx, process, consumer);
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
        Err(_) => {
            ctx.op(OpType::Info, Some(process), empty_poll());
            ctx.record(&format!("c{process}"), "poll timed out");
            false
        }
    }
}

async fn consumer_task(ctx: Ctx, process: ProcessId, end: Instant) {
    let mut consumer = new_consumer(&ctx);
    assign_all(&ctx, process, &mut consumer);
    while Instant::now() < end {
        poll_once(&ctx, process, &mut consumer).await;
    }
}

/// The final read: every partition from offset 0 to its high watermark, then a `read`
/// at the high watermark that records it (so the checker knows the log's end).
async fn drain(ctx: Ctx, process: ProcessId, deadline: Instant) -> Result<(), String> {
    let mut consumer = new_consumer(&ctx);
    assign_all(&ctx, process, &mut consumer);
    let partitions: Vec<TopicPartition> = (0..ctx.partitions() as i32)
        .map(|p| TopicPartition::new(ctx.topic(), p))
        .collect();
    let may_destroy_data = crate::outcome::may_destroy_data(&ctx.scenario);
    let cluster = Cluster::new(ctx.client_config());
    // Per partition: the position last seen and how many polls it has not moved.
    let mut stalled: Vec<(i64, u32)> = vec![(-1, 0); partitions.len()];
    // The last high watermark each partition reported: a fetch refused at a corrupt
    // batch carries none, and a re-assignment forgets it.
    let mut last_hw: Vec<Option<i64>> = vec![None; partitions.len()];
    loop {
        if Instant::now() >= deadline {
            let state: Vec<String> = partitions
                .iter()
                .map(|tp| {
                    format!(
                        "{tp}: position {:?} high watermark {:?}",
                        consumer.position(tp),
                        consumer.high_watermark(tp)
                    )
                })
                .collect();
            return Err(format!(
                "no convergence within {} ms: {}",
                ctx.scenario.expect.converge_within_ms,
                state.join(", ")
            ));
        }
        poll_once(&ctx, process, &mut consumer).await;
        for (i, tp) in partitions.iter().enumerate() {
            if let Some(hw) = consumer.high_watermark(tp) {
                last_hw[i] = Some(hw);
            }
        }
        if may_destroy_data {
            for (i, tp) in partitions.iter().enumerate() {
                let Some(position) = consumer.position(tp) else {
                    continue;
                };
                if last_hw[i].is_some_and(|hw| position >= hw) || position != stalled[i].0 {
                    stalled[i] = (position, 0);
                    continue;
                }
                stalled[i].1 += 1;
                if stalled[i].1 >= DRAIN_STALLED_POLLS_MAX && last_hw[i].is_none() {
                    // Refused at the very first batch: no fetch has carried a high
                    // watermark yet. Ask for the log end instead.
                    let request = BTreeMap::from([(tp.clone(), LATEST_TIMESTAMP)]);
                    if let Some(Ok((end, _))) = list_offsets(&cluster, &request, 0).await.remove(tp)
                    {
                        ctx.record("drain", format!("{tp}: log end {end} from ListOffsets"));
                        last_hw[i] = Some(end);
                    }
                    stalled[i].1 = 0;
                } else if stalled[i].1 >= DRAIN_STALLED_POLLS_MAX {
                    // The record there was destroyed at rest and is (rightly) never
                    // served: step over it, as an operator would.
                    let key = tp.partition as Key;
                    ctx.record(
                        "drain",
                        format!("{tp}: offset {position} unreadable, skipping it"),
                    );
                    lock(&ctx.rec.destroyed).insert((key, position));
                    ctx.op(
                        OpType::Invoke,
                        Some(process),
                        Body::Assign { keys: vec![key] },
                    );
                    consumer.assign(tp.clone(), StartOffset::Offset(position + 1));
                    ctx.op(OpType::Ok, Some(process), Body::Assign { keys: vec![key] });
                    stalled[i] = (position + 1, 0);
                }
            }
        }
        let done = partitions.iter().enumerate().all(|(i, tp)| {
            match (
                consumer.position(tp),
                consumer.high_watermark(tp).or(last_hw[i]),
            ) {
                (Some(position), Some(hw)) => position >= hw,
                _ => false,
            }
        });
        if done {
            break;
        }
    }
    if crate::outcome::expires_data(&ctx.scenario) {
        // Where retention has left each log starting: what lies below is gone by design.
        let request: BTreeMap<TopicPartition, i64> = partitions
            .iter()
            .map(|tp| (tp.clone(), EARLIEST_TIMESTAMP))
            .collect();
        for (tp, answer) in list_offsets(&cluster, &request, 0).await {
            match answer {
                Ok((start, _)) => {
                    ctx.record("drain", format!("{tp} starts at {start}"));
                    lock(&ctx.rec.log_starts).insert(tp.partition as Key, start);
                }
                Err(e) => return Err(format!("{tp}: log start unknown: {e}")),
            }
        }
    }
    for (i, tp) in partitions.iter().enumerate() {
        let hw = consumer.high_watermark(tp).or(last_hw[i]).unwrap_or(0);
        let key = tp.partition as Key;
        let read = |high_watermark| Body::Read {
            key,
            from_offset: hw,
            values: Vec::new(),
            high_watermark,
        };
        ctx.op(OpType::Invoke, Some(process), read(None));
        ctx.op(OpType::Ok, Some(process), read(Some(hw)));
        ctx.record("drain", format!("{tp} ends at {hw}"));
    }
    Ok(())
}

/// The whole simulated run, on madsim's main task.
async fn simulate(rec: Recorder, scenario: Arc<Scenario>, seed: u64) {
    let handle = Handle::current();
    let ctx = Ctx {
        rec,
        start: Instant::now(),
        scenario: scenario.clone(),
        seed,
    };
    let nodes = scenario.cluster.nodes;
    let base_disk = disk_config(&scenario, false);
    let disks: Vec<SimDisk> = (1..=nodes)
        .map(|n| {
            let disk = SimDisk::new(seed ^ (u64::from(n) << 56) ^ 0xd15c);
            disk.set_faults(base_disk.clone());
            disk
        })
        .collect();
    let clocks: Vec<Clock> = (1..=nodes).map(|_| Clock::system()).collect();
    let mut brokers = Vec::new();
    for n in 1..=nodes {
        let (ctx, disk, clock) = (
            ctx.clone(),
            disks[n as usize - 1].clone(),
            clocks[n as usize - 1].clone(),
        );
        let lives = Arc::new(AtomicU64::new(0));
        let node = handle
            .create_node()
            .name(format!("n{n}"))
            .ip(broker_ip(n))
            .init(move || broker_life(ctx.clone(), n, disk.clone(), clock.clone(), lives.clone()))
            .build();
        brokers.push(node);
    }
    // The proxies: one per broker, on a node that never fails.
    let proxy_node = handle.create_node().name("proxy").ip(proxy_ip()).build();
    let mut proxies = Vec::new();
    for n in 1..=nodes {
        let listen = SocketAddr::new(proxy_ip(), PROXY_PORT_BASE + n as u16);
        let upstream = SocketAddr::new(broker_ip(n), BROKER_PORT);
        let proxy_seed = seed ^ (u64::from(n) << 32) ^ 0x9e0;
        let bound = proxy_node
            .spawn(async move {
                FaultyProxy::bind(listen, upstream, proxy_seed, TransportFaults::default()).await
            })
            .await;
        let proxy = match bound {
            Ok(Ok(proxy)) => proxy,
            other => {
                ctx.fail(format!("proxy for n{n} did not start: {other:?}"));
                return;
            }
        };
        proxies.push(proxy.handle());
        proxy_node.spawn(proxy.run());
    }
    ctx.record("sim", format!("{} broker(s), seed {seed}", nodes));
    // Every disk operation and every frame through a proxy goes into the trace.
    for disk in &disks {
        disk.log_ops(true);
    }
    for proxy in &proxies {
        proxy.log_messages(true);
    }
    let io_log_stop = Arc::new(AtomicBool::new(false));
    let io_log = tokio::spawn(record_io_periodically(
        ctx.clone(),
        disks.clone(),
        proxies.clone(),
        io_log_stop.clone(),
    ));

    // Setup: topics, through the proxies, without faults.
    let client_node = handle
        .create_node()
        .name("client")
        .ip(IpAddr::from([10, 0, 2, 1]))
        .build();
    let setup_ctx = ctx.clone();
    match client_node
        .spawn(async move { create_topics(&setup_ctx).await })
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            ctx.fail(e);
            return;
        }
        Err(e) => {
            ctx.fail(format!("setup task failed: {e:?}"));
            return;
        }
    }

    // The fault phase and the workload.
    let standing_disk = disk_config(&scenario, true);
    for disk in &disks {
        disk.set_faults(standing_disk.clone());
    }
    for proxy in &proxies {
        proxy.set_faults(transport_faults(&scenario));
    }
    let phase_start_ms = ctx.now_ms();
    let end = Instant::now() + Duration::from_millis(scenario.workload.duration_ms);
    ctx.record("sim", "workload starts");
    let mut tasks = Vec::new();
    for p in 0..u64::from(scenario.workload.producers) {
        tasks.push(client_node.spawn(producer_task(ctx.clone(), p, end)));
    }
    for c in 0..u64::from(scenario.workload.consumers) {
        let process = u64::from(scenario.workload.producers) + c;
        tasks.push(client_node.spawn(consumer_task(ctx.clone(), process, end)));
    }
    let mut world = World {
        handle: handle.clone(),
        brokers,
        disks: disks.clone(),
        clocks,
        proxies: proxies.clone(),
        down: BTreeSet::new(),
        paused: BTreeSet::new(),
        poisoned: BTreeSet::new(),
        clogged: BTreeSet::new(),
        standing_disk,
        base_disk,
        rng: Rng::with_seed(seed ^ 0xfa17),
    };
    // The timeline: (virtual ms since phase start, sequence) -> action.
    let mut timeline: BTreeMap<(u64, u64), Action> = BTreeMap::new();
    let mut sequence = 0u64;
    for scheduled in &scenario.faults.schedule {
        timeline.insert(
            (scheduled.at_ms, sequence),
            Action::Fault(scheduled.fault.clone()),
        );
        sequence += 1;
    }
    if scenario.faults.random.is_some() {
        timeline.insert((0, sequence), Action::NextRandom);
        sequence += 1;
    }
    while let Some(((at_ms, _), action)) = timeline.pop_first() {
        if at_ms >= scenario.workload.duration_ms {
            break;
        }
        let now = ctx.now_ms() - phase_start_ms;
        if at_ms > now {
            tokio::time::sleep(Duration::from_millis(at_ms - now)).await;
        }
        if let Action::NextRandom = action {
            if let Some((wait, fault)) = world.draw(&ctx) {
                if at_ms > 0 {
                    if let Some((after, heal)) = world.act(&ctx, &Action::Fault(fault.clone())) {
                        timeline.insert((at_ms + after, sequence), heal);
                        sequence += 1;
                    }
                }
                timeline.insert((at_ms + wait, sequence), Action::NextRandom);
                sequence += 1;
            }
            continue;
        }
        if let Some((after, heal)) = world.act(&ctx, &action) {
            timeline.insert((at_ms + after, sequence), heal);
            sequence += 1;
        }
    }
    let now = ctx.now_ms() - phase_start_ms;
    if now < scenario.workload.duration_ms {
        tokio::time::sleep(Duration::from_millis(scenario.workload.duration_ms - now)).await;
    }
    // Let the workload finish its last operations, then stop the client node (what is
    // still in flight stays indeterminate).
    let grace = Instant::now() + Duration::from_millis(WORKLOAD_GRACE_MS);
    for task in tasks {
        let left = grace.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, task).await;
    }
    handle.kill(client_node.id());
    ctx.record("sim", "workload ends");
    tokio::time::sleep(Duration::from_millis(SETTLE_MS)).await;
    world.heal(&ctx);
    for event in proxies.iter().flat_map(FaultHandle::take_events) {
        ctx.rec.faults.fetch_add(1, Ordering::SeqCst);
        ctx.rec.trace.record(
            ctx.now_ms(),
            "proxy",
            format!(
                "conn {} {:?} frame {} {:?}",
                event.connection_id, event.direction, event.frame_index, event.kind
            ),
        );
    }

    // Converge and drain.
    let drain_node = handle
        .create_node()
        .name("drain")
        .ip(IpAddr::from([10, 0, 2, 2]))
        .build();
    let deadline = Instant::now() + Duration::from_millis(scenario.expect.converge_within_ms);
    let drain_process = u64::from(scenario.workload.producers + scenario.workload.consumers);
    let drain_ctx = ctx.clone();
    match drain_node
        .spawn(drain(drain_ctx, drain_process, deadline))
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => ctx.fail(e),
        Err(e) => ctx.fail(format!("drain task failed: {e:?}")),
    }
    io_log_stop.store(true, Ordering::SeqCst);
    let _ = io_log.await;
    record_io(&ctx, &disks, &proxies);
    for (i, disk) in disks.iter().enumerate() {
        ctx.record(&format!("n{}", i + 1), format!("disk {:?}", disk.stats()));
    }
    ctx.rec.end_ms.store(ctx.now_ms(), Ordering::SeqCst);
}

/// Moves the disks' operation logs and the proxies' message logs into the trace every
/// IO_LOG_INTERVAL_MS of virtual time until `stop`.
async fn record_io_periodically(
    ctx: Ctx,
    disks: Vec<SimDisk>,
    proxies: Vec<FaultHandle>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(IO_LOG_INTERVAL_MS)).await;
        record_io(&ctx, &disks, &proxies);
    }
}

fn record_io(ctx: &Ctx, disks: &[SimDisk], proxies: &[FaultHandle]) {
    let now = ctx.now_ms();
    for (i, disk) in disks.iter().enumerate() {
        let node = format!("n{}-disk", i + 1);
        let (ops, unlogged) = disk.take_ops();
        for op in ops {
            let mut line = format!("{} {}", op.op, op.path);
            match (op.position, op.len) {
                (Some(position), Some(len)) => line.push_str(&format!(" @{position}+{len}")),
                (None, Some(len)) => line.push_str(&format!(" {len} B")),
                _ => {}
            }
            if let Some(detail) = op.detail {
                line.push_str(&format!(" -> {detail}"));
            }
            if let Some(error) = op.error {
                line.push_str(&format!(" ERR {error:?}"));
            }
            ctx.rec.trace.record(now, &node, line);
        }
        if unlogged > 0 {
            ctx.rec
                .trace
                .record(now, &node, format!("{unlogged} operations not logged"));
        }
    }
    for (i, proxy) in proxies.iter().enumerate() {
        let node = format!("proxy{}", i + 1);
        let (messages, unlogged) = proxy.take_messages();
        for m in messages {
            let api = m.api_key.map_or(String::new(), |k| format!(" api {k}"));
            ctx.rec.trace.record(
                now,
                &node,
                format!(
                    "conn {} {:?} #{}{api} corr {:?} {} B",
                    m.connection_id, m.direction, m.frame_index, m.correlation_id, m.bytes
                ),
            );
        }
        if unlogged > 0 {
            ctx.rec
                .trace
                .record(now, &node, format!("{unlogged} frames not logged"));
        }
    }
}

/// Runs `scenario` under `seed` in this process (once: see the module docs) and checks it.
pub fn run(scenario: &Scenario, seed: u64) -> RunOutcome {
    let rec = Recorder::default();
    let scenario = Arc::new(scenario.clone());
    let mut runtime = Runtime::with_seed_and_config(seed, madsim::Config::default());
    runtime.set_time_limit(Duration::from_millis(
        scenario.workload.duration_ms
            + scenario.expect.converge_within_ms
            + WORKLOAD_GRACE_MS
            + SETTLE_MS
            + TIME_LIMIT_SLACK_MS,
    ));
    let sim_rec = rec.clone();
    let sim_scenario = scenario.clone();
    let result = std::panic::catch_unwind(AssertUnwindSafe(move || {
        runtime.block_on(simulate(sim_rec, sim_scenario, seed))
    }));
    if let Err(panic) = result {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(no message)".to_string());
        let what = format!("panic in the simulation (broker or harness): {message}");
        rec.trace.record(
            rec.end_ms.load(Ordering::SeqCst),
            "check",
            format!("FAILURE {what}"),
        );
        lock(&rec.failures).push(what);
    }
    check_run(&scenario, seed, &rec)
}
