"""Run artifacts as gzip JSON Lines: what goes in comes out, in order, across write batches."""

from __future__ import annotations

import gzip

import pytest

from tagpatch.inventory import LINES_PER_WRITE, decode_jsonl_gz, encode_jsonl_gz

BATCH_EDGES = [0, 1, LINES_PER_WRITE - 1, LINES_PER_WRITE, LINES_PER_WRITE + 1, 2 * LINES_PER_WRITE]


@pytest.mark.parametrize("count", BATCH_EDGES)
def test_records_round_trip_in_order_across_write_batches(count: int) -> None:
    records = [{"instance_id": f"i-{index:017x}", "tags": {"Name": f"web-{index}"}} for index in range(count)]

    body = encode_jsonl_gz(records)

    assert list(decode_jsonl_gz(body)) == records
    assert gzip.decompress(body).count(b"\n") == count  # one line per record, each ended


def test_the_same_records_give_the_same_bytes() -> None:
    records = [{"b": 1, "a": [2, 3]}, {"unicode": "é"}]

    assert encode_jsonl_gz(records) == encode_jsonl_gz(list(records))
    assert gzip.decompress(encode_jsonl_gz(records)) == b'{"a":[2,3],"b":1}\n{"unicode":"\\u00e9"}\n'
