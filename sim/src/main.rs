//! The `skald-sim` binary; see `skald_sim::cli`. It only works in the simulation build.

#[cfg(madsim)]
fn main() {
    std::process::exit(skald_sim::cli::main());
}

#[cfg(not(madsim))]
fn main() {
    eprintln!(
        "skald-sim must be built with RUSTFLAGS=\"--cfg madsim\" (and its own target dir), e.g.\n  \
         RUSTFLAGS=\"--cfg madsim\" CARGO_TARGET_DIR=target/sim cargo run -p skald-sim -- run --scenario fault-scenarios/single-crash-loop-fsync.toml --seed 1"
    );
    std::process::exit(2);
}
