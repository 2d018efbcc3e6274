//! Helpers shared by the benches.

use bytes::Bytes;
use skald::protocol::{Compression, RecordBatchBuilder, RecordInput};

/// One batch of `batch_bytes` (about): records of 1 KiB values.
pub fn batch_of(batch_bytes: usize) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(Compression::None);
    let records = (batch_bytes / 1024).max(1);
    let value_bytes = batch_bytes / records - 80;
    for i in 0..records {
        builder.append(RecordInput {
            timestamp_ms: skald::io::real::system_time_ms(),
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; value_bytes])),
            headers: Vec::new(),
        });
    }
    builder.build().expect("batch").to_vec()
}
