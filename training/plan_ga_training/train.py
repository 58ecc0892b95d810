"""PyTorch training: episode-level validation split, mirror augmentation, early stopping, LR schedule.

Checkpoints are self-describing (nanoGPT style): ``planner.pt`` holds the weights, the network's
constructor arguments, the model spec, the training config and the epoch, so ``verify``, ``export``
and ``profile`` rebuild the network from the file alone (loaded with ``weights_only=True``).
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from plan_ga_ros.contract import STATE_FIELDS, ContractError, ModelSpec
from plan_ga_ros.safety import lookahead_steps

from .config import CheckpointError, Config, model_spec, to_dict
from .losses import goal_weights, mean_goal_weight, planner_loss
from .model import PlannerNet

CHECKPOINT_FORMAT = 2  # 1 was a bare state dict
ARGS_BEFORE = {"hypotheses": 1}  # PlannerNet arguments a checkpoint may predate, and what they were then


@dataclass
class Checkpoint:
    model: PlannerNet  # in eval mode
    spec: ModelSpec
    model_args: dict
    config: dict  # the training config (plain JSON values)
    epoch: int


def save_checkpoint(path: Path, model: PlannerNet, spec: ModelSpec, model_args: dict, config: dict,
                    epoch: int) -> None:
    torch.save({"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "model_args": dict(model_args),
                "spec": spec.to_json(), "config": json.loads(json.dumps(config)), "epoch": int(epoch)}, path)


def load_checkpoint(path: Path) -> Checkpoint:
    """Rebuild the network from a checkpoint alone; CheckpointError with the reason otherwise."""
    try:
        data = torch.load(path, weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise CheckpointError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a planner checkpoint of format {CHECKPOINT_FORMAT} (model, model_args, "
                              "spec, config, epoch); a bare state dict is the old format: retrain")
    try:
        spec = ModelSpec.from_json(data["spec"])
        args = {**ARGS_BEFORE, **data["model_args"]}  # arguments added since default to the old network
        model = PlannerNet(spec, **args)
        model.load_state_dict(data["model"])
    except (KeyError, TypeError, RuntimeError, ContractError) as exc:
        raise CheckpointError(f"cannot rebuild the network from {path}: {str(exc).splitlines()[0]}") from exc
    return Checkpoint(model.eval(), spec, args, data.get("config", {}), int(data.get("epoch", -1)))


MIRRORED = ("y", "theta", "v_y", "omega", "a_y", "alpha")  # state entries that change sign left ↔ right
MIRROR_STATE = torch.tensor([-1.0 if f in MIRRORED else 1.0 for f in STATE_FIELDS])


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


def train(train_data: dict[str, np.ndarray], val_data: dict[str, np.ndarray], config: Config, out_dir: Path,
          init: Path | None = None) -> dict:
    """Train (or fine-tune from the checkpoint ``init``); writes planner.pt (best), history.json and loss.png."""
    cfg, spec, model_args = config.train, model_spec(config), dataclasses.asdict(config.model)
    torch.manual_seed(config.seed)
    torch.set_num_threads(cfg.threads)
    model = PlannerNet(spec, **model_args)
    fine_tune = init is not None and init.exists()
    if fine_tune:
        start = load_checkpoint(init)
        if start.spec.with_overrides(training_data_hash="", git_commit="") != spec or start.model_args != model_args:
            raise CheckpointError(f"{init} was trained for another model (spec or model arguments differ); "
                                  "train from scratch or change the config back")
        model.load_state_dict(start.model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.lr_factor, patience=cfg.lr_patience)
    tr, va = to_tensors(train_data), to_tensors(val_data)
    step_w = torch.ones(spec.steps, 1)
    step_w[0] = cfg.first_step_weight
    step_w = step_w / step_w.mean()

    lookahead = max(1, lookahead_steps(cfg.clearance_lookahead_time, spec))  # as the node's safety check

    w_mean = mean_goal_weight(tr[2], cfg)  # the training set's: one scale for every batch and validation

    def loss_fn(out: tuple[torch.Tensor, torch.Tensor], label: torch.Tensor, costmap: torch.Tensor,
                goal: torch.Tensor) -> torch.Tensor:
        return planner_loss(model, out, label, costmap, step_w, cfg, lookahead, goal_weights(goal, cfg, w_mean))

    gen = torch.Generator().manual_seed(config.seed)
    best, best_epoch, history, wait = float("inf"), -1, [], 0
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / "planner.pt"
    n = len(tr[-1])
    epochs = cfg.finetune_epochs if fine_tune and cfg.finetune_epochs > 0 else cfg.epochs
    bar = tqdm(range(epochs), desc="train", unit="epoch")
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
            loss = loss_fn(model.hypotheses(c, s, g, m), y, c, g)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        val, picked = evaluate_loss(model, va, loss_fn, cfg.batch_size)
        sched.step(val)
        history.append({"epoch": epoch, "train": total / n, "val": val, "lr": opt.param_groups[0]["lr"], **picked})
        bar.set_postfix(train=f"{total / n:.4f}", val=f"{val:.4f}")
        if val < best - 1e-6:
            best, best_epoch, wait = val, epoch, 0
            save_checkpoint(ckpt, model, spec, model_args, to_dict(config), epoch)
        else:
            wait += 1
            if wait >= cfg.patience:
                break
    (out_dir / "history.json").write_text(json.dumps(history, indent=1))
    plot_losses(history, out_dir / "loss.png")
    return {"best_val": best, "best_epoch": best_epoch, "epochs": len(history), "train_samples": n,
            "val_samples": len(va[-1]), "checkpoint": str(ckpt)}


@torch.no_grad()
def evaluate_loss(model: PlannerNet, data: list[torch.Tensor], loss_fn, batch: int) -> tuple[float, dict]:
    """(the validation loss, and for K > 1 hypotheses what the graph returns: the MSE of its picked plan
    against the label, and how often its pick is the hypothesis closest to the label)."""
    model.eval()
    n, total, picked_se, hits = len(data[-1]), 0.0, 0.0, 0
    for i in range(0, n, batch):
        c, s, g, m, y = (t[i : i + batch] for t in data)
        plans, scores = model.hypotheses(c, s, g, m)
        total += float(loss_fn((plans, scores), y, c, g)) * len(y)
        if model.k > 1:
            err = ((model.normalised(plans) - model.normalised(y).view(-1, 1, *plans.shape[2:])) ** 2).mean(dim=(2, 3))
            chosen = model.choice(c, plans, scores)  # the graph's pick, once
            picked_se += float(err.gather(1, chosen[:, None]).sum())
            hits += int((chosen == err.argmin(1)).sum())
    extra = {"val_picked_mse": picked_se / max(n, 1), "val_pick_is_closest": hits / max(n, 1)} if model.k > 1 else {}
    return total / max(n, 1), extra


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
