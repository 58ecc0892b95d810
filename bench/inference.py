"""ONNX Runtime vs PyTorch eager on the shipped model at batch 1, interleaved in one run:
1 and 2 intra-op threads, each graph optimisation level; speedup at p50.

Variants take turns in blocks of ``--block`` runs, round-robin until each has ``--runs``: machine
drift hits all of them alike, and each runs with its weights in cache, as the one model of a
planner process does. (Alternating single runs of five models, 7.5 MB of weights each, would
measure cache misses instead: the sum exceeds this CPU's L3.)"""

from __future__ import annotations

import argparse
import time

import torch
from common import CHECKPOINT, MODEL, save, stats

from plan_ga_ros.contract import INPUT_NAMES
from plan_ga_ros.policy import OnnxPolicy, SessionConfig
from plan_ga_training.train import load_checkpoint
from plan_ga_training.verify import random_feed


@torch.no_grad()
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3000)
    p.add_argument("--block", type=int, default=50)
    args = p.parse_args()
    spec = OnnxPolicy(str(MODEL)).spec
    feed = random_feed(spec, 1, 0)
    tensors = [torch.from_numpy(feed[n]) for n in INPUT_NAMES]
    model = load_checkpoint(CHECKPOINT).model  # rebuilt from the checkpoint alone
    out = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        sessions = {lvl: OnnxPolicy(str(MODEL), SessionConfig(intra_op_num_threads=threads, graph_optimization=lvl,
                                                               warmup_runs=100))
                    for lvl in ("disable", "basic", "extended", "all")}
        for _ in range(100):
            model(*tensors)
        runners = {"pytorch": lambda: model(*tensors),
                   **{f"ort_{lvl}": (lambda s=s: s.run(feed)) for lvl, s in sessions.items()}}
        times: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(max(args.runs // args.block, 1)):  # interleaved blocks: all see the same machine state
            for name, fn in runners.items():
                for _ in range(5):  # re-warm after the other variants ran
                    fn()
                for _ in range(args.block):
                    t = time.perf_counter()
                    fn()
                    times[name].append((time.perf_counter() - t) * 1e3)
        r = {k: stats(v) for k, v in times.items()}
        r["speedup_p50"] = r["pytorch"]["p50_ms"] / r["ort_all"]["p50_ms"]
        out[f"{threads}_thread"] = r
        print(f"{threads} thread(s): " + "  ".join(f"{k} {v['p50_ms']:.3f}/{v['p99_ms']:.3f}" for k, v in r.items()
                                                   if isinstance(v, dict)) + f"  speedup {r['speedup_p50']:.1f}x")
    save("inference", {"runs": args.runs, "block": args.block, "batch": 1, "results": out})


if __name__ == "__main__":
    main()
