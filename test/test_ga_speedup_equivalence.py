"""The GA's fast paths compute exactly what the plain ones do: the same bits, so the same plan.

Each reference below is the straightforward form a fast path replaced: the probe measuring every cell
of the (2r+1)² box, the twists chased step by step and rolled out with ``rollout``, ``safety.follow``
for the GA's population (braking over every step), and a GA that scores every plan every generation.
"""

import numpy as np
import pytest

from plan_ga_ros import kinematics, safety
from plan_ga_ros.contract import Limits, ModelSpec
from plan_ga_ros.ga import GAConfig, GAPlanner, reached_tol
from plan_ga_ros.planner import PlannerConfig
from plan_ga_ros.tensors import wrap_angle

SPEC = ModelSpec()
OMNI = Limits(min_v_x=-0.3, max_v_x=0.6, max_v_y=0.4, max_omega=1.2, max_a_x=1.5, max_a_y=0.0, max_alpha=2.5)


def same_bits(a, b) -> None:
    """Equal arrays, NaN where NaN, and the same sign on every zero."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)
    if a.dtype.kind == "f":
        assert (np.signbit(a) == np.signbit(b))[~np.isnan(a)].all()


def windows(seed: int, count: int) -> list[np.ndarray]:
    """Cost windows from empty to dense, with inflation-like costs between the lethal cells."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        shape = (50, 50) if i % 3 else tuple(rng.integers(5, 40, size=2))
        lethal = rng.random(shape) < rng.uniform(0.0, 0.4)
        out.append(np.where(lethal, 1.0, rng.uniform(0.0, 0.995, shape)).astype(np.float32))
    return out


# ---------------------------------------------------------------- the probe


def box_probe(window: np.ndarray, xy: np.ndarray, resolution: float, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """The probe measuring every cell of the box around each point (no tables)."""
    window = np.asarray(window, np.float32)
    ny, nx = window.shape
    r = max(int(np.ceil(reach / resolution)), 1)
    p = 2 * r
    costs = np.zeros((ny + 2 * p, nx + 2 * p), np.float32)
    costs[p: p + ny, p: p + nx] = window
    lethal = (costs >= safety.LETHAL_COST).ravel()
    w = nx + 4 * r
    xy = np.asarray(xy, np.float64)
    col = np.floor(xy[..., 0] * (1.0 / resolution) + (nx / 2.0 + 2 * r))
    row = np.floor(xy[..., 1] * (1.0 / resolution) + (ny / 2.0 + 2 * r))
    inside = (col >= r) & (col < nx + 3 * r) & (row >= r) & (row < ny + 3 * r)
    index = np.where(inside, row * w + col, 0).astype(np.intp)
    cost = costs.ravel().take(index)
    out = np.full(xy.shape[:-1], np.inf)
    pts, i = xy[inside], index[inside]
    off = np.arange(-r, r + 1)
    cells = i[:, None, None] + (off[:, None] * w + off[None, :])
    gx = np.abs(pts[:, 0, None, None] - ((cells % w) + (0.5 - 2 * r - nx / 2.0)) * resolution)
    gy = np.abs(pts[:, 1, None, None] - ((cells // w) + (0.5 - 2 * r - ny / 2.0)) * resolution)
    gx = np.maximum(gx - 0.5 * resolution, 0.0)
    gy = np.maximum(gy - 0.5 * resolution, 0.0)
    d = np.sqrt(np.where(lethal.take(cells), gx * gx + gy * gy, np.inf).reshape(len(pts), -1).min(axis=1))
    out[inside] = np.where(d < reach, d, np.inf)
    return cost, out


@pytest.mark.parametrize("seed", range(4))
def test_probe_is_the_full_box_search(seed):
    rng = np.random.default_rng(seed)
    found = 0
    for i, window in enumerate(windows(seed, 6)):
        res = [0.1, 0.05, 0.2, 0.07][i % 4]
        half = 0.6 * max(window.shape) * res
        pts = rng.uniform(-half, half, (300, 2))
        edges = np.round(pts / (0.5 * res)) * (0.5 * res)  # on cell edges and centres
        nudged = edges + rng.choice([-1, 1], edges.shape) * np.spacing(edges) * rng.integers(0, 3, edges.shape)
        odd = [[np.nan, 0.0], [np.inf, 1.0], [0.0, -np.inf], [-0.0, -0.0], [1e300, 0.0]]
        xy = np.concatenate([pts, edges, nudged, odd])
        for reach in (0.5 * res, res, 0.3, 2.5 * res, 4.9 * res):
            cost, d = safety.probe(window, xy, res, reach)
            ref_cost, ref_d = box_probe(window, xy, res, reach)
            same_bits(cost, ref_cost)
            same_bits(d, ref_d)
            found += int(np.isfinite(d).sum())
    assert found > 1000  # the box search really ran


# ---------------------------------------------------------------- following a plan


def chased_twists(velocity, controls, limits, dt, substeps):
    """``followed_twists`` as a plain loop over the steps: [..., T*substeps, 3]."""
    controls = np.asarray(controls, np.float64)
    acc = np.asarray(limits.acceleration, np.float64)
    acc = np.where(acc > 0.0, acc, 1e12)
    step = acc * dt
    flat = controls.reshape(-1, *controls.shape[-2:])
    v = np.broadcast_to(np.asarray(velocity, np.float64), controls.shape[:-2] + (3,)).reshape(-1, 3)
    starts = np.empty_like(flat)
    if len(flat) <= 4:  # plain floats, as the kinematics do for a few plans
        for b in range(len(flat)):
            u = v[b].tolist()
            for k in range(flat.shape[1]):
                starts[b, k] = u
                u = [min(max(c, x - s), x + s) for c, x, s in zip(flat[b, k].tolist(), u, step.tolist())]
    else:
        for k in range(flat.shape[1]):
            starts[:, k] = v
            v = np.minimum(np.maximum(flat[:, k], v - step), v + step)
    starts = starts.reshape(controls.shape)
    t = np.arange(substeps + 1.0)[:, None] * (dt / substeps)
    delta = (controls - starts)[..., None, :]
    gap = np.abs(delta)
    with np.errstate(over="ignore", invalid="ignore"):
        ramp = np.where(acc * t <= gap, 0.5 * acc * t * t, gap * t - gap * gap / (2.0 * acc))
        sub = starts[..., None, :] + np.sign(delta) * np.diff(ramp, axis=-2) * (substeps / dt)
    return sub.reshape(*controls.shape[:-2], controls.shape[-2] * substeps, 3)


def arc_rollout(twists, dt):
    """``rollout`` from the origin, written out: poses [..., N+1, 3]."""
    vx, vy, w = twists[..., 0], twists[..., 1], twists[..., 2]
    wdt = w * dt
    small = np.abs(w) < 1e-9
    w_safe = np.where(small, 1.0, w)
    s_term = np.where(small, dt, np.sin(wdt) / w_safe)
    c_term = np.where(small, 0.5 * w * dt * dt, (1.0 - np.cos(wdt)) / w_safe)
    dxb, dyb = vx * s_term - vy * c_term, vx * c_term + vy * s_term
    zero = np.zeros_like(wdt[..., :1])
    headings = 0.0 + np.concatenate([zero, np.cumsum(wdt, axis=-1)], axis=-1)
    h = headings[..., :-1]
    xs = 0.0 + np.concatenate([zero, np.cumsum(np.cos(h) * dxb - np.sin(h) * dyb, axis=-1)], axis=-1)
    ys = 0.0 + np.concatenate([zero, np.cumsum(np.sin(h) * dxb + np.cos(h) * dyb, axis=-1)], axis=-1)
    return np.stack([xs, ys, headings], axis=-1)


@pytest.mark.parametrize("limits", [SPEC.limits, OMNI])
def test_twists_and_rollout_are_the_step_loop(limits):
    rng = np.random.default_rng(2)
    acc = np.asarray(limits.acceleration)
    for v0 in (np.zeros(3), acc * 0.1, -acc * 0.1, np.array([-0.0, 0.0, -0.0]), rng.uniform(-0.5, 0.5, 3)):
        for shape in ((20,), (1, 20), (3, 20), (4, 20), (5, 20), (2, 7, 13), (6, 20), (64, 20)):
            # Signed zeros and exact rate bounds (ties), then random commands after the first steps.
            controls = rng.choice([-0.0, 0.0, 0.1, -0.1, 0.3, -0.3, 0.5], shape + (3,))
            if shape[0] % 2:
                controls[..., 5:, :] = rng.uniform(-1, 1, controls[..., 5:, :].shape)
            for m in (1, 2, 3):
                twists = chased_twists(v0, controls, limits, 0.1, m)
                same_bits(kinematics.followed_twists(v0, controls, limits, 0.1, m), twists)
                same_bits(kinematics.followed_rollout(v0, controls, limits, 0.1, m), arc_rollout(twists, 0.1 / m))
        same_bits(kinematics.rollout(np.zeros(3), controls, 0.07), arc_rollout(controls, 0.07))
    bad = np.array([[[0.3, 0.0, np.nan], [np.inf, 0.0, 0.0], [1e300, 0.0, 1e300]]] * 6)
    for rows in (1, 6):
        same_bits(kinematics.followed_twists(np.zeros(3), bad[:rows], limits, 0.1, 2),
                  chased_twists(np.zeros(3), bad[:rows], limits, 0.1, 2))


def test_braking_in_closed_form_is_the_step_loop():
    step = np.array([0.1, 1e11, 0.3])
    rng = np.random.default_rng(3)
    u = np.concatenate([rng.uniform(-2, 2, (3, 40)), np.array([[0.1, -0.1, 0.2, 0.3, 1e-300, -0.0, 0.0, np.inf]] * 3),
                        np.array([[-np.inf, np.nan, 0.30000000000000004, 5e-17, -5e-17, 0.6, -0.9, 1.0]] * 3)], axis=1)
    loop = np.empty(u.shape + (12,))
    v = u.copy()
    for k in range(12):
        loop[..., k] = v
        v = np.minimum(np.maximum(0.0, v - step[:, None]), v + step[:, None])
    same_bits(kinematics._stop_starts(u, step, 12), loop)


def population_cases():
    """(window, velocity, plans [P, T, 3], hold, brake steps), crowded and moving."""
    rng = np.random.default_rng(4)
    lim = SPEC.limits
    wall = np.zeros((50, 50), np.float32)
    wall[:, 29:] = 1.0  # 0.4 m ahead: braking from full speed reaches it
    cases = []
    for i, window in enumerate(windows(5, 6) + [wall, wall]):
        if window.shape != (50, 50):
            continue
        window = window.copy()
        window[24:27, 24:27] = 0.0
        velocity = [np.zeros(3), np.array([0.5, 0.0, 1.2]), np.array([0.1, 0.0, -0.3]),
                    np.array([0.37, 0.0, 0.0])][i % 4]
        for n, hold, k in ((64, 1, 10), (3, 1, 20), (2, 2, 5), (1, 1, 1), (64, 3, 7), (5, 1, 0)):
            plans = np.clip(rng.uniform(-0.2, 1.2, (n, SPEC.steps, 3)) * [0.5, 0.0, 1.5], lim.velocity_low,
                            lim.velocity_high)
            plans[: n // 2, 0] = velocity  # braking from the speed the robot has
            cases.append((window, velocity, plans, hold, k))
    return cases


def test_follow_batch_is_follow():
    brake_hits = stood_still = 0
    for window, velocity, plans, hold, k in population_cases():
        batch = safety.follow_batch(plans, window, velocity, SPEC, 0.2, SPEC.limits, hold, k)
        ref = safety.follow(plans, window, velocity, SPEC, 0.2, SPEC.limits, hold)
        m = ref.substeps
        assert batch.substeps == m and batch.need == ref.need
        same_bits(batch.hits, ref.hits[:, 0])
        same_bits(batch.clearance, ref.clearance[:, 0])
        same_bits(batch.step_poses, ref.step_poses)
        same_bits(batch.brake_hits, ref.hits[:, 1, : k * m])
        brake_hits += int(batch.brake_hits.any(1).sum())
        stood_still += int(k > 1 and np.all(ref.poses[:, 1, k * m] == ref.poses[:, 1, (k - 1) * m]))
    assert brake_hits > 0 and stood_still > 0  # braking collided, and stood still before its last step


# ---------------------------------------------------------------- the GA


def plain_cost(ga: GAPlanner, controls, window, velocity, goal, goal_is_final, xy_tolerance=0.15,
               previous_command=None):
    """``GAPlanner.cost`` on ``safety.follow`` (both branches over every step)."""
    c, dt, steps = ga.cfg, ga.spec.dt, ga.spec.steps
    previous = velocity if previous_command is None else previous_command
    controls = kinematics.commanded(controls, previous, ga.limits, ga.speed_limit, ga.control_period)
    followed = safety.follow(controls, window, velocity, ga.spec, ga.radius, ga.limits, ga.hold)
    m, n = followed.substeps, len(controls)
    horizon = safety.collision_horizon(ga.lookahead_time, velocity, ga.limits)
    k = max(1, safety.lookahead_steps(horizon, ga.spec))
    hit = followed.hits[:, 0].reshape(n, steps, m).any(-1)
    hit[:, 0] |= followed.hits[:, 1, : k * m].any(-1)
    first_hit = np.where(hit.any(1), hit.argmax(1), steps)
    collision = c.w_collision * (hit.any(1) * (1.0 + (steps - first_hit) / steps))
    gap = followed.clearance[:, 0, 1:] - followed.need
    margin = c.w_margin * np.clip(1.0 - gap.min(1) / safety.MARGIN, 0.0, 1.0) ** 2
    poses = followed.step_poses[:, 1:]
    centre = safety.window_lookup(window, poses[..., :2], ga.spec.resolution)
    dist = np.hypot(poses[..., 0] - goal[0], poses[..., 1] - goal[1])
    reached = dist <= (min(c.goal_radius, xy_tolerance) if goal_is_final else c.goal_radius)
    first = np.where(reached.any(1), reached.argmax(1), dist.shape[1] - 1)
    end = poses[np.arange(len(poses)), first]
    d_end = np.hypot(goal[0] - end[:, 0], goal[1] - end[:, 1])
    travel = np.arctan2(goal[1] - end[:, 1], goal[0] - end[:, 0])
    far = d_end > reached_tol(c, xy_tolerance)
    turn = np.where(far, np.abs(wrap_angle(travel - end[:, 2])), 0.0)
    if goal_is_final:
        turn = turn + np.abs(wrap_angle(goal[2] - np.where(far, travel, end[:, 2])))
    ttg = d_end / max(min(ga.limits.max_v_x, ga.speed_limit), 1e-3) + turn / max(ga.limits.max_omega, 1e-3)
    progress = c.w_time * ((first + 1) * dt + ttg)
    after = np.arange(steps)[None, :] > first[:, None]
    after_goal = c.w_after_goal * (np.abs(controls[..., 0]) * after).sum(1) * dt if goal_is_final else 0.0
    clearance = c.w_clearance * (centre ** 2).mean(1)
    dv = np.diff(np.concatenate([np.broadcast_to(velocity, (n, 1, 3)), controls], 1), axis=1)
    accel_excess = np.clip(np.abs(dv) - np.asarray(ga.limits.acceleration) * dt, 0.0, None).sum((1, 2))
    jerk = c.w_jerk * (np.diff(dv, axis=1) ** 2).sum((1, 2))
    effort = c.w_effort * (controls ** 2).sum((1, 2)) * dt
    return collision + margin + progress + after_goal + clearance + c.w_accel * accel_excess + jerk + effort


def plain_plan(ga: GAPlanner, window, velocity, goal, clip_distance, shift=1, xy_tolerance=0.15,
               previous_command=None):
    """``GAPlanner.plan`` scoring every plan (the elite too) with ``plain_cost`` every generation."""
    c = ga.cfg
    goal_is_final = bool(np.hypot(goal[0], goal[1]) < clip_distance - 1e-3)
    span = ga.high - ga.low
    seeds = ga._seeds(np.clip(velocity, ga.low, ga.high), goal, shift)
    pop = np.concatenate([seeds, ga.low + span * ga.rng.random((c.population - len(seeds), c.knots, 3))])
    velocity = np.asarray(velocity, dtype=np.float64)

    def cost(p):
        controls = ga._controls(p)
        return controls, plain_cost(ga, controls, window, velocity, goal, goal_is_final, xy_tolerance,
                                    previous_command)

    controls, fit = cost(pop)
    for _ in range(c.generations):
        order = np.argsort(fit)
        elite = pop[order[: c.elite]]
        n_child = c.population - c.elite
        cand = ga.rng.integers(0, c.population, size=(2, n_child, c.tournament))
        parents = np.take_along_axis(cand, np.argmin(fit[cand], axis=2)[..., None], axis=2)[..., 0]
        alpha = ga.rng.random((n_child, c.knots, 1))
        children = alpha * pop[parents[0]] + (1.0 - alpha) * pop[parents[1]]
        mutate = ga.rng.random(children.shape) < c.mutation_rate
        children = children + mutate * ga.rng.standard_normal(children.shape) * c.mutation_std * span
        pop = np.clip(np.concatenate([elite, children]), ga.low, ga.high)
        controls, fit = cost(pop)
    ga.previous = controls[np.argmin(fit)].copy()
    return ga.previous


def ga_cases():
    cfg = PlannerConfig()
    for i, (window, velocity, _, _, _) in enumerate(population_cases()[::9]):
        goal = np.array([2.0 * np.cos(i), 2.0 * np.sin(i), 0.3 * i])
        yield window, velocity, goal, dict(lookahead_time=cfg.collision_lookahead_time,
                                           control_period=cfg.control_period)
    yield population_cases()[0][0], np.array([0.2, 0.0, 0.5]), np.array([0.6, -0.4, 1.0]), dict(
        lookahead_time=float("inf"), control_period=0.25, speed_limit=0.3)


def test_cost_of_a_plan_does_not_depend_on_its_batch():
    """What lets the GA keep the elite's cost instead of scoring it again."""
    rng = np.random.default_rng(6)
    for window, velocity, goal, kw in ga_cases():
        straight = GAPlanner(SPEC, SPEC.limits, 0.2, GAConfig(navigation=False), **kw)  # the reference's time to go
        controls = straight._controls(straight.low + (straight.high - straight.low) * rng.random((64, 5, 3)))
        same_bits(straight.cost(controls, window, velocity, goal, True),
                  plain_cost(straight, controls, window, velocity, goal, True))
        ga = GAPlanner(SPEC, SPEC.limits, 0.2, **kw)
        full = ga.cost(controls, window, velocity, goal, True)
        for rows in (np.arange(4, 64), rng.permutation(64)[:7], np.arange(3)):
            same_bits(ga.cost(controls[rows], window, velocity, goal, True), full[rows])


@pytest.mark.parametrize("config", [GAConfig(navigation=False),  # plain_cost's straight-line time to go
                                    GAConfig(population=12, elite=9, generations=4, navigation=False),
                                    GAConfig(population=16, elite=2, generations=6, navigation=False)])
def test_ga_plans_as_if_it_scored_every_plan_every_generation(config):
    for seed, (window, velocity, goal, kw) in enumerate(ga_cases()):
        fast = GAPlanner(SPEC, SPEC.limits, 0.2, config, seed=seed, **kw)
        plain = GAPlanner(SPEC, SPEC.limits, 0.2, config, seed=seed, **kw)
        for shift, previous in ((1, None), (2, velocity * 0.5)):  # a cold start, then a warm one
            same_bits(fast.plan(window, velocity, goal, 2.0, shift, 0.1, previous),
                      plain_plan(plain, window, velocity, goal, 2.0, shift, 0.1, previous))
