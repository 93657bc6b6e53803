"""One range's chunks: encoded as zarr would, each verified against its source before it is
returned; a chunk that breaks the stream's correction or does not decode is a fault."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from upload_processor.ecephys import encode as encode_module
from upload_processor.ecephys.codec import CHANNEL_MAJOR_FILTER, EcephysOptions, decode_chunk
from upload_processor.ecephys.encode import encode_range, verify_chunk
from upload_processor.ecephys.lsb import detect_lsb
from upload_processor.ecephys.recording import RecordingStream
from upload_processor.ecephys.zarr_layout import traces_zarray
from upload_processor.errors import EcephysError, EcephysLsbError, EcephysVerificationError
from upload_processor_tools.sample_ecephys import ecephys_samples

CHANNELS = 16


def _stream(samples: np.ndarray) -> RecordingStream:
    return RecordingStream(
        name="probe",
        source_key="rec/continuous.dat",
        format="openephys",
        num_channels=samples.shape[1],
        sampling_rate=30_000.0,
        channel_ids=[str(k) for k in range(samples.shape[1])],
        gains_uV=[0.195] * samples.shape[1],
        offsets_uV=[0.0] * samples.shape[1],
        num_samples=samples.shape[0],
        byte_size=samples.nbytes,
    )


def test_a_range_gives_verified_chunks_with_source_checksums() -> None:
    data = ecephys_samples(0.25, CHANNELS, scale=12)
    stream = _stream(data)
    options = EcephysOptions(chunk_duration_s=0.1)  # 3000-sample chunks: 3 chunks, last partial
    correction = detect_lsb(data)
    chunks = encode_range(data.tobytes(), stream, 0, options, correction)
    assert [c.key for c in chunks] == ["traces_seg0/0.0", "traces_seg0/1.0", "traces_seg0/2.0"]
    meta = traces_zarray(stream, options, correction)
    for index, chunk in enumerate(chunks):
        source = data[index * 3000 : (index + 1) * 3000].tobytes()
        assert chunk.sha256_source == hashlib.sha256(source).hexdigest()
        assert chunk.nbytes_source == len(source)
        decoded = decode_chunk(chunk.data, meta)
        assert decoded.shape == (3000, CHANNELS)  # zarr v2 stores the edge chunk whole
        assert decoded[: len(source) // (2 * CHANNELS)].tobytes() == source
    assert sum(len(c.data) for c in chunks) < data.nbytes / 2.5


def test_a_later_range_starts_at_its_own_chunk_index() -> None:
    data = ecephys_samples(0.3, CHANNELS)
    stream = _stream(data)
    options = EcephysOptions(chunk_duration_s=0.1)
    tail = data[6000:].tobytes()
    chunks = encode_range(tail, stream, 6000, options)
    assert [c.key for c in chunks] == ["traces_seg0/2.0"]


def test_a_chunk_that_breaks_the_streams_correction_is_refused() -> None:
    data = ecephys_samples(0.2, CHANNELS, scale=12)
    correction = detect_lsb(data[:3000])
    data[4500, 5] += 1  # the second chunk is no longer all multiples of 12
    with pytest.raises(
        EcephysLsbError, match=r"chunk 1 \(samples 3000..5999\).*lsb_correction='off'"
    ):
        encode_range(
            data.tobytes(), _stream(data), 0, EcephysOptions(chunk_duration_s=0.1), correction
        )


@pytest.mark.parametrize(("bad", "scale"), [(0, 1), (2, 1), (0, 12), (2, 12)])
def test_a_chunk_that_does_not_decode_to_its_source_is_refused(
    monkeypatch: pytest.MonkeyPatch, bad: int, scale: int
) -> None:
    """The check itself: a codec that corrupts one sample cannot get a chunk through, neither
    a range's first chunk (checked back to its source bytes) nor a later one (checked against
    the samples the codec was given)."""
    data = ecephys_samples(0.3, CHANNELS, scale=scale)
    real = encode_module.encode_given
    calls = []

    def corrupting(given: np.ndarray, options: EcephysOptions) -> bytes:
        calls.append(1)
        if len(calls) - 1 != bad:
            return real(given, options)
        changed = given.copy()
        changed[1000] += 1
        return real(changed, options)

    monkeypatch.setattr(encode_module, "encode_given", corrupting)
    with pytest.raises(EcephysVerificationError, match=rf"traces_seg0/{bad}\.0"):
        encode_range(
            data.tobytes(),
            _stream(data),
            0,
            EcephysOptions(chunk_duration_s=0.1),
            detect_lsb(data),
        )


def test_verify_chunk_compares_with_the_source() -> None:
    data = ecephys_samples(0.1, 4)
    stream = _stream(data)
    options = EcephysOptions(chunk_duration_s=0.1)
    (chunk,) = encode_range(data.tobytes(), stream, 0, options)
    meta = traces_zarray(stream, options, None)
    verify_chunk(chunk.data, data.tobytes(), meta)
    other = data.copy()
    other[0, 0] ^= 1
    with pytest.raises(EcephysVerificationError):
        verify_chunk(chunk.data, other.tobytes(), meta)


@pytest.mark.parametrize(
    ("start", "samples", "extra_bytes", "match"),
    [
        (100, 3000, 0, "chunk boundary"),  # not on a chunk boundary
        (0, 3000, 3, "whole number"),  # a partial time point
        (0, 4000, 0, "whole chunks"),  # a partial chunk that is not the stream's end
    ],
)
def test_a_misaligned_range_is_a_fault(
    start: int, samples: int, extra_bytes: int, match: str
) -> None:
    data = ecephys_samples(0.25, CHANNELS)
    raw = data[:samples].tobytes() + bytes(extra_bytes)
    with pytest.raises(EcephysError, match=match):
        encode_range(raw, _stream(data), start, EcephysOptions(chunk_duration_s=0.1))


def test_wavpack_missing_from_the_runtime_is_a_clear_fault() -> None:
    pytest.importorskip("numcodecs")
    try:
        import wavpack_numcodecs  # noqa: F401
    except ImportError:
        data = ecephys_samples(0.01, 2)
        with pytest.raises(EcephysError, match="glibc"):
            encode_range(data.tobytes(), _stream(data), 0, EcephysOptions(codec="wavpack"))
    else:  # pragma: no cover - where it is installed, it must round-trip
        data = ecephys_samples(0.01, 2)
        assert encode_range(data.tobytes(), _stream(data), 0, EcephysOptions(codec="wavpack"))


def test_the_leak_free_flac_path_writes_and_reads_what_flac_numcodecs_does() -> None:
    """codec._flac_encode/_flac_decode re-run flac-numcodecs' steps to break pyflac's reference
    cycle; their bytes must be the library's, or readers would not read what we write."""
    from flac_numcodecs import Flac

    from upload_processor.ecephys.codec import _flac_decode, _flac_encode, compressor_input

    samples = ecephys_samples(0.2, CHANNELS)
    for data in (samples.reshape(-1), samples, samples[:, :2], samples[:, :1]):
        for codec in (Flac(level=5), Flac(level=1, blocksize=1024)):
            ours = _flac_encode(codec, data)
            assert ours == codec.encode(data)
            assert np.array_equal(_flac_decode(codec, ours), codec.decode(ours))
    # decoding straight into one buffer of the expected size: the same samples; a stream
    # holding more than that is refused
    flat = samples.reshape(-1)
    codec = Flac(level=5)
    ours = _flac_encode(codec, flat)
    assert np.array_equal(_flac_decode(codec, ours, flat.size), flat)
    with pytest.raises(EcephysError, match="not 7 mono samples"):
        _flac_decode(codec, ours, 7)
    # the blocked channel-major copy is the plain transpose
    flat = compressor_input(samples, filtered=True)
    assert np.array_equal(flat, np.ascontiguousarray(samples.T).reshape(-1))


def test_lsb_correction_off_wins_over_a_given_correction_in_chunks_and_metadata() -> None:
    """The job's `lsb_correction="off"` and a correction passed along must not disagree: the
    chunks and the .zarray both go without the correction (only the identity filter that
    keeps FLAC's chunks channel-major)."""
    data = ecephys_samples(0.1, 4, scale=12)
    stream = _stream(data)
    options = EcephysOptions(chunk_duration_s=0.1, lsb_correction="off")
    correction = detect_lsb(data)
    assert correction.stream_factor == (12, 0)
    meta = traces_zarray(stream, options, correction)
    assert meta["filters"] == [CHANNEL_MAJOR_FILTER] and meta["order"] == "F"
    (chunk,) = encode_range(data.tobytes(), stream, 0, options, correction)
    assert decode_chunk(chunk.data, meta).tobytes() == data.tobytes()


def test_the_manifest_checksum_from_parallel_ranges_is_the_files_own() -> None:
    from upload_processor.ecephys.encode import checksum_of, chunk_source_bytes, source_checksum

    data = ecephys_samples(0.35, CHANNELS)
    stream = _stream(data)
    options = EcephysOptions(chunk_duration_s=0.1)
    raw = data.tobytes()
    frame = CHANNELS * 2
    # two "Map iterations": chunks 0-1 and chunks 2-3 (the last chunk short)
    first = encode_range(raw[: 6000 * frame], stream, 0, options)
    second = encode_range(raw[6000 * frame :], stream, 6000, options)
    chunk_bytes = chunk_source_bytes(stream, options)
    checksum = source_checksum([c.sha256_source for c in first + second], chunk_bytes)
    assert checksum == checksum_of(raw, chunk_bytes)
    assert checksum.startswith("chunks-sha256:") and checksum.endswith(f":{3000 * frame}")
    changed = bytearray(raw)
    changed[-1] ^= 1
    assert checksum_of(bytes(changed), chunk_bytes) != checksum
