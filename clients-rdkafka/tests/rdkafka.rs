//! The rdkafka crate (librdkafka 2.12, bundled) against a skald node started in-process:
//! topics created and described through its admin client, then for every codec keyed
//! records with headers and timestamps produced by an idempotent `FutureProducer`
//! (InitProducerId, sequence numbers) and consumed back exactly by a `BaseConsumer`
//! assigned every partition from the beginning.
//!
//! Real sockets and librdkafka's own threads: not for the simulator build.

#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use skald::base::Rng;
use skald::broker::{Node, NodeConfig, NodeHandle};
use skald::io::real::{RealDisk, ScratchDir};
use skald::io::{Clock, Disk};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const PARTITIONS: i32 = 3;
const RECORDS: usize = 2_000;
const TIMEOUT: Duration = Duration::from_secs(60);

/// One produced record as the consumer must see it again.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp_ms: i64,
}

async fn start(dir: &ScratchDir) -> NodeHandle {
    let disk: Arc<dyn Disk> = Arc::new(RealDisk::open(dir.path()).unwrap());
    let config = NodeConfig::new(1, "127.0.0.1:0".parse().unwrap());
    Node::start(config, disk, Clock::system(), Rng::with_seed(11))
        .await
        .unwrap()
}

fn client_config(node: &NodeHandle) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", node.local_addr().to_string());
    config
}

fn rows(codec: &str) -> Vec<Row> {
    let base_ms = Clock::system().now_ms() - 60_000;
    (0..RECORDS)
        .map(|i| Row {
            key: format!("key-{}", i % 37).into_bytes(),
            value: format!("{codec}-value-{i}-{}", "x".repeat(i % 200)).into_bytes(),
            headers: vec![
                ("index".to_string(), Some(i.to_string().into_bytes())),
                ("empty".to_string(), None),
            ],
            timestamp_ms: base_ms + i as i64,
        })
        .collect()
}

async fn produce(
    node: &NodeHandle,
    topic: &str,
    codec: &str,
    rows: &[Row],
) -> BTreeMap<(i32, i64), Row> {
    let producer: FutureProducer = client_config(node)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", codec)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    // Queue every record before waiting for any (send_result enqueues at once), so
    // librdkafka batches them as an application would see it do.
    let mut pending = Vec::with_capacity(rows.len());
    for row in rows {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &row.headers {
            headers = headers.insert(Header {
                key: key.as_str(),
                value: value.as_deref(),
            });
        }
        let record = FutureRecord::to(topic)
            .key(&row.key)
            .payload(&row.value)
            .headers(headers)
            .timestamp(row.timestamp_ms);
        match producer.send_result(record) {
            Ok(delivery) => pending.push(delivery),
            Err((e, _)) => panic!("{topic}: enqueue failed: {e}"),
        }
    }
    let mut results = Vec::with_capacity(pending.len());
    for delivery in pending {
        results.push(delivery.await.expect("delivery report"));
    }
    let mut produced = BTreeMap::new();
    for (row, result) in rows.iter().zip(results) {
        let delivery = result.unwrap_or_else(|(e, _)| panic!("{topic}: delivery failed: {e}"));
        assert!(
            produced
                .insert((delivery.partition, delivery.offset), row.clone())
                .is_none(),
            "{topic}: two records at {}/{}",
            delivery.partition,
            delivery.offset
        );
    }
    produced
}

/// Reads `topic` from the beginning until `expected` records came (blocking: run it off
/// the runtime that serves the node).
fn consume_with(
    mut config: ClientConfig,
    topic: &str,
    expected: usize,
) -> BTreeMap<(i32, i64), Row> {
    let consumer: BaseConsumer = config
        .set("group.id", "rdkafka-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut consumed = BTreeMap::new();
    let deadline = Instant::now() + TIMEOUT;
    while consumed.len() < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.unwrap_or_else(|e| panic!("{topic}: consume failed: {e}"));
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        let row = Row {
            key: message.key().unwrap_or_default().to_vec(),
            value: message.payload().unwrap_or_default().to_vec(),
            headers,
            timestamp_ms: message.timestamp().to_millis().unwrap_or(-1),
        };
        consumed.insert((message.partition(), message.offset()), row);
    }
    consumed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_produces_and_consumes_every_codec_exactly() {
    let dir = ScratchDir::new("rdkafka-clients");
    let node = start(&dir).await;
    let admin: AdminClient<DefaultClientContext> = client_config(&node).create().expect("admin");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let names: Vec<String> = CODECS.iter().map(|codec| format!("rk-{codec}")).collect();
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|name| {
            NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1)).set("retention.ms", "-1")
        })
        .collect();
    for result in admin.create_topics(&topics, &options).await.unwrap() {
        result.unwrap_or_else(|(topic, e)| panic!("create {topic}: {e}"));
    }
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic("rk-none")], &options)
        .await
        .unwrap();
    let config = described[0].as_ref().expect("describe configs");
    let retention = config.get("retention.ms").expect("retention.ms described");
    assert_eq!(retention.value.as_deref(), Some("-1"));

    for (codec, topic) in CODECS.iter().zip(&names) {
        let rows = rows(codec);
        let produced = produce(&node, topic, codec, &rows).await;
        assert_eq!(produced.len(), RECORDS, "{topic}");
        let consumed = tokio::task::spawn_blocking({
            let node_addr = node.local_addr();
            let topic = topic.clone();
            move || {
                let mut config = ClientConfig::new();
                config.set("bootstrap.servers", node_addr.to_string());
                consume_with(config, &topic, RECORDS)
            }
        })
        .await
        .unwrap();
        assert_eq!(consumed.len(), produced.len(), "{topic}: record count");
        for (at, row) in &produced {
            assert_eq!(consumed.get(at), Some(row), "{topic}: record at {at:?}");
        }
        // Offsets per partition are dense from 0: nothing missing, nothing twice.
        for partition in 0..PARTITIONS {
            let offsets: Vec<i64> = produced
                .keys()
                .filter(|(p, _)| *p == partition)
                .map(|(_, o)| *o)
                .collect();
            let dense: Vec<i64> = (0..offsets.len() as i64).collect();
            assert_eq!(offsets, dense, "{topic} partition {partition}");
        }
    }
    node.shutdown().await.unwrap();
}
