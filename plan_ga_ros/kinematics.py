"""Control rollout and velocity/acceleration limits, vectorised over any leading batch axes."""

from __future__ import annotations

import functools
import math
import sys
from types import ModuleType
from typing import Any

import numpy as np

from .contract import Limits

_EPS = 1e-9
Array = Any  # a numpy array; in training also a torch tensor (see rollout)


def _namespace(a: Array) -> ModuleType:
    """numpy, or torch for torch tensors: training differentiates this very rollout. The core never
    imports torch itself; a tensor can only arrive when the caller already has it loaded."""
    if type(a).__module__.startswith("torch"):
        return sys.modules["torch"]
    return np


def _arc_steps(vx: Array, vy: Array, w: Array, dt: float, xp) -> tuple[Array, Array, Array]:
    """(heading change, body-frame x and y displacement) of each twist held ``dt`` (an exact arc)."""
    wdt = w * dt
    small = xp.abs(w) < _EPS
    w_safe = xp.where(small, 1.0, w)
    # Integral of R(ω s) over [0, dt]: [[S, -C], [C, S]]
    s_term = xp.where(small, dt, xp.sin(wdt) / w_safe)
    c_term = xp.where(small, 0.5 * w * dt * dt, (1.0 - xp.cos(wdt)) / w_safe)
    return wdt, vx * s_term - vy * c_term, vx * c_term + vy * s_term


def rollout(start_pose: Array, controls: Array, dt: float) -> Array:
    """Poses [..., T+1, 3] from start poses [..., 3] and body-frame twists [..., T, 3].

    Each step holds its twist (v_x, v_y, ω) for ``dt`` and is integrated exactly (an arc),
    so constant controls trace a closed-form circle. No Python loop over steps. numpy arrays
    in, float64 numpy out; torch tensors in, differentiable torch out (the training loss).
    """
    xp = _namespace(controls)
    if xp is np:
        start_pose = np.asarray(start_pose, dtype=np.float64)
        controls = np.asarray(controls, dtype=np.float64)
    wdt, dxb, dyb = _arc_steps(controls[..., 0], controls[..., 1], controls[..., 2], dt, xp)
    theta0 = start_pose[..., 2:3]
    headings = theta0 + xp.concatenate([xp.zeros_like(wdt[..., :1]), xp.cumsum(wdt, axis=-1)], axis=-1)
    h = headings[..., :-1]
    dxw = xp.cos(h) * dxb - xp.sin(h) * dyb
    dyw = xp.sin(h) * dxb + xp.cos(h) * dyb
    zeros = xp.zeros_like(dxw[..., :1])
    xs = start_pose[..., 0:1] + xp.concatenate([zeros, xp.cumsum(dxw, axis=-1)], axis=-1)
    ys = start_pose[..., 1:2] + xp.concatenate([zeros, xp.cumsum(dyw, axis=-1)], axis=-1)
    return xp.stack([xs, ys, headings], axis=-1)


def compose(frame_pose: np.ndarray, relative_poses: np.ndarray) -> np.ndarray:
    """Express poses given relative to ``frame_pose`` [3] in the frame_pose's parent frame."""
    x, y, th = (float(v) for v in frame_pose)
    c, s = np.cos(th), np.sin(th)
    rel = np.asarray(relative_poses, dtype=np.float64)
    out = np.empty_like(rel)
    out[..., 0] = x + c * rel[..., 0] - s * rel[..., 1]
    out[..., 1] = y + s * rel[..., 0] + c * rel[..., 1]
    out[..., 2] = th + rel[..., 2]
    return out


def clip_controls(controls: np.ndarray, limits: Limits, speed_limit: float | None = None) -> np.ndarray:
    """Clip [..., 3] twists to the velocity limits and, optionally, a linear speed limit (m/s)."""
    out = np.clip(np.asarray(controls, dtype=np.float64), limits.velocity_low, limits.velocity_high)
    if speed_limit is not None and np.isfinite(speed_limit):
        speed = np.hypot(out[..., 0], out[..., 1])
        scale = np.where(speed > speed_limit, speed_limit / np.maximum(speed, _EPS), 1.0)
        out[..., 0] *= scale
        out[..., 1] *= scale
    return out


def top_speed(limits: Limits, speed_limit: float | None = None) -> float:
    """The fastest the base drives forward (m/s, at least 1 mm/s): ``max_v_x`` under ``speed_limit``."""
    cap = limits.max_v_x if speed_limit is None else min(limits.max_v_x, speed_limit)
    return max(cap, 1e-3)


def limit_change(command: np.ndarray, previous: np.ndarray, limits: Limits, dt: float) -> np.ndarray:
    """Limit the change from ``previous`` to ``command`` [..., 3] to the acceleration limits over dt."""
    step = np.asarray(limits.acceleration) * dt
    prev = np.asarray(previous, dtype=np.float64)
    return prev + np.clip(np.asarray(command, dtype=np.float64) - prev, -step, step)


def commanded(controls: np.ndarray, previous: np.ndarray, limits: Limits, speed_limit: float | None,
              period: float) -> np.ndarray:
    """Plans [..., T, 3] as they are commanded: clipped to the limits (and ``speed_limit``), the first
    command within one control ``period`` of acceleration from the ``previous`` command."""
    out = clip_controls(controls, limits, speed_limit)
    out[..., 0, :] = limit_change(out[..., 0, :], previous, limits, period)
    return out


def estimate_acceleration(
    times: np.ndarray, velocities: np.ndarray, window: float, limits: Limits
) -> np.ndarray:
    """Smoothed finite difference: least-squares slope of the velocities [N, 3] over the last
    ``window`` seconds of ``times`` [N], clamped to the acceleration limits; zeros if < 2 samples.
    """
    times = np.asarray(times, dtype=np.float64)
    velocities = np.asarray(velocities, dtype=np.float64).reshape(-1, 3)
    if not (np.isfinite(times).all() and np.isfinite(velocities).all()):
        raise ValueError("odometry times and velocities must be finite")
    if times.size < 2:
        return np.zeros(3)
    recent = times >= times[-1] - window - 1e-9
    t, v = times[recent], velocities[recent]
    if t.size < 2:
        t, v = times[-2:], velocities[-2:]
    with np.errstate(all="ignore"):  # huge finite values overflow: refused below
        tc = t - t.mean()
        denom = float(np.dot(tc, tc))
        if denom <= 0.0:
            return np.zeros(3)
        slope = tc @ (v - v.mean(axis=0)) / denom
    if not np.isfinite(slope).all():
        raise ValueError("odometry times or velocities out of range")
    acc = np.asarray(limits.acceleration)
    return np.clip(slope, -acc, acc)


def track_velocity(velocity: np.ndarray, command: np.ndarray, limits: Limits, dt: float) -> np.ndarray:
    """The velocity a robot reaches after ``dt`` chasing ``command`` at its acceleration limits."""
    return limit_change(clip_controls(command, limits), velocity, limits, dt)


def _rates(limits: Limits) -> np.ndarray:
    """Acceleration limits [3] (read-only); an axis without one (0) follows its command at once."""
    return _rates_of(tuple(limits.acceleration))


@functools.lru_cache(maxsize=16)
def _rates_of(acceleration: tuple[float, float, float]) -> np.ndarray:
    acc = np.asarray(acceleration, dtype=np.float64)
    out = np.where(acc > 0.0, acc, 1e12)
    out.flags.writeable = False
    return out


def _chase(plans: list, velocities: list, step: list) -> list:
    """Start velocity of every step, then the velocity after the last one [B][T+1][3], of plans [B][T][3]
    chased at ``step`` per step."""
    out = []
    for plan, v in zip(plans, velocities):
        starts = []
        for command in plan:
            starts.append(v)
            v = [min(max(c, x - s), x + s) for c, x, s in zip(command, v, step)]
        out.append(starts + [v])
    return out


def _chase_starts(controls: np.ndarray, velocity: np.ndarray, step: np.ndarray, python: bool) -> np.ndarray:
    """Start velocity of every step, then the velocity after the last one, [3, B, T+1] (component first),
    of plans [B, T, 3] chased from ``velocity`` [B, 3] at ``step`` [3] per step: plain floats for a few
    plans (numpy's per-call cost), else one vectorised clipped recurrence over the T steps."""
    b, n = controls.shape[:2]
    if python:
        return np.array(_chase(controls.tolist(), velocity.tolist(), step.tolist())).reshape(b, n + 1, 3
                                                                                           ).transpose(2, 0, 1)
    cm = np.ascontiguousarray(controls.transpose(2, 0, 1))  # [3, B, T]: long inner loops
    starts = np.empty((3, b, n + 1))
    starts[:, :, 0] = velocity.T
    reach = np.stack([-step, step])[:, :, None]  # v + (-step) is v - step, bit for bit
    bounds = np.empty((2, 3, b))
    for k in range(n):  # each step starts where the last one ended
        np.add(starts[:, :, k], reach, out=bounds)
        np.maximum(cm[:, :, k], bounds[0], out=bounds[0])
        np.minimum(bounds[0], bounds[1], out=starts[:, :, k + 1])
    return starts


def _stop_starts(u: np.ndarray, step: np.ndarray, n: int) -> np.ndarray:
    """Start velocities [3, B, n] of n steps commanding 0.0 from velocities ``u`` [3, B], chased at ``step``
    [3] (finite, > 0) per step: ``_chase_starts``' numpy recurrence in closed form, bit for bit. Each
    velocity moves toward zero by ``step`` per step (a running sum, as the recurrence adds), and stays 0.0
    once there (the recurrence's clip to the command)."""
    toward = np.empty(u.shape + (n,))
    toward[..., 0] = u
    toward[..., 1:] = np.where(u < 0.0, step[:, None], -step[:, None])[..., None]
    run = np.cumsum(toward, axis=-1)
    out = np.where((u < 0.0)[..., None], np.minimum(0.0, run), np.maximum(0.0, run))
    out[..., 0] = u
    return out


def _starts(velocity: np.ndarray, controls: np.ndarray, step: np.ndarray, python: bool,
            stop_after: int | None = None) -> np.ndarray:
    """Start velocity of every step [3, B, T] of plans [B, T, 3] chased from ``velocity`` [B, 3] at ``step``
    per step. Plans that command 0.0 from step ``stop_after`` on (braking) chase in closed form there."""
    n = controls.shape[1]
    k = n if stop_after is None else min(max(stop_after, 0), n)
    if (not python and k < n and np.isfinite(step).all() and (step > 0.0).all()
            and not (controls[:, k:] != 0.0).any() and not np.signbit(controls[:, k:]).any()):
        head = _chase_starts(controls[:, :k], velocity, step, False)
        return np.concatenate([head[:, :, :k], _stop_starts(head[:, :, k], step, n - k)], axis=2)
    return _chase_starts(controls, velocity, step, python)[:, :, :n]


def _ramp(starts: np.ndarray, commands: np.ndarray, acc: np.ndarray, dt: float, substeps: int) -> np.ndarray:
    """Twists [3, B, T*substeps] held over the substeps of steps that start at ``starts`` [3, B, T] and chase
    ``commands`` [3, B, T] at ``acc`` [3] (component first)."""
    b, n = starts.shape[1:]
    # Mean velocity over each substep of a ramp at the acceleration limit that stops at the command:
    # the integral of min(a·t, |Δv|) is a·t²/2 up to t* = |Δv|/a, then |Δv|·t - |Δv|²/(2a).
    t = np.arange(substeps + 1.0) * (dt / substeps)  # [m+1]
    # With finite rates and dt the ramp is exactly 0.0 at t = 0 (NaN where the gap is): not computed.
    first = 1 if np.isfinite(acc).all() and math.isfinite(dt) else 0
    t = t[first:]
    delta = commands - starts  # [3, B, T]
    gap = np.abs(delta)[:, None]  # [3, 1, B, T]
    out = np.empty((3, b, n, substeps))
    with np.errstate(over="ignore", invalid="ignore"):  # absurd controls give non-finite twists, refused later
        ramp = np.where((acc[:, None] * t)[..., None, None] <= gap, (0.5 * acc[:, None] * t * t)[..., None, None],
                        gap * t[:, None, None] - gap * gap / (2.0 * acc)[:, None, None, None])  # [3, m+1-first, B, T]
        if first:  # ramp[t_1] - 0.0 is ramp[t_1]
            diff = np.empty((3, substeps, b, n))
            diff[:, 0] = ramp[:, 0]
            np.subtract(ramp[:, 1:], ramp[:, :-1], out=diff[:, 1:])
        else:
            diff = ramp[:, 1:] - ramp[:, :-1]
        np.add(starts[:, None], np.sign(delta)[:, None] * diff * (substeps / dt), out=out.transpose(0, 3, 1, 2))
    return out.reshape(3, b, n * substeps)


def _twists(velocity: np.ndarray, controls: np.ndarray, limits: Limits, dt: float, substeps: int) -> np.ndarray:
    """``followed_twists`` of plans [B, T, 3] from velocities [B, 3], component first: [3, B, T*substeps]
    (the recurrence in plain floats for at most 4 plans, numpy's per-call cost)."""
    acc = _rates(limits)
    starts = _chase_starts(controls, velocity, acc * dt, controls.shape[0] <= 4)[:, :, :-1]
    return _ramp(starts, controls.transpose(2, 0, 1), acc, dt, substeps)


def _batch(velocity: np.ndarray, controls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(plans [B, T, 3], their start velocities [B, 3]) from plans [..., T, 3] and velocities [..., 3]."""
    controls = np.asarray(controls, dtype=np.float64)
    flat = controls.reshape(-1, *controls.shape[-2:])
    v = np.broadcast_to(np.asarray(velocity, dtype=np.float64), controls.shape[:-2] + (3,)).reshape(-1, 3)
    return flat, v


def followed_twists(velocity: np.ndarray, controls: np.ndarray, limits: Limits, dt: float,
                    substeps: int) -> np.ndarray:
    """The twists [..., T*substeps, 3] a base really holds when it starts at body ``velocity`` [..., 3]
    and chases each control [..., T, 3] for ``dt`` at its acceleration limits. Each substep holds its
    mean velocity, so the distance covered is exact along a straight line.

    The loop is over the T steps only (a clipped recurrence), vectorised over any batch axes.
    """
    controls = np.asarray(controls, dtype=np.float64)
    flat, v = _batch(velocity, controls)
    twists = _twists(v, flat, limits, dt, substeps)
    return np.moveaxis(twists, 0, -1).reshape(*controls.shape[:-2], controls.shape[-2] * substeps, 3)


def _arcs(twists: np.ndarray, dt: float, segments: list[tuple[int, int]] | None = None) -> np.ndarray:
    """``rollout`` from the origin of twists [3, B, W] held ``dt`` each (component first), numpy only:
    poses [3, B, W+1], the very values ``rollout(np.zeros(3), ...)`` gives. ``segments`` (offset, n): roll
    out each run of n twists from the origin on its own, its poses in columns offset..offset+n (the
    next run starts past them); the other columns are junk. Default: all W twists, one run."""
    vx, vy, w = twists
    b, width = w.shape
    segments = [(0, width)] if segments is None else segments
    out = np.zeros((3, b, width + 1))
    wdt, dxb, dyb = _arc_steps(vx, vy, w, dt, np)
    for o, n in segments:
        np.cumsum(wdt[:, o: o + n], axis=-1, out=out[2, :, o + 1: o + n + 1])
    out[2] += 0.0  # the start heading 0 added as rollout adds it (-0.0 becomes 0.0)
    h = out[2, :, :-1]  # the heading each twist starts from
    cos_h, sin_h = np.cos(h), np.sin(h)
    dxw = cos_h * dxb - sin_h * dyb
    dyw = sin_h * dxb + cos_h * dyb
    for o, n in segments:
        np.cumsum(dxw[:, o: o + n], axis=-1, out=out[0, :, o + 1: o + n + 1])
        np.cumsum(dyw[:, o: o + n], axis=-1, out=out[1, :, o + 1: o + n + 1])
    out[:2] += 0.0  # the start position (0, 0) likewise
    return out


def follow_and_brake(velocity: np.ndarray, controls: np.ndarray, hold: int, brake_steps: int, limits: Limits,
                     dt: float, substeps: int, python: bool) -> tuple[np.ndarray, int, int]:
    """``followed_rollout`` of plans [B, T, 3] from velocities [B, 3], and of braking: holding each plan's
    first command for ``hold`` steps, then commanding 0.0, over the first ``brake_steps`` steps. Both are
    computed together, the same values: (x, y, θ) [3, B, W] with the plan's poses in columns 0..T*m and
    braking's from column ``start`` on, up to step S (S*m+1 poses, S ≥ 1 if ``brake_steps``); the column
    between is junk. From step S on every braking twist is 0.0: the base stands still at the last pose.
    Returns (poses, start, S). ``python``: the recurrence in plain floats (as ``follow``'s for a few plans)."""
    b, n = controls.shape[:2]
    m = substeps
    kb = min(max(brake_steps, 0), n)
    acc = _rates(limits)
    step = acc * dt
    plan_starts = _chase_starts(controls, velocity, step, python)  # [3, B, T+1]
    braking = np.zeros((b, kb, 3))
    braking[:, :hold, :] = controls[:, :1, :]
    if not python and hold == 1 and kb > 1 and all(math.isfinite(x) and x > 0.0 for x in step.tolist()):
        # The first step is the plan's; then a closed form (``_stop_starts``, never -0.0).
        brake_starts = np.concatenate([plan_starts[:, :, :1], _stop_starts(plan_starts[:, :, 1], step, kb - 1)], 2)
        moving = (brake_starts != 0.0).any(axis=(0, 1))
    else:
        brake_starts = _starts(velocity, braking, step, python, stop_after=hold)
        moving = ((brake_starts != 0.0) | np.signbit(brake_starts)).any(axis=(0, 1))
    # A step whose start and command are all 0.0 (not -0.0) holds 0.0 twists: trailing ones are not rolled
    # out (commands are 0.0 from step ``hold`` on).
    s = min(max(int(np.flatnonzero(moving)[-1]) + 1 if moving.any() else 0, min(hold, kb), 1), kb)
    starts = np.zeros((3, b, n + 1 + s))  # the plan, a spare step, braking
    commands = np.zeros((3, b, n + 1 + s))
    starts[:, :, :n] = plan_starts[:, :, :n]
    starts[:, :, n + 1:] = brake_starts[:, :, :s]
    commands[:, :, :n] = controls.transpose(2, 0, 1)
    commands[:, :, n + 1:] = braking[:, :s].transpose(2, 0, 1)
    poses = _arcs(_ramp(starts, commands, acc, dt, m), dt / m, [(0, n * m), ((n + 1) * m, s * m)])
    return poses, (n + 1) * m, s


def followed_rollout(velocity: np.ndarray, controls: np.ndarray, limits: Limits, dt: float,
                     substeps: int) -> np.ndarray:
    """Robot-frame poses [..., T*substeps+1, 3] (the robot at the origin first) of the base following
    ``controls`` from ``velocity`` at its acceleration limits; poses ``substeps`` apart end each step."""
    controls = np.asarray(controls, dtype=np.float64)
    flat, v = _batch(velocity, controls)
    poses = _arcs(_twists(v, flat, limits, dt, substeps), dt / substeps)
    return np.moveaxis(poses, 0, -1).reshape(*controls.shape[:-2], controls.shape[-2] * substeps + 1, 3)
