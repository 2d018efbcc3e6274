//! Linearizability checker: linearizable and non-linearizable partition histories.

use skald_jepsen::history::{send, Body, HistoryBuilder, Key, MicroOp, Offset, Outcome, Value};
use skald_jepsen::linear::{check_linearizable, LinearOpKind, LinearResult};

const K: Key = 7;

fn read(from_offset: Offset, values: &[Value], high_watermark: Option<Offset>) -> Body {
    Body::Read {
        key: K,
        from_offset,
        values: values.to_vec(),
        high_watermark,
    }
}

fn do_read(
    b: &mut HistoryBuilder,
    process: u64,
    from: Offset,
    values: &[Value],
    hw: Option<Offset>,
) -> u64 {
    b.invoke(process, read(from, &[], None));
    b.ok(process, read(from, values, hw))
}

fn verdict(b: &HistoryBuilder, budget: u64) -> LinearResult {
    let history = b.build().expect("hand-written history is well formed");
    check_linearizable(&history, budget).result
}

#[test]
fn concurrent_appends_and_reads_are_linearizable() {
    let mut b = HistoryBuilder::new();
    b.invoke(0, send(K, 1, None));
    b.invoke(1, send(K, 2, None));
    b.invoke(2, read(0, &[], None));
    // Process 1's append took effect first although process 0 invoked first.
    b.ok(1, send(K, 2, Some(0)));
    b.ok(2, read(0, &[2], Some(1)));
    b.ok(0, send(K, 1, Some(1)));
    do_read(&mut b, 2, 0, &[2, 1], Some(2));
    b.invoke(
        3,
        Body::LatestOffset {
            key: K,
            offset: None,
        },
    );
    b.ok(
        3,
        Body::LatestOffset {
            key: K,
            offset: Some(2),
        },
    );
    assert_eq!(verdict(&b, 10_000), LinearResult::Linearizable);
}

#[test]
fn stale_read_is_not_linearizable() {
    let mut b = HistoryBuilder::new();
    let append = b.send(0, K, 1, Outcome::Ok, Some(0));
    // Invoked after the append was acked, yet sees an empty log.
    let stale = do_read(&mut b, 1, 0, &[], Some(0));
    match verdict(&b, 10_000) {
        LinearResult::NotLinearizable {
            partition,
            linearized,
            unplaceable,
        } => {
            assert_eq!(partition, K);
            assert_eq!(linearized.len(), 1);
            assert_eq!(linearized[0].completion_index, Some(append));
            assert_eq!(unplaceable.completion_index, Some(stale));
        }
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn stale_latest_offset_is_not_linearizable() {
    let mut b = HistoryBuilder::new();
    b.send(0, K, 1, Outcome::Ok, Some(0));
    b.invoke(
        1,
        Body::LatestOffset {
            key: K,
            offset: None,
        },
    );
    b.ok(
        1,
        Body::LatestOffset {
            key: K,
            offset: Some(0),
        },
    );
    assert!(matches!(
        verdict(&b, 10_000),
        LinearResult::NotLinearizable { .. }
    ));
}

#[test]
fn lost_append_is_not_linearizable() {
    let mut b = HistoryBuilder::new();
    b.send(0, K, 1, Outcome::Ok, Some(0));
    // The first append vanished and its offset was handed out again.
    b.send(0, K, 2, Outcome::Ok, Some(0));
    assert!(matches!(
        verdict(&b, 10_000),
        LinearResult::NotLinearizable { .. }
    ));
}

#[test]
fn lost_append_seen_by_a_poll_is_not_linearizable() {
    let mut b = HistoryBuilder::new();
    b.send(0, K, 1, Outcome::Ok, Some(0));
    b.send(0, K, 2, Outcome::Ok, Some(1));
    b.poll(1, &[(K, &[(0, 2)])]);
    assert!(matches!(
        verdict(&b, 10_000),
        LinearResult::NotLinearizable { .. }
    ));
}

#[test]
fn indeterminate_append_that_happened_is_linearizable() {
    let mut b = HistoryBuilder::new();
    b.send(0, K, 1, Outcome::Info, None);
    do_read(&mut b, 1, 0, &[1], Some(1));
    b.send(2, K, 2, Outcome::Ok, Some(1));
    assert_eq!(verdict(&b, 10_000), LinearResult::Linearizable);
}

#[test]
fn indeterminate_append_that_did_not_happen_is_linearizable() {
    let mut b = HistoryBuilder::new();
    b.send(0, K, 1, Outcome::Info, None);
    do_read(&mut b, 1, 0, &[], Some(0));
    b.send(2, K, 2, Outcome::Ok, Some(0));
    do_read(&mut b, 1, 0, &[2], Some(1));
    assert_eq!(verdict(&b, 10_000), LinearResult::Linearizable);
}

#[test]
fn never_completed_append_may_take_effect_late() {
    let mut b = HistoryBuilder::new();
    b.invoke(0, send(K, 1, None));
    do_read(&mut b, 1, 0, &[], Some(0));
    do_read(&mut b, 1, 0, &[1], Some(1));
    assert_eq!(verdict(&b, 10_000), LinearResult::Linearizable);
}

#[test]
fn indeterminate_append_cannot_take_effect_before_its_invoke() {
    let mut b = HistoryBuilder::new();
    do_read(&mut b, 1, 0, &[1], None);
    b.send(0, K, 1, Outcome::Info, None);
    assert!(matches!(
        verdict(&b, 10_000),
        LinearResult::NotLinearizable { .. }
    ));
}

#[test]
fn failed_append_never_takes_effect() {
    let mut b = HistoryBuilder::new();
    b.send(0, K, 1, Outcome::Fail, None);
    do_read(&mut b, 1, 0, &[1], None);
    assert!(matches!(
        verdict(&b, 10_000),
        LinearResult::NotLinearizable { .. }
    ));
}

#[test]
fn exhausted_budget_is_unknown() {
    let mut b = HistoryBuilder::new();
    for value in 0..4 {
        b.invoke(value as u64, send(K, value, None));
    }
    for value in 0..4 {
        b.ok(value as u64, send(K, value, Some(3 - value)));
    }
    assert_eq!(verdict(&b, 10_000), LinearResult::Linearizable);
    assert_eq!(
        verdict(&b, 3),
        LinearResult::Unknown {
            partition: K,
            steps: 3
        }
    );
}

#[test]
fn many_concurrent_indeterminate_appends_stay_tractable() {
    let mut b = HistoryBuilder::new();
    for value in 0..12 {
        b.invoke(value as u64, send(K, value, None));
    }
    for value in 0..12 {
        b.info(value as u64, send(K, value, None));
    }
    do_read(&mut b, 100, 0, &[11, 3], None);
    assert_eq!(verdict(&b, 1_000_000), LinearResult::Linearizable);
}

#[test]
fn partitions_are_checked_independently_and_txn_keys_skipped() {
    let mut b = HistoryBuilder::new();
    b.send(0, 1, 1, Outcome::Ok, Some(0));
    b.send(0, 2, 1, Outcome::Ok, Some(0));
    b.txn(
        1,
        vec![MicroOp::Send {
            key: 3,
            value: 1,
            offset: Some(5),
        }],
        Outcome::Ok,
    );
    let history = b.build().expect("well formed");
    let report = check_linearizable(&history, 1_000);
    assert_eq!(report.result, LinearResult::Linearizable);
    assert_eq!(report.partitions_checked, vec![1, 2]);
    assert_eq!(report.partitions_skipped, vec![3]);
}

#[test]
fn counterexample_names_the_model_operations() {
    let mut b = HistoryBuilder::new();
    b.send(0, K, 1, Outcome::Ok, Some(0));
    b.send(0, K, 2, Outcome::Ok, Some(0));
    let LinearResult::NotLinearizable { unplaceable, .. } = verdict(&b, 1_000) else {
        panic!("expected a violation");
    };
    assert_eq!(
        unplaceable.kind,
        LinearOpKind::Append {
            value: 2,
            offset: Some(0)
        }
    );
}
