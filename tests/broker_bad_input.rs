//! Bad input over raw TCP: each gets Kafka's answer or a closed connection, the broker
//! keeps serving other connections, and nothing already written changes.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use skald::base::Rng;
use skald::broker::{Node, NodeConfig, NodeHandle};
use skald::client::{
    Admin, ClientConfig, Cluster, Consumer, ConsumerConfig, NewTopic, StartOffset, TopicPartition,
};
use skald::io::real::{RealDisk, ScratchDir};
use skald::io::{Clock, Disk};
use skald::net::{read_frame, write_frame};
use skald::protocol::{Compression, RecordBatchBuilder, RecordInput};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(dir: &ScratchDir) -> NodeHandle {
    let disk: Arc<dyn Disk> = Arc::new(RealDisk::open(dir.path()).unwrap());
    let mut config = NodeConfig::new(1, "127.0.0.1:0".parse().unwrap());
    config.set("message.max.bytes", "10000").unwrap();
    Node::start(config, disk, Clock::system(), Rng::with_seed(3))
        .await
        .unwrap()
}

/// Creates topic `t` (one partition) through the project's admin client.
async fn create_topic_t(node: &NodeHandle) {
    let cluster = Cluster::connect(ClientConfig::new(vec![node.local_addr().to_string()]))
        .await
        .unwrap();
    let created = Admin::new(cluster)
        .create_topics(&[NewTopic::new("t", 1, 1)], 5000, false)
        .await
        .unwrap();
    assert!(created[0].1.is_ok());
}

fn request(api_key: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Bytes {
    let mut out = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("raw")))
        .encode(&mut out, api_key.request_header_version(version))
        .unwrap();
    body.encode(&mut out, version).unwrap();
    out.freeze()
}

/// Sends a request and returns the response body (after its header), checking the
/// correlation id.
async fn call(
    stream: &mut TcpStream,
    api_key: ApiKey,
    version: i16,
    body: &impl Encodable,
) -> Bytes {
    write_frame(stream, &request(api_key, version, 77, body))
        .await
        .unwrap();
    let mut frame = tokio::time::timeout(Duration::from_secs(10), read_frame(stream, 1 << 26))
        .await
        .unwrap()
        .unwrap()
        .expect("a response");
    let header =
        ResponseHeader::decode(&mut frame, api_key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 77);
    frame
}

/// True if the broker closed the connection (EOF or reset) within 5 s.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

fn batch(value_bytes: usize) -> Bytes {
    let mut builder = RecordBatchBuilder::new(Compression::None);
    builder.append(RecordInput {
        timestamp_ms: Clock::system().now_ms(),
        key: None,
        value: Some(Bytes::from(vec![b'v'; value_bytes])),
        headers: vec![],
    });
    builder.build().unwrap()
}

fn produce(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

async fn produce_code(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> (i16, i64) {
    let mut body = call(
        stream,
        ApiKey::Produce,
        7,
        &produce(topic, partition, records),
    )
    .await;
    let response = ProduceResponse::decode(&mut body, 7).unwrap();
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

async fn values(node: &NodeHandle) -> Vec<Bytes> {
    let cluster = Cluster::connect(ClientConfig::new(vec![node.local_addr().to_string()]))
        .await
        .unwrap();
    let mut consumer = Consumer::new(
        cluster,
        ConsumerConfig {
            max_wait_ms: 100,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign(TopicPartition::new("t", 0), StartOffset::Earliest);
    let mut out = Vec::new();
    for _ in 0..20 {
        let got = consumer.poll().await.unwrap();
        if got.is_empty() && !out.is_empty() {
            break;
        }
        out.extend(got.into_iter().map(|r| r.value.unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_kafkas_answer_or_a_close_and_changes_nothing() {
    let dir = ScratchDir::new("broker-bad");
    let node = start(&dir).await;
    let addr = node.local_addr();
    create_topic_t(&node).await;

    // A healthy connection, kept open throughout.
    let mut good = TcpStream::connect(addr).await.unwrap();
    assert_eq!(produce_code(&mut good, "t", 0, batch(10)).await, (0, 0));
    assert_eq!(produce_code(&mut good, "t", 0, batch(20)).await, (0, 1));
    let before = values(&node).await;
    assert_eq!(before.len(), 2);

    // Random bytes: a frame of garbage, then garbage that is not even a frame.
    let mut rng = Rng::with_seed(9);
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let len = 8 + rng.below(200) as usize;
        let mut body = vec![0u8; len];
        rng.fill(&mut body);
        // An unknown API key, so it cannot accidentally be a valid request.
        body[0] = 0x7f;
        write_frame(&mut s, &body).await.unwrap();
        assert!(closed(&mut s).await, "garbage frame");
    }
    // Truncated frame: the prefix promises more than is sent, then the client hangs up.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0, 0, 0, 100, 1, 2, 3]).await.unwrap();
    drop(s);
    // A 2 GiB length prefix (and the largest positive one): refused before any allocation.
    for prefix in [[0x80, 0, 0, 0], [0x7f, 0xff, 0xff, 0xff]] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&prefix).await.unwrap();
        s.flush().await.unwrap();
        assert!(closed(&mut s).await, "huge length prefix");
    }
    // Unknown API key: closed.
    let mut s = TcpStream::connect(addr).await.unwrap();
    write_frame(&mut s, &[0x12, 0x34, 0, 0, 0, 0, 0, 1])
        .await
        .unwrap();
    assert!(closed(&mut s).await, "unknown api key");
    // Unsupported version of a known API (Metadata v99): closed.
    let mut s = TcpStream::connect(addr).await.unwrap();
    write_frame(&mut s, &[0, 3, 0, 99, 0, 0, 0, 1, 0xff, 0xff])
        .await
        .unwrap();
    assert!(closed(&mut s).await, "unsupported metadata version");
    // Produce v2 (advertised for old clients, not decoded): closed.
    let mut s = TcpStream::connect(addr).await.unwrap();
    write_frame(&mut s, &[0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff])
        .await
        .unwrap();
    assert!(closed(&mut s).await, "produce v2");
    // ApiVersions at a version from the future: UNSUPPORTED_VERSION in a v0 body.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&[0, 18, 0, 99, 0, 0, 0, 5, 0, 0]);
    write_frame(&mut s, &frame).await.unwrap();
    let mut response = read_frame(&mut s, 1 << 20).await.unwrap().unwrap();
    let header = ResponseHeader::decode(&mut response, 0).unwrap();
    assert_eq!(header.correlation_id, 5);
    let body = ApiVersionsResponse::decode(&mut response, 0).unwrap();
    assert_eq!(body.error_code, 35);
    assert!(body
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version == 3));
    // The connection stays usable after that answer.
    let mut ok = call(
        &mut s,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    )
    .await;
    assert_eq!(
        ApiVersionsResponse::decode(&mut ok, 3).unwrap().error_code,
        0
    );
    // A truncated Metadata body: closed.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut bytes = request(ApiKey::Metadata, 4, 1, &MetadataRequest::default()).to_vec();
    bytes.truncate(bytes.len() - 1);
    write_frame(&mut s, &bytes).await.unwrap();
    assert!(closed(&mut s).await, "truncated body");

    // Wrong CRC: CORRUPT_MESSAGE, nothing appended.
    let mut corrupt = batch(10).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce_code(&mut good, "t", 0, Bytes::from(corrupt))
            .await
            .0,
        2
    );
    // A partition that does not exist, and a topic that does not exist.
    assert_eq!(produce_code(&mut good, "t", 7, batch(10)).await.0, 3);
    assert_eq!(produce_code(&mut good, "nope", 0, batch(10)).await.0, 3);
    // Larger than message.max.bytes: MESSAGE_TOO_LARGE.
    assert_eq!(produce_code(&mut good, "t", 0, batch(20_000)).await.0, 10);
    // Garbage instead of a batch: CORRUPT_MESSAGE.
    assert_eq!(
        produce_code(&mut good, "t", 0, Bytes::from_static(&[1, 2, 3]))
            .await
            .0,
        2
    );

    // The healthy connection still works and the data is unchanged.
    assert_eq!(produce_code(&mut good, "t", 0, batch(30)).await, (0, 2));
    let after = values(&node).await;
    assert_eq!(&after[..2], &before[..]);
    assert_eq!(after.len(), 3);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let dir = ScratchDir::new("broker-pipeline");
    let node = start(&dir).await;
    let addr = node.local_addr();
    create_topic_t(&node).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let count = 50;
    let mut all = BytesMut::new();
    for i in 0..count {
        let frame = request(ApiKey::Produce, 7, i, &produce("t", 0, batch(10)));
        all.extend_from_slice(&(frame.len() as i32).to_be_bytes());
        all.extend_from_slice(&frame);
    }
    s.write_all(&all).await.unwrap();
    s.flush().await.unwrap();
    for i in 0..count {
        let mut frame = read_frame(&mut s, 1 << 20).await.unwrap().unwrap();
        let header = ResponseHeader::decode(&mut frame, 0).unwrap();
        assert_eq!(header.correlation_id, i);
        let response = ProduceResponse::decode(&mut frame, 7).unwrap();
        assert_eq!(
            response.responses[0].partition_responses[0].base_offset,
            i as i64
        );
    }
    node.shutdown().await.unwrap();
}

/// Sends `body` and decodes the response of the same API and version.
async fn ask<R: Encodable, A: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    body: &R,
) -> A {
    let mut frame = call(s, key, version, body).await;
    A::decode(&mut frame, version).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_errors_have_kafkas_codes() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{
        CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
        CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse, FetchRequest,
        FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    };

    let dir = ScratchDir::new("broker-codes");
    let node = start(&dir).await;
    let mut s = TcpStream::connect(node.local_addr()).await.unwrap();
    let name = |n: &str| TopicName(StrBytes::from_string(n.to_string()));

    // CreateTopics: bad name 17, partitions <= 0 (other than -1 = default) 37,
    // replication factor 0 or above the broker count 38; a good one for the rest.
    let creatable = |n: &str, partitions: i32, rf: i16| {
        CreatableTopic::default()
            .with_name(name(n))
            .with_num_partitions(partitions)
            .with_replication_factor(rf)
    };
    let created: CreateTopicsResponse = ask(
        &mut s,
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                creatable("bad/name", 1, 1),
                creatable("..", 1, 1),
                creatable("zero", 0, 1),
                creatable("negative", -2, 1),
                creatable("rf0", 1, 0),
                creatable("rf2", 1, 2),
                creatable("t", 2, -1),
            ]),
    )
    .await;
    let codes: Vec<i16> = created.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![17, 17, 37, 37, 38, 38, 0]);
    let mut produced = call(&mut s, ApiKey::Produce, 7, &produce("t", 0, batch(10))).await;
    assert_eq!(
        ProduceResponse::decode(&mut produced, 7).unwrap().responses[0].partition_responses[0]
            .error_code,
        0
    );

    // Produce with acks outside {-1, 0, 1}: INVALID_REQUIRED_ACKS, answered.
    let response: ProduceResponse = ask(
        &mut s,
        ApiKey::Produce,
        7,
        &produce("t", 0, batch(10)).with_acks(2),
    )
    .await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 21);

    // Fetch beyond the log end: OFFSET_OUT_OF_RANGE with the bounds to reset to; an
    // unknown partition: UNKNOWN_TOPIC_OR_PARTITION.
    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name("t"))
            .with_partitions(vec![
                FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(5)
                    .with_partition_max_bytes(1 << 20),
                FetchPartition::default()
                    .with_partition(9)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20),
            ])]);
    let fetched: FetchResponse = ask(&mut s, ApiKey::Fetch, 12, &fetch).await;
    let partitions = &fetched.responses[0].partitions;
    assert_eq!(partitions[0].error_code, 1);
    assert_eq!(
        (partitions[0].high_watermark, partitions[0].log_start_offset),
        (1, 0)
    );
    assert_eq!(partitions[1].error_code, 3);

    // ListOffsets of an unknown partition and of an unknown topic.
    let list = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(4)
                    .with_timestamp(-1)]),
            ListOffsetsTopic::default()
                .with_name(name("nope"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)]),
        ]);
    let listed: ListOffsetsResponse = ask(&mut s, ApiKey::ListOffsets, 7, &list).await;
    let codes: Vec<i16> = listed
        .topics
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect();
    assert_eq!(codes, vec![3, 3]);

    // DeleteRecords beyond the high watermark, or below -1: OFFSET_OUT_OF_RANGE.
    for offset in [2, -2] {
        let deleted: DeleteRecordsResponse = ask(
            &mut s,
            ApiKey::DeleteRecords,
            2,
            &DeleteRecordsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![DeleteRecordsTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(offset)])]),
        )
        .await;
        assert_eq!(deleted.topics[0].partitions[0].error_code, 1, "{offset}");
    }

    // CreatePartitions to fewer or as many partitions: INVALID_PARTITIONS.
    for count in [1, 2] {
        let grown: CreatePartitionsResponse = ask(
            &mut s,
            ApiKey::CreatePartitions,
            3,
            &CreatePartitionsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(name("t"))
                    .with_count(count)]),
        )
        .await;
        assert_eq!(grown.results[0].error_code, 37, "{count}");
    }
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producers_get_fresh_ids_and_retries_their_original_offsets() {
    use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
    use skald::base::{ProducerEpoch, ProducerId as Pid, Sequence};

    let dir = ScratchDir::new("broker-idempotent");
    let node = start(&dir).await;
    create_topic_t(&node).await;
    let mut s = TcpStream::connect(node.local_addr()).await.unwrap();
    let init = |transactional: Option<&str>| {
        InitProducerIdRequest::default()
            .with_transactional_id(
                transactional.map(|t| StrBytes::from_string(t.to_string()).into()),
            )
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let mut ids = Vec::new();
    for _ in 0..3 {
        let answer: InitProducerIdResponse =
            ask(&mut s, ApiKey::InitProducerId, 4, &init(None)).await;
        assert_eq!((answer.error_code, answer.producer_epoch), (0, 0));
        ids.push(answer.producer_id.0);
    }
    assert!(ids[0] >= 0 && ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
    let refused: InitProducerIdResponse =
        ask(&mut s, ApiKey::InitProducerId, 4, &init(Some("txn"))).await;
    assert_eq!(refused.error_code, 53, "transactions are not supported");

    let sequenced = |epoch: i16, sequence: i32, value: &str| {
        let mut builder = RecordBatchBuilder::new(Compression::None).producer(
            Pid(ids[0]),
            ProducerEpoch(epoch),
            Sequence(sequence),
        );
        builder.append(RecordInput {
            timestamp_ms: Clock::system().now_ms(),
            key: None,
            value: Some(Bytes::from(value.to_string())),
            headers: vec![],
        });
        builder.build().unwrap()
    };
    let (code, first) = produce_code(&mut s, "t", 0, sequenced(0, 0, "a")).await;
    assert_eq!(code, 0);
    let (code, _) = produce_code(&mut s, "t", 0, sequenced(0, 1, "b")).await;
    assert_eq!(code, 0);
    // The retry of the first batch (its answer lost, say) gets its original offset.
    assert_eq!(
        produce_code(&mut s, "t", 0, sequenced(0, 0, "a")).await,
        (0, first)
    );
    // A gap: OUT_OF_ORDER_SEQUENCE_NUMBER. A new epoch from 0 fences the old one:
    // INVALID_PRODUCER_EPOCH.
    assert_eq!(
        produce_code(&mut s, "t", 0, sequenced(0, 5, "x")).await.0,
        45
    );
    assert_eq!(
        produce_code(&mut s, "t", 0, sequenced(1, 0, "c")).await.0,
        0
    );
    assert_eq!(
        produce_code(&mut s, "t", 0, sequenced(0, 2, "y")).await.0,
        47
    );
    let stored: Vec<Bytes> = values(&node).await;
    assert_eq!(stored, vec!["a", "b", "c"]);

    // DescribeProducers shows the producer at its newest epoch, with its last sequence;
    // a partition this node does not host is UNKNOWN_TOPIC_OR_PARTITION.
    {
        use kafka_protocol::messages::describe_producers_request::TopicRequest;
        use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
        let request = DescribeProducersRequest::default()
            .with_topics(vec![TopicRequest::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_indexes(vec![0, 7])]);
        let answer: DescribeProducersResponse =
            ask(&mut s, ApiKey::DescribeProducers, 0, &request).await;
        let partitions = &answer.topics[0].partitions;
        assert_eq!((partitions[0].error_code, partitions[1].error_code), (0, 3));
        let producers = &partitions[0].active_producers;
        assert_eq!(producers.len(), 1, "{producers:?}");
        assert_eq!(
            (
                producers[0].producer_id.0,
                producers[0].producer_epoch,
                producers[0].last_sequence
            ),
            (ids[0], 1, 0)
        );
    }

    // Ids are never handed out twice, even after a restart.
    node.shutdown().await.unwrap();
    let node = start(&dir).await;
    let mut s = TcpStream::connect(node.local_addr()).await.unwrap();
    let answer: InitProducerIdResponse = ask(&mut s, ApiKey::InitProducerId, 4, &init(None)).await;
    assert!(
        answer.producer_id.0 > ids[2],
        "{} reused",
        answer.producer_id.0
    );
    node.shutdown().await.unwrap();
}
