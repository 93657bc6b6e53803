"""The ecephys transformation's part of GatherMetadata: find the recordings, check them, plan them.

When the ecephys modality's transformation chooses an audio codec (flac, wavpack), the
`ecephys/` folder's Open Ephys recordings (`structure.oebin` + `continuous/<stream>/
continuous.dat`) and SpikeGLX recordings (`*.ap.bin`/`*.lf.bin` + `.meta`) become one Zarr per
stream. Gather reads only the small descriptions (`.oebin`, `.meta`), checks them against the
staged sizes (`upload_processor.ecephys.recording`: a truncated binary or a description that
disagrees with the file is an error in the report, so the session is rejected before a byte is
transferred, never left as a half-written Zarr) and plans:

- one `encode_ecephys` item per time range of each stream, aligned to whole Zarr chunks
  (`zarr_layout.chunk_ranges`), with the byte range a ranged GET reads, the stream's
  description and the options; its `dest_key` is the store,
  `<asset>/ecephys/ecephys_compressed/<stream>.zarr`;
- every other file of the modality under `<asset>/ecephys/ecephys_clipped/<path>` (compressed or
  copied as usual), the encoded binaries left out, unless `keep_raw` keeps them there zstd'd.

A binary the transformation cannot read (no `.oebin`/`.meta` describes it) is zstd'd as usual
with a warning in the report: never a failure.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from upload_processor.adapters.staging import Entry, SessionSource
from upload_processor.domain.job_settings import TransformationSettings
from upload_processor.domain.plan import PlanItem
from upload_processor.domain.report import Issue
from upload_processor.domain.units import MiB
from upload_processor.ecephys.codec import EcephysOptions
from upload_processor.ecephys.recording import (
    RecordingStream,
    stream_from_spikeglx_meta,
    streams_from_oebin,
)
from upload_processor.ecephys.zarr_layout import byte_range, chunk_ranges

MODALITY = "ecephys"
COMPRESSED = "ecephys_compressed"  # <asset>/ecephys/ecephys_compressed/<stream>.zarr
CLIPPED = "ecephys_clipped"  # <asset>/ecephys/ecephys_clipped/<the other files>
# Source bytes one Map iteration encodes: ~256 MiB is ~11 s of 384 channels at 30 kHz, about
# 2 s of FLAC per core; the raw range, its samples and the encoded chunks stay far below the
# ecephys function's memory (see EcephysTransferFunction in template.yaml).
RANGE_BYTES = 256 * MiB
# A description is read whole into memory; real ones are kilobytes.
MAX_DESCRIPTION_BYTES = 20 * MiB
BINARY_SUFFIXES = (".dat", ".bin")


@dataclass
class Recordings:
    """What the ecephys folder holds for the transformation: the streams to encode (valid
    ones only) and the report entries (errors reject the session, warnings note a fallback)."""

    streams: list[RecordingStream] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


def ecephys_settings(job: dict[str, Any]) -> TransformationSettings | None:
    """The ecephys modality's transformation settings when they select the ecephys
    transformation (an audio codec, task not skipped); None otherwise (today's zstd)."""
    per_modality = (job.get("tasks") or {}).get("modality_transformation_settings") or {}
    task = per_modality.get(MODALITY) if isinstance(per_modality, dict) else None
    if not task or task.get("skip_task"):
        return None
    settings = TransformationSettings.model_validate(task.get("job_settings") or {})
    return settings if settings.ecephys_transformation else None


def options_of(settings: TransformationSettings) -> EcephysOptions:
    """The job settings as the ecephys room's options."""
    return EcephysOptions(
        codec=settings.codec,  # type: ignore[arg-type]  # an audio codec (ecephys_settings)
        level=settings.level,
        chunk_duration_s=settings.chunk_duration_s,
        lsb_correction=settings.lsb_correction,
        keep_raw=settings.keep_raw,
    )


def _issue(rule: str, message: str, file: str, severity: str = "error") -> Issue:
    return Issue(severity=severity, file=file, field=None, rule=rule, message=message)


def _read_text(source: SessionSource, entry: Entry, issues: list[Issue]) -> str | None:
    """A description's text; None (with an error) when it is too large or not UTF-8."""
    if entry.size > MAX_DESCRIPTION_BYTES:
        issues.append(
            _issue(
                "ecephys.description_too_large",
                f"{entry.relative} is {entry.size} bytes; a recording description is at most "
                f"{MAX_DESCRIPTION_BYTES // MiB} MB; stage the file the acquisition software wrote",
                entry.relative,
            )
        )
        return None
    body, _ = source.read(entry.relative)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")  # SpikeGLX writes ASCII; never refuse for a stray byte


def find_recordings(
    source: SessionSource, data: list[Entry], settings: TransformationSettings | None
) -> Recordings:
    """Read and check the ecephys folder's recording descriptions (nothing else is read)."""
    found = Recordings()
    if settings is None:
        return found
    ecephys = [e for e in data if e.relative.startswith(f"{MODALITY}/")]
    sizes = {e.relative: e.size for e in ecephys}
    # binaries a description speaks for (an Open Ephys recording's continuous/ folder, a
    # .meta's .bin): what it says about them is in the report, not "unknown recording"
    claimed: list[str] = []
    for entry in ecephys:
        name = posixpath.basename(entry.relative)
        if name.endswith(".oebin"):
            claimed.append(posixpath.join(posixpath.dirname(entry.relative), "continuous") + "/")
            text = _read_text(source, entry, found.issues)
            if text is not None:
                streams, issues = streams_from_oebin(text, entry.relative, sizes)
                found.streams += streams
                found.issues += issues
        elif name.endswith(".meta"):
            binary = entry.relative[: -len(".meta")] + ".bin"
            if binary not in sizes:
                continue  # a .meta without its binary: archived as a file like any other
            claimed.append(binary)
            text = _read_text(source, entry, found.issues)
            if text is not None:
                stream, issues = stream_from_spikeglx_meta(text, binary, sizes[binary])
                found.issues += issues
                if stream is not None:
                    found.streams.append(stream)
    described = {s.source_key for s in found.streams} | {i.file for i in found.issues}
    for entry in ecephys:
        spoken_for = entry.relative in described or entry.relative.startswith(tuple(claimed))
        if entry.relative.endswith(BINARY_SUFFIXES) and not spoken_for:
            found.issues.append(
                _issue(
                    "ecephys.unknown_recording",
                    f"{entry.relative} is not described by a structure.oebin or SpikeGLX .meta, "
                    "so it is archived zstd-compressed instead of as a Zarr; to archive it as a "
                    "Zarr, stage the recording as its acquisition software wrote it (Open Ephys: "
                    "structure.oebin with continuous/<stream>/continuous.dat; SpikeGLX: the "
                    ".bin with its .meta)",
                    entry.relative,
                    severity="warning",
                )
            )
    found.issues += _name_collisions(found.streams)
    return found


def _name_collisions(streams: list[RecordingStream]) -> list[Issue]:
    """Two streams that would be the same `<name>.zarr`."""
    by_name: dict[str, list[str]] = {}
    for stream in streams:
        by_name.setdefault(stream.name, []).append(stream.source_key)
    return [
        _issue(
            "ecephys.stream_name_collision",
            f"the recordings {' and '.join(sorted(keys))} both have a stream named {name!r}, "
            f"so both would be archived as {COMPRESSED}/{name}.zarr; stage them as separate "
            "sessions (one upload per recording)",
            sorted(keys)[0],
        )
        for name, keys in sorted(by_name.items())
        if len(keys) > 1
    ]


def store_key(asset_name: str, stream: RecordingStream) -> str:
    """The stream's Zarr store in the archive (a key prefix, no trailing slash)."""
    return f"{asset_name}/{MODALITY}/{COMPRESSED}/{stream.name}.zarr"


def clipped_relative(relative: str) -> str:
    """Where a file of the ecephys folder goes under the asset when the transformation runs:
    `ecephys/<path>` -> `ecephys/ecephys_clipped/<path>`."""
    inner = relative[len(MODALITY) + 1 :]
    return f"{MODALITY}/{CLIPPED}/{inner}"


def encode_items(
    *,
    prefix_key: str,
    entry: Entry,
    stream: RecordingStream,
    options: EcephysOptions,
    asset_name: str,
    range_bytes: int = RANGE_BYTES,
) -> list[PlanItem]:
    """One `encode_ecephys` plan item per range of whole chunks of the stream's binary."""
    ranges = chunk_ranges(stream, options, range_bytes)
    description = stream.model_dump(mode="json")
    chosen = options.model_dump(mode="json")
    items = []
    for number, (start_sample, end_sample) in enumerate(ranges, start=1):
        first, last = byte_range(stream, start_sample, end_sample)
        items.append(
            PlanItem(
                source_key=prefix_key,
                size=entry.size,
                etag=entry.etag.strip('"'),
                dest_key=store_key(asset_name, stream),
                action="encode_ecephys",
                codec=options.codec,  # type: ignore[arg-type]
                level=options.level,
                part_number=number,
                part_count=len(ranges),
                range_start=first,
                range_end=last + 1,
                sample_start=start_sample,
                sample_end=end_sample,
                stream=description,
                options=chosen,
            )
        )
    return items
