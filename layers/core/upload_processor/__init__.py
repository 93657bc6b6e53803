"""Upload processor core: the domain logic shared by the Lambdas, the CLI and local mode."""

__version__ = "0.1.0"
