"""What aind-data-schema says through ``logging`` and ``warnings``, as report issues.

The library only logs some problems (a duplicated device) and only warns about others (a
name/time mismatch); captured while we call it, each becomes a ``library.warning`` issue, so
nothing it says is lost in CloudWatch noise. An exception the library raises instead of a
validation error (a bug of its own, say an ``AttributeError`` on an ``ExternalDataStream``)
becomes a ``library.crash`` error naming the files it was reading (``library_crash``), never
a stage fault.

Not thread-safe: ``warnings.catch_warnings`` and the temporary logger changes are process-wide.
Lambda runs one invocation per process at a time, and local mode serialises invocations.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from pydantic import BaseModel, ValidationError

from upload_processor.domain.report import Issue
from upload_processor.metadata.wording import SCHEMA, sentence

_LIBRARY_LOGGER = "aind_data_schema"
# What the library says without naming a file or a value, and a rule of ours reports with
# both (or drops where it is not actionable): rules.streams for the active devices.
EXPLAINED_ELSEWHERE: tuple[str, ...] = ("Duplicate active devices were removed",)
logger = logging.getLogger(__name__)


class _ListHandler(logging.Handler):
    """Collects the library's log messages instead of letting them reach the log stream."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


@cache
def _field_deprecation_messages() -> frozenset[str]:
    """Messages pydantic emits when code *reads* a deprecated field of a library model.

    The library reads its own deprecated ``coordinate_system`` fields while validating, so
    these DeprecationWarnings fire for every file and say nothing about the user's data (the
    user-facing "'coordinate_system' is deprecated" warning comes from a validator and is
    kept).
    """
    messages: set[str] = set()
    pending: list[type] = [BaseModel]
    seen: set[type] = set()
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                pending.append(sub)
        if not cls.__module__.startswith("aind_data_schema"):
            continue
        for info in getattr(cls, "model_fields", {}).values():
            message = info.deprecation_message
            if message:
                messages.add(message)
    return frozenset(messages)


@contextmanager
def library_output() -> Iterator[list[str]]:
    """Capture what aind-data-schema logs (WARNING and up) and warns, as a list of texts.

    The list is complete once the ``with`` block has exited.
    """
    said: list[str] = []
    logger = logging.getLogger(_LIBRARY_LOGGER)
    handler = _ListHandler(said)
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield said
        noise = _field_deprecation_messages()
        for warning in caught:
            text = str(warning.message)
            if issubclass(warning.category, DeprecationWarning) and text in noise:
                continue
            said.append(text)
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate
        logger.setLevel(old_level)


def library_issues(said: list[str], file: str | None, context: str | None) -> list[Issue]:
    """Each distinct captured message as a ``library.warning`` issue.

    A warning, not an error: the library accepted the value, but the scientist should check
    what it names. A message in ``EXPLAINED_ELSEWHERE`` is left to the rule that reports it
    with its file and value. The message never says the session is accepted: it may be rejected for
    another reason.
    """
    issues = []
    for text in dict.fromkeys(" ".join(t.split()) for t in said):
        if text.startswith(EXPLAINED_ELSEWHERE):
            continue
        where = f" ({context})" if context else ""
        issues.append(
            Issue(
                severity="warning",
                file=file,
                rule="library.warning",
                message=(
                    f"{SCHEMA} warned{where}: {sentence(text)} A warning, not an error: "
                    "check the value(s) it names."
                ),
            )
        )
    return issues


@contextmanager
def library_crash(files: list[str], doing: str, issues: list[Issue]) -> Iterator[None]:
    """Turn an exception the library raises inside the block into a ``library.crash`` error.

    A ``ValidationError`` (the library's verdict) passes through, for the caller to report
    field by field. Anything else is the library failing on these files: the report names
    them and what was being done, the traceback goes to the log for the operator, and the
    block is left (the caller's result stays unset).
    """
    try:
        yield
    except ValidationError:
        raise
    except Exception as exc:
        logger.exception("aind-data-schema raised while %s (%s)", doing, ", ".join(files))
        named = ", ".join(files) or "the metadata"
        issues.append(
            Issue(
                severity="error",
                file=files[0] if len(files) == 1 else None,
                rule="library.crash",
                message=(
                    f"{SCHEMA} failed while {doing} ({named}): {type(exc).__name__}: "
                    f"{sentence(' '.join(str(exc).split()))} This is a fault of the library on "
                    "content it should accept or refuse: check these files for an unusual "
                    "construct (e.g. an acquisition whose streams are all external), and tell "
                    "the operator, who can report it to aind-data-schema."
                ),
            )
        )
