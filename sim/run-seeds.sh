#!/usr/bin/env bash
# Runs the simulation tests seed by seed, one process per seed (madsim issue #174), each
# with MADSIM_TEST_CHECK_DETERMINISM where the test uses #[madsim::test]; a failing seed is
# printed with the command that replays it. SEEDS (default "1..20") picks the seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg madsim"
export CARGO_TARGET_DIR=target/sim
SEEDS="${SEEDS:-1..20}"
first="${SEEDS%%..*}"
last="${SEEDS##*..}"

cargo test -p skald-sim --locked --no-run
# Unit tests of the sim crate and madsim-mode tests of the library, once.
cargo test -p skald-sim --locked --lib
failed=0
ran=0
for seed in $(seq "$first" "$last"); do
    if ! MADSIM_TEST_SEED="$seed" cargo test -q -p skald-sim --locked --test smoke >/tmp/skald-sim-seed.log 2>&1; then
        echo "FAILED seed $seed; replay with:"
        echo "  RUSTFLAGS=\"--cfg madsim\" CARGO_TARGET_DIR=target/sim MADSIM_TEST_SEED=$seed cargo test -p skald-sim --test smoke"
        tail -30 /tmp/skald-sim-seed.log
        failed=$((failed + 1))
    fi
    ran=$((ran + 1))
done
echo "$((ran - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
