"""confluent-kafka (librdkafka) against skald: every codec, admin APIs, restart."""

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from common import CODECS, PARTITIONS, check_exact, records

TIMEOUT_S = 60
PRODUCED = {}


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def wait_all(futures):
    return {key: future.result(timeout=TIMEOUT_S) for key, future in futures.items()}


def create_topic(broker, name, partitions=PARTITIONS, config=None):
    client = admin(broker)
    futures = client.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})]
    )
    wait_all(futures)


def produce(broker, topic, codec, rows):
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "compression.type": codec,
            "linger.ms": 5,
            "acks": "all",
            # librdkafka's idempotent producer: InitProducerId, then sequenced batches.
            "enable.idempotence": True,
        }
    )
    produced = {}
    errors = []

    # Delivery reports carry the value (not the headers); values are unique per row.
    by_value = {row["value"]: row for row in rows}

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
            return
        produced[(msg.partition(), msg.offset())] = by_value[msg.value()]

    for row in rows:
        while True:
            try:
                producer.produce(
                    topic,
                    key=row["key"],
                    value=row["value"],
                    headers=row["headers"],
                    timestamp=row["timestamp"],
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(TIMEOUT_S)
    assert remaining == 0, f"{remaining} records undelivered"
    assert not errors, f"delivery errors: {errors[:5]}"
    assert len(produced) == len(rows)
    return produced


def consume(broker, topic, expected_count, partitions=PARTITIONS):
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"reader-{topic}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    consumed = {}
    count = 0
    deadline = time.monotonic() + TIMEOUT_S
    while count < expected_count and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=1000, timeout=1.0):
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(msg.error())
            headers = [(k, v if v is not None else b"") for k, v in (msg.headers() or [])]
            consumed.setdefault(msg.partition(), []).append(
                (
                    msg.offset(),
                    {
                        "key": msg.key(),
                        "value": msg.value(),
                        "headers": headers,
                        "timestamp": msg.timestamp()[1],
                    },
                )
            )
            count += 1
    # Anything beyond what was produced would show up now.
    for msg in consumer.consume(num_messages=1000, timeout=0.5):
        if not msg.error():
            consumed.setdefault(msg.partition(), []).append((msg.offset(), {}))
    consumer.close()
    return consumed


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume_exactly(broker, codec):
    topic = f"confluent-{codec}"
    create_topic(broker, topic)
    rows = records(topic)
    produced = produce(broker, topic, codec, rows)
    PRODUCED[topic] = produced
    check_exact(produced, consume(broker, topic, len(rows)))


def test_admin_create_describe_alter_delete(broker):
    client = admin(broker)
    topic = "confluent-admin"
    wait_all(client.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1, config={"retention.ms": "3600000"})]))

    # Creating it again is TOPIC_ALREADY_EXISTS.
    with pytest.raises(KafkaException) as already:
        wait_all(client.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]))
    assert already.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    # validate_only creates nothing.
    wait_all(client.create_topics([NewTopic("confluent-never", num_partitions=1, replication_factor=1)], validate_only=True))
    assert "confluent-never" not in client.list_topics(timeout=TIMEOUT_S).topics

    metadata = client.list_topics(timeout=TIMEOUT_S)
    assert len(metadata.topics[topic].partitions) == 2

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = wait_all(client.describe_configs([resource]))[resource]
    assert configs["retention.ms"].value == "3600000"

    # Incremental alter: set one key, then read it back.
    change = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)],
    )
    wait_all(client.incremental_alter_configs([change]))
    configs = wait_all(client.describe_configs([resource]))[resource]
    assert configs["retention.ms"].value == "7200000"

    # An unknown key is rejected, not ignored.
    bad = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)],
    )
    with pytest.raises(KafkaException):
        wait_all(client.incremental_alter_configs([bad]))

    wait_all(client.create_partitions([NewPartitions(topic, 5)]))
    deadline = time.monotonic() + TIMEOUT_S
    while len(client.list_topics(timeout=TIMEOUT_S).topics[topic].partitions) != 5:
        assert time.monotonic() < deadline, "partitions did not grow to 5"
        time.sleep(0.2)

    wait_all(client.delete_topics([topic]))
    deadline = time.monotonic() + TIMEOUT_S
    while topic in client.list_topics(timeout=TIMEOUT_S).topics:
        assert time.monotonic() < deadline, "topic still listed after delete"
        time.sleep(0.2)


def test_restart_reads_everything_again(broker):
    assert PRODUCED, "the produce tests must run first"
    broker.restart()
    for topic, produced in sorted(PRODUCED.items()):
        check_exact(produced, consume(broker, topic, len(produced)))
