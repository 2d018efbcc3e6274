//! `skald produce`, `skald consume` and `skald perf` end to end against a skald node
//! started in-process: lines with keys and headers under every codec consumed back in
//! every format; start positions (beginning, end, offset, timestamp); stopping by count,
//! at the end and by idle timeout; failures counted and reported; and small perf runs
//! whose report lines must parse.
//!
//! Real sockets, a stdin thread and a child process: not for the simulator build.

#![cfg(not(madsim))]

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::{node_with_topic, run};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{DescribeProducersRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::Value;
use skald::cli::ExitStatus;

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_with_keys_and_headers_come_back_in_every_format() {
    let (_dir, node) = node_with_topic("cli-produce-formats", "lines", 1).await;
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let input = b"k1:v1\nk2:hello world\r\nk3:a:b\n";
    for codec in CODECS {
        let produced = run(&node, &format!("produce -t lines --key-separator : --header src=test -H codec= --compression {codec} --acks all"),
            input,
        )
        .await;
        assert_eq!(produced.status, Ok(ExitStatus::Success), "{produced:?}");
        assert_eq!(produced.err, "3 records produced to lines, 0 failed.\n");
    }
    let total = 3 * CODECS.len();
    let count = total.to_string();

    let values = run(
        &node,
        &format!("consume -t lines --from beginning -n {count}"),
        b"",
    )
    .await
    .ok();
    assert_eq!(values, "v1\nhello world\na:b\n".repeat(CODECS.len()));

    let pairs = run(
        &node,
        &format!("consume -t lines --from beginning -n {count} --format key-value"),
        b"",
    )
    .await
    .ok();
    assert_eq!(
        pairs,
        "k1:v1\nk2:hello world\nk3:a:b\n".repeat(CODECS.len())
    );

    let json = run(
        &node,
        "consume -t lines --from beginning --exit-at-end -f json",
        b"",
    )
    .await
    .ok();
    let records = json_lines(&json);
    assert_eq!(records.len(), total);
    let after_ms = before_ms + 60_000;
    for (i, record) in records.iter().enumerate() {
        let (key, value) = [("k1", "v1"), ("k2", "hello world"), ("k3", "a:b")][i % 3];
        assert_eq!(record["topic"], "lines");
        assert_eq!(record["partition"], 0);
        assert_eq!(record["offset"], i as i64);
        assert_eq!(record["key"], key);
        assert_eq!(record["value"], value);
        assert_eq!(record["timestamp_type"], "CreateTime");
        let timestamp = record["timestamp"].as_i64().unwrap();
        assert!((before_ms..after_ms).contains(&timestamp), "{record}");
        assert_eq!(
            record["headers"],
            serde_json::json!([{"key": "src", "value": "test"}, {"key": "codec", "value": ""}])
        );
    }
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_positions_and_stopping() {
    let (_dir, node) = node_with_topic("cli-consume-positions", "pos", 2).await;
    let first: String = (0..5).map(|i| format!("a{i}\n")).collect();
    let second: String = (0..5).map(|i| format!("b{i}\n")).collect();
    run(&node, "produce -t pos -p 1", first.as_bytes())
        .await
        .ok();
    tokio::time::sleep(Duration::from_millis(50)).await;
    run(&node, "produce -t pos -p 1", second.as_bytes())
        .await
        .ok();
    // Partition 0 gets generated records.
    let generated = run(&node, "produce -t pos -p 0 --count 3 --size 16", b"").await;
    assert_eq!(generated.err, "3 records produced to pos, 0 failed.\n");

    let all = json_lines(
        &run(
            &node,
            "consume -t pos --from beginning --exit-at-end -f json",
            b"",
        )
        .await
        .ok(),
    );
    assert_eq!(all.len(), 13);
    let zero: Vec<&Value> = all.iter().filter(|r| r["partition"] == 0).collect();
    assert_eq!(zero[0]["value"], "000000000000....");
    assert_eq!(zero[2]["value"], "000000000002....");

    let from_offset = run(
        &node,
        "consume -t pos -p 1 --from offset:7 --exit-at-end",
        b"",
    )
    .await
    .ok();
    assert_eq!(from_offset, "b2\nb3\nb4\n");

    let b0 = all.iter().find(|r| r["value"] == "b0").unwrap();
    let a4 = all.iter().find(|r| r["value"] == "a4").unwrap();
    assert!(a4["timestamp"].as_i64() < b0["timestamp"].as_i64());
    let since = format!("timestamp:{}", b0["timestamp"]);
    let from_time = run(
        &node,
        &format!("consume -t pos -p 1 --from {since} --exit-at-end"),
        b"",
    )
    .await
    .ok();
    assert_eq!(from_time, second);

    let limited = run(&node, "consume -t pos -p 1 --from beginning -n 2", b"")
        .await
        .ok();
    assert_eq!(limited, "a0\na1\n");

    let started = Instant::now();
    let at_end = run(&node, "consume -t pos --from end --exit-at-end", b"").await;
    assert_eq!(at_end.status, Ok(ExitStatus::Success));
    assert_eq!(at_end.out, "");
    assert_eq!(at_end.err, "Consumed 0 records.\n");
    assert!(started.elapsed() < Duration::from_secs(5));

    let started = Instant::now();
    let idle = run(&node, "consume -t pos --from end --timeout-ms 300", b"").await;
    assert_eq!(idle.status, Ok(ExitStatus::Success));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(5));

    // From the end, records produced afterwards arrive.
    let node_ref = &node;
    let (later, consumed) = tokio::join!(
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            run(node_ref, "produce -t pos -p 0", b"late\n").await
        },
        run(
            node_ref,
            "consume -t pos -p 0 --from end -n 1 --timeout-ms 10000",
            b""
        )
    );
    assert_eq!(later.status, Ok(ExitStatus::Success));
    assert_eq!(consumed.ok(), "late\n");

    let beyond = run(
        &node,
        "consume -t pos -p 1 --from offset:100 --exit-at-end",
        b"",
    )
    .await;
    let error = beyond.status.unwrap_err();
    assert!(error.contains("OFFSET_OUT_OF_RANGE"), "{error}");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_failures_are_counted_and_reported() {
    let (_dir, node) = node_with_topic("cli-produce-failures", "f", 1).await;
    let partial = run(&node, "produce -t f -K :", b"k:v\nnokey\nk2:v2\n").await;
    assert_eq!(
        partial.status,
        Ok(ExitStatus::PartialFailure),
        "{partial:?}"
    );
    assert!(
        partial.err.contains("line 2 has no key separator"),
        "{partial:?}"
    );
    assert!(
        partial
            .err
            .ends_with("2 records produced to f, 1 failed.\n"),
        "{partial:?}"
    );

    let missing = run(&node, "produce -t nope", b"x\n").await;
    let error = missing.status.unwrap_err();
    assert!(error.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{error}");
    let bad_partition = run(&node, "produce -t f -p 3", b"x\n").await;
    assert!(bad_partition.status.unwrap_err().contains("not 3"));
    let missing = run(&node, "consume -t nope --exit-at-end", b"").await;
    assert!(missing
        .status
        .unwrap_err()
        .contains("UNKNOWN_TOPIC_OR_PARTITION"));
    // Only the good lines were written.
    let values = run(
        &node,
        "consume -t f --from beginning --exit-at-end -f key-value",
        b"",
    )
    .await
    .ok();
    assert_eq!(values, "k:v\nk2:v2\n");
    node.shutdown().await.unwrap();
}

/// `N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, ...`:
/// the numbers in order.
fn numbers(line: &str) -> Vec<f64> {
    line.split([' ', '(', ')', ','])
        .filter_map(|word| word.parse::<f64>().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_produce_and_consume_report() {
    let (_dir, node) = node_with_topic("cli-perf", "perf", 2).await;
    for (acks, codec) in [("1", "none"), ("all", "lz4")] {
        let report = run(&node, &format!("perf produce -t perf --num-records 2000 --record-size 100 --acks {acks} --compression {codec}"),
            b"",
        )
        .await;
        assert_eq!(report.status, Ok(ExitStatus::Success), "{report:?}");
        let line = report.out.trim_end();
        assert!(line.starts_with("2000 records sent, "), "{line}");
        assert!(line.ends_with(" ms 99.9th."), "{line}");
        let n = numbers(line);
        // records, records/s, MB/s, avg, max, p50, p99, p99.9
        assert_eq!(n.len(), 8, "{line}");
        assert_eq!(n[0], 2000.0);
        assert!(n[1] > 0.0 && n[2] > 0.0, "{line}");
        assert!(
            (n[2] - n[1] * 100.0 / 1024.0 / 1024.0).abs() < 0.01 + n[2] * 0.01,
            "{line}"
        );
        let (max, p50, p99, p999) = (n[4], n[5], n[6], n[7]);
        assert!(p50 <= p99 && p99 <= p999 && p999 <= max * 1.01, "{line}");
        assert!(
            report
                .err
                .starts_with("perf produce: 2000 records of 100 bytes to perf"),
            "{report:?}"
        );
    }

    // A throughput cap holds, and a run longer than a second prints progress lines.
    let started = Instant::now();
    let capped = run(
        &node,
        "perf produce -t perf --num-records 1500 --record-size 10 --throughput 1000",
        b"",
    )
    .await;
    assert_eq!(capped.status, Ok(ExitStatus::Success), "{capped:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(1490),
        "{:?}",
        started.elapsed()
    );
    let rate = numbers(&capped.out)[1];
    assert!(rate <= 1100.0, "{}", capped.out);
    let progress: Vec<&str> = capped
        .err
        .lines()
        .filter(|l| l.contains("records sent,"))
        .collect();
    assert!(!progress.is_empty(), "{capped:?}");
    assert!(progress.iter().all(|l| !l.contains("50th")));

    let consumed = run(&node, "perf consume -t perf --num-records 5500", b"").await;
    assert_eq!(consumed.status, Ok(ExitStatus::Success), "{consumed:?}");
    let n = numbers(&consumed.out);
    // records, records/s, MB/s, MB total, seconds
    assert_eq!(n.len(), 5, "{consumed:?}");
    assert_eq!(n[0], 5500.0);
    assert!(n[1] > 0.0 && n[2] > 0.0);
    let total_mb = (4000.0 * 100.0 + 1500.0 * 10.0) / 1024.0 / 1024.0;
    assert!((n[3] - total_mb).abs() < 0.01, "{consumed:?}");

    // Whole fetched batches are not over-counted.
    let few = run(&node, "perf consume -t perf --num-records 100", b"")
        .await
        .ok();
    assert!(few.starts_with("100 records consumed, "), "{few}");

    let short = run(
        &node,
        "perf consume -t perf --num-records 9999 --timeout-ms 500",
        b"",
    )
    .await;
    assert_eq!(short.status, Ok(ExitStatus::PartialFailure), "{short:?}");
    assert!(short.out.starts_with("5500 records consumed"), "{short:?}");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_produce_and_its_acks_rule() {
    let (_dir, node) = node_with_topic("cli-idempotent", "idem", 1).await;
    let lines: String = (0..20).map(|i| format!("i{i}\n")).collect();
    let produced = run(&node, "produce -t idem --idempotence", lines.as_bytes()).await;
    assert_eq!(produced.err, "20 records produced to idem, 0 failed.\n");
    let consumed = run(&node, "consume -t idem --from beginning --exit-at-end", b"")
        .await
        .ok();
    assert_eq!(consumed, lines);
    // The batches carried a producer id and sequences: the log knows one producer whose
    // last sequence is that of the 20th record.
    let cluster = skald::client::Cluster::connect(skald::client::ClientConfig::new(vec![node
        .local_addr()
        .to_string()]))
    .await
    .unwrap();
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(StrBytes::from_static_str("idem")))
        .with_partition_indexes(vec![0])]);
    let answer = cluster
        .any_connection()
        .await
        .unwrap()
        .send(&request)
        .await
        .unwrap();
    let producers = &answer.topics[0].partitions[0].active_producers;
    assert_eq!(producers.len(), 1, "{producers:?}");
    assert_eq!(producers[0].last_sequence, 19);
    let refused = run(&node, "produce -t idem --idempotence --acks 1", b"x\n").await;
    let error = refused.status.unwrap_err();
    assert!(error.contains("--acks all"), "{error}");
    node.shutdown().await.unwrap();
}
