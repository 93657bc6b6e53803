"""GatherMetadata's bounded wait for the files upload_job.json lists: it ends when they are all
staged, fails naming what is missing when the wait runs out, and ends at the next poll once the
job is cancelled (issue 14, problem 7: a stopped execution does not kill its running Lambda)."""

from __future__ import annotations

from pathlib import Path

import pytest

from upload_processor.adapters.staging import LocalSession
from upload_processor.errors import FilesMissingError, JobCancelledError
from upload_processor.pipeline.gather import wait_for_files


def test_the_wait_ends_when_every_listed_file_is_staged(tmp_path: Path) -> None:
    (tmp_path / "a.dat").write_bytes(b"abc")
    wait_for_files(LocalSession(tmp_path), {"a.dat": 3}, wait_seconds=0)


def test_a_missing_file_fails_the_wait_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FilesMissingError, match=r"b\.dat \(missing\)"):
        wait_for_files(LocalSession(tmp_path), {"b.dat": 3}, wait_seconds=0)


def test_a_cancelled_job_ends_the_wait_at_the_next_poll(tmp_path: Path) -> None:
    asked: list[int] = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) >= 2  # cancelled between the first and the second poll

    with pytest.raises(JobCancelledError, match="cancelled while waiting for 1 listed file"):
        wait_for_files(
            LocalSession(tmp_path),
            {"b.dat": 3},
            wait_seconds=3600,
            poll_seconds=0.01,
            cancelled=cancelled,
        )
    assert len(asked) == 2


def test_files_all_staged_end_the_wait_even_for_a_cancelled_job(tmp_path: Path) -> None:
    """Nothing to wait for: the stage goes on (the next state sees the cancel)."""
    (tmp_path / "a.dat").write_bytes(b"abc")
    wait_for_files(LocalSession(tmp_path), {"a.dat": 3}, wait_seconds=0, cancelled=lambda: True)
