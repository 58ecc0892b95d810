"""Soak: the planner process at 20 Hz with inputs streaming; resident memory over time."""

from __future__ import annotations

import argparse
import time

import psutil
from common import MODEL, loopback_env, save

loopback_env()

from e2e import planner_and_driver  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=60.0, help="seconds before the memory baseline")
    p.add_argument("--model", default=str(MODEL))
    args = p.parse_args()
    samples = []
    with planner_and_driver(args.model, 20.0, 50.0) as (proc, node):
        ps, t0 = psutil.Process(proc.pid), time.monotonic()
        while time.monotonic() - t0 < args.minutes * 60:
            with node.lock:
                plans = len(node.arrivals)
                node.sent.clear()  # the driver must not grow either
            samples.append({"t_s": round(time.monotonic() - t0, 1), "rss_mb": ps.memory_info().rss / 2**20,
                            "plans": plans})
            time.sleep(10.0 if args.minutes >= 2 else 2.0)
    base = next((s for s in samples if s["t_s"] >= args.warmup), samples[0])
    after = [s["rss_mb"] for s in samples if s["t_s"] >= base["t_s"]]
    growth = max(after) - base["rss_mb"]
    span = samples[-1]["t_s"] - samples[0]["t_s"]
    rate = (samples[-1]["plans"] - samples[0]["plans"]) / span if span else 0.0
    print(f"{args.minutes:g} min at 20 Hz: RSS {base['rss_mb']:.1f} MB after warm-up, max growth {growth:.2f} MB, "
          f"{rate:.2f} plans/s")
    save("soak", {"minutes": args.minutes, "rss_after_warmup_mb": base["rss_mb"], "growth_mb": growth,
                  "plans_per_s": rate, "samples": samples})


if __name__ == "__main__":
    main()
