//! L4 — drivers that run the synchronous machines and the log against the real (or
//! simulated) seams: they own the waiting — group commit, acks, long polls.

pub mod log_driver;
