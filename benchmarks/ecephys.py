"""`ecephys`: the lossless audio-codec Zarr (issue 15) against today's zstd-3, same data, same run.

Input: Neuropixels-like AP band, 384 channels at 30 kHz (`sample_ecephys.ecephys_samples`:
the generator behind `benchmarks/neuropixels.py`, in whole ADC steps), as recorded (LSB 1)
and scaled x12 (as Open Ephys writes Neuropixels data: 0.195 uV per count).

- **storage**: today's archive (zstd level 3 over the whole file) against the Zarr chunks of
  `encode.encode_range` (FLAC level 5, 1 s chunks; the x12 file with `lsb_correction="auto"`,
  and without it as a diagnostic). Goal: >= 1.25x smaller, for both.
- **throughput per core**: zstd-3 streaming (1 MiB writes into one compressor, what the
  transfer does) against `encode_range` on the same bytes, *including* the decode that
  verifies every chunk (what a Map iteration pays). Interleaved runs, medians with min-max.
  Goal: >= 0.8x.
- **decode**: one 1 s x 384-channel chunk through the array's codec pipeline (what a reader
  pays for random access), against zstd-3 decompressing the same chunk (diagnostic).
- **profile** (diagnostic): where one 1 s x 384-channel chunk of `encode_range` spends its
  time, step by step, against zstd-3 streaming the same bytes: what bounds the throughput.
- **memory**: peak RSS of a child process that encodes a whole file range by range (each
  range read from disk as a ranged GET would), for two file sizes: flat means the iteration's
  memory depends on the range, not the file. Goal: the larger file's peak <= 1.1x the smaller.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

from benchmarks import ROOT, Row
from benchmarks.timing import fmt, interleaved, per_second
from upload_processor.domain.units import MiB
from upload_processor.ecephys.codec import EcephysOptions, decode_chunk
from upload_processor.ecephys.encode import encode_range
from upload_processor.ecephys.lsb import LsbCorrection, detect_lsb
from upload_processor.ecephys.recording import RecordingStream
from upload_processor.ecephys.zarr_layout import traces_zarray
from upload_processor_tools.sample_ecephys import ecephys_samples

CHANNELS = 384
RATE = 30_000.0
STORAGE_GOAL = 1.25
THROUGHPUT_GOAL = 0.8
FLAT_GOAL = 1.1


def stream_for(samples: np.ndarray) -> RecordingStream:
    """A stream over `samples` (time x channels int16)."""
    n, channels = samples.shape
    return RecordingStream(
        name="bench",
        source_key="bench/continuous.dat",
        format="openephys",
        num_channels=channels,
        sampling_rate=RATE,
        channel_ids=[f"CH{k + 1}" for k in range(channels)],
        gains_uV=[0.195] * channels,
        offsets_uV=[0.0] * channels,
        num_samples=n,
        byte_size=samples.nbytes,
    )


def zstd_streaming(raw: bytes) -> int:
    """Today's archive: zstd level 3, one stream, 1 MiB writes; the compressed size."""
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    size = 0
    view = memoryview(raw)
    for start in range(0, len(raw), MiB):
        size += len(compressor.compress(view[start : start + MiB]))
    return size + len(compressor.flush())


def zarr_encode(
    raw: bytes, stream: RecordingStream, options: EcephysOptions, correction: LsbCorrection
) -> int:
    """The Map iteration's work on `raw` (one range from sample 0): encode and verify; the
    stored size."""
    return sum(len(c.data) for c in encode_range(raw, stream, 0, options, correction))


def _storage(seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    base = ecephys_samples(seconds, CHANNELS, RATE, scale=1, seed=1)
    for label, data, mode in (
        ("lsb1", base, "auto"),
        ("x12", base * 12, "auto"),
        ("x12_uncorrected", base * 12, "off"),
    ):
        raw = data.tobytes()
        stream = stream_for(data)
        correction = (
            detect_lsb(data[: int(RATE)]) if mode == "auto" else LsbCorrection.identity(CHANNELS)
        )
        zarr_bytes = zarr_encode(raw, stream, EcephysOptions(lsb_correction=mode), correction)
        zstd_bytes = zstd_streaming(raw)
        out[label] = {
            "source_bytes": len(raw),
            "zstd3_bytes": zstd_bytes,
            "zarr_bytes": zarr_bytes,
            "zstd3_ratio": len(raw) / zstd_bytes,
            "flac_ratio": len(raw) / zarr_bytes,
            "smaller_than_zstd": zstd_bytes / zarr_bytes,
            "lsb": correction.stream_factor[0],
        }
    return out


def _throughput(seconds: float, repeat: int) -> dict[str, Any]:
    data = ecephys_samples(seconds, CHANNELS, RATE, scale=12, seed=2)
    raw = data.tobytes()
    stream = stream_for(data)
    correction = detect_lsb(data[: int(RATE)])
    options = EcephysOptions()
    timed = interleaved(
        {
            "zstd3": lambda: zstd_streaming(raw),
            "zarr": lambda: zarr_encode(raw, stream, options, correction),
        },
        repeat=repeat,
    )
    mb = len(raw) / MiB
    zstd_rate, zarr_rate = per_second(mb, timed["zstd3"]), per_second(mb, timed["zarr"])
    # one 1 s chunk, decoded through the .zarray pipeline, against zstd-3 on the same bytes
    chunk = data[: int(RATE)]
    (encoded,) = encode_range(chunk.tobytes(), stream_for(chunk), 0, options, correction)
    meta = traces_zarray(stream_for(chunk), options, correction)
    zstd_chunk = zstandard.ZstdCompressor(level=3).compress(chunk.tobytes())
    decoder = zstandard.ZstdDecompressor()
    decode = interleaved(
        {
            "zstd3": lambda: decoder.decompress(zstd_chunk),
            "zarr": lambda: decode_chunk(encoded.data, meta),
        },
        repeat=repeat,
        number=3,
    )
    return {
        "bytes": len(raw),
        "zstd3_mb_s": zstd_rate,
        "zarr_mb_s": zarr_rate,
        "ratio": zarr_rate["median"] / zstd_rate["median"],
        "decode_s": {k: {x: y for x, y in v.items() if x != "result"} for k, v in decode.items()},
    }


def _profile(repeat: int) -> dict[str, Any]:
    """Seconds per 1 s x 384-channel chunk (x12 data) of each step `encode_range` runs, and
    zstd-3 streaming the same bytes; medians of interleaved runs."""
    import hashlib

    from upload_processor.ecephys.codec import decode_compressed, encode_given
    from upload_processor.ecephys.encode import _compressor_input

    data = ecephys_samples(1.0, CHANNELS, RATE, scale=12, seed=4)
    raw = data.tobytes()
    stream = stream_for(data)
    options = EcephysOptions()
    correction = detect_lsb(data)
    meta = traces_zarray(stream, options, correction)
    active = correction if not correction.is_identity else None
    given = _compressor_input(data, len(data), active, filtered=True)
    assert given is not None
    encoded = encode_given(given, options)
    timed = interleaved(
        {
            "zstd3": lambda: zstd_streaming(raw),
            "split_layout": lambda: _compressor_input(data, len(data), active, filtered=True),
            "flac_encode": lambda: encode_given(given, options),
            "verify_decode": lambda: np.array_equal(decode_compressed(encoded, meta), given),
            "sha256": lambda: hashlib.sha256(raw).digest(),
        },
        repeat=repeat,
    )
    return {k: v["median"] for k, v in timed.items()}


CHILD = """
import json, sys
import numpy as np
from benchmarks.ecephys import peak_rss_encoding
print(json.dumps(peak_rss_encoding(sys.argv[1], int(sys.argv[2]))))
"""


def peak_rss_encoding(path: str, range_mb: int) -> dict[str, float]:
    """In a child: encode the file at `path` range by range (each range read alone, as a
    ranged GET returns it); this process's peak RSS in MiB."""
    from benchmarks.memory_child import _peak_rss_mb
    from upload_processor.ecephys.zarr_layout import byte_range, chunk_ranges

    size = Path(path).stat().st_size
    num_samples = size // (2 * CHANNELS)
    stream = stream_for(np.zeros((1, CHANNELS), dtype=np.int16)).model_copy(
        update={"num_samples": num_samples, "byte_size": size}
    )
    options = EcephysOptions()
    with open(path, "rb") as source:
        first = np.frombuffer(source.read(int(RATE) * 2 * CHANNELS), "<i2")
        correction = detect_lsb(first.reshape(-1, CHANNELS))
        stored = 0
        for start, end in chunk_ranges(stream, options, range_mb * MiB):
            a, b = byte_range(stream, start, end)
            source.seek(a)
            stored += sum(
                len(c.data)
                for c in encode_range(source.read(b - a + 1), stream, start, options, correction)
            )
    return {"peak_rss_mb": _peak_rss_mb(), "file_mb": size / MiB, "stored_mb": stored / MiB}


def _memory(seconds: tuple[float, float], range_mb: int) -> dict[str, Any]:
    block = ecephys_samples(2.0, CHANNELS, RATE, scale=12, seed=3).tobytes()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for s in seconds:
            path = Path(tmp) / f"{s}.dat"
            with path.open("wb") as f:
                for _ in range(max(1, round(s / 2))):
                    f.write(block)
            child = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), str(range_mb)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            out[f"{s:g}s"] = json.loads(child.stdout.strip().splitlines()[-1])
            path.unlink()
    small, large = (out[f"{s:g}s"]["peak_rss_mb"] for s in seconds)
    return {"range_mb": range_mb, "runs": out, "ratio": large / small}


def run(
    *,
    storage_s: float,
    throughput_s: float,
    repeat: int,
    memory_s: tuple[float, float],
    range_mb: int,
) -> dict[str, Any]:
    return {
        "storage": _storage(storage_s),
        "throughput": _throughput(throughput_s, repeat),
        "profile": _profile(repeat),
        "memory": _memory(memory_s, range_mb),
        "repeat": repeat,
    }


def rows(result: dict[str, Any]) -> list[Row]:
    storage, speed, memory = result["storage"], result["throughput"], result["memory"]
    out = []
    for label, what in (
        ("lsb1", "LSB 1"),
        ("x12", "x12, corrected"),
        ("x12_uncorrected", "x12, lsb_correction off"),
    ):
        s = storage[label]
        out.append(
            Row(
                f"ecephys storage ratio, {what} ({s['source_bytes'] / MiB:.0f} MiB, 384 ch)",
                f"zstd-3 {s['zstd3_ratio']:.2f}x",
                f"FLAC Zarr {s['flac_ratio']:.2f}x",
                f"{s['smaller_than_zstd']:.3f}",
                f">= {STORAGE_GOAL}" if label != "x12_uncorrected" else "(diagnostic)",
                s["smaller_than_zstd"] >= STORAGE_GOAL if label != "x12_uncorrected" else None,
            )
        )
    out.append(
        Row(
            f"ecephys throughput per core, encode + verify ({speed['bytes'] / MiB:.0f} MiB)",
            fmt(speed["zstd3_mb_s"], "MiB/s"),
            fmt(speed["zarr_mb_s"], "MiB/s"),
            f"{speed['ratio']:.2f}",
            f">= {THROUGHPUT_GOAL}",
            speed["ratio"] >= THROUGHPUT_GOAL,
        )
    )
    d = speed["decode_s"]
    out.append(
        Row(
            "ecephys decode of one 1 s x 384-channel chunk",
            fmt(d["zstd3"], "ms", 1000, 1),
            fmt(d["zarr"], "ms", 1000, 1),
            f"{d['zarr']['median'] / d['zstd3']['median']:.2f}",
            "(diagnostic)",
            None,
        )
    )
    runs = list(memory["runs"].values())
    out.append(
        Row(
            f"ecephys peak RSS, {memory['range_mb']} MiB ranges, "
            f"{runs[0]['file_mb']:.0f} vs {runs[1]['file_mb']:.0f} MiB file",
            f"{runs[0]['peak_rss_mb']:.0f} MiB",
            f"{runs[1]['peak_rss_mb']:.0f} MiB",
            f"{memory['ratio']:.2f}",
            f"<= {FLAT_GOAL}",
            memory["ratio"] <= FLAT_GOAL,
        )
    )
    return out


def notes(result: dict[str, Any]) -> list[str]:
    s = result["storage"]
    out = [
        f"ecephys: FLAC level 5 in 1 s chunks, stored channel-major; x12 data detected "
        f"lsb={s['x12']['lsb']} and stored through numcodecs' FixedScaleOffset filter (read back "
        f"bit for bit); throughput medians of {result['repeat']} interleaved runs, verification "
        "included.",
    ]
    p = result.get("profile")
    if p:
        steps = ("split_layout", "flac_encode", "verify_decode", "sha256")
        total = sum(p[k] for k in steps)
        out.append(
            "ecephys profile per 1 s x 384-channel chunk (ms): "
            + ", ".join(f"{k} {p[k] * 1000:.0f}" for k in (*steps, "zstd3"))
            + f"; libFLAC alone (encode + verify decode) allows at most "
            f"{p['zstd3'] / (p['flac_encode'] + p['verify_decode']):.2f}x zstd-3's rate, "
            f"all steps {p['zstd3'] / total:.2f}x"
        )
    return out
