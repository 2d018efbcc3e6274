"""Real Kafka clients against a real `skald broker` process.

The broker binary comes from SKALD_BIN (run.sh builds it). One broker per test session,
on a free loopback port, with its data in a temporary directory; `broker.restart()` stops
it gracefully (SIGTERM) and starts it again on the same data and port. `start_broker`
starts a broker of the test's own with broker settings (`--set key=value`).
"""

import os
import signal
import socket
import subprocess
import time

import pytest

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Broker:
    def __init__(self, binary, data_dir, log_path, settings=None):
        self.binary = binary
        self.settings = dict(settings or {})
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.process = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "broker",
                "--listener",
                self.bootstrap,
                "--data-dir",
                str(self.data_dir),
            ]
            + [arg for key, value in self.settings.items() for arg in ("--set", f"{key}={value}")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited with {self.process.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"broker did not listen within {START_TIMEOUT_S} s; see {self.log_path}")

    def stop(self):
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise RuntimeError("broker ignored SIGTERM")
        self.process = None
        assert code == 0, f"broker exited with {code} on SIGTERM; see {self.log_path}"

    def restart(self):
        self.stop()
        self.start()

    def alive(self):
        return self.process is not None and self.process.poll() is None


def skald_bin():
    binary = os.environ.get("SKALD_BIN")
    if not binary:
        pytest.fail("SKALD_BIN is not set (run tests/clients/run.sh)")
    return binary


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    root = tmp_path_factory.mktemp("skald")
    instance = Broker(skald_bin(), root / "data", root / "broker.log")
    instance.start()
    yield instance
    alive = instance.alive()
    instance.stop()
    assert alive, "the broker died during the tests"
    # Logs written to a file carry no terminal colour codes.
    assert b"\x1b[" not in instance.log_path.read_bytes(), f"escape codes in {instance.log_path}"


@pytest.fixture
def start_broker(tmp_path_factory):
    """Starts brokers with the given settings; each is stopped (and must still be alive)
    at the end of the test."""
    started = []

    def start(settings):
        root = tmp_path_factory.mktemp("skald-own")
        instance = Broker(skald_bin(), root / "data", root / "broker.log", settings)
        instance.start()
        started.append(instance)
        return instance

    yield start
    dead = [b.log_path for b in started if not b.alive()]
    for instance in started:
        if instance.alive():
            instance.stop()
    assert not dead, f"a broker died during the test; see {dead}"
