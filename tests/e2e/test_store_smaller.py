"""Store the smaller (issue 14, problem 10), end to end on the local cloud: a file zstd does
not shrink lands as is under its plain name, the manifest says so, a re-run is a no-op, and a
job resuming a failed one keeps it."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from e2e_support import ACQ, ASSET, Staged, body, decompress, keys, versions

from upload_processor.errors import TransferError
from upload_processor.pipeline import gather
from upload_processor.pipeline.transfer import batch as transfer_batch
from upload_processor_tools.local import LocalCloud
from upload_processor_tools.sample import build_session


def _session(tmp: Path) -> tuple[Path, bytes]:
    session = build_session(tmp, acq_datetime=ACQ, data_mb_per_modality=0.05)
    noise = random.Random(5).randbytes(1_500_000)  # incompressible
    (session / "ecephys" / "aaa_noise.dat").write_bytes(noise)
    return session, noise


def _manifest(cloud: LocalCloud) -> dict[str, Any]:
    return json.loads(body(cloud, cloud.archive_bucket, f"{ASSET}/manifest.json"))


def test_an_incompressible_file_lands_as_is_and_a_rerun_is_a_no_op(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    cloud = quick_cloud
    session, noise = _session(tmp_path / "s")
    staged = Staged(cloud, session, "rig-7/noise")
    record = staged.run()
    assert record["status"] == "COMPLETE", record
    archive = cloud.archive_bucket

    plain = f"{ASSET}/ecephys/aaa_noise.dat"
    assert body(cloud, archive, plain) == noise  # the original bytes, nothing to decompress
    assert f"{plain}.zst" not in keys(cloud, archive, f"{ASSET}/")
    assert cloud.client("s3").list_multipart_uploads(Bucket=archive).get("Uploads", []) == []
    objects = {o["dest_key"]: o for o in _manifest(cloud)["objects"]}
    entry = objects[plain]
    assert entry["stored"] == "as_is" and entry["codec"] is None
    assert entry["planned_key"] == f"{plain}.zst"
    assert f"for {len(noise)} bytes" in entry["stored_reason"]
    assert entry["bytes_in"] == entry["bytes_out"] == len(noise)
    # every entry says how it is stored, and the reader's tooling follows it
    for key, obj in objects.items():
        assert obj["stored"] in ("zstd", "as_is"), key
        assert key.endswith(".zst") == (obj["stored"] == "zstd"), key
        data = body(cloud, archive, key)
        source = (session / key[len(ASSET) + 1 :]).with_suffix(
            "" if key.endswith(".zst") else Path(key).suffix
        )
        assert (decompress(data) if obj["stored"] == "zstd" else data) == source.read_bytes()
    staged.assert_untouched()

    before = versions(cloud, archive, f"{ASSET}/")
    again = staged.run()  # upload_job.json again: the archive already holds this session
    assert again["status"] == "COMPLETE" and again.get("note"), again
    assert versions(cloud, archive, f"{ASSET}/") == before


def test_a_job_resuming_a_failed_one_keeps_the_file_stored_as_is(
    quick_cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = quick_cloud
    session, noise = _session(tmp_path / "s")
    # one batch, in key order: aaa_noise.dat is stored before the injected fault
    monkeypatch.setattr(gather, "batches", lambda items: [[i.model_dump() for i in items]])
    real = transfer_batch.transfer
    broken = {"on": True}

    def flaky(s3: Any, item: Any, **kwargs: Any) -> Any:
        if broken["on"] and item.source_key.endswith("ecephys/continuous.dat"):
            raise TransferError("injected", source=item.source_key, dest=item.dest_key)
        return real(s3, item, **kwargs)

    monkeypatch.setattr(transfer_batch, "transfer", flaky)
    staged = Staged(cloud, session, "rig-7/noise-resume")
    failed = staged.run()
    assert failed["status"] == "FAILED", failed
    archive = cloud.archive_bucket
    plain = f"{ASSET}/ecephys/aaa_noise.dat"
    kept = versions(cloud, archive, plain)
    assert kept and body(cloud, archive, plain) == noise

    broken["on"] = False
    record = staged.run()  # a new job for the same session resumes the failed one's remains
    assert record["status"] == "COMPLETE", record
    assert versions(cloud, archive, plain) == kept  # kept, not copied again
    entry = next(o for o in _manifest(cloud)["objects"] if o["dest_key"] == plain)
    assert entry["stored"] == "as_is" and entry["planned_key"] == f"{plain}.zst"
    assert "earlier attempt" in entry["stored_reason"]
    assert f"{plain}.zst" not in keys(cloud, archive, f"{ASSET}/")
    staged.assert_untouched()
