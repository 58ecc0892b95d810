"""The robustness suite: ``plan-ga-train evaluate --suite robustness``.

Runs the controllers (onnx, ga, naive, hybrid) through the node's PlannerSession (``run_episode``)
over a matrix of world family × costmap inflation radius × planning rate, on seeds that no
training range of the config uses, plus the hand-made scenes of ``plan_ga_ros.sim.scenes``. Every
cell of a family uses the same seeds, so its worlds are the same across the columns and only the
settings differ. Episodes run through the project's parallel runner; each finished one is appended
to a ``.jobs.jsonl`` file next to the JSON, so an interrupted suite resumes where it stopped.

Writes a JSON (per-episode results, per-cell summaries, issue 13's criteria), a heat map (success
per cell for ONNX, GA and their ratio), a markdown report (``docs/ROBUSTNESS.md``) and a block for
the model card.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from plan_ga_ros import parameters
from plan_ga_ros.sim.scenes import SCENES, make_scene
from plan_ga_ros.sim.world import BASE_KINDS, NEW_FAMILIES, Scenario, make_scenario

from .compute import imap_progress
from .config import Config, ConfigError
from .episodes import CONTROLLERS, driver, run_episode
from .evaluate import at_rate, paired_times, summarise, time_ratio

GENERATOR = "generator"  # the original generator's mix of kinds (BASE_KINDS), whatever a config trains on
FAMILIES = (GENERATOR, *NEW_FAMILIES)
SCENE_PREFIX = "scene:"
REPO = Path(__file__).resolve().parents[2]
# Issue 13's bar for the shipped model.
CELL_RATIO, OVERALL_RATIO, LONG_ROUTE_SUCCESS = 0.90, 0.95, 0.90
# Issue 14's bar for hybrid (the network with the GA fallback) against the GA alone.
HYBRID_NETWORK_SHARE, HYBRID_TIME_RATIO = 0.90, 1.10


@dataclass(frozen=True)
class SuiteConfig:
    families: tuple[str, ...] = FAMILIES
    inflation_radii: tuple[float, ...] = (0.35, 0.55, 0.8, 1.0)
    rates: tuple[float, ...] = (10.0, 20.0)
    episodes_per_cell: int = 40
    seed_base: int = 900_000
    controllers: tuple[str, ...] = ("onnx", "ga", "naive", "hybrid")
    scenes: tuple[str, ...] = tuple(SCENES)
    scene_repeats: int = 1  # each scene is one world; repeats vary the GA's and the noise's seeds

    @property
    def seeds(self) -> range:
        return range(self.seed_base, self.seed_base + max(self.episodes_per_cell, self.scene_repeats))


@dataclass(frozen=True)
class SuiteJob:
    controller: str
    family: str  # a family of FAMILIES, or "scene:<name>"
    inflation: float
    rate: float
    seed: int
    cfg: Config
    model_path: str

    @property
    def key(self) -> str:
        return f"{self.controller}|{self.family}|{self.inflation:g}|{self.rate:g}|{self.seed}"


# ---------------------------------------------------------------- seeds
def training_seed_ranges(cfg: Config) -> dict[str, range]:
    """The seed ranges the config's pipeline uses: the GA dataset, each DAgger round, the held-out evaluation."""
    out = {"dataset": range(cfg.dataset.seed_base, cfg.dataset.seed_base + cfg.dataset.episodes),
           "evaluate": range(cfg.evaluate.seed_base, cfg.evaluate.seed_base + cfg.evaluate.episodes)}
    for r in range(1, cfg.dagger.rounds + 1):
        base = cfg.dagger.seed_base + 10_000 * r
        out[f"dagger round {r}"] = range(base, base + cfg.dagger.episodes)
    return out


def check_seeds(cfg: Config, suite: SuiteConfig) -> None:
    """ConfigError when the suite's seeds overlap any range the config's pipeline uses."""
    seeds = suite.seeds
    for name, used in training_seed_ranges(cfg).items():
        if seeds.start < used.stop and used.start < seeds.stop:
            raise ConfigError(f"robustness seeds [{seeds.start}, {seeds.stop}) overlap the {name} seeds "
                              f"[{used.start}, {used.stop}); choose another --suite-seed")


# ---------------------------------------------------------------- one episode
def scenario(job: SuiteJob) -> Scenario:
    """The job's world, start, goal (and path): the cell's inflation radius on the seed's world."""
    world_cfg = replace(job.cfg.world, inflation_radius=job.inflation, kinds=BASE_KINDS)
    if job.family.startswith(SCENE_PREFIX):
        return make_scene(job.family[len(SCENE_PREFIX):], world_cfg)
    return make_scenario(job.seed, world_cfg, None if job.family == GENERATOR else job.family)


def run_job(job: SuiteJob) -> dict:
    """One episode of one cell; a JSON-ready dict (poses only for scenes)."""
    t0 = time.perf_counter()
    sc = scenario(job)
    cfg = at_rate(job.cfg, job.rate)
    episode = replace(cfg.episode, max_time=sc.time_budget(cfg.episode.max_time))
    spec, pcfg, network = driver(job.controller, cfg, job.model_path)
    goal = sc.path if sc.path is not None else sc.goal
    r = run_episode(sc.world, sc.start, goal, spec, pcfg, network, episode, cfg.ga, seed=job.seed)
    variant = sc.family if job.family == GENERATOR else sc.variant  # the generator's kind
    out = {"key": job.key, "controller": job.controller, "family": job.family, "variant": variant,
           "inflation": job.inflation, "rate": job.rate, "seed": job.seed, "outcome": r.outcome,
           "success": r.success, "collision": r.collision, "timeout": r.timeout, "failed": r.failed,
           "time": r.time, "max_time": episode.max_time, "path_length": r.path_length,
           "route_length": sc.route_length, "min_clearance": r.min_clearance, "final_distance": r.final_distance,
           "plan_ms_p50": float(np.median(r.plan_ms)) if r.plan_ms else 0.0, "planning_ticks": r.planning_ticks,
           "fallback_ticks": r.fallback_ticks, "planners": r.planners, "stops": r.stops,
           "wall_s": round(time.perf_counter() - t0, 2)}
    if job.family.startswith(SCENE_PREFIX):
        out["poses"] = r.poses[:, :2].round(2).tolist()
    return out


# ---------------------------------------------------------------- the suite
def jobs_for(cfg: Config, suite: SuiteConfig, model_path: str) -> list[SuiteJob]:
    """Every episode, ordered so that a partial run covers every cell evenly (seed-major)."""
    cells = [(i, f, r, hz) for i in range(suite.episodes_per_cell) for f in suite.families
             for r in suite.inflation_radii for hz in suite.rates]
    cells += [(i, SCENE_PREFIX + s, r, hz) for i in range(suite.scene_repeats) for s in suite.scenes
              for r in suite.inflation_radii for hz in suite.rates]
    return [SuiteJob(c, f, float(r), float(hz), suite.seed_base + i, cfg, model_path)
            for i, f, r, hz in cells for c in suite.controllers]


def fingerprint(cfg: Config, suite: SuiteConfig, model_path: str) -> str:
    """What the results depend on besides a job's key: the model's bytes and the configs. With a model also
    the node's parameter defaults (the hybrid's rules, e.g. fallback_compare_margin, are parameters); without
    (``configs``, what the GA's and naive episodes are kept by) not: a changed default that the GA or naive
    controller uses too (a velocity limit, collision_lookahead_time) needs a fresh ``--json`` file."""
    h = hashlib.sha256()
    if model_path and Path(model_path).is_file():
        h.update(Path(model_path).read_bytes())
        h.update(json.dumps(parameters.defaults(), sort_keys=True, default=str).encode())
    sections = {k: asdict(cfg)[k] for k in ("world", "episode", "ga", "inflation_decay")}
    sections["world"].pop("kinds")  # not used: a job names its family
    h.update(json.dumps([sections, suite.seed_base], sort_keys=True, default=str).encode())
    return h.hexdigest()


MODEL_FREE = ("ga", "naive")  # controllers whose episodes do not depend on the model: kept for a new model


def _read(partial: Path) -> tuple[dict, dict[str, dict]]:
    """(header, records by key) of a ``.jobs.jsonl`` file (lines cut short by an interruption are skipped)."""
    lines = partial.read_text().splitlines()
    try:
        head = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        head = {}
    done = {}
    for line in lines[1:]:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[rec["key"]] = rec
    return head, done


def _resume(partial: Path, stamp: str, configs: str, keep: bool = False) -> dict[str, dict]:
    """Finished episodes of an interrupted run with the same fingerprint. With another model but the same
    configs (``configs``: the fingerprint without the model), the GA's and naive episodes are kept and the
    file is rewritten for the new model. Anything else is set aside (``.old``) to start afresh, or with
    ``keep`` (report only) refused (ConfigError)."""
    if not partial.exists():
        return {}
    head, done = _read(partial)
    if head.get("fingerprint") == stamp:
        return done
    if keep:
        raise ConfigError(f"{partial} was made with another model or world/episode/GA config than this one")
    partial.rename(partial.with_suffix(".old"))
    if head.get("configs") != configs:
        return {}
    kept = {k: r for k, r in done.items() if r["controller"] in MODEL_FREE}
    partial.write_text("".join(json.dumps(x) + "\n" for x in [{"fingerprint": stamp, "configs": configs},
                                                               *kept.values()]))
    print(f"another model: kept {len(kept)} episodes of {', '.join(MODEL_FREE)} from {partial}")
    return kept


@contextlib.contextmanager
def _only_writer(json_out: Path):
    """Hold ``<json>.lock`` while a suite writes its results: a second suite on the same outputs is refused
    (it would set the first one's resume file aside while the first keeps appending to it)."""
    lock = json_out.with_name(json_out.name + ".lock")
    with lock.open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another robustness suite is writing {json_out}; wait for it or choose another "
                              "--json") from None
        yield


def run_suite(cfg: Config, suite: SuiteConfig, model_path: str, json_out: Path, workers: int = 1,
              run: bool = True) -> dict:
    """Run (or resume) the suite; returns the report (also written to ``json_out``). With ``run`` False,
    nothing runs: the report covers the episodes an interrupted run finished."""
    check_seeds(cfg, suite)
    unknown = [c for c in suite.controllers if c not in CONTROLLERS]
    bad = [f for f in suite.families if f not in FAMILIES] + [s for s in suite.scenes if s not in SCENES]
    if unknown or bad:
        raise ConfigError(f"unknown controllers {unknown} or families/scenes {bad}; controllers: "
                          f"{', '.join(CONTROLLERS)}; families: {', '.join(FAMILIES)}; scenes: {', '.join(SCENES)}")
    for hz in suite.rates:
        at_rate(cfg, hz)  # the node's parameter table must accept the rate
    jobs = jobs_for(cfg, suite, model_path)
    stamp, configs = fingerprint(cfg, suite, model_path), fingerprint(cfg, suite, "")
    json_out.parent.mkdir(parents=True, exist_ok=True)
    partial = json_out.with_name(json_out.name + ".jobs.jsonl")
    with _only_writer(json_out):
        done = _resume(partial, stamp, configs, keep=not run)
        todo = [j for j in jobs if j.key not in done] if run else []
        t0 = time.time()
        if not partial.exists():
            partial.write_text(json.dumps({"fingerprint": stamp, "configs": configs}) + "\n")
        with partial.open("a") as f:
            for rec in imap_progress(run_job, todo, workers, "robustness", done=len(jobs) - len(todo),
                                     backend=cfg.compute, files=[model_path] if model_path else []):
                done[rec["key"]] = rec
                f.write(json.dumps(rec) + "\n")
                f.flush()
    results = [done[j.key] for j in jobs if j.key in done]
    report = build_report(results, cfg, suite, model_path, time.time() - t0, planned=len(jobs))
    json_out.write_text(json.dumps(report, indent=1))
    return report


# ---------------------------------------------------------------- summaries
def _cells(results: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["family"], r["inflation"], r["rate"], r["controller"]), []).append(r)
    return [{"family": f, "inflation": i, "rate": hz, "controller": c, **summarise(runs)}
            for (f, i, hz, c), runs in groups.items()]


def _rate(results: list[dict], controller: str, **match: Any) -> float | None:
    runs = [r for r in results if r["controller"] == controller and all(r[k] == v for k, v in match.items())]
    return sum(r["success"] for r in runs) / len(runs) if runs else None


def criteria(results: list[dict], suite: SuiteConfig) -> dict:
    """Issue 13's bar: ONNX ≥ 90% of the GA's success in every family cell and ≥ 95% overall, no
    collisions, ≥ 90% success on long routes (hand-made scenes are reported, not counted)."""
    matrix = [r for r in results if not r["family"].startswith(SCENE_PREFIX)]
    out: dict[str, Any] = {}
    if not {"onnx", "ga"} <= set(suite.controllers):
        return out
    worst = None
    for f in suite.families:
        for i in suite.inflation_radii:
            for hz in suite.rates:
                onnx, ga = _rate(matrix, "onnx", family=f, inflation=i, rate=hz), _rate(matrix, "ga", family=f,
                                                                                        inflation=i, rate=hz)
                if onnx is None or ga is None:
                    continue
                ratio = onnx / ga if ga > 0 else (1.0 if onnx == 0 else float("inf"))
                if worst is None or ratio < worst[0]:
                    worst = (ratio, f, i, hz)
    onnx_all, ga_all = _rate(matrix, "onnx"), _rate(matrix, "ga")
    overall = onnx_all / ga_all if onnx_all is not None and ga_all else None
    collisions = sum(r["collision"] for r in results if r["controller"] == "onnx")
    long_route = _rate(matrix, "onnx", family="long_route")
    out["worst_cell"] = None if worst is None else {"ratio": worst[0], "family": worst[1], "inflation": worst[2],
                                                    "rate": worst[3]}
    out["cells_pass"] = worst is not None and worst[0] >= CELL_RATIO
    out["overall_ratio"] = overall
    out["overall_pass"] = overall is not None and overall >= OVERALL_RATIO
    out["onnx_collisions"] = collisions
    out["collisions_pass"] = collisions == 0
    out["long_route_success"] = long_route
    out["long_route_pass"] = None if long_route is None else long_route >= LONG_ROUTE_SUCCESS
    return out


def _paired_times(results: list[dict], a: str, b: str, **match: Any) -> list[tuple[float, float]]:
    """(time of ``a``, time of ``b``) on the episodes (same family, cell, seed) both controllers succeeded in."""
    def runs(c: str) -> list[dict]:
        return [r for r in results if r["controller"] == c and all(r[k] == v for k, v in match.items())]

    return paired_times(runs(a), runs(b), lambda r: (r["family"], r["inflation"], r["rate"], r["seed"]))


def fallback_criteria(results: list[dict], suite: SuiteConfig) -> dict:
    """Issue 14's bar: hybrid success ≥ the GA's in every family (all its cells pooled), the network driving
    ≥ 90% of hybrid's executed ticks on the training generator's worlds, and hybrid's time to goal within
    10% of the GA's (mean over the episodes both reached)."""
    if not {"hybrid", "ga"} <= set(suite.controllers):
        return {}
    matrix = [r for r in results if not r["family"].startswith(SCENE_PREFIX)]
    families = {}
    for f in suite.families:
        h, g = _rate(matrix, "hybrid", family=f), _rate(matrix, "ga", family=f)
        if h is None or g is None:
            continue
        pairs = _paired_times(matrix, "hybrid", "ga", family=f)
        runs = [r for r in matrix if r["controller"] == "hybrid" and r["family"] == f]
        executed = sum(sum(r["planners"].values()) for r in runs)
        families[f] = {"hybrid": h, "ga": g, "pass": h >= g, "paired": len(pairs),
                       "time_ratio": time_ratio(pairs),
                       "network_share": sum(r["planners"].get("onnx", 0) for r in runs) / executed
                       if executed else None}
    pairs = _paired_times(matrix, "hybrid", "ga")
    ratio = time_ratio(pairs)
    standard = families.get(GENERATOR, {}).get("network_share")
    return {"families": families, "families_pass": bool(families) and all(v["pass"] for v in families.values()),
            "network_share_standard": standard,
            "network_share_pass": standard is not None and standard >= HYBRID_NETWORK_SHARE,
            "time_ratio": ratio, "time_pairs": len(pairs),
            "time_pass": ratio is not None and ratio <= HYBRID_TIME_RATIO}


def build_report(results: list[dict], cfg: Config, suite: SuiteConfig, model_path: str, seconds: float,
                 planned: int | None = None) -> dict:
    matrix = [r for r in results if not r["family"].startswith(SCENE_PREFIX)]
    return {
        "model": _display(model_path),
        "command": command(suite),
        "model_sha256": hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
        if model_path and Path(model_path).is_file() else "",
        "suite": asdict(suite),
        "seeds": [suite.seeds.start, suite.seeds.stop],
        "training_seed_ranges": {k: [v.start, v.stop] for k, v in training_seed_ranges(cfg).items()},
        "world": {"robot_radius": cfg.world.robot_radius, "decay_range": list(cfg.world.decay_range),
                  "resolution": cfg.world.resolution},
        "episode": asdict(cfg.episode),
        "seconds": seconds,
        "episode_seconds": float(sum(r.get("wall_s", 0.0) for r in results)),
        "episodes_done": len(results),
        "episodes_planned": len(results) if planned is None else planned,
        "overall": {c: summarise([r for r in matrix if r["controller"] == c]) for c in suite.controllers},
        "families": {f: {c: summarise([r for r in matrix if r["controller"] == c and r["family"] == f])
                         for c in suite.controllers} for f in suite.families},
        "cells": _cells(results),
        "criteria": criteria(results, suite),
        "fallback_criteria": fallback_criteria(results, suite),
        "results": results,
    }


def _display(path: str) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def command(suite: SuiteConfig) -> str:
    """The command line that runs this suite (besides --model, --config and the output paths)."""
    d = SuiteConfig()
    args = ["plan-ga-train evaluate --suite robustness", f"--episodes-per-cell {suite.episodes_per_cell}"]
    if suite.families != d.families:
        args.append("--families " + ",".join(suite.families))
    if suite.inflation_radii != d.inflation_radii:
        args.append("--inflation-radii " + ",".join(f"{r:g}" for r in suite.inflation_radii))
    if suite.rates != d.rates:
        args.append("--rates " + ",".join(f"{r:g}" for r in suite.rates))
    if suite.scenes != d.scenes:
        args.append("--scenes " + (",".join(suite.scenes) or "none"))
    if suite.controllers != d.controllers:
        args.append("--controllers " + ",".join(suite.controllers))
    if suite.seed_base != d.seed_base:
        args.append(f"--suite-seed {suite.seed_base}")
    return " ".join(args)


# ---------------------------------------------------------------- outputs
def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.0%}"


def _columns(suite: dict) -> list[tuple[float, float]]:
    return [(float(i), float(hz)) for i in suite["inflation_radii"] for hz in suite["rates"]]


def heatmap(report: dict, path: Path) -> None:
    """Success per cell (rows: families, then the scenes together; columns: inflation × rate) for ONNX, the
    GA and ONNX / GA."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suite, results = report["suite"], report["results"]
    rows = list(suite["families"]) + (["scenes"] if suite["scenes"] else [])
    cols = _columns(suite)

    def grid(controller: str) -> np.ndarray:
        out = np.full((len(rows), len(cols)), np.nan)
        for a, fam in enumerate(rows):
            for b, (i, hz) in enumerate(cols):
                runs = [r for r in results if r["controller"] == controller and r["inflation"] == i
                        and r["rate"] == hz and (r["family"] == fam if fam != "scenes"
                                                 else r["family"].startswith(SCENE_PREFIX))]
                if runs:
                    out[a, b] = np.mean([r["success"] for r in runs])
        return out

    panels = [(c.upper() if c != "hybrid" else "hybrid", grid(c)) for c in ("onnx", "ga", "hybrid")
              if c in suite["controllers"]]
    named = dict(panels)
    if "ONNX" in named and "GA" in named:
        with np.errstate(divide="ignore", invalid="ignore"):
            panels.append(("ONNX / GA", np.clip(named["ONNX"] / named["GA"], 0, 1.5)))
    fig, axes = plt.subplots(1, len(panels), figsize=(1.3 + len(panels) * max(2.0, 0.7 * len(cols)),
                                                      1.6 + 0.45 * len(rows)), squeeze=False)
    for ax, (title, data) in zip(axes[0], panels):
        ratio = title == "ONNX / GA"
        ax.imshow(data, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
        for (a, b), v in np.ndenumerate(data):
            if np.isfinite(v):
                ax.text(b, a, f"{v:.2f}" if ratio else f"{v:.0%}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(cols)), [f"{i:g} m\n{hz:g} Hz" for i, hz in cols], fontsize=7)
        ax.set_yticks(range(len(rows)), rows if ax is axes[0][0] else [""] * len(rows), fontsize=8)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"success per family × inflation radius × planning rate\n({suite['episodes_per_cell']} "
                 "episodes per cell; scenes: all pooled)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _criteria_lines(c: dict) -> list[str]:
    if not c:
        return ["(needs both onnx and ga in the controllers)"]
    mark = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    w = c["worst_cell"]
    lines = []
    if w is not None:
        lines.append(f"- every cell, ONNX ≥ {CELL_RATIO:.0%} of the GA's success: {mark(c['cells_pass'])} "
                     f"(worst: {w['family']}, {w['inflation']:g} m, {w['rate']:g} Hz: {w['ratio']:.2f})")
    lines.append(f"- whole matrix, ONNX ≥ {OVERALL_RATIO:.0%} of the GA's success: {mark(c['overall_pass'])} "
                 f"({'—' if c['overall_ratio'] is None else format(c['overall_ratio'], '.2f')})")
    lines.append(f"- no ONNX collisions: {mark(c['collisions_pass'])} ({c['onnx_collisions']})")
    if c["long_route_success"] is not None:
        lines.append(f"- long routes, ONNX success ≥ {LONG_ROUTE_SUCCESS:.0%}: {mark(c['long_route_pass'])} "
                     f"({c['long_route_success']:.0%})")
    return lines


def _fallback_lines(c: dict) -> list[str]:
    """Issue 14's criteria and the per-family comparison of hybrid with the GA."""
    if not c:
        return []
    mark = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    fmt = lambda v, f: "—" if v is None else format(v, f)  # noqa: E731
    worse = [f for f, v in c["families"].items() if not v["pass"]]
    lines = ["## The GA fallback (hybrid) against the GA alone (issue 14)", "",
             f"- hybrid success ≥ the GA's in every family: {mark(c['families_pass'])}"
             + (f" (below in: {', '.join(worse)})" if worse else ""),
             f"- the network drives ≥ {HYBRID_NETWORK_SHARE:.0%} of hybrid's ticks on the generator's worlds: "
             f"{mark(c['network_share_pass'])} ({fmt(c['network_share_standard'], '.1%')})",
             f"- hybrid's time to goal within {HYBRID_TIME_RATIO - 1:.0%} of the GA's: {mark(c['time_pass'])} "
             f"(ratio {fmt(c['time_ratio'], '.3f')} over {c['time_pairs']} episodes both reached)", "",
             "| family | GA success | hybrid success | network's share of hybrid's ticks | time hybrid / GA |",
             "|---|---|---|---|---|"]
    for f, v in c["families"].items():
        lines.append(f"| {f} | {v['ga']:.0%} | {v['hybrid']:.0%} | {fmt(v['network_share'], '.0%')} | "
                     f"{fmt(v['time_ratio'], '.2f')} ({v['paired']}) |")
    return lines + [""]


CARD_HEADING = "## Robustness (outside the training generator)"


def card_block(report: dict) -> str:
    """The model card's robustness section: success per family (all cells pooled) and the criteria."""
    suite = report["suite"]
    ctrls = suite["controllers"]
    lines = [CARD_HEADING, "",
             f"`plan-ga-train evaluate --suite robustness`: {len(suite['families'])} world families × inflation "
             f"radius {', '.join(f'{r:g}' for r in suite['inflation_radii'])} m × planning rate "
             f"{', '.join(f'{r:g}' for r in suite['rates'])} Hz, {suite['episodes_per_cell']} episodes per cell "
             f"(seeds {report['seeds'][0]}–{report['seeds'][1] - 1}, none used in training). Success per family, "
             "all cells pooled; the full matrix is in docs/ROBUSTNESS.md."
             + (f" Partial run: {report['episodes_done']} of {report['episodes_planned']} episodes."
                if report["episodes_done"] < report["episodes_planned"] else ""), "",
             "| family | " + " | ".join(ctrls) + " |", "|---|" + "---|" * len(ctrls)]
    for fam, by in report["families"].items():
        lines.append(f"| {fam} | " + " | ".join(_pct(by[c]["success_rate"] if by[c]["episodes"] else None)
                                               for c in ctrls) + " |")
    lines.append("| **all** | " + " | ".join(f"**{_pct(report['overall'][c]['success_rate'])}**" for c in ctrls)
                 + " |")
    lines += ["", *_criteria_lines(report["criteria"]), ""]
    return "\n".join(lines)


def markdown(report: dict, png: Path | None, md_path: Path) -> str:
    """docs/ROBUSTNESS.md: how it was run, the criteria, the whole matrix and the scenes."""
    suite, results = report["suite"], report["results"]
    ctrls = suite["controllers"]
    fmt = lambda v, f: "—" if v is None else format(v, f)  # noqa: E731
    partial = report["episodes_done"] < report["episodes_planned"]
    lines = ["# Robustness evaluation", ""]
    if partial:
        lines += [f"**Partial run: {report['episodes_done']} of {report['episodes_planned']} episodes finished.**", ""]
    lines += [f"Model `{report['model']}` (sha256 {report['model_sha256'][:12]}), run with `{report['command']}`: "
              "each controller drives through the node's PlannerSession (`run_episode`), with the costmap's "
              "inflation radius and the planning rate set per column, in the world families of "
              "`plan_ga_ros/sim/world.py` (the `generator` row is the original generator's mix of kinds, "
              "whatever the model trained on) and the hand-made scenes of `plan_ga_ros/sim/scenes.py`.", "",
              f"- seeds {report['seeds'][0]}–{report['seeds'][1] - 1}, disjoint from the config's training and "
              "held-out ranges (" + ", ".join(f"{k} {a}–{b - 1}" for k, (a, b) in
                                              report["training_seed_ranges"].items()) + "); every column of a "
              "family drives the same worlds",
              "- u_trap, rooms and long_route goals are global paths (grid path on the inflated world) followed by "
              "the session's carrot; the others are single goals; episode time limit "
              f"{report['episode']['max_time']:g} s, in proportion for routes longer than 8 m",
              "- outcomes: success (goal reached, at rest), collision, failed (the session gave the goal up after "
              "recovery_timeout), timeout" + (f"; {report['episode_seconds'] / 60:.0f} min of episode wall time "
                                                "in all" if report["episode_seconds"] else ""), ""]
    lines += ["## Issue 13's criteria", "", *_criteria_lines(report["criteria"]), ""]
    lines += _fallback_lines(report.get("fallback_criteria", {}))
    lines += ["## Overall (families, all cells)", "",
              "| controller | episodes | success | collisions | timeouts | goal failed | time to goal | GA ticks |",
              "|---|---|---|---|---|---|---|---|"]
    for c in ctrls:
        s = report["overall"][c]
        lines.append(f"| {c} | {s['episodes']} | {s['success_rate']:.1%} | {s['collision_rate']:.1%} | "
                     f"{s['timeout_rate']:.1%} | {s['failed_rate']:.1%} | {fmt(s['time_to_goal_s'], '.1f')} s | "
                     f"{fmt(s['fallback_share'], '.0%')} |")
    if png is not None:
        lines += ["", f"![success per cell]({os.path.relpath(png, md_path.parent)})"]
        if worlds_path(png).exists():
            lines += ["", "One world of each family and the hand-made scenes (start: green, goal: red star):", "",
                      f"![worlds]({os.path.relpath(worlds_path(png), md_path.parent)})"]
    lines += ["", "## Success per cell", "",
              "| family | inflation | rate | episodes | " + " | ".join(ctrls)
              + (" | ONNX / GA" if {"onnx", "ga"} <= set(ctrls) else "") + " | ONNX collisions |",
              "|---|---|---|---|" + "---|" * (len(ctrls) + ({"onnx", "ga"} <= set(ctrls)) + 1)]
    cells = {(c["family"], c["inflation"], c["rate"], c["controller"]): c for c in report["cells"]}
    for f in suite["families"]:
        for i, hz in _columns(suite):
            got = [cells.get((f, i, hz, c)) for c in ctrls]
            n = max((s["episodes"] for s in got if s), default=0)
            row = f"| {f} | {i:g} m | {hz:g} Hz | {n} | " + " | ".join(_pct(s["success_rate"]) if s else "—"
                                                                     for s in got)
            if {"onnx", "ga"} <= set(ctrls):
                o, g = cells.get((f, i, hz, "onnx")), cells.get((f, i, hz, "ga"))
                ok = o and g and g["success_rate"]
                row += " | " + (f"{o['success_rate'] / g['success_rate']:.2f}" if ok else "—")
            o = cells.get((f, i, hz, "onnx"))
            lines.append(row + f" | {round(o['collision_rate'] * o['episodes']) if o else '—'} |")
    if suite["scenes"]:
        lines += ["", "## Hand-made scenes", "",
                  "Outcome per controller (✓ = success; otherwise the outcome).", "",
                  "| scene | inflation | rate | " + " | ".join(ctrls) + " |", "|---|---|---|" + "---|" * len(ctrls)]
        for s in suite["scenes"]:
            for i, hz in _columns(suite):
                outs = []
                for c in ctrls:
                    runs = [r for r in results if r["family"] == SCENE_PREFIX + s and r["controller"] == c
                            and r["inflation"] == i and r["rate"] == hz]
                    outs.append(" ".join("✓" if r["success"] else r["outcome"] for r in runs) or "—")
                lines.append(f"| {s} | {i:g} m | {hz:g} Hz | " + " | ".join(outs) + " |")
    return "\n".join(lines) + "\n"


def worlds_path(png: Path) -> Path:
    return png.with_name(png.stem + "_worlds.png")


def worlds_picture(report: dict, cfg: Config, path: Path) -> None:
    """One world of each family (the suite's first seed, the first inflation radius) and every scene, with
    the start, the goal and the grid route."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suite = report["suite"]
    world_cfg = replace(cfg.world, inflation_radius=float(suite["inflation_radii"][0]))
    names = list(suite["families"]) + [SCENE_PREFIX + s for s in suite["scenes"]]
    cols = min(4, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        job = SuiteJob("ga", name, world_cfg.inflation_radius, 20.0, suite["seed_base"], replace(cfg, world=world_cfg),
                       "")
        sc = scenario(job)
        w = sc.world
        ax.imshow(w.costs, origin="lower", cmap="Greys", vmin=0, vmax=100,
                  extent=[0, w.costs.shape[1] * w.resolution, 0, w.costs.shape[0] * w.resolution])
        if sc.route is not None:
            ax.plot(sc.route[:, 0], sc.route[:, 1], "b-" if sc.path is not None else "b:", lw=1)
        ax.plot(*sc.start[:2], "go", ms=5)
        ax.arrow(*sc.start[:2], 0.4 * np.cos(sc.start[2]), 0.4 * np.sin(sc.start[2]), color="g", width=0.04)
        ax.plot(*sc.goal[:2], "r*", ms=9)
        variant = sc.family if name == GENERATOR else sc.variant
        ax.set_title(name.removeprefix(SCENE_PREFIX) + (f" ({variant})" if variant else ""), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.suptitle("solid blue: the global path the goal is fed along; dotted: the route a single goal leaves to "
                 "the local planner", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def write_outputs(report: dict, json_out: Path, png: Path | None, md: Path | None, card: Path | None,
                  cfg: Config | None = None) -> None:
    if png is not None:
        heatmap(report, png)
        if cfg is not None:
            worlds_picture(report, cfg, worlds_path(png))
    if md is not None:
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(markdown(report, png, md))
    if card is not None:  # into the card (replacing its robustness section), or a new file
        from .model_card import replace_section  # (torch: not in the suite's workers)

        if card.exists():
            replace_section(card, CARD_HEADING, card_block(report))
        else:
            card.write_text(card_block(report))


# ---------------------------------------------------------------- command line
def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _names(text: str, known: tuple[str, ...]) -> tuple[str, ...]:
    if text == "all":
        return known
    if text == "none":
        return ()
    return tuple(v.strip() for v in text.split(",") if v.strip())


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The suite's options on the ``evaluate`` subcommand (``--json``, ``--png``, ``--workers``, ``--model`` and
    ``--controllers`` are evaluate's own)."""
    d = SuiteConfig()
    g = p.add_argument_group("robustness suite (--suite robustness)")
    g.add_argument("--suite", choices=("standard", "robustness"), default="standard",
                   help="standard: held-out worlds of the training generator; robustness: families × inflation "
                        "radius × planning rate, plus hand-made scenes (docs/ROBUSTNESS.md)")
    g.add_argument("--episodes-per-cell", type=int, default=d.episodes_per_cell)
    g.add_argument("--families", default="all", help=f"comma-separated or 'all': {', '.join(FAMILIES)}")
    g.add_argument("--inflation-radii", default=",".join(f"{r:g}" for r in d.inflation_radii), help="metres")
    g.add_argument("--rates", default=",".join(f"{r:g}" for r in d.rates), help="planning rates (Hz)")
    g.add_argument("--scenes", default="all", help=f"comma-separated, 'all' or 'none': {', '.join(SCENES)}")
    g.add_argument("--scene-repeats", type=int, default=d.scene_repeats)
    g.add_argument("--suite-seed", type=int, default=d.seed_base,
                   help="first seed of the suite (checked against the config's training ranges)")
    g.add_argument("--md", default=str(REPO / "docs" / "ROBUSTNESS.md"), help="markdown report ('' for none)")
    g.add_argument("--card", default=None, help="also write the model card's robustness block here")
    g.add_argument("--report-only", action="store_true",
                   help="run nothing: write the outputs from the episodes an interrupted run finished")


def main(cfg: Config, args: argparse.Namespace) -> int:
    """``evaluate --suite robustness``: run the suite, print the criteria, write the outputs."""
    controllers = tuple(c.strip() for c in args.controllers.split(",") if c.strip())
    suite = SuiteConfig(_names(args.families, FAMILIES), _floats(args.inflation_radii), _floats(args.rates),
                        args.episodes_per_cell, args.suite_seed, controllers, _names(args.scenes, tuple(SCENES)),
                        args.scene_repeats)
    if suite.episodes_per_cell < 1 or suite.scene_repeats < 0:
        raise ConfigError("--episodes-per-cell must be >= 1 and --scene-repeats >= 0")
    json_out = Path(args.json or Path(cfg.run_dir) / "robustness.json")
    md = Path(args.md) if args.md else None
    png = Path(args.png) if args.png else (md.parent / "robustness.png" if md else json_out.with_suffix(".png"))
    print(f"robustness suite: {len(suite.families)} families × {len(suite.inflation_radii)} inflation radii × "
          f"{len(suite.rates)} rates × {suite.episodes_per_cell} episodes + {len(suite.scenes)} scenes, "
          f"controllers {', '.join(controllers)}, seeds from {suite.seed_base}; results in {json_out}")
    report = run_suite(cfg, suite, args.model, json_out, args.workers, run=not args.report_only)
    write_outputs(report, json_out, png, md, Path(args.card) if args.card else None, cfg)
    print("\n".join(_criteria_lines(report["criteria"])))
    print("\n".join(_fallback_lines(report["fallback_criteria"])))
    print(f"wrote {json_out}, {png}" + (f", {md}" if md else ""))
    return 0
