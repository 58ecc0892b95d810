"""models/MODEL_CARD.md: what the shipped model was trained on, how well it does, where it should not be used."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from .config import Config, ConfigError, to_dict
from .episodes import REPEAT_LABEL_EVERY
from .evaluate import table
from .model import SELECT_COST, SELECT_LOOKAHEAD_TIME, SELECT_WEIGHT

RATE_HEADING = "## Planning rate"


def load_rate_evaluations(files: list[str] = (), current: dict | None = None) -> list[dict]:
    """Evaluation summaries ({controller: summary}) from ``evaluate --json`` files, each ``FILE`` (its
    summaries carry ``rate_hz``) or ``HZ=FILE`` (older files without it); ``current`` first if given."""
    out = [current] if current else []
    for item in files:
        rate, sep, name = str(item).partition("=")
        data = json.loads(Path(name if sep else rate).read_text())
        for summary in data.values():
            if sep:
                summary["rate_hz"] = float(rate)
            elif "rate_hz" not in summary:
                raise ConfigError(f"{item}: no rate_hz in the evaluation; name it as HZ={item}")
        out.append(data)
    return out


def rate_table(evaluations: list[dict]) -> str:
    """Markdown: success, collisions, timeouts, goals failed and time to goal per controller and planning rate."""
    rows = sorted({(name, s["rate_hz"]): s for ev in evaluations for name, s in ev.items()}.items(),
                  key=lambda kv: (kv[0][0], kv[0][1]))
    rates = sorted({rate for (_, rate), _ in rows})
    fmt = lambda v, f: "—" if v is None else format(v, f)  # noqa: E731
    lines = [f"{RATE_HEADING}: {' vs '.join(f'{r:g} Hz' for r in rates)}", "",
             "Each controller through the node's PlannerSession at each planning rate (held-out worlds, seeds from "
             f"{rows[0][1].get('seed_base', '?')}; failed = the session gave the goal up after recovery_timeout).", "",
             "| controller | rate | episodes | success | collisions | timeouts | goal failed | time to goal | "
             "time / GA's (both reached) | GA ticks |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (name, rate), s in rows:
        lines.append(f"| {name} | {rate:g} Hz | {s['episodes']} | {s['success_rate']:.1%} | "
                     f"{s['collision_rate']:.1%} | {s['timeout_rate']:.1%} | {s.get('failed_rate', 0.0):.1%} | "
                     f"{fmt(s['time_to_goal_s'], '.1f')} s | {fmt(s.get('time_vs_ga'), '.3f')} | "
                     f"{fmt(s.get('fallback_share'), '.1%')} |")
    return "\n".join(lines) + "\n"


def replace_section(card: Path, heading: str, section: str) -> None:
    """Write ``section`` (starting with ``heading``) into an existing card, replacing the section with that
    heading (up to the next "## "), else before "## Speed"."""
    text, section = card.read_text(), section.rstrip("\n") + "\n\n"
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        at = text.find("## Speed")
        text = text[:at] + section + text[at:] if at >= 0 else text + "\n" + section
    card.write_text(text)


def replace_rate_section(card: Path, evaluations: list[dict]) -> None:
    """Write the planning-rate table into an existing card, replacing its old one (else before "## Speed")."""
    replace_section(card, RATE_HEADING, rate_table(evaluations))


def write_model_card(path: Path, cfg: Config, manifest: dict, history: list[dict], summary: dict, info: dict,
                     prof: dict, elapsed_s: float, config_path: str | None, reused: int = 0,
                     rate_evaluations: list[dict] = (), sittings: int = 1) -> None:
    shards = manifest["shards"]
    ga_eps = [s for s in shards if s["file"].startswith("ga_")]
    dagger_eps = [s for s in shards if s["file"].startswith("dagger")]
    best = min(history, key=lambda h: h["val"])
    reused_note = (f" over {sittings} sittings (the command resumed; {reused} of the episode shards were made in "
                   "earlier sittings)" if sittings > 1 else
                   f", reusing {reused} episode shards made before it started" if reused else "")
    meta = info["metadata"] or {}
    onnx, ga = summary.get("onnx", {}), summary.get("ga", {})
    ratio = (onnx.get("success_rate", 0) / ga["success_rate"]) if ga.get("success_rate") else float("nan")
    t = cfg.train
    clearance = (f" + {t.clearance_weight:g} × the clearance term (window cost above {t.clearance_threshold:g} under "
                 f"the predicted plan over its first {t.clearance_lookahead_time:g} s, `losses.py`)"
                 if t.clearance_weight > 0 else "")
    if cfg.dataset.randomize:
        from .randomize import Ranges

        r = Ranges()
        settings = (f"per episode (`dataset.randomize`, `randomize.py`): inflation radius {r.inflation_radius[0]:g}–"
                    f"{r.inflation_radius[1]:g} m, cost scaling factor {r.cost_scaling_factor[0]:g}–"
                    f"{r.cost_scaling_factor[1]:g}, costmap resolution {r.costmap_resolution[0]:g}–"
                    f"{r.costmap_resolution[1]:g} m and size {r.costmap_size[0]:g}–{r.costmap_size[1]:g} m, unknown "
                    f"patches, odometry noise and latency, planning rate {r.planning_rate[0]:g}–{r.planning_rate[1]:g} "
                    f"Hz (robot radius {cfg.world.robot_radius} m);")
    else:
        settings = (f"Nav2-like inflation (robot radius {cfg.world.robot_radius} m, inflation radius "
                    f"{cfg.world.inflation_radius} m, cost_scaling_factor drawn from {cfg.world.decay_range});")
    focus = (f"; from round 2 on, families drawn in proportion to the network's shortfall against the GA "
             f"(floor {cfg.dagger.focus_floor:g})" if cfg.dagger.focus_floor > 0 else "")
    p = cfg.polish
    polish = (f"\nAfter the DAgger rounds, a polish round ({p.epochs} epochs at learning rate {p.lr:g} on the same "
              f"shards) weighs the final approach's samples (the goal within {p.goal_weight_radius:g} m) "
              f"{1 + p.goal_weight:g}× in the imitation term"
              + (f" and charges {p.collision_weight:g} × the window cost above {cfg.train.collision_threshold:g} "
                 "(a collision) under the whole plan" if p.collision_weight > 0 else "")
              + ": where hybrid's GA took over from the network most." if p.epochs > 0 else "")
    notes = "".join(f"\n- {name}: {s['note']}" for name, s in summary.items() if s.get("note"))
    k = cfg.model.hypotheses
    head = ("a head to 60 outputs scaled in-graph by tanh to the velocity limits" if k == 1 else
            f"a head to {k} plans of 60 outputs, scaled in-graph by tanh to the velocity limits, and {k} scores, "
            "trained winner-takes-all against the expert's plan; the graph rolls each plan out over its first "
            f"{SELECT_LOOKAHEAD_TIME:g} s and returns the one with the highest score minus {SELECT_WEIGHT:g} × the "
            f"window cost above {SELECT_COST:g} under the robot centre, summed over those steps")
    text = f"""# Model card: plan_ga_ros planner

## What it is
A {info['parameters']:,}-parameter CNN policy (3 conv layers 1→32→64→128, kernels 5/3/3,
stride 2, a {cfg.model.hidden}-unit layer; state and goal encoders;
{head}) that imitates a genetic-algorithm planner. Input: a 50×50 robot-centred
cost window at {meta.get('resolution')} m, body velocities and accelerations, the goal in the robot
frame clipped to {meta.get('goal_clip_distance')} m, [inflation_decay, resolution]. Output: 20 steps ×
(v_x, v_y, ω) at dt = {meta.get('dt')} s. Kinematics: {meta.get('kinematics')}; limits: {meta.get('limits')}.
It ignores the pose entries (x, y, θ) of the state.

## Data
- {len(ga_eps)} closed-loop GA episodes (seeds from {cfg.dataset.seed_base})
  and {len(dagger_eps)} DAgger episodes in {cfg.dagger.rounds} rounds (the network drives, the GA
  labels every visited state, a state that repeats while the robot stands once in {REPEAT_LABEL_EVERY} ticks){focus};
  {manifest['samples']:,} samples in all; mirror augmentation in training.
- Worlds: {cfg.world.size_m} m square, {cfg.world.resolution} m cells, kinds {', '.join(cfg.world.kinds)};
  {settings}
  start–goal {cfg.world.goal_distance[0]}–{cfg.world.goal_distance[1]} m apart with a grid path at most
  {cfg.world.max_detour}× the straight line (goals a local planner can see its way to).
- Content hash: `{manifest['content_hash']}`; git commit `{meta.get('git_commit', '')}`.

## Training
Config: `{config_path or 'built-in defaults'}`. Loss: weighted MSE of normalised controls{clearance}.{polish}
Best validation loss {best['val']:.5f} at epoch {best['epoch']} of the last round. Loss curve: `loss.png`.

## Closed-loop evaluation
{cfg.evaluate.episodes} held-out worlds per controller (seeds {cfg.evaluate.seed_base}…, disjoint from
training), each driven through the node's own PlannerSession (gates, goal checker, acceleration
estimate, safety layer; hybrid = the network with the GA fallback) at {cfg.episode.planning_rate:g} Hz,
timeout {cfg.episode.max_time} s:

```
{table(summary)}
```
ONNX success / GA success = {ratio:.1%}. Picture: `evaluation.png`.{notes}

{rate_table(rate_evaluations) if len(rate_evaluations) > 1 else ""}
## Speed (batch 1, one thread, {platform.processor() or platform.machine()})
ONNX Runtime p50 {prof['onnxruntime']['p50_ms']:.3f} ms, p99 {prof['onnxruntime']['p99_ms']:.3f} ms;
PyTorch eager p50 {prof.get('pytorch', {}).get('p50_ms', float('nan')):.3f} ms
(speedup {prof.get('speedup_p50', float('nan')):.1f}×); a full planning tick p99 {prof['tick']['p99_ms']:.2f} ms
({100 * prof['budget']['20Hz']['fraction']:.1f}% of a 20 Hz period). GA expert p50
{ga.get('plan_ms_p50', float('nan')):.1f} ms per plan.

## Intended use
A local planner (controller) for a circular differential-drive robot of radius ≈ {cfg.world.robot_radius} m
with limits like the above, fed by a Nav2 rolling-window local costmap in the odometry frame and a goal
(or a carrot from a global path) within a few metres.

## Limits
- It sees 2.5 m around the robot: dead ends and detours longer than that need a global planner.
- Trained in simulation on a perfect base with exact odometry; real bases add latency and slip.
- Different footprints, velocity limits or inflation settings far from training need retraining.
- Every plan passes the node's safety layer; with `planner: onnx` a rejected plan stops the robot,
  with `hybrid` (the node's default) the GA expert plans instead until the network's plans are accepted
  and within `fallback_compare_margin` of the GA's (the GA also checks a driving network every
  `fallback_compare_period`).

Pipeline time: {elapsed_s / 60:.1f} min on this machine ({platform.machine()}, {os.cpu_count()} cores){reused_note}.

<details><summary>Full config</summary>

```json
{json.dumps(to_dict(cfg), indent=1)}
```
</details>
"""
    path.write_text(text)
