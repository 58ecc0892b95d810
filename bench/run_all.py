"""make bench: every benchmark in one run, results in bench/results.json (--quick: a short version)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    q = args.quick
    runs = [
        ["pipeline.py", "--ticks", "300" if q else "2000"],
        ["inference.py", "--runs", "500" if q else "3000"],
        ["ga_vs_nn.py", "--plans", "30" if q else "200"],
        ["hybrid.py", "--episodes", "8" if q else "40"],
        ["e2e.py", "--seconds", "6" if q else "30", *(["--max-rates", "50,200"] if q else [])],
        ["cpu.py", *(["--quick"] if q else [])],
        ["soak.py", "--minutes", "1" if q else "10", "--warmup", "20" if q else "60"],
        ["scaling.py", *(["--quick"] if q else [])],
    ]
    failed = 0
    for script, *rest in runs:
        print(f"== {script} {' '.join(rest)}", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / script), *rest], cwd=HERE).returncode != 0
    failed += subprocess.run([sys.executable, str(HERE / "report.py")], cwd=HERE).returncode != 0
    print(f"results in {HERE / 'results.json'}, tables in docs/PERFORMANCE.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
