"""`make demo` (`upload-processor local demo`): the README's first command keeps working."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_archives_one_session_and_rejects_the_other(tmp_path: Path) -> None:
    """Run as a user runs it (its own process, the console script's module), small data."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from upload_processor_tools.cli import app; app()",
            "local",
            "demo",
            "--data-mb",
            "0.5",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "80"},
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = " ".join(out.stdout.split())
    assert '"status": "COMPLETE"' in text  # the job record printed
    assert "job status: REJECTED" in text
    assert "Upload rejected:" in text and "subject_id" in text
    assert "OK: one archived asset, one rejection with its reasons" in text
    # after the archive: the catalog record and the two events a subscriber's rule received
    assert "Catalog record" in text and "metadata.nd.json" in text
    assert "received 'Upload Asset Archived'" in text and '"registration": "OK"' in text
    assert "received 'Upload Job Rejected'" in text
    # at 80 columns every URI is whole on its line; the workflow's status does not read as the job's
    lines = [line.strip() for line in out.stdout.splitlines()]
    assert "s3://upload-local-staging-123456789012/rig-7/750101_2025-06-12_15-03-00/" in lines
    assert "s3://upload-local-archive-123456789012/750101_2025-06-12_15-03-00/" in lines
    assert "execution SUCCEEDED; the job's status follows" in text
