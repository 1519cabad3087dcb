"""A run's home partition is the murmur2 partition every Kafka client but confluent-kafka's
default uses; records hashed otherwise are recognised as misrouted."""

from __future__ import annotations

import zlib

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from streams.routing import home_partition, misrouted


@given(st.uuids(), st.integers(min_value=1, max_value=64))
def test_the_home_partition_is_where_aiokafka_and_faust_put_the_key(run_id: object,
                                                                     n: int) -> None:
    key = str(run_id).encode()
    assert home_partition(key, n) == DefaultPartitioner()(key, list(range(n)), list(range(n)))


# Kafka's own vectors (clients UtilsTest.testMurmur2): the signed 32-bit murmur2 of each key.
JAVA_MURMUR2 = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
                b"a-little-bit-longer-string": -1486304829, b"abc": 479470107,
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971}


def test_the_home_partition_is_javas_to_positive_murmur2_modulo_the_count() -> None:
    for key, signed in JAVA_MURMUR2.items():
        for n in (1, 3, 4, 12):
            assert home_partition(key, n) == (signed & 0x7FFFFFFF) % n


def test_a_crc32_placed_record_is_misrouted_about_three_times_in_four() -> None:
    keys = [f"run-{i}".encode() for i in range(2000)]
    crc = [(zlib.crc32(k) & 0xFFFFFFFF) % 4 for k in keys]  # confluent-kafka's default
    wrong = [k for k, p in zip(keys, crc, strict=False) if misrouted(k, p, 4) is not None]
    assert 0.65 < len(wrong) / len(keys) < 0.85
    assert all(misrouted(k, home_partition(k, 4), 4) is None for k in keys)
    assert misrouted(None, 3, 4) is None and misrouted(b"x", 0, 1) is None
