"""Issue 15 end to end on the local cloud: ecephys recordings archived as lossless audio-codec
Zarr, read back by spikeinterface and by zarr alone, exactly.

Each session is the sample behavior + ecephys session with its ecephys folder replaced by a
real-shaped recording (`upload_processor_tools.sample_ecephys`), run through ingest, the state
machine (the Map routes the ecephys ranges to EcephysTransferFunction), and Finalize.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from e2e_support import ACQ, ASSET, JOB, ROOT, Staged, body, keys

from upload_processor_tools.local import LocalCloud
from upload_processor_tools.local.seam import RUNNER
from upload_processor_tools.sample import build_session
from upload_processor_tools.sample_ecephys import write_openephys, write_spikeglx

COMPRESSED = f"{ASSET}/ecephys/ecephys_compressed"
CLIPPED = f"{ASSET}/ecephys/ecephys_clipped"
CHANNELS = 16
SECONDS = 2.5  # three 1 s chunks, the last one short


def _session(
    tmp_path: Path, recording: str, *, tasks: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[Path, dict[str, Any]]:
    """The sample session with a `recording` ("openephys", "spikeglx", "bare") for ecephys,
    and an upload_job.json of job type ecephys (plus `tasks`)."""
    folder = build_session(tmp_path / "session", acq_datetime=ACQ, data_mb_per_modality=0.05)
    ecephys = folder / "ecephys"
    shutil.rmtree(ecephys)
    ecephys.mkdir()
    written: dict[str, Any] = {}
    if recording == "openephys":
        written = write_openephys(ecephys, SECONDS, CHANNELS, **kwargs)
    elif recording == "spikeglx":
        written = write_spikeglx(ecephys, SECONDS, CHANNELS, **kwargs)
    else:
        (ecephys / "continuous.dat").write_bytes(np.arange(6000, dtype="<i2").tobytes())
    job = json.loads((folder / JOB).read_text())
    job["job_type"] = "ecephys"
    if tasks:
        job["tasks"] = tasks
    (folder / JOB).write_text(json.dumps(job))
    return folder, written


def _streams(written: dict[str, Any]) -> dict[str, tuple[str, bytes, int]]:
    """stream name -> (the binary's path under ecephys/, its bytes, its channels), as the
    generator wrote it (names as the ecephys room gives them)."""
    samples = np.ascontiguousarray(written["samples"], dtype="<i2")
    if "oebin" in written:
        recording = written["oebin"].rsplit("/", 1)[0]  # Record Node 101/experiment1/recording1
        node, experiment, run = recording.split("/")
        name = f"{experiment}_{node}#{written['stream']}_{run}"
        return {name: (written["dat"], samples.tobytes(), samples.shape[1])}
    name = written["bin"].rsplit("/", 1)[1].removesuffix(".bin")
    return {name: (written["bin"], samples.tobytes(), samples.shape[1])}


def _download(cloud: LocalCloud, prefix: str, dest: Path) -> Path:
    """Every object under `prefix/` into `dest` (a Zarr store as a local folder)."""
    s3 = cloud.client("s3")
    for key in keys(cloud, cloud.archive_bucket, f"{prefix}/"):
        path = dest / key[len(prefix) + 1 :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=cloud.archive_bucket, Key=key)["Body"].read())
    return dest


def _report(cloud: LocalCloud, prefix: str) -> dict[str, Any]:
    return json.loads(body(cloud, cloud.staging_bucket, f"{prefix}/upload_report.json"))


def _manifest(cloud: LocalCloud) -> dict[str, Any]:
    return json.loads(body(cloud, cloud.archive_bucket, f"{ASSET}/manifest.json"))


@pytest.fixture
def cloud(quick_cloud: LocalCloud) -> Iterator[LocalCloud]:
    yield quick_cloud


@pytest.fixture
def ranged_cloud(no_metrics_warning: None) -> Iterator[LocalCloud]:
    """Ranges of one chunk (EcephysRangeMiB 1 < one 1 s chunk of 16 channels): every chunk
    its own Map iteration."""
    with LocalCloud(ROOT, parameter_overrides={"FilesWaitSeconds": 0, "EcephysRangeMiB": 1}) as c:
        yield c


@pytest.mark.parametrize("recording", ["openephys", "spikeglx"])
def test_a_recording_is_archived_as_a_zarr_spikeinterface_reads_exactly(
    cloud: LocalCloud, tmp_path: Path, recording: str
) -> None:
    import spikeinterface as si
    import zarr

    folder, written = _session(tmp_path, recording)
    staged = Staged(cloud, folder, "rig-1/ephys")
    record = staged.run()
    assert record["status"] == "COMPLETE", (record, staged.execution.get("output"))
    staged.assert_untouched()

    archived = keys(cloud, cloud.archive_bucket, f"{ASSET}/")
    manifest = _manifest(cloud)
    entries = {o["dest_key"]: o for o in manifest["objects"]}
    for name, (relative, samples, channels) in _streams(written).items():
        store = f"{COMPRESSED}/{name}.zarr"
        entry = entries[store]
        assert entry["action"] == "encode_ecephys" and entry["codec"] == "flac"
        assert entry["bytes_in"] == len(samples)
        assert entry["source_relative"] == f"ecephys/{relative}"
        assert entry["ratio"] == round(len(samples) / entry["bytes_out"], 3)
        assert entry["source_sha256"].startswith("tree-sha256:")
        assert "zarr" in entry["restore"]
        # the binary is not in the clipped folder: only its Zarr holds its samples
        assert not any(k.startswith(f"{CLIPPED}/{relative}") for k in archived)

        local = _download(cloud, store, tmp_path / f"{name}.zarr")
        source = np.frombuffer(samples, dtype="<i2").reshape(-1, channels)
        recording_ = si.read_zarr(local)
        assert recording_.get_num_channels() == channels
        assert np.array_equal(recording_.get_traces(), source)
        assert np.array_equal(zarr.open(str(local), mode="r")["traces_seg0"][:], source)
    # every other file of the recording is in the clipped folder, compressed as usual
    descriptions = [k for k in archived if k.startswith(CLIPPED)]
    assert any(k.endswith((".oebin.zst", ".meta.zst")) for k in descriptions), descriptions


@pytest.mark.parametrize(
    ("recording", "damage", "rule"),
    [
        ("openephys", "truncate", "ecephys.truncated_binary"),
        # twice the channels: whole frames still, half the samples sample_numbers.npy counts
        ("openephys", "oebin_channels", "ecephys.size_mismatch"),
        ("spikeglx", "meta_channels", "ecephys.channel_count"),
    ],
)
def test_a_damaged_recording_is_rejected_before_any_transfer(
    cloud: LocalCloud, tmp_path: Path, recording: str, damage: str, rule: str
) -> None:
    folder, written = _session(tmp_path, recording)
    ecephys = folder / "ecephys"
    ((relative, _, _),) = _streams(written).values()
    if damage == "truncate":
        path = ecephys / relative
        path.write_bytes(path.read_bytes()[:-3])  # an odd byte count: a cut-off sample
    elif damage == "oebin_channels":
        path = ecephys / written["oebin"]
        oebin = json.loads(path.read_text())
        stream = oebin["continuous"][0]
        stream["num_channels"] *= 2
        stream["channels"] += stream["channels"]
        path.write_text(json.dumps(oebin, indent=2))
    else:
        path = ecephys / written["meta"]
        total = CHANNELS + 1  # the neural channels and the sync channel
        text = path.read_text().replace(f"nSavedChans={total}", f"nSavedChans={total + 1}")
        path.write_text(text)
    staged = Staged(cloud, folder, "rig-1/bad")
    record = staged.run()
    assert record["status"] == "REJECTED", record
    report = _report(cloud, "rig-1/bad")
    found = [i for i in report["issues"] if i["rule"] == rule]
    assert found, report["issues"]
    for issue in found:  # each names the file and the field, in the message too
        assert issue["severity"] == "error" and issue["file"].startswith("ecephys/")
        assert issue["field"] and issue["file"] in issue["message"], issue
    # nothing written into the archive (no half-written Zarr), staging untouched
    assert keys(cloud, cloud.archive_bucket, f"{ASSET}/") == set()
    staged.assert_untouched()


def test_codec_zstd_keeps_todays_behaviour(cloud: LocalCloud, tmp_path: Path) -> None:
    tasks = {"modality_transformation_settings": {"ecephys": {"job_settings": {"codec": "zstd"}}}}
    folder, written = _session(tmp_path, "openephys", tasks=tasks)
    record = Staged(cloud, folder, "rig-1/zstd").run()
    assert record["status"] == "COMPLETE", record
    archived = keys(cloud, cloud.archive_bucket, f"{ASSET}/")
    assert not any(k.startswith((COMPRESSED, CLIPPED)) for k in archived)
    for relative, _, _ in _streams(written).values():
        assert f"{ASSET}/ecephys/{relative}.zst" in archived


def test_an_unknown_recording_falls_back_to_zstd_with_a_note(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    folder, _ = _session(tmp_path, "bare")
    record = Staged(cloud, folder, "rig-1/bare").run()
    assert record["status"] == "COMPLETE", record
    report = _report(cloud, "rig-1/bare")
    (note,) = [i for i in report["issues"] if i["rule"] == "ecephys.unknown_recording"]
    assert note["severity"] == "warning" and note["file"] == "ecephys/continuous.dat"
    assert "structure.oebin" in note["message"]
    assert f"{CLIPPED}/continuous.dat.zst" in keys(cloud, cloud.archive_bucket, f"{ASSET}/")


def test_keep_raw_also_archives_the_binary_zstd(cloud: LocalCloud, tmp_path: Path) -> None:
    tasks = {"modality_transformation_settings": {"ecephys": {"job_settings": {"keep_raw": True}}}}
    folder, written = _session(tmp_path, "spikeglx", tasks=tasks)
    record = Staged(cloud, folder, "rig-1/raw").run()
    assert record["status"] == "COMPLETE", record
    archived = keys(cloud, cloud.archive_bucket, f"{ASSET}/")
    for name, (relative, _, _) in _streams(written).items():
        assert f"{CLIPPED}/{relative}.zst" in archived
        assert f"{COMPRESSED}/{name}.zarr/.zattrs" in archived


def test_ranges_run_in_parallel_on_the_ecephys_function_with_one_lsb_correction(
    ranged_cloud: LocalCloud, tmp_path: Path
) -> None:
    """Data scaled x12 (as Open Ephys writes Neuropixels): each range detects the stream's
    correction on its first chunk, Finalize checks they agree and puts it in the `.zarray`;
    the traces read back exactly."""
    import spikeinterface as si

    folder, written = _session(tmp_path, "openephys", scale=12)
    before = len(RUNNER.invocations)
    record = Staged(ranged_cloud, folder, "rig-1/scaled").run()
    assert record["status"] == "COMPLETE", record
    ran = RUNNER.invocations[before:]
    # three ranges of one chunk each, on the function with the codec's layer
    assert ran.count(("EcephysTransferFunction", False)) == 3, ran
    assert ("EcephysTransferFunction", True) not in ran
    ((name, (_, samples, channels)),) = _streams(written).items()
    entry = next(o for o in _manifest(ranged_cloud)["objects"] if o["action"] == "encode_ecephys")
    assert entry["chunks"] == 3 and len(entry["range_sha256s"]) == 3
    assert entry["lsb_correction"] == {"lsb": 12, "offset": 0}
    store = f"{COMPRESSED}/{name}.zarr"
    local = _download(ranged_cloud, store, tmp_path / "scaled.zarr")
    source = np.frombuffer(samples, dtype="<i2").reshape(-1, channels)
    assert np.array_equal(si.read_zarr(local).get_traces(), source)


def test_the_same_session_again_is_a_noop_and_the_asset_is_untouched(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    """The manifest maps each stream and each clipped file back to its staged path
    (`source_relative`), so uploading the job again finds the asset identical."""
    folder, _ = _session(tmp_path, "openephys")
    staged = Staged(cloud, folder, "rig-1/again")
    assert staged.run()["status"] == "COMPLETE"
    before = {
        k: body(cloud, cloud.archive_bucket, k)
        for k in keys(cloud, cloud.archive_bucket, f"{ASSET}/")
    }
    record = staged.run()
    assert record["status"] == "COMPLETE" and "already holds this exact session" in record["note"]
    after = {
        k: body(cloud, cloud.archive_bucket, k)
        for k in keys(cloud, cloud.archive_bucket, f"{ASSET}/")
    }
    assert after == before
