//! Fetch for consumers: reads up to the high watermark, whole batches, straight from the
//! log (no decode). Long poll: while fewer than `min_bytes` are ready, wait — woken by
//! any fetched partition's high watermark moving — until `max_wait_ms`. `max_bytes` and
//! each partition's `partition_max_bytes` bound the answer, except that the first batch
//! of the first non-empty partition is always returned whole (as Kafka, so a consumer
//! can always progress). Fetch sessions are answered sessionless (session id 0, every
//! partition every time), which every client accepts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ResponseKind, TopicName};

use super::metadata::topic_name;
use super::{check_leader_epoch, log_error_code};
use crate::base::limits::{FETCH_MAX_WAIT_MS_MAX, FETCH_RESPONSE_BYTES_MAX};
use crate::base::Offset;
use crate::broker::state::{BrokerState, LocalPartition};
use crate::controller::TopicId;
use crate::protocol::error_codes as ec;

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;

/// One requested partition, resolved.
struct Wanted {
    topic_index: usize,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: i32,
    local: Result<LocalPartition, i16>,
    current_leader_epoch: i32,
}

pub async fn handle(state: &Arc<BrokerState>, request: FetchRequest, version: i16) -> ResponseKind {
    // A client continuing a session we never created (we always answer id 0) gets
    // FETCH_SESSION_ID_NOT_FOUND and starts over with a full fetch.
    if request.session_id != 0 && request.session_epoch > 0 {
        return ResponseKind::Fetch(
            FetchResponse::default()
                .with_error_code(FETCH_SESSION_ID_NOT_FOUND)
                .with_session_id(0),
        );
    }
    let image = state.image();
    let mut topics: Vec<(TopicName, uuid::Uuid)> = Vec::new();
    let mut wanted = Vec::new();
    for topic in &request.topics {
        let (name, unknown_code) = if version >= 13 {
            let id = TopicId(*topic.topic_id.as_bytes());
            (
                image.topic_by_id(&id).map(|t| t.name.clone()),
                ec::UNKNOWN_TOPIC_ID,
            )
        } else {
            (
                Some(topic.topic.0.as_str().to_string()),
                ec::UNKNOWN_TOPIC_OR_PARTITION,
            )
        };
        let topic_index = topics.len();
        topics.push((
            name.as_deref()
                .map(topic_name)
                .unwrap_or_else(|| topic.topic.clone()),
            topic.topic_id,
        ));
        for p in &topic.partitions {
            let local = match &name {
                Some(name) => state
                    .partition(name, p.partition)
                    .ok_or(ec::UNKNOWN_TOPIC_OR_PARTITION),
                None => Err(unknown_code),
            };
            wanted.push(Wanted {
                topic_index,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes,
                local,
                current_leader_epoch: p.current_leader_epoch,
            });
        }
    }
    let max_bytes = if version >= 3 {
        (request.max_bytes.max(0) as u64).min(FETCH_RESPONSE_BYTES_MAX)
    } else {
        FETCH_RESPONSE_BYTES_MAX
    };
    let min_bytes = request.min_bytes.max(0) as u64;
    let max_wait =
        Duration::from_millis((request.max_wait_ms.max(0) as u64).min(FETCH_MAX_WAIT_MS_MAX));
    let deadline = tokio::time::Instant::now() + max_wait;
    let mut waiters: Vec<tokio::sync::watch::Receiver<Offset>> = wanted
        .iter()
        .filter_map(|w| w.local.as_ref().ok())
        .map(|l| {
            let mut rx = l.handle.watch_high_watermark();
            rx.borrow_and_update();
            rx
        })
        .collect();
    loop {
        let (results, total_bytes, any_error) = read_all(&wanted, max_bytes).await;
        let now = tokio::time::Instant::now();
        if total_bytes >= min_bytes || any_error || now >= deadline || waiters.is_empty() {
            return ResponseKind::Fetch(build(topics, &wanted, results, version));
        }
        let any_moved = wait_any(&mut waiters);
        let _ = tokio::time::timeout(deadline - now, any_moved).await;
        for rx in &mut waiters {
            rx.borrow_and_update();
        }
    }
}

/// Resolves when any high watermark moves (a stopped driver never resolves: the
/// deadline ends the wait).
fn wait_any(waiters: &mut [tokio::sync::watch::Receiver<Offset>]) -> impl Future<Output = ()> + '_ {
    let mut futures: Vec<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = waiters
        .iter_mut()
        .map(|rx| {
            Box::pin(async move {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }) as Pin<Box<dyn Future<Output = ()> + Send + '_>>
        })
        .collect();
    std::future::poll_fn(move |cx| {
        for f in futures.iter_mut() {
            if f.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
}

struct Read {
    error: i16,
    high_watermark: i64,
    log_start_offset: i64,
    records: Bytes,
}

async fn read_all(wanted: &[Wanted], max_bytes: u64) -> (Vec<Read>, u64, bool) {
    let mut results = Vec::with_capacity(wanted.len());
    let mut total = 0u64;
    let mut any_error = false;
    for w in wanted {
        let failed = |error: i16| Read {
            error,
            high_watermark: -1,
            log_start_offset: -1,
            records: Bytes::new(),
        };
        let local = match &w.local {
            Ok(local) => local,
            Err(code) => {
                any_error = true;
                results.push(failed(*code));
                continue;
            }
        };
        if let Err(code) = check_leader_epoch(w.current_leader_epoch, local.leader_epoch) {
            any_error = true;
            results.push(failed(code));
            continue;
        }
        let remaining = max_bytes.saturating_sub(total);
        let first = total == 0;
        let budget = remaining.min(w.partition_max_bytes.max(0) as u64);
        match local
            .handle
            .read(Offset(w.fetch_offset), budget, None)
            .await
        {
            Ok(read) => {
                let mut records = read.records;
                // Only the first non-empty partition may exceed the budgets.
                if !first && records.len() as u64 > budget {
                    records = Bytes::new();
                }
                total += records.len() as u64;
                results.push(Read {
                    error: ec::NONE,
                    high_watermark: read.high_watermark.0,
                    log_start_offset: read.log_start_offset.0,
                    records,
                });
            }
            Err(e) => {
                any_error = true;
                let code = log_error_code(&e);
                // OFFSET_OUT_OF_RANGE still reports the bounds the client resets to.
                let (high_watermark, log_start_offset) = local
                    .handle
                    .run(|log| (log.high_watermark().0, log.log_start_offset().0))
                    .await
                    .unwrap_or((-1, -1));
                results.push(Read {
                    error: code,
                    high_watermark,
                    log_start_offset,
                    records: Bytes::new(),
                });
            }
        }
    }
    (results, total, any_error)
}

fn build(
    topics: Vec<(TopicName, uuid::Uuid)>,
    wanted: &[Wanted],
    results: Vec<Read>,
    version: i16,
) -> FetchResponse {
    let mut responses: Vec<FetchableTopicResponse> = topics
        .into_iter()
        .map(|(name, id)| {
            let mut t = FetchableTopicResponse::default();
            if version >= 13 {
                t.topic_id = id;
            } else {
                t.topic = name;
            }
            t
        })
        .collect();
    for (w, read) in wanted.iter().zip(results) {
        let data = PartitionData::default()
            .with_partition_index(w.partition)
            .with_error_code(read.error)
            .with_high_watermark(read.high_watermark)
            .with_last_stable_offset(read.high_watermark)
            .with_log_start_offset(read.log_start_offset)
            .with_aborted_transactions(Some(Vec::new()))
            .with_records(Some(read.records));
        responses[w.topic_index].partitions.push(data);
    }
    FetchResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(ec::NONE)
        .with_session_id(0)
        .with_responses(responses)
}
