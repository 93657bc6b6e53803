"""Where the repository is, for tests that read its files (template, ASL, events, docs).

One place instead of `Path(__file__).parents[n]` in every test, so moving a test to another
folder never changes what it reads.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
