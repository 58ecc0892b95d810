"""Episodes per second on 1 and 2 local workers and on a 2-worker Dask cluster, in one run.

The same GA episodes (the seeds and config of ``make train``'s dataset) run on each backend
through ``dataset.generate``, shards written by the caller as in training; their manifest
hashes must match. Dask's per-task overhead is the marginal wall time of a no-op task on the
warm cluster (the local process pool's beside it). The Dask cluster is a ``LocalCluster`` on
127.0.0.1 without a dashboard, started before the timed run (a pipeline starts it once).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import REPO, machine, save

from plan_ga_training import compute, dataset
from plan_ga_training.config import Config, load_config

CONFIG = REPO / "training" / "configs" / "default.yaml"


def noop(job: int) -> int:
    return job


def config(backend: str, workers: int, max_time: float) -> Config:
    return load_config(CONFIG, [f"compute.backend={backend}", f"dataset.workers={workers}",
                                f"episode.max_time={max_time}"])


def episodes_per_s(cfg: Config, seeds: list[int], out: Path, label: str) -> dict:
    t0 = time.perf_counter()
    dataset.generate(cfg, out, seeds, "ga", desc=label)
    wall = time.perf_counter() - t0
    manifest = dataset.write_manifest(cfg, out)
    return {"episodes": len(seeds), "wall_s": wall, "episodes_per_s": len(seeds) / wall,
            "samples": manifest["samples"], "content_hash": manifest["content_hash"]}


def marginal_task_ms(backend: compute.ComputeConfig, few: int, many: int) -> float:
    """(wall of ``many`` no-op tasks - wall of ``few``) / (many - few), on 2 workers: the cost of one more task."""
    walls = []
    for n in (few, many):
        t0 = time.perf_counter()
        list(compute.imap_progress(noop, list(range(n)), 2, f"no-op x{n}", unit="task", backend=backend))
        walls.append(time.perf_counter() - t0)
    return 1e3 * (walls[1] - walls[0]) / (many - few)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="a short version (fewer, shorter episodes)")
    p.add_argument("--episodes", type=int, default=None, help="GA episodes per backend (default 12, quick 4)")
    p.add_argument("--max-time", type=float, default=None, help="episode time limit in s (default 15, quick 8)")
    args = p.parse_args()
    episodes = args.episodes or (4 if args.quick else 12)
    max_time = args.max_time or (8.0 if args.quick else 15.0)
    seeds = list(range(episodes))
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure: recorded with them
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="plan_ga_scaling_") as tmp:
        runs["local_1"] = episodes_per_s(config("local", 1, max_time), seeds, Path(tmp) / "l1", "1 local worker")
        runs["local_2"] = episodes_per_s(config("local", 2, max_time), seeds, Path(tmp) / "l2", "2 local workers")
        from plan_ga_training import compute_dask

        t0 = time.perf_counter()
        compute_dask.client_for("", 2)
        cluster_start_s = time.perf_counter() - t0
        runs["dask_2"] = episodes_per_s(config("dask", 2, max_time), seeds, Path(tmp) / "d2", "Dask, 2 workers")
        few, many = (20, 200) if args.quick else (50, 1000)
        overhead = {"dask": marginal_task_ms(compute.ComputeConfig("dask"), few, many),
                    "local": marginal_task_ms(compute.ComputeConfig("local"), few, many)}
        compute_dask.close()
    one, two, dask = (runs[k]["episodes_per_s"] for k in ("local_1", "local_2", "dask_2"))
    result = {"runs": runs, "episodes": episodes, "max_time_s": max_time, "cores": os.cpu_count(), "machine": machine(),
              "load_average": [load_before, os.getloadavg()[0]],
              "efficiency_local_2": two / (2 * one), "efficiency_dask_2": dask / (2 * one),
              "dask_vs_local_2": dask / two, "dask_cluster_start_s": cluster_start_s,
              "marginal_task_ms": overhead,
              "same_hash": len({r["content_hash"] for r in runs.values()}) == 1}
    save("scaling", result)
    for k, r in runs.items():
        print(f"{k:<8} {r['episodes_per_s']:.3f} episodes/s ({r['wall_s']:.1f} s, hash {r['content_hash'][:12]})")
    print(f"scaling efficiency on 2 workers: local {result['efficiency_local_2']:.0%}, "
          f"Dask {result['efficiency_dask_2']:.0%}; Dask / local on 2 workers: {result['dask_vs_local_2']:.0%}; "
          f"cluster start {cluster_start_s:.1f} s; one more task: Dask {overhead['dask']:.2f} ms, "
          f"local {overhead['local']:.2f} ms; same manifest hash on every backend: {result['same_hash']}")
    if not result["same_hash"]:
        raise SystemExit("the backends made different datasets from the same seeds")


if __name__ == "__main__":
    main()
