//! Nothing here: the crate exists for its test, `tests/rdkafka.rs`, which runs the
//! rdkafka crate (librdkafka 2.12, built from the bundled sources) against a skald node.
