"""Transfer: move planned objects from the staging bucket into the archive, and verify them.

The package, one module per concern (modelled on s3transfer):

- `route`: `transfer`, one plan item routed by its action (compress, compress_range, copy,
  encode_ecephys);
- `compress`: streaming zstd compression of one object into a multipart upload (`PartWriter`);
- `as_is`: a file zstd does not shrink, stored as is under its plain name instead;
- `chunked`: a file too big for one invocation: `start_chunked` opens its multipart upload
  and plans one range per part, `complete_chunked` seals it, `abort_chunked` frees it;
- `ranges`: one range of a chunked file compressed into one part (`compress_range`);
- `copy`: server-side copy (CopyObject, UploadPartCopy above the copy threshold);
- `ecephys`: one time range of an ecephys stream encoded into its Zarr chunks
  (`encode_ecephys`; the codec is imported lazily, from the ecephys function's layer);
- `verification`: `verify` (the whole archived object) and `verify_part` (one part);
- `result`: `TransferResult`, what a transfer did, carried between states as JSON;
- `source`: reading the planned source, conditioned on its planned ETag;
- `parts`: S3's multipart limits and the part size to use;
- `faults`: what S3's answers mean: permanent faults as `TransferError`, transient ones
  (throttling, 5xx, timeouts) as `TransientError`, the one error the state machine retries;
- `batch`: one Map iteration (`run_batch`), and the results and failures it records. It is
  imported from its module, not from here: it builds on `archive_guard`, which builds on
  this package.

The archive's object format (metadata keys, tree hash, work-area layout) is
`upload_processor.domain.archive`.
"""

from __future__ import annotations

from upload_processor.pipeline.transfer.chunked import (
    abort_chunked,
    complete_chunked,
    start_chunked,
)
from upload_processor.pipeline.transfer.compress import ZSTD_WORKERS
from upload_processor.pipeline.transfer.parts import (
    DEFAULT_COPY_PART_SIZE,
    DEFAULT_PART_SIZE,
    MAX_COPY_OBJECT_SIZE,
    MIN_PART_SIZE,
)
from upload_processor.pipeline.transfer.result import TransferResult
from upload_processor.pipeline.transfer.route import transfer
from upload_processor.pipeline.transfer.verification import verify, verify_part

__all__ = [
    "DEFAULT_COPY_PART_SIZE",
    "DEFAULT_PART_SIZE",
    "MAX_COPY_OBJECT_SIZE",
    "MIN_PART_SIZE",
    "ZSTD_WORKERS",
    "TransferResult",
    "abort_chunked",
    "complete_chunked",
    "start_chunked",
    "transfer",
    "verify",
    "verify_part",
]
