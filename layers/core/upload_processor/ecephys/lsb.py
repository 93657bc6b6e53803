"""Exact LSB/offset correction: divide out a constant integer factor before encoding.

Open Ephys writes Neuropixels samples as ADC steps times ~12 counts; when every sample of a
stream is `lsb * y + offset` the audio codecs' prediction loses its gain (measured: FLAC 2.65x
instead of 3.54x on the same data), so the factor is divided out first.

Why one factor per stream, stored as numcodecs' `FixedScaleOffset` filter: the user's
`spikeinterface.read_zarr(...).get_traces()` and a bare `zarr.open(...)[:]` must return the
original int16 values, so the correction has to live in the array's codec pipeline, which
zarr applies on read with no code of ours installed. A built-in numcodecs filter is the only
way to get that, and its configuration is one scalar offset and scale per array (it flattens
the chunk), so the correction is one `lsb`/`offset` for all channels and all chunks of the
stream. Two conditions keep it exact:

- the filter decodes `y / (1/lsb) + offset` in float64 and truncates: for some `lsb` (75, 77,
  91, ...) that lands a hair below an integer; `filter_is_exact` checks every int16 value the
  correction can produce (at most 65 536 / lsb of them) and refuses the correction otherwise;
- it is detected on a sample, and parallel ranges cannot see each other: every chunk is
  checked before encoding (`fits`) and a chunk that does not fit raises `EcephysLsbError`
  (the stream is then encoded with `lsb_correction="off"`), and every chunk is decoded
  through the same filter and compared with its source before the asset is sealed.

The model keeps a value per channel (what `detect_lsb` sees per channel is reported), but
`stream_factor` is what the store uses: the gcd of all channels' factors, with one residue.
numpy is imported inside the functions: the core layer imports this module without numpy.
"""

from __future__ import annotations

import math
from functools import reduce
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, model_validator

if TYPE_CHECKING:
    import numpy as np

INT16_MIN, INT16_MAX = -32768, 32767


class LsbCorrection(BaseModel):
    """`x = lsb * y + offset` for every sample `x` of each channel; lsb=1, offset=0 is the identity.

    All channels carry the same `lsb` and `offset` (one filter per array, see the module's
    docstring); the lists keep the per-channel shape the manifest reports.
    """

    lsb: list[int] = Field(
        description="Per channel: the integer step every sample is a multiple of"
    )
    offset: list[int] = Field(description="Per channel: the residue, 0 <= offset < lsb")

    @model_validator(mode="after")
    def _consistent(self) -> LsbCorrection:
        if len(self.lsb) != len(self.offset):
            raise ValueError("lsb and offset need one value per channel each")
        if any(v < 1 for v in self.lsb):
            raise ValueError("lsb must be >= 1")
        if any(not 0 <= o < v for v, o in zip(self.lsb, self.offset, strict=True)):
            raise ValueError("offset must be in [0, lsb)")
        return self

    @classmethod
    def identity(cls, num_channels: int) -> LsbCorrection:
        """No correction."""
        return cls(lsb=[1] * num_channels, offset=[0] * num_channels)

    @property
    def is_identity(self) -> bool:
        """True when nothing is divided out."""
        return all(v == 1 for v in self.lsb)

    @property
    def stream_factor(self) -> tuple[int, int]:
        """The one `(lsb, offset)` the store's filter applies to every channel."""
        return self.lsb[0], self.offset[0]

    def split(self, chunk: np.ndarray) -> np.ndarray | None:
        """`y` with `chunk == lsb * y + offset` sample for sample (int16, same shape: what the
        filter's encode yields), or None when some sample is not of that form, or is below
        `INT16_MIN + offset` (where the filter's int16 `x - offset` would wrap).

        One floor division by a constant and one multiply-add check, in int16 (numpy divides
        by a constant without a division instruction; `%` costs 100x more): the check cannot
        pass by wrapping (`lsb * y + offset` is within `lsb` below the sample).
        """
        import numpy as np

        lsb, offset = self.stream_factor
        if lsb == 1:
            return chunk
        if offset and int(chunk.min(initial=0)) < INT16_MIN + offset:
            return None
        y = (chunk - np.int16(offset)) // np.int16(lsb)
        if not np.array_equal(y * np.int16(lsb) + np.int16(offset), chunk):
            return None
        return y

    def fits(self, chunk: np.ndarray) -> bool:
        """Every sample of `chunk` (time x channels) is `lsb * y + offset` exactly (see `split`)."""
        return self.split(chunk) is not None

    def apply(self, chunk: np.ndarray) -> np.ndarray:
        """`(chunk - offset) / lsb` per sample, int16 (the filter's encode of a chunk that fits);
        ValueError when the chunk does not fit."""
        y = self.split(chunk)
        if y is None:
            raise ValueError(
                f"the chunk is not all {self.stream_factor[0]} x n + {self.stream_factor[1]}"
            )
        return y

    def restore(self, chunk: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """`chunk * lsb + offset`, back to the original int16 values (what the filter's decode
        gives for every value when `filter_is_exact`); written into `out` when given (one pass
        from a strided view into a contiguous buffer)."""
        import numpy as np

        lsb, offset = self.stream_factor
        if lsb == 1:
            if out is None:
                return chunk
            np.copyto(out, chunk)
            return out
        if out is None:
            return chunk * np.int16(lsb) + np.int16(offset)
        np.multiply(chunk, np.int16(lsb), out=out)
        if offset:
            out += np.int16(offset)
        return out

    @classmethod
    def from_zarr_filters(
        cls, filters: list[dict[str, Any]] | None, num_channels: int
    ) -> LsbCorrection:
        """The correction a `.zarray`'s `filters` hold (inverse of `zarr_filters`)."""
        if not filters:
            return cls.identity(num_channels)
        (spec,) = filters
        if spec.get("id") != "fixedscaleoffset":
            raise ValueError(f"not an LSB correction filter: {spec}")
        lsb = round(1 / float(spec["scale"]))
        return cls(lsb=[lsb] * num_channels, offset=[int(spec["offset"])] * num_channels)

    def zarr_filters(self) -> list[dict[str, object]] | None:
        """The `.zarray` `filters` entry that undoes the correction on read (None: identity)."""
        lsb, offset = self.stream_factor
        if lsb == 1:
            return None
        return [
            {
                "id": "fixedscaleoffset",
                "offset": offset,
                "scale": 1 / lsb,
                "dtype": "<i2",
                "astype": "<i2",
            }
        ]


def filter_is_exact(lsb: int, offset: int) -> bool:
    """numcodecs' `FixedScaleOffset(offset, 1/lsb)` decodes every int16 `lsb * y + offset` to
    itself (its float64 decode truncates; for some factors it lands a hair below)."""
    import numpy as np
    from numcodecs import FixedScaleOffset

    if lsb == 1:
        return True
    low = INT16_MIN + offset  # below it, the filter's int16 `x - offset` wraps (see `fits`)
    x = np.arange(low + ((offset - low) % lsb), INT16_MAX + 1, lsb).astype(np.int16)
    codec = FixedScaleOffset(offset=offset, scale=1 / lsb, dtype="<i2", astype="<i2")
    back = np.asarray(codec.decode(codec.encode(x))).view(np.int16)
    return bool(np.array_equal(back, x))


def detect_lsb(samples: np.ndarray) -> LsbCorrection:
    """The exact correction `samples` (time x channels int16) allow, or the identity.

    Per channel: the gcd of the differences from its first sample. The stream's factor is the
    gcd over all channels and of the differences between their first samples (one residue for
    all), kept only when it is > 1 and numcodecs' filter restores it exactly.
    """
    import numpy as np

    channels = samples.shape[1]
    if samples.shape[0] < 2:
        return LsbCorrection.identity(channels)
    data = samples.astype(np.int64)
    first = data[0]
    per_channel = [int(np.gcd.reduce(np.abs(data[:, c] - first[c]))) for c in range(channels)]
    across = int(np.gcd.reduce(np.abs(first - first[0]))) if channels > 1 else 0
    factor = reduce(math.gcd, per_channel, across)
    if factor <= 1:
        return LsbCorrection.identity(channels)
    offset = int(first[0]) % factor
    if not filter_is_exact(factor, offset):
        return LsbCorrection.identity(channels)
    return LsbCorrection(lsb=[factor] * channels, offset=[offset] * channels)
