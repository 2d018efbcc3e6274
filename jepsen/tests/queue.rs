//! One bad/good history pair per queue anomaly, plus crash tolerance, config and lag.

use skald_jepsen::history::{
    poll_records, send, Body, History, HistoryBuilder, Key, MicroOp, Offset, Outcome, Value,
};
use skald_jepsen::queue::{check_queue, AnomalyKind, CheckerConfig, DepKind, QueueReport};

const K: Key = 0;
const X: Key = 1;
const Y: Key = 2;

fn check(builder: &HistoryBuilder) -> QueueReport {
    check_with(builder, &CheckerConfig::strict())
}

fn check_with(builder: &HistoryBuilder, config: &CheckerConfig) -> QueueReport {
    let history: History = builder
        .build()
        .expect("hand-written history is well formed");
    check_queue(&history, config)
}

fn ok_send(b: &mut HistoryBuilder, process: u64, key: Key, value: Value, offset: Offset) -> u64 {
    b.send(process, key, value, Outcome::Ok, Some(offset))
}

fn has(report: &QueueReport, kind: AnomalyKind) -> bool {
    !report.of(kind).is_empty()
}

fn send_mop(key: Key, value: Value, offset: Option<Offset>) -> MicroOp {
    MicroOp::Send { key, value, offset }
}

fn poll_mop(records: &[(Key, &[(Offset, Value)])]) -> MicroOp {
    MicroOp::Poll {
        records: poll_records(records),
    }
}

#[test]
fn lost_write_flagged_when_a_read_went_past_it() {
    let mut b = HistoryBuilder::new();
    let lost = ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    let reader = b.poll(1, &[(K, &[(1, 2)])]);
    let report = check(&b);
    assert!(!report.valid);
    let found = report.of(AnomalyKind::LostWrite);
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].ops, vec![lost, reader]);
    assert_eq!(found[0].values, vec![1]);
    assert!(!has(&report, AnomalyKind::Unseen));
}

#[test]
fn lost_write_flagged_when_a_later_fetch_sees_the_log_end_below_it() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    b.invoke(
        1,
        Body::Read {
            key: K,
            from_offset: 0,
            values: vec![],
            high_watermark: None,
        },
    );
    b.ok(
        1,
        Body::Read {
            key: K,
            from_offset: 0,
            values: vec![],
            high_watermark: Some(0),
        },
    );
    let report = check(&b);
    assert!(has(&report, AnomalyKind::LostWrite), "{report:#?}");
}

#[test]
fn lost_write_not_flagged_when_everything_is_read() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    b.poll(1, &[(K, &[(0, 1), (1, 2)])]);
    let report = check(&b);
    assert!(report.valid, "{report:#?}");
    assert!(report.anomalies.is_empty());
}

#[test]
fn unseen_flagged_when_nothing_read_past_it() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    let unseen = ok_send(&mut b, 0, K, 2, 1);
    b.poll(1, &[(K, &[(0, 1)])]);
    let report = check(&b);
    assert!(!report.valid);
    let found = report.of(AnomalyKind::Unseen);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].ops, vec![unseen]);
    assert!(!has(&report, AnomalyKind::LostWrite));
}

#[test]
fn unseen_not_flagged_when_drained() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    b.poll(1, &[(K, &[(0, 1)])]);
    b.poll(1, &[(K, &[(1, 2)])]);
    assert!(check(&b).valid);
}

#[test]
fn duplicate_flagged_for_one_value_at_two_offsets() {
    let mut b = HistoryBuilder::new();
    let sent = ok_send(&mut b, 0, K, 1, 0);
    let reader = b.poll(1, &[(K, &[(0, 1), (1, 1)])]);
    let report = check(&b);
    let found = report.of(AnomalyKind::Duplicate);
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].offsets, vec![0, 1]);
    assert_eq!(found[0].ops, vec![sent, reader]);
    assert!(!report.valid);
}

#[test]
fn duplicate_not_flagged_for_repeated_reads_at_the_same_offset() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    b.poll(1, &[(K, &[(0, 1)])]);
    b.poll(2, &[(K, &[(0, 1)])]);
    let report = check(&b);
    assert!(report.valid, "{report:#?}");
}

#[test]
fn inconsistent_offsets_flagged_for_two_values_at_one_offset() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    b.send(3, K, 3, Outcome::Info, None);
    b.poll(1, &[(K, &[(0, 1), (1, 2)])]);
    b.poll(2, &[(K, &[(0, 1), (1, 3)])]);
    let report = check(&b);
    let found = report.of(AnomalyKind::InconsistentOffsets);
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].offsets, vec![1]);
    assert_eq!(found[0].values, vec![2, 3]);
}

#[test]
fn inconsistent_offsets_not_flagged_when_readers_agree() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    b.send(3, K, 3, Outcome::Info, None);
    b.poll(1, &[(K, &[(0, 1), (1, 2), (2, 3)])]);
    b.poll(2, &[(K, &[(0, 1), (1, 2)])]);
    assert!(check(&b).valid);
}

#[test]
fn poll_skip_flagged_across_consecutive_polls() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    ok_send(&mut b, 0, K, 3, 2);
    let first = b.poll(1, &[(K, &[(0, 1)])]);
    let second = b.poll(1, &[(K, &[(2, 3)])]);
    b.poll(2, &[(K, &[(0, 1), (1, 2), (2, 3)])]);
    let report = check(&b);
    let found = report.of(AnomalyKind::PollSkip);
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].ops, vec![first, second]);
    assert_eq!(found[0].offsets, vec![0, 2]);
    assert_eq!(found[0].process, Some(1));
}

#[test]
fn poll_skip_not_flagged_for_contiguous_polls_or_gaps_of_unknown_offsets() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    // Offset 2 is a transaction marker: nobody ever observes it.
    ok_send(&mut b, 0, K, 3, 3);
    b.poll(1, &[(K, &[(0, 1)])]);
    b.poll(1, &[(K, &[(1, 2), (3, 3)])]);
    let report = check(&b);
    assert!(report.valid, "{report:#?}");
}

#[test]
fn poll_skip_not_flagged_across_a_rebalance() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    ok_send(&mut b, 0, K, 3, 2);
    b.poll(1, &[(K, &[(0, 1)])]);
    b.event(Some(1), Body::Rebalance { keys: vec![K] });
    b.poll(1, &[(K, &[(2, 3)])]);
    b.poll(2, &[(K, &[(0, 1), (1, 2), (2, 3)])]);
    assert!(check(&b).valid);
    // Without the reset rule, the same history is a skip.
    let config = CheckerConfig {
        reset_on_rebalance: false,
        ..CheckerConfig::strict()
    };
    assert!(has(&check_with(&b, &config), AnomalyKind::PollSkip));
}

#[test]
fn nonmonotonic_poll_flagged_when_offsets_go_back() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    let first = b.poll(1, &[(K, &[(0, 1), (1, 2)])]);
    let second = b.poll(1, &[(K, &[(1, 2)])]);
    let report = check(&b);
    let found = report.of(AnomalyKind::NonmonotonicPoll);
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].ops, vec![first, second]);
    assert_eq!(found[0].offsets, vec![1, 1]);
}

#[test]
fn nonmonotonic_poll_not_flagged_after_assign() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    b.poll(1, &[(K, &[(0, 1), (1, 2)])]);
    b.invoke(1, Body::Assign { keys: vec![K] });
    b.ok(1, Body::Assign { keys: vec![K] });
    b.poll(1, &[(K, &[(1, 2)])]);
    let report = check(&b);
    assert!(report.valid, "{report:#?}");
}

#[test]
fn nonmonotonic_send_flagged_when_a_producer_goes_back() {
    let mut b = HistoryBuilder::new();
    let first = ok_send(&mut b, 0, K, 1, 1);
    let second = ok_send(&mut b, 0, K, 2, 0);
    b.poll(1, &[(K, &[(0, 2), (1, 1)])]);
    let report = check(&b);
    let found = report.of(AnomalyKind::NonmonotonicSend);
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].ops, vec![first, second]);
    assert_eq!(report.anomalies.len(), 1);
}

#[test]
fn nonmonotonic_send_not_flagged_across_producers() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 1);
    ok_send(&mut b, 2, K, 2, 0);
    b.poll(1, &[(K, &[(0, 2), (1, 1)])]);
    assert!(check(&b).valid);
}

#[test]
fn g1a_flagged_for_a_read_of_a_failed_send() {
    let mut b = HistoryBuilder::new();
    let failed = b.send(0, K, 1, Outcome::Fail, None);
    let reader = b.poll(1, &[(K, &[(0, 1)])]);
    let report = check(&b);
    let found = report.of(AnomalyKind::G1a);
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].ops, vec![failed, reader]);
}

#[test]
fn g1a_flagged_for_a_read_of_an_aborted_transaction() {
    let mut b = HistoryBuilder::new();
    let aborted = b.txn(
        0,
        vec![send_mop(K, 1, None), send_mop(X, 2, None)],
        Outcome::Fail,
    );
    let reader = b.poll(1, &[(X, &[(0, 2)])]);
    let report = check(&b);
    let found = report.of(AnomalyKind::G1a);
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].ops, vec![aborted, reader]);
    assert!(found[0].explanation.contains("aborted transaction"));
}

#[test]
fn g1a_not_flagged_for_indeterminate_sends() {
    let mut b = HistoryBuilder::new();
    b.send(0, K, 1, Outcome::Fail, None);
    b.send(0, K, 2, Outcome::Info, None);
    b.poll(1, &[(K, &[(0, 2)])]);
    let report = check(&b);
    assert!(report.valid, "{report:#?}");
}

#[test]
fn g0_flagged_for_a_write_write_cycle() {
    let mut b = HistoryBuilder::new();
    let t1 = b.txn(
        0,
        vec![send_mop(X, 1, Some(0)), send_mop(Y, 2, Some(1))],
        Outcome::Ok,
    );
    let t2 = b.txn(
        1,
        vec![send_mop(X, 3, Some(1)), send_mop(Y, 4, Some(0))],
        Outcome::Ok,
    );
    b.poll(2, &[(X, &[(0, 1), (1, 3)]), (Y, &[(0, 4), (1, 2)])]);
    let report = check(&b);
    let found = report.of(AnomalyKind::G0);
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].ops, vec![t1, t2]);
    assert!(found[0].cycle.iter().all(|step| step.edge == DepKind::Ww));
    assert!(!has(&report, AnomalyKind::G1c));
}

#[test]
fn g0_not_flagged_when_versions_agree() {
    let mut b = HistoryBuilder::new();
    b.txn(
        0,
        vec![send_mop(X, 1, Some(0)), send_mop(Y, 2, Some(0))],
        Outcome::Ok,
    );
    b.txn(
        1,
        vec![send_mop(X, 3, Some(1)), send_mop(Y, 4, Some(1))],
        Outcome::Ok,
    );
    b.poll(2, &[(X, &[(0, 1), (1, 3)]), (Y, &[(0, 2), (1, 4)])]);
    let report = check(&b);
    assert!(report.valid, "{report:#?}");
}

#[test]
fn g1c_flagged_for_a_cycle_through_a_read() {
    let mut b = HistoryBuilder::new();
    // T1 writes x first, but reads y from T2, which wrote x after T1.
    let t1 = b.txn(
        0,
        vec![send_mop(X, 1, Some(0)), poll_mop(&[(Y, &[(0, 3)])])],
        Outcome::Ok,
    );
    let t2 = b.txn(
        1,
        vec![send_mop(X, 2, Some(1)), send_mop(Y, 3, Some(0))],
        Outcome::Ok,
    );
    b.poll(2, &[(X, &[(0, 1), (1, 2)])]);
    let report = check(&b);
    let found = report.of(AnomalyKind::G1c);
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(found[0].ops, vec![t1, t2]);
    let edges: Vec<DepKind> = found[0].cycle.iter().map(|step| step.edge).collect();
    assert_eq!(edges, vec![DepKind::Ww, DepKind::Wr]);
    assert!(!has(&report, AnomalyKind::G0));
}

#[test]
fn g1c_not_flagged_when_the_read_is_in_a_later_transaction() {
    let mut b = HistoryBuilder::new();
    b.txn(0, vec![send_mop(X, 1, Some(0))], Outcome::Ok);
    b.txn(
        1,
        vec![send_mop(X, 2, Some(1)), send_mop(Y, 3, Some(0))],
        Outcome::Ok,
    );
    b.txn(0, vec![poll_mop(&[(Y, &[(0, 3)])])], Outcome::Ok);
    b.poll(2, &[(X, &[(0, 1), (1, 2)])]);
    let report = check(&b);
    assert!(report.valid, "{report:#?}");
}

/// Acked 0, 1, 2; crash; the log came back with only offset 0 and then reused 1 and 2.
fn crash_lost_suffix() -> HistoryBuilder {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    ok_send(&mut b, 0, K, 3, 2);
    b.event(None, Body::Crash { node: "n1".into() });
    ok_send(&mut b, 0, K, 4, 1);
    ok_send(&mut b, 0, K, 5, 2);
    b.poll(1, &[(K, &[(0, 1), (1, 4), (2, 5)])]);
    b
}

#[test]
fn crash_lost_suffix_tolerated_in_page_cache_mode_only() {
    let b = crash_lost_suffix();
    let strict = check(&b);
    assert!(!strict.valid);
    assert_eq!(strict.of(AnomalyKind::LostWrite).len(), 2);

    let page_cache = check_with(&b, &CheckerConfig::page_cache());
    assert!(page_cache.valid, "{page_cache:#?}");
    assert!(page_cache.anomalies.is_empty(), "{page_cache:#?}");
    assert_eq!(page_cache.tolerated[&AnomalyKind::LostWrite].len(), 2);
    assert_eq!(
        page_cache.tolerated[&AnomalyKind::InconsistentOffsets].len(),
        2
    );
}

#[test]
fn crash_lost_hole_not_tolerated_in_page_cache_mode() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    ok_send(&mut b, 0, K, 3, 2);
    b.event(None, Body::Crash { node: "n1".into() });
    // Offset 1 lost but offset 2 survived: not a suffix.
    b.poll(1, &[(K, &[(0, 1), (2, 3)])]);
    let report = check_with(&b, &CheckerConfig::page_cache());
    assert!(!report.valid);
    assert_eq!(report.of(AnomalyKind::LostWrite).len(), 1, "{report:#?}");
}

#[test]
fn lost_write_without_a_crash_not_tolerated_in_page_cache_mode() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    b.poll(1, &[(K, &[(1, 2)])]);
    b.event(None, Body::Crash { node: "n1".into() });
    let report = check_with(&b, &CheckerConfig::page_cache());
    // The write at 0 was acked before the crash, but the higher offset 1 was observed.
    assert!(!report.valid, "{report:#?}");
    assert!(has(&report, AnomalyKind::LostWrite));
}

#[test]
fn allowed_kinds_are_reported_but_valid() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    ok_send(&mut b, 0, K, 3, 2);
    b.poll(1, &[(K, &[(0, 1)])]);
    b.poll(1, &[(K, &[(2, 3)])]);
    b.poll(2, &[(K, &[(0, 1), (1, 2), (2, 3)])]);
    let config = CheckerConfig::strict().allowing(AnomalyKind::PollSkip);
    let report = check_with(&b, &config);
    assert!(report.valid);
    assert!(has(&report, AnomalyKind::PollSkip));
}

#[test]
fn realtime_lag_measures_the_oldest_missed_ack() {
    let ms = 1_000_000i64;
    let mut b = HistoryBuilder::new();
    b.at_ns(0);
    b.invoke(1, Body::Assign { keys: vec![K] });
    b.ok(1, Body::Assign { keys: vec![K] });
    b.at_ns(0);
    b.invoke(0, send(K, 1, None));
    b.at_ns(10 * ms);
    b.ok(0, send(K, 1, Some(0)));
    b.at_ns(100 * ms);
    b.poll(1, &[]);
    b.at_ns(200 * ms);
    b.poll(1, &[(K, &[(0, 1)])]);
    let report = check(&b);
    assert!(report.valid, "{report:#?}");
    let lag = &report.stats.lag;
    assert_eq!(lag.polls, 2);
    assert_eq!(lag.lag_ns_max, 90 * ms);
    assert_eq!(lag.lag_ns_p50, 0);
    assert_eq!(lag.lag_ns_p99, 90 * ms);
}

#[test]
fn report_serializes_to_json_with_kebab_case_kinds() {
    let mut b = HistoryBuilder::new();
    ok_send(&mut b, 0, K, 1, 0);
    ok_send(&mut b, 0, K, 2, 1);
    b.poll(1, &[(K, &[(1, 2)])]);
    let report = check(&b);
    let json = serde_json::to_string(&report).expect("report serializes");
    assert!(json.contains("\"lost-write\""), "{json}");
    let back: QueueReport = serde_json::from_str(&json).expect("report deserializes");
    assert_eq!(back, report);
    assert_eq!(check(&b), report, "checking is deterministic");
}
