"""The cost of a ``planner: hybrid`` tick, by kind of tick, in held-out closed-loop episodes.

In hybrid mode the ``PlannerSession`` runs the network on every tick and, on some ticks, the GA too
(tens of ms): a periodic comparison every ``fallback_compare_period``, a comparison on every tick once
the goal is within one plan's reach (the final approach), and every tick while the GA fallback drives.
A tick "runs within the planning period or the tick reports the overrun": this measures how long each
kind of tick takes (``Decision.timings_ms["total"]``, the session's own clock for the whole tick) and how
often it exceeds the planning period (1000 / rate ms). The node adds its publishing to that and WARNs
when the p95 of its ticks passes ``compute_warn_fraction`` (default 0.5) of the period.

The episodes are the evaluation's (``plan_ga_training.evaluate``): ``make train``'s config, its held-out
worlds (seeds from ``evaluate.seed_base``), the shipped model, ``driver("hybrid")`` and ``run_episode``
at ``--rate`` Hz. ``PlannerSession.tick`` is wrapped here to see each tick's ``Decision``. Kinds of
executing tick:

- ``network``: the network alone (the GA did not run);
- ``compare``: the GA planned beside the network (periodic comparison) and the network's plan was executed;
- ``final approach compare``: the same with the goal within one plan's reach (a comparison every tick);
- ``fallback``: the GA's plan was executed (the fallback drives, including the tick a comparison takes over);
- ``recovery``: a recovery or escape twist was executed.

The GA of a comparison is cold-started (``_ga_warm_start`` drops the warm start once the network drove);
the fallback's is warm after its first tick. Each tick records which it was (``Decision.ga_warm``: the GA
says whether its plan started from its last one; ``cold`` counts). Each
episode has its own session, so the first GA plan of an episode also builds the GA (once per node in a
deployment): ``first_ga`` counts those ticks.
"""

from __future__ import annotations

import argparse
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from common import MODEL, REPO, save, stats

from plan_ga_ros.session import Decision, PlannerSession
from plan_ga_training.config import load_config
from plan_ga_training.episodes import driver, run_episode
from plan_ga_training.evaluate import at_rate, held_out

CONFIG = REPO / "training" / "configs" / "robust.yaml"
KINDS = ("network", "compare", "final approach compare", "fallback", "recovery")


@dataclass
class Tick:
    kind: str  # one of KINDS, or "stopped" (planned but nothing executed)
    total_ms: float
    ga_ms: float  # timings_ms["fallback"]: the GA's search (0 when it did not run)
    cold: bool  # the GA ran without a warm start
    first_ga: bool  # the GA was built in this tick (the session's first GA plan)


def classify(session: PlannerSession, d: Decision) -> str:
    """The kind of an executing tick (see the module docstring)."""
    if d.planner == "ga":
        return "fallback"
    if d.planner == "recovery":
        return "recovery"
    if "fallback" not in d.timings_ms:
        return "network"
    return "final approach compare" if session.distance_to_go() <= session.plan_reach else "compare"


def record_ticks(ticks: list[Tick]) -> Callable[[], None]:
    """Wrap ``PlannerSession.tick`` so every planning tick lands in ``ticks``; returns the undo."""
    original = PlannerSession.tick

    planned: weakref.WeakSet[PlannerSession] = weakref.WeakSet()  # the sessions whose GA has planned

    def tick(self: PlannerSession, now: float) -> Decision:
        d = original(self, now)
        if d.feed is None:  # gated before planning (goal reached, stale input, ...)
            return d
        ga_ms = d.timings_ms.get("fallback", 0.0)
        kind = classify(self, d) if d.executing else "stopped"
        first = d.ga_warm is not None and self not in planned
        if d.ga_warm is not None:
            planned.add(self)
        ticks.append(Tick(kind, d.timings_ms["total"], ga_ms, d.ga_warm is False, first))
        return d

    PlannerSession.tick = tick  # type: ignore[method-assign]

    def undo() -> None:
        PlannerSession.tick = original  # type: ignore[method-assign]

    return undo


def summary(ticks: list[Tick], n_executing: int, period_ms: float) -> dict:
    total = np.array([t.total_ms for t in ticks])
    s = {"ticks": len(ticks), "share": len(ticks) / max(n_executing, 1), **stats(total),
         "p95_ms": float(np.percentile(total, 95)), "max_ms": float(total.max()),
         "over_period": float(np.mean(total > period_ms)), "cold": sum(t.cold for t in ticks),
         "first_ga": sum(t.first_ga for t in ticks)}
    ga = [t.ga_ms for t in ticks if t.ga_ms > 0]
    if ga:
        s["ga"] = stats(ga)
    return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=40)
    p.add_argument("--rate", type=float, default=20.0)
    args = p.parse_args()
    cfg = at_rate(load_config(CONFIG), args.rate)
    period_ms = 1e3 / args.rate
    ticks: list[Tick] = []
    outcomes: dict[str, int] = {}
    undo = record_ticks(ticks)
    t0 = time.perf_counter()
    try:
        for seed in range(cfg.evaluate.seed_base, cfg.evaluate.seed_base + args.episodes):
            st = held_out(cfg, seed)
            sc = st.scenario
            spec, pcfg, net = driver("hybrid", st.cfg, str(MODEL))
            r = run_episode(sc.world, sc.start, st.goal, spec, pcfg, net, st.cfg.episode, cfg.ga, None, seed=seed)
            outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    finally:
        undo()
    wall = time.perf_counter() - t0
    executing = [t for t in ticks if t.kind != "stopped"]
    kinds = {k: summary(sel, len(executing), period_ms) for k in KINDS if (sel := [t for t in ticks if t.kind == k])}
    r = {"episodes": args.episodes, "rate_hz": args.rate, "period_ms": period_ms, "seed_base": cfg.evaluate.seed_base,
         "outcomes": outcomes, "wall_s": wall, "kinds": kinds,
         "all": summary(executing, len(executing), period_ms) if executing else None}
    stopped = [t for t in ticks if t.kind == "stopped"]
    if stopped:
        r["stopped"] = summary(stopped, len(executing), period_ms)
    print(f"{args.episodes} held-out hybrid episodes at {args.rate:g} Hz ({outcomes}), {len(executing)} executing "
          f"ticks, period {period_ms:.1f} ms, {wall:.0f} s")
    print(f"{'kind':<24}{'ticks':>7}{'share':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'> period':>10}{'cold GA':>9}")
    rows = [*kinds.items(), *([("all executing", r["all"])] if executing else []),
            *([("stopped (planned)", r["stopped"])] if stopped else [])]
    for name, s in rows:
        print(f"{name:<24}{s['ticks']:>7}{s['share']:>8.1%}{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}{s['max_ms']:>9.2f}"
              f"{s['over_period']:>10.1%}{s['cold']:>9}")
    save("hybrid", r)


if __name__ == "__main__":
    main()
