"""Control rollout and velocity/acceleration limits, vectorised over any leading batch axes."""

from __future__ import annotations

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
    vx, vy, w = controls[..., 0], controls[..., 1], controls[..., 2]
    wdt = w * dt
    small = xp.abs(w) < _EPS
    w_safe = xp.where(small, 1.0, w)
    # Integral of R(ω s) over [0, dt]: [[S, -C], [C, S]]
    s_term = xp.where(small, dt, xp.sin(wdt) / w_safe)
    c_term = xp.where(small, 0.5 * w * dt * dt, (1.0 - xp.cos(wdt)) / w_safe)
    dxb = vx * s_term - vy * c_term
    dyb = vx * c_term + vy * s_term
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
    """Acceleration limits [3]; an axis without one (0) follows its command at once."""
    acc = np.asarray(limits.acceleration, dtype=np.float64)
    return np.where(acc > 0.0, acc, 1e12)


def _chase(plans: list, velocities: list, step: list) -> list:
    """Start velocity of every step [B][T][3] of plans [B][T][3] chased at ``step`` per step."""
    out = []
    for plan, v in zip(plans, velocities):
        starts = []
        for command in plan:
            starts.append(v)
            v = [min(max(c, x - s), x + s) for c, x, s in zip(command, v, step)]
        out.append(starts)
    return out


def followed_twists(velocity: np.ndarray, controls: np.ndarray, limits: Limits, dt: float,
                    substeps: int) -> np.ndarray:
    """The twists [..., T*substeps, 3] a base really holds when it starts at body ``velocity`` [..., 3]
    and chases each control [..., T, 3] for ``dt`` at its acceleration limits. Each substep holds its
    mean velocity, so the distance covered is exact along a straight line.

    The loop is over the T steps only (a clipped recurrence), vectorised over any batch axes.
    """
    controls = np.asarray(controls, dtype=np.float64)
    acc = _rates(limits)
    step = acc * dt
    flat = controls.reshape(-1, *controls.shape[-2:])  # [B, T, 3]
    v = np.broadcast_to(np.asarray(velocity, dtype=np.float64), controls.shape[:-2] + (3,)).reshape(-1, 3)
    if flat.shape[0] <= 4:  # the validator's few plans: plain floats beat numpy's per-call cost
        starts = np.array(_chase(flat.tolist(), v.tolist(), step.tolist())).reshape(controls.shape)
    else:
        starts = np.empty_like(flat)
        for k in range(flat.shape[1]):  # each step starts where the last one ended
            starts[:, k] = v
            v = np.minimum(np.maximum(flat[:, k], v - step), v + step)
        starts = starts.reshape(controls.shape)
    # Mean velocity over each substep of a ramp at the acceleration limit that stops at the command:
    # the integral of min(a·t, |Δv|) is a·t²/2 up to t* = |Δv|/a, then |Δv|·t - |Δv|²/(2a).
    t = np.arange(substeps + 1.0)[:, None] * (dt / substeps)  # [m+1, 1]
    delta = (controls - starts)[..., None, :]  # [..., T, 1, 3]
    gap = np.abs(delta)
    with np.errstate(over="ignore", invalid="ignore"):  # absurd controls give non-finite twists, refused later
        ramp = np.where(acc * t <= gap, 0.5 * acc * t * t, gap * t - gap * gap / (2.0 * acc))  # [..., T, m+1, 3]
        sub = starts[..., None, :] + np.sign(delta) * np.diff(ramp, axis=-2) * (substeps / dt)
    return sub.reshape(*controls.shape[:-2], controls.shape[-2] * substeps, 3)


def followed_rollout(velocity: np.ndarray, controls: np.ndarray, limits: Limits, dt: float,
                     substeps: int) -> np.ndarray:
    """Robot-frame poses [..., T*substeps+1, 3] (the robot at the origin first) of the base following
    ``controls`` from ``velocity`` at its acceleration limits; poses ``substeps`` apart end each step."""
    twists = followed_twists(velocity, controls, limits, dt, substeps)
    return rollout(np.zeros(3), twists, dt / substeps)
