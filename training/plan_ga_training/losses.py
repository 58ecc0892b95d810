"""Training losses: imitation of the GA's plans plus a differentiable clearance term.

With several hypotheses per input (``model.hypotheses``) the imitation term is winner-takes-all: only
the plan closest to the expert's label is pulled toward it (the expert's choices in similar states
differ, and a single regression averages them), and the scores learn which plan that was.

Plain imitation left the network 0.1-0.2 m/s too fast next to obstacles, where the expert
creeps; the node's safety layer then rejected the plan and the robot stopped in front of the
obstacle for good (the failures of the first shipped model that were inspected). The
clearance term rolls the predicted plan out over the safety layer's lookahead and charges
the window cost under the robot centre above a threshold, so the network learns the
safety layer's rule and not only the expert's average.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from plan_ga_ros.contract import ModelSpec
from plan_ga_ros.kinematics import rollout

if TYPE_CHECKING:
    from .config import TrainConfig
    from .model import PlannerNet


def rollout_xy(plan: torch.Tensor, dt: float) -> torch.Tensor:
    """Robot-frame positions [..., T, 2] after each step of body-frame twists [..., T, 3]: the node's
    exact-arc ``kinematics.rollout`` run on tensors, so gradients flow through the same rollout."""
    start = torch.zeros(*plan.shape[:-2], 3, dtype=plan.dtype, device=plan.device)
    return rollout(start, plan, dt)[..., 1:, :2]


def window_cost(costmap: torch.Tensor, xy: torch.Tensor, cells: int, resolution: float) -> torch.Tensor:
    """Bilinear window cost [B, T] or [B, K, T] at robot-frame points [B, T, 2] or [B, K, T, 2]; 0 outside
    the window of ``cells`` × ``cells`` at ``resolution``.

    The window's cell (r, c) covers x in [(c - n/2) res, (c + 1 - n/2) res) and y likewise
    with r (``plan_ga_ros.safety.window_lookup``), which is grid_sample's align_corners=False.
    """
    grid = xy / (cells * resolution / 2.0)  # (x → columns, y → rows)
    if grid.dim() == 3:
        grid = grid.unsqueeze(1)
    out = F.grid_sample(costmap, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
    return out.reshape(xy.shape[:-1])


def cost_above(costmap: torch.Tensor, plan: torch.Tensor, spec: ModelSpec, lookahead_steps: int,
               threshold: float) -> torch.Tensor:
    """Σ_k relu(cost_k − threshold) over the first ``lookahead_steps`` poses: [B] for plans [B, T, 3], [B, K]
    for [B, K, T, 3]. The clearance penalty and the graph's pick among hypotheses both use it."""
    xy = rollout_xy(plan[..., :lookahead_steps, :], spec.dt)
    return torch.relu(window_cost(costmap, xy, spec.window_cells, spec.resolution) - threshold).sum(dim=-1)


def clearance_penalty(costmap: torch.Tensor, plan: torch.Tensor, spec: ModelSpec, lookahead_steps: int,
                      threshold: float) -> torch.Tensor:
    """Mean over the batch of ``cost_above`` of plans [B, T, 3], or of its sum over the hypotheses of plans
    [B, K, T, 3] (each plan may be the one picked, so each is held to the single plan's rule, not 1/K of it)."""
    per_plan = cost_above(costmap, plan, spec, lookahead_steps, threshold)
    return per_plan.reshape(per_plan.shape[0], -1).sum(dim=1).mean()


def goal_weights(goal: torch.Tensor, cfg: TrainConfig, mean: float = 1.0) -> torch.Tensor | None:
    """Per-sample weights [B] of the imitation term: 1 + ``goal_weight`` where the model's goal is within
    ``goal_weight_radius`` (the final approach, where the goal is the goal and not a carrot or a clipped one),
    divided by ``mean`` (``mean_goal_weight`` of the training set: the term keeps its scale against the
    clearance term, alike in every batch and in validation); None when ``goal_weight`` is 0."""
    if cfg.goal_weight <= 0:
        return None
    near = torch.hypot(goal[:, 0], goal[:, 1]) < cfg.goal_weight_radius
    return (1.0 + cfg.goal_weight * near.to(goal.dtype)) / mean


def mean_goal_weight(goal: torch.Tensor, cfg: TrainConfig) -> float:
    """The mean of ``goal_weights`` (before the division) over goals [N, 3]: 1 when ``goal_weight`` is 0."""
    w = goal_weights(goal, cfg)
    return 1.0 if w is None else float(w.mean())


def planner_loss(model: PlannerNet, out: tuple[torch.Tensor, torch.Tensor], label: torch.Tensor,
                 costmap: torch.Tensor, step_w: torch.Tensor, cfg: TrainConfig, lookahead: int,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
    """The training loss of ``model.hypotheses``' output (plans [B, K, T, 3], scores [B, K]) against labels
    [B, T*3]: step-weighted MSE (normalised controls) of the hypothesis closest to the label, ``wta_spread``
    of it shared by all; the scores' cross-entropy toward that hypothesis; every plan's clearance penalty.
    With one hypothesis: the weighted MSE plus the clearance penalty. ``weight`` [B] (``goal_weights``)
    scales each sample's imitation terms."""
    plans, scores = out
    steps = plans.shape[2]
    target = model.normalised(label).view(-1, 1, steps, 3)
    err = ((model.normalised(plans) - target) ** 2 * step_w).mean(dim=(2, 3))  # [B, K]
    best = err.detach().argmin(dim=1)
    if weight is not None:
        err = err * weight[:, None]
    loss = err.gather(1, best[:, None]).mean()
    if plans.shape[1] > 1:
        loss = (1 - cfg.wta_spread) * loss + cfg.wta_spread * err.mean()
        loss = loss + cfg.score_weight * F.cross_entropy(scores, best)
    if cfg.clearance_weight > 0:
        loss = loss + cfg.clearance_weight * clearance_penalty(costmap, plans, model.spec, lookahead,
                                                               cfg.clearance_threshold)
    if cfg.collision_weight > 0:  # the whole plan, beyond the safety layer's horizon too
        loss = loss + cfg.collision_weight * clearance_penalty(costmap, plans, model.spec, steps,
                                                               cfg.collision_threshold)
    return loss
