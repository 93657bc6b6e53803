"""Raw ecephys sessions as the rigs write them: an Open Ephys folder and a SpikeGLX pair.

For tests, the demo and the benchmarks: a few seconds of multi-channel int16 with spikes and
noise (`synthetic.ap_band`), described by a `structure.oebin` / `.meta` of the real shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_openephys(
    folder: Path, seconds: float, channels: int, sampling_rate: float = 30_000.0, scale: int = 1
) -> dict[str, Any]:
    """Write an Open Ephys binary recording under `folder`; returns what a test checks against
    (`oebin`: its path relative to `folder`, `streams`: name -> {`dat`, `samples` (bytes)})."""
    raise NotImplementedError


def write_spikeglx(
    folder: Path, seconds: float, channels: int, sampling_rate: float = 30_000.0, scale: int = 1
) -> dict[str, Any]:
    """Write a SpikeGLX `.ap.bin` + `.ap.meta` pair under `folder`; returns (`bin`, `meta`,
    `samples`)."""
    raise NotImplementedError
