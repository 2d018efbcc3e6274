"""kcat (librdkafka 2.0, the Debian package) against skald: produce and consume with
every codec, metadata listing, automatic topic creation, restart."""

import json
import subprocess

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from common import CODECS, PARTITIONS

RECORDS = 10_000
TIMEOUT_S = 120
CONSUMED = {}


def kcat(broker, *args, stdin=None):
    result = subprocess.run(
        ["kcat", "-b", broker.bootstrap, *args],
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, f"kcat {args} failed: {result.stderr.decode(errors='replace')}"
    return result.stdout


def lines(topic):
    # Keys repeat (so they pin partitions); values carry the sequence number.
    return [(f"key-{i % 97}", f"{topic}-value-{i:05}") for i in range(RECORDS)]


def consume_all(broker, topic):
    out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q")
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume_exactly(broker, codec):
    topic = f"kcat-{codec}"
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    client.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(
        timeout=TIMEOUT_S
    )
    sent = lines(topic)
    stdin = "".join(f"{k}\t{v}\n" for k, v in sent).encode()
    kcat(broker, "-P", "-t", topic, "-z", codec, "-K", "\t", "-H", "origin=kcat", "-H", f"codec={codec}", stdin=stdin)

    messages = consume_all(broker, topic)
    assert len(messages) == RECORDS, f"consumed {len(messages)} of {RECORDS}"
    order = {value: i for i, (_, value) in enumerate(sent)}
    key_of = dict((v, k) for k, v in sent)
    partition_of_key = {}
    last = {}
    for m in messages:
        value = m["payload"]
        assert value in order, f"unexpected value {value!r}"
        assert m["key"] == key_of[value]
        assert m["headers"] == ["origin", "kcat", "codec", codec]
        # One producer, one key: one partition, and stdin order within each partition.
        assert partition_of_key.setdefault(m["key"], m["partition"]) == m["partition"]
        assert order[value] > last.get(m["partition"], -1), "partition order broken"
        last[m["partition"]] = order[value]
        assert m["tstype"] == "create"
    assert len({m["payload"] for m in messages}) == RECORDS, "duplicates"
    assert len(last) > 1, "records should spread over several partitions"
    per_partition = {}
    for m in messages:
        per_partition.setdefault(m["partition"], []).append(m["offset"])
    for partition, offsets in per_partition.items():
        assert offsets == list(range(len(offsets))), f"partition {partition}: offsets not contiguous from 0"
    CONSUMED[topic] = messages


def test_metadata_lists_topics_and_the_broker(broker):
    meta = json.loads(kcat(broker, "-L", "-J"))
    assert [b["id"] for b in meta["brokers"]] == [1]
    names = {t["topic"] for t in meta["topics"]}
    assert "kcat-none" in names
    topic = next(t for t in meta["topics"] if t["topic"] == "kcat-none")
    assert len(topic["partitions"]) == PARTITIONS
    assert all(p["leader"] == 1 for p in topic["partitions"])


def test_auto_create_on_produce(broker):
    kcat(broker, "-P", "-t", "kcat-auto", stdin=b"one\ntwo\nthree\n")
    messages = consume_all(broker, "kcat-auto")
    assert [m["payload"] for m in messages] == ["one", "two", "three"]


def test_restart_reads_everything_again(broker):
    assert CONSUMED, "the produce tests must run first"
    broker.restart()
    for topic, before in sorted(CONSUMED.items()):
        after = consume_all(broker, topic)
        # kcat interleaves partitions in arrival order; compare per partition and offset.
        def by_position(messages):
            return sorted(messages, key=lambda m: (m["partition"], m["offset"]))

        assert by_position(after) == by_position(before), f"{topic}: records differ after restart"
