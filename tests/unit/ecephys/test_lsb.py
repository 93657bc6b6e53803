"""The LSB/offset correction: detected only when it is exact, restored bit for bit through
numcodecs' own filter (what zarr and spikeinterface run on read)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numcodecs import FixedScaleOffset

from upload_processor.ecephys.lsb import LsbCorrection, detect_lsb, filter_is_exact


def _data(lsb: int, offset: int, shape: tuple[int, int] = (3000, 6), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = rng.integers(-200, 200, size=shape)
    return (steps * lsb + offset).astype(np.int16)


def test_scaled_data_is_detected_with_its_factor() -> None:
    correction = detect_lsb(_data(12, 0))
    assert correction.lsb == [12] * 6 and correction.offset == [0] * 6
    assert correction.stream_factor == (12, 0)


def test_a_residue_common_to_all_channels_is_the_offset() -> None:
    assert detect_lsb(_data(12, 5)).stream_factor == (12, 5)
    assert detect_lsb(_data(12, -7)).stream_factor == (12, 5)  # -7 = 12 x (-1) + 5


def test_lsb_one_data_gets_the_identity() -> None:
    correction = detect_lsb(_data(1, 0))
    assert correction.is_identity and correction.zarr_filters() is None


def test_channels_with_different_residues_share_only_their_common_factor() -> None:
    data = _data(12, 0)
    data[:, 2] += 6  # channel 2 is 12n + 6: the stream's factor is 6 (residue 0)
    assert detect_lsb(data).stream_factor == (6, 0)
    data[:, 3] += 1
    assert detect_lsb(data).is_identity


def test_a_factor_the_filter_cannot_restore_exactly_is_refused() -> None:
    """FixedScaleOffset decodes in float64 and truncates: for 75 that lands below an integer."""
    assert not filter_is_exact(75, 0)
    assert detect_lsb(_data(75, 0, shape=(2000, 2))).is_identity
    assert filter_is_exact(12, 0) and filter_is_exact(12, 11)


@settings(max_examples=40, deadline=None)
@given(lsb=st.integers(2, 64), offset=st.integers(0, 63), seed=st.integers(0, 2**16))
def test_whatever_is_detected_round_trips_through_the_real_filter(
    lsb: int, offset: int, seed: int
) -> None:
    data = _data(lsb, offset % lsb, seed=seed)
    correction = detect_lsb(data)
    assert correction.fits(data)
    assert np.array_equal(correction.restore(correction.apply(data)), data)
    factor, residue = correction.stream_factor
    if factor > 1:
        codec = FixedScaleOffset(offset=residue, scale=1 / factor, dtype="<i2", astype="<i2")
        encoded = codec.encode(data)
        assert np.array_equal(np.asarray(encoded).reshape(data.shape), correction.apply(data))
        assert np.array_equal(np.asarray(codec.decode(encoded)).reshape(data.shape), data)


def test_fits_says_when_a_chunk_breaks_the_streams_factor() -> None:
    correction = detect_lsb(_data(12, 0))
    later = _data(12, 0, seed=1)
    assert correction.fits(later)
    later[100, 3] += 1
    assert not correction.fits(later)


def test_values_where_the_filters_subtraction_would_wrap_do_not_fit() -> None:
    correction = LsbCorrection(lsb=[3], offset=[1])
    assert not correction.fits(np.array([[-32768]], dtype=np.int16))  # 3 x n + 1, but -32769 wraps
    assert correction.fits(np.array([[-32765]], dtype=np.int16))


def test_the_model_refuses_inconsistent_values() -> None:
    with pytest.raises(ValueError, match="offset must be in"):
        LsbCorrection(lsb=[12], offset=[12])
    with pytest.raises(ValueError, match="one value per channel"):
        LsbCorrection(lsb=[12, 12], offset=[0])


def test_the_filter_spec_reads_back_as_the_same_correction() -> None:
    correction = LsbCorrection(lsb=[12] * 3, offset=[5] * 3)
    assert LsbCorrection.from_zarr_filters(correction.zarr_filters(), 3) == correction
    assert LsbCorrection.from_zarr_filters(None, 3).is_identity


def test_apply_refuses_a_chunk_that_does_not_fit() -> None:
    with pytest.raises(ValueError, match="not all 12 x n"):
        LsbCorrection(lsb=[12], offset=[0]).apply(np.array([[13]], dtype=np.int16))
