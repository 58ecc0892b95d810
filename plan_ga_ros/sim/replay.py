"""plan_ga_replay: run the planner over a recorded rosbag2, without DDS.

The recorded costmap, odometry and goal or path messages are fed, in recorded order and time,
to the same ``PlannerSession`` the node drives, ticked at the planning rate (in phase with the
recorded planner's ticks when the bag has its ``~/local_plan``). OUT is a copy of the input bag
plus what the planner would have done: ``/replay/cmd_vel``, ``/replay/trajectory``,
``/replay/local_plan``, ``/replay/carrot`` and ``/replay/stop_reason``, so the recorded and
replayed commands can be scrubbed side by side (Foxglove, ``ros2 bag play``). A summary compares
them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bag import BagError, BagReader, BagWriter, deserialize, merged, qos, serialize

NAMESPACE = "/replay"
INPUT_TYPES = {
    "costmap": ("nav_msgs/msg/OccupancyGrid",),
    "odom": ("nav_msgs/msg/Odometry",),
    "goal": ("geometry_msgs/msg/PoseStamped",),
    "path": ("nav_msgs/msg/Path",),
    "cmd": ("geometry_msgs/msg/Twist", "geometry_msgs/msg/TwistStamped"),
    "local_plan": ("nav_msgs/msg/Path",),
}
PROGRESS_PERIOD = 15.0  # s of wall time between progress lines
SAME_CLOCK_S = 1.0  # header stamps within this of the receive times: one clock (no offset applied)


class ReplayError(Exception):
    """The replay cannot run as asked; the message says why (one line)."""


@dataclass
class Summary:
    bag: str
    out: str
    model: str
    rate_hz: float
    ticks: int = 0
    executing: int = 0
    network_ticks: int = 0
    rejected: int = 0
    stop_reasons: Counter = field(default_factory=Counter)
    planners: Counter = field(default_factory=Counter)
    clock_offset_s: float = 0.0
    compared: int = 0
    delta: dict[str, dict[str, float]] = field(default_factory=dict)
    plot_problem: str | None = None

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.network_ticks if self.network_ticks else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"bag": self.bag, "out": self.out, "model": self.model, "rate_hz": self.rate_hz, "ticks": self.ticks,
                "executing_ticks": self.executing, "network_ticks": self.network_ticks, "rejected": self.rejected,
                "rejected_share": self.rejected_share, "stop_reasons": dict(self.stop_reasons),
                "planners": dict(self.planners), "clock_offset_s": self.clock_offset_s,
                "compared_commands": self.compared, "delta": self.delta}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="plan_ga_replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bag", required=True, help="input rosbag2 (directory, or an .mcap/.db3 file)")
    p.add_argument("--out", required=True, help="output rosbag2 directory (must not exist)")
    p.add_argument("--model", default="", help="ONNX model (default: the package's models/planner.onnx)")
    p.add_argument("--rate", type=float, default=None, help="planning rate (Hz); default planning_frequency")
    p.add_argument("--params-file", default="", help="a planner parameters YAML (e.g. config/planner.yaml)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a planner parameter (repeatable), e.g. --param planner:=onnx")
    p.add_argument("--costmap-topic", default="/local_costmap/costmap")
    p.add_argument("--odom-topic", default="/odom")
    p.add_argument("--goal-topic", default="/goal_pose")
    p.add_argument("--path-topic", default="/plan")
    p.add_argument("--cmd-topic", default="/cmd_vel", help="the recorded command, compared with the replay's")
    p.add_argument("--local-plan-topic", default="/plan_ga_planner/local_plan",
                   help="the recorded planner's local plan: its stamps give the phase of its ticks")
    p.add_argument("--summary-json", default="", help="also write the summary here as JSON")
    p.add_argument("--plot", default="", help="also draw the run here (PNG; needs matplotlib): the robot's path, "
                   "the replayed local plans, recorded and replayed commands over time")
    return p.parse_args(argv)


# ---------------------------------------------------------------------- configuration
def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def planner_params(params_file: str, overrides: Sequence[str], rate: float | None) -> dict[str, Any]:
    """Parameter values: a params file's (``<node>: ros__parameters:``) then NAME=VALUE overrides, validated."""
    import yaml

    from .. import parameters

    values: dict[str, Any] = {}
    if params_file:
        try:
            doc = yaml.safe_load(Path(params_file).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ReplayError(f"cannot read --params-file {params_file}: {str(exc).splitlines()[0]}") from exc
        nodes = [v["ros__parameters"] for v in (doc or {}).values() if isinstance(v, dict) and "ros__parameters" in v]
        if not nodes:
            raise ReplayError(f"--params-file {params_file} has no '<node>: ros__parameters:' section")
        values.update(_flatten(nodes[0]))
    for item in overrides:
        name, sep, text = item.partition(":=") if ":=" in item else item.partition("=")
        if not sep:
            raise ReplayError(f"--param {item!r}: expected NAME=VALUE")
        values[name.strip()] = yaml.safe_load(text)
    if rate is not None:
        values["planning_frequency"] = float(rate)
    values = {k: v for k, v in values.items() if k != "use_sim_time"}
    problems = parameters.validate(values)
    if problems:
        raise ReplayError("bad parameters: " + "; ".join(problems))
    return {**parameters.defaults(), **values}


def load_policy(model: str, values: dict[str, Any]):
    from ..contract import ContractError, ModelSpec
    from ..policy import OnnxPolicy, PolicyError, SessionConfig
    from .demo import share_file

    path = model or share_file("models", "planner.onnx")
    try:
        fallback = ModelSpec(resolution=values["model_resolution"], dt=values["model_dt"],
                             goal_clip_distance=values["model_goal_clip_distance"],
                             kinematics=values["model_kinematics"])
        cfg = SessionConfig(tuple(values["providers"]), values["intra_op_num_threads"],
                            values["graph_optimization"], values["warmup_runs"])
        return OnnxPolicy(path, cfg, fallback_spec=fallback)
    except (PolicyError, ContractError) as exc:
        raise ReplayError(str(exc).splitlines()[0]) from exc


# ---------------------------------------------------------------------- the bag's inputs
def _check_topics(reader: BagReader, topics: dict[str, str]) -> dict[str, str]:
    """The roles present in the bag (role → topic); errors for missing inputs and wrong types."""
    present = {}
    for role, topic in topics.items():
        info = reader.topics.get(topic)
        if info is None or info.count == 0:
            continue
        if info.msgtype not in INPUT_TYPES[role]:
            raise ReplayError(f"topic {topic} has type {info.msgtype}, expected {' or '.join(INPUT_TYPES[role])} "
                              f"(choose another with --{role.replace('_', '-')}-topic)")
        present[role] = topic
    listing = ", ".join(f"{t} ({i.msgtype})" for t, i in sorted(reader.topics.items())) or "none"
    for role in ("costmap", "odom"):
        if role not in present:
            raise ReplayError(f"the bag has no {role} messages on {topics[role]} (its topics: {listing}); "
                              f"pass --{role}-topic")
    if "goal" not in present and "path" not in present:
        raise ReplayError(f"the bag has no goal on {topics['goal']} and no path on {topics['path']} (its topics: "
                          f"{listing}); pass --goal-topic or --path-topic")
    return present


def _first(reader: BagReader, topic: str, msgtype: str) -> Any:
    for _, _, data in reader.messages([topic]):
        return deserialize(data, msgtype)
    return None


def _check_frames(reader: BagReader, present: dict[str, str]) -> str:
    """The odometry frame; errors when the costmap, goal or path are in another frame (no tf here)."""
    odom = _first(reader, present["odom"], "nav_msgs/msg/Odometry").header.frame_id
    grid = _first(reader, present["costmap"], "nav_msgs/msg/OccupancyGrid").header.frame_id
    if grid != odom:
        raise ReplayError(f"the costmap is in frame '{grid[:80]}' but odometry in '{odom[:80]}': the planner needs "
                          "both in one frame (a rolling local costmap in the odometry frame)")
    for role, msgtype in (("goal", "geometry_msgs/msg/PoseStamped"), ("path", "nav_msgs/msg/Path")):
        if role in present:
            frame = _first(reader, present[role], msgtype).header.frame_id
            if frame not in ("", odom):
                raise ReplayError(f"the {role} on {present[role]} is in frame '{frame[:80]}', not the odometry frame "
                                  f"'{odom[:80]}': replay applies no tf; record the {role} in '{odom[:80]}'")
    return odom


def _clock_offset(reader: BagReader, topic: str) -> float:
    """Header-stamp clock minus the bag's receive clock (0 when they are one clock)."""
    from ..ros import conversions as conv

    diffs = []
    for _, t, data in reader.messages([topic]):
        msg = deserialize(data, "nav_msgs/msg/Odometry")
        diffs.append(conv.stamp_to_sec(msg.header.stamp) - t * 1e-9)
        if len(diffs) >= 200:
            break
    offset = float(np.median(diffs))
    return offset if abs(offset) > SAME_CLOCK_S else 0.0


def _recorded_commands(reader: BagReader, topic: str | None, msgtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Receive times (s) [N] and commands [N, 3] on the recorded command topic."""
    from ..ros import conversions as conv

    times, cmds = [], []
    if topic:
        for _, t, data in reader.messages([topic]):
            times.append(t * 1e-9)
            cmds.append(conv.twist_from_msg(deserialize(data, msgtype)))
    return np.asarray(times), np.asarray(cmds).reshape(-1, 3)


def _tick_phase(reader: BagReader, present: dict[str, str], offset: float, cmd_times: np.ndarray) -> float | None:
    """A bag time at which the recorded planner ticked: its first local plan's stamp, else its first command."""
    from ..ros import conversions as conv

    if "local_plan" in present:
        msg = _first(reader, present["local_plan"], "nav_msgs/msg/Path")
        return conv.stamp_to_sec(msg.header.stamp) - offset
    return float(cmd_times[0]) - 1e-3 if cmd_times.size else None


# ---------------------------------------------------------------------- the replay
class Feeder:
    """Hands recorded messages to a session as the node's callbacks do (``ros/planner_node.py``,
    ``ros/goals.py``): header stamps for costmap and odometry, the receive time for goals and paths."""

    def __init__(self, session: Any, max_cells: int) -> None:
        self.session, self.max_cells = session, max_cells

    def feed(self, role: str, msg: Any, received: float) -> None:
        from .. import tensors
        from ..ros import conversions as conv
        from ..ros.goals import poses_from_path

        s = self.session
        try:
            if role == "costmap":
                grid = tensors.pool_grid(conv.grid_from_msg(msg, self.max_cells), s.spec.resolution)
                s.set_costmap(grid, conv.stamp_to_sec(msg.header.stamp))
            elif role == "odom":
                pose, vel = conv.odometry_from_msg(msg)
                s.set_odometry(pose, vel, conv.stamp_to_sec(msg.header.stamp), msg.header.frame_id)
            elif role == "goal":
                s.set_goal(conv.pose_from_msg(msg.pose), received, msg.header.frame_id)
            elif role == "path":
                frame = msg.header.frame_id or msg.poses[0].header.frame_id
                s.set_path(poses_from_path(msg), received, frame)
        except ValueError as exc:
            if role in ("goal", "path"):
                s.reject(role, f"{role} rejected: {exc}")
            else:
                s.reject("odometry" if role == "odom" else role, str(exc))


def _outputs(d: Any, t_ns: int, header_t: float, frame: str, dt: float, path_buffer: Any
             ) -> list[tuple[int, str, bytes]]:
    from geometry_msgs.msg import PoseStamped
    from std_msgs.msg import String

    from ..ros import conversions as conv

    out = []
    if d.send:
        out.append((t_ns, f"{NAMESPACE}/cmd_vel", serialize(conv.twist_msg(d.command))))
    if d.executing and d.controls is not None:
        out.append((t_ns, f"{NAMESPACE}/trajectory", serialize(conv.trajectory_msg(d.controls))))
        out.append((t_ns, f"{NAMESPACE}/local_plan", serialize(path_buffer.fill(d.path, frame, header_t, dt))))
    if d.carrot is not None:
        carrot = PoseStamped()
        carrot.header.stamp, carrot.header.frame_id = conv.sec_to_stamp(header_t), frame
        carrot.pose.position.x, carrot.pose.position.y = float(d.carrot[0]), float(d.carrot[1])
        carrot.pose.orientation = conv.quaternion_from_yaw(float(d.carrot[2]))
        out.append((t_ns, f"{NAMESPACE}/carrot", serialize(carrot)))
    reason = f"planning ({d.planner})" if d.executing else d.message
    out.append((t_ns, f"{NAMESPACE}/stop_reason", serialize(String(data=reason[:300]))))
    return out


OUTPUT_TYPES = {"cmd_vel": "geometry_msgs/msg/Twist", "trajectory": "std_msgs/msg/Float32MultiArray",
                "local_plan": "nav_msgs/msg/Path", "carrot": "geometry_msgs/msg/PoseStamped",
                "stop_reason": "std_msgs/msg/String"}


def _delta_stats(values: np.ndarray) -> dict[str, float]:
    a = np.abs(values)
    return {"mean": float(a.mean()), "median": float(np.median(a)), "p95": float(np.percentile(a, 95)),
            "max": float(a.max())}


def replay(args: argparse.Namespace) -> Summary:
    from ..planner import PlannerConfig
    from ..ros import conversions as conv
    from ..session import PlannerSession

    if Path(args.out).exists():
        raise ReplayError(f"--out {args.out} exists already; choose a new directory")
    values = planner_params(args.params_file, args.param, args.rate)
    with BagReader(args.bag) as reader:
        roles = {"costmap": args.costmap_topic, "odom": args.odom_topic, "goal": args.goal_topic,
                 "path": args.path_topic, "cmd": args.cmd_topic, "local_plan": args.local_plan_topic}
        present = _check_topics(reader, roles)
        frame = _check_frames(reader, present)
        policy = load_policy(args.model, values)
        config = PlannerConfig.from_params(values, policy.spec)
        session = PlannerSession(config, policy.spec, policy.run)
        feeder = Feeder(session, int(values["max_grid_cells"]))
        offset = _clock_offset(reader, present["odom"])
        cmd_type = reader.topics[present["cmd"]].msgtype if "cmd" in present else ""
        cmd_times, cmds = _recorded_commands(reader, present.get("cmd"), cmd_type)
        period = 1.0 / float(values["planning_frequency"])
        phase = _tick_phase(reader, present, offset, cmd_times)
        summary = Summary(str(args.bag), str(args.out), policy.path, 1.0 / period, clock_offset_s=offset)

        inputs = {present[r]: r for r in ("costmap", "odom", "goal", "path") if r in present}
        types = {t: reader.topics[t].msgtype for t in inputs}
        outputs: list[tuple[int, str, bytes]] = []
        replayed: list[tuple[float, np.ndarray]] = []
        path_buffer = conv.PathBuffer()
        next_tick: float | None = None
        trace = Trace()

        def tick(t: float) -> None:
            d = session.tick(t + offset)
            summary.ticks += 1
            summary.stop_reasons[d.reason.name] += 1
            if d.executing:
                summary.executing += 1
                summary.planners[d.planner] += 1
            if d.network_ok is not None:
                summary.network_ticks += 1
                summary.rejected += not d.network_ok
            replayed.append((t, d.command.copy()))
            trace.ticks.append((t, d.planner if d.executing else ""))
            if d.executing and d.path is not None and (not trace.plans or t - trace.plans[-1][0] >= 1.0):
                trace.plans.append((t, d.path[:, :2].copy()))
            outputs.extend(_outputs(d, int(round(t * 1e9)), t + offset, frame, policy.spec.dt, path_buffer))

        progress = Progress(reader.start_ns * 1e-9, reader.end_ns * 1e-9)
        for topic, t_ns, data in reader.messages(list(inputs)):
            t = t_ns * 1e-9
            progress.show(t)
            if next_tick is None:
                base = t if phase is None else phase
                next_tick = base + np.ceil((t - base) / period) * period
            while next_tick < t:  # ticks due before this message arrived
                tick(next_tick)
                next_tick += period
            msg = deserialize(data, types[topic])
            feeder.feed(inputs[topic], msg, t + offset)
            trace.add(inputs[topic], t, msg)
        if next_tick is not None:
            tick(next_tick)

        summary.compared, summary.delta = _compare(cmd_times, cmds, replayed, period)
        _write(reader, args.out, outputs, summary)
    if args.plot:
        trace.recorded = (cmd_times, cmds)
        trace.replayed = (np.array([t for t, _ in replayed]), np.array([c for _, c in replayed]).reshape(-1, 3))
        summary.plot_problem = draw(trace, summary, Path(args.plot))
    return summary


def _compare(cmd_times: np.ndarray, cmds: np.ndarray, replayed: list[tuple[float, np.ndarray]], period: float
             ) -> tuple[int, dict[str, dict[str, float]]]:
    """Pairs each recorded command with the replay tick it followed (the node publishes a few ms after
    its tick) and returns |recorded − replayed| statistics per control."""
    if not cmd_times.size or not replayed:
        return 0, {}
    ticks = np.array([t for t, _ in replayed])
    idx = np.searchsorted(ticks, cmd_times + 0.25 * period, side="right") - 1
    ok = (idx >= 0) & (cmd_times - ticks[np.clip(idx, 0, None)] < 0.75 * period)
    if not ok.any():
        return 0, {}
    rep = np.stack([replayed[i][1] for i in idx[ok]])
    diff = cmds[ok] - rep
    return int(ok.sum()), {"v_x": _delta_stats(diff[:, 0]), "omega": _delta_stats(diff[:, 2])}


def _write(reader: BagReader, out: str, outputs: list[tuple[int, str, bytes]], summary: Summary) -> None:
    """OUT: the input bag's messages and the replay's, in time order (nothing is left half-written)."""
    try:
        _write_bag(reader, out, outputs, summary)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _write_bag(reader: BagReader, out: str, outputs: list[tuple[int, str, bytes]], summary: Summary) -> None:
    with BagWriter(out) as writer:
        for topic, info in reader.topics.items():
            writer.add(topic, info.msgtype, info.offered_qos, info.msgdef, info.digest)
        for name, msgtype in OUTPUT_TYPES.items():
            writer.add(f"{NAMESPACE}/{name}", msgtype, [qos(depth=1)])
        copy = ((t, topic, data) for topic, t, data in reader.messages())
        outputs.sort(key=lambda item: item[0])
        for t, topic, data in merged(copy, outputs):
            writer.write(topic, t, data)
        writer.set_custom_data("plan_ga_replay.summary", json.dumps(summary.to_dict()))


def format_summary(s: Summary) -> str:
    reasons = ", ".join(f"{k.lower()} {v}" for k, v in s.stop_reasons.most_common())
    planners = ", ".join(f"{k} {v}" for k, v in s.planners.most_common()) or "none"
    lines = [f"replayed {s.bag} → {s.out} with {s.model} at {s.rate_hz:g} Hz",
             f"ticks {s.ticks}: executing {s.executing} ({planners}); stop reasons: {reasons}",
             f"network plans rejected: {s.rejected}/{s.network_ticks} ({s.rejected_share:.1%})"]
    if s.clock_offset_s:
        lines.append(f"header stamps run {s.clock_offset_s:+.3f} s from the bag's receive times: ticked on the "
                     "header clock")
    if s.delta:
        v, w = s.delta["v_x"], s.delta["omega"]
        lines.append(f"recorded vs replayed commands ({s.compared} pairs): |Δv_x| mean {v['mean']:.4f} median "
                     f"{v['median']:.4f} p95 {v['p95']:.4f} m/s; |Δω| mean {w['mean']:.4f} median {w['median']:.4f} "
                     f"p95 {w['p95']:.4f} rad/s")
    else:
        lines.append("no recorded commands to compare with")
    return "\n".join(lines)


class Progress:
    """A line on stderr every PROGRESS_PERIOD s of wall time (a long bag whose GA ticks take a while)."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.began = self.last = time.monotonic()

    def show(self, t: float) -> None:
        wall = time.monotonic()
        if wall - self.last >= PROGRESS_PERIOD:
            self.last = wall
            print(f"replaying: {t - self.start:.0f}/{self.end - self.start:.0f} s of the bag after "
                  f"{wall - self.began:.0f} s", file=sys.stderr, flush=True)


@dataclass
class Trace:
    """What the picture shows: the robot's odometry, the path, sampled replayed plans, per-tick planners."""

    odom: list[tuple[float, float, float]] = field(default_factory=list)
    paths: list[np.ndarray] = field(default_factory=list)
    plans: list[tuple[float, np.ndarray]] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    recorded: tuple[np.ndarray, np.ndarray] | None = None
    replayed: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, role: str, t: float, msg: Any) -> None:
        if role == "odom":
            p = msg.pose.pose.position
            self.odom.append((t, p.x, p.y))
        elif role == "path" and msg.poses:
            self.paths.append(np.array([(q.pose.position.x, q.pose.position.y) for q in msg.poses]))
        elif role == "goal":
            self.paths.append(np.array([[msg.pose.position.x, msg.pose.position.y]]))


def draw(trace: Trace, summary: Summary, path: Path) -> str | None:
    """The replayed run as a picture; None when drawn, else why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"{path} not drawn: matplotlib is not installed (pip install matplotlib)"
    fig = plt.figure(figsize=(12, 6))
    grid = fig.add_gridspec(2, 2, width_ratios=(1, 1.5))
    ax = fig.add_subplot(grid[:, 0])
    odom = np.array(trace.odom).reshape(-1, 3)
    for k, p in enumerate(trace.paths):
        ax.plot(p[:, 0], p[:, 1], "--" if len(p) > 1 else "*", color="tab:blue", lw=1, ms=10,
                label="goal / global path" if k == 0 else None)
    jumps = np.flatnonzero(np.hypot(*np.diff(odom[:, 1:], axis=0).T) > 0.5) + 1  # a new episode, a reset
    xy = np.insert(odom[:, 1:], jumps, np.nan, axis=0)
    ax.plot(xy[:, 0], xy[:, 1], color="0.4", lw=1.0, label="recorded odometry")
    for k, (_, plan) in enumerate(trace.plans):
        ax.plot(plan[:, 0], plan[:, 1], color="tab:red", lw=1.5, alpha=0.8, label="replayed local plan (1 Hz)"
                if k == 0 else None)
        ax.plot(*plan[0], ".", color="tab:red", ms=4)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.legend(fontsize=8, loc="best")
    t0 = odom[0, 0] if len(odom) else 0.0
    ticks = np.array([t for t, _ in trace.ticks])
    ga = np.array([planner == "ga" for _, planner in trace.ticks])
    for row, (k, name, unit) in enumerate(((0, "v_x", "m/s"), (2, "ω", "rad/s"))):
        a = fig.add_subplot(grid[row, 1])
        if trace.recorded is not None and len(trace.recorded[0]):
            a.plot(trace.recorded[0] - t0, trace.recorded[1][:, k], color="k", lw=1.2, label="recorded /cmd_vel")
        if trace.replayed is not None and len(trace.replayed[0]):
            a.plot(trace.replayed[0] - t0, trace.replayed[1][:, k], "--", color="tab:red", lw=1.2,
                   label="replayed")
        if ga.any():
            a.fill_between(ticks - t0, 0, 1, where=ga, transform=a.get_xaxis_transform(), color="tab:purple",
                           alpha=0.15, step="mid", label="replay planned with the GA")
        a.set_ylabel(f"{name} ({unit})")
        if row == 1:
            a.set_xlabel("time since the first odometry (s)")
        a.legend(fontsize=8, loc="upper right")
    v = summary.delta.get("v_x")
    note = f": median |Δv_x| {v['median']:.4f} m/s, mean {v['mean']:.4f} m/s over {summary.compared} commands" \
        if v else ""
    fig.suptitle(f"plan_ga_replay of {Path(summary.bag).name}{note}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = replay(args)
    except (ReplayError, BagError) as exc:
        print(f"plan_ga_replay: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("plan_ga_replay: interrupted", file=sys.stderr)
        return 130
    print(format_summary(summary))
    if args.plot:
        print(summary.plot_problem or f"wrote {args.plot}", file=sys.stderr if summary.plot_problem else sys.stdout)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary.to_dict(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
