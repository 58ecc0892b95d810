"""Run independent jobs over worker processes with a progress bar."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tqdm import tqdm


def imap_progress(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int, desc: str, unit: str = "ep",
                  done: int = 0) -> Iterator[Any]:
    """Yield ``fn(job)`` for every job (unordered when parallel); ``spawn`` keeps workers free of torch state."""
    with tqdm(total=len(jobs) + done, initial=done, desc=desc, unit=unit) as bar:
        if workers <= 1:
            for job in jobs:
                yield fn(job)
                bar.update()
            return
        with mp.get_context("spawn").Pool(workers) as pool:
            for result in pool.imap_unordered(fn, jobs):
                yield result
                bar.update()
