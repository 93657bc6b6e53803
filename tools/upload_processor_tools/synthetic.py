"""Neuropixels 1.0-like AP-band samples: int16 little-endian, channels interleaved.

Built so that a general-purpose compressor sees the entropy real NP1 recordings have (zstd -3
compresses real NP1 AP-band files about 2.5-2.9x; this generator gives 2.74x, checked by
tests/unit/tools/test_synthetic.py), because every throughput figure the benchmarks report
depends on it: a compressor's speed depends on the entropy it is fed. What sets that entropy, as
modelled here:

- the ADC: NP1 digitises at 10 bits, 2.34 uV per step at the AP gain of 500, and Open Ephys
  writes the samples at 0.195 uV/bit, so each sample is a whole number of ADC steps times ~12
  counts;
- per-channel white noise of 8-13 uV rms (3-6 ADC steps), each channel its own level: the
  amplifier's 5-10 uV plus the unresolved background activity of a probe in the brain;
- a broadband common-mode signal (reference noise) shared by every channel, and low-frequency,
  LFP-like content whose amplitude varies smoothly along the probe: correlated across
  channels and in time;
- negative spikes of 40-200 uV spread over neighbouring channels.

No numpy (not a dependency), and no Python loop per sample (one per time point, for the
shared sources): the signal is built in ADC steps
as bytes offset by 128, per-time-point sources and per-sample noise mapped through
``bytes.translate`` tables and added as two big integers (each byte stays below 128, so no
carry crosses a byte), then one table maps each byte to the int16's low and high byte. Shared
by the sample session and the benchmarks; imports nothing heavy.
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from statistics import NormalDist

UV_PER_COUNT = 0.195  # Open Ephys: microvolts per int16 count
UV_PER_ADC_STEP = 1.2e6 / 1024 / 500  # NP1: 1.2 V range, 10 bits, AP gain 500 (2.34 uV)
NOISE_UV = (8.0, 13.0)  # per-channel rms noise
LFP_UV = 4.0  # rms of the low-frequency content where the probe sees most of it
COMMON_UV = 3.0  # rms of the common-mode signal
LFP_HZ, COMMON_HZ = 20.0, 3000.0  # corner frequencies of the two shared sources
SAMPLE_RATE = 30_000
SPIKE_SHAPE = (-0.1, -0.65, -1.0, -0.5, 0.15, 0.25, 0.1)  # times the peak amplitude
SPIKE_UV = (40.0, 200.0)
_OFFSET = 128  # a sample of v ADC steps is the byte v + 128
_HALF = 64  # each of the two summed parts is its value + 64, in 0..127


def _levels(count: int) -> list[float]:
    """`count` equiprobable levels of a unit Gaussian (the midpoint quantiles)."""
    return [NormalDist().inv_cdf((k + 0.5) / count) for k in range(count)]


def _slow_source(n_samples: int, corner_hz: float, rng: random.Random) -> bytes:
    """A unit-variance first-order low-pass process, one byte (0..15, a Gaussian level) each."""
    alpha = math.exp(-2 * math.pi * corner_hz / SAMPLE_RATE)
    kick = math.sqrt(1 - alpha * alpha)
    edges = [NormalDist().inv_cdf(k / 16) for k in range(1, 16)]
    value = rng.gauss(0, 1)
    out = bytearray(n_samples)
    gauss = rng.gauss
    for t in range(n_samples):
        value = alpha * value + kick * gauss(0, 1)
        out[t] = bisect(edges, value)
    return bytes(out)


def _table(values: list[float]) -> bytes:
    """A translate table: byte k -> round(values[k] in ADC steps) + 64, clamped to 0..127."""
    steps = (round(v / UV_PER_ADC_STEP) for v in values)
    return bytes(max(0, min(127, _HALF + s)) for s in steps) + bytes(256 - len(values))


def _spikes(index: bytearray, channels: int, n_spikes: int, rng: random.Random) -> None:
    """Add `n_spikes` spikes in place, each over five neighbouring channels."""
    n_samples = len(index) // channels
    for _ in range(n_spikes):
        t0 = rng.randrange(max(1, n_samples - len(SPIKE_SHAPE)))
        centre = rng.randrange(channels)
        peak = rng.uniform(*SPIKE_UV) / UV_PER_ADC_STEP
        for neighbour in range(max(0, centre - 2), min(channels, centre + 3)):
            scale = peak / (1 + abs(neighbour - centre))
            for k, shape in enumerate(SPIKE_SHAPE[: n_samples - t0]):
                offset = (t0 + k) * channels + neighbour
                index[offset] = max(0, min(255, index[offset] + round(shape * scale)))


def ap_band(n_samples: int, channels: int, n_spikes: int, rng: random.Random) -> bytearray:
    """`n_samples` time points of `channels` interleaved int16 samples with `n_spikes` spikes."""
    data = bytearray(n_samples * 2 * channels)
    if not n_samples:
        return data
    # One byte per time point: the LFP level (high nibble) and the common-mode level (low).
    lfp, common = _slow_source(n_samples, LFP_HZ, rng), _slow_source(n_samples, COMMON_HZ, rng)
    slow = (int.from_bytes(lfp, "little") << 4 | int.from_bytes(common, "little")).to_bytes(
        n_samples, "little"
    )
    slow_levels, noise_levels = _levels(16), _levels(256)
    slow_part, noise_part = bytearray(len(data) // 2), bytearray(len(data) // 2)
    for channel in range(channels):
        depth = channel / max(1, channels - 1)
        lfp_gain = LFP_UV * (0.4 + 0.6 * math.sin(math.pi * depth) ** 2)  # strongest mid-probe
        dc = rng.gauss(0, 1.0) * UV_PER_ADC_STEP
        slow_uv = [
            dc + lfp_gain * slow_levels[b >> 4] + COMMON_UV * slow_levels[b & 15]
            for b in range(256)
        ]
        sigma = rng.uniform(*NOISE_UV)
        slow_part[channel::channels] = slow.translate(_table(slow_uv))
        noise_uv = [sigma * q for q in noise_levels]
        noise_part[channel::channels] = rng.randbytes(n_samples).translate(_table(noise_uv))
    total = int.from_bytes(slow_part, "little") + int.from_bytes(noise_part, "little")
    index = bytearray(total.to_bytes(len(slow_part), "little"))
    del slow_part, noise_part, total
    _spikes(index, channels, n_spikes, rng)
    counts = [round((b - _OFFSET) * UV_PER_ADC_STEP / UV_PER_COUNT) for b in range(256)]
    data[0::2] = index.translate(bytes(c & 0xFF for c in counts))
    data[1::2] = index.translate(bytes((c >> 8) & 0xFF for c in counts))
    return data
