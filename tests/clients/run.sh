#!/usr/bin/env bash
# Real Kafka clients against a real `skald broker` process: kcat (Debian), confluent-kafka
# and kafka-python (PyPI, in a venv in the cargo target dir: $CARGO_TARGET_DIR, else
# target/). Installs what is missing; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
VENV="$TARGET/client-venv"

if ! command -v kcat >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y -q kcat >/dev/null 2>&1 || {
        $SUDO apt-get update -q >/dev/null
        $SUDO apt-get install -y -q kcat >/dev/null
    }
fi
if [ ! -x "$VENV/bin/pytest" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/clients/requirements.txt
fi

cargo build --locked --bin skald
export SKALD_BIN="$TARGET/debug/skald"
cd tests/clients
exec "$VENV/bin/pytest" -q -p no:cacheprovider -W ignore::DeprecationWarning "$@" test_confluent_kafka.py test_kafka_python.py test_kcat.py test_broker_settings.py
