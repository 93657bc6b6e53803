"""Neuropixels-like test data: int16 little-endian, 384 channels interleaved, 30 kHz.

Each channel is Gaussian noise with its own gain and DC offset, plus occasional negative
spikes spread over neighbouring channels, so zstd sees a realistic ratio (about 1.5-2x), not
a trivial one. No numpy (not a dependency): a uniform random byte is mapped to a Gaussian
quantile with ``bytes.translate`` and written into the channel's stride of the buffer, so no
Python loop runs per sample.
"""

from __future__ import annotations

import io
import random
import struct
from statistics import NormalDist

CHANNELS = 384
SAMPLE_RATE = 30_000
FRAME = 2 * CHANNELS  # bytes per time point
SPIKES_PER_SECOND = 300  # across the probe: a few hundred units firing at a few Hz
_SPIKE = (-20, -120, -180, -90, 30, 45, 20)


def neuropixels_like(n_bytes: int, seed: int = 0) -> bytes:
    """`n_bytes` of Neuropixels-like AP-band data (the last frame cut short if need be)."""
    if n_bytes <= 0:
        return b""
    rng = random.Random(seed)
    n_samples = -(-n_bytes // FRAME)
    data = bytearray(n_samples * FRAME)
    normal = NormalDist()
    quantiles = [normal.inv_cdf((b + 0.5) / 256) for b in range(256)]
    for channel in range(CHANNELS):
        sigma = rng.uniform(40.0, 70.0)  # counts: ~8 to 14 uV rms at 0.195 uV/bit
        dc = rng.randint(-40, 40)
        values = [max(-32768, min(32767, dc + round(sigma * q))) for q in quantiles]
        low = bytes(v & 0xFF for v in values)
        high = bytes((v >> 8) & 0xFF for v in values)
        noise = rng.randbytes(n_samples)
        data[2 * channel :: FRAME] = noise.translate(low)
        data[2 * channel + 1 :: FRAME] = noise.translate(high)
    n_spikes = max(1, n_samples * SPIKES_PER_SECOND // SAMPLE_RATE)
    for _ in range(n_spikes):
        t0 = rng.randrange(max(1, n_samples - len(_SPIKE)))
        centre = rng.randrange(CHANNELS)
        for neighbour in range(max(0, centre - 2), min(CHANNELS, centre + 3)):
            scale = 1.0 / (1 + abs(neighbour - centre))
            for k, amplitude in enumerate(_SPIKE):
                if t0 + k >= n_samples:
                    break
                offset = (t0 + k) * FRAME + 2 * neighbour
                (old,) = struct.unpack_from("<h", data, offset)
                struct.pack_into(
                    "<h", data, offset, max(-32768, min(32767, old + round(amplitude * scale)))
                )
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
