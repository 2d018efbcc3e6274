//! `skald topic ...` end to end against a skald node started in-process: the whole
//! lifecycle (create, list, describe, alter configs and partition count, delete), every
//! broker error printed with Kafka's name and a non-zero status, the client's
//! CreatePartitions call underneath, and the built binary's exit codes.
//!
//! Real sockets, a stdin thread and a child process: not for the simulator build.

#![cfg(not(madsim))]

mod cli_support;

use std::process::Command;

use cli_support::{node_with_topic, run, start_node};
use skald::cli::ExitStatus;
use skald::client::{Admin, ClientConfig, Cluster};
use skald::io::real::ScratchDir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_lifecycle() {
    let dir = ScratchDir::new("cli-topic-lifecycle");
    let node = start_node(&dir).await;
    let created = run(
        &node,
        "topic create orders -p 2 -r 1 --config retention.ms=60000",
        b"",
    )
    .await
    .ok();
    assert_eq!(created, "Created topic orders.\n");
    run(&node, "topic create other", b"").await.ok();
    assert_eq!(run(&node, "topic list", b"").await.ok(), "orders\nother\n");

    let described = run(&node, "topic describe orders", b"").await.ok();
    let lines: Vec<&str> = described.lines().collect();
    assert_eq!(lines.len(), 3, "{described}");
    assert!(
        lines[0].starts_with("Topic: orders\tTopicId: "),
        "{described}"
    );
    assert!(
        lines[0]
            .ends_with("\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: retention.ms=60000"),
        "{described}"
    );
    assert_eq!(
        lines[1],
        "\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1"
    );
    assert_eq!(
        lines[2],
        "\tTopic: orders\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1"
    );
    let all = run(&node, "topic describe orders --all-configs", b"")
        .await
        .ok();
    assert!(
        all.contains("\tConfig: retention.ms=60000\tSource: DYNAMIC_TOPIC_CONFIG\n"),
        "{all}"
    );
    assert!(
        all.contains("\tConfig: message.timestamp.type=CreateTime\tSource: "),
        "{all}"
    );

    let altered = run(&node, "topic alter orders --config retention.ms=1000 --config segment.bytes=1048576 --partitions 4",
        b"",
    )
    .await
    .ok();
    assert_eq!(
        altered,
        "Altered configs of topic orders.\nTopic orders now has 4 partitions.\n"
    );
    let described = run(&node, "topic describe orders", b"").await.ok();
    assert!(
        described.contains("PartitionCount: 4\tReplicationFactor: 1\tConfigs: retention.ms=1000,segment.bytes=1048576\n")
            || described.contains("PartitionCount: 4\tReplicationFactor: 1\tConfigs: segment.bytes=1048576,retention.ms=1000\n"),
        "{described}"
    );
    assert!(
        described.contains("\tPartition: 3\tLeader: 1"),
        "{described}"
    );

    run(
        &node,
        "topic alter orders --delete-config retention.ms",
        b"",
    )
    .await
    .ok();
    let described = run(&node, "topic describe orders", b"").await.ok();
    assert!(
        described.contains("Configs: segment.bytes=1048576\n"),
        "{described}"
    );

    // Describe with no names: every (non-internal) topic.
    let everything = run(&node, "topic describe", b"").await.ok();
    assert!(everything.contains("Topic: orders\t") && everything.contains("Topic: other\t"));

    assert_eq!(
        run(&node, "topic delete orders", b"").await.ok(),
        "Deleted topic orders.\n"
    );
    assert_eq!(run(&node, "topic list", b"").await.ok(), "other\n");
    let gone = run(&node, "topic describe orders", b"").await;
    assert_eq!(gone.status, Ok(ExitStatus::PartialFailure), "{gone:?}");
    assert!(gone.err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{gone:?}");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_errors_are_printed_by_name_with_a_failure_status() {
    let (_dir, node) = node_with_topic("cli-topic-errors", "t", 2).await;
    let cases: &[(&str, &str)] = &[
        ("topic create t", "TOPIC_ALREADY_EXISTS"),
        (
            "topic create bad --config no.such.config=1",
            "INVALID_CONFIG",
        ),
        ("topic create zero -p 0", "INVALID_PARTITIONS"),
        ("topic alter t -p 1", "INVALID_PARTITIONS"),
        ("topic alter t -c retention.ms=notanumber", "INVALID_CONFIG"),
        ("topic alter missing -p 3", "UNKNOWN_TOPIC_OR_PARTITION"),
        ("topic delete missing", "UNKNOWN_TOPIC_OR_PARTITION"),
    ];
    for (args, name) in cases {
        let result = run(&node, args, b"").await;
        assert_eq!(
            result.status,
            Ok(ExitStatus::PartialFailure),
            "{args:?}: {result:?}"
        );
        assert!(
            result.err.contains(&format!("broker returned {name} (")),
            "{args:?}: {result:?}"
        );
        assert!(result.out.is_empty(), "{args:?}: {result:?}");
    }
    // A failed config change leaves the partition count alone.
    let result = run(&node, "topic alter t -c bogus=1 -p 5", b"").await;
    assert_eq!(result.status, Ok(ExitStatus::PartialFailure));
    let described = run(&node, "topic describe t", b"").await.ok();
    assert!(described.contains("PartitionCount: 2\t"), "{described}");
    // validate_only checks without creating.
    let validated = run(&node, "topic create v --validate-only", b"").await.ok();
    assert_eq!(validated, "Validated creation of topic v.\n");
    assert_eq!(run(&node, "topic list", b"").await.ok(), "t\n");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_create_partitions() {
    let dir = ScratchDir::new("cli-create-partitions");
    let node = start_node(&dir).await;
    let cluster = Cluster::connect(ClientConfig::new(vec![node.local_addr().to_string()]))
        .await
        .unwrap();
    let admin = Admin::new(cluster.clone());
    let created = admin
        .create_topics(&[skald::client::NewTopic::new("p", 1, 1)], 10_000, false)
        .await
        .unwrap();
    assert!(created[0].1.is_ok());
    let count = |admin: Admin| async move {
        admin
            .describe_topics(Some(&["p".to_string()]))
            .await
            .unwrap()[0]
            .partitions
            .len()
    };
    // validate_only answers without changing anything.
    let checked = admin
        .create_partitions(&[("p".to_string(), 3)], 10_000, true)
        .await
        .unwrap();
    assert_eq!(checked.len(), 1);
    assert!(checked[0].1.is_ok(), "{checked:?}");
    assert_eq!(count(admin.clone()).await, 1);
    let results = admin
        .create_partitions(
            &[
                ("p".to_string(), 3),
                ("nope".to_string(), 2),
                ("p".to_string(), 2),
            ],
            10_000,
            false,
        )
        .await;
    // Kafka rejects a request naming a topic twice; either way nothing is reported
    // as done that was not.
    match results {
        Ok(results) => {
            assert_eq!(results.len(), 3);
            assert_eq!(results[1].1.as_ref().unwrap_err().kafka_code(), Some(3));
        }
        Err(error) => panic!("request-level failure: {error}"),
    }
    let grown = admin
        .create_partitions(&[("p".to_string(), 4)], 10_000, false)
        .await
        .unwrap();
    assert!(grown[0].1.is_ok(), "{grown:?}");
    assert_eq!(count(admin.clone()).await, 4);
    let shrink = admin
        .create_partitions(&[("p".to_string(), 2)], 10_000, false)
        .await
        .unwrap();
    assert_eq!(shrink[0].1.as_ref().unwrap_err().kafka_code(), Some(37));
    node.shutdown().await.unwrap();
}

/// The built binary: exit code 0 on success, non-zero with the Kafka error name on
/// stderr when the broker refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_exit_codes() {
    let dir = ScratchDir::new("cli-topic-binary");
    let node = start_node(&dir).await;
    let server = node.local_addr().to_string();
    let skald = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_skald"))
                .args(&args)
                .output()
                .unwrap()
        })
    };
    let args = |extra: &[&str]| {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend(["--bootstrap-server".to_string(), server.clone()]);
        args
    };
    let first = skald(args(&["topic", "create", "dup", "-p", "1"]))
        .await
        .unwrap();
    assert!(first.status.success(), "{first:?}");
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        "Created topic dup.\n"
    );
    let again = skald(args(&["topic", "create", "dup", "-p", "1"]))
        .await
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("error: create topic dup: broker returned TOPIC_ALREADY_EXISTS (36)"),
        "{stderr}"
    );
    assert!(again.stdout.is_empty());
    // An argument error is clap's: exit code 2.
    let bad = skald(args(&["topic", "create", "x", "--config", "noequals"]))
        .await
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    node.shutdown().await.unwrap();
}
