//! A node started in-process on 127.0.0.1:0 with a real disk in a scratch directory,
//! driven through the project's own Kafka client: produce/consume with every codec,
//! keys, headers and timestamps; list offsets; create/delete topics; configs; acks
//! 0/1/all; long-poll fetches; and a restart that must serve everything again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use skald::base::Rng;
use skald::broker::{Node, NodeConfig, NodeHandle};
use skald::client::{
    Acks, Admin, AlterConfigOp, ClientConfig, Cluster, ConfigResource, Consumer, ConsumerConfig,
    ConsumerRecord, NewTopic, Producer, ProducerConfig, ProducerRecord, StartOffset,
    TopicPartition,
};
use skald::io::real::{RealDisk, ScratchDir};
use skald::io::{Clock, Disk};
use skald::protocol::Compression;

async fn start(dir: &ScratchDir, settings: &[(&str, &str)]) -> NodeHandle {
    let disk: Arc<dyn Disk> = Arc::new(RealDisk::open(dir.path()).unwrap());
    let mut config = NodeConfig::new(1, "127.0.0.1:0".parse().unwrap());
    for (k, v) in settings {
        config.set(k, v).unwrap();
    }
    Node::start(config, disk, Clock::system(), Rng::with_seed(1))
        .await
        .unwrap()
}

async fn cluster(node: &NodeHandle) -> Arc<Cluster> {
    let config = ClientConfig::new(vec![node.local_addr().to_string()]);
    Cluster::connect(config).await.unwrap()
}

async fn create(admin: &Admin, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut topic = NewTopic::new(name, partitions, 1);
    for (k, v) in configs {
        topic.configs.insert(k.to_string(), v.to_string());
    }
    let results = admin.create_topics(&[topic], 10_000, false).await.unwrap();
    assert!(results[0].1.is_ok(), "{results:?}");
}

async fn consume_all(
    cluster: &Arc<Cluster>,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<ConsumerRecord> {
    let mut consumer = Consumer::new(cluster.clone(), ConsumerConfig::default());
    for p in 0..partitions {
        consumer.assign(TopicPartition::new(topic, p), StartOffset::Earliest);
    }
    let mut out = Vec::new();
    for _ in 0..200 {
        if out.len() >= expected {
            break;
        }
        out.extend(consumer.poll().await.unwrap());
    }
    out
}

fn record(topic: &str, i: usize) -> ProducerRecord {
    ProducerRecord::new(topic, Bytes::from(format!("value-{i}")))
        .with_key(Bytes::from(format!("key-{}", i % 7)))
        .with_header("h", Some(Bytes::from(format!("{i}"))))
        .with_timestamp_ms(1_700_000_000_000 + i as i64)
}

fn check(records: &[ConsumerRecord], count: usize) {
    assert_eq!(records.len(), count);
    let mut by_value: BTreeMap<String, &ConsumerRecord> = BTreeMap::new();
    for r in records {
        by_value.insert(
            String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap(),
            r,
        );
    }
    for i in 0..count {
        let r = by_value[&format!("value-{i}")];
        assert_eq!(r.key.as_deref(), Some(format!("key-{}", i % 7).as_bytes()));
        assert_eq!(
            r.headers,
            vec![("h".to_string(), Some(Bytes::from(format!("{i}"))))]
        );
        assert_eq!(r.timestamp_ms, 1_700_000_000_000 + i as i64);
    }
    // Per-partition order is send order.
    let mut last: BTreeMap<i32, (i64, usize)> = BTreeMap::new();
    for r in records {
        let i: usize = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()[6..]
            .parse()
            .unwrap();
        if let Some((offset, previous)) = last.get(&r.partition) {
            assert!(
                r.offset > *offset && i > *previous,
                "order within partition {}",
                r.partition
            );
        }
        last.insert(r.partition, (r.offset, i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips_and_survives_a_restart() {
    let dir = ScratchDir::new("broker-codecs");
    let node = start(&dir, &[]).await;
    let c = cluster(&node).await;
    let admin = Admin::new(c.clone());
    let count = 500;
    for codec in Compression::ALL {
        let topic = format!("codec-{codec:?}").to_lowercase();
        create(&admin, &topic, 3, &[]).await;
        let producer = Producer::new(
            c.clone(),
            ProducerConfig {
                compression: codec,
                acks: Acks::All,
                ..ProducerConfig::default()
            },
        );
        let mut futures = Vec::new();
        for i in 0..count {
            futures.push(producer.send(record(&topic, i)).await.unwrap());
        }
        for f in futures {
            f.await.unwrap();
        }
        producer.close().await;
        check(&consume_all(&c, &topic, 3, count).await, count);
    }
    drop(admin);
    drop(c);
    node.shutdown().await.unwrap();

    let node = start(&dir, &[]).await;
    let c = cluster(&node).await;
    for codec in Compression::ALL {
        let topic = format!("codec-{codec:?}").to_lowercase();
        check(&consume_all(&c, &topic, 3, count).await, count);
    }
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_one_all_and_fsync_topics_are_all_stored() {
    let dir = ScratchDir::new("broker-acks");
    let node = start(&dir, &[]).await;
    let c = cluster(&node).await;
    let admin = Admin::new(c.clone());
    create(&admin, "acks", 1, &[("flush.messages", "1")]).await;
    for (n, acks) in [Acks::None, Acks::Leader, Acks::All]
        .into_iter()
        .enumerate()
    {
        let producer = Producer::new(
            c.clone(),
            ProducerConfig {
                acks,
                ..ProducerConfig::default()
            },
        );
        for i in 0..10 {
            let md = producer
                .send_and_wait(ProducerRecord::new("acks", Bytes::from(format!("{n}-{i}"))))
                .await
                .unwrap();
            if acks == Acks::None {
                assert_eq!(md.offset, -1);
            } else {
                assert_eq!(md.offset, (n * 10 + i) as i64);
            }
        }
        producer.close().await;
    }
    let records = consume_all(&c, "acks", 1, 30).await;
    let values: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    let expected: Vec<String> = (0..3)
        .flat_map(|n| (0..10).map(move |i| format!("{n}-{i}")))
        .collect();
    assert_eq!(values, expected);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_admin_and_delete_records() {
    let dir = ScratchDir::new("broker-admin");
    let node = start(&dir, &[]).await;
    let c = cluster(&node).await;
    let admin = Admin::new(c.clone());
    create(&admin, "t", 2, &[("retention.ms", "123456")]).await;
    // Already exists; bad config; bad partitions.
    let results = admin
        .create_topics(
            &[
                NewTopic::new("t", 1, 1),
                {
                    let mut t = NewTopic::new("u", 1, 1);
                    t.configs.insert("no.such.config".into(), "1".into());
                    t
                },
                NewTopic::new("v", 0, 1),
                NewTopic::new("w", 1, 3),
            ],
            10_000,
            false,
        )
        .await
        .unwrap();
    let codes: Vec<Option<i16>> = results
        .iter()
        .map(|(_, r)| match r {
            Ok(()) => None,
            Err(skald::client::ClientError::Kafka { code, .. }) => Some(*code),
            Err(e) => panic!("{e}"),
        })
        .collect();
    assert_eq!(codes, vec![Some(36), Some(40), Some(37), Some(38)]);
    // validate_only creates nothing.
    let results = admin
        .create_topics(&[NewTopic::new("dry", 1, 1)], 10_000, true)
        .await
        .unwrap();
    assert!(results[0].1.is_ok());
    let topics = admin.list_topics(false).await.unwrap();
    assert_eq!(topics, vec!["t".to_string()]);

    let producer = Producer::new(c.clone(), ProducerConfig::default());
    for i in 0..5 {
        producer
            .send_and_wait(
                ProducerRecord::new("t", Bytes::from("x"))
                    .with_partition(0)
                    .with_timestamp_ms(1000 + i * 10),
            )
            .await
            .unwrap();
    }
    let tp = TopicPartition::new("t", 0);
    let ask = |ts: i64| [(tp.clone(), ts)].into_iter().collect::<BTreeMap<_, _>>();
    let get = |m: BTreeMap<TopicPartition, Result<(i64, i64), skald::client::ClientError>>| {
        m.into_values().next().unwrap().unwrap()
    };
    assert_eq!(get(admin.list_offsets(&ask(-2)).await).0, 0);
    assert_eq!(get(admin.list_offsets(&ask(-1)).await).0, 5);
    assert_eq!(get(admin.list_offsets(&ask(1015)).await), (2, 1020));
    assert_eq!(get(admin.list_offsets(&ask(99_999)).await).0, -1);

    let deleted = admin
        .delete_records(&[(tp.clone(), 3)].into_iter().collect(), 10_000)
        .await;
    assert_eq!(deleted.into_values().next().unwrap().unwrap(), 3);
    assert_eq!(get(admin.list_offsets(&ask(-2)).await).0, 3);

    // Configs: describe shows the override; alter validates keys.
    let configs = admin
        .describe_configs(&ConfigResource::Topic("t".into()), None)
        .await
        .unwrap();
    let retention = configs.iter().find(|e| e.name == "retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("123456"));
    admin
        .incremental_alter_configs(
            &ConfigResource::Topic("t".into()),
            &[AlterConfigOp::Set("retention.ms".into(), "99".into())],
            false,
        )
        .await
        .unwrap();
    let bad = admin
        .incremental_alter_configs(
            &ConfigResource::Topic("t".into()),
            &[AlterConfigOp::Set("bogus".into(), "1".into())],
            false,
        )
        .await;
    assert!(
        matches!(bad, Err(skald::client::ClientError::Kafka { code: 40, .. })),
        "{bad:?}"
    );

    let deleted = admin
        .delete_topics(&["t".to_string()], 10_000)
        .await
        .unwrap();
    assert!(deleted[0].1.is_ok());
    assert!(admin.list_topics(false).await.unwrap().is_empty());
    node.shutdown().await.unwrap();
    // The deleted topic's directories are gone.
    assert!(!dir.path().join("t-0").exists());
    let node = start(&dir, &[]).await;
    let c = cluster(&node).await;
    assert!(Admin::new(c).list_topics(false).await.unwrap().is_empty());
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_is_woken_by_an_append() {
    let dir = ScratchDir::new("broker-longpoll");
    let node = start(&dir, &[]).await;
    let c = cluster(&node).await;
    create(&Admin::new(c.clone()), "lp", 1, &[]).await;
    let mut consumer = Consumer::new(
        c.clone(),
        ConsumerConfig {
            max_wait_ms: 5_000,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign(TopicPartition::new("lp", 0), StartOffset::Earliest);
    let producer_cluster = c.clone();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let producer = Producer::new(producer_cluster, ProducerConfig::default());
        producer
            .send_and_wait(ProducerRecord::new("lp", Bytes::from("wake")))
            .await
            .unwrap();
    });
    let started = tokio::time::Instant::now();
    let mut got = Vec::new();
    let mut polls = 0;
    while got.is_empty() && started.elapsed() < Duration::from_secs(10) {
        got = consumer.poll().await.unwrap();
        polls += 1;
    }
    // Each poll is one Fetch held by the broker: a broker that answered at once would
    // take many polls to span the 300 ms.
    assert!(polls <= 3, "{polls} polls: the fetch was not held");
    let waited = started.elapsed();
    sender.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        waited >= Duration::from_millis(250),
        "the fetch waited for data: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(4_000),
        "woken by the append, not the timeout: {waited:?}"
    );
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_creation_follows_the_setting() {
    let dir = ScratchDir::new("broker-auto");
    let node = start(&dir, &[("num.partitions", "2")]).await;
    let mut config = ClientConfig::new(vec![node.local_addr().to_string()]);
    config.allow_auto_topic_creation = true;
    let c = Cluster::connect(config).await.unwrap();
    assert_eq!(c.partition_count("auto").await.unwrap(), 2);
    node.shutdown().await.unwrap();

    let dir = ScratchDir::new("broker-noauto");
    let node = start(&dir, &[("auto.create.topics.enable", "false")]).await;
    let mut config = ClientConfig::new(vec![node.local_addr().to_string()]);
    config.allow_auto_topic_creation = true;
    config.metadata_wait_ms = 300;
    let c = Cluster::connect(config).await.unwrap();
    assert!(c.partition_count("auto").await.is_err());
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_log_dirs_lists_every_partition_with_its_size() {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_protocol::messages::{DescribeLogDirsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let dir = ScratchDir::new("broker-logdirs");
    let node = start(&dir, &[]).await;
    let c = cluster(&node).await;
    let admin = Admin::new(c.clone());
    create(&admin, "a", 2, &[]).await;
    create(&admin, "b", 1, &[]).await;
    let producer = Producer::new(c.clone(), ProducerConfig::default());
    for i in 0..10 {
        producer
            .send_and_wait(record("a", i).with_partition(1))
            .await
            .unwrap();
    }
    let conn = c.any_connection().await.unwrap();
    let name = |s: &str| TopicName(StrBytes::from_string(s.to_string()));
    for version in 1..=4 {
        let all = conn
            .send_at(
                &DescribeLogDirsRequest::default().with_topics(None),
                version,
            )
            .await
            .unwrap();
        assert_eq!(all.error_code, 0);
        assert_eq!(all.results.len(), 1);
        let d = &all.results[0];
        assert_eq!(d.error_code, 0);
        assert_eq!(d.log_dir.as_str(), skald::broker::config::DEFAULT_LOG_DIR);
        if version >= 4 {
            assert_eq!((d.total_bytes, d.usable_bytes), (-1, -1));
        }
        let listed: Vec<(String, i32, i64)> = d
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index, p.partition_size))
            })
            .collect();
        assert_eq!(
            listed
                .iter()
                .map(|(t, p, _)| (t.as_str(), *p))
                .collect::<Vec<_>>(),
            vec![("a", 0), ("a", 1), ("b", 0)],
            "v{version}"
        );
        assert_eq!(listed[0].2, 0);
        assert!(listed[1].2 > 100, "{listed:?}");
        assert!(d
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .all(|p| p.offset_lag == 0 && !p.is_future_key));

        // A filter: a's partition 1, an unknown partition and an unknown topic.
        let some = conn
            .send_at(
                &DescribeLogDirsRequest::default().with_topics(Some(vec![
                    DescribableLogDirTopic::default()
                        .with_topic(name("a"))
                        .with_partitions(vec![1, 7]),
                    DescribableLogDirTopic::default()
                        .with_topic(name("nope"))
                        .with_partitions(vec![0]),
                ])),
                version,
            )
            .await
            .unwrap();
        let d = &some.results[0];
        assert_eq!(d.topics.len(), 1);
        assert_eq!(d.topics[0].name.0.as_str(), "a");
        assert_eq!(d.topics[0].partitions.len(), 1);
        assert_eq!(d.topics[0].partitions[0].partition_index, 1);
        assert_eq!(d.topics[0].partitions[0].partition_size, listed[1].2);
    }
    node.shutdown().await.unwrap();
}

/// The Kafka error code of a client result, or None for success.
fn kafka_code<T: std::fmt::Debug>(r: &Result<T, skald::client::ClientError>) -> Option<i16> {
    match r {
        Ok(_) => None,
        Err(skald::client::ClientError::Kafka { code, .. }) => Some(*code),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_topic_configs_are_honoured_stored_or_refused() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::{AlterConfigsRequest, DescribeConfigsRequest};
    use kafka_protocol::protocol::StrBytes;

    let dir = ScratchDir::new("broker-topic-configs");
    let node = start(&dir, &[("log.cleaner.delete.retention.ms", "1000")]).await;
    let c = cluster(&node).await;
    let admin = Admin::new(c.clone());
    create(
        &admin,
        "ok",
        1,
        &[
            ("cleanup.policy", "delete"),
            ("compression.type", "producer"),
            ("min.insync.replicas", "2"),
            ("unclean.leader.election.enable", "true"),
            ("min.cleanable.dirty.ratio", "0.3"),
            ("message.downconversion.enable", "false"),
        ],
    )
    .await;
    // Refused: what the log cannot do, bad values, unknown names — INVALID_CONFIG with
    // a message saying why.
    for (key, value, why) in [
        (
            "cleanup.policy",
            "compact",
            "log compaction is not supported yet",
        ),
        ("compression.type", "gzip", "recompression"),
        ("preallocate", "true", "not supported"),
        ("min.insync.replicas", "0", "at least 1"),
        ("max.message.bytes", "big", "INT"),
        (
            "no.such.config",
            "1",
            "Unknown topic config name: no.such.config",
        ),
    ] {
        let mut topic = NewTopic::new("bad", 1, 1);
        topic.configs.insert(key.into(), value.into());
        let results = admin.create_topics(&[topic], 10_000, false).await.unwrap();
        let r = &results[0].1;
        assert_eq!(kafka_code(r), Some(40), "{key}={value}: {r:?}");
        assert!(format!("{r:?}").contains(why), "{key}={value}: {r:?}");
        let bad = admin
            .incremental_alter_configs(
                &ConfigResource::Topic("ok".into()),
                &[AlterConfigOp::Set(key.into(), value.into())],
                false,
            )
            .await;
        assert_eq!(kafka_code(&bad), Some(40), "{key}={value}: {bad:?}");
    }
    assert_eq!(
        admin.list_topics(false).await.unwrap(),
        vec!["ok".to_string()]
    );

    // min.insync.replicas=2 with one replica: acks=all refused, acks=1 stored.
    for (acks, expected) in [(Acks::All, Some(19)), (Acks::Leader, None)] {
        let producer = Producer::new(
            c.clone(),
            ProducerConfig {
                acks,
                retries_max: 0,
                ..ProducerConfig::default()
            },
        );
        let sent = producer
            .send_and_wait(ProducerRecord::new("ok", Bytes::from("x")))
            .await;
        assert_eq!(kafka_code(&sent), expected, "{acks:?}: {sent:?}");
        producer.close().await;
    }

    // DescribeConfigs v4: every topic config, with type, source, synonyms and docs.
    let conn = c.any_connection().await.unwrap();
    let describe = |name: &str, t: i8| {
        DescribeConfigsRequest::default()
            .with_include_synonyms(true)
            .with_include_documentation(true)
            .with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(t)
                .with_resource_name(StrBytes::from_string(name.to_string()))])
    };
    let response = conn.send_at(&describe("ok", 2), 4).await.unwrap();
    let configs = &response.results[0].configs;
    let names: Vec<&str> = configs.iter().map(|e| e.name.as_str()).collect();
    let expected: Vec<&str> = skald::log::config::TOPIC_CONFIGS
        .iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, expected);
    assert!(names.contains(&"cleanup.policy") && names.contains(&"min.insync.replicas"));
    let entry = |name: &str| configs.iter().find(|e| e.name.as_str() == name).unwrap();
    for (name, value, source, config_type) in [
        ("cleanup.policy", "delete", 1, 7),
        ("min.insync.replicas", "2", 1, 3),
        ("unclean.leader.election.enable", "true", 1, 1),
        ("min.cleanable.dirty.ratio", "0.3", 1, 6),
        ("delete.retention.ms", "1000", 4, 5),
        ("segment.jitter.ms", "0", 5, 5),
        ("message.timestamp.type", "CreateTime", 5, 2),
    ] {
        let e = entry(name);
        assert_eq!(e.value.as_deref(), Some(value), "{name}");
        assert_eq!(e.config_source, source, "{name}");
        assert_eq!(e.config_type, config_type, "{name}");
        assert!(!e.read_only && !e.is_sensitive, "{name}");
        assert!(e.documentation.is_some(), "{name}");
    }
    // Synonyms, most specific first: the override, then the broker's.
    let synonyms: Vec<(String, i8)> = entry("delete.retention.ms")
        .synonyms
        .iter()
        .map(|s| (s.name.to_string(), s.source))
        .collect();
    assert_eq!(
        synonyms,
        vec![
            ("log.cleaner.delete.retention.ms".to_string(), 4),
            ("log.cleaner.delete.retention.ms".to_string(), 5)
        ]
    );
    assert_eq!(entry("cleanup.policy").synonyms[0].source, 1);

    // Broker configs are read only: every alter is INVALID_CONFIG, known key or not.
    let broker = conn.send_at(&describe("1", 4), 4).await.unwrap();
    let min_isr = broker.results[0]
        .configs
        .iter()
        .find(|e| e.name.as_str() == "min.insync.replicas")
        .unwrap();
    assert!(min_isr.read_only);
    assert_eq!(min_isr.config_type, 3);
    for key in ["log.retention.ms", "no.such.broker.config"] {
        let bad = admin
            .incremental_alter_configs(
                &ConfigResource::Broker(skald::base::NodeId(1)),
                &[AlterConfigOp::Set(key.into(), "1".into())],
                false,
            )
            .await;
        assert_eq!(kafka_code(&bad), Some(40), "{key}: {bad:?}");
    }
    let legacy = conn
        .send_at(
            &AlterConfigsRequest::default().with_resources(vec![
                kafka_protocol::messages::alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("ok"))
                    .with_configs(vec![
                        kafka_protocol::messages::alter_configs_request::AlterableConfig::default()
                            .with_name(StrBytes::from_static_str("cleanup.policy"))
                            .with_value(Some(StrBytes::from_static_str("compact"))),
                    ]),
            ]),
            2,
        )
        .await
        .unwrap();
    assert_eq!(legacy.responses[0].error_code, 40);
    node.shutdown().await.unwrap();
}
