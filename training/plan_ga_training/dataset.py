"""Closed-loop datasets: GA episodes, and DAgger rounds (the network drives, the GA labels).

One ``.npz`` shard per episode (never pickle) plus a JSON manifest with the config, seeds, counts
and a content hash. Episodes run on the compute backend (compute.py: local processes or Dask) and
come back as arrays; the caller writes every shard, so they land in ``out_dir`` on this machine
whatever runs the episodes. Existing shards are skipped, so an interrupted run resumes where it
stopped. A DAgger shard records the SHA-256 of the model that drove it; one driven by another model
(an older round, another architecture) is made again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plan_ga_ros.contract import INPUT_NAMES, ModelSpec, input_shapes
from plan_ga_ros.sim.world import make_episode

from .compute import imap_progress
from .config import Config, ConfigError, to_dict
from .episodes import SAMPLE_KEYS, driver, ga_labeller, run_episode

KEYS = ("costmap", "state", "goal", "meta", "label")
DATA_SECTIONS = ("inflation_decay", "world", "episode", "ga")  # what a shard depends on, besides its seed


@dataclass(frozen=True)
class Job:
    seed: int
    path: str
    cfg: Config
    model_path: str = ""  # empty: the GA drives; else this ONNX model drives and the GA labels
    driver: str = ""  # the SHA-256 of model_path, hashed once per round, stored in the shard


def shard_name(prefix: str, seed: int) -> str:
    return f"{prefix}_{seed:06d}.npz"


def file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _driver(z: np.lib.npyio.NpzFile) -> str:
    """The SHA-256 of the model that drove a shard's episode; "" for a GA episode or an old shard."""
    return str(z["driver"]) if "driver" in z.files else ""


def shard_driver(path: Path) -> str:
    with np.load(path) as z:
        return _driver(z)


def _no_samples(spec: ModelSpec) -> dict[str, np.ndarray]:
    """Empty sample arrays (an episode that never planned)."""
    shapes = input_shapes(spec)
    out = {k: np.zeros((0, *shapes[name]), np.float32) for k, name in zip(SAMPLE_KEYS, INPUT_NAMES)}
    return {**out, "label": np.zeros((0, spec.steps, len(spec.controls)), np.float32)}


def _run_job(job: Job) -> tuple[str, dict[str, np.ndarray], dict]:
    """One recorded episode: the GA drives and labels, or (DAgger) the ONNX model drives and a GA labels.

    Returns the shard's path and arrays (the caller writes them) and the episode's stats.
    """
    world, start, goal = make_episode(job.seed, job.cfg.world)
    spec, pcfg, network = driver("onnx" if job.model_path else "ga", job.cfg, job.model_path)
    labeller = ga_labeller(spec, pcfg, job.cfg.ga, job.seed) if job.model_path else None
    res = run_episode(world, start, goal, spec, pcfg, network, job.cfg.episode, job.cfg.ga, labeller, record=True,
                      seed=job.seed)
    s = res.samples or _no_samples(spec)
    arrays = dict(costmap=np.round(s["costmap"][:, 0] * 100).astype(np.uint8), state=s["state"], goal=s["goal"],
                  meta=s["meta"], label=s["label"],
                  result=np.array([res.success, res.collision, res.time, len(s["label"])], np.float64),
                  driver=np.array(job.driver))
    return job.path, arrays, {"seed": job.seed, "success": res.success, "collision": res.collision,
                              "samples": len(s["label"])}


def write_shard(path: str, arrays: dict[str, np.ndarray]) -> None:
    """A shard exists only when complete. Its bytes depend on the arrays alone (zip entries carry a fixed
    date), so the same episode gives the same content hash on any backend."""
    tmp = Path(path).with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.rename(path)


def generate(cfg: Config, out_dir: Path, seeds: list[int], prefix: str, model_path: str = "",
             workers: int | None = None, desc: str = "episodes") -> list[dict]:
    """Run (or resume) the episodes of ``seeds``; returns per-episode stats of the new ones."""
    check_compatible(cfg, out_dir)
    shards = out_dir / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    model_hash = file_sha256(model_path) if model_path else ""
    jobs = [Job(s, str(shards / shard_name(prefix, s)), cfg, model_path, model_hash) for s in seeds]
    todo = [j for j in jobs if not Path(j.path).exists() or (model_hash and shard_driver(Path(j.path)) != model_hash)]
    stale = sum(Path(j.path).exists() for j in todo)
    if stale:
        print(f"{stale} {prefix} shards were driven by another model than {model_path}; making them again")
    stats = []
    for path, arrays, stat in imap_progress(_run_job, todo, workers or cfg.dataset.workers, desc,
                                            done=len(jobs) - len(todo), backend=cfg.compute, files=[model_path]):
        write_shard(path, arrays)
        stats.append(stat)
    return stats


def check_compatible(cfg: Config, out_dir: Path) -> None:
    """Refuse to add to (or resume) a dataset whose shards were made with other worlds, episodes or GA.

    Shards are skipped by file name when resuming, so without this check a changed config would
    silently mix old and new episodes.
    """
    manifest = out_dir / "manifest.json"
    if not manifest.exists():
        return
    old = json.loads(manifest.read_text()).get("config", {})
    new = json.loads(json.dumps(to_dict(cfg)))  # tuples → lists, as the manifest stores them
    changed: list[str] = []
    for section in DATA_SECTIONS:
        a, b = old.get(section), new[section]
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            changed += [f"{section}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        else:
            changed.append(section)
    if changed:
        raise ConfigError(f"the dataset in {out_dir} was made with a different config ({', '.join(changed)}); "
                          "set dataset.out_dir to a new folder or delete that one")


def write_manifest(cfg: Config, out_dir: Path, files: list[str] | None = None) -> dict:
    """manifest.json: config, shards with seeds and counts, and a content hash of the shards.

    ``files`` limits it to the named shards (what a pipeline trained on); default: every shard.
    """
    entries, digest = [], hashlib.sha256()
    paths = [out_dir / "shards" / f for f in sorted(files)] if files is not None \
        else sorted(p for p in (out_dir / "shards").glob("*.npz") if not p.name.endswith(".tmp.npz"))
    for path in paths:
        data = path.read_bytes()
        digest.update(hashlib.sha256(data).digest())
        with np.load(path) as z:
            ok, coll, t, count = z["result"]
            driver = _driver(z)
        entries.append({"file": path.name, "seed": int(path.stem.split("_")[-1]), "samples": int(count),
                        "success": bool(ok), "collision": bool(coll), "time": float(t), "driver": driver})
    manifest = {"config": to_dict(cfg), "shards": entries, "samples": sum(e["samples"] for e in entries),
                "episodes": len(entries), "content_hash": digest.hexdigest()}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def load(out_dir: Path, files: list[str] | None = None) -> dict[str, np.ndarray]:
    """All (or the named) shards concatenated; the costmap back in [0, 1] float32 [N, 1, 50, 50]."""
    paths = [out_dir / "shards" / f for f in files] if files else sorted((out_dir / "shards").glob("*_??????.npz"))
    parts: dict[str, list] = {k: [] for k in KEYS}
    for p in paths:
        with np.load(p) as z:
            for k in KEYS:
                parts[k].append(z[k])
    if not parts["label"]:
        raise FileNotFoundError(f"no shards in {out_dir / 'shards'}")
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["costmap"] = (out["costmap"].astype(np.float32) / 100.0)[:, None]
    out["label"] = out["label"].reshape(len(out["label"]), -1)
    return out
