"""kafka-python (pure Python protocol implementation) against skald: every codec,
admin APIs, restart."""

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from common import CODECS, PARTITIONS, check_exact, records

TIMEOUT_S = 60
PRODUCED = {}


def admin(broker):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_S * 1000)


def produce(broker, topic, codec, rows):
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        compression_type=None if codec == "none" else codec,
        acks="all",
        linger_ms=5,
        # kafka-python 3's default: the idempotent producer (InitProducerId, sequences).
    )
    futures = []
    for row in rows:
        futures.append(
            (
                row,
                producer.send(
                    topic,
                    key=row["key"],
                    value=row["value"],
                    headers=row["headers"],
                    timestamp_ms=row["timestamp"],
                ),
            )
        )
    producer.flush(timeout=TIMEOUT_S)
    produced = {}
    for row, future in futures:
        metadata = future.get(timeout=TIMEOUT_S)
        produced[(metadata.partition, metadata.offset)] = row
    producer.close()
    assert len(produced) == len(rows)
    return produced


def consume(broker, topic, expected_count, partitions=PARTITIONS):
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)
    consumed = {}
    count = 0
    deadline = time.monotonic() + TIMEOUT_S
    while count < expected_count and time.monotonic() < deadline:
        for tp, batch in consumer.poll(timeout_ms=1000, max_records=2000).items():
            for msg in batch:
                consumed.setdefault(tp.partition, []).append(
                    (
                        msg.offset,
                        {
                            "key": msg.key,
                            "value": msg.value,
                            "headers": [(k, v) for k, v in msg.headers],
                            "timestamp": msg.timestamp,
                        },
                    )
                )
                count += 1
    for tp, batch in consumer.poll(timeout_ms=500).items():
        for msg in batch:
            consumed.setdefault(tp.partition, []).append((msg.offset, {}))
    consumer.close()
    return consumed


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume_exactly(broker, codec):
    topic = f"kafka-python-{codec}"
    admin(broker).create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}})
    rows = records(topic)
    produced = produce(broker, topic, codec, rows)
    PRODUCED[topic] = produced
    check_exact(produced, consume(broker, topic, len(rows)))


def topic_config(client, topic):
    described = client.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
    )
    return {key: entry["value"] for key, entry in described["topic"][topic].items()}


def test_admin_create_describe_alter_delete(broker):
    client = admin(broker)
    topic = "kafka-python-admin"
    client.create_topics(
        {topic: {"num_partitions": 2, "replication_factor": 1, "configs": {"retention.ms": "3600000"}}}
    )
    with pytest.raises(TopicAlreadyExistsError):
        client.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})

    client.create_topics({"kafka-python-never": {"num_partitions": 1, "replication_factor": 1}}, validate_only=True)
    assert "kafka-python-never" not in client.list_topics()

    described = {t["name"]: t for t in client.describe_topics([topic])}
    assert len(described[topic]["partitions"]) == 2

    assert topic_config(client, topic)["retention.ms"] == "3600000"
    client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "7200000"})])
    assert topic_config(client, topic)["retention.ms"] == "7200000"

    # An unknown key must be rejected by the broker (INVALID_CONFIG, 40), not ignored.
    result = client.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, {"no.such.config": "1"})],
        raise_on_unknown=False,
    )
    assert "Error 40" in str(result["topic"][topic]), result
    assert "no.such.config" not in topic_config(client, topic)

    client.create_partitions({topic: 5})
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        described = {t["name"]: t for t in client.describe_topics([topic])}
        if len(described[topic]["partitions"]) == 5:
            break
        assert time.monotonic() < deadline, "partitions did not grow to 5"
        time.sleep(0.2)

    client.delete_topics([topic])
    deadline = time.monotonic() + TIMEOUT_S
    while topic in client.list_topics():
        assert time.monotonic() < deadline, "topic still listed after delete"
        time.sleep(0.2)
    client.close()


def test_idempotent_producer_ids_are_unique_across_restarts(broker):
    """Every producer gets a fresh id (never reused after a restart, as skald reserves
    id blocks in its metadata log), and its batches carry it with sequences from 0."""
    topic = "kp-idempotent"
    ids = []
    for round in range(3):
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
        for i in range(200):
            producer.send(topic, key=b"k", value=f"{round}-{i}".encode(), partition=0)
        producer.flush(timeout=TIMEOUT_S)
        ids.append(producer._transaction_manager.producer_id_and_epoch.producer_id)
        producer.close()
        if round == 1:
            broker.restart()
    assert all(i >= 0 for i in ids) and len(set(ids)) == 3, ids
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    consumer.assign([TopicPartition(topic, 0)])
    values = [m.value.decode() for m in consumer]
    consumer.close()
    assert values == [f"{r}-{i}" for r in range(3) for i in range(200)]


def test_restart_reads_everything_again(broker):
    assert PRODUCED, "the produce tests must run first"
    broker.restart()
    for topic, produced in sorted(PRODUCED.items()):
        check_exact(produced, consume(broker, topic, len(produced)))
