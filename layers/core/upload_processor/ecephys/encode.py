"""Encode one range of a binary into verified Zarr chunks (one Map iteration's work)."""

from __future__ import annotations

from pydantic import BaseModel

from upload_processor.ecephys.codec import EcephysOptions
from upload_processor.ecephys.lsb import LsbCorrection
from upload_processor.ecephys.recording import RecordingStream


class EncodedChunk(BaseModel):
    """One stored chunk and the checksum of the source bytes it holds."""

    key: str
    data: bytes
    sha256_source: str
    nbytes_source: int


def encode_range(
    raw: bytes,
    stream: RecordingStream,
    start_sample: int,
    options: EcephysOptions,
    correction: LsbCorrection | None = None,
) -> list[EncodedChunk]:
    """Encode `raw` (the source bytes from `start_sample`, whole chunks) and verify each chunk."""
    raise NotImplementedError


def verify_chunk(data: bytes, source: bytes, meta: dict) -> None:
    """Decode `data` and raise `EcephysVerificationError` unless it equals `source` byte for byte."""
    raise NotImplementedError
