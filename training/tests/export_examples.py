"""The course's export exercise: a module that cannot be exported, and its vectorised fix."""

from __future__ import annotations

import torch
from torch import nn


class BrokenModel(nn.Module):
    """Python loop building a list, ``len()`` of it, and an ``if`` on a tensor value."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(10, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        results = []
        for _ in range(3):
            results.append(self.fc(x))
        if len(results) == 3 and x.sum() > 0:
            return torch.stack(results).sum(dim=0)
        return x


class FixedModel(nn.Module):
    """The same function, vectorised: one stacked op and ``torch.where`` per sample."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(10, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        summed = 3.0 * self.fc(x)
        positive = x.sum(dim=1, keepdim=True) > 0
        return torch.where(positive, summed, x)


class AdaptivePoolModel(nn.Module):
    """Adaptive pooling to a size that does not divide the input (50 → 7)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x).flatten(1)
