"""The Dask side of compute.py (imported only when ``compute.backend: dask``).

One client per process: a ``LocalCluster`` of ``workers`` single-threaded worker processes on
127.0.0.1 without a dashboard when no scheduler is given, else a connection to that scheduler
(``dask scheduler`` / ``dask worker`` on other machines, Kubernetes, SLURM through dask-jobqueue).
It lives until the process exits, so a pipeline's steps reuse the same workers and their loaded
models.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dask
from distributed import Client, LocalCluster, as_completed
from distributed.diagnostics.plugin import WorkerPlugin

from . import compute
from .compute import failed, run_guarded

_CLIENTS: dict[str, Client] = {}  # "local" or a scheduler address -> its client
_STAGED_PLUGINS: dict[tuple[str, str], str] = {}  # (client key, path) -> the name of the plugin staging it
WAIT_FOR_WORKERS_S = 120.0


class StageFile(WorkerPlugin):
    """Writes one file into every worker's local directory, named by its content, and maps its path there.

    A content-addressed name keeps a cached model from going stale when the file at the same path
    changes between calls (each DAgger round exports to the same path).
    """

    def __init__(self, path: str, data: bytes, digest: str) -> None:
        self.path, self.data, self.digest = path, data, digest

    def setup(self, worker: Any) -> None:
        folder = Path(worker.local_directory) / "plan_ga_files"
        folder.mkdir(parents=True, exist_ok=True)
        local = folder / f"{self.digest[:16]}{Path(self.path).suffix}"
        if not local.exists():
            tmp = local.with_name(f"{local.name}.{os.getpid()}.tmp")
            tmp.write_bytes(self.data)
            tmp.rename(local)
        compute._STAGED[self.path] = str(local)

    def teardown(self, worker: Any) -> None:
        if compute._STAGED.get(self.path, "").startswith(str(Path(worker.local_directory))):
            del compute._STAGED[self.path]


class RestoreMalloc(WorkerPlugin):
    """compute.restore_malloc in every worker process (the nanny set MALLOC_TRIM_THRESHOLD_ before spawning it)."""

    def setup(self, worker: Any) -> None:
        compute.restore_malloc()


def client_for(scheduler: str, workers: int) -> Client:
    """The process's client: the scheduler's, or a local cluster of ``workers`` processes (made once)."""
    key = scheduler or "local"
    client = _CLIENTS.get(key)
    if client is not None and not scheduler and len(client.cluster.workers) != max(workers, 1):
        close(key)  # a different number of local workers was asked for
        client = None
    if client is None:
        if scheduler:
            try:
                client = Client(scheduler, timeout="20s")
            except OSError as exc:
                raise compute.JobError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
            try:
                client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
            except TimeoutError:
                client.close()
                raise compute.JobError(f"no Dask worker joined the scheduler at {scheduler} within "
                                       f"{WAIT_FOR_WORKERS_S:.0f} s (start one: dask worker {scheduler})") from None
        else:
            # No dashboard; the scheduler's plain HTTP routes (health, metrics) on a free loopback
            # port rather than 8787 (an empty host there would mean every interface).
            # Workers' own error logs are silenced: a failed or lost episode reaches the caller as a JobError.
            # The nannies run in this process and would export MALLOC_TRIM_THRESHOLD_ into its environment
            # (so into local worker processes started later too): see compute.restore_malloc.
            with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
                cluster = LocalCluster(n_workers=max(workers, 1), threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None, silence_logs=logging.CRITICAL,
                                       scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
            client = Client(cluster)
        client.register_plugin(RestoreMalloc(), name="plan-ga-restore-malloc")
        _CLIENTS[key] = client
    return client


def close(key: str | None = None) -> None:
    """Close one client (and its local cluster), or all of them."""
    for k in [key] if key else list(_CLIENTS):
        client = _CLIENTS.pop(k, None)
        if client is None:
            continue
        for staged in [s for s in _STAGED_PLUGINS if s[0] == k]:
            del _STAGED_PLUGINS[staged]
        cluster = client.cluster if k == "local" else None
        client.close()
        if cluster is not None:
            cluster.close()


atexit.register(close)


def stage(client: Client, key: str, files: Sequence[str]) -> None:
    """Send each file to every worker (now and joining later) unless its current content is there already.

    A missing file is not sent: the job that opens it reports it, as it would on the local backend.
    """
    for path in files:
        if not path or not Path(path).is_file():
            continue
        data = Path(path).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        name = f"plan-ga-file-{digest[:16]}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"
        old = _STAGED_PLUGINS.get((key, path))
        if old == name:
            continue
        if old is not None:
            client.unregister_worker_plugin(old)
        client.register_plugin(StageFile(path, data, digest), name=name)
        _STAGED_PLUGINS[(key, path)] = name


def check_workers(client: Client) -> None:
    """Refuse workers whose code or numeric libraries differ from this machine's (they would make other data)."""
    ours = compute.code_fingerprint()
    odd = sorted(w for w, theirs in client.run(compute.code_fingerprint).items() if theirs != ours)
    if odd:
        raise compute.JobError(f"{len(odd)} Dask worker(s) run other code or numpy/onnxruntime/Python versions than "
                               f"this machine ({', '.join(odd[:3])}{', ...' if len(odd) > 3 else ''}): install the "
                               "same checkout and requirements there (make install) and restart them")


def imap_dask(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int, desc: str, scheduler: str,
              files: Sequence[str]) -> Iterator[Any]:
    """compute.imap_progress on Dask: every job submitted at once, results yielded as they complete."""
    client = client_for(scheduler, workers)
    check_workers(client)
    stage(client, scheduler or "local", files)
    if not jobs:
        return
    futures = client.map(run_guarded, [fn] * len(jobs), list(jobs), pure=False)
    owner = {f.key: job for f, job in zip(futures, jobs)}
    pending = {f.key: f for f in futures}
    completed = as_completed(futures)
    del futures  # a result leaves the workers' memory once it has been yielded
    finished = False
    try:
        for future in completed:
            job = owner.pop(future.key)
            del pending[future.key]
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 (a failed episode, or a worker lost for good)
                raise failed(job, exc, desc) from None
            yield result
        finished = True
    finally:
        if not finished and pending:
            client.cancel(list(pending.values()))
