//! History format, validation errors, and "never panic on bad input".

use proptest::prelude::*;
use skald_jepsen::history::{
    send, Body, History, HistoryBuilder, HistoryError, Op, OpType, Outcome,
};
use skald_jepsen::{check_history, queue::CheckerConfig};

const SCHEMA_EXAMPLE: &str = r#"{"index":0,"type":"invoke","process":1,"time_ns":1000,"f":"send","key":0,"value":17}
{"index":1,"type":"ok","process":1,"time_ns":2000,"f":"send","key":0,"value":17,"offset":0}
{"index":2,"type":"invoke","process":2,"time_ns":3000,"f":"poll"}
{"index":3,"type":"ok","process":2,"time_ns":4000,"f":"poll","records":{"0":[[0,17]]}}
{"index":4,"type":"info","time_ns":5000,"f":"crash","node":"n1"}
"#;

fn load(text: &str) -> Result<History, HistoryError> {
    History::load(text.as_bytes())
}

#[test]
fn documented_example_loads_and_round_trips() {
    let history = load(SCHEMA_EXAMPLE).expect("the documented example is valid");
    assert_eq!(history.operations().len(), 2);
    assert_eq!(history.events().len(), 1);
    let poll = &history.operations()[1];
    assert_eq!(poll.outcome, Outcome::Ok);
    assert!(matches!(&poll.body, Body::Poll { records } if records[&0] == vec![(0, 17)]));

    let mut saved = Vec::new();
    history.save(&mut saved).expect("save to memory");
    let reloaded = History::load(saved.as_slice()).expect("reload");
    assert_eq!(reloaded, history);
}

#[test]
fn builder_histories_round_trip() {
    let mut b = HistoryBuilder::new();
    b.send(0, 1, 10, Outcome::Ok, Some(0));
    b.send(0, 1, 11, Outcome::Fail, None);
    b.send(1, 1, 12, Outcome::Info, None);
    b.invoke(2, send(1, 13, None));
    b.poll(3, &[(1, &[(0, 10)])]);
    b.event(Some(3), Body::Rebalance { keys: vec![1] });
    b.event(
        None,
        Body::Fault {
            name: "partition".into(),
            detail: Some("n1|n2,n3".into()),
        },
    );
    let history = b.build().expect("valid");
    let mut saved = Vec::new();
    history.save(&mut saved).expect("save");
    assert_eq!(History::load(saved.as_slice()).expect("reload"), history);
    // The never-completed send is indeterminate.
    assert_eq!(history.operations()[3].outcome, Outcome::Info);
    assert_eq!(history.operations()[3].completion_index, None);
}

#[test]
fn invalid_json_reports_the_line() {
    let text = format!(
        "{}\n{{\"index\":",
        SCHEMA_EXAMPLE.lines().next().unwrap_or_default()
    );
    match load(&text) {
        Err(HistoryError::Json { line, .. }) => assert_eq!(line, 2),
        other => panic!("expected a JSON error, got {other:?}"),
    }
    assert!(matches!(
        load(r#"{"index":0,"type":"invoke","process":1,"time_ns":0,"f":"teleport"}"#),
        Err(HistoryError::Json { line: 1, .. })
    ));
    assert!(matches!(
        load(r#"{"index":0,"type":"ok","process":1,"time_ns":0,"f":"poll","records":{"x":[]}}"#),
        Err(HistoryError::Json { .. })
    ));
}

/// Recognizes the error a malformed history must produce.
type IsExpected = fn(&HistoryError) -> bool;

fn op(index: u64, op_type: OpType, process: Option<u64>, body: Body) -> Op {
    Op {
        index,
        op_type,
        process,
        time_ns: index as i64,
        body,
    }
}

fn poll_body() -> Body {
    Body::Poll {
        records: Default::default(),
    }
}

#[test]
fn malformed_histories_are_typed_errors() {
    let cases: Vec<(Vec<Op>, IsExpected)> = vec![
        (vec![op(0, OpType::Ok, Some(1), poll_body())], |e| {
            matches!(
                e,
                HistoryError::CompletionWithoutInvoke {
                    index: 0,
                    process: 1
                }
            )
        }),
        (
            vec![
                op(0, OpType::Invoke, Some(1), poll_body()),
                op(1, OpType::Invoke, Some(1), poll_body()),
            ],
            |e| {
                matches!(
                    e,
                    HistoryError::ConcurrentInvoke {
                        index: 1,
                        outstanding: 0,
                        ..
                    }
                )
            },
        ),
        (
            vec![
                op(0, OpType::Invoke, Some(1), poll_body()),
                op(1, OpType::Ok, Some(1), send(0, 1, Some(0))),
            ],
            |e| {
                matches!(
                    e,
                    HistoryError::MismatchedCompletion {
                        index: 1,
                        invoke_index: 0,
                        ..
                    }
                )
            },
        ),
        (
            vec![
                op(0, OpType::Invoke, Some(1), send(0, 1, None)),
                op(1, OpType::Ok, Some(1), send(0, 2, Some(0))),
            ],
            |e| matches!(e, HistoryError::MismatchedCompletion { .. }),
        ),
        (
            vec![
                op(0, OpType::Invoke, Some(1), send(0, 1, None)),
                op(1, OpType::Ok, Some(1), send(0, 1, None)),
            ],
            |e| matches!(e, HistoryError::MissingOffset { index: 1, .. }),
        ),
        (
            vec![
                op(0, OpType::Invoke, Some(1), send(0, 1, None)),
                op(1, OpType::Ok, Some(1), send(0, 1, Some(-1))),
            ],
            |e| {
                matches!(
                    e,
                    HistoryError::NegativeOffset {
                        index: 1,
                        offset: -1
                    }
                )
            },
        ),
        (
            vec![
                op(3, OpType::Invoke, Some(1), poll_body()),
                op(3, OpType::Ok, Some(1), poll_body()),
            ],
            |e| {
                matches!(
                    e,
                    HistoryError::NonIncreasingIndex {
                        index: 3,
                        previous: 3
                    }
                )
            },
        ),
        (vec![op(0, OpType::Invoke, None, poll_body())], |e| {
            matches!(e, HistoryError::MissingProcess { index: 0, .. })
        }),
        (
            vec![op(
                0,
                OpType::Invoke,
                None,
                Body::Crash { node: "n1".into() },
            )],
            |e| matches!(e, HistoryError::EventNotInfo { index: 0, .. }),
        ),
        (
            vec![
                op(0, OpType::Invoke, Some(1), send(0, 1, None)),
                op(1, OpType::Info, Some(1), send(0, 1, None)),
                op(2, OpType::Invoke, Some(2), send(0, 1, None)),
            ],
            |e| {
                matches!(
                    e,
                    HistoryError::DuplicateSendValue {
                        index: 2,
                        first_index: 0,
                        ..
                    }
                )
            },
        ),
        (
            vec![
                Op {
                    time_ns: 10,
                    ..op(0, OpType::Invoke, Some(1), poll_body())
                },
                Op {
                    time_ns: 5,
                    ..op(1, OpType::Ok, Some(1), poll_body())
                },
            ],
            |e| matches!(e, HistoryError::CompletionBeforeInvoke { index: 1, .. }),
        ),
    ];
    for (number, (ops, expected)) in cases.into_iter().enumerate() {
        match History::from_ops(ops) {
            Err(error) => {
                assert!(expected(&error), "case {number}: unexpected error {error}");
                assert!(!error.to_string().is_empty());
            }
            Ok(history) => panic!("case {number}: accepted {history:?}"),
        }
    }
}

fn arbitrary_body() -> impl Strategy<Value = Body> {
    let key = 0u64..3;
    let value = 0i64..6;
    let offset = -1i64..6;
    prop_oneof![
        (
            key.clone(),
            value.clone(),
            proptest::option::of(offset.clone())
        )
            .prop_map(|(key, value, offset)| Body::Send { key, value, offset }),
        proptest::collection::btree_map(
            key.clone(),
            proptest::collection::vec((offset.clone(), value.clone()), 0..4),
            0..3
        )
        .prop_map(|records| Body::Poll { records }),
        (
            key.clone(),
            offset.clone(),
            proptest::collection::vec(value.clone(), 0..3),
            proptest::option::of(offset.clone())
        )
            .prop_map(|(key, from_offset, values, high_watermark)| Body::Read {
                key,
                from_offset,
                values,
                high_watermark
            }),
        (key.clone(), proptest::option::of(offset))
            .prop_map(|(key, offset)| Body::LatestOffset { key, offset }),
        proptest::collection::vec(key.clone(), 0..2).prop_map(|keys| Body::Assign { keys }),
        proptest::collection::vec(key, 0..2).prop_map(|keys| Body::Rebalance { keys }),
        Just(Body::Crash { node: "n1".into() }),
    ]
}

fn arbitrary_op_type() -> impl Strategy<Value = OpType> {
    prop_oneof![
        Just(OpType::Invoke),
        Just(OpType::Ok),
        Just(OpType::Fail),
        Just(OpType::Info)
    ]
}

/// (process, kind of op, key, completion type, offset, records)
type Step = (u64, u8, u64, OpType, i64, Vec<(i64, i64)>);

/// Builds a well-formed (but otherwise arbitrary) history: each step either completes the
/// process's pending operation with random results or invokes a new one.
fn well_formed(steps: Vec<Step>) -> Vec<Op> {
    let mut b = HistoryBuilder::new();
    let mut pending: std::collections::BTreeMap<u64, Body> = Default::default();
    for (value, (process, kind, key, op_type, offset, records)) in steps.into_iter().enumerate() {
        if let Some(invoked) = pending.remove(&process) {
            let op_type = if op_type == OpType::Invoke {
                OpType::Ok
            } else {
                op_type
            };
            let completed = match invoked {
                Body::Send { key, value, .. } => Body::Send {
                    key,
                    value,
                    offset: Some(offset),
                },
                Body::Poll { .. } => Body::Poll {
                    records: [(key, records)].into_iter().collect(),
                },
                Body::Read {
                    key, from_offset, ..
                } => Body::Read {
                    key,
                    from_offset,
                    values: records.iter().map(|&(_, value)| value).collect(),
                    high_watermark: Some(offset),
                },
                Body::LatestOffset { key, .. } => Body::LatestOffset {
                    key,
                    offset: Some(offset),
                },
                other => other,
            };
            b.push(op_type, Some(process), completed);
            continue;
        }
        let body = match kind % 6 {
            0 | 1 => send(key, value as i64, None),
            2 => Body::Poll {
                records: Default::default(),
            },
            3 => Body::Read {
                key,
                from_offset: offset,
                values: vec![],
                high_watermark: None,
            },
            4 => Body::LatestOffset { key, offset: None },
            _ => {
                b.event(None, Body::Crash { node: "n1".into() });
                Body::Assign { keys: vec![key] }
            }
        };
        pending.insert(process, body.clone());
        b.invoke(process, body);
    }
    b.ops().to_vec()
}

proptest! {
    #[test]
    fn loading_garbage_never_panics(text in "\\PC*") {
        let _ = load(&text);
    }

    #[test]
    fn loading_near_miss_json_never_panics(lines in proptest::collection::vec(
        "\\{\"index\":[0-9],\"type\":\"(invoke|ok|fail|info)\",\"process\":[0-2],\"time_ns\":-?[0-9]{1,3},\"f\":\"(send|poll|read|txn|crash)\"(,\"key\":[0-9])?(,\"value\":[0-9])?(,\"offset\":-?[0-9])?(,\"records\":\\{\"[0-9a]\":\\[\\[[0-9],[0-9]\\]\\]\\})?\\}",
        0..8,
    )) {
        let _ = load(&lines.join("\n"));
    }

    #[test]
    fn checkers_never_panic_on_well_formed_histories(steps in proptest::collection::vec(
        (0u64..3, 0u8..6, 0u64..2, arbitrary_op_type(), 0i64..4,
         proptest::collection::vec((0i64..4, 0i64..12), 0..4)),
        0..30,
    )) {
        let history = History::from_ops(well_formed(steps));
        prop_assert!(history.is_ok(), "{:?}", history.err());
        if let Ok(history) = history {
            for config in [CheckerConfig::strict(), CheckerConfig::page_cache()] {
                let report = check_history(&history, &config, 10_000);
                prop_assert!(serde_json::to_string(&report).is_ok());
                prop_assert_eq!(&check_history(&history, &config, 10_000), &report);
            }
        }
    }

    /// Any history that validates can be checked without panicking.
    #[test]
    fn checkers_never_panic_on_valid_histories(raw in proptest::collection::vec(
        (arbitrary_op_type(), 0u64..3, arbitrary_body()),
        0..24,
    )) {
        let ops: Vec<Op> = raw
            .into_iter()
            .enumerate()
            .map(|(index, (op_type, process, body))| Op {
                index: index as u64,
                op_type,
                process: Some(process),
                time_ns: index as i64,
                body,
            })
            .collect();
        if let Ok(history) = History::from_ops(ops) {
            let report = check_history(&history, &CheckerConfig::page_cache(), 10_000);
            prop_assert!(serde_json::to_string(&report).is_ok());
        }
    }
}

#[test]
fn check_file_loads_and_checks() {
    let path = std::env::temp_dir().join(format!(
        "skald-jepsen-check-file-{}.jsonl",
        std::process::id()
    ));
    std::fs::write(&path, SCHEMA_EXAMPLE).expect("write temp history");
    let report = skald_jepsen::check_file(&path).expect("valid history");
    let _ = std::fs::remove_file(&path);
    // One send, read back by one poll: nothing is wrong.
    assert!(report.valid, "{report:#?}");
    assert!(skald_jepsen::check_file(std::path::Path::new("/nonexistent/skald")).is_err());
}
