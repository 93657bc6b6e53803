"""The ecephys options and the numcodecs codec they select.

numcodecs and the codec packages are imported inside the functions that need them: they ship in
the ecephys layer, not the core layer, and importing this module must not need them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from upload_processor.ecephys.lsb import LsbCorrection


class EcephysOptions(BaseModel):
    """`modality_transformation_settings.ecephys.job_settings`: how ecephys binaries are stored."""

    model_config = ConfigDict(extra="forbid")

    codec: Literal["flac", "wavpack", "zstd"] = "flac"
    level: int | None = Field(default=None, description="Codec level; None = the codec's default")
    chunk_duration_s: float = Field(default=1.0, gt=0, le=60)
    lsb_correction: Literal["auto", "off"] = "auto"
    keep_raw: bool = False


def compressor_for(options: EcephysOptions) -> Any:
    """The numcodecs compressor (a `numcodecs.abc.Codec`) for `options`."""
    raise NotImplementedError


def encode_chunk(
    samples: np.ndarray, options: EcephysOptions, correction: LsbCorrection | None
) -> bytes:
    """One Zarr chunk's stored bytes (filters then compressor) of `samples` (time x channels int16)."""
    raise NotImplementedError


def decode_chunk(data: bytes, meta: dict[str, Any]) -> np.ndarray:
    """The int16 samples (time x channels) of one stored chunk; `meta` is the array's `.zarray`."""
    raise NotImplementedError
