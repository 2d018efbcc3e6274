//! `LogDriver`: the single owner of one `PartitionLog`, running as a task. Callers talk to
//! it through a cloneable `LogHandle`.
//!
//! Group commit: appends are applied in arrival order. When the topic wants every write
//! fsynced before it is acknowledged (`flush.messages=1`), the append's reply waits for a
//! `FlushJob` that covers it. At most one job runs at a time, on a blocking thread so it
//! never stalls the reactor; appends keep arriving while it runs, and the next job covers
//! all of them with one fsync. Otherwise replies go out at once, and flushes follow the
//! `flush.messages`/`flush.ms` policy in the background.
//!
//! Guarantee: a reply `Ok(info)` in fsync mode means every offset up to
//! `info.last_offset` survives a crash. After a failed fsync every waiting and later
//! append fails (the partition is offline), nothing is acknowledged.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::base::{IoError, LeaderEpoch, Offset};
use crate::log::{AppendInfo, CheckpointJob, FlushJob, LogError, PartitionLog, ReadResult};

/// Commands queued per driver before senders wait (backpressure).
const DRIVER_QUEUE_COMMANDS_MAX: usize = 4096;
/// How often the driver checks the time-based flush policy (`flush.ms`).
const FLUSH_POLICY_TICK_MS: u64 = 100;
/// The driver's periodic work, by the broker settings that set it (Kafka's names; the
/// defaults are Kafka's). Each is checked on the driver's 100 ms tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverSettings {
    /// `log.retention.check.interval.ms`: how often retention runs.
    pub retention_check_interval_ms: u64,
    /// `log.flush.offset.checkpoint.interval.ms`: how often the partition checkpoint
    /// (recovery point, log start, high watermark) is written if it changed.
    pub checkpoint_interval_ms: u64,
    /// `producer.id.expiration.ms`: an idempotent producer whose last batch is older
    /// than this is forgotten.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`: how often that is checked.
    pub producer_id_expiration_check_interval_ms: u64,
}

impl Default for DriverSettings {
    fn default() -> Self {
        DriverSettings {
            retention_check_interval_ms: 300_000,
            checkpoint_interval_ms: 60_000,
            producer_id_expiration_ms: 86_400_000,
            producer_id_expiration_check_interval_ms: 600_000,
        }
    }
}

/// A job run on the driver task with the log (ListOffsets, DeleteRecords, configs...).
type Job = Box<dyn FnOnce(&mut PartitionLog) + Send>;

type Reply<T> = oneshot::Sender<Result<T, LogError>>;

enum Command {
    Append {
        records: Vec<u8>,
        leader_epoch: LeaderEpoch,
        reply: Reply<AppendInfo>,
    },
    Read {
        offset: Offset,
        max_bytes: u64,
        upper: Option<Offset>,
        reply: Reply<ReadResult>,
    },
    Flush {
        reply: Reply<Offset>,
    },
    Close {
        reply: Reply<()>,
    },
    Run(Job),
}

/// A cheap, cloneable handle to a partition's driver task.
#[derive(Clone, Debug)]
pub struct LogHandle {
    tx: mpsc::Sender<Command>,
    high_watermark: watch::Receiver<Offset>,
}

fn driver_gone() -> LogError {
    LogError::Offline("partition driver stopped".to_string())
}

impl LogHandle {
    /// Appends a produce request's batches as leader. In fsync mode the reply comes only
    /// once the batches are durable.
    pub async fn append(
        &self,
        records: Vec<u8>,
        leader_epoch: LeaderEpoch,
    ) -> Result<AppendInfo, LogError> {
        self.submit_append(records, leader_epoch).await?.await
    }

    /// Queues an append (in call order with every other command) and returns the
    /// future of its reply, so a connection can start its next request while this one
    /// waits for group commit.
    pub async fn submit_append(
        &self,
        records: Vec<u8>,
        leader_epoch: LeaderEpoch,
    ) -> Result<
        impl std::future::Future<Output = Result<AppendInfo, LogError>> + Send + 'static,
        LogError,
    > {
        let (reply, rx) = oneshot::channel();
        let command = Command::Append {
            records,
            leader_epoch,
            reply,
        };
        self.tx.send(command).await.map_err(|_| driver_gone())?;
        Ok(async move { rx.await.map_err(|_| driver_gone())? })
    }

    /// Reads up to `upper` (default: the high watermark).
    pub async fn read(
        &self,
        offset: Offset,
        max_bytes: u64,
        upper: Option<Offset>,
    ) -> Result<ReadResult, LogError> {
        let (reply, rx) = oneshot::channel();
        let command = Command::Read {
            offset,
            max_bytes,
            upper,
            reply,
        };
        self.tx.send(command).await.map_err(|_| driver_gone())?;
        rx.await.map_err(|_| driver_gone())?
    }

    /// Makes everything appended so far durable; returns the new recovery point.
    pub async fn flush(&self) -> Result<Offset, LogError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Flush { reply })
            .await
            .map_err(|_| driver_gone())?;
        rx.await.map_err(|_| driver_gone())?
    }

    /// Runs `job` on the driver task, in order with appends and reads, and returns what
    /// it returns. Jobs must not block: they run between other commands.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut PartitionLog) -> T + Send + 'static,
    ) -> Result<T, LogError> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |log| {
            let _ = reply.send(job(log));
        });
        self.tx
            .send(Command::Run(job))
            .await
            .map_err(|_| driver_gone())?;
        rx.await.map_err(|_| driver_gone())
    }

    /// The high watermark, updated whenever it moves: long-poll fetches wait on it.
    pub fn watch_high_watermark(&self) -> watch::Receiver<Offset> {
        self.high_watermark.clone()
    }

    /// Flushes, checkpoints and stops the driver.
    pub async fn close(&self) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Close { reply })
            .await
            .map_err(|_| driver_gone())?;
        rx.await.map_err(|_| driver_gone())?
    }
}

/// An append waiting for a flush to cover it.
struct Waiter {
    info: AppendInfo,
    reply: Reply<AppendInfo>,
}

/// A running flush: its job and the blocking task that runs it.
type InFlight = tokio::task::JoinHandle<(FlushJob, Result<(), IoError>)>;

/// Starts the driver task for `log`; returns its handle.
pub fn spawn(log: PartitionLog) -> LogHandle {
    spawn_with(log, DriverSettings::default())
}

/// `spawn` with the broker's settings for the periodic work.
pub fn spawn_with(log: PartitionLog, settings: DriverSettings) -> LogHandle {
    let (tx, rx) = mpsc::channel(DRIVER_QUEUE_COMMANDS_MAX);
    let (hw_tx, high_watermark) = watch::channel(log.high_watermark());
    tokio::spawn(run(log, rx, hw_tx, settings));
    LogHandle { tx, high_watermark }
}

/// Starts the next flush on a blocking thread, if anything is unflushed, so an fsync
/// never stalls the reactor. (A failure to prepare leaves the log offline; the
/// waiters then fail on their next check.)
#[cfg(not(madsim))]
fn start_flush(log: &mut PartitionLog) -> Option<InFlight> {
    let job = log.prepare_flush().ok().flatten()?;
    Some(tokio::task::spawn_blocking(move || {
        let result = job.run();
        (job, result)
    }))
}

/// Under simulation the disk is in memory and threads are not allowed: the flush runs
/// as an ordinary task, so it still completes after the appends that raced with it.
#[cfg(madsim)]
fn start_flush(log: &mut PartitionLog) -> Option<InFlight> {
    let job = log.prepare_flush().ok().flatten()?;
    Some(tokio::spawn(async move {
        tokio::task::yield_now().await;
        let result = job.run();
        let delay_ms = job.take_delay_ms();
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        (job, result)
    }))
}

/// Runs a checkpoint write on a blocking thread; the driver awaits it, so no other
/// change to the log (a truncation, another checkpoint) can interleave.
#[cfg(not(madsim))]
async fn run_checkpoint(job: &CheckpointJob) -> Result<(), IoError> {
    let running = job.clone();
    tokio::task::spawn_blocking(move || running.run())
        .await
        .unwrap_or_else(|join_error| {
            Err(IoError::new(
                crate::base::IoErrorKind::Io,
                "checkpoint",
                format!("checkpoint task failed: {join_error}"),
            ))
        })
}

/// Under simulation there are no threads; the in-memory disk's latency is slept.
#[cfg(madsim)]
async fn run_checkpoint(job: &CheckpointJob) -> Result<(), IoError> {
    let result = job.run();
    let delay_ms = job.take_delay_ms();
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    result
}

async fn run(
    mut log: PartitionLog,
    mut rx: mpsc::Receiver<Command>,
    hw_tx: watch::Sender<Offset>,
    settings: DriverSettings,
) {
    let every = Duration::from_millis;
    let mut last_retention = tokio::time::Instant::now();
    let mut last_checkpoint = tokio::time::Instant::now();
    let mut last_producer_expiry = tokio::time::Instant::now();
    let mut waiters: Vec<Waiter> = Vec::new();
    let mut flush_waiters: Vec<Reply<Offset>> = Vec::new();
    let mut in_flight: Option<InFlight> = None;
    let mut closing: Option<Reply<()>> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(FLUSH_POLICY_TICK_MS));
    loop {
        tokio::select! {
            command = rx.recv(), if closing.is_none() => {
                let Some(command) = command else { break };
                match command {
                    Command::Append { mut records, leader_epoch, reply } => {
                        match log.append_as_leader(&mut records, leader_epoch) {
                            Ok(info) if log.config().fsync_before_ack() => waiters.push(Waiter { info, reply }),
                            Ok(info) => {
                                // Without replication, acknowledged data is visible to
                                // consumers at once: the high watermark is the log end.
                                log.set_high_watermark(info.last_offset.next());
                                let _ = reply.send(Ok(info));
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                    Command::Read { offset, max_bytes, upper, reply } => {
                        let upper = upper.unwrap_or(log.high_watermark());
                        let _ = reply.send(log.read(offset, max_bytes, upper));
                    }
                    Command::Flush { reply } => flush_waiters.push(reply),
                    Command::Close { reply } => closing = Some(reply),
                    Command::Run(job) => job(&mut log),
                }
            }
            finished = async { in_flight.as_mut().expect("guarded by the select condition").await }, if in_flight.is_some() => {
                in_flight = None;
                let outcome = match finished {
                    Ok((job, result)) => log.complete_flush(&job, result),
                    Err(join_error) => Err(LogError::Offline(format!("flush task failed: {join_error}"))),
                };
                match outcome {
                    Ok(durable) => {
                        let (done, pending): (Vec<Waiter>, Vec<Waiter>) =
                            waiters.drain(..).partition(|w| w.info.last_offset < durable);
                        waiters = pending;
                        if let Some(last) = done.iter().map(|w| w.info.last_offset).max() {
                            log.set_high_watermark(last.next());
                        }
                        for waiter in done {
                            let _ = waiter.reply.send(Ok(waiter.info));
                        }
                        if waiters.is_empty() {
                            for reply in flush_waiters.drain(..) {
                                let _ = reply.send(Ok(durable));
                            }
                        }
                    }
                    Err(e) => {
                        for waiter in waiters.drain(..) {
                            let _ = waiter.reply.send(Err(e.clone()));
                        }
                        for reply in flush_waiters.drain(..) {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
            _ = tick.tick() => {
                if last_retention.elapsed() >= every(settings.retention_check_interval_ms) {
                    last_retention = tokio::time::Instant::now();
                    let now_ms = log.clock_now_ms();
                    if let Err(e) = log.apply_retention(now_ms) {
                        tracing::error!(error = %e, dir = log.dir(), "retention failed");
                    }
                }
                // Between flushes only: a flush in flight would advance the recovery point
                // the checkpoint is about to record.
                if last_producer_expiry.elapsed()
                    >= every(settings.producer_id_expiration_check_interval_ms)
                {
                    last_producer_expiry = tokio::time::Instant::now();
                    let now_ms = log.clock_now_ms();
                    let expired = log.expire_producers(now_ms, settings.producer_id_expiration_ms);
                    if expired > 0 {
                        tracing::debug!(expired, dir = log.dir(), "idle producer ids expired");
                    }
                }
                if in_flight.is_none()
                    && last_checkpoint.elapsed() >= every(settings.checkpoint_interval_ms)
                {
                    last_checkpoint = tokio::time::Instant::now();
                    if let Some(job) = log.prepare_checkpoint() {
                        let result = run_checkpoint(&job).await;
                        if let Err(e) = log.complete_checkpoint(&job, result) {
                            tracing::error!(error = %e, dir = log.dir(), "checkpoint failed");
                        }
                    }
                }
            }
        }
        let high_watermark = log.high_watermark();
        hw_tx.send_if_modified(|hw| {
            let changed = *hw != high_watermark;
            *hw = high_watermark;
            changed
        });
        if in_flight.is_none() {
            let now_ms = log.clock_now_ms();
            let wanted = !waiters.is_empty()
                || !flush_waiters.is_empty()
                || closing.is_some()
                || log.flush_due(now_ms);
            if wanted {
                in_flight = start_flush(&mut log);
                if in_flight.is_none() {
                    // Nothing to flush: everything asked for is already durable (an
                    // idempotent producer's retry waits for its original's flush only).
                    let durable = log.recovery_point();
                    let (done, pending): (Vec<Waiter>, Vec<Waiter>) = waiters
                        .drain(..)
                        .partition(|w| w.info.last_offset < durable);
                    waiters = pending;
                    for waiter in done {
                        let _ = waiter.reply.send(Ok(waiter.info));
                    }
                    for reply in flush_waiters.drain(..) {
                        let _ = reply.send(Ok(durable));
                    }
                    if let Some(reply) = closing.take() {
                        let _ = reply.send(log.close());
                        return;
                    }
                }
            }
        }
    }
    if let Err(e) = log.close() {
        tracing::error!(error = %e, "closing partition log failed");
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::io::sim::SimDisk;
    use crate::io::{Clock, DiskRef};
    use crate::log::checkpoint::read_checkpoint;
    use crate::log::partition::PARTITION_CHECKPOINT;
    use crate::log::LogConfig;
    use crate::protocol::{Compression, RecordBatchBuilder, RecordInput};

    /// The recovery point in the partition checkpoint on disk.
    fn checkpointed_recovery_point(disk: &SimDisk) -> i64 {
        let path = format!("p-0/{PARTITION_CHECKPOINT}");
        let rows = read_checkpoint(disk, &path, 3)
            .unwrap()
            .expect("a checkpoint");
        rows[0][1]
    }

    #[tokio::test]
    async fn the_checkpoint_follows_flushes_periodically() {
        let disk = SimDisk::new(5);
        let shared: DiskRef = Arc::new(disk.clone());
        let clock = Clock::manual(1_700_000_000_000);
        let (log, _) = PartitionLog::open(shared, "p-0", LogConfig::default(), clock).unwrap();
        let interval = Duration::from_millis(400);
        let handle = spawn_with(
            log,
            DriverSettings {
                checkpoint_interval_ms: 400,
                ..DriverSettings::default()
            },
        );
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder.append(RecordInput {
            timestamp_ms: 1_700_000_000_000,
            key: None,
            value: Some(bytes::Bytes::from_static(b"v")),
            headers: Vec::new(),
        });
        let batch = builder.build().unwrap().to_vec();
        for _ in 0..3 {
            handle.append(batch.clone(), LeaderEpoch(0)).await.unwrap();
        }
        assert_eq!(handle.flush().await.unwrap(), Offset(3));
        assert_eq!(
            checkpointed_recovery_point(&disk),
            0,
            "written at open only"
        );
        tokio::time::sleep(interval / 4).await;
        assert_eq!(checkpointed_recovery_point(&disk), 0, "not yet");
        tokio::time::sleep(interval * 2).await;
        assert_eq!(checkpointed_recovery_point(&disk), 3, "the periodic write");
        handle.close().await.unwrap();
    }
}
