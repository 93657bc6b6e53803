"""Raw ecephys recordings as the rigs write them: an Open Ephys folder and a SpikeGLX pair.

For tests, the demo and the benchmarks: a few seconds of multi-channel int16 with spikes, noise
and shared slow signals (`synthetic.ap_band`, in whole ADC steps: LSB 1), optionally times a
constant `scale` (Open Ephys writes Neuropixels data at 0.195 uV per count, ~12 counts per
ADC step), described by a `structure.oebin` / `.meta` of the shape the acquisition software
writes (Open Ephys GUI 0.6 binary format; SpikeGLX 20230411 for a Neuropixels 1.0 probe).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from upload_processor_tools.synthetic import UV_PER_ADC_STEP, UV_PER_COUNT, ap_band

NP1_X = (43.0, 11.0, 59.0, 27.0)  # Neuropixels 1.0 staggered columns (um)
NP1_PITCH = 20.0  # um between rows
STREAM = "Neuropix-PXI-100.ProbeA-AP"


def ecephys_samples(
    seconds: float, channels: int, sampling_rate: float = 30_000.0, scale: int = 1, seed: int = 0
) -> np.ndarray:
    """time x channels int16: Neuropixels-like AP band in ADC steps, times `scale`."""
    n = max(1, round(seconds * sampling_rate))
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    counts = np.frombuffer(ap_band(n, channels, max(1, n // 30), rng), dtype="<i2")
    steps = np.rint(counts / (UV_PER_ADC_STEP / UV_PER_COUNT)).astype(np.int32)
    data = np.clip(steps * scale, -32768, 32767).astype("<i2")
    return data.reshape(n, channels)


def _npy(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, values)


def write_openephys(
    folder: Path,
    seconds: float,
    channels: int,
    sampling_rate: float = 30_000.0,
    scale: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Write one Open Ephys binary recording (one AP stream, a TTL event stream) under `folder`.

    Returns what a test checks against: `oebin` and `dat` (paths relative to `folder`),
    `stream` (the folder name), `samples` (time x channels int16 array), `bit_volts`.
    """
    data = ecephys_samples(seconds, channels, sampling_rate, scale, seed)
    recording = Path("Record Node 101") / "experiment1" / "recording1"
    root = folder / recording
    stream_dir = root / "continuous" / STREAM
    stream_dir.mkdir(parents=True, exist_ok=True)
    data.tofile(stream_dir / "continuous.dat")
    first = 1_000_000
    numbers = np.arange(first, first + len(data), dtype=np.int64)
    _npy(stream_dir / "sample_numbers.npy", numbers)
    _npy(stream_dir / "timestamps.npy", numbers / sampling_rate)
    events = root / "events" / STREAM / "TTL"
    pulses = np.arange(first, first + len(data), int(sampling_rate // 2), dtype=np.int64)
    _npy(events / "sample_numbers.npy", pulses)
    _npy(events / "timestamps.npy", pulses / sampling_rate)
    _npy(
        events / "states.npy",
        np.tile(np.array([1, -1], dtype=np.int16), len(pulses))[: len(pulses)],
    )
    _npy(events / "full_words.npy", np.zeros(len(pulses), dtype=np.uint64))
    bit_volts = UV_PER_ADC_STEP / scale
    oebin = {
        "GUI version": "0.6.7",
        "continuous": [
            {
                "folder_name": f"{STREAM}/",
                "sample_rate": sampling_rate,
                "source_processor_name": "Neuropix-PXI",
                "source_processor_id": 100,
                "stream_name": "ProbeA-AP",
                "recorded_processor": "Record Node",
                "recorded_processor_id": 101,
                "num_channels": channels,
                "channels": [
                    {
                        "channel_name": f"CH{k + 1}",
                        "description": "Neuropixels AP channel",
                        "identifier": "neuropixels.ap",
                        "history": "Neuropix-PXI -> Record Node",
                        "bit_volts": bit_volts,
                        "units": "uV",
                    }
                    for k in range(channels)
                ],
            }
        ],
        "events": [
            {
                "folder_name": f"{STREAM}/TTL/",
                "channel_name": "Neuropixels PXI Sync",
                "description": "Status of SMA sync line on PXI card",
                "identifier": "neuropixels.sync",
                "sample_rate": sampling_rate,
                "type": "int16",
                "num_channels": 1,
                "source_processor": "Neuropix-PXI",
                "stream_name": "ProbeA-AP",
            }
        ],
        "spikes": [],
    }
    (root / "structure.oebin").write_text(json.dumps(oebin, indent=4))
    (root / "sync_messages.txt").write_text(
        "Software Time (milliseconds since midnight Jan 1st 1970 UTC): 1749765780000\r\n"
        f"Start Time for Neuropix-PXI (100) - ProbeA-AP @ {sampling_rate:g} Hz: {first}\r\n"
    )
    (folder / "Record Node 101" / "settings.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<SETTINGS><INFO><VERSION>0.6.7</VERSION>'
        "</INFO></SETTINGS>\n"
    )
    return {
        "oebin": (recording / "structure.oebin").as_posix(),
        "dat": (recording / "continuous" / STREAM / "continuous.dat").as_posix(),
        "stream": STREAM,
        "samples": data,
        "bit_volts": bit_volts,
    }


def write_spikeglx(
    folder: Path,
    seconds: float,
    channels: int,
    sampling_rate: float = 30_000.0,
    scale: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Write a SpikeGLX Neuropixels 1.0 `.ap.bin` + `.ap.meta` (`channels` neural channels
    and the sync channel) under `folder/run_g0/run_g0_imec0/`.

    Returns `bin`, `meta` (relative to `folder`), `samples` (time x (channels + 1) int16),
    `locations` (um, of the neural channels).
    """
    neural = ecephys_samples(seconds, channels, sampling_rate, scale, seed)
    sync = np.zeros((len(neural), 1), dtype="<i2")
    sync[:: int(sampling_rate // 2), 0] = 64
    data = np.ascontiguousarray(np.hstack([neural, sync]))
    relative = Path("run_g0") / "run_g0_imec0"
    (folder / relative).mkdir(parents=True, exist_ok=True)
    stem = "run_g0_t0.imec0.ap"
    data.tofile(folder / relative / f"{stem}.bin")
    total = channels + 1
    locations = [[NP1_X[k % 4], (k // 2) * NP1_PITCH] for k in range(channels)]
    imro = "(0,384)" + "".join(f"({k} 0 0 500 250 1)" for k in range(channels))
    chan_map = f"({channels},0,1)" + "".join(f"(AP{k};{k}:{k})" for k in range(channels))
    chan_map += f"(SY0;{channels}:{channels})"
    shank_map = "(1,2,480)" + "".join(f"(0:{k % 2}:{k // 2}:1)" for k in range(channels))
    geom_map = "(NP1000,1,0,70)" + "".join(f"(0:{x:g}:{z:g}:1)" for x, z in locations)
    lines = {
        "acqApLfSy": f"{channels},{channels},1",
        "appVersion": "20230411",
        "fileCreateTime": "2025-06-12T15:03:00",
        "fileName": f"D:/data/run_g0/run_g0_imec0/{stem}.bin",
        "fileSizeBytes": str(data.nbytes),
        "fileTimeSecs": f"{len(data) / sampling_rate:.6f}",
        "firstSample": "1000000",
        "gateMode": "Immediate",
        "imAiRangeMax": "0.6",
        "imAiRangeMin": "-0.6",
        "imDatPrb_pn": "NP1010",
        "imDatPrb_sn": "18194814141",
        "imDatPrb_type": "0",
        "imMaxInt": "512",
        "imSampRate": f"{sampling_rate:g}",
        "imroFile": "",
        "nSavedChans": str(total),
        "snsApLfSy": f"{channels},0,1",
        "snsSaveChanSubset": "all",
        "typeImEnabled": "1",
        "typeThis": "imec",
        "~imroTbl": imro,
        "~snsChanMap": chan_map,
        "~snsGeomMap": geom_map,
        "~snsShankMap": shank_map,
    }
    meta_text = "".join(f"{k}={v}\n" for k, v in lines.items())
    (folder / relative / f"{stem}.meta").write_text(meta_text)
    return {
        "bin": (relative / f"{stem}.bin").as_posix(),
        "meta": (relative / f"{stem}.meta").as_posix(),
        "samples": data,
        "locations": locations,
    }
