"""GatherMetadata makes the transfer plan once (issue 17): `gather_session` builds it with the
staging prefix, checks it for archive-key collisions and hands it on in `Gathered.plan`, which
the stage writes as it is."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from upload_processor.adapters.staging import LocalSession
from upload_processor.domain.upload_job import JOB_FILENAME, parse_upload_job
from upload_processor.pipeline import gather
from upload_processor_tools.sample import build_session

ACQ = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))


def _gathered(folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    calls: list[str] = []
    real = gather.build_plan

    def counted(prefix: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(prefix)
        return real(prefix, *args, **kwargs)

    monkeypatch.setattr(gather, "build_plan", counted)
    job, notes = parse_upload_job((folder / JOB_FILENAME).read_bytes())
    gathered = gather.gather_session(
        LocalSession(folder),
        job.model_dump(mode="json"),
        job_notes=[n.model_dump(mode="json") for n in notes],
        prefix="rig-7/session-1",
    )
    return gathered, calls


def test_the_plan_is_built_once_with_the_staging_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.01)
    gathered, calls = _gathered(folder, monkeypatch)
    assert calls == ["rig-7/session-1"]
    assert gathered.report.status == "valid", gathered.report.summary()
    assert sorted(i.source_key for i in gathered.plan) == sorted(
        f"rig-7/session-1/{e.relative}" for e in gathered.data
    )
    assert all(i.dest_key.startswith(f"{gathered.asset_name}/") for i in gathered.plan)


def test_the_one_plan_still_finds_archive_key_collisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = build_session(tmp_path / "s", acq_datetime=ACQ, data_mb_per_modality=0.01)
    # raw.dat is compressed to raw.dat.zst: a staged raw.dat.zst beside it collides
    (folder / "behavior" / "raw.dat").write_bytes(b"x" * 4096)
    (folder / "behavior" / "raw.dat.zst").write_bytes(b"y" * 4096)
    gathered, calls = _gathered(folder, monkeypatch)
    assert len(calls) == 1
    (issue,) = [i for i in gathered.report.issues if i.rule == "session.archive_key_collision"]
    # named as the user staged it, relative to the session (not with the staging prefix)
    assert issue.file in ("behavior/raw.dat", "behavior/raw.dat.zst"), issue
    assert "rig-7" not in issue.message
