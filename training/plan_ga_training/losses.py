"""Training losses: imitation of the GA's plans plus a differentiable clearance term.

Plain imitation left the network 0.1-0.2 m/s too fast next to obstacles, where the expert
creeps; the node's safety layer then rejected the plan and the robot stopped in front of the
obstacle for good (the failures of the first shipped model that were inspected). The
clearance term rolls the predicted plan out over the safety layer's lookahead and charges
the window cost under the robot centre above a threshold, so the network learns the
safety layer's rule and not only the expert's average.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from plan_ga_ros.contract import ModelSpec
from plan_ga_ros.kinematics import rollout


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


def clearance_penalty(costmap: torch.Tensor, plan: torch.Tensor, spec: ModelSpec, lookahead_steps: int,
                      threshold: float) -> torch.Tensor:
    """Mean over the batch (and hypotheses) of Σ_k relu(cost_k − threshold) over the first
    ``lookahead_steps`` poses of plans [B, T, 3] or [B, K, T, 3]."""
    xy = rollout_xy(plan[..., :lookahead_steps, :], spec.dt)
    cost = window_cost(costmap, xy, spec.window_cells, spec.resolution)
    return torch.relu(cost - threshold).sum(dim=-1).mean()
