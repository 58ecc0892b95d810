"""The GA expert: searches control sequences on the same inputs the network sees.

A plan is a few knots of (v_x, v_y, ω) linearly interpolated to the model's steps. The whole
population is rolled out and scored in one numpy batch per generation (the elite keeps its known
cost), with the very commanding, rollout (the base following each plan at its acceleration limits)
and collision check that ``planner.make_safe`` validates the executed plan with
(``safety.follow_batch``, bit for bit ``safety.follow``): a plan it rejects costs at least
``w_collision``. The GA keeps ``safety.MARGIN`` beyond the required clearance where it can.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kinematics, navfield, parameters, safety
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
    w_margin: float = 3.0  # a plan that grazes the required clearance costs this much more (s of arrival)
    goal_radius: float = 0.1  # the GA aims inside the checker's tolerance
    # Time to go measured through the window's free cells (navfield.py) instead of in a straight line,
    # which has a local minimum at every wall between the robot and the goal.
    navigation: bool = True


# The terms of the cost that say when (and whether) a plan gets the robot there, in s: where the base really
# goes as it follows the plan. The rest shape the GA's own plans: clearance, smoothness, effort, and the soft
# margin beyond the required clearance (a taste of the GA's, not time: a plan that grazes it arrives no later,
# and the safety layer, not the margin, is the floor).
ARRIVAL_TERMS = ("collision", "arrival", "after_goal")


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
                 seed: int = 0, lookahead_time: float = 1.0,
                 control_period: float = 1.0 / parameters.default("planning_frequency"),
                 speed_limit: float = float("inf")) -> None:
        self.spec, self.limits, self.radius, self.cfg = spec, limits, robot_radius, config
        self.lookahead_time, self.control_period, self.speed_limit = lookahead_time, control_period, speed_limit
        self.hold = safety.hold_steps(control_period, spec.dt, spec.steps)
        self.rng = np.random.default_rng(seed)
        self.M = interpolation_matrix(spec.steps, config.knots)
        self.low = np.array(limits.velocity_low)
        self.high = np.array(limits.velocity_high)
        self.previous: np.ndarray | None = None  # last best plan [steps, 3]
        self.warm_started = False  # whether the last ``plan`` started from the plan before it

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
             goal_is_final: bool, xy_tolerance: float = 0.15, previous_command: np.ndarray | None = None,
             yaw_tolerance: float | None = None, stateful: bool = True, margin: bool = True) -> np.ndarray:
        """Cost [P] of plans [P, steps, 3] (lower is better): the sum of ``cost_terms``."""
        return sum(self.cost_terms(controls, window, velocity, goal, goal_is_final, xy_tolerance,
                                   previous_command, yaw_tolerance, stateful=stateful, margin=margin).values())

    def cost_terms(self, controls: np.ndarray, window: np.ndarray, velocity: np.ndarray, goal: np.ndarray,
                   goal_is_final: bool, xy_tolerance: float = 0.15, previous_command: np.ndarray | None = None,
                   yaw_tolerance: float | None = None, judge: bool = False, stateful: bool = True,
                   margin: bool = True) -> dict[str, np.ndarray]:
        """The weighted terms [P] of each plan's cost, by name; ``ARRIVAL_TERMS`` are in seconds of estimated
        arrival (or a collision's penalty). Each plan is commanded, followed and checked as ``make_safe``
        will (from ``previous_command``, default ``velocity``): a plan it rejects, or that collides later
        on, costs at least ``w_collision``.

        A plan arrives at a final goal where it first passes within the GA's aim (``reached_tol``, inside the
        checker's ``xy_tolerance``; a ``judge`` of another planner's plans: within ``xy_tolerance``), and the
        turn to the goal's heading is estimated from there. Given ``yaw_tolerance``, as the goal checker: where
        the heading is within ``yaw_tolerance`` with the position reached at the same step or, ``stateful``
        (Nav2's latching checker), at any step before; a plan that does not get there within the horizon is
        timed on from its last pose (so one that stands still facing the wrong way, turns past the goal's
        heading or spins the long way round is late), with no distance to go once the position counts.

        ``margin``: plans that pass closer than ``safety.MARGIN`` beyond the required clearance cost up to
        ``w_margin`` more. Without it (a fallback that stalled: a doorway or gap where every way on grazes the
        margin, so the GA would rather hold still) only the required clearance, the safety layer's floor, counts."""
        c, dt, steps = self.cfg, self.spec.dt, self.spec.steps
        previous = velocity if previous_command is None else previous_command
        controls = kinematics.commanded(controls, previous, self.limits, self.speed_limit, self.control_period)
        horizon = safety.collision_horizon(self.lookahead_time, velocity, self.limits)
        k = max(1, safety.lookahead_steps(horizon, self.spec))  # the steps the validator checks braking over
        followed = safety.follow_batch(controls, window, velocity, self.spec, self.radius, self.limits, self.hold, k)
        m, n = followed.substeps, len(controls)
        hit = followed.hits.reshape(n, steps, m).any(-1)  # [P, T]: the validator's rule, every step
        hit[:, 0] |= followed.brake_hits.any(-1)  # braking after the first command collides
        any_hit = hit.any(1)
        first_hit = np.where(any_hit, hit.argmax(1), steps)
        collision = c.w_collision * (any_hit * (1.0 + (steps - first_hit) / steps))
        gap = followed.clearance[:, 1:].min(1) - followed.need  # [P] the closest pass beyond the required clearance
        w_margin = c.w_margin if margin else 0.0
        margin_cost = w_margin * np.clip(1.0 - gap / safety.MARGIN, 0.0, 1.0) ** 2  # (x - need rounds monotonically)
        poses = followed.step_poses[:, 1:]  # [P, T, 3] where the base really goes
        centre = safety.window_lookup(window, poses[..., :2], self.spec.resolution)
        dist = np.hypot(poses[..., 0] - goal[0], poses[..., 1] - goal[1])  # [P, T]
        reach = xy_tolerance if judge else reached_tol(c, xy_tolerance)
        reached = dist <= (reach if goal_is_final else c.goal_radius)
        there = np.where(reached.any(1), reached.argmax(1), steps - 1)  # the position first reached
        first, accepted = there, np.zeros(n, dtype=bool)
        if goal_is_final and yaw_tolerance is not None:  # the checker's rule: the position (latched), the heading
            inside = np.logical_or.accumulate(reached, axis=1) if stateful else reached
            done = inside & (np.abs(wrap_angle(goal[2] - poses[..., 2])) <= yaw_tolerance)
            first = np.where(done.any(1), done.argmax(1), steps - 1)
            accepted = inside[np.arange(n), first] & stateful  # the position counts wherever the base is then
        # Estimated arrival time: time spent in the horizon plus a time-to-go heuristic from where
        # the plan ends (or reaches the goal): distance at full speed plus the turn toward the goal.
        end = poses[np.arange(len(poses)), first]  # [P, 3]
        d_end = np.hypot(goal[0] - end[:, 0], goal[1] - end[:, 1])
        travel = np.arctan2(goal[1] - end[:, 1], goal[0] - end[:, 0])
        far = (d_end > (reach if goal_is_final else reached_tol(c, xy_tolerance))) & ~accepted
        to_go = d_end
        if c.navigation:  # around the obstacles where they make a detour; walled off: a window's side more
            res = self.spec.resolution
            nav_d, nav_h = navfield.field(window, goal[:2], res).at(end[:, :2])
            # The grid distance is cell-quantised and up to 8% long in the open: the straight line is used
            # unless the way through free cells is clearly longer.
            detour = np.isfinite(nav_d) & (nav_d - d_end > np.maximum(2.0 * res, 0.1 * d_end))
            side = self.spec.window_cells * res
            to_go = np.where(np.isfinite(nav_d), np.where(detour, nav_d, d_end), d_end + side)
            travel = np.where(detour & np.isfinite(nav_h), nav_h, travel)
        to_go = np.where(accepted, 0.0, to_go)
        turn = np.where(far, np.abs(wrap_angle(travel - end[:, 2])), 0.0)
        if goal_is_final:  # then turn from the travel direction (or where it stands) to the goal heading
            turn = turn + np.abs(wrap_angle(goal[2] - np.where(far, travel, end[:, 2])))
        ttg = to_go / kinematics.top_speed(self.limits, self.speed_limit) + turn / max(self.limits.max_omega, 1e-3)
        arrival = (first + 1) * dt + ttg
        progress = c.w_time * arrival
        after = np.arange(steps)[None, :] > there[:, None]  # moving on once the position is reached
        after_goal = c.w_after_goal * (np.abs(controls[..., 0]) * after).sum(1) * dt if goal_is_final else 0.0
        clearance = c.w_clearance * (centre ** 2).mean(1)
        dv = np.empty_like(controls)  # the change of command at each step, from the velocity
        np.subtract(controls[:, :1], velocity, out=dv[:, :1])
        np.subtract(controls[:, 1:], controls[:, :-1], out=dv[:, 1:])
        accel_excess = np.maximum(np.abs(dv) - np.asarray(self.limits.acceleration) * dt, 0.0).sum((1, 2))
        jerk = c.w_jerk * ((dv[:, 1:] - dv[:, :-1]) ** 2).sum((1, 2))
        effort = c.w_effort * (controls ** 2).sum((1, 2)) * dt
        return {"collision": collision, "margin": margin_cost, "arrival": progress, "after_goal": after_goal,
                "clearance": clearance, "accel": c.w_accel * accel_excess, "jerk": jerk, "effort": effort}

    def plan(self, window: np.ndarray, velocity: np.ndarray, goal: np.ndarray, clip_distance: float,
             shift: int = 1, xy_tolerance: float = 0.15, previous_command: np.ndarray | None = None,
             yaw_tolerance: float | None = None, stateful: bool = True, margin: bool = True) -> np.ndarray:
        """The best plan [steps, 3] for a cost window, body velocity, robot-frame (clipped) goal and
        the command sent last (default: the velocity); ``yaw_tolerance``, ``margin``: see ``cost_terms``."""
        c = self.cfg
        goal_is_final = bool(np.hypot(goal[0], goal[1]) < clip_distance - 1e-3)
        span = self.high - self.low
        self.warm_started = self.previous is not None
        seeds = self._seeds(np.clip(velocity, self.low, self.high), goal, shift)
        n_rand = c.population - len(seeds)
        rand = self.low + span * self.rng.random((n_rand, c.knots, 3))
        pop = np.concatenate([seeds, rand])
        velocity = np.asarray(velocity, dtype=np.float64)

        def cost(p: np.ndarray, known: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
            """(controls, cost) of a population; ``known``: (controls, cost) of its first rows, scored before.
            A plan's cost depends on its controls alone, so a row whose controls are bit for bit the known
            ones keeps its known cost."""
            controls = self._controls(p)
            todo = np.ones(len(p), dtype=bool)
            fit = np.empty(len(p))
            if known is not None:
                e = len(known[1])
                same = (controls[:e].view(np.int64) == known[0].view(np.int64)).all(axis=(1, 2))
                todo[:e] = ~same
                fit[:e][same] = known[1][same]
            if todo.sum() <= 2:  # follow_batch picks its arithmetic by the batch size: score all, as always
                todo[:] = True
            fit[todo] = self.cost(controls if todo.all() else controls[todo], window, velocity, goal, goal_is_final,
                                  xy_tolerance, previous_command, yaw_tolerance, stateful, margin)
            return controls, fit

        controls, fit = cost(pop)
        for _ in range(c.generations):  # generations are sequential by nature
            order = np.argsort(fit)
            elite = pop[order[: c.elite]]
            known = controls[order[: c.elite]], fit[order[: c.elite]]  # the elite's cost is known
            n_child = c.population - c.elite
            # Tournament selection of two parents per child, in one batch.
            cand = self.rng.integers(0, c.population, size=(2, n_child, c.tournament))
            parents = np.take_along_axis(cand, np.argmin(fit[cand], axis=2)[..., None], axis=2)[..., 0]
            alpha = self.rng.random((n_child, c.knots, 1))
            children = alpha * pop[parents[0]] + (1.0 - alpha) * pop[parents[1]]
            mutate = self.rng.random(children.shape) < c.mutation_rate
            children = children + mutate * self.rng.standard_normal(children.shape) * c.mutation_std * span
            pop = np.clip(np.concatenate([elite, children]), self.low, self.high)
            controls, fit = cost(pop, known)
        best = controls[np.argmin(fit)].copy()  # exactly the plan that was scored
        self.previous = best
        return best
