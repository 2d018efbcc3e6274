//! Skald: a Kafka-compatible replicated log broker, built to run unchanged on real I/O
//! and inside a deterministic simulator. See docs/ARCHITECTURE.md for the module map.

pub mod base;
pub mod broker;
pub mod cli;
pub mod client;
pub mod config;
pub mod controller;
pub mod io;
pub mod log;
pub mod net;
pub mod protocol;
