"""One continuous stream of a raw ecephys recording, parsed from its own description.

Open Ephys writes `structure.oebin` (JSON) beside `continuous/<stream>/continuous.dat`; SpikeGLX
writes a `.meta` (key=value) beside each `.bin`. Both binaries are interleaved int16
(time x channels). The parsers return the stream and the report entries that must reject the
session before any byte is transferred (a truncated binary, a description that disagrees with
the file), so a half-written Zarr can never happen.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from upload_processor.domain.report import Issue

SAMPLE_BYTES = 2  # int16
NPY_HEADER = 128  # a 1-D .npy's header (numpy pads it to a multiple of 64 bytes)
UNITS_TO_UV = {"uV": 1.0, "µV": 1.0, "mV": 1e3, "V": 1e6}


class RecordingStream(BaseModel):
    """Everything needed to encode one binary and describe it to spikeinterface."""

    name: str = Field(description="Stream name; the store is `<name>.zarr`")
    source_key: str = Field(description="Path of the binary relative to the session folder")
    format: Literal["openephys", "spikeglx"]
    num_channels: int
    sampling_rate: float
    dtype: Literal["int16"] = "int16"
    channel_ids: list[str]
    gains_uV: list[float]
    offsets_uV: list[float]
    num_samples: int
    byte_size: int
    locations: list[list[float]] | None = Field(
        default=None,
        description="Contact positions (um) of the first len(locations) channels (the probe's; sync channels have none)",
    )
    extra: dict[str, Any] = Field(default_factory=dict)


def _error(file: str, field: str | None, rule: str, message: str) -> Issue:
    return Issue(severity="error", file=file, field=field, rule=rule, message=message)


def _warning(file: str, field: str | None, rule: str, message: str) -> Issue:
    return Issue(severity="warning", file=file, field=field, rule=rule, message=message)


def _frame_issue(binary: str, size: int, channels: int, described_by: str) -> Issue | None:
    """`ecephys.truncated_binary` when `size` is not a whole number of int16 frames."""
    frame = channels * SAMPLE_BYTES
    if channels > 0 and size % frame == 0:
        return None
    return _error(
        binary,
        "size",
        "ecephys.truncated_binary",
        f"{binary} is {size} bytes, not a whole number of samples of {channels} int16 channels "
        f"({frame} bytes each, as {described_by} says; {size % frame if frame else size} bytes "
        f"left over): the file is truncated or {described_by} names the wrong channel count. "
        "Upload the complete file (or fix the channel count) and upload_job.json again.",
    )


def _stream_name(oebin_dir: str, folder: str) -> str:
    """The store's name, unique in the session: AIND's `<experiment>_<record node>#<stream>_<recording>`
    when the folders are Open Ephys' own, else the stream folder under its parents."""
    parts = [p for p in oebin_dir.split("/") if p]
    if len(parts) >= 3 and parts[-1].startswith("recording") and parts[-2].startswith("experiment"):
        return f"{parts[-2]}_{parts[-3]}#{folder}_{parts[-1]}"
    return "_".join([*parts[-2:], folder]) if parts else folder


def _npy_samples(size: int | None) -> int | None:
    """How many int64 entries a 1-D `.npy` of `size` bytes holds (None: not that shape)."""
    if size is None or size < NPY_HEADER or (size - NPY_HEADER) % 8:
        return None
    return (size - NPY_HEADER) // 8


def streams_from_oebin(
    oebin_text: str, oebin_path: str, sizes: dict[str, int]
) -> tuple[list[RecordingStream], list[Issue]]:
    """The continuous streams an Open Ephys `structure.oebin` describes, checked against the
    staged files' sizes (`sizes`: path relative to the session -> bytes).

    A description that cannot be read is a warning (its binaries are archived with zstd as
    any file); a binary that disagrees with it is an error: the session is rejected before
    any transfer.
    """
    issues: list[Issue] = []
    try:
        document = json.loads(oebin_text)
        entries = document["continuous"]
        if not isinstance(entries, list):
            raise TypeError("continuous is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        return [], [
            _warning(
                oebin_path,
                "continuous",
                "ecephys.unreadable_description",
                f"{oebin_path} is not an Open Ephys structure.oebin with a 'continuous' list "
                f"({exc}): its recording is archived with zstd, not as Zarr. Export the "
                "recording again from Open Ephys to get a readable structure.oebin.",
            )
        ]
    base = posixpath.dirname(oebin_path)
    streams: list[RecordingStream] = []
    for i, entry in enumerate(entries):
        field = f"continuous[{i}]"
        try:
            folder = str(entry["folder_name"]).strip("/")
            rate = float(entry["sample_rate"])
            channels = int(entry["num_channels"])
            described = list(entry.get("channels") or [])
        except (KeyError, TypeError, ValueError) as exc:
            issues.append(
                _warning(
                    oebin_path,
                    field,
                    "ecephys.unreadable_description",
                    f"{oebin_path} {field} lacks folder_name, sample_rate or num_channels "
                    f"({exc!r}): that stream is archived with zstd, not as Zarr.",
                )
            )
            continue
        binary = posixpath.join(base, "continuous", folder, "continuous.dat")
        if binary not in sizes:
            issues.append(
                _error(
                    binary,
                    None,
                    "ecephys.missing_binary",
                    f"{oebin_path} {field} describes stream {folder!r}, but {binary} was not "
                    "uploaded. Upload it (or remove the stream from structure.oebin).",
                )
            )
            continue
        size = sizes[binary]
        if described and len(described) != channels:
            issues.append(
                _error(
                    oebin_path,
                    f"{field}.num_channels",
                    "ecephys.channel_count",
                    f"{oebin_path} {field}.num_channels is {channels} but its channels list "
                    f"has {len(described)} entries: make them agree (the .dat {binary} "
                    "holds num_channels interleaved channels).",
                )
            )
            continue
        frame_issue = _frame_issue(binary, size, channels, f"{oebin_path} {field}.num_channels")
        if frame_issue is not None:
            issues.append(frame_issue)
            continue
        num_samples = size // (channels * SAMPLE_BYTES)
        for stamp in ("sample_numbers.npy", "timestamps.npy"):
            stamp_path = posixpath.join(base, "continuous", folder, stamp)
            counted = _npy_samples(sizes.get(stamp_path))
            if counted is not None and counted != num_samples:
                issues.append(
                    _error(
                        binary,
                        "size",
                        "ecephys.size_mismatch",
                        f"{binary} holds {num_samples} samples of {channels} channels "
                        f"({size} bytes) but {stamp_path} has {counted}: one of them is "
                        "incomplete. Upload both files complete, then upload_job.json again.",
                    )
                )
                break
        else:
            gains = [
                float(c.get("bit_volts", 1.0)) * UNITS_TO_UV.get(str(c.get("units", "uV")), 1.0)
                for c in described
            ] or [1.0] * channels
            ids = [str(c.get("channel_name", f"CH{k + 1}")) for k, c in enumerate(described)]
            streams.append(
                RecordingStream(
                    name=_stream_name(base, folder),
                    source_key=binary,
                    format="openephys",
                    num_channels=channels,
                    sampling_rate=rate,
                    channel_ids=ids or [f"CH{k + 1}" for k in range(channels)],
                    gains_uV=gains,
                    offsets_uV=[0.0] * channels,
                    num_samples=num_samples,
                    byte_size=size,
                    extra={
                        "oebin": oebin_path,
                        "folder_name": folder,
                        "stream_name": entry.get("stream_name"),
                        "source_processor_name": entry.get("source_processor_name"),
                    },
                )
            )
    return streams, issues


def parse_meta(meta_text: str) -> dict[str, str]:
    """A SpikeGLX `.meta` as key -> raw value (`~` kept on the table keys)."""
    meta: dict[str, str] = {}
    for line in meta_text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            meta[key.strip()] = value.strip()
    return meta


def _entries(table: str) -> tuple[list[str], list[list[str]]]:
    """A SpikeGLX table `(header)(entry)(entry)...` as (header fields, entries' fields)."""
    groups = re.findall(r"\(([^)]*)\)", table)
    if not groups:
        return [], []
    split = lambda g: re.split(r"[ ,:;]", g.strip())  # noqa: E731
    return split(groups[0]), [split(g) for g in groups[1:]]


def _spikeglx_locations(meta: dict[str, str], neural: int) -> list[list[float]] | None:
    """Contact positions (um) of the neural channels: `~snsGeomMap` (x, z per contact, exact)
    when present, else `~snsShankMap` (column x 32 um, row x 20 um: Neuropixels' pitch)."""
    if "~snsGeomMap" in meta:
        header, rows = _entries(meta["~snsGeomMap"])
        spacing = float(header[2]) if len(header) > 2 else 0.0
        points = [[int(r[0]) * spacing + float(r[1]), float(r[2])] for r in rows if len(r) >= 3]
    elif "~snsShankMap" in meta:
        _, rows = _entries(meta["~snsShankMap"])
        points = [
            [int(r[0]) * 250.0 + int(r[1]) * 32.0, int(r[2]) * 20.0] for r in rows if len(r) >= 3
        ]
    else:
        return None
    return points if len(points) == neural else None


def _spikeglx_gains(meta: dict[str, str], band: str, neural: int, total: int) -> list[float]:
    """uV per count of each saved channel: `imAiRangeMax / imMaxInt / gain` (the gain from
    `~imroTbl`: NP1's per-channel AP/LF gains, else NP2's fixed 80); 1 for sync channels."""
    if meta.get("typeThis") == "nidq":
        volts = float(meta.get("niAiRangeMax", "5"))
        return [volts / 32768 * 1e6] * total
    volts = float(meta.get("imAiRangeMax", "0.6"))
    max_int = float(meta.get("imMaxInt", "512"))
    _, rows = _entries(meta.get("~imroTbl", ""))
    column = 4 if band == "lf" else 3
    gains = [float(r[column]) if len(r) >= 6 else 80.0 for r in rows][:neural]
    gains += [80.0 if not rows else gains[-1]] * (neural - len(gains))
    return [volts / max_int / g * 1e6 for g in gains] + [1.0] * (total - neural)


def stream_from_spikeglx_meta(
    meta_text: str, bin_path: str, size: int
) -> tuple[RecordingStream | None, list[Issue]]:
    """The stream a SpikeGLX `.meta` describes, checked against its `.bin` of `size` bytes."""
    meta_path = bin_path.removesuffix(".bin") + ".meta"
    meta = parse_meta(meta_text)
    try:
        channels = int(meta["nSavedChans"])
        rate = float(meta.get("imSampRate") or meta["niSampRate"])
    except (KeyError, ValueError) as exc:
        return None, [
            _warning(
                meta_path,
                "nSavedChans",
                "ecephys.unreadable_description",
                f"{meta_path} lacks a readable nSavedChans or imSampRate/niSampRate ({exc!r}): "
                f"{bin_path} is archived with zstd, not as Zarr.",
            )
        ]
    issues: list[Issue] = []
    stem = posixpath.basename(bin_path).removesuffix(".bin")
    band = stem.rsplit(".", 1)[-1]  # ap, lf, nidq
    counts = [int(v) for v in meta.get("snsApLfSy", meta.get("snsMnMaXaDw", "")).split(",") if v]
    if counts and sum(counts) != channels:
        issues.append(
            _error(
                meta_path,
                "nSavedChans",
                "ecephys.channel_count",
                f"{meta_path} nSavedChans is {channels} but snsApLfSy/snsMnMaXaDw adds up to "
                f"{sum(counts)} ({meta.get('snsApLfSy') or meta.get('snsMnMaXaDw')}): the .meta "
                f"does not describe {bin_path}. Upload the .meta SpikeGLX wrote with this .bin.",
            )
        )
    _, chan_map = _entries(meta.get("~snsChanMap", ""))
    if chan_map and len(chan_map) != channels:
        issues.append(
            _error(
                meta_path,
                "nSavedChans",
                "ecephys.channel_count",
                f"{meta_path} nSavedChans is {channels} but ~snsChanMap lists {len(chan_map)} "
                f"channels: the .meta does not describe {bin_path}. Upload the .meta SpikeGLX "
                "wrote with this .bin.",
            )
        )
    sync = (counts[2] if len(counts) == 3 else 1) if band in ("ap", "lf") else 0
    shank_key = "~snsGeomMap" if "~snsGeomMap" in meta else "~snsShankMap"
    _, shank = _entries(meta.get(shank_key, ""))
    if shank and band != "nidq" and len(shank) != channels - sync:
        issues.append(
            _error(
                meta_path,
                "nSavedChans",
                "ecephys.channel_count",
                f"{meta_path} nSavedChans is {channels} ({channels - sync} probe channels and "
                f"{sync} sync) but {shank_key} places {len(shank)} probe channels: the .meta "
                f"does not describe {bin_path}. Upload the .meta SpikeGLX wrote with this .bin.",
            )
        )
    declared = int(meta["fileSizeBytes"]) if meta.get("fileSizeBytes", "").isdigit() else None
    if declared is not None and declared != size:
        issues.append(
            _error(
                bin_path,
                "size",
                "ecephys.size_mismatch",
                f"{bin_path} is {size} bytes but {meta_path} fileSizeBytes says {declared}: the "
                "upload is incomplete (or the .meta belongs to another file). Upload the "
                "complete .bin, then upload_job.json again.",
            )
        )
    frame_issue = _frame_issue(bin_path, size, channels, f"{meta_path} nSavedChans")
    if frame_issue is not None:
        if declared == size:  # the file is what SpikeGLX wrote: the count is what is wrong
            frame_issue = _error(
                meta_path,
                "nSavedChans",
                "ecephys.channel_count",
                f"{meta_path} nSavedChans is {channels}, but {bin_path} ({size} bytes, as "
                f"fileSizeBytes says) is not a whole number of {channels}-channel int16 samples: "
                "the channel count is wrong. Upload the .meta SpikeGLX wrote with this .bin.",
            )
        issues.append(frame_issue)
    if any(i.severity == "error" for i in issues):
        return None, issues
    neural = channels - sync
    if band == "nidq":
        ids = [f"nidq#XA{k}" for k in range(channels)]
    else:
        probe = stem.rsplit(".", 2)[-2] if stem.count(".") >= 2 else "imec0"
        ids = [f"{probe}.{band}#{band.upper()}{k}" for k in range(neural)]
        ids += [f"{probe}.{band}#SY{k}" for k in range(sync)]
    locations = _spikeglx_locations(meta, neural) if band != "nidq" else None
    return (
        RecordingStream(
            name=stem,
            source_key=bin_path,
            format="spikeglx",
            num_channels=channels,
            sampling_rate=rate,
            channel_ids=ids,
            gains_uV=_spikeglx_gains(meta, band, neural, channels),
            offsets_uV=[0.0] * channels,
            num_samples=size // (channels * SAMPLE_BYTES),
            byte_size=size,
            locations=locations,
            extra={"meta": meta_path, "band": band, "sync_channels": sync},
        ),
        issues,
    )


def description_keys(sizes: dict[str, int]) -> list[str]:
    """The files whose text `find_recordings` needs: every `structure.oebin` and every
    `.meta` beside a `.bin` (the caller reads them, e.g. with GETs, and passes them in)."""
    return sorted(
        key
        for key in sizes
        if posixpath.basename(key) == "structure.oebin"
        or (key.endswith(".meta") and key.removesuffix(".meta") + ".bin" in sizes)
    )


def find_recordings(
    sizes: dict[str, int], texts: dict[str, str]
) -> tuple[list[RecordingStream], list[Issue]]:
    """Every stream of the session's raw recordings and the report entries about them.

    `sizes`: every staged file (path relative to the session -> bytes); `texts`: the content
    of the `description_keys(sizes)`. A binary no description covers (a `continuous.dat`
    outside any `.oebin`'s streams, a `.bin` without its `.meta`) is archived with zstd, with
    a warning saying why; it never fails the session.
    """
    streams: list[RecordingStream] = []
    issues: list[Issue] = []
    for key in description_keys(sizes):
        text = texts.get(key)
        if text is None:
            continue
        if key.endswith(".oebin"):
            found, problems = streams_from_oebin(text, key, sizes)
            streams += found
        else:
            binary = key.removesuffix(".meta") + ".bin"
            stream, problems = stream_from_spikeglx_meta(text, binary, sizes[binary])
            streams += [stream] if stream is not None else []
        issues += problems
    covered = {s.source_key for s in streams} | {i.file for i in issues if i.file}
    for key in sorted(sizes):
        name = posixpath.basename(key)
        undescribed = (name == "continuous.dat" and "/continuous/" in f"/{key}") or (
            key.endswith(".bin") and key.removesuffix(".bin") + ".meta" not in sizes
        )
        if undescribed and key not in covered:
            issues.append(
                _warning(
                    key,
                    None,
                    "ecephys.undescribed_binary",
                    f"{key} looks like a raw recording but no structure.oebin / .meta describes "
                    "it: it is archived with zstd, not as Zarr. Upload its description with it "
                    "to get the Zarr spikeinterface reads.",
                )
            )
    return streams, issues
