"""The tools around the runtime: the `upload-processor` CLI, local mode, sample sessions.

Installed for users and developers by pyproject.toml; never shipped in the Lambda layer
(layers/core holds the runtime package only).
"""
