"""Exact per-channel LSB/offset correction: divide out a constant integer factor before encoding.

Open Ephys may write samples that are all multiples of a constant (data scaled x12); the audio
codecs' prediction then loses its gain. `detect_lsb` finds, per channel, the offset and the gcd
of the differences; the correction is applied only when it is exact, and is undone on decode,
so the original int16 values come back bit for bit.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel


class LsbCorrection(BaseModel):
    """Per-channel `x = lsb * y + offset`; lsb=1, offset=0 is the identity."""

    lsb: list[int]
    offset: list[int]

    def apply(self, chunk: np.ndarray) -> np.ndarray:
        """`(chunk - offset) // lsb` per channel (time x channels)."""
        raise NotImplementedError

    def restore(self, chunk: np.ndarray) -> np.ndarray:
        """`chunk * lsb + offset` per channel, back to the original int16 values."""
        raise NotImplementedError


def detect_lsb(samples: np.ndarray) -> LsbCorrection:
    """Per channel integer offset and LSB (gcd of differences) of `samples` (time x channels)."""
    raise NotImplementedError
