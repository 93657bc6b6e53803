"""Neuropixels-like test data: int16 little-endian, 384 channels interleaved, 30 kHz, from
``upload_processor_tools.synthetic.ap_band`` (zstd -3 compresses it 2.74x, as real NP1 AP-band
data), and a reader that streams a repeated block without holding a whole file in memory."""

from __future__ import annotations

import io
import random

from upload_processor_tools.synthetic import ap_band

CHANNELS = 384
SAMPLE_RATE = 30_000
FRAME = 2 * CHANNELS  # bytes per time point
SPIKES_PER_SECOND = 1_000  # across the probe: a few hundred units firing at a few Hz


def neuropixels_like(n_bytes: int, seed: int = 0) -> bytes:
    """`n_bytes` of Neuropixels-like AP-band data (the last frame cut short if need be)."""
    if n_bytes <= 0:
        return b""
    n_samples = -(-n_bytes // FRAME)
    n_spikes = max(1, n_samples * SPIKES_PER_SECOND // SAMPLE_RATE)
    data = ap_band(n_samples, CHANNELS, n_spikes, random.Random(seed))
    del data[n_bytes:]
    return bytes(data)


class CyclingReader(io.RawIOBase):
    """A read-only stream of `size` bytes that repeats `block` over and over.

    Lets a benchmark feed a file far larger than it keeps in memory. A block longer than
    zstd's window (2 MiB at level 3) repeated is not visible to the compressor as repetition.
    """

    def __init__(self, block: bytes, size: int) -> None:
        if not block:
            raise ValueError("block must not be empty")
        self._block = memoryview(block)
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        remaining = self._size - self._pos
        if size is None or size < 0 or size > remaining:
            size = remaining
        out = bytearray()
        while len(out) < size:
            start = (self._pos + len(out)) % len(self._block)
            take = min(size - len(out), len(self._block) - start)
            out += self._block[start : start + take]
        self._pos += size
        return bytes(out)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
