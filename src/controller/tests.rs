//! Controller tests: requests in, records and answers out, no I/O.

use super::*;

fn controller_with_brokers(n: i32) -> Controller {
    let mut c = Controller::new(
        MetadataImage::new(),
        ControllerSettings {
            num_partitions: 3,
            default_replication_factor: 1,
        },
        Rng::with_seed(7),
    );
    for node in 1..=n {
        for r in c.register_broker(NodeId(node), "127.0.0.1", 9092 + node, None) {
            c.replay(&r);
        }
    }
    c
}

fn topic(name: &str) -> CreateTopic {
    CreateTopic {
        name: name.into(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: BTreeMap::new(),
        configs: vec![],
    }
}

fn apply<T>(c: &mut Controller, result: ControllerResult<T>) -> T {
    for r in &result.records {
        c.replay(r);
    }
    result.response
}

#[test]
fn registration_writes_a_cluster_id_once_and_reregisters_only_on_change() {
    let mut c = controller_with_brokers(1);
    let id = c.image().cluster_id.clone().unwrap();
    assert_eq!(id.len(), 22);
    assert!(c
        .register_broker(NodeId(1), "127.0.0.1", 9093, None)
        .is_empty());
    let records = c.register_broker(NodeId(1), "localhost", 9093, None);
    assert_eq!(records.len(), 1);
    apply(
        &mut c,
        ControllerResult {
            records,
            response: (),
        },
    );
    assert_eq!(c.image().brokers[&NodeId(1)].epoch, 1);
    assert_eq!(c.image().cluster_id.as_deref(), Some(id.as_str()));
}

#[test]
fn create_topic_uses_defaults_and_records_replay_into_the_image() {
    let mut c = controller_with_brokers(1);
    let result = c.create_topic(&topic("orders")).unwrap();
    // Nothing changes before replay.
    assert!(c.image().topic("orders").is_none());
    let created = apply(&mut c, result);
    assert_eq!(created.num_partitions, 3);
    assert_eq!(created.replication_factor, 1);
    let t = c.image().topic("orders").unwrap();
    assert_eq!(t.id, created.id);
    assert_eq!(t.partitions.len(), 3);
    for p in t.partitions.values() {
        assert_eq!(p.leader, NodeId(1));
        assert_eq!(p.isr, vec![NodeId(1)]);
    }
    assert_eq!(
        c.create_topic(&topic("orders")).unwrap_err().code,
        ec::TOPIC_ALREADY_EXISTS
    );
    assert_eq!(
        c.create_topic(&topic("orders_")).map(|_| ()),
        Ok(()),
        "a distinct name is fine"
    );
}

#[test]
fn bad_create_requests_get_kafkas_codes() {
    let mut c = controller_with_brokers(1);
    let cases: Vec<(CreateTopic, i16)> = vec![
        (topic(""), ec::INVALID_TOPIC_EXCEPTION),
        (topic(".."), ec::INVALID_TOPIC_EXCEPTION),
        (topic("a b"), ec::INVALID_TOPIC_EXCEPTION),
        (topic(&"x".repeat(250)), ec::INVALID_TOPIC_EXCEPTION),
        (topic(METADATA_TOPIC), ec::INVALID_REQUEST),
        (
            CreateTopic {
                num_partitions: 0,
                ..topic("a")
            },
            ec::INVALID_PARTITIONS,
        ),
        (
            CreateTopic {
                num_partitions: -2,
                ..topic("a")
            },
            ec::INVALID_PARTITIONS,
        ),
        (
            CreateTopic {
                replication_factor: 0,
                ..topic("a")
            },
            ec::INVALID_REPLICATION_FACTOR,
        ),
        (
            CreateTopic {
                replication_factor: 2,
                ..topic("a")
            },
            ec::INVALID_REPLICATION_FACTOR,
        ),
        (
            CreateTopic {
                configs: vec![("no.such".into(), Some("1".into()))],
                ..topic("a")
            },
            ec::INVALID_CONFIG,
        ),
        (
            CreateTopic {
                configs: vec![("retention.ms".into(), Some("soon".into()))],
                ..topic("a")
            },
            ec::INVALID_CONFIG,
        ),
        (
            CreateTopic {
                configs: vec![("retention.ms".into(), None)],
                ..topic("a")
            },
            ec::INVALID_CONFIG,
        ),
        (
            CreateTopic {
                assignments: [(0, vec![NodeId(9)])].into_iter().collect(),
                ..topic("a")
            },
            ec::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            CreateTopic {
                assignments: [(1, vec![NodeId(1)])].into_iter().collect(),
                ..topic("a")
            },
            ec::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            CreateTopic {
                assignments: [(0, vec![NodeId(1), NodeId(1)])].into_iter().collect(),
                ..topic("a")
            },
            ec::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            CreateTopic {
                num_partitions: 1,
                assignments: [(0, vec![NodeId(1)])].into_iter().collect(),
                ..topic("a")
            },
            ec::INVALID_REQUEST,
        ),
    ];
    for (request, code) in cases {
        let got = c.create_topic(&request).map(|_| ()).unwrap_err();
        assert_eq!(got.code, code, "{request:?}: {got:?}");
    }
    assert!(c.image().topics.is_empty());
    let created = c.create_topic(&topic("a.b")).unwrap();
    apply(&mut c, created);
    assert_eq!(
        c.create_topic(&topic("a_b")).unwrap_err().code,
        ec::INVALID_TOPIC_EXCEPTION
    );
}

#[test]
fn explicit_assignments_and_configs_are_recorded() {
    let mut c = controller_with_brokers(3);
    let request = CreateTopic {
        assignments: [
            (0, vec![NodeId(2), NodeId(3)]),
            (1, vec![NodeId(3), NodeId(1)]),
        ]
        .into_iter()
        .collect(),
        configs: vec![("retention.ms".into(), Some("1000".into()))],
        ..topic("t")
    };
    let result = c.create_topic(&request).unwrap();
    let created = apply(&mut c, result);
    assert_eq!(created.replication_factor, 2);
    let t = c.image().topic("t").unwrap();
    assert_eq!(t.partitions[&1].leader, NodeId(3));
    assert_eq!(t.configs["retention.ms"], "1000");
}

#[test]
fn placement_spreads_leaders_over_brokers() {
    let mut c = controller_with_brokers(3);
    let request = CreateTopic {
        num_partitions: 6,
        replication_factor: 2,
        ..topic("t")
    };
    let result = c.create_topic(&request).unwrap();
    apply(&mut c, result);
    let mut leaders = BTreeMap::new();
    for p in c.image().topic("t").unwrap().partitions.values() {
        *leaders.entry(p.leader).or_insert(0) += 1;
        assert_eq!(p.replicas.len(), 2);
        assert_ne!(p.replicas[0], p.replicas[1]);
    }
    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
}

#[test]
fn delete_and_create_partitions() {
    let mut c = controller_with_brokers(1);
    let result = c.create_topic(&topic("t")).unwrap();
    apply(&mut c, result);
    assert_eq!(
        c.create_partitions("t", 2, None).unwrap_err().code,
        ec::INVALID_PARTITIONS
    );
    assert_eq!(
        c.create_partitions("t", 3, None).unwrap_err().code,
        ec::INVALID_PARTITIONS
    );
    assert_eq!(
        c.create_partitions("nope", 5, None).unwrap_err().code,
        ec::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        c.create_partitions("t", 5, Some(vec![vec![NodeId(1)]]))
            .unwrap_err()
            .code,
        ec::INVALID_REPLICA_ASSIGNMENT
    );
    let result = c.create_partitions("t", 5, None).unwrap();
    assert_eq!(result.records.len(), 2);
    apply(&mut c, result);
    assert_eq!(c.image().topic("t").unwrap().partitions.len(), 5);
    let result = c.delete_topic("t").unwrap();
    apply(&mut c, result);
    assert!(c.image().topic("t").is_none());
    assert_eq!(
        c.delete_topic("t").unwrap_err().code,
        ec::UNKNOWN_TOPIC_OR_PARTITION
    );
}

#[test]
fn alter_configs_validate_keys_and_values_and_diff() {
    let mut c = controller_with_brokers(1);
    let result = c.create_topic(&topic("t")).unwrap();
    apply(&mut c, result);
    let set = |k: &str, v: &str| (k.to_string(), AlterOp::Set, Some(v.to_string()));
    let result = c
        .incremental_alter_topic_configs(
            "t",
            &[set("retention.ms", "10"), set("segment.bytes", "1000")],
        )
        .unwrap();
    assert_eq!(result.records.len(), 2);
    apply(&mut c, result);
    assert_eq!(c.image().topic("t").unwrap().configs.len(), 2);
    // Setting the same value again changes nothing.
    assert!(c
        .incremental_alter_topic_configs("t", &[set("retention.ms", "10")])
        .unwrap()
        .records
        .is_empty());
    for (changes, code) in [
        (vec![set("bogus", "1")], ec::INVALID_CONFIG),
        (vec![set("retention.ms", "x")], ec::INVALID_CONFIG),
        (
            vec![(
                "retention.ms".to_string(),
                AlterOp::Append,
                Some("1".to_string()),
            )],
            ec::INVALID_CONFIG,
        ),
        (
            vec![("bogus".to_string(), AlterOp::Delete, None)],
            ec::INVALID_CONFIG,
        ),
        (
            vec![set("retention.ms", "1"), set("retention.ms", "2")],
            ec::INVALID_REQUEST,
        ),
    ] {
        assert_eq!(
            c.incremental_alter_topic_configs("t", &changes)
                .unwrap_err()
                .code,
            code,
            "{changes:?}"
        );
    }
    // APPEND/SUBTRACT on list configs, from the default when there is no override.
    let list_op = |k: &str, op: AlterOp, v: &str| (k.to_string(), op, Some(v.to_string()));
    let key = "leader.replication.throttled.replicas";
    let result = c
        .incremental_alter_topic_configs("t", &[list_op(key, AlterOp::Append, "0:1,1:1")])
        .unwrap();
    apply(&mut c, result);
    let result = c
        .incremental_alter_topic_configs("t", &[list_op(key, AlterOp::Subtract, "0:1")])
        .unwrap();
    apply(&mut c, result);
    assert_eq!(c.image().topic("t").unwrap().configs[key], "1:1");
    let err = c
        .incremental_alter_topic_configs(
            "t",
            &[list_op("cleanup.policy", AlterOp::Append, "compact")],
        )
        .unwrap_err();
    assert_eq!(err.code, ec::INVALID_CONFIG);
    assert!(err.message.contains("compaction"), "{}", err.message);
    let result = c
        .incremental_alter_topic_configs("t", &[(key.into(), AlterOp::Delete, None)])
        .unwrap();
    apply(&mut c, result);
    let result = c
        .incremental_alter_topic_configs("t", &[("retention.ms".into(), AlterOp::Delete, None)])
        .unwrap();
    apply(&mut c, result);
    assert_eq!(
        c.image()
            .topic("t")
            .unwrap()
            .configs
            .keys()
            .collect::<Vec<_>>(),
        vec!["segment.bytes"]
    );
    let result = c
        .replace_topic_configs("t", &[("flush.messages".into(), Some("1".into()))])
        .unwrap();
    apply(&mut c, result);
    assert_eq!(
        c.image()
            .topic("t")
            .unwrap()
            .configs
            .keys()
            .collect::<Vec<_>>(),
        vec!["flush.messages"]
    );
}

#[test]
fn topic_ids_come_from_the_seeded_rng() {
    let mut a = controller_with_brokers(1);
    let mut b = controller_with_brokers(1);
    let ra = a.create_topic(&topic("t")).unwrap();
    let rb = b.create_topic(&topic("t")).unwrap();
    assert_eq!(ra.response.id, rb.response.id);
    assert_ne!(ra.response.id, TopicId::ZERO);
}
