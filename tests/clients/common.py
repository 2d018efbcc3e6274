"""Shared record generation and comparison for the client tests."""

import random

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
RECORDS = 10_000
PARTITIONS = 4
# A fixed base so timestamps are exact and recognisably ours (2026-01-01T00:00:00Z).
TIMESTAMP_BASE_MS = 1_767_225_600_000


def records(tag, count=RECORDS):
    """`count` keyed records with headers and explicit timestamps, deterministic per tag."""
    rng = random.Random(tag)
    out = []
    for i in range(count):
        key = f"key-{rng.randrange(500)}".encode()
        value = f"{tag}-value-{i}-".encode() + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        headers = [("seq", str(i).encode()), ("tag", tag.encode())]
        if i % 7 == 0:
            headers.append(("empty", b""))
        out.append({"key": key, "value": value, "headers": headers, "timestamp": TIMESTAMP_BASE_MS + i})
    return out


def check_exact(produced, consumed):
    """produced: {(partition, offset): record}; consumed: per-partition lists of
    (offset, record) in the order the consumer returned them. Every produced record must
    come back once, in offset order per partition, with identical key, value, headers and
    timestamp; nothing else may come back."""
    seen = 0
    for partition, rows in consumed.items():
        offsets = [offset for offset, _ in rows]
        assert offsets == sorted(offsets), f"partition {partition}: offsets out of order"
        assert len(set(offsets)) == len(offsets), f"partition {partition}: duplicate offsets"
        for offset, record in rows:
            expected = produced.get((partition, offset))
            assert expected is not None, f"unexpected record at {partition}/{offset}"
            for field in ("key", "value", "headers", "timestamp"):
                assert record[field] == expected[field], (
                    f"{partition}/{offset} {field}: got {record[field]!r}, want {expected[field]!r}"
                )
            seen += 1
    assert seen == len(produced), f"consumed {seen} of {len(produced)} produced records"
    used = {partition for partition, _ in produced}
    assert len(used) > 1, "records should spread over several partitions"
