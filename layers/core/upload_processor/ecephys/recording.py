"""One continuous stream of a raw ecephys recording, parsed from its own description.

Open Ephys writes `structure.oebin` (JSON) beside `continuous/<stream>/continuous.dat`; SpikeGLX
writes a `.meta` (key=value) beside each `.bin`. Both binaries are interleaved int16
(time x channels). The parsers return the stream and the report entries that must reject the
session before any byte is transferred (a truncated binary, a description that disagrees with
the file), so a half-written Zarr can never happen.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from upload_processor.domain.report import Issue


class RecordingStream(BaseModel):
    """Everything needed to encode one binary and describe it to spikeinterface."""

    name: str = Field(description="Stream name; the store is `<name>.zarr`")
    source_key: str = Field(description="Path of the binary relative to the session folder")
    format: Literal["openephys", "spikeglx"]
    num_channels: int
    sampling_rate: float
    dtype: Literal["int16"] = "int16"
    channel_ids: list[str]
    gains_uV: list[float]
    offsets_uV: list[float]
    num_samples: int
    byte_size: int
    locations: list[list[float]] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


def streams_from_oebin(
    oebin_text: str, oebin_path: str, sizes: dict[str, int]
) -> tuple[list[RecordingStream], list[Issue]]:
    """The continuous streams an Open Ephys `structure.oebin` describes, checked against the
    staged files' sizes (`sizes`: path relative to the session -> bytes)."""
    raise NotImplementedError


def stream_from_spikeglx_meta(
    meta_text: str, bin_path: str, size: int
) -> tuple[RecordingStream | None, list[Issue]]:
    """The stream a SpikeGLX `.meta` describes, checked against its `.bin` of `size` bytes."""
    raise NotImplementedError
