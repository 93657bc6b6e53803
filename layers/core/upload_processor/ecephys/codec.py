"""The ecephys options and the numcodecs codec they select; one chunk encoded and decoded.

The chunk's stored bytes are exactly what zarr writes for it (the array's filters, then its
compressor), so zarr and spikeinterface read the chunks this module writes without any code
of ours: FLAC through `flac-numcodecs` (registered by its `numcodecs.codecs` entry point),
WavPack through `wavpack-numcodecs`, zstd through numcodecs itself.

numpy, numcodecs and the codec packages are imported inside the functions that need them:
they ship in the ecephys layer, not the core layer, and importing this module must not need
them.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from upload_processor.ecephys.lsb import LsbCorrection
from upload_processor.errors import EcephysError

if TYPE_CHECKING:
    import numpy as np

# flac-numcodecs lets libFLAC use blocks of up to 16384 samples (the FLAC subset's limit
# above 48 kHz) only when told a rate above 48 kHz; the rate means nothing else here (the
# samples are not audio). Measured on 1 s x 384-channel chunks: 0.4 % smaller and ~15 %
# faster to decode than 4608-sample blocks.
FLAC_SAMPLE_RATE = 96_000
# each codec's level when the job gives none (FLAC 5: libFLAC's default, measured best ratio
# per second; WavPack 3: what AIND uses; zstd 3: today's archive)
DEFAULT_LEVEL = {"flac": 5, "wavpack": 3, "zstd": 3}


class EcephysOptions(BaseModel):
    """`modality_transformation_settings.ecephys.job_settings`: how ecephys binaries are stored."""

    model_config = ConfigDict(extra="forbid")

    codec: Literal["flac", "wavpack", "zstd"] = "flac"
    level: int | None = Field(default=None, description="Codec level; None = the codec's default")
    chunk_duration_s: float = Field(default=1.0, gt=0, le=60)
    lsb_correction: Literal["auto", "off"] = "auto"
    keep_raw: bool = False


def effective_correction(
    options: EcephysOptions, correction: LsbCorrection | None
) -> LsbCorrection | None:
    """The correction the store really uses: none when the job says `lsb_correction="off"` or
    the correction is the identity. The chunks and the `.zarray` both follow this, so they can
    never disagree."""
    if options.lsb_correction == "off" or correction is None or correction.is_identity:
        return None
    return correction


# numcodecs' FixedScaleOffset with scale 1 and offset 0: the identity on int16. The FLAC store
# names it when no LSB correction is active only for the flattening it does: it flattens the
# chunk in memory order ('A'), so with the array's `order: "F"` the compressor gets the chunk
# channel by channel (each channel's 1 s in time order) instead of the 384 channels interleaved;
# FLAC's predictor and its Rice partitions then follow one channel in time (measured: 0.5 %
# smaller on the benchmark's LSB-1 data, what lifts it over the 1.25x goal).
CHANNEL_MAJOR_FILTER: dict[str, object] = {
    "id": "fixedscaleoffset",
    "offset": 0,
    "scale": 1,
    "dtype": "<i2",
    "astype": "<i2",
}


def store_filters(
    options: EcephysOptions, correction: LsbCorrection | None
) -> list[dict[str, object]] | None:
    """The traces array's `.zarray` `filters`: the LSB correction's filter when one is active,
    else, for FLAC, the identity filter that makes zarr hand the codec the chunk channel-major
    (see `CHANNEL_MAJOR_FILTER`); None for zstd/WavPack without a correction. Whenever there is
    a filter, the array's order is "F" (`array_order`)."""
    active = effective_correction(options, correction)
    if active is not None:
        return active.zarr_filters()
    if options.codec == "flac":
        return [dict(CHANNEL_MAJOR_FILTER)]
    return None


def array_order(filters: list[dict[str, object]] | None) -> str:
    """The `.zarray` `order`: "F" (channel-major chunks) when a filter flattens the chunk for the
    codec, else "C" (a codec given the 2-D chunk flattens it itself, in C order)."""
    return "F" if filters else "C"


def level_of(options: EcephysOptions) -> int:
    """The codec level `options` mean (the codec's default when none is given)."""
    return DEFAULT_LEVEL[options.codec] if options.level is None else options.level


def compressor_config(options: EcephysOptions) -> dict[str, Any]:
    """The compressor's numcodecs config (`.zarray` `compressor`), without importing the codec:
    the sealing step writes the metadata from the core layer. For FLAC and
    zstd equal to `compressor_for(options).get_config()` (a unit test holds it)."""
    level = level_of(options)
    if options.codec == "flac":
        return {
            "id": "flac",
            "tmpdir": None,
            "level": level,
            "blocksize": None,
            "sample_rate": FLAC_SAMPLE_RATE,
        }
    if options.codec == "wavpack":
        # the other WavPack parameters at their defaults: numcodecs passes the config's keys
        # to `WavPack(**config)`, so a reader gets the same codec
        return {"id": "wavpack", "level": level}
    return {"id": "zstd", "level": level, "checksum": False}


def compressor_for(options: EcephysOptions) -> Any:
    """The numcodecs compressor (a `numcodecs.abc.Codec`) for `options`."""
    level = level_of(options)
    if options.codec == "flac":
        from flac_numcodecs import Flac

        return Flac(level=level, sample_rate=FLAC_SAMPLE_RATE)
    if options.codec == "wavpack":
        try:
            from wavpack_numcodecs import WavPack
        except ImportError as exc:
            raise EcephysError(
                "codec 'wavpack' needs wavpack-numcodecs, which this runtime does not ship (it "
                "bundles libwavpack for glibc 2.35 and 2.39 only; Lambda's python3.12 has "
                "2.34): use codec 'flac' (lossless too) or 'zstd'"
            ) from exc
        return WavPack(level=level)
    from numcodecs import Zstd

    return Zstd(level=level)


def _flac_encode(codec: Any, data: np.ndarray) -> bytes:
    """`Flac.encode` (flac-numcodecs 0.1.2, the same steps and libFLAC settings) without its leak
    and without its copies.

    pyflac's encoder and decoder hold a cffi handle to themselves, a cycle the garbage
    collector cannot see: every `Flac.encode`/`decode` keeps its whole buffer alive for the
    life of the process (measured: +20 MB per decoded 1 s x 384-channel chunk), which would
    make an iteration's memory grow with the file. Same bytes out; the cycle is broken after.

    pyflac's `process` copies the int16 samples to int32 twice (`ascontiguousarray` of a
    flattened copy, then `astype`); here once, and libFLAC reads that array in place.
    """
    import numpy as np
    from pyflac._encoder import ffi, lib
    from pyflac.encoder import StreamEncoder

    # time x 1 or 2 channels (more are flattened), as flac-numcodecs encodes them
    samples = np.ascontiguousarray(codec._prepare_data(data), dtype=np.int32)
    blocksize = min(len(samples), codec.max_blocksize) if len(samples) > 16 else 0
    if codec.blocksize is not None:
        blocksize = min(codec.blocksize, codec.max_blocksize)
    # into memory, not a temporary file (8 ms per 8 MB chunk): with a seek and a tell callback
    # libFLAC rewrites STREAMINFO at the end exactly as it does in a file
    out = io.BytesIO()
    encoder = StreamEncoder(
        sample_rate=codec.sample_rate,
        write_callback=lambda buffer, _n, _samples, _frame: out.write(buffer),
        seek_callback=out.seek,
        tell_callback=out.tell,
        compression_level=codec.compression_level,
        blocksize=blocksize,
    )
    try:
        # pyflac's `process` for one 16-bit buffer, minus its int32 copy
        encoder._channels = samples.shape[1]
        encoder._bits_per_sample = 16
        encoder._init()
        pointer = ffi.from_buffer("int32_t[]", samples)
        try:
            ok = lib.FLAC__stream_encoder_process_interleaved(
                encoder._encoder, pointer, len(samples)
            )
        finally:
            ffi.release(pointer)
        if not ok:
            raise EcephysError(f"libFLAC could not encode the chunk: {encoder.state}")
        if not encoder.finish():
            raise EcephysError(f"libFLAC could not finish the chunk: {encoder.state}")
    finally:
        encoder.write_callback = encoder.seek_callback = encoder.tell_callback = None
        del encoder._encoder_handle
    return out.getvalue()


def _flac_decode(codec: Any, data: bytes, size: int | None = None) -> np.ndarray:
    """`Flac.decode` without its leak (see `_flac_encode`). With `size` (the samples a mono
    stream should hold), the frames are copied straight into one flat int16 array instead of
    being stacked at the end (one copy of the chunk less); a stream holding more raises
    `EcephysError`, one holding fewer comes back short."""
    import numpy as np
    from flac_numcodecs.flac import FlacNumpyDecoder
    from pyflac._decoder import lib
    from pyflac.decoder import DecoderState

    with TemporaryDirectory(dir=codec.tmpdir) as tmp:
        path = Path(tmp) / "tmp.flac"
        path.write_bytes(data)
        decoder = FlacNumpyDecoder(path)
        try:
            if size is None:
                decoder.process()
                return decoder.decoded_data
            out = np.empty(size, dtype=np.int16)
            filled, fits = 0, True

            def write(frame: np.ndarray, _rate: int, channels: int, samples: int) -> None:
                # an exception here would only be printed by cffi: note the misfit instead
                nonlocal filled, fits
                fits = fits and channels == 1 and filled + samples <= size
                if fits:
                    out[filled : filled + samples] = frame[:, 0]
                    filled += samples

            decoder.write_callback = write
            ok = lib.FLAC__stream_decoder_process_until_end_of_stream(decoder._decoder)
            if decoder.state != DecoderState.END_OF_STREAM and not ok:
                raise EcephysError(f"libFLAC could not decode the chunk: {decoder.state}")
            decoder.finish()
            if not fits:
                raise EcephysError(f"the FLAC stream is not {size} mono samples")
            return out[:filled]
        finally:
            decoder.decoded_data_list = []
            decoder.decoded_data = None
            del decoder._decoder_handle


def _pipeline(meta: dict[str, Any]) -> tuple[list[Any], Any]:
    """The filters and the compressor a `.zarray` names, from numcodecs' registry (what zarr uses)."""
    from numcodecs import get_codec

    filters = [get_codec(dict(f)) for f in meta.get("filters") or []]
    compressor = get_codec(dict(meta["compressor"])) if meta.get("compressor") else None
    return filters, compressor


def encode_chunk(
    samples: np.ndarray, options: EcephysOptions, correction: LsbCorrection | None
) -> bytes:
    """One Zarr chunk's stored bytes of `samples` (time x channels int16, the chunk's full
    shape: an edge chunk is padded by the caller, as zarr v2 stores edge chunks whole).

    The correction is applied in integer arithmetic (equal to the filter's encode for a chunk
    that `fits`; the caller checks, and the decode verifies), then the compressor encodes the
    chunk as zarr hands it over: flattened channel-major when a filter ran, else time x channels.
    """
    import numpy as np

    data = np.ascontiguousarray(samples, dtype=np.int16)
    active = effective_correction(options, correction)
    values = active.apply(data) if active is not None else data
    return encode_values(values, options, filtered=bool(store_filters(options, correction)))


def encode_values(values: np.ndarray, options: EcephysOptions, *, filtered: bool) -> bytes:
    """The compressor's part of `encode_chunk`: `values` are the chunk (time x channels) after
    the filters' arithmetic (`filtered`: the array has a filter, its order is "F", and zarr
    hands the compressor the filter's flat output: the chunk channel by channel)."""
    return encode_given(compressor_input(values, filtered=filtered), options)


# samples transposed per block: a block of rows stays in cache while its columns are written
# (1 s x 384 channels: 22 ms against 37 ms for one `.T` copy)
_TRANSPOSE_BLOCK = 256


def compressor_input(values: np.ndarray, *, filtered: bool) -> np.ndarray:
    """What zarr hands the compressor for a chunk whose filters' arithmetic gave `values` (time
    x channels int16): with a filter (order "F") the flat chunk channel by channel, contiguous;
    without one the chunk itself."""
    import numpy as np

    values = np.asarray(values, dtype=np.int16)
    if not filtered:
        return np.ascontiguousarray(values)
    length, channels = values.shape
    out = np.empty((channels, length), dtype=np.int16)
    for t in range(0, length, _TRANSPOSE_BLOCK):
        out[:, t : t + _TRANSPOSE_BLOCK] = values[t : t + _TRANSPOSE_BLOCK].T
    return out.reshape(-1)


def encode_given(data: np.ndarray, options: EcephysOptions) -> bytes:
    """The compressor's bytes for `data`, what `compressor_input` gives."""
    compressor = compressor_for(options)
    if options.codec == "flac":
        return _flac_encode(compressor, data)
    return bytes(compressor.encode(data))


def decode_compressed(data: bytes, meta: dict[str, Any]) -> np.ndarray:
    """The compressor's output for one stored chunk, before the filters: flat int16."""
    import numpy as np

    _, compressor = _pipeline(meta)
    if compressor is None:
        out: Any = data
    elif compressor.codec_id == "flac":
        size = math.prod(meta["chunks"]) if meta.get("filters") else None  # flat: mono
        out = _flac_decode(compressor, data, size)
    else:
        out = compressor.decode(data)
    return np.frombuffer(np.ascontiguousarray(out), dtype=np.dtype(meta["dtype"]))


def decode_chunk(data: bytes, meta: dict[str, Any]) -> np.ndarray:
    """The int16 samples (time x channels, the chunk's full shape) of one stored chunk, decoded
    exactly as zarr decodes it; `meta` is the array's `.zarray`."""
    import numpy as np

    filters, compressor = _pipeline(meta)
    if compressor is None:
        out: Any = data
    elif compressor.codec_id == "flac":
        out = _flac_decode(compressor, data)
    else:
        out = compressor.decode(data)
    for codec in reversed(filters):
        out = codec.decode(out)
    flat = np.frombuffer(np.ascontiguousarray(out), dtype=np.dtype(meta["dtype"]))
    return flat.reshape(tuple(meta["chunks"]), order=meta.get("order", "C"))
