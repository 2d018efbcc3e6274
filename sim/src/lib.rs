//! `skald-sim`: runs Skald nodes inside madsim's deterministic simulator. Build it with
//! `RUSTFLAGS="--cfg madsim"` (and a separate target dir, see docs/TESTING.md); in a
//! normal build only the trace, outcome and trace-file code here is compiled.
//!
//! - `trace`: the event trace every simulated run records and hashes;
//! - `outcome`: the checks of a run (queue checker, linearizability, invariants), the
//!   run hash and the trace file format;
//! - `runner` (madsim only): one (scenario, seed) run of the real broker on simulated
//!   disks, behind a faulty transport, under the scenario's workload and faults;
//! - `cli` (madsim only): `skald-sim run | replay | report`.

pub mod outcome;
pub mod trace;

#[cfg(madsim)]
pub mod cli;
#[cfg(madsim)]
pub mod runner;
