"""What the node reports: rolling tick statistics, the diagnostic status and the ``~/status`` record."""

from __future__ import annotations

import collections
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..session import Decision, Level

STAGES = ("tensors", "inference", "fallback", "safety", "publish", "total")
MAX_VALUE_CHARS = 256  # every string copied into diagnostics is bounded (a 1 MB frame_id stays out)
MAX_MESSAGE_CHARS = 512


def bounded(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


MIN_TICKS = 20  # ticks in the window before its p95 or its late ticks can raise a WARN (one hiccup does not)


class Stats:
    """Per-stage timings (ms) of the last ``size`` ticks, their times, for p50/p99, the achieved rate and
    the ticks that ran past the planning period."""

    def __init__(self, size: int) -> None:
        self.timings: dict[str, collections.deque[float]] = {s: collections.deque(maxlen=size) for s in STAGES}
        self.tick_times: collections.deque[float] = collections.deque(maxlen=size)
        self.late: collections.deque[bool] = collections.deque(maxlen=size)  # past the period it ran at

    def add(self, decision: Decision, now: float, period_ms: float = math.inf) -> None:
        """Record a tick's timings; ``period_ms``: the planning period it ran at (a tick longer is late)."""
        if self.tick_times and now < self.tick_times[-1]:
            self.tick_times.clear()  # the clock jumped back
        self.tick_times.append(now)
        self.late.append(decision.timings_ms.get("total", 0.0) > period_ms)
        for stage, ms in decision.timings_ms.items():
            if stage in self.timings:
                self.timings[stage].append(ms)

    def percentiles(self) -> dict[str, str]:
        out = {}
        for stage, values in self.timings.items():
            if values:
                p50, p99 = np.percentile(np.fromiter(values, float, len(values)), [50, 99])
                out[f"{stage}_ms_p50"], out[f"{stage}_ms_p99"] = f"{p50:.3f}", f"{p99:.3f}"
        return out

    def rate(self) -> float:
        if len(self.tick_times) < 2:
            return 0.0
        span = self.tick_times[-1] - self.tick_times[0]
        return (len(self.tick_times) - 1) / span if span > 0 else 0.0

    def over_period(self) -> int:
        """How many of the window's ticks took longer (``total``) than the planning period they ran at (a
        changed ``planning_frequency`` does not judge earlier ticks by the new period)."""
        return sum(self.late)

    def total_p95(self, min_ticks: int = MIN_TICKS) -> float:
        """p95 of the tick time (ms), 0 before ``min_ticks`` (one hiccup does not raise a WARN)."""
        v = self.timings["total"]
        return float(np.percentile(np.fromiter(v, float, len(v)), 95)) if len(v) >= min_ticks else 0.0


def status_record(decision: Decision) -> str:
    """``~/status`` JSON: the state (a StopReason name, 'planning' while executing), its level and message."""
    return json.dumps({
        "state": "planning" if decision.executing else decision.reason.name.lower(),
        "level": decision.reason.level.name,
        "message": bounded(decision.message, MAX_MESSAGE_CHARS),
        "planner": decision.planner if decision.executing else "",
        "stamp": round(decision.stamp, 6),
    })


def worst(level: Level, message: str, candidates: Mapping[str, Level]) -> tuple[Level, str]:
    """The most severe of (level, message) and the candidate messages (first wins on a tie)."""
    for text, lvl in candidates.items():
        if lvl > level:
            level, message = lvl, text
    return level, message
