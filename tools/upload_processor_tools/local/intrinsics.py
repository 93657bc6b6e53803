"""CloudFormation's intrinsic functions, resolved the way a deploy resolves them.

`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::If` (with the
template's `Conditions`) and `AWS::NoValue`, against the parameters and what has been created
so far; `dependencies` gives the order in which resources must be created.
"""

from __future__ import annotations

import re
from typing import Any

from upload_processor.errors import LocalModeError

# What Ref AWS::NoValue resolves to: the property or list item holding it is left out.
NO_VALUE = object()


class Resolver:
    """Resolves CloudFormation intrinsics against what has been created so far."""

    def __init__(
        self, parameters: dict[str, Any], conditions: dict[str, bool] | None = None
    ) -> None:
        self.parameters = parameters
        self.conditions = conditions or {}
        self.refs: dict[str, Any] = {}
        self.attrs: dict[str, dict[str, Any]] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in map(self, value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and arg == "AWS::NoValue":
                return NO_VALUE
            if key == "Fn::If":
                return self(arg[1] if self.conditions[arg[0]] else arg[2])
            if key == "Ref":
                if arg in self.parameters:
                    return self.parameters[arg]
                return self.refs[arg]
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attrs[logical][attr]
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
                return self._sub(text, extra)
            if key == "Fn::Join":
                return str(arg[0]).join(str(self(v)) for v in self(arg[1]))
            if key == "Fn::Select":
                return self(arg[1])[int(self(arg[0]))]
            if key == "Fn::Split":
                return str(self(arg[1])).split(arg[0])
            if key.startswith("Fn::"):
                raise LocalModeError(f"local mode cannot resolve {key}")
        resolved = {k: self(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _sub(self, text: str, extra: dict[str, Any]) -> str:
        import re

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in extra:
                return str(extra[name])
            if name in self.parameters:
                return str(self.parameters[name])
            if "." in name:
                logical, attr = name.split(".", 1)
                return str(self.attrs[logical][attr])
            return str(self.refs[name])

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def dependencies(self, value: Any) -> set[str]:
        """Logical ids a value refers to."""
        import re

        out: set[str] = set()
        if isinstance(value, list):
            for v in value:
                out |= self.dependencies(v)
        elif isinstance(value, dict):
            for key, arg in value.items():
                if key == "Ref" and isinstance(arg, str):
                    out.add(arg)
                elif key == "Fn::GetAtt":
                    out.add(arg[0] if isinstance(arg, list) else arg.split(".", 1)[0])
                elif key == "Fn::Sub":
                    text = arg if isinstance(arg, str) else arg[0]
                    out |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                    if isinstance(arg, list):
                        out |= self.dependencies(arg[1])
                else:
                    out |= self.dependencies(arg)
        return out
