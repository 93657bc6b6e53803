"""One help style for every command, the AWS CLI's: `submit DIR`, `status [JOB]`, `--since SINCE`.

typer 0.29 renders a required argument as `{dir}`, an optional one as `[[JOB]]`, a flag with a
`<bool>` type and an option with a `<str>` type beside any metavar. `apply()` patches its help
renderer once, here, rather than setting a metavar on every parameter of every command: flags
show no type, options show their metavar (default: the option's name in capitals), arguments
their name in capitals, brackets only when optional.
"""

from __future__ import annotations

from typing import Any


def apply() -> None:
    """Patch typer's help rendering (idempotent)."""
    from typer.core import TyperArgument, TyperOption

    if getattr(TyperOption, "_upload_processor_style", False):
        return
    option_type = TyperOption.display_type_rich

    def option_display(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag:
            return None
        if self.metavar is None and self.name:
            return self.name.upper()
        return option_type(self, ctx)

    def argument_display(self: TyperArgument, ctx: Any) -> str | None:
        return None

    def usage_name(self: TyperArgument) -> str:
        name = (self.metavar or self.name or "").strip("[]").upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def rich_name(self: TyperArgument) -> str:
        return (self.metavar or self.name or "").strip("[]").upper()

    TyperOption.display_type_rich = option_display  # type: ignore[method-assign]
    TyperArgument.display_type_rich = argument_display  # type: ignore[method-assign]
    TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]
    TyperArgument._rich_display_name = rich_name  # type: ignore[method-assign]
    TyperOption._upload_processor_style = True  # type: ignore[attr-defined]
