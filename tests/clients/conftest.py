"""Real Kafka clients against a real `skald broker` process.

The broker binary comes from SKALD_BIN (run.sh builds it). One broker per test session,
on a free loopback port, with its data in a temporary directory; `broker.restart()` stops
it gracefully (SIGTERM) and starts it again on the same data and port.
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
    def __init__(self, binary, data_dir, log_path):
        self.binary = binary
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
            ],
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


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    binary = os.environ.get("SKALD_BIN")
    if not binary:
        pytest.fail("SKALD_BIN is not set (run tests/clients/run.sh)")
    root = tmp_path_factory.mktemp("skald")
    instance = Broker(binary, root / "data", root / "broker.log")
    instance.start()
    yield instance
    alive = instance.alive()
    instance.stop()
    assert alive, "the broker died during the tests"
