"""The GA expert: searches control sequences on the same inputs the network sees.

A plan is a few knots of (v_x, v_y, ω) linearly interpolated to the model's steps. The whole
population is rolled out and scored in one numpy batch per generation, with the shared rollout
and collision check of plan_ga_ros; there is no Python loop over individuals or steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kinematics, safety
from .contract import Limits, ModelSpec
from .tensors import wrap_angle


@dataclass(frozen=True)
class GAConfig:
    population: int = 64
    generations: int = 12
    knots: int = 5
    elite: int = 4
    tournament: int = 3
    mutation_std: float = 0.25  # in units of each control's range
    mutation_rate: float = 0.3
    # cost weights
    w_collision: float = 1000.0
    w_time: float = 1.0
    w_clearance: float = 1.5
    w_accel: float = 20.0
    w_jerk: float = 0.05
    w_effort: float = 0.02
    w_after_goal: float = 1.0
    goal_radius: float = 0.1  # the GA aims inside the checker's tolerance


def reached_tol(config: GAConfig, xy_tolerance: float) -> float:
    return min(config.goal_radius, xy_tolerance)


def interpolation_matrix(steps: int, knots: int) -> np.ndarray:
    """[steps, knots] weights of piecewise-linear interpolation between evenly spaced knots."""
    t = np.linspace(0.0, knots - 1.0, steps)
    idx = np.arange(knots)
    return np.clip(1.0 - np.abs(t[:, None] - idx[None, :]), 0.0, 1.0)


class GAPlanner:
    """Receding-horizon GA; call ``plan`` every control period (warm-started from the last plan)."""

    def __init__(self, spec: ModelSpec, limits: Limits, robot_radius: float, config: GAConfig = GAConfig(),
                 seed: int = 0, lookahead_time: float = 1.0) -> None:
        self.spec, self.limits, self.radius, self.cfg = spec, limits, robot_radius, config
        self.lookahead_steps = max(1, safety.lookahead_steps(lookahead_time, spec))
        self.rng = np.random.default_rng(seed)
        self.M = interpolation_matrix(spec.steps, config.knots)
        self.low = np.array(limits.velocity_low)
        self.high = np.array(limits.velocity_high)
        self.previous: np.ndarray | None = None  # last best plan [steps, 3]

    def reset(self) -> None:
        self.previous = None

    def _controls(self, knots: np.ndarray) -> np.ndarray:
        return np.einsum("tk,pkc->ptc", self.M, knots)

    def _knots_from(self, controls: np.ndarray) -> np.ndarray:
        """Least-squares knots [knots, 3] reproducing a [steps, 3] plan."""
        return np.linalg.lstsq(self.M, controls, rcond=None)[0]

    def _seeds(self, velocity: np.ndarray, goal: np.ndarray, shift: int) -> np.ndarray:
        """Hand-made individuals: warm start, stop, hold, rotate both ways, head for the goal."""
        k, span = self.cfg.knots, self.high - self.low
        out = [np.zeros((k, 3)), np.tile(velocity, (k, 1))]
        for w in (-1.0, -0.5, 0.5, 1.0):
            out.append(np.tile([0.0, 0.0, w * self.limits.max_omega], (k, 1)))
        bearing = np.arctan2(goal[1], goal[0])
        for v in (0.3, 0.6, 1.0):
            out.append(np.tile([self.low[0] + v * span[0], 0.0, np.clip(1.5 * bearing, self.low[2], self.high[2])],
                               (k, 1)))
        if self.previous is not None:
            shifted = np.concatenate([self.previous[shift:], np.repeat(self.previous[-1:], shift, 0)])
            out.append(self._knots_from(shifted))
        return np.clip(np.stack(out), self.low, self.high)

    def cost(self, controls: np.ndarray, window: np.ndarray, velocity: np.ndarray, goal: np.ndarray,
             goal_is_final: bool, xy_tolerance: float = 0.15) -> np.ndarray:
        """Cost [P] of plans [P, steps, 3] (lower is better); collisions are a hard penalty."""
        c, dt = self.cfg, self.spec.dt
        full = kinematics.rollout(np.zeros(3), controls, dt)  # [P, T+1, 3], starting at the robot
        poses = full[:, 1:]
        # The node's validator (same function) over the lookahead; beyond it the centre cost
        # (inscribed = footprint on an obstacle in an inflated costmap) is enough to steer.
        k = self.lookahead_steps
        near = safety.plan_collisions(window, full, self.spec, self.radius, k)
        centre = safety.window_lookup(window, poses[..., :2], self.spec.resolution)
        start_stuck = safety.window_lookup(window, np.zeros(2), self.spec.resolution) >= safety.INSCRIBED_COST
        far = (centre[:, k:] > centre[:, :1]) if start_stuck else centre[:, k:] >= safety.INSCRIBED_COST
        hit = np.concatenate([near, far], axis=1)
        first_hit = np.where(hit.any(1), hit.argmax(1), hit.shape[1])
        collision = c.w_collision * (hit.any(1) * (1.0 + (hit.shape[1] - first_hit) / hit.shape[1]))
        dist = np.hypot(poses[..., 0] - goal[0], poses[..., 1] - goal[1])  # [P, T]
        reached = dist <= (min(c.goal_radius, xy_tolerance) if goal_is_final else c.goal_radius)
        any_reached = reached.any(1)
        first = np.where(any_reached, reached.argmax(1), dist.shape[1] - 1)
        # Estimated arrival time: time spent in the horizon plus a time-to-go heuristic from where
        # the plan ends (or reaches the goal): distance at full speed plus the turn toward the goal.
        end = poses[np.arange(len(poses)), first]  # [P, 3]
        d_end = np.hypot(goal[0] - end[:, 0], goal[1] - end[:, 1])
        travel = np.arctan2(goal[1] - end[:, 1], goal[0] - end[:, 0])
        far = d_end > reached_tol(c, xy_tolerance)
        turn = np.where(far, np.abs(wrap_angle(travel - end[:, 2])), 0.0)
        if goal_is_final:  # then turn from the travel direction (or where it stands) to the goal heading
            turn = turn + np.abs(wrap_angle(goal[2] - np.where(far, travel, end[:, 2])))
        ttg = d_end / max(self.limits.max_v_x, 1e-3) + turn / max(self.limits.max_omega, 1e-3)
        arrival = (first + 1) * dt + ttg
        progress = c.w_time * arrival
        steps = np.arange(dist.shape[1])
        after = steps[None, :] > first[:, None]
        after_goal = c.w_after_goal * (np.abs(controls[..., 0]) * after).sum(1) * dt if goal_is_final else 0.0
        clearance = c.w_clearance * (centre ** 2).mean(1)
        dv = np.diff(np.concatenate([np.broadcast_to(velocity, (len(controls), 1, 3)), controls], 1), axis=1)
        accel_excess = np.clip(np.abs(dv) - np.asarray(self.limits.acceleration) * dt, 0.0, None).sum((1, 2))
        jerk = c.w_jerk * (np.diff(dv, axis=1) ** 2).sum((1, 2))
        effort = c.w_effort * (controls ** 2).sum((1, 2)) * dt
        return collision + progress + after_goal + clearance + c.w_accel * accel_excess + jerk + effort

    def plan(self, window: np.ndarray, velocity: np.ndarray, goal: np.ndarray, clip_distance: float,
             shift: int = 1, xy_tolerance: float = 0.15) -> np.ndarray:
        """The best plan [steps, 3] for a cost window, body velocity and robot-frame (clipped) goal."""
        c = self.cfg
        goal_is_final = bool(np.hypot(goal[0], goal[1]) < clip_distance - 1e-3)
        span = self.high - self.low
        seeds = self._seeds(np.clip(velocity, self.low, self.high), goal, shift)
        n_rand = c.population - len(seeds)
        rand = self.low + span * self.rng.random((n_rand, c.knots, 3))
        pop = np.concatenate([seeds, rand])
        fit = self.cost(self._controls(pop), window, velocity, goal, goal_is_final, xy_tolerance)
        for _ in range(c.generations):  # generations are sequential by nature
            order = np.argsort(fit)
            elite = pop[order[: c.elite]]
            n_child = c.population - c.elite
            # Tournament selection of two parents per child, in one batch.
            cand = self.rng.integers(0, c.population, size=(2, n_child, c.tournament))
            parents = np.take_along_axis(cand, np.argmin(fit[cand], axis=2)[..., None], axis=2)[..., 0]
            alpha = self.rng.random((n_child, c.knots, 1))
            children = alpha * pop[parents[0]] + (1.0 - alpha) * pop[parents[1]]
            mutate = self.rng.random(children.shape) < c.mutation_rate
            children = children + mutate * self.rng.standard_normal(children.shape) * c.mutation_std * span
            pop = np.clip(np.concatenate([elite, children]), self.low, self.high)
            fit = self.cost(self._controls(pop), window, velocity, goal, goal_is_final, xy_tolerance)
        best = self._controls(pop[np.argmin(fit)][None])[0]
        self.previous = best
        return best
