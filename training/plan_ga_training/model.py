"""The planner network: the CNN of the original plan_ga design with state and goal encoders.

Inputs are the raw contract tensors; normalisation and the scaling of the output to the
velocity limits are part of the graph, so the exported ONNX model takes and returns SI units.
The pose entries (x, y, θ) of the state are never read: the model is pose-invariant.

The convolutions are unpadded ("valid"): on the 50×50 window they end at 5×5×128 = 3200 features
instead of 7×7×128 = 6272 with "same" padding, which halves the 256-unit layer, the largest cost of
an inference (its weights do not fit the L2 cache). Only the window's last row and column go
unread. Measured at batch 1, one thread: 0.094 ms against 0.145 ms (docs/PERFORMANCE.md).

With ``hypotheses`` K > 1 the head proposes K plans and a score for each (trained winner-takes-all:
the expert's choices in one state are often several, e.g. around a pillar on the left or on the
right, and a single regressed plan averages them into a hesitant creep). The graph itself picks the
plan to return: the highest score minus SELECT_WEIGHT times the window cost above SELECT_COST summed
over the plan's first second (the training loss's clearance rule). A soft rule on purpose: in a
doorway every plan passes some high cost, and a hard one would pick whichever moves least. The
[B, steps*3] output contract is unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from plan_ga_ros.contract import GOAL_INPUT, METADATA_INPUT, STATE_FIELDS, ModelSpec, input_shapes
from plan_ga_ros.safety import lookahead_steps

from .losses import cost_above

SELECT_LOOKAHEAD_TIME = 1.0  # s of each hypothesis checked against the window before the pick
SELECT_COST = 0.8  # window cost under the robot centre above which a hypothesis is penalised
SELECT_WEIGHT = 100.0  # per unit of cost above SELECT_COST and step: large against typical score gaps
MOTION_FROM = STATE_FIELDS.index("v_x")  # the state's pose entries (x, y, θ) come before it and go unread


class PlannerNet(nn.Module):
    """The contract's four inputs → [B, steps*3] controls in SI units, within the spec's velocity limits.

    ``hidden``, ``decay_scale`` (the divisor of inflation_decay) and ``hypotheses`` (plans proposed per
    input, 1: a plain regression) are the constructor arguments a checkpoint stores beside the spec
    (``model_args``); every other size comes from the contract.
    """

    def __init__(self, spec: ModelSpec, hidden: int, decay_scale: float, hypotheses: int = 1) -> None:
        super().__init__()
        self.spec, self.steps, self.controls, self.k = spec, spec.steps, len(spec.controls), int(hypotheses)
        self.select_steps = max(1, lookahead_steps(SELECT_LOOKAHEAD_TIME, spec))
        shapes = input_shapes(spec)
        n = spec.window_cells
        motion = len(STATE_FIELDS) - MOTION_FROM  # velocities and accelerations
        goal = shapes[GOAL_INPUT][0] + 1  # dx, dy, cos dθ, sin dθ
        meta = shapes[METADATA_INPUT][0]  # inflation_decay, resolution
        self.costmap_encoder = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=5, stride=2), nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=3, stride=2), nn.ReLU(),
            nn.Conv2d(64, 128, kernel_size=3, stride=2), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.costmap_encoder(torch.zeros(1, 1, n, n)).shape[1]
        self.costmap_fc = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU())
        self.state_encoder = nn.Sequential(nn.Linear(motion, 64), nn.ReLU())
        self.goal_encoder = nn.Sequential(nn.Linear(goal + meta, 64), nn.ReLU())
        self.head = nn.Sequential(
            nn.Linear(hidden + 128, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, self.k * spec.output_size + (self.k if self.k > 1 else 0)),
        )
        lim = spec.limits
        low, high = torch.tensor(lim.velocity_low), torch.tensor(lim.velocity_high)
        self.register_buffer("out_mid", (high + low) / 2)
        self.register_buffer("out_half", (high - low) / 2)
        # Linear rates share one scale: a zero lateral limit (diff drive) must not amplify odometry noise.
        speed = max(lim.max_v_x, -lim.min_v_x, lim.max_v_y, 0.1)
        lin_acc = max(lim.max_a_x, lim.max_a_y, 0.1)
        rates = torch.tensor([speed, speed, max(lim.max_omega, 0.1)])
        acc = torch.tensor([lin_acc, lin_acc, max(lim.max_alpha, 0.1)])
        self.register_buffer("state_scale", torch.cat([rates, acc]))
        self.register_buffer("goal_scale", torch.tensor(spec.goal_clip_distance))
        self.register_buffer("meta_scale", torch.tensor([decay_scale, spec.resolution]))

    def hypotheses(self, costmap: torch.Tensor, robot_state: torch.Tensor, goal: torch.Tensor,
                   metadata: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(plans [B, K, steps, 3] in SI units, scores [B, K]); the scores are 0 when K = 1."""
        c = self.costmap_fc(self.costmap_encoder(costmap))
        s = self.state_encoder(robot_state[:, MOTION_FROM:] / self.state_scale)
        g = torch.cat([goal[:, :2] / self.goal_scale, torch.cos(goal[:, 2:3]), torch.sin(goal[:, 2:3]),
                       metadata / self.meta_scale], dim=1)
        h = self.head(torch.cat([c, s, self.goal_encoder(g)], dim=1))
        n = self.k * self.steps * self.controls
        plans = self.out_mid + self.out_half * torch.tanh(h[:, :n].reshape(-1, self.k, self.steps, self.controls))
        scores = h[:, n:] if self.k > 1 else torch.zeros_like(h[:, :1])
        return plans, scores

    def blocked(self, costmap: torch.Tensor, plans: torch.Tensor) -> torch.Tensor:
        """[B, K]: Σ over each plan's first SELECT_LOOKAHEAD_TIME of the window cost above SELECT_COST."""
        return cost_above(costmap, plans, self.spec, self.select_steps, SELECT_COST)

    def choice(self, costmap: torch.Tensor, plans: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """[B] the index of the hypothesis the graph returns: the best score less the cost penalty."""
        return (scores - SELECT_WEIGHT * self.blocked(costmap, plans)).argmax(dim=1)

    def pick(self, costmap: torch.Tensor, plans: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """The plan [B, steps*3] the graph returns of ``hypotheses``' output (the only one when K = 1)."""
        if self.k > 1:
            best = self.choice(costmap, plans, scores)
            plans = torch.gather(plans, 1, best.view(-1, 1, 1, 1).expand(-1, 1, self.steps, self.controls))
        return plans.reshape(-1, self.steps * self.controls)

    def forward(self, costmap: torch.Tensor, robot_state: torch.Tensor, goal: torch.Tensor,
                metadata: torch.Tensor) -> torch.Tensor:
        return self.pick(costmap, *self.hypotheses(costmap, robot_state, goal, metadata))

    def normalised(self, plan: torch.Tensor) -> torch.Tensor:
        """Plans [..., steps*3] or [..., steps, 3] in SI units → the tanh range, where the loss is measured."""
        half = torch.clamp(self.out_half, min=1e-6)
        return ((plan.view(-1, self.steps, self.controls) - self.out_mid) / half).reshape(plan.shape)
