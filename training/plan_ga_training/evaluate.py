"""Closed-loop evaluation on held-out worlds: ONNX policy, GA expert, hybrid (network + GA fallback) and
naive go-to-goal, each driven through the node's PlannerSession at the episodes' planning rate."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace

import numpy as np

from .compute import imap_progress
from .config import Config, model_spec, planner_config
from .episodes import CONTROLLERS, driver, run_episode
from .randomize import Setting, setting


@dataclass(frozen=True)
class EvalJob:
    controller: str
    seed: int
    cfg: Config
    model_path: str


def held_out(cfg: Config, seed: int) -> Setting:
    """Held-out episode ``seed``: a world of ``evaluate.kinds`` (default ``world.kinds``) at the config's
    costmap and rate (never randomised: the evaluation compares models on fixed settings)."""
    kinds = cfg.evaluate.kinds or cfg.world.kinds
    return setting(replace(cfg, world=replace(cfg.world, kinds=tuple(kinds))), seed)


def _run(job: EvalJob) -> dict:
    st = held_out(job.cfg, job.seed)
    spec, pcfg, network = driver(job.controller, st.cfg, job.model_path)
    sc = st.scenario
    r = run_episode(sc.world, sc.start, st.goal, spec, pcfg, network, st.cfg.episode, job.cfg.ga, seed=job.seed)
    return {"controller": job.controller, "seed": job.seed, "kind": sc.family, "outcome": r.outcome,
            "success": r.success, "collision": r.collision, "timeout": r.timeout, "failed": r.failed,
            "time": r.time, "path_length": r.path_length, "min_clearance": r.min_clearance,
            "final_distance": r.final_distance, "plan_ms_p50": float(np.median(r.plan_ms)) if r.plan_ms else 0.0,
            "planning_ticks": r.planning_ticks, "fallback_ticks": r.fallback_ticks, "planners": r.planners,
            "stops": r.stops, "poses": r.poses[:, :2].round(3).tolist()}


def at_rate(cfg: Config, rate: float | None) -> Config:
    """``cfg`` with its episodes planned at ``rate`` Hz (None: unchanged); ConfigError if the node would refuse it."""
    if rate is None:
        return cfg
    cfg = replace(cfg, episode=replace(cfg.episode, planning_rate=float(rate)))
    planner_config(cfg, model_spec(cfg))
    return cfg


def evaluate(cfg: Config, model_path: str, episodes: int, seed: int, controllers=CONTROLLERS,
             workers: int = 2) -> dict[str, list[dict]]:
    """Per controller, the results of episodes ``seed … seed + episodes - 1`` (sorted by seed)."""
    jobs = [EvalJob(c, seed + i, cfg, model_path) for c in controllers for i in range(episodes)]
    results = list(imap_progress(_run, jobs, workers, "evaluate", backend=cfg.compute, files=[model_path]))
    return {c: sorted((r for r in results if r["controller"] == c), key=lambda r: r["seed"]) for c in controllers}


def summarise(runs: list[dict]) -> dict:
    ok = [r for r in runs if r["success"]]
    n = max(len(runs), 1)
    planning = sum(r["planning_ticks"] for r in runs)
    executed = sum(sum(r["planners"].values()) for r in runs)
    return {
        "episodes": len(runs),
        "success_rate": len(ok) / n,
        "collision_rate": sum(r["collision"] for r in runs) / n,
        "timeout_rate": sum(r["timeout"] for r in runs) / n,
        "failed_rate": sum(r["failed"] for r in runs) / n,  # the session gave the goal up (GOAL_FAILED)
        "time_to_goal_s": float(np.mean([r["time"] for r in ok])) if ok else None,
        "path_length_m": float(np.mean([r["path_length"] for r in ok])) if ok else None,
        "min_clearance_m": float(np.min([r["min_clearance"] for r in runs])) if runs else None,
        "mean_min_clearance_m": float(np.mean([r["min_clearance"] for r in runs])) if runs else None,
        "plan_ms_p50": float(np.median([r["plan_ms_p50"] for r in runs])) if runs else None,
        # Share of planning ticks on which the GA planned (hybrid: the fallback; ga: all of them).
        "fallback_share": sum(r["fallback_ticks"] for r in runs) / planning if planning else None,
        # Share of executed ticks the network's own plan drove.
        "network_share": sum(r["planners"].get("onnx", 0) for r in runs) / executed if executed else None,
    }


def paired_times(a: list[dict], b: list[dict], key: Callable[[dict], Hashable] = lambda r: r["seed"]
                 ) -> list[tuple[float, float]]:
    """(time of ``a``, time of ``b``) on the episodes (matched by ``key``) both succeeded in: a mean over each
    one's own successes would charge the one that also reached the hard worlds for their long times."""
    ta = {key(r): r["time"] for r in a if r["success"]}
    tb = {key(r): r["time"] for r in b if r["success"]}
    return [(ta[k], tb[k]) for k in sorted(ta.keys() & tb.keys())]


def time_ratio(pairs: list[tuple[float, float]]) -> float | None:
    """Mean time of the first over the mean time of the second of ``paired_times`` (None without pairs)."""
    return float(np.mean([a for a, _ in pairs]) / np.mean([b for _, b in pairs])) if pairs else None


def versus_ga(by: dict[str, list[dict]]) -> dict[str, dict]:
    """Per controller other than the GA (when the GA ran on the same seeds): its time to goal over the GA's on
    the episodes both reached (``time_vs_ga``) and how many those are (``time_vs_ga_pairs``)."""
    if "ga" not in by:
        return {}
    out = {}
    for name, runs in by.items():
        if name != "ga":
            pairs = paired_times(runs, by["ga"])
            out[name] = {"time_vs_ga": time_ratio(pairs), "time_vs_ga_pairs": len(pairs)}
    return out


def table(summary: dict[str, dict]) -> str:
    head = f"{'controller':<10}{'success':>9}{'collision':>11}{'timeout':>9}{'failed':>8}{'time s':>8}{'path m':>8}" \
           f"{'min clr m':>11}{'plan ms':>9}{'fallback':>10}"
    lines = [head, "-" * len(head)]
    fmt = lambda v, f: "—" if v is None else format(v, f)  # noqa: E731
    for name, s in summary.items():
        lines.append(f"{name:<10}{s['success_rate']:>9.1%}{s['collision_rate']:>11.1%}{s['timeout_rate']:>9.1%}"
                     f"{s.get('failed_rate', 0.0):>8.1%}{fmt(s['time_to_goal_s'], '>8.1f')}"
                     f"{fmt(s['path_length_m'], '>8.2f')}{fmt(s['min_clearance_m'], '>11.2f')}"
                     f"{fmt(s['plan_ms_p50'], '>9.2f')}{fmt(s.get('fallback_share'), '>10.1%')}")
    versus = [f"{name} {s['time_vs_ga']:.3f} ({s.get('time_vs_ga_pairs', '?')})" for name, s in summary.items()
              if s.get("time_vs_ga") is not None]
    if versus:
        lines.append("time to goal over the GA's, on the episodes both reached: " + ", ".join(versus))
    return "\n".join(lines)


def plot_runs(cfg: Config, by: dict[str, list[dict]], path: str, count: int = 6) -> None:
    """Sample worlds with each controller's driven path, start and goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = [r["seed"] for r in next(iter(by.values()))][:count]
    cols = min(3, len(seeds))
    rows = int(np.ceil(len(seeds) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.2 * rows), squeeze=False)
    colours = {"onnx": "tab:blue", "ga": "tab:orange", "naive": "tab:gray", "hybrid": "tab:green"}
    for ax, seed in zip(axes.ravel(), seeds):
        sc = held_out(cfg, seed).scenario
        world, start, goal = sc.world, sc.start, sc.goal
        ext = [world.origin[0], world.origin[0] + world.costs.shape[1] * world.resolution,
               world.origin[1], world.origin[1] + world.costs.shape[0] * world.resolution]
        ax.imshow(world.costs, origin="lower", extent=ext, cmap="Greys", vmin=0, vmax=100)
        for name, runs in by.items():
            r = next(r for r in runs if r["seed"] == seed)
            p = np.asarray(r["poses"])
            mark = "✓" if r["success"] else r.get("outcome", "timeout")
            ax.plot(p[:, 0], p[:, 1], color=colours.get(name, "k"), lw=1.5, label=f"{name} {mark}")
        ax.plot(*start[:2], "go", ms=7)
        ax.plot(*goal[:2], "r*", ms=12)
        pad = 1.0
        ax.set_xlim(min(start[0], goal[0]) - 2 - pad, max(start[0], goal[0]) + 2 + pad)
        ax.set_ylim(min(start[1], goal[1]) - 2 - pad, max(start[1], goal[1]) + 2 + pad)
        if sc.route is not None:
            ax.plot(sc.route[:, 0], sc.route[:, 1], ":", color="tab:purple", lw=1)
        ax.set_title(f"seed {seed} ({sc.family})", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
        ax.set_aspect("equal")
    for ax in axes.ravel()[len(seeds):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
