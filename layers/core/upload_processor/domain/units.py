"""Size units and the defaults every stage shares, defined once.

`READ_CHUNK` is how much any stream (a source object, a decompressed archive object) is read
at a time: big enough that the per-call cost vanishes, small enough that memory stays flat.
`DEFAULT_LEVEL` is the zstd level of a compress item that names none (the zstd command
line's default): plans, transfers and the resume check must agree on it.
"""

from __future__ import annotations

MiB = 1024 * 1024
GiB = 1024 * MiB

READ_CHUNK = 1 * MiB
DEFAULT_LEVEL = 3
