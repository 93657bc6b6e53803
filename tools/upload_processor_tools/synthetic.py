"""Neuropixels-like AP-band samples: int16 little-endian, channels interleaved.

Each channel is Gaussian noise with its own gain and DC offset, plus negative spikes spread
over neighbouring channels, so zstd sees a realistic ratio (about 1.5-2x), not a trivial one.
No numpy (not a dependency): a uniform random byte is mapped to a Gaussian quantile with
``bytes.translate`` and written into the channel's stride of the buffer, so no Python loop runs
per sample. Shared by the sample session and the benchmarks; imports nothing heavy.
"""

from __future__ import annotations

import random
import struct
from statistics import NormalDist

SPIKE_SHAPE = (-20, -120, -180, -90, 30, 45, 20)


def ap_band(n_samples: int, channels: int, n_spikes: int, rng: random.Random) -> bytearray:
    """`n_samples` time points of `channels` interleaved int16 samples with `n_spikes` spikes."""
    frame = 2 * channels
    data = bytearray(n_samples * frame)
    if not n_samples:
        return data
    quantiles = [NormalDist().inv_cdf((b + 0.5) / 256) for b in range(256)]
    for channel in range(channels):
        sigma = rng.uniform(40.0, 70.0)  # counts: ~8 to 14 uV rms at 0.195 uV/bit
        dc = rng.randint(-40, 40)
        values = [max(-32768, min(32767, dc + round(sigma * q))) for q in quantiles]
        low = bytes(v & 0xFF for v in values)
        high = bytes((v >> 8) & 0xFF for v in values)
        noise = rng.randbytes(n_samples)
        data[2 * channel :: frame] = noise.translate(low)
        data[2 * channel + 1 :: frame] = noise.translate(high)
    for _ in range(n_spikes):
        t0 = rng.randrange(max(1, n_samples - len(SPIKE_SHAPE)))
        centre = rng.randrange(channels)
        for neighbour in range(max(0, centre - 2), min(channels, centre + 3)):
            scale = 1.0 / (1 + abs(neighbour - centre))
            for k, amplitude in enumerate(SPIKE_SHAPE):
                if t0 + k >= n_samples:
                    break
                offset = (t0 + k) * frame + 2 * neighbour
                (old,) = struct.unpack_from("<h", data, offset)
                new = max(-32768, min(32767, old + round(amplitude * scale)))
                struct.pack_into("<h", data, offset, new)
    return data
