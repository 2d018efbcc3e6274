#!/usr/bin/env bash
# Runs every simulation test binary of skald-sim once per seed, one process per seed and
# binary (madsim issue #174: seeds in one process share static state). Each test checks
# its own determinism (same seed, same trace hash; madsim's check_determinism). A failing
# seed is printed with the command that replays it. SEEDS (default "1..200") picks them.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg madsim"
export CARGO_TARGET_DIR=target/sim
SEEDS="${SEEDS:-1..200}"
first="${SEEDS%%..*}"
last="${SEEDS##*..}"

# Build once; collect the integration-test executables.
build_log=$(mktemp)
cargo test -p skald-sim --locked --no-run 2>&1 | tee "$build_log" | grep -v "^ *Compiling" || true
mapfile -t binaries < <(sed -n 's/^ *Executable tests\/\([a-z_]*\)\.rs (\(.*\))$/\1 \2/p' "$build_log")
rm -f "$build_log"
if [ "${#binaries[@]}" -eq 0 ]; then
    echo "no simulation test binaries found" >&2
    exit 1
fi
# The crate's unit tests (no seed).
cargo test -q -p skald-sim --locked --lib

failed=0
ran=0
start=$(date +%s)
for seed in $(seq "$first" "$last"); do
    for entry in "${binaries[@]}"; do
        name="${entry%% *}"
        binary="${entry#* }"
        if ! MADSIM_TEST_SEED="$seed" "$binary" -q >/tmp/skald-sim-seed.log 2>&1; then
            echo "FAILED seed $seed in $name; replay with:"
            echo "  RUSTFLAGS=\"--cfg madsim\" CARGO_TARGET_DIR=target/sim MADSIM_TEST_SEED=$seed cargo test -p skald-sim --test $name"
            grep -E "panicked|assert" /tmp/skald-sim-seed.log | head -5
            failed=$((failed + 1))
        fi
        ran=$((ran + 1))
    done
done
elapsed=$(( $(date +%s) - start ))
echo "simulation: $ran seed runs ($((last - first + 1)) seeds x ${#binaries[@]} binaries) in ${elapsed}s"
echo "$((ran - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
