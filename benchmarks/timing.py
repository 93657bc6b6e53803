"""Timing helpers: best-of-N wall times, timeit style (gc off while timing).

The minimum of several repeats is the figure least disturbed by the rest of the machine;
competing implementations are run in alternation, so that drift (thermal, a neighbour's
job) hits both alike.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping
from typing import Any


def time_once(func: Callable[[], Any], number: int = 1) -> tuple[float, Any]:
    """Seconds per call of `func` averaged over `number` calls, and the last return value."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        result = None
        start = time.perf_counter()
        for _ in range(number):
            result = func()
        elapsed = time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()
    return elapsed / number, result


def autorange(func: Callable[[], Any], min_time: float) -> int:
    """How many calls of `func` make one repeat last at least `min_time` seconds."""
    number = 1
    while True:
        per_call, _ = time_once(func, number)
        if per_call * number >= min_time:
            return number
        # Aim a little past min_time in one step rather than doubling many times.
        number = max(number * 2, int(min_time / max(per_call, 1e-9) * 1.2) + 1)


def best_of_interleaved(
    funcs: Mapping[str, Callable[[], Any]], *, repeat: int, number: int | Mapping[str, int] = 1
) -> dict[str, dict[str, Any]]:
    """Run each function `repeat` times in alternation; best and all seconds per call.

    Returns ``{name: {"best_s", "times_s", "number", "result"}}`` where ``result`` is the last
    return value (for sanity checks by the caller).
    """
    numbers = number if isinstance(number, Mapping) else dict.fromkeys(funcs, number)
    out: dict[str, dict[str, Any]] = {
        name: {"times_s": [], "number": numbers[name], "result": None} for name in funcs
    }
    for _ in range(repeat):
        for name, func in funcs.items():
            seconds, result = time_once(func, numbers[name])
            out[name]["times_s"].append(seconds)
            out[name]["result"] = result
    for entry in out.values():
        entry["best_s"] = min(entry["times_s"])
    return out
