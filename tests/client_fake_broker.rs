//! The client against a scripted fake broker: a tokio TcpListener on 127.0.0.1:0 that
//! decodes requests with kafka-protocol and answers what each test scripts. No Skald
//! broker is involved, so these tests pin the client's own behaviour: version
//! negotiation, metadata refresh, produce retries and batches, fetch decoding, request
//! timeouts, pipelining, connection errors.

#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{
    decode_request_header_from_buffer, Decodable, Encodable, HeaderVersion, StrBytes,
};
use skald::base::Offset;
use skald::client::connection::{Connection, ConnectionConfig};
use skald::client::consumer::{decode_fetched, EARLIEST_TIMESTAMP};
use skald::client::producer::Acks;
use skald::client::*;
use skald::net::frame::{read_frame, write_frame};
use skald::protocol::{parse_batches, records, Compression, RecordBatchBuilder, RecordInput};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------- the fake broker

/// A decoded request.
#[derive(Clone, Debug)]
enum Req {
    ApiVersions,
    Metadata,
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    CreateTopics(CreateTopicsRequest),
    Other,
}

/// A scripted answer.
enum Reply {
    ApiVersions(ApiVersionsResponse),
    Metadata(MetadataResponse),
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    CreateTopics(CreateTopicsResponse),
    /// Never answer (a hung broker, or acks=0).
    Silent,
}

fn encode_body<T: Encodable + HeaderVersion>(correlation_id: i32, version: i16, body: &T) -> Bytes {
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, T::header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn encode_reply(reply: &Reply, correlation_id: i32, version: i16) -> Option<Bytes> {
    Some(match reply {
        Reply::ApiVersions(r) => encode_body(correlation_id, version, r),
        Reply::Metadata(r) => encode_body(correlation_id, version, r),
        Reply::Produce(r) => encode_body(correlation_id, version, r),
        Reply::Fetch(r) => encode_body(correlation_id, version, r),
        Reply::ListOffsets(r) => encode_body(correlation_id, version, r),
        Reply::CreateTopics(r) => encode_body(correlation_id, version, r),
        Reply::Silent => return None,
    })
}

fn decode_request(frame: Bytes) -> (RequestHeader, Req) {
    let mut buf = frame;
    let header = decode_request_header_from_buffer(&mut buf).unwrap();
    let version = header.request_api_version;
    let req = match ApiKey::try_from(header.request_api_key).unwrap() {
        ApiKey::ApiVersions => {
            ApiVersionsRequest::decode(&mut buf, version).unwrap();
            Req::ApiVersions
        }
        ApiKey::Metadata => {
            MetadataRequest::decode(&mut buf, version).unwrap();
            Req::Metadata
        }
        ApiKey::Produce => Req::Produce(ProduceRequest::decode(&mut buf, version).unwrap()),
        ApiKey::Fetch => Req::Fetch(FetchRequest::decode(&mut buf, version).unwrap()),
        ApiKey::ListOffsets => {
            Req::ListOffsets(ListOffsetsRequest::decode(&mut buf, version).unwrap())
        }
        ApiKey::CreateTopics => {
            Req::CreateTopics(CreateTopicsRequest::decode(&mut buf, version).unwrap())
        }
        _ => Req::Other,
    };
    (header, req)
}

type Handler = Arc<dyn Fn(&RequestHeader, &Req) -> Reply + Send + Sync>;

/// A fake broker listening on 127.0.0.1; every request is logged with its header.
struct FakeBroker {
    addr: String,
    port: i32,
    log: Arc<Mutex<Vec<(RequestHeader, Req)>>>,
}

impl FakeBroker {
    async fn bind() -> (TcpListener, String, i32) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, format!("127.0.0.1:{port}"), i32::from(port))
    }

    fn serve(listener: TcpListener, addr: String, port: i32, handler: Handler) -> FakeBroker {
        let log: Arc<Mutex<Vec<(RequestHeader, Req)>>> = Arc::default();
        let accept_log = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve_connection(
                    stream,
                    handler.clone(),
                    accept_log.clone(),
                ));
            }
        });
        FakeBroker { addr, port, log }
    }

    async fn start(
        handler: impl Fn(&RequestHeader, &Req) -> Reply + Send + Sync + 'static,
    ) -> FakeBroker {
        let (listener, addr, port) = FakeBroker::bind().await;
        FakeBroker::serve(listener, addr, port, Arc::new(handler))
    }

    /// Requests received with the given api key, in arrival order.
    fn requests(&self, key: ApiKey) -> Vec<(RequestHeader, Req)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(header, _)| header.request_api_key == key as i16)
            .cloned()
            .collect()
    }

    /// Waits (bounded: 5 s) until the broker has decoded a request of this kind; an
    /// acks=0 produce completes on the client before the fake broker has read it.
    async fn await_request(&self, key: ApiKey) -> (RequestHeader, Req) {
        for _ in 0..500 {
            if let Some(found) = self.requests(key).pop() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no {key:?} request reached the fake broker within 5 s");
    }
}

async fn serve_connection(
    stream: TcpStream,
    handler: Handler,
    log: Arc<Mutex<Vec<(RequestHeader, Req)>>>,
) {
    let (mut reader, mut writer) = stream.into_split();
    // Kafka answers the requests of one connection in order; so does this loop.
    while let Ok(Some(frame)) = read_frame(&mut reader, 64 << 20).await {
        let (header, req) = decode_request(frame);
        log.lock().unwrap().push((header.clone(), req.clone()));
        let reply = handler(&header, &req);
        if let Some(body) = encode_reply(&reply, header.correlation_id, header.request_api_version)
        {
            if write_frame(&mut writer, &body).await.is_err() {
                return;
            }
        }
    }
}

fn all_api_versions() -> ApiVersionsResponse {
    versions_response(
        &ApiKey::iter()
            .map(|key| (key, key.valid_versions().min, key.valid_versions().max))
            .collect::<Vec<_>>(),
    )
}

fn versions_response(ranges: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        ranges
            .iter()
            .map(|(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(*key as i16)
                    .with_min_version(*min)
                    .with_max_version(*max)
            })
            .collect(),
    )
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// Metadata naming `brokers` (node, port) and `topics` with (partition, leader, epoch).
/// A topic in a scripted metadata answer: name and (partition, leader, error code) rows.
type TopicSpec<'a> = (&'a str, Vec<(i32, i32, i32)>);

fn metadata(brokers: &[(i32, i32)], topics: &[TopicSpec]) -> MetadataResponse {
    MetadataResponse::default()
        .with_controller_id(BrokerId(brokers[0].0))
        .with_brokers(
            brokers
                .iter()
                .map(|(node, port)| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(*node))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(*port)
                })
                .collect(),
        )
        .with_topics(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    MetadataResponseTopic::default()
                        .with_name(Some(name(topic)))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|(partition, leader, epoch)| {
                                    MetadataResponsePartition::default()
                                        .with_partition_index(*partition)
                                        .with_leader_id(BrokerId(*leader))
                                        .with_leader_epoch(*epoch)
                                        .with_replica_nodes(vec![BrokerId(*leader)])
                                        .with_isr_nodes(vec![BrokerId(*leader)])
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// A produce response giving `(error_code, base_offset)` to every partition asked.
fn produce_reply(
    request: &ProduceRequest,
    answer: impl Fn(&str, i32) -> (i16, i64),
) -> ProduceResponse {
    ProduceResponse::default().with_responses(
        request
            .topic_data
            .iter()
            .map(|topic| {
                TopicProduceResponse::default()
                    .with_name(topic.name.clone())
                    .with_partition_responses(
                        topic
                            .partition_data
                            .iter()
                            .map(|p| {
                                let (error_code, base_offset) = answer(&topic.name.0, p.index);
                                PartitionProduceResponse::default()
                                    .with_index(p.index)
                                    .with_error_code(error_code)
                                    .with_base_offset(base_offset)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

fn fetch_reply(
    topic: &str,
    partition: i32,
    error_code: i16,
    high_watermark: i64,
    records: Option<Bytes>,
) -> FetchResponse {
    FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(name(topic))
        .with_partitions(vec![PartitionData::default()
            .with_partition_index(partition)
            .with_error_code(error_code)
            .with_high_watermark(high_watermark)
            .with_records(records)])])
}

fn list_offsets_reply(
    request: &ListOffsetsRequest,
    answer: impl Fn(i64) -> i64,
) -> ListOffsetsResponse {
    ListOffsetsResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|topic| {
                ListOffsetsTopicResponse::default()
                    .with_name(topic.name.clone())
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|p| {
                                ListOffsetsPartitionResponse::default()
                                    .with_partition_index(p.partition_index)
                                    .with_offset(answer(p.timestamp))
                                    .with_timestamp(-1)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// A batch of `count` records "k{i}"/"v{i}" at `base_offset`.
fn batch(base_offset: i64, count: i64, codec: Compression) -> Bytes {
    let mut builder = RecordBatchBuilder::new(codec).base_offset(Offset(base_offset));
    for i in 0..count {
        let offset = base_offset + i;
        builder.append(RecordInput {
            timestamp_ms: 1_000 + offset,
            key: Some(Bytes::from(format!("k{offset}"))),
            value: Some(Bytes::from(format!("v{offset}"))),
            headers: vec![("h".to_string(), Some(Bytes::from_static(b"x")))],
        });
    }
    builder.build().unwrap()
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new(vec![bootstrap.to_string()]);
    config.retry_backoff_ms = 20;
    config.metadata_wait_ms = 2_000;
    config.connection.request_timeout_ms = 2_000;
    config
}

fn fast_producer() -> ProducerConfig {
    ProducerConfig {
        linger_ms: 1,
        retry_backoff_ms: 20,
        delivery_timeout_ms: 5_000,
        ..ProducerConfig::default()
    }
}

/// Answers ApiVersions and Metadata for one broker (node 1) leading `topic` (1 partition).
fn standard(port: i32, topic: &'static str, req: &Req) -> Option<Reply> {
    match req {
        Req::ApiVersions => Some(Reply::ApiVersions(all_api_versions())),
        Req::Metadata => Some(Reply::Metadata(metadata(
            &[(1, port)],
            &[(topic, vec![(0, 1, 7)])],
        ))),
        _ => None,
    }
}

// ---------------------------------------------------------------- connection

#[tokio::test]
async fn api_versions_negotiation_picks_the_highest_common_version() {
    let broker = FakeBroker::start(|_, req| match req {
        Req::ApiVersions => Reply::ApiVersions(versions_response(&[
            (ApiKey::ApiVersions, 0, 3),
            (ApiKey::Produce, 3, 9),
            (ApiKey::Metadata, 0, 9),
            (ApiKey::Fetch, 4, 17),
        ])),
        Req::Metadata => Reply::Metadata(metadata(&[(1, 1)], &[])),
        _ => Reply::Silent,
    })
    .await;
    let connection = Connection::connect(&broker.addr, ConnectionConfig::default())
        .await
        .unwrap();
    assert_eq!(connection.version(ApiKey::Produce).unwrap(), 9);
    assert_eq!(connection.version(ApiKey::Metadata).unwrap(), 9);
    // The broker goes to 17; this client stops where topics are still named.
    assert_eq!(connection.version(ApiKey::Fetch).unwrap(), 12);
    assert!(matches!(
        connection.version(ApiKey::ListOffsets),
        Err(ClientError::UnsupportedApi { .. })
    ));
    connection.send(&MetadataRequest::default()).await.unwrap();
    let (header, _) = broker.requests(ApiKey::Metadata).pop().unwrap();
    assert_eq!(
        header.request_api_version, 9,
        "requests go out at the negotiated version"
    );
    let (header, _) = broker.requests(ApiKey::ApiVersions).pop().unwrap();
    assert_eq!(header.request_api_version, 3);
    assert_eq!(header.client_id.as_deref(), Some("skald"));
}

#[tokio::test]
async fn request_timeout_is_typed_and_closes_the_connection() {
    let broker = FakeBroker::start(|_, req| match req {
        Req::ApiVersions => Reply::ApiVersions(all_api_versions()),
        _ => Reply::Silent,
    })
    .await;
    let connection_config = ConnectionConfig {
        request_timeout_ms: 200,
        ..ConnectionConfig::default()
    };
    let connection = Connection::connect(&broker.addr, connection_config)
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let result = connection.send(&MetadataRequest::default()).await;
    assert!(
        matches!(
            &result,
            Err(ClientError::RequestTimeout {
                timeout_ms: 200,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(started.elapsed() < Duration::from_millis(1_500));
    assert!(result.unwrap_err().is_indeterminate());
    assert!(connection.is_broken());
    assert!(connection.send(&MetadataRequest::default()).await.is_err());
}

#[tokio::test]
async fn pipelined_requests_are_all_sent_before_any_response_and_matched_in_order() {
    const REQUESTS: usize = 16;
    let (listener, addr, _) = FakeBroker::bind().await;
    // A broker that reads every request before answering any: only a pipelining client
    // gets answers. Answers carry the partition index asked for, times ten.
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let frame = read_frame(&mut reader, 1 << 20).await.unwrap().unwrap();
        let (header, _) = decode_request(frame);
        let body = encode_reply(
            &Reply::ApiVersions(all_api_versions()),
            header.correlation_id,
            header.request_api_version,
        )
        .unwrap();
        write_frame(&mut writer, &body).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..REQUESTS {
            let frame = read_frame(&mut reader, 1 << 20).await.unwrap().unwrap();
            held.push(decode_request(frame));
        }
        for (header, req) in held {
            let Req::ListOffsets(request) = req else {
                panic!("expected ListOffsets")
            };
            let partition = request.topics[0].partitions[0].partition_index;
            let reply =
                Reply::ListOffsets(list_offsets_reply(&request, |_| i64::from(partition) * 10));
            let body =
                encode_reply(&reply, header.correlation_id, header.request_api_version).unwrap();
            write_frame(&mut writer, &body).await.unwrap();
        }
    });
    let connection = Arc::new(
        Connection::connect(&addr, ConnectionConfig::default())
            .await
            .unwrap(),
    );
    let mut handles = Vec::new();
    for i in 0..REQUESTS {
        let connection = connection.clone();
        handles.push(tokio::spawn(async move {
            let request = ListOffsetsRequest::default().with_topics(vec![
                kafka_protocol::messages::list_offsets_request::ListOffsetsTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![
                        kafka_protocol::messages::list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(i as i32),
                    ]),
            ]);
            let response = connection.send(&request).await.unwrap();
            (i, response.topics[0].partitions[0].offset)
        }));
    }
    let outcome = tokio::time::timeout(Duration::from_secs(5), async {
        let mut results = Vec::new();
        for handle in handles {
            results.push(handle.await.unwrap());
        }
        results
    })
    .await
    .expect("every pipelined request is answered");
    for (i, offset) in outcome {
        assert_eq!(offset, i as i64 * 10, "request {i} got its own response");
    }
}

#[tokio::test]
async fn a_response_with_the_wrong_correlation_id_is_a_protocol_error() {
    let (listener, addr, _) = FakeBroker::bind().await;
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let mut first = true;
        while let Ok(Some(frame)) = read_frame(&mut reader, 1 << 20).await {
            let (header, _) = decode_request(frame);
            let (reply, correlation_id) = if first {
                (
                    Reply::ApiVersions(all_api_versions()),
                    header.correlation_id,
                )
            } else {
                (
                    Reply::Metadata(metadata(&[(1, 1)], &[])),
                    header.correlation_id + 1000,
                )
            };
            first = false;
            let body = encode_reply(&reply, correlation_id, header.request_api_version).unwrap();
            write_frame(&mut writer, &body).await.unwrap();
        }
    });
    let connection = Connection::connect(&addr, ConnectionConfig::default())
        .await
        .unwrap();
    let result = connection.send(&MetadataRequest::default()).await;
    assert!(
        matches!(result, Err(ClientError::Protocol { .. })),
        "{result:?}"
    );
    assert!(connection.is_broken());
}

#[tokio::test]
async fn connection_failure_is_a_typed_error() {
    let (listener, addr, _) = FakeBroker::bind().await;
    drop(listener); // nothing listens on the port now
    let result = Connection::connect(&addr, ConnectionConfig::default()).await;
    assert!(
        matches!(&result, Err(ClientError::Connect { addr: a, .. }) if *a == addr),
        "{result:?}"
    );
    assert!(result.unwrap_err().is_retriable());
    let mut cluster_config = config(&addr);
    cluster_config.metadata_wait_ms = 100;
    let result = Cluster::connect(cluster_config).await;
    assert!(
        matches!(result, Err(ClientError::NoBrokerAvailable { .. })),
        "{result:?}"
    );

    // A broker that closes mid-request: the pending request fails as Disconnected.
    let broker = FakeBroker::start(|_, req| match req {
        Req::ApiVersions => Reply::ApiVersions(all_api_versions()),
        _ => panic!("the fake closes the connection"),
    })
    .await;
    let connection = Connection::connect(&broker.addr, ConnectionConfig::default())
        .await
        .unwrap();
    let result = connection.send(&MetadataRequest::default()).await;
    assert!(
        matches!(result, Err(ClientError::Disconnected { .. })),
        "{result:?}"
    );
}

// ---------------------------------------------------------------- metadata + producer

#[tokio::test]
async fn produce_follows_the_leader_after_not_leader_or_follower() {
    // Two brokers. The cluster starts with node 1 leading t-0; node 1 answers produce
    // with NOT_LEADER_OR_FOLLOWER and from then on metadata names node 2.
    let (listener_1, addr_1, port_1) = FakeBroker::bind().await;
    let (listener_2, addr_2, port_2) = FakeBroker::bind().await;
    let leader = Arc::new(AtomicUsize::new(1));
    let metadata_for = move |leader: &AtomicUsize| {
        let node = leader.load(Ordering::SeqCst) as i32;
        Reply::Metadata(metadata(
            &[(1, port_1), (2, port_2)],
            &[("t", vec![(0, node, node)])],
        ))
    };
    let handler = |node: usize, leader: Arc<AtomicUsize>| {
        move |_: &RequestHeader, req: &Req| match req {
            Req::ApiVersions => Reply::ApiVersions(all_api_versions()),
            Req::Metadata => metadata_for(&leader),
            Req::Produce(request) if node == 1 => {
                leader.store(2, Ordering::SeqCst);
                Reply::Produce(produce_reply(request, |_, _| (6, -1)))
            }
            Req::Produce(request) => Reply::Produce(produce_reply(request, |_, _| (0, 42))),
            _ => Reply::Silent,
        }
    };
    let broker_1 = FakeBroker::serve(
        listener_1,
        addr_1.clone(),
        port_1,
        Arc::new(handler(1, leader.clone())),
    );
    let broker_2 = FakeBroker::serve(
        listener_2,
        addr_2,
        port_2,
        Arc::new(handler(2, leader.clone())),
    );
    let cluster = Cluster::connect(config(&addr_1)).await.unwrap();
    let producer = Producer::new(cluster.clone(), fast_producer());
    let result = producer
        .send_and_wait(ProducerRecord::new("t", "hello").with_partition(0))
        .await
        .unwrap();
    assert_eq!((result.partition, result.offset), (0, 42));
    assert_eq!(broker_1.requests(ApiKey::Produce).len(), 1);
    assert_eq!(broker_2.requests(ApiKey::Produce).len(), 1);
    assert_eq!(
        cluster
            .cached_leader(&TopicPartition::new("t", 0))
            .unwrap()
            .0
             .0,
        2
    );
    let _ = broker_2.port;
}

#[tokio::test]
async fn produce_retries_a_retriable_error_then_succeeds_with_the_same_batch() {
    let (listener, addr, port) = FakeBroker::bind().await;
    let produces = Arc::new(AtomicUsize::new(0));
    let counter = produces.clone();
    let broker = FakeBroker::serve(
        listener,
        addr.clone(),
        port,
        Arc::new(move |_, req| {
            if let Some(reply) = standard(port, "t", req) {
                return reply;
            }
            match req {
                Req::Produce(request) => {
                    // NOT_ENOUGH_REPLICAS twice, then success at offset 100.
                    let attempt = counter.fetch_add(1, Ordering::SeqCst);
                    let answer = if attempt < 2 { (19, -1) } else { (0, 100) };
                    Reply::Produce(produce_reply(request, |_, _| answer))
                }
                _ => Reply::Silent,
            }
        }),
    );
    let cluster = Cluster::connect(config(&addr)).await.unwrap();
    let producer = Producer::new(
        cluster,
        ProducerConfig {
            linger_ms: 50,
            compression: Compression::Gzip,
            ..fast_producer()
        },
    );
    let mut deliveries = Vec::new();
    for i in 0..3 {
        let record = ProducerRecord::new("t", format!("v{i}")).with_key(format!("k{i}"));
        deliveries.push(producer.send(record).await.unwrap());
    }
    let mut offsets = Vec::new();
    for delivery in deliveries {
        offsets.push(delivery.await.unwrap().offset);
    }
    assert_eq!(offsets, vec![100, 101, 102]);
    let sent: Vec<Bytes> = broker
        .requests(ApiKey::Produce)
        .into_iter()
        .map(|(_, req)| match req {
            Req::Produce(request) => request.topic_data[0].partition_data[0]
                .records
                .clone()
                .unwrap(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(sent.len(), 3, "two failures and one success");
    assert!(
        sent.iter().all(|bytes| *bytes == sent[0]),
        "a retry resends the same bytes"
    );
    // The batch the fake received is valid v2, gzip, with our three records in order.
    let infos = parse_batches(&sent[0]).unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].header.records_count, 3);
    assert_eq!(infos[0].header.compression().unwrap(), Compression::Gzip);
    let decoded = records(&sent[0]).unwrap();
    let values: Vec<&[u8]> = decoded
        .iter()
        .map(|r| r.value.as_deref().unwrap())
        .collect();
    assert_eq!(values, vec![&b"v0"[..], b"v1", b"v2"]);
}

#[tokio::test]
async fn produce_batches_are_valid_for_every_codec() {
    for codec in Compression::ALL {
        let (listener, addr, port) = FakeBroker::bind().await;
        let broker = FakeBroker::serve(
            listener,
            addr.clone(),
            port,
            Arc::new(move |_, req| {
                if let Some(reply) = standard(port, "t", req) {
                    return reply;
                }
                match req {
                    Req::Produce(request) => Reply::Produce(produce_reply(request, |_, _| (0, 0))),
                    _ => Reply::Silent,
                }
            }),
        );
        let cluster = Cluster::connect(config(&addr)).await.unwrap();
        let producer = Producer::new(
            cluster,
            ProducerConfig {
                compression: codec,
                acks: Acks::Leader,
                linger_ms: 1_000,
                ..fast_producer()
            },
        );
        let mut deliveries = Vec::new();
        for i in 0..50i64 {
            let record = ProducerRecord::new("t", vec![b'x'; i as usize])
                .with_key(format!("key-{i}"))
                .with_header("n", Some(Bytes::from(i.to_string())))
                .with_timestamp_ms(5_000 + i);
            deliveries.push(producer.send(record).await.unwrap());
        }
        producer.flush().await;
        for (i, delivery) in deliveries.into_iter().enumerate() {
            let metadata = delivery.await.unwrap();
            assert_eq!(metadata.offset, i as i64);
            assert_eq!(metadata.timestamp_ms, 5_000 + i as i64);
        }
        let (header, req) = broker.requests(ApiKey::Produce).pop().unwrap();
        let Req::Produce(request) = req else {
            unreachable!()
        };
        assert_eq!(request.acks, 1);
        assert!(header.request_api_version <= 12);
        let bytes = request.topic_data[0].partition_data[0]
            .records
            .clone()
            .unwrap();
        let infos = parse_batches(&bytes).unwrap();
        assert_eq!(infos[0].header.compression().unwrap(), codec, "{codec:?}");
        assert_eq!(infos[0].header.producer_id.0, -1, "not idempotent yet");
        let decoded = records(&bytes).unwrap();
        assert_eq!(decoded.len(), 50);
        for (i, record) in decoded.iter().enumerate() {
            assert_eq!(record.key.as_deref(), Some(format!("key-{i}").as_bytes()));
            assert_eq!(record.value.as_ref().unwrap().len(), i);
            assert_eq!(
                record.headers,
                vec![("n".to_string(), Some(Bytes::from(i.to_string())))]
            );
            assert_eq!(
                infos[0].header.base_timestamp_ms + record.timestamp_delta_ms,
                5_000 + i as i64
            );
        }
        producer.close().await;
        assert!(matches!(
            producer.send(ProducerRecord::new("t", "late")).await,
            Err(ClientError::Closed)
        ));
    }
}

#[tokio::test]
async fn produce_fails_fast_on_a_non_retriable_error_and_times_out_on_endless_retriable_ones() {
    let (listener, addr, port) = FakeBroker::bind().await;
    let broker = FakeBroker::serve(
        listener,
        addr.clone(),
        port,
        Arc::new(move |_, req| {
            if let Some(reply) = standard(port, "t", req) {
                return reply;
            }
            match req {
                Req::Produce(request) => {
                    let value_len = request.topic_data[0].partition_data[0]
                        .records
                        .as_ref()
                        .unwrap()
                        .len();
                    // Big batches are "too large" (not retriable); small ones never get
                    // enough replicas (retriable, forever).
                    let code = if value_len > 500 { 10 } else { 19 };
                    Reply::Produce(produce_reply(request, |_, _| (code, -1)))
                }
                _ => Reply::Silent,
            }
        }),
    );
    let cluster = Cluster::connect(config(&addr)).await.unwrap();
    let producer = Producer::new(
        cluster,
        ProducerConfig {
            delivery_timeout_ms: 400,
            ..fast_producer()
        },
    );
    let error = producer
        .send_and_wait(ProducerRecord::new("t", vec![0u8; 1000]))
        .await
        .unwrap_err();
    assert_eq!(error.kafka_code(), Some(10), "{error}");
    assert_eq!(
        broker.requests(ApiKey::Produce).len(),
        1,
        "no retry of MESSAGE_TOO_LARGE"
    );
    let error = producer
        .send_and_wait(ProducerRecord::new("t", "small"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::DeliveryTimeout { last_error, .. } if last_error.contains("NOT_ENOUGH_REPLICAS")),
        "{error}"
    );
    assert!(
        broker.requests(ApiKey::Produce).len() > 3,
        "retried until the deadline"
    );
}

#[tokio::test]
async fn acks_zero_gets_no_response_and_reports_offset_minus_one() {
    let (listener, addr, port) = FakeBroker::bind().await;
    let broker = FakeBroker::serve(
        listener,
        addr.clone(),
        port,
        Arc::new(move |_, req| standard(port, "t", req).unwrap_or(Reply::Silent)),
    );
    let cluster = Cluster::connect(config(&addr)).await.unwrap();
    let producer = Producer::new(
        cluster,
        ProducerConfig {
            acks: Acks::None,
            ..fast_producer()
        },
    );
    let metadata = producer
        .send_and_wait(ProducerRecord::new("t", "fire"))
        .await
        .unwrap();
    assert_eq!(metadata.offset, -1);
    let (_, req) = broker.await_request(ApiKey::Produce).await;
    let Req::Produce(request) = req else {
        unreachable!()
    };
    assert_eq!(request.acks, 0);
}

#[tokio::test]
async fn keyed_records_land_on_the_murmur2_partition_and_keyless_ones_spread() {
    let (listener, addr, port) = FakeBroker::bind().await;
    let broker = FakeBroker::serve(
        listener,
        addr.clone(),
        port,
        Arc::new(move |_, req| match req {
            Req::ApiVersions => Reply::ApiVersions(all_api_versions()),
            Req::Metadata => Reply::Metadata(metadata(
                &[(1, port)],
                &[("t", (0..4).map(|p| (p, 1, 0)).collect())],
            )),
            Req::Produce(request) => Reply::Produce(produce_reply(request, |_, _| (0, 0))),
            _ => Reply::Silent,
        }),
    );
    let cluster = Cluster::connect(config(&addr)).await.unwrap();
    let producer = Producer::new(
        cluster,
        ProducerConfig {
            batch_bytes: 200,
            ..fast_producer()
        },
    );
    let keyed = producer
        .send_and_wait(ProducerRecord::new("t", "v").with_key("21"))
        .await
        .unwrap();
    // murmur2("21") = -973932308 (Kafka's UtilsTest): positive 1173551340, % 4 = 0.
    assert_eq!(keyed.partition, 1_173_551_340 % 4);
    let mut partitions = std::collections::BTreeSet::new();
    let mut deliveries = Vec::new();
    for _ in 0..40 {
        deliveries.push(
            producer
                .send(ProducerRecord::new("t", vec![0u8; 60]))
                .await
                .unwrap(),
        );
    }
    for delivery in deliveries {
        partitions.insert(delivery.await.unwrap().partition);
    }
    assert_eq!(
        partitions.len(),
        4,
        "sticky round robin moves on when a batch fills"
    );
    assert!(!broker.requests(ApiKey::Produce).is_empty());
}

// ---------------------------------------------------------------- consumer

#[test]
fn decode_fetched_skips_records_below_the_fetch_offset_and_a_partial_tail() {
    let tp = TopicPartition::new("t", 0);
    let mut data = BytesMut::new();
    data.extend_from_slice(&batch(0, 5, Compression::None));
    data.extend_from_slice(&batch(5, 5, Compression::Lz4));
    let partial = batch(10, 5, Compression::None);
    data.extend_from_slice(&partial[..partial.len() - 7]);
    let data = data.freeze();
    let (records, next) = decode_fetched(&tp, &data, 3).unwrap();
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (3..10).collect::<Vec<_>>());
    assert_eq!(next, Some(10));
    assert_eq!(records[0].key.as_deref(), Some(&b"k3"[..]));
    assert_eq!(records[0].value.as_deref(), Some(&b"v3"[..]));
    assert_eq!(records[0].timestamp_ms, 1_003);
    assert_eq!(
        records[6].headers,
        vec![("h".to_string(), Some(Bytes::from_static(b"x")))]
    );
    // Only a partial batch: nothing, and no position change.
    assert_eq!(
        decode_fetched(&tp, &partial.slice(..30), 10).unwrap(),
        (vec![], None)
    );
    // A corrupted batch is an error, not garbage records.
    let mut corrupt = BytesMut::from(&batch(0, 2, Compression::None)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert!(matches!(
        decode_fetched(&tp, &corrupt.freeze(), 0),
        Err(ClientError::Protocol { .. })
    ));
}

#[tokio::test]
async fn consumer_fetches_decodes_skips_and_advances() {
    let (listener, addr, port) = FakeBroker::bind().await;
    let broker = FakeBroker::serve(
        listener,
        addr.clone(),
        port,
        Arc::new(move |_, req| {
            if let Some(reply) = standard(port, "t", req) {
                return reply;
            }
            match req {
                Req::Fetch(request) => {
                    let offset = request.topics[0].partitions[0].fetch_offset;
                    // The log holds batches [0..5) and [5..10); the broker answers from
                    // the batch containing the fetch offset, as Kafka does.
                    let mut data = BytesMut::new();
                    if offset < 5 {
                        data.extend_from_slice(&batch(0, 5, Compression::Snappy));
                    }
                    if offset < 10 {
                        data.extend_from_slice(&batch(5, 5, Compression::Zstd));
                    }
                    let records = (!data.is_empty()).then(|| data.freeze());
                    Reply::Fetch(fetch_reply("t", 0, 0, 10, records))
                }
                _ => Reply::Silent,
            }
        }),
    );
    let cluster = Cluster::connect(config(&addr)).await.unwrap();
    let mut consumer = Consumer::new(cluster, ConsumerConfig::default());
    let tp = TopicPartition::new("t", 0);
    consumer.assign(tp.clone(), StartOffset::Offset(3));
    let records = consumer.poll().await.unwrap();
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (3..10).collect::<Vec<_>>()
    );
    assert_eq!(consumer.position(&tp), Some(10));
    assert_eq!(consumer.high_watermark(&tp), Some(10));
    assert!(consumer.poll().await.unwrap().is_empty());
    let fetches = broker.requests(ApiKey::Fetch);
    let offsets: Vec<i64> = fetches
        .iter()
        .map(|(_, req)| match req {
            Req::Fetch(f) => f.topics[0].partitions[0].fetch_offset,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(offsets, vec![3, 10]);
    let Req::Fetch(first) = &fetches[0].1 else {
        unreachable!()
    };
    assert_eq!(
        first.topics[0].partitions[0].current_leader_epoch, 7,
        "the cached leader epoch"
    );
    assert_eq!(first.replica_id.0, -1);
}

#[tokio::test]
async fn consumer_resets_on_offset_out_of_range_and_starts_from_timestamps() {
    let (listener, addr, port) = FakeBroker::bind().await;
    let broker = FakeBroker::serve(
        listener,
        addr.clone(),
        port,
        Arc::new(move |_, req| {
            if let Some(reply) = standard(port, "t", req) {
                return reply;
            }
            match req {
                // Earliest is 20, latest 30, timestamp 5000 maps to 25.
                Req::ListOffsets(request) => {
                    Reply::ListOffsets(list_offsets_reply(request, |ts| match ts {
                        EARLIEST_TIMESTAMP => 20,
                        -1 => 30,
                        _ => 25,
                    }))
                }
                Req::Fetch(request) => {
                    let offset = request.topics[0].partitions[0].fetch_offset;
                    if offset < 20 {
                        Reply::Fetch(fetch_reply("t", 0, 1, 30, None))
                    } else {
                        Reply::Fetch(fetch_reply(
                            "t",
                            0,
                            0,
                            30,
                            Some(batch(offset, 2, Compression::None)),
                        ))
                    }
                }
                _ => Reply::Silent,
            }
        }),
    );
    let cluster = Cluster::connect(config(&addr)).await.unwrap();
    let tp = TopicPartition::new("t", 0);

    let mut consumer = Consumer::new(
        cluster.clone(),
        ConsumerConfig {
            reset_policy: OffsetResetPolicy::Earliest,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign(tp.clone(), StartOffset::Offset(3));
    assert!(
        consumer.poll().await.unwrap().is_empty(),
        "out of range: reset, no records"
    );
    let records = consumer.poll().await.unwrap();
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![20, 21]
    );

    let mut strict = Consumer::new(
        cluster.clone(),
        ConsumerConfig {
            reset_policy: OffsetResetPolicy::None,
            ..ConsumerConfig::default()
        },
    );
    strict.assign(tp.clone(), StartOffset::Offset(3));
    assert_eq!(strict.poll().await.unwrap_err().kafka_code(), Some(1));

    let mut by_time = Consumer::new(cluster, ConsumerConfig::default());
    by_time.assign(tp.clone(), StartOffset::Timestamp(5_000));
    let records = by_time.poll().await.unwrap();
    assert_eq!(records.first().map(|r| r.offset), Some(25));
    let timestamps: Vec<i64> = broker
        .requests(ApiKey::ListOffsets)
        .iter()
        .map(|(_, req)| match req {
            Req::ListOffsets(r) => r.topics[0].partitions[0].timestamp,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(timestamps, vec![EARLIEST_TIMESTAMP, 5_000]);
}

// ---------------------------------------------------------------- admin

#[tokio::test]
async fn create_topics_reports_each_topic() {
    let (listener, addr, port) = FakeBroker::bind().await;
    let broker = FakeBroker::serve(
        listener,
        addr.clone(),
        port,
        Arc::new(move |_, req| {
            if let Some(reply) = standard(port, "t", req) {
                return reply;
            }
            match req {
                Req::CreateTopics(request) => Reply::CreateTopics(
                    CreateTopicsResponse::default().with_topics(
                        request
                            .topics
                            .iter()
                            .map(|topic| {
                                let exists = topic.name.0.as_str() == "old";
                                CreatableTopicResult::default()
                                    .with_name(topic.name.clone())
                                    .with_error_code(if exists { 36 } else { 0 })
                            })
                            .collect(),
                    ),
                ),
                _ => Reply::Silent,
            }
        }),
    );
    let cluster = Cluster::connect(config(&addr)).await.unwrap();
    let admin = Admin::new(cluster);
    let mut fresh = NewTopic::new("fresh", 3, 1);
    fresh.configs = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
    let results = admin
        .create_topics(&[fresh, NewTopic::new("old", 1, 1)], 5_000, true)
        .await
        .unwrap();
    assert_eq!(results[0].0, "fresh");
    assert!(results[0].1.is_ok());
    assert_eq!(results[1].1.as_ref().unwrap_err().kafka_code(), Some(36));
    let (_, req) = broker.requests(ApiKey::CreateTopics).pop().unwrap();
    let Req::CreateTopics(request) = req else {
        unreachable!()
    };
    assert!(request.validate_only);
    assert_eq!(request.topics[0].num_partitions, 3);
    assert_eq!(request.topics[0].configs[0].name.as_str(), "cleanup.policy");
}
