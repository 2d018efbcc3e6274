"""Broker settings and request limits seen through real clients: `num.partitions` and
`auto.create.topics.enable` (each on a broker of its own), Fetch byte limits
(`fetch.max.bytes`, `max.partition.fetch.bytes`), and DescribeLogDirs."""

import os
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaTimeoutError

TIMEOUT_S = 60


def partition_count(bootstrap, topic):
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=TIMEOUT_S)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return None
    return len(found.partitions)


def test_auto_creation_uses_num_partitions(start_broker):
    broker = start_broker({"num.partitions": "3", "auto.create.topics.enable": "true"})
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 20_000})
    delivered = []
    producer.produce("auto-three", b"v", on_delivery=lambda err, msg: delivered.append((err, msg)))
    producer.flush(TIMEOUT_S)
    assert len(delivered) == 1 and delivered[0][0] is None, delivered
    assert partition_count(broker.bootstrap, "auto-three") == 3


def test_no_auto_creation_when_disabled(start_broker):
    broker = start_broker({"auto.create.topics.enable": "false"})
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        max_block_ms=3000,
    )
    with pytest.raises(KafkaTimeoutError):
        producer.send("never-created", b"v").get(timeout=TIMEOUT_S)
    producer.close()
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    assert "never-created" not in client.list_topics()
    client.close()


def produce_sized(bootstrap, topic, sizes):
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        batch_size=4096,
        linger_ms=5,
    )
    futures = [producer.send(topic, bytes([i % 251]) * size, partition=0) for i, size in enumerate(sizes)]
    producer.flush(timeout=TIMEOUT_S)
    for future in futures:
        future.get(timeout=TIMEOUT_S)
    producer.close()


def consume_with_limits(bootstrap, topic, expected, fetch_max_bytes, partition_max_bytes):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_bytes=fetch_max_bytes,
        max_partition_fetch_bytes=partition_max_bytes,
    )
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    values = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(values) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            values.extend(msg.value for msg in batch)
    metrics = consumer.metrics()["consumer-fetch-manager-metrics"]
    consumer.close()
    return values, metrics


def test_fetch_byte_limits_bound_responses_and_still_deliver_everything(broker):
    KafkaAdminClient(bootstrap_servers=broker.bootstrap).create_topics(
        {"fetch-limits": {"num_partitions": 1, "replication_factor": 1}}
    )
    sizes = [1000] * 300
    produce_sized(broker.bootstrap, "fetch-limits", sizes)
    values, metrics = consume_with_limits(broker.bootstrap, "fetch-limits", len(sizes), 10_000, 10_000)
    assert [len(v) for v in values] == sizes
    assert [v[0] for v in values] == [i % 251 for i in range(len(sizes))]
    # Batches are ~4 KB, so every response stays within the 10 000 byte limits.
    assert 0 < metrics["fetch-size-max"] <= 10_000, metrics

    # A record larger than both limits is still returned (alone), as Kafka does, so a
    # consumer never gets stuck.
    KafkaAdminClient(bootstrap_servers=broker.bootstrap).create_topics(
        {"fetch-big": {"num_partitions": 1, "replication_factor": 1}}
    )
    produce_sized(broker.bootstrap, "fetch-big", [50_000, 10, 50_000])
    values, _ = consume_with_limits(broker.bootstrap, "fetch-big", 3, 1024, 1024)
    assert [len(v) for v in values] == [50_000, 10, 50_000]


def test_describe_log_dirs(broker):
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    client.create_topics({"log-dirs": {"num_partitions": 2, "replication_factor": 1}})
    produce_sized(broker.bootstrap, "log-dirs", [100] * 10)
    described = client.describe_log_dirs({"log-dirs": [0, 1]})
    client.close()
    assert len(described) == 1, described
    dirs = described[0]["log_dirs"]
    assert len(dirs) == 1, dirs
    log_dir = dirs[0]
    assert log_dir["error_code"] == 0
    assert log_dir["log_dir"] == os.path.realpath(broker.data_dir)
    (topic,) = log_dir["topics"]
    assert topic["name"] == "log-dirs"
    sizes = {p["partition_index"]: p["partition_size"] for p in topic["partitions"]}
    assert sizes[0] > 1000 and sizes[1] == 0, sizes


def test_topic_configs_through_confluent_kafka(broker):
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import ConfigResource, NewTopic

    client = AdminClient({"bootstrap.servers": broker.bootstrap})

    def create(name, config):
        futures = client.create_topics([NewTopic(name, num_partitions=1, replication_factor=1, config=config)])
        return futures[name].result(timeout=TIMEOUT_S)

    create("configs-ok", {"cleanup.policy": "delete", "min.insync.replicas": "1", "compression.type": "producer"})
    for config, why in [
        ({"cleanup.policy": "compact"}, "log compaction is not supported yet"),
        ({"compression.type": "zstd"}, "recompression"),
        ({"log.retention.minutes": "5"}, "Unknown topic config name"),
    ]:
        with pytest.raises(KafkaException) as refused:
            create("configs-bad", config)
        error = refused.value.args[0]
        assert error.code() == KafkaError.INVALID_CONFIG, error
        assert why in error.str(), error

    resource = ConfigResource(ConfigResource.Type.TOPIC, "configs-ok")
    configs = client.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
    assert configs["cleanup.policy"].value == "delete"
    assert not configs["cleanup.policy"].is_default
    assert configs["unclean.leader.election.enable"].value == "false"
    assert configs["unclean.leader.election.enable"].is_default
    assert not configs["segment.bytes"].is_read_only
