"""The synthetic Neuropixels data compresses like real NP1 AP-band recordings.

Every throughput figure of the benchmarks is measured on this generator's output, so its
entropy is what a compressor sees in real data: zstd -3 compresses real NP1 AP-band files
about 2.5-2.9x (the generator gives 2.74x; the README's Benchmarks section states it).
"""

from __future__ import annotations

import random
import struct

import pytest
import zstandard

from upload_processor_tools.synthetic import UV_PER_ADC_STEP, UV_PER_COUNT, ap_band

CHANNELS = 384
N_SAMPLES = 20_000  # two thirds of a second: 15 MiB
SPIKES_PER_SECOND = 1_000


@pytest.fixture(scope="module")
def data() -> bytes:
    return bytes(
        ap_band(N_SAMPLES, CHANNELS, N_SAMPLES * SPIKES_PER_SECOND // 30_000, random.Random(0))
    )


def test_zstd3_ratio_matches_real_np1(data: bytes) -> None:
    ratio = len(data) / len(zstandard.ZstdCompressor(level=3).compress(data))
    assert 2.5 <= ratio <= 2.9, f"zstd -3 ratio {ratio:.2f}, real NP1 AP band is 2.5-2.9"


def test_samples_are_whole_adc_steps_around_zero(data: bytes) -> None:
    assert len(data) == N_SAMPLES * CHANNELS * 2
    samples = struct.unpack(f"<{CHANNELS * 1000}h", data[: CHANNELS * 2000])
    step = UV_PER_ADC_STEP / UV_PER_COUNT  # ~12 counts
    assert all(abs(s / step - round(s / step)) * step <= 0.5 + 1e-9 for s in samples)
    mean = sum(samples) / len(samples)
    rms = (sum((s - mean) ** 2 for s in samples) / len(samples)) ** 0.5
    assert abs(mean) < 10 and 40 < rms < 80, (mean, rms)  # ~10 uV rms at 0.195 uV/count


def test_deterministic_and_sized() -> None:
    first = ap_band(100, 8, 3, random.Random(5))
    assert first == ap_band(100, 8, 3, random.Random(5))
    assert len(first) == 100 * 8 * 2
    assert ap_band(0, 384, 0, random.Random(0)) == bytearray()
