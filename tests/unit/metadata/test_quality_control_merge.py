"""Several quality_control*.json merge with the library's `+` (issue 12, point 8), as AIND's
GatherMetadataJob combines them (what `+` refuses would be `merge.failed`, as for instruments)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.aind_support import SAMPLE_ASSET, metadata_files, quality_control, sample_job
from upload_processor.metadata import assemble
from upload_processor_tools.cli import app
from upload_processor_tools.sample import build_session

ASSET = SAMPLE_ASSET
JOB = sample_job()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = build_session(tmp_path_factory.mktemp("qc") / "s", data_mb_per_modality=0)
    (folder / "quality_control_ecephys.json").write_bytes(quality_control("drift", "ecephys"))
    (folder / "quality_control_behavior.json").write_bytes(quality_control("frames", "behavior"))
    return folder


def test_several_quality_control_files_merge(session: Path) -> None:
    result = assemble(metadata_files(session), asset_name=ASSET, job=JOB)
    assert result.errors == []
    names = [m["name"] for m in result.core["quality_control"]["metrics"]]
    assert names == ["frames", "drift"]  # in sorted file order: behavior, then ecephys
    assert result.metadata is not None
    assert len(result.metadata["quality_control"]["metrics"]) == 2


def test_validate_accepts_them(session: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(session, tmp_path / "s"))
    run = CliRunner().invoke(app, ["validate", str(folder), "--offline", "--json"])
    assert run.exit_code == 0, run.output
