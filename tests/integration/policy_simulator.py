"""A small IAM policy evaluator for the write-once tests: moto evaluates a bucket policy without
the request's context (a Condition sees no keys) and ignores whom a statement names, so it cannot
say whether a pipeline role may delete a sealed object. This evaluates what AWS does for a
same-account request: an explicit Deny in the role's policies or the bucket policy wins; else an
Allow in either allows; else it is denied.

It knows the parts of the policy language this template uses: Action/NotAction,
Resource/NotResource, Principal "*" or {"AWS": [role ARNs]}, and the condition operators
StringEquals, StringLike, ArnEquals, ArnLike, Bool and Null (single-valued keys)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """One API call as IAM sees it: who, which action on which resource, and its context keys
    (e.g. {"s3:if-none-match": "*"} for a PutObject with If-None-Match; absent = not sent)."""

    principal: str
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str, *, case_sensitive: bool = True) -> bool:
    if case_sensitive:
        return any(fnmatch.fnmatchcase(value, p) for p in _as_list(patterns))
    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in _as_list(patterns))


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    present = key in context
    if operator == "Null":
        # "true": the key must be absent; "false": present
        return (str(expected).lower() == "true") != present
    if not present:
        return False
    actual = context[key]
    values = [str(v) for v in _as_list(expected)]
    if operator in ("StringEquals", "ArnEquals"):
        return actual in values
    if operator in ("StringLike", "ArnLike"):
        return _matches(values, actual)
    if operator == "Bool":
        return actual.lower() in [v.lower() for v in values]
    raise ValueError(f"the simulator does not know the condition operator {operator}")


def _applies(statement: dict[str, Any], request: Request, *, resource_policy: bool) -> bool:
    if "NotAction" in statement:
        if _matches(statement["NotAction"], request.action, case_sensitive=False):
            return False
    elif not _matches(statement.get("Action", []), request.action, case_sensitive=False):
        return False
    if "NotResource" in statement:
        if _matches(statement["NotResource"], request.resource):
            return False
    elif not _matches(statement.get("Resource", []), request.resource):
        return False
    if resource_policy:
        principal = statement.get("Principal")
        if principal != "*" and not (
            isinstance(principal, dict) and request.principal in _as_list(principal.get("AWS"))
        ):
            return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, expected in keys.items():
            if not _condition_holds(operator, key, expected, request.context):
                return False
    return True


def decide(
    request: Request,
    identity_statements: Iterable[dict[str, Any]],
    resource_statements: Iterable[dict[str, Any]] = (),
) -> str:
    """ "Allow", "ExplicitDeny" or "ImplicitDeny" for a same-account request."""
    matched = [
        (s["Effect"], False)
        for s in identity_statements
        if _applies(s, request, resource_policy=False)
    ] + [
        (s["Effect"], True)
        for s in resource_statements
        if _applies(s, request, resource_policy=True)
    ]
    if any(effect == "Deny" for effect, _ in matched):
        return "ExplicitDeny"
    if any(effect == "Allow" for effect, _ in matched):
        return "Allow"
    return "ImplicitDeny"
