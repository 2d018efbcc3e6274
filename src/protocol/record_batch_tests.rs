//! Tests of the RecordBatch v2 decoder, patchers and builder: round trips per codec, every
//! validation error with its Kafka code, truncation and corruption at every byte, bounded
//! decompression, and property tests that arbitrary input never panics.

use bytes::Bytes;
use proptest::prelude::*;

use crate::base::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};
use crate::protocol::compression::{compress, Compression, CompressionError};
use crate::protocol::record_batch::{
    assign_offsets, error_code, frame_batch, parse_batches, parse_produce_batch, scan_log,
    set_log_append_time, set_max_timestamp, set_partition_leader_epoch, write_crc, BatchError,
    RecordBatchHeader, ScanStop, TimestampType, HEADER_BYTES,
};
use crate::protocol::records::{records, Record, RecordFault};
use crate::protocol::varint::{write_varint, write_varlong, VarintError};
use crate::protocol::{RecordBatchBuilder, RecordInput};

fn input(i: usize) -> RecordInput {
    RecordInput {
        timestamp_ms: 1_700_000_000_000 + (i as i64 % 7) * 13 - 20,
        key: (!i.is_multiple_of(3)).then(|| Bytes::from(format!("key-{i}"))),
        value: (!i.is_multiple_of(5)).then(|| Bytes::from(vec![i as u8; i % 300])),
        headers: (0..i % 4)
            .map(|h| {
                let value = h.is_multiple_of(2).then(|| Bytes::from(format!("v{h}")));
                (format!("h{h}"), value)
            })
            .collect(),
    }
}

fn inputs(count: usize) -> Vec<RecordInput> {
    (0..count).map(input).collect()
}

fn build(codec: Compression, records_in: &[RecordInput]) -> Bytes {
    let mut builder = RecordBatchBuilder::new(codec);
    for record in records_in {
        builder.append(record.clone());
    }
    builder.build().expect("build")
}

fn expected(records_in: &[RecordInput]) -> Vec<Record> {
    let base_ms = records_in.first().map_or(-1, |r| r.timestamp_ms);
    records_in
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            offset_delta: i as i32,
            timestamp_delta_ms: r.timestamp_ms - base_ms,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
        })
        .collect()
}

/// One encoded record body with its length prefix.
fn encode_record(offset_delta: i32, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    let mut body = vec![0u8];
    write_varlong(&mut body, 0);
    write_varint(&mut body, offset_delta);
    for field in [key, value] {
        match field {
            None => write_varint(&mut body, -1),
            Some(bytes) => {
                write_varint(&mut body, bytes.len() as i32);
                body.extend_from_slice(bytes);
            }
        }
    }
    write_varint(&mut body, 0);
    let mut out = Vec::new();
    write_varint(&mut out, body.len() as i32);
    out.extend_from_slice(&body);
    out
}

/// A batch with a hand-made records section and a correct CRC.
fn raw_batch(
    attributes: i16,
    last_offset_delta: i32,
    records_count: i32,
    section: &[u8],
) -> Vec<u8> {
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&((HEADER_BYTES - 12 + section.len()) as i32).to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes());
    batch.push(2);
    batch.extend_from_slice(&[0; 4]);
    batch.extend_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(&last_offset_delta.to_be_bytes());
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&(-1i64).to_be_bytes());
    batch.extend_from_slice(&(-1i16).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.extend_from_slice(&records_count.to_be_bytes());
    batch.extend_from_slice(section);
    write_crc(&mut batch);
    batch
}

/// Overwrites header bytes at `at` and reseals the CRC.
fn patch(batch: &Bytes, at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = batch.to_vec();
    out[at..at + bytes.len()].copy_from_slice(bytes);
    write_crc(&mut out);
    out
}

fn produce_error(batch: &[u8]) -> BatchError {
    parse_batches(batch).expect_err("batch must be rejected")
}

#[test]
fn round_trip_every_codec() {
    let records_in = inputs(200);
    for codec in Compression::ALL {
        let batch = build(codec, &records_in);
        let infos = parse_batches(&batch).expect("valid batch");
        assert_eq!(infos.len(), 1, "{codec:?}");
        let header = infos[0].header;
        assert_eq!(header.compression(), Ok(codec));
        assert_eq!(header.records_count, 200);
        assert_eq!(header.last_offset_delta, 199);
        assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
        assert_eq!(header.base_timestamp_ms, records_in[0].timestamp_ms);
        let max_ms = records_in.iter().map(|r| r.timestamp_ms).max();
        assert_eq!(Some(header.max_timestamp_ms), max_ms);
        assert_eq!(infos[0].size_bytes, batch.len());
        assert_eq!(records(&batch), Ok(expected(&records_in)), "{codec:?}");
        assert_eq!(parse_produce_batch(&batch).map(|i| i.header), Ok(header));
    }
}

#[test]
fn producer_fields_and_flags_round_trip() {
    let mut builder = RecordBatchBuilder::new(Compression::Lz4)
        .producer(ProducerId(42), ProducerEpoch(3), Sequence(17))
        .transactional(true)
        .partition_leader_epoch(LeaderEpoch(9))
        .base_offset(Offset(1000));
    builder.append(input(1));
    let batch = builder.build().expect("build");
    let header = parse_batches(&batch).expect("valid")[0].header;
    assert_eq!(header.producer_id, ProducerId(42));
    assert_eq!(header.producer_epoch, ProducerEpoch(3));
    assert_eq!(header.base_sequence, Sequence(17));
    assert!(header.is_transactional());
    assert!(!header.is_control());
    assert_eq!(header.partition_leader_epoch, LeaderEpoch(9));
    assert_eq!(header.base_offset, Offset(1000));
    assert_eq!(header.last_offset(), Some(Offset(1000)));
}

#[test]
fn several_batches_parse_and_produce_demands_one() {
    let first = build(Compression::None, &inputs(3));
    let second = build(Compression::Gzip, &inputs(4));
    let both = [first.as_ref(), second.as_ref()].concat();
    let infos = parse_batches(&both).expect("valid");
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[1].range(), first.len()..both.len());
    let error = parse_produce_batch(&both).expect_err("two batches");
    assert_eq!(error, BatchError::MultipleBatches);
    assert_eq!(error.kafka_error_code(), error_code::INVALID_RECORD);
    assert_eq!(parse_batches(&[]), Err(BatchError::NoBatches));
}

#[test]
fn every_crc_covered_bit_flip_is_caught() {
    let batch = build(Compression::None, &inputs(2));
    for byte in 21..batch.len() {
        for bit in 0..8 {
            let mut bad = batch.to_vec();
            bad[byte] ^= 1 << bit;
            let error = produce_error(&bad);
            assert!(
                matches!(error, BatchError::CrcMismatch { .. }),
                "flip at {byte}:{bit} gave {error:?}"
            );
            assert_eq!(error.kafka_error_code(), error_code::CORRUPT_MESSAGE);
        }
    }
    // The stored CRC itself.
    let mut bad = batch.to_vec();
    bad[17] ^= 0x80;
    assert!(matches!(
        produce_error(&bad),
        BatchError::CrcMismatch { .. }
    ));
}

#[test]
fn truncation_at_every_length_is_an_error_not_a_panic() {
    let batch = build(Compression::Snappy, &inputs(5));
    for len in 0..batch.len() {
        let cut = &batch[..len];
        let error = parse_batches(cut).expect_err("truncated");
        if len > 0 {
            assert!(
                matches!(error, BatchError::Truncated { .. }),
                "len {len}: {error:?}"
            );
            assert_eq!(error.kafka_error_code(), error_code::CORRUPT_MESSAGE);
        }
        assert!(records(&Bytes::copy_from_slice(cut)).is_err());
        let outcome = scan_log(cut).finish();
        assert_eq!(outcome.valid_bytes, 0);
        let expected_stop = if len == 0 { "End" } else { "TornTail" };
        let stop = match outcome.stop {
            ScanStop::End => "End",
            ScanStop::TornTail { .. } => "TornTail",
            ScanStop::Corrupt(_) => "Corrupt",
        };
        assert_eq!(stop, expected_stop, "len {len}");
    }
}

#[test]
fn recovery_scan_stops_at_torn_tail_and_at_corruption() {
    let a = build(Compression::None, &inputs(2));
    let b = build(Compression::Zstd, &inputs(3));
    let c = build(Compression::Gzip, &inputs(4));
    let log = [a.as_ref(), b.as_ref(), c.as_ref()].concat();

    let mut scanner = scan_log(&log);
    let found: Vec<_> = scanner.by_ref().map(|info| info.range()).collect();
    assert_eq!(found.len(), 3);
    let outcome = scanner.outcome().expect("finished");
    assert_eq!(outcome.valid_bytes, log.len());
    assert_eq!(outcome.stop, ScanStop::End);

    // Torn tail: the last batch is cut short.
    let torn = &log[..log.len() - 5];
    let outcome = scan_log(torn).finish();
    assert_eq!(outcome.valid_bytes, a.len() + b.len());
    assert!(matches!(outcome.stop, ScanStop::TornTail { .. }));

    // Corruption in the middle batch: the valid prefix is the first batch.
    let mut corrupt = log.clone();
    corrupt[a.len() + 70] ^= 0x01;
    let outcome = scan_log(&corrupt).finish();
    assert_eq!(outcome.valid_bytes, a.len());
    assert!(matches!(
        outcome.stop,
        ScanStop::Corrupt(BatchError::CrcMismatch { .. })
    ));

    // A zero-filled tail (pre-allocated or torn page) is not a batch.
    let zeros = [a.as_ref(), &[0u8; 4096]].concat();
    let outcome = scan_log(&zeros).finish();
    assert_eq!(outcome.valid_bytes, a.len());
    assert!(matches!(outcome.stop, ScanStop::Corrupt(_)));
}

#[test]
fn magic_other_than_two_is_rejected() {
    let batch = build(Compression::None, &inputs(1));
    // The CRC does not cover the magic byte, so no reseal is needed to reach the check.
    for (magic, code) in [(0u8, 87), (1, 87), (3, 2), (0xff, 2)] {
        let mut bad = batch.to_vec();
        bad[16] = magic;
        let error = produce_error(&bad);
        let magic = magic as i8;
        let expected_error = if magic == 0 || magic == 1 {
            BatchError::UnsupportedMagic { magic }
        } else {
            BatchError::InvalidMagic { magic }
        };
        assert_eq!(error, expected_error);
        assert_eq!(error.kafka_error_code(), code);
    }
}

#[test]
fn bad_batch_lengths_are_rejected() {
    let batch = build(Compression::None, &inputs(1));
    for length in [-1i32, i32::MIN, 0, 48] {
        let mut bad = batch.to_vec();
        bad[8..12].copy_from_slice(&length.to_be_bytes());
        let error = produce_error(&bad);
        assert_eq!(
            error,
            BatchError::InvalidLength {
                batch_length_bytes: length
            }
        );
        assert_eq!(error.kafka_error_code(), error_code::CORRUPT_MESSAGE);
    }
    let mut huge = batch.to_vec();
    huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    let error = produce_error(&huge);
    assert!(matches!(error, BatchError::TooLarge { .. }));
    assert_eq!(error.kafka_error_code(), error_code::MESSAGE_TOO_LARGE);
}

#[test]
fn client_header_rules_map_to_kafka_codes() {
    let batch = build(Compression::None, &inputs(2));
    let cases: Vec<(Vec<u8>, BatchError, i16)> = vec![
        // recordsCount 0 (and lastOffsetDelta -1 to match).
        (
            patch(
                &Bytes::from(patch(&batch, 57, &0i32.to_be_bytes())),
                23,
                &(-1i32).to_be_bytes(),
            ),
            BatchError::InvalidRecordCount { records_count: 0 },
            87,
        ),
        (
            patch(&batch, 57, &(-3i32).to_be_bytes()),
            BatchError::InvalidRecordCount { records_count: -3 },
            87,
        ),
        (
            patch(&batch, 23, &5i32.to_be_bytes()),
            BatchError::OffsetDeltaMismatch {
                last_offset_delta: 5,
                records_count: 2,
            },
            87,
        ),
        (
            patch(&batch, 21, &0x0020i16.to_be_bytes()),
            BatchError::ControlBatchFromClient,
            87,
        ),
        (
            patch(&batch, 21, &0x0008i16.to_be_bytes()),
            BatchError::LogAppendTimeFromClient,
            32,
        ),
        (
            patch(&batch, 21, &0x0005i16.to_be_bytes()),
            BatchError::UnsupportedCompression { codec_id: 5 },
            76,
        ),
        (
            patch(&batch, 21, &0x0010i16.to_be_bytes()),
            BatchError::TransactionalWithoutProducerId,
            87,
        ),
        (
            // producerId 7, epoch 0, sequence -1.
            patch(
                &batch,
                43,
                &[0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0xff, 0xff, 0xff, 0xff],
            ),
            BatchError::InvalidSequence {
                producer_id: 7,
                base_sequence: -1,
            },
            87,
        ),
        (
            // producerId 7, epoch -1, sequence 0.
            patch(
                &batch,
                43,
                &[0, 0, 0, 0, 0, 0, 0, 7, 0xff, 0xff, 0, 0, 0, 0],
            ),
            BatchError::InvalidProducerEpoch {
                producer_id: 7,
                producer_epoch: -1,
            },
            47,
        ),
        (
            patch(&batch, 57, &(i32::MAX).to_be_bytes()),
            BatchError::TooManyRecords {
                records_count: i32::MAX,
                max: 1 << 20,
            },
            10,
        ),
    ];
    for (bad, expected_error, code) in cases {
        let error = produce_error(&bad);
        assert_eq!(error, expected_error);
        assert_eq!(error.kafka_error_code(), code, "{error}");
    }
    // kafkajs sends producerId -1 with epoch 0 and sequence 0: Kafka accepts it, so must we.
    let kafkajs = patch(&batch, 51, &[0, 0, 0, 0, 0, 0]);
    assert!(parse_batches(&kafkajs).is_ok());
}

#[test]
fn record_count_mismatch_is_invalid_record() {
    let batch = build(Compression::None, &inputs(3));
    // Declares 4 records (lastOffsetDelta 3) but holds 3.
    let more = patch(
        &Bytes::from(patch(&batch, 57, &4i32.to_be_bytes())),
        23,
        &3i32.to_be_bytes(),
    );
    let error = produce_error(&more);
    assert_eq!(
        error,
        BatchError::RecordCountMismatch {
            declared: 4,
            found: 3
        }
    );
    assert_eq!(error.kafka_error_code(), error_code::INVALID_RECORD);
    // Declares 2 records but holds 3.
    let fewer = patch(
        &Bytes::from(patch(&batch, 57, &2i32.to_be_bytes())),
        23,
        &1i32.to_be_bytes(),
    );
    assert_eq!(
        produce_error(&fewer),
        BatchError::RecordCountMismatch {
            declared: 2,
            found: 3
        }
    );
    // The same holds inside a compressed section.
    let zstd = build(Compression::Zstd, &inputs(3));
    let more = patch(
        &Bytes::from(patch(&zstd, 57, &4i32.to_be_bytes())),
        23,
        &3i32.to_be_bytes(),
    );
    assert!(matches!(
        produce_error(&more),
        BatchError::RecordCountMismatch { .. }
    ));
}

#[test]
fn malformed_records_are_invalid_record() {
    let record = |fault_bytes: Vec<u8>| raw_batch(0, 0, 1, &fault_bytes);
    let fault = |batch: &[u8]| match produce_error(batch) {
        BatchError::InvalidRecord { index: 0, fault } => fault,
        other => panic!("expected an InvalidRecord, got {other:?}"),
    };
    // Negative record length.
    assert_eq!(
        fault(&record(vec![0x03, 0, 0, 0, 0, 0, 0])),
        RecordFault::NegativeLength { length: -2 }
    );
    // Oversized varint as the record length (six continuation bytes).
    assert_eq!(
        fault(&record(vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0])),
        RecordFault::Varint(VarintError::Overlong)
    );
    // Length longer than the section.
    assert_eq!(
        fault(&record(vec![0x7e, 0, 0, 0, 0, 0, 0])),
        RecordFault::Truncated
    );
    // A key length of -2.
    let mut body = vec![0u8, 0, 0, 0x03, 0x01, 0x00];
    let mut bad_key = Vec::new();
    write_varint(&mut bad_key, body.len() as i32);
    bad_key.append(&mut body);
    assert_eq!(
        fault(&record(bad_key)),
        RecordFault::NegativeLength { length: -2 }
    );
    // Declared length longer than the fields it holds.
    let mut padded = encode_record(0, Some(b"k"), None);
    padded[0] += 2; // length + 1 in zig-zag
    padded.push(0);
    assert!(matches!(
        fault(&record(padded)),
        RecordFault::LengthMismatch { .. }
    ));
    // Offset deltas out of order.
    let section = [encode_record(1, None, None), encode_record(0, None, None)].concat();
    assert!(matches!(
        produce_error(&raw_batch(0, 1, 2, &section)),
        BatchError::InvalidRecord {
            index: 1,
            fault: RecordFault::OffsetDelta { .. }
        }
    ));
}

#[test]
fn compacted_batches_decode_but_are_refused_from_clients() {
    // Offsets 0 and 2 survive compaction: lastOffsetDelta 2, two records.
    let section = [
        encode_record(0, Some(b"a"), Some(b"1")),
        encode_record(2, Some(b"b"), None),
    ]
    .concat();
    let batch = Bytes::from(raw_batch(0, 2, 2, &section));
    let decoded = records(&batch).expect("a compacted batch is valid in a log");
    assert_eq!(decoded.len(), 2);
    assert_eq!(decoded[1].offset_delta, 2);
    assert_eq!(decoded[1].value, None);
    assert!(matches!(
        produce_error(&batch),
        BatchError::OffsetDeltaMismatch {
            last_offset_delta: 2,
            records_count: 2
        }
    ));
    // An empty batch left by compaction scans as a valid batch.
    let empty = raw_batch(0, 5, 0, &[]);
    assert_eq!(records(&Bytes::from(empty.clone())), Ok(vec![]));
    assert_eq!(scan_log(&empty).count(), 1);
}

#[test]
fn header_key_must_be_utf8_for_records_only() {
    let mut builder = RecordBatchBuilder::new(Compression::None);
    builder.append(RecordInput {
        timestamp_ms: 5,
        key: None,
        value: None,
        headers: vec![("\u{e9}".to_owned(), None)],
    });
    let batch = builder.build().expect("build");
    // "é" is 0xc3 0xa9; replace the continuation byte to make it invalid UTF-8.
    let at = batch.iter().rposition(|b| *b == 0xa9).expect("present");
    let bad = Bytes::from(patch(&batch, at, &[0x28]));
    // Kafka decodes header keys leniently, so produce accepts it...
    assert!(parse_batches(&bad).is_ok());
    // ...but a decoded Record needs a String key.
    assert_eq!(
        records(&bad),
        Err(BatchError::InvalidRecord {
            index: 0,
            fault: RecordFault::HeaderKeyNotUtf8
        })
    );
}

#[test]
fn decompression_bomb_is_bounded() {
    // 65 MiB of zeros: one record whose value is all zeros, compressed by zstd to KiBs.
    let value = vec![0u8; 65 << 20];
    let section = encode_record(0, None, Some(&value));
    for codec in [
        Compression::Zstd,
        Compression::Lz4,
        Compression::Gzip,
        Compression::Snappy,
    ] {
        let packed = compress(codec, &section).expect("compress");
        assert!(packed.len() < 4 << 20, "{codec:?} packs zeros");
        let batch = raw_batch(i16::from(codec.id()), 0, 1, &packed);
        let error = produce_error(&batch);
        assert!(
            matches!(
                error,
                BatchError::Decompression(CompressionError::TooLarge { .. })
            ),
            "{codec:?}: {error:?}"
        );
        assert_eq!(error.kafka_error_code(), error_code::MESSAGE_TOO_LARGE);
    }
    // Garbage in a compressed section is corruption.
    let batch = raw_batch(i16::from(Compression::Zstd.id()), 0, 1, &[1, 2, 3, 4]);
    let error = produce_error(&batch);
    assert!(matches!(
        error,
        BatchError::Decompression(CompressionError::Corrupt { .. })
    ));
    assert_eq!(error.kafka_error_code(), error_code::CORRUPT_MESSAGE);
}

#[test]
fn patches_keep_the_batch_valid() {
    let batch = build(Compression::Gzip, &inputs(10));
    let mut bytes = batch.to_vec();
    let crc_before = RecordBatchHeader::read(&bytes).expect("header").crc;

    assign_offsets(&mut bytes, Offset(123_456)).expect("patch");
    set_partition_leader_epoch(&mut bytes, LeaderEpoch(77)).expect("patch");
    let header = frame_batch(&bytes).expect("still valid");
    assert_eq!(header.base_offset, Offset(123_456));
    assert_eq!(header.partition_leader_epoch, LeaderEpoch(77));
    assert_eq!(
        header.crc, crc_before,
        "neither field is covered by the CRC"
    );
    assert_eq!(header.last_offset(), Some(Offset(123_465)));

    set_log_append_time(&mut bytes, 1_800_000_000_000).expect("patch");
    let header = frame_batch(&bytes).expect("CRC recomputed");
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp_ms, 1_800_000_000_000);
    assert_ne!(header.crc, crc_before);
    assert_eq!(
        header.compression(),
        Ok(Compression::Gzip),
        "other attributes kept"
    );
    assert_eq!(
        records(&Bytes::from(bytes.clone())),
        Ok(expected(&inputs(10)))
    );

    set_max_timestamp(&mut bytes, TimestampType::CreateTime, 5).expect("patch");
    let header = frame_batch(&bytes).expect("CRC recomputed");
    assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
    assert_eq!(header.max_timestamp_ms, 5);

    // A slice that is not exactly one batch is refused, not patched.
    let mut longer = [batch.as_ref(), &[0u8]].concat();
    assert!(matches!(
        assign_offsets(&mut longer, Offset(1)),
        Err(BatchError::NotOneBatch { .. })
    ));
    assert!(matches!(
        set_log_append_time(&mut [0u8; 10], 1),
        Err(BatchError::Truncated { .. })
    ));
}

fn arb_record() -> impl Strategy<Value = RecordInput> {
    let bytes = || {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from))
    };
    (
        -1_000_000i64..1_000_000,
        bytes(),
        bytes(),
        proptest::collection::vec(("[a-z\u{e9}]{0,8}", bytes()), 0..3),
    )
        .prop_map(|(timestamp_ms, key, value, headers)| RecordInput {
            timestamp_ms,
            key,
            value,
            headers,
        })
}

fn arb_codec() -> impl Strategy<Value = Compression> {
    proptest::sample::select(Compression::ALL.to_vec())
}

proptest! {
    #[test]
    fn build_parse_round_trips(codec in arb_codec(), records_in in proptest::collection::vec(arb_record(), 1..40)) {
        let batch = build(codec, &records_in);
        let infos = parse_batches(&batch).expect("valid");
        prop_assert_eq!(infos.len(), 1);
        prop_assert_eq!(infos[0].header.records_count as usize, records_in.len());
        prop_assert_eq!(records(&batch), Ok(expected(&records_in)));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_batches(&bytes);
        let _ = parse_produce_batch(&bytes);
        let _ = records(&Bytes::from(bytes.clone()));
        let outcome = scan_log(&bytes).finish();
        prop_assert!(outcome.valid_bytes <= bytes.len());
    }

    /// Random bytes rarely pass the CRC, so also mutate valid batches and reseal the CRC:
    /// that reaches the record decoder and the codecs with hostile input.
    #[test]
    fn mutated_valid_batches_never_panic(
        codec in arb_codec(),
        records_in in proptest::collection::vec(arb_record(), 1..8),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let batch = build(codec, &records_in);
        let mut bad = batch.to_vec();
        for (index, byte) in edits {
            // Leave the batch length alone most of the time so that decoding goes deep.
            let at = 21 + index.index(bad.len() - 21);
            bad[at] = byte;
        }
        write_crc(&mut bad);
        let _ = parse_batches(&bad);
        let _ = records(&Bytes::from(bad.clone()));
        let _ = scan_log(&bad).finish();
    }
}

#[test]
fn sequences_wrap_from_max_to_zero() {
    use super::record_batch::increment_sequence;
    assert_eq!(increment_sequence(0, 5), 5);
    assert_eq!(increment_sequence(i32::MAX - 5, 5), i32::MAX);
    assert_eq!(increment_sequence(i32::MAX, 1), 0);
    assert_eq!(increment_sequence(i32::MAX - 1, 4), 2);
    assert_eq!(increment_sequence(7, 0), 7);
}
