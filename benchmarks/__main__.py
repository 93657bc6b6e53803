"""`python -m benchmarks [--quick | --full] [--only NAME] [--size-mb N] [--json PATH]`."""

from __future__ import annotations

from benchmarks.cli import main

raise SystemExit(main())
