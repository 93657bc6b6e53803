"""S3's multipart limits, and the part size a transfer of a given size can use."""

from __future__ import annotations

import math

from upload_processor.domain.plan import MAX_PARTS
from upload_processor.domain.units import GiB, MiB
from upload_processor.errors import TransferError

MIN_PART_SIZE = 5 * MiB  # S3: every part but the last must be at least this big
MAX_PART_SIZE = 5 * GiB
MAX_COPY_OBJECT_SIZE = 5 * GiB  # larger objects need UploadPartCopy
DEFAULT_PART_SIZE = 16 * MiB
DEFAULT_COPY_PART_SIZE = 512 * MiB


def check_part_size(name: str, value: int) -> None:
    """ValueError unless `value` is a part size S3 accepts."""
    if not MIN_PART_SIZE <= value <= MAX_PART_SIZE:
        raise ValueError(f"{name} must be between 5 MiB and 5 GiB, got {value}")


def part_size_for(size: int, part_size: int, *, source: str, dest: str) -> int:
    """The part size to use: `part_size`, grown to whole MiB if `size` needs > 10,000 parts."""
    # zstd's worst-case expansion is well under 1% plus a small header; allow for it.
    bound = size + size // 128 + MiB
    needed = math.ceil(math.ceil(bound / MAX_PARTS) / MiB) * MiB
    chosen = max(part_size, needed)
    if chosen > MAX_PART_SIZE:
        raise TransferError(
            f"{size} bytes do not fit in {MAX_PARTS} parts of at most 5 GiB",
            source=source,
            dest=dest,
        )
    return chosen
