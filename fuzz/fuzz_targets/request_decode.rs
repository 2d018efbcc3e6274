//! Fuzzes the broker's request entry point: any frame body must decode to a request or a
//! typed error (never a panic, an abort or an unbounded allocation), and the record
//! batches of a decoded Produce request must validate or fail with a Kafka error code.

#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::RequestKind;
use libfuzzer_sys::fuzz_target;
use skald::broker::request::decode_request;
use skald::protocol::parse_batches;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = decode_request(Bytes::copy_from_slice(data)) else {
        return;
    };
    if let RequestKind::Produce(produce) = request.body {
        for topic in produce.topic_data {
            for partition in topic.partition_data {
                if let Some(records) = partition.records {
                    if let Err(error) = parse_batches(&records) {
                        let _ = error.kafka_error_code();
                    }
                }
            }
        }
    }
});
