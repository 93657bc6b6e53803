"""The CLI's command groups (typer + rich), one module each; `cli.py` assembles them."""
