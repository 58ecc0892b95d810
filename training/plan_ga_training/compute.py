"""Where episode-parallel work runs: local worker processes (the default) or a Dask cluster.

Every episode-parallel step (the GA dataset, DAgger rounds, evaluate, evaluation suites) calls
``imap_progress``. A job is small (a seed and a config, never arrays); results come back to the
caller as episodes finish and the caller writes them, so shards always land on the machine that
runs the command and a remote cluster needs no shared filesystem. Files the jobs read (the ONNX
model that drives a DAgger round) are sent to each Dask worker once, under a name made from
their content; job functions open them through ``local_path``. A job that fails raises
``JobError`` naming its seed and the error. Dask is imported only when the dask backend runs.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import multiprocessing as mp
import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

BACKENDS = ("local", "dask")


@dataclass(frozen=True)
class ComputeConfig:
    backend: str = "local"  # local: worker processes on this machine; dask: a Dask cluster
    scheduler: str = ""  # a running Dask scheduler (tcp://host:8786); empty: a local cluster on 127.0.0.1


class JobError(RuntimeError):
    """One job (episode) failed; the message names it (its seed) and the error, then the worker's traceback."""


# Worker side: files staged by the Dask backend, original path -> this worker's copy (see compute_dask).
_STAGED: dict[str, str] = {}


def local_path(path: str) -> str:
    """This process's copy of a file the caller passed in ``files`` (the path itself when not staged)."""
    return _STAGED.get(path, path)


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """What an episode depends on besides its job: this code (plan_ga_ros, plan_ga_training) and the
    numeric libraries' versions. Dask workers must match the caller's, or the same seeds could make other data.
    Taken once per process (near when it imported the code), so editing the checkout during a run refuses
    only workers started after the edit."""
    import platform
    from importlib import metadata

    import plan_ga_ros
    import plan_ga_training

    digest = hashlib.sha256()
    for package in (plan_ga_ros, plan_ga_training):
        root = Path(package.__file__).parent
        for source in sorted(root.rglob("*.py")):
            digest.update(source.relative_to(root).as_posix().encode() + b"\0" + source.read_bytes())
    for name in ("numpy", "onnxruntime"):
        try:
            digest.update(f"{name} {metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name} missing".encode())
    digest.update(platform.python_version().encode())
    return digest.hexdigest()


def restore_malloc() -> bool:
    """Undo, in this process, the ``MALLOC_TRIM_THRESHOLD_=65536`` that Dask's nannies give their workers.

    Setting it also switches off glibc's adaptive mmap threshold, so every numpy temporary above 128 kB
    is mapped and unmapped again (page faults): episodes took 20-50% more CPU time. The thresholds set
    here are glibc's adaptive maximum. Returns whether it changed anything (glibc only).
    """
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
        return bool(libc.mallopt(m_trim_threshold, 128 << 20) and libc.mallopt(m_mmap_threshold, 32 << 20))
    except (OSError, AttributeError):  # not glibc
        return False


def describe(job: Any) -> str:
    """A job's name in messages: its seed, and its controller and suite cell when it has them."""
    names = ("controller", "family", "inflation", "rate", "seed")
    parts = [f"{name} {getattr(job, name):g}" if isinstance(getattr(job, name), float) else
             f"{name} {getattr(job, name)}" for name in names if hasattr(job, name)]
    return " ".join(parts) if parts else repr(job)[:200]


def run_guarded(fn: Callable[[Any], Any], job: Any) -> Any:
    """``fn(job)``, with any exception turned into a JobError that names the job (runs on the worker)."""
    try:
        return fn(job)
    except Exception as exc:  # noqa: BLE001 (every error of an episode is reported the same way)
        message = f"{describe(job)} failed: {type(exc).__name__}: {exc}\nworker traceback:\n{traceback.format_exc()}"
        for original, copy in _STAGED.items():  # name the caller's file, not this worker's copy of it
            message = message.replace(copy, original)
        raise JobError(message) from None


def failed(job: Any, exc: BaseException, desc: str) -> JobError:
    """The JobError for ``job``, from the error its future raised (named already, or a lost worker)."""
    if isinstance(exc, JobError):
        return JobError(f"{desc}: {exc}")
    lost = type(exc).__name__ in ("BrokenProcessPool", "KilledWorker")
    hint = " (a worker process died: out of memory, or a crash in native code?)" if lost else ""
    return JobError(f"{desc}: {describe(job)} did not finish: {type(exc).__name__}: {exc}{hint}")


def imap_progress(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int, desc: str, unit: str = "ep",
                  done: int = 0, backend: ComputeConfig | None = None, files: Sequence[str] = ()) -> Iterator[Any]:
    """Yield ``fn(job)`` for every job as it finishes (any order), with a progress bar.

    ``workers``: processes on this machine (local backend, or the local Dask cluster; a scheduler's
    cluster decides its own). ``done`` counts jobs finished earlier (a resumed run). ``files``: paths
    the jobs read, sent to every Dask worker (open them with ``local_path``).
    """
    backend = backend or ComputeConfig()
    if backend.backend not in BACKENDS:
        raise ValueError(f"compute backend must be one of {BACKENDS}, got {backend.backend!r}")
    if backend.backend == "dask":
        from .compute_dask import imap_dask

        results = imap_dask(fn, jobs, workers, desc, backend.scheduler, files)
    else:
        results = _imap_local(fn, jobs, workers, desc)
    with tqdm(total=len(jobs) + done, initial=done, desc=desc, unit=unit) as bar:
        for result in results:
            yield result
            bar.update()


def _imap_local(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int, desc: str) -> Iterator[Any]:
    """In this process (one worker), else in ``spawn`` worker processes (free of the caller's torch state)."""
    if workers <= 1:
        for job in jobs:
            try:
                yield run_guarded(fn, job)
            except JobError as exc:
                raise failed(job, exc, desc) from None
        return
    if not jobs:
        return
    pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("spawn"))
    finished = False
    try:
        futures: dict[Future, Any] = {pool.submit(run_guarded, fn, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001
                raise failed(job, exc, desc) from None
            yield result
        finished = True
    finally:
        # On an error (or an abandoned generator) queued jobs are cancelled and nobody waits for
        # the running ones; a worker that died leaves a broken pool, reported above, not a hang.
        pool.shutdown(wait=finished, cancel_futures=True)
