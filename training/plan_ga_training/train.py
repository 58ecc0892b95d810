"""PyTorch training: episode-level validation split, mirror augmentation, early stopping, LR schedule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from plan_ga_ros.contract import ModelSpec
from plan_ga_ros.safety import lookahead_steps

from .config import CheckpointError, TrainConfig
from .losses import clearance_penalty
from .model import PlannerNet

MIRROR_STATE = torch.tensor([1, -1, -1, 1, -1, -1, 1, -1, -1], dtype=torch.float32)  # y, θ, v_y, ω, a_y, α


def mirror(costmap, state, goal, label, steps):
    """Reflect samples across the robot's x axis (left ↔ right): a free, exact augmentation."""
    flip = torch.tensor([1.0, -1.0, -1.0])
    return (costmap.flip(2), state * MIRROR_STATE, goal * flip,
            (label.view(-1, steps, 3) * flip).reshape(label.shape))


def split_by_episode(files: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    n_val = max(1, int(round(val_fraction * len(files))))
    return sorted(files[i] for i in order[n_val:]), sorted(files[i] for i in order[:n_val])


def to_tensors(data: dict[str, np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(data[k], dtype=np.float32))
            for k in ("costmap", "state", "goal", "meta", "label")]


def train(train_data: dict[str, np.ndarray], val_data: dict[str, np.ndarray], spec: ModelSpec, cfg: TrainConfig,
          out_dir: Path, seed: int = 0, init: Path | None = None) -> dict:
    """Train (or fine-tune from ``init``); writes planner.pt (best), history.json and loss.png."""
    torch.manual_seed(seed)
    torch.set_num_threads(cfg.threads)
    model = PlannerNet(spec)
    if init is not None and init.exists():
        load_weights(model, init)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.lr_factor, patience=cfg.lr_patience)
    tr, va = to_tensors(train_data), to_tensors(val_data)
    step_w = torch.ones(spec.steps, 1)
    step_w[0] = cfg.first_step_weight
    step_w = step_w / step_w.mean()

    lookahead = max(1, lookahead_steps(cfg.clearance_lookahead_time, spec))  # as the node's safety check

    def loss_fn(pred: torch.Tensor, label: torch.Tensor, costmap: torch.Tensor) -> torch.Tensor:
        err = (model.normalised(pred) - model.normalised(label)).view(-1, spec.steps, 3) ** 2
        loss = (err * step_w).mean()
        if cfg.clearance_weight > 0:
            plan = pred.view(-1, spec.steps, 3)
            loss = loss + cfg.clearance_weight * clearance_penalty(costmap, plan, spec, lookahead,
                                                                   cfg.clearance_threshold)
        return loss

    gen = torch.Generator().manual_seed(seed)
    best, best_epoch, history, wait = float("inf"), -1, [], 0
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / "planner.pt"
    n = len(tr[-1])
    bar = tqdm(range(cfg.epochs), desc="train", unit="epoch")
    for epoch in bar:
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            c, s, g, m, y = (t[idx] for t in tr)
            flip = torch.rand(len(idx), generator=gen) < 0.5
            if flip.any():
                c2, s2, g2, y2 = mirror(c[flip], s[flip], g[flip], y[flip], spec.steps)
                c, s, g, y = c.clone(), s.clone(), g.clone(), y.clone()
                c[flip], s[flip], g[flip], y[flip] = c2, s2, g2, y2
            loss = loss_fn(model(c, s, g, m), y, c)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        val = evaluate_loss(model, va, loss_fn, cfg.batch_size)
        sched.step(val)
        history.append({"epoch": epoch, "train": total / n, "val": val, "lr": opt.param_groups[0]["lr"]})
        bar.set_postfix(train=f"{total / n:.4f}", val=f"{val:.4f}")
        if val < best - 1e-6:
            best, best_epoch, wait = val, epoch, 0
            torch.save(model.state_dict(), ckpt)
        else:
            wait += 1
            if wait >= cfg.patience:
                break
    (out_dir / "history.json").write_text(json.dumps(history, indent=1))
    plot_losses(history, out_dir / "loss.png")
    return {"best_val": best, "best_epoch": best_epoch, "epochs": len(history), "train_samples": n,
            "val_samples": len(va[-1]), "checkpoint": str(ckpt)}


@torch.no_grad()
def evaluate_loss(model: PlannerNet, data: list[torch.Tensor], loss_fn, batch: int) -> float:
    model.eval()
    n, total = len(data[-1]), 0.0
    for i in range(0, n, batch):
        c, s, g, m, y = (t[i : i + batch] for t in data)
        total += float(loss_fn(model(c, s, g, m), y, c)) * len(y)
    return total / max(n, 1)


def plot_losses(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ep = [h["epoch"] for h in history]
    ax.plot(ep, [h["train"] for h in history], label="train")
    ax.plot(ep, [h["val"] for h in history], label="validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("weighted MSE (normalised controls)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_weights(model: PlannerNet, path: Path) -> PlannerNet:
    """The state dict at ``path`` (``weights_only``) into ``model``, with a clear error on a mismatch."""
    try:
        model.load_state_dict(torch.load(path, weights_only=True))
    except (RuntimeError, OSError, EOFError) as exc:
        raise CheckpointError(f"cannot load {path} into this version's PlannerNet (another architecture, "
                              f"window size or a damaged file; retrain it): {str(exc).splitlines()[0]}") from exc
    return model


def load_model(path: Path, spec: ModelSpec) -> PlannerNet:
    return load_weights(PlannerNet(spec), path).eval()
