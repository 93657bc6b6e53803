"""Ecephys: raw Open Ephys / SpikeGLX binaries as lossless audio-codec Zarr, in parallel ranges.

Pure, Lambda-safe pieces: parse and validate the recording's own description (`recording`),
detect an exact per-channel LSB/offset (`lsb`), encode and verify chunks (`codec`, `encode`) and
lay them out as the Zarr store spikeinterface writes and reads (`zarr_layout`). Nothing here
knows S3, the plan or the state machine; numcodecs and the codec are imported lazily (they ship
in the ecephys layer, not the core layer).
"""
