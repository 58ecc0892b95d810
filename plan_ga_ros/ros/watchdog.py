"""The node's watchdog: a wall-time thread that nothing in a tick can block.

It wakes at the deadline of the tick in progress (``max_tick_time`` after its start), at least every
``max_tick_time`` otherwise (so a tick that starts in between is still seen by its deadline), and at
the next diagnostics report. It calls back the node; it never takes the session lock for long.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Tick:
    """One tick under watch (wall time)."""

    start: float
    run_options: Any = None  # the tick's onnxruntime.RunOptions: terminate=True cancels its inference
    fired: bool = False  # the watchdog stopped the robot: the tick's late result is discarded
    done: bool = False


class Watchdog:
    """Calls ``overran(tick)`` when the watched tick passes ``max_tick_time``, ``clock_stopped(message)``
    once when the ROS clock stands still for ``clock_timeout`` wall seconds (and ``clock_runs()`` when it
    moves again), and ``report()`` every ``diagnostics_period``. ``setting(name)`` reads a parameter."""

    def __init__(self, setting: Callable[[str], float], ros_now: Callable[[], float],
                 overran: Callable[[Tick], None], clock_stopped: Callable[[str], None],
                 clock_runs: Callable[[], None], report: Callable[[], None]) -> None:
        self._setting, self._ros_now = setting, ros_now
        self._overran, self._clock_stopped, self._clock_runs, self._report = overran, clock_stopped, clock_runs, report
        self.tick: Tick | None = None
        self.overruns = 0
        self.clock_stopped = ""  # why the clock is considered stopped, while it is
        self._clock_seen = (float("nan"), time.monotonic())  # (ROS time, wall time it was first seen)
        self._next_report = 0.0
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def watch(self) -> Tick:
        """Start watching a new tick."""
        self.tick = Tick(time.monotonic())
        return self.tick

    def report_now(self) -> None:
        """Report at once and follow changed settings (diagnostics_period, max_tick_time)."""
        self._next_report = 0.0
        self._wake.set()

    def stop(self, timeout: float) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping:
            try:
                self._once()
            except Exception as exc:  # the watchdog outlives any bug in a callback
                print(f"watchdog: {exc!r}", flush=True)
                time.sleep(0.1)

    def _once(self) -> None:
        wall = time.monotonic()
        limit = self._setting("max_tick_time")
        wake = wall + limit
        tick = self.tick
        if tick is not None and not tick.done and not tick.fired:
            if wall >= tick.start + limit:
                self.overruns += 1
                self._overran(tick)
            else:
                wake = min(wake, tick.start + limit)
        self._check_clock(wall)
        if wall >= self._next_report:
            self._next_report = wall + self._setting("diagnostics_period")
            self._report()
        self._wake.wait(max(0.0, min(wake, self._next_report) - time.monotonic()))
        self._wake.clear()

    def _check_clock(self, wall: float) -> None:
        ros = self._ros_now()
        if ros != self._clock_seen[0]:
            self._clock_seen = (ros, wall)
            if self.clock_stopped:
                self.clock_stopped = ""
                self._clock_runs()
            return
        still = wall - self._clock_seen[1]
        if not self.clock_stopped and still > self._setting("clock_timeout"):
            self.clock_stopped = (f"the clock has not advanced for {still:.1f} s (wall time); "
                                  "is /clock published? (use_sim_time)")
            self._clock_stopped(self.clock_stopped)
