"""The pipeline stages, one module per state of the upload state machine.

ingest (SQS → job record → execution), gather (metadata, report, plan), transfer (compress
or copy one batch), finalize (seal, verify, notify), and the helpers they share: the archive
guard (lease, manifest, reuse) and the opt-in staging cleanup.
"""
