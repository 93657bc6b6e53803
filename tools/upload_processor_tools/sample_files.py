"""The sample session's data files: synthetic, but shaped like what rigs write.

A trials CSV, a Harp digital-input register dump and an opaque video for behavior; an int16
Neuropixels-like continuous stream (noise and spikes, `synthetic.ap_band`) with its Open Ephys
sidecars for ecephys. Only the standard library, and deterministic: the same arguments and
random generator give the same bytes, so compression ratios measured on them are repeatable.
"""

from __future__ import annotations

import json
import math
import random
import struct
from datetime import datetime
from pathlib import Path

from upload_processor.domain.units import MiB
from upload_processor_tools.synthetic import ap_band

ECEPHYS_CHANNELS = 384
ECEPHYS_SAMPLE_RATE = 30_000
ECEPHYS_BIT_VOLTS = 0.195  # microvolts per bit, Neuropixels 1.0 AP band

_HARP_EVENT = 3
_HARP_U8_TIMESTAMPED = 0x11
_HARP_DIGITAL_INPUT_REGISTER = 32
_HARP_MESSAGE = struct.Struct("<BBBBBIHB")  # type, length, address, port, payload type, s, ticks, v
_HARP_MESSAGE_SIZE = _HARP_MESSAGE.size + 1  # + checksum
_HARP_MAX_BYTES = 8 * MiB


def write_behavior_data(folder: Path, budget: int, start: datetime, rng: random.Random) -> None:
    """trials.csv, a Harp digital-input register dump and an opaque video.mp4.

    The video is random bytes (incompressible, copied as-is by the pipeline). The Harp file
    takes what the budget leaves, in whole messages, up to _HARP_MAX_BYTES: its messages are
    built one by one in Python, so beyond that the video grows instead, which is also what
    large real behavior sessions look like (video is the bulk of them).
    """
    folder.mkdir(parents=True, exist_ok=True)

    lines = ["trial,start_time_s,go_cue_time_s,choice,rewarded,reward_volume_ul,response_time_s"]
    t = 0.0
    n_trials = max(1, min(412, budget // 2000))
    for trial in range(n_trials):
        t += rng.uniform(4.0, 9.0)
        go = t + rng.uniform(0.8, 1.5)
        choice = rng.choice(["left", "right", "ignore"])
        rewarded = choice != "ignore" and rng.random() < 0.55
        response = "" if choice == "ignore" else f"{rng.uniform(0.15, 0.9):.3f}"
        lines.append(
            f"{trial},{t:.4f},{go:.4f},{choice},{int(rewarded)},"
            f"{2.0 if rewarded else 0.0},{response}"
        )
    csv = ("\n".join(lines) + "\n").encode()
    (folder / "trials.csv").write_bytes(csv)

    video_size = min(256 * 1024, budget // 8)
    harp_bytes = min(_HARP_MAX_BYTES, max(0, budget - len(csv) - video_size))
    n_messages = harp_bytes // _HARP_MESSAGE_SIZE
    video_size = max(0, budget - len(csv) - n_messages * _HARP_MESSAGE_SIZE)
    (folder / "video.mp4").write_bytes(rng.randbytes(video_size))

    out = bytearray(n_messages * _HARP_MESSAGE_SIZE)
    seconds0 = int(start.timestamp()) % 100_000  # Harp clocks count from device boot
    ticks = 0  # 32 microsecond ticks since seconds0
    state = 0
    for i in range(n_messages):
        ticks += rng.randint(20, 4000)
        state ^= 1 << rng.randrange(4)  # lick sensors / beam breaks toggling
        seconds, tick = divmod(ticks, 31_250)
        offset = i * _HARP_MESSAGE_SIZE
        _HARP_MESSAGE.pack_into(
            out,
            offset,
            _HARP_EVENT,
            _HARP_MESSAGE_SIZE - 2,
            _HARP_DIGITAL_INPUT_REGISTER,
            255,
            _HARP_U8_TIMESTAMPED,
            seconds0 + seconds,
            tick,
            state,
        )
        out[offset + _HARP_MESSAGE.size] = sum(out[offset : offset + _HARP_MESSAGE.size]) & 0xFF
    (folder / "behavior_32.bin").write_bytes(bytes(out))


def write_ecephys_data(folder: Path, budget: int, start: datetime, rng: random.Random) -> None:
    """continuous.dat (int16, 384 channels interleaved, little-endian) plus sidecars.

    The samples are `synthetic.ap_band`'s: noise, shared low-frequency and common-mode content
    and spikes, quantised like a Neuropixels 1.0 ADC, so general-purpose compressors see the
    ratio real recordings give (zstd -3: about 2.7x) rather than a trivial one.
    """
    folder.mkdir(parents=True, exist_ok=True)
    sidecar = {
        "format": "raw int16 little-endian, channels interleaved",
        "num_channels": ECEPHYS_CHANNELS,
        "sample_rate_hz": ECEPHYS_SAMPLE_RATE,
        "bit_volts": ECEPHYS_BIT_VOLTS,
        "probe": {"name": "Probe A", "model": "Neuropixels 1.0", "serial_number": "18194814012"},
        "basestation": {"slot": 3, "port": 1},
        "start_time": start.isoformat(),
    }
    settings = (json.dumps(sidecar, indent=2) + "\n").encode()
    sync = (
        "Software Time (milliseconds since midnight Jan 1st 1970 UTC): "
        f"{int(start.timestamp() * 1000)}\n"
        f"Start Time for Neuropix-PXI (100) - ProbeA-AP @ {ECEPHYS_SAMPLE_RATE} Hz: 0\n"
    ).encode()
    (folder / "settings.json").write_bytes(settings)
    (folder / "sync_messages.txt").write_bytes(sync)

    frame = 2 * ECEPHYS_CHANNELS
    n_samples = max(0, budget - len(settings) - len(sync)) // frame
    # spikes: a few per second on random channels, spread over neighbouring channels
    n_spikes = max(1, math.ceil(n_samples / ECEPHYS_SAMPLE_RATE * 40)) if n_samples else 0
    data = ap_band(n_samples, ECEPHYS_CHANNELS, n_spikes, rng)
    (folder / "continuous.dat").write_bytes(bytes(data))
