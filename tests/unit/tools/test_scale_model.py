"""The scale model (benchmarks/scale.py) and its table in docs/scale.md agree; its request
count is checked against the local cloud by the 10,000-object e2e test."""

from __future__ import annotations

import math

from benchmarks import scale


def test_the_doc_holds_the_table_the_model_makes() -> None:
    text = scale.DOC.read_text()
    block = text.split(scale.BEGIN, 1)[1].split(scale.END, 1)[0].strip()
    assert block == scale.table(), "run: python -m benchmarks.scale --write"


def test_requests_grow_by_one_per_small_file_and_three_per_batch() -> None:
    base = scale.s3_requests(scale.Job("a", compressed=1000, copied=1000, file_bytes=1000))
    more = scale.s3_requests(scale.Job("b", compressed=1100, copied=1000, file_bytes=1000))
    # 100 more compressed files: one GET and one PUT each, one more batch (2 GETs, 1 PUT)
    assert more["GetObject"] - base["GetObject"] == 100 + 2
    assert more["PutObject"] - base["PutObject"] == 100 + 1
    assert more["CopyObject"] == base["CopyObject"]
    assert "HeadObject" in base and base["HeadObject"] == scale.FIXED["HeadObject"] + 7


def test_a_terabyte_is_one_part_per_range_and_no_head_per_range() -> None:
    job = scale.Job("tb", chunked_bytes=(10**12,))
    assert job.ranges == (math.ceil(10**12 / 2**30),)
    requests = scale.s3_requests(job)
    assert requests["UploadPart"] == job.ranges[0] == job.batches
    assert requests["HeadObject"] == scale.FIXED["HeadObject"] + 7 + 1
    estimate = scale.estimate(job, map_concurrency=200)
    assert estimate["lambda_concurrency"] == 200
    assert estimate["asset_write_share"] < 0.01
