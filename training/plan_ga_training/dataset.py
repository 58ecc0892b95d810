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

from .compute import imap_progress
from .config import Config, ConfigError, to_dict
from .episodes import SAMPLE_KEYS, driver, ga_labeller, run_episode
from .randomize import setting

KEYS = ("costmap", "state", "goal", "meta", "label")
DATA_SECTIONS = ("inflation_decay", "world", "episode", "ga")  # what a shard depends on, besides its seed
DATA_KEYS = {("dataset", "randomize"): False}  # and these keys of other sections (value when a manifest has none)
FAMILY_STREAM = 0xFA17  # mixed into a seed to draw its family under DAgger focus (not the world's stream)


@dataclass(frozen=True)
class Job:
    seed: int
    path: str
    cfg: Config
    model_path: str = ""  # empty: the GA drives; else this ONNX model drives and the GA labels
    driver: str = ""  # the SHA-256 of model_path, hashed once per round, stored in the shard
    family: str = ""  # the world family; "" = drawn from cfg.world.kinds by the seed


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
    st = setting(job.cfg, job.seed, job.family, job.cfg.dataset.randomize)
    spec, pcfg, network = driver("onnx" if job.model_path else "ga", st.cfg, job.model_path, st.planner)
    labeller = ga_labeller(spec, pcfg, job.cfg.ga, job.seed) if job.model_path else None
    sc = st.scenario
    res = run_episode(sc.world, sc.start, st.goal, spec, pcfg, network, st.cfg.episode, job.cfg.ga, labeller,
                      record=True, seed=job.seed)
    s = res.samples or _no_samples(spec)
    arrays = dict(costmap=np.round(s["costmap"][:, 0] * 100).astype(np.uint8), state=s["state"], goal=s["goal"],
                  meta=s["meta"], label=s["label"],
                  result=np.array([res.success, res.collision, res.time, len(s["label"])], np.float64),
                  driver=np.array(job.driver), family=np.array(sc.family),
                  setting=np.array(json.dumps({**st.describe(), "outcome": res.outcome})))
    return job.path, arrays, {"seed": job.seed, "family": sc.family, "success": res.success,
                              "collision": res.collision, "samples": len(s["label"])}


def write_shard(path: str, arrays: dict[str, np.ndarray]) -> None:
    """A shard exists only when complete. Its bytes depend on the arrays alone (zip entries carry a fixed
    date), so the same episode gives the same content hash on any backend."""
    tmp = Path(path).with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.rename(path)


def generate(cfg: Config, out_dir: Path, seeds: list[int], prefix: str, model_path: str = "",
             workers: int | None = None, desc: str = "episodes", families: dict[int, str] | None = None
             ) -> list[dict]:
    """Run (or resume) the episodes of ``seeds`` (in ``families[seed]`` where given); returns per-episode
    stats of the new ones."""
    check_compatible(cfg, out_dir)
    shards = out_dir / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    model_hash = file_sha256(model_path) if model_path else ""
    families = families or {}
    jobs = [Job(s, str(shards / shard_name(prefix, s)), cfg, model_path, model_hash, families.get(s, ""))
            for s in seeds]
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
    changed = [f"{a}.{b}" for (a, b), none in DATA_KEYS.items() if old.get(a, {}).get(b, none) != new[a][b]]
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
            family = str(z["family"]) if "family" in z.files else ""
        entries.append({"file": path.name, "seed": int(path.stem.split("_")[-1]), "samples": int(count),
                        "success": bool(ok), "collision": bool(coll), "time": float(t), "driver": driver,
                        "family": family})
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


# ---------------------------------------------------------------- more data where the network fails
def family_success(out_dir: Path, files: list[str]) -> dict[str, tuple[int, int]]:
    """Per world family, (episodes, successes) of the named shards (shards without a family are left out)."""
    out: dict[str, list[int]] = {}
    for name in files:
        with np.load(out_dir / "shards" / name) as z:
            if "family" not in z.files:
                continue
            n = out.setdefault(str(z["family"]), [0, 0])
            n[0] += 1
            n[1] += int(z["result"][0] > 0)
    return {k: (v[0], v[1]) for k, v in out.items()}


def focus_weights(expert: dict[str, tuple[int, int]], learner: dict[str, tuple[int, int]], kinds: tuple[str, ...],
                  floor: float) -> dict[str, float]:
    """Share of the next round's episodes per family: ``floor`` plus how far the learner's success rate
    (the episodes it drove) is below the expert's (1 where either was never seen), normalised."""
    def rate(stats: dict[str, tuple[int, int]], k: str) -> float | None:
        n, ok = stats.get(k, (0, 0))
        return ok / n if n else None

    gaps = {}
    for k in kinds:
        e, n = rate(expert, k), rate(learner, k)
        gaps[k] = floor + (1.0 if e is None or n is None else max(e - n, 0.0))
    total = sum(gaps.values())
    return {k: g / total for k, g in gaps.items()}


def draw_families(seeds: list[int], weights: dict[str, float]) -> dict[int, str]:
    """A family per seed, drawn with ``weights`` from the seed's own stream (the same on every resume)."""
    names = sorted(weights)
    p = np.array([weights[k] for k in names])
    return {s: names[int(np.random.default_rng([int(s), FAMILY_STREAM]).choice(len(names), p=p / p.sum()))]
            for s in seeds}
