//! `skald-sim`: runs Skald nodes inside madsim's deterministic simulator. Build it with
//! `RUSTFLAGS="--cfg madsim"` (and a separate target dir, see docs/TESTING.md); in a
//! normal build only the trace utilities here are compiled.
//!
//! Owns: the event trace that every simulated run records and hashes, so that a seed can
//! be checked for determinism (same seed, same hash) and replayed.

pub mod trace;
