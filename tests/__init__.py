"""The test suite: a package so `tests.paths` is importable from every test, at any depth."""
