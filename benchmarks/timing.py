"""Timing: interleaved runs summarised as a median with its min-max, timeit style (gc off).

The median of several runs, not the best: the best flatters whichever side got lucky once,
the median is what a user sees. Competing implementations run in alternation (baseline,
project, baseline, ...), so that drift (heat, a neighbour's job) hits both alike; the min-max
beside the median says how much to trust a ratio.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

MIN_RUNS = 5  # every judged figure is the median of at least this many interleaved runs


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


def spread(values: Sequence[float]) -> dict[str, Any]:
    """``{"median", "min", "max", "n", "values"}`` of a sample of runs."""
    if not values:
        raise ValueError("no runs to summarise")
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "values": list(values),
    }


def interleaved(
    funcs: Mapping[str, Callable[[], Any]], *, repeat: int, number: int | Mapping[str, int] = 1
) -> dict[str, dict[str, Any]]:
    """Run each function `repeat` times in alternation; the `spread` of seconds per call.

    Each entry also carries ``number`` (calls per run) and ``result`` (the last return value,
    for the caller's sanity checks).
    """
    numbers = number if isinstance(number, Mapping) else dict.fromkeys(funcs, number)
    times: dict[str, list[float]] = {name: [] for name in funcs}
    results: dict[str, Any] = {}
    for _ in range(repeat):
        for name, func in funcs.items():
            seconds, results[name] = time_once(func, numbers[name])
            times[name].append(seconds)
    return {
        name: {**spread(times[name]), "number": numbers[name], "result": results[name]}
        for name in funcs
    }


def per_second(amount: float, seconds: dict[str, Any]) -> dict[str, Any]:
    """A spread of seconds turned into a spread of `amount` per second (min and max swap)."""
    return spread([amount / s for s in seconds["values"]])


def fmt(value: dict[str, Any], unit: str, scale: float = 1.0, digits: int = 0) -> str:
    """``"123 MiB/s (118-130)"``: the median and the min-max of a spread."""
    median, low, high = (value[k] * scale for k in ("median", "min", "max"))
    return f"{median:.{digits}f} {unit} ({low:.{digits}f}-{high:.{digits}f})"
