"""The demo prints the rejection as the scientist reads it: wrapped at spaces, and a long S3
URI never cut in two (issue 14, problem 11: at 80 columns rich split it mid-word)."""

from __future__ import annotations

import io

from rich.console import Console

from upload_processor_tools.local.demo import _print_rejection, _wrapped

URI = "s3://upload-local-staging-123456789012/rig-7/750102_2025-06-13_15-03-00/upload_report.json"


def test_a_uri_longer_than_the_line_stays_whole_on_its_own_line() -> None:
    text = f"Upload rejected. The full report is at {URI}.\n  - indented detail " + "word " * 30
    lines = _wrapped(text, 78, indent="  ")
    assert f"  {URI}." in lines
    assert all(len(line) <= 78 for line in lines if URI not in line)
    assert lines[0].startswith("  Upload rejected.")
    assert all(line.startswith("    ") for line in lines[3:])  # the indented item keeps its indent


def test_printed_at_80_columns_the_rejection_keeps_every_uri_whole() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, color_system=None)
    message = {
        "Subject": "Upload rejected: 750102_2025-06-13_15-03-00",
        "Message": (
            "Your upload was rejected: 1 error.\n\nYour staged data is untouched at "
            f"{URI.rsplit('/', 1)[0]}/.\nThe full report is at {URI}.\n"
            "--- details (JSON) ---\n{}"
        ),
    }
    _print_rejection(console, message)
    lines = out.getvalue().splitlines()
    assert any(URI in line for line in lines), lines
    assert any(line.strip() == f"{URI.rsplit('/', 1)[0]}/." for line in lines), lines
    assert "details (JSON)" not in out.getvalue()
