"""The compute backends: local worker processes and a Dask cluster (2 workers on 127.0.0.1, no dashboard).

Small self-contained job functions check the runner (results, errors that name their seed, files
sent to workers, a model loaded once per worker); the tiny training config checks what users rely
on: a dataset made on Dask has the local dataset's manifest hash, and a second run makes nothing.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from plan_ga_training import compute

psutil = pytest.importorskip("psutil")

DASK = compute.ComputeConfig(backend="dask")


@dataclass(frozen=True)
class Job:
    seed: int
    path: str = ""


def square(job: Job) -> tuple[int, int]:
    return job.seed, job.seed * job.seed


def fail_on_three(job: Job) -> int:
    if job.seed == 3:
        raise ValueError("boom")
    return job.seed


def die_on_two(job: Job) -> int:
    if job.seed == 2:
        os._exit(3)  # a crash in native code, or the out-of-memory killer
    return job.seed


@functools.lru_cache(maxsize=2)
def load(path: str) -> str:
    """Stands in for the ONNX loader: an lru_cache per process; counts its loads."""
    LOADS.append(path)
    return Path(path).read_text()


LOADS: list[str] = []


def read_file(job: Job) -> tuple[int, str, int]:
    """(worker pid, the staged file's content, loads in this process)."""
    return os.getpid(), load(compute.local_path(job.path)), len(LOADS)


@pytest.fixture(scope="module")
def cluster():
    """The local Dask cluster the backend makes (2 workers), closed after this module."""
    pytest.importorskip("distributed", reason="Dask is pinned in requirements/training.txt")
    from plan_ga_training import compute_dask

    yield compute_dask.client_for("", 2)
    compute_dask.close()


def run(fn, jobs, backend=None, workers=2, files=()):
    return list(compute.imap_progress(fn, jobs, workers, "test", backend=backend, files=files))


@pytest.mark.parametrize("backend,workers", [(None, 1), (None, 2), (DASK, 2)], ids=["inline", "local", "dask"])
def test_every_job_runs_once(cluster, backend, workers):
    jobs = [Job(s) for s in range(7)]
    assert sorted(run(square, jobs, backend, workers)) == [(s, s * s) for s in range(7)]
    assert run(square, [], backend, workers) == []


@pytest.mark.parametrize("backend,workers", [(None, 1), (None, 2), (DASK, 2)], ids=["inline", "local", "dask"])
def test_a_failing_job_names_its_seed_and_the_error(cluster, backend, workers):
    with pytest.raises(compute.JobError) as err:
        run(fail_on_three, [Job(s) for s in range(6)], backend, workers)
    message = str(err.value)
    assert message.startswith("test: seed 3 failed: ValueError: boom"), message
    assert "fail_on_three" in message  # the worker's traceback follows
    # the runner is still usable afterwards (nothing left hanging)
    assert sorted(run(square, [Job(1), Job(2)], backend, workers)) == [(1, 1), (2, 4)]


@pytest.mark.parametrize("backend", [None, DASK], ids=["local", "dask"])
def test_a_dying_worker_is_reported_not_waited_for(cluster, backend):
    with pytest.raises(compute.JobError, match="did not finish.*worker process died"):
        run(die_on_two, [Job(s) for s in range(4)], backend)
    assert sorted(run(square, [Job(1), Job(2)], backend)) == [(1, 1), (2, 4)]
    cluster.wait_for_workers(2, timeout=120)  # Dask's nannies restart the dead workers


def _pretend_other_code(on: bool) -> None:
    """On a worker: stand in for another checkout installed there (or undo it)."""
    compute.code_fingerprint = (lambda: "another checkout") if on else ORIGINAL_FINGERPRINT


ORIGINAL_FINGERPRINT = compute.code_fingerprint


def test_workers_running_other_code_are_refused(cluster):
    cluster.run(_pretend_other_code, True)
    try:
        with pytest.raises(compute.JobError, match=r"\d Dask worker\(s\) run other code"):
            run(square, [Job(1)], DASK)
    finally:
        cluster.run(_pretend_other_code, False)
    assert run(square, [Job(1)], DASK) == [(1, 1)]


def environment_variable(name: str) -> str | None:
    """On a worker: its own environment's ``name`` (``os.environ.get`` would pickle this process's environ)."""
    return os.environ.get(name)


def test_local_cluster_workers_keep_glibcs_adaptive_malloc(cluster):
    """Dask's MALLOC_TRIM_THRESHOLD_ costs episodes 20-50% more CPU; nor may it leak into local workers."""
    assert set(cluster.run(environment_variable, "MALLOC_TRIM_THRESHOLD_").values()) == {None}
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="local"):
        run(square, [Job(1)], compute.ComputeConfig(backend="ray"))


def test_files_reach_every_worker_once_and_a_new_content_is_seen(cluster, tmp_path):
    model = tmp_path / "planner.onnx"
    model.write_text("round 1")
    jobs = [Job(s, str(model)) for s in range(8)]
    first = run(read_file, jobs, DASK, files=[str(model)])
    assert {content for _, content, _ in first} == {"round 1"}
    pids = {pid for pid, _, _ in first}
    assert os.getpid() not in pids and len(pids) <= 2
    # the same path with new content (the next DAgger round's export): never the stale cached copy
    model.write_text("round 2")
    second = run(read_file, jobs, DASK, files=[str(model)])
    assert {content for _, content, _ in second} == {"round 2"}
    # each worker process loaded each content once, however many jobs it ran
    loads = {}
    for pid, _, count in first + second:
        loads[pid] = max(loads.get(pid, 0), count)
    assert all(n <= 2 for n in loads.values()), loads


def test_the_local_cluster_listens_on_loopback_only(cluster):
    cluster.wait_for_workers(2, timeout=120)
    run(square, [Job(s) for s in range(4)], DASK)
    procs = [psutil.Process()] + psutil.Process().children(recursive=True)
    listening = [c for p in procs for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening, "the scheduler and workers listen somewhere"
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}, listening
    connected = [c for p in procs for c in p.net_connections(kind="inet") if c.raddr]
    assert all(c.raddr.ip == "127.0.0.1" for c in connected), connected


def test_the_local_backend_never_imports_dask():
    code = ("import sys; from plan_ga_training import compute, dataset, evaluate; "
            "assert list(compute.imap_progress(abs, [-1, 2], 1, 'x')) == [1, 2]; "
            "sys.exit(1 if {'dask', 'distributed'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


# ---------------------------------------------------------------- the real episodes, on the tiny config
REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "training" / "configs" / "tiny.yaml"


def tiny(root: Path, backend: str):
    from plan_ga_training.config import load_config

    return load_config(TINY, [f"run_dir={root}", f"dataset.out_dir={root / 'data'}", f"compute.backend={backend}",
                              "episode.max_time=2"])


def shards(data: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((data / "shards").glob("*.npz"))}


def test_a_dataset_made_on_dask_is_the_local_one_and_resumes_on_either(cluster, tmp_path):
    from plan_ga_training import dataset

    seeds = [0, 1]
    made = {}
    for backend in ("local", "dask"):
        cfg = tiny(tmp_path / backend, backend)
        assert len(dataset.generate(cfg, tmp_path / backend / "data", seeds, "ga")) == 2
        made[backend] = dataset.write_manifest(cfg, tmp_path / backend / "data")["content_hash"]
    assert made["local"] == made["dask"]
    assert shards(tmp_path / "local" / "data") == shards(tmp_path / "dask" / "data")  # byte for byte
    # a second run makes nothing new, on either backend, whichever backend made the shards
    before = shards(tmp_path / "dask" / "data")
    for backend in ("dask", "local"):
        assert dataset.generate(tiny(tmp_path / "dask", backend), tmp_path / "dask" / "data", seeds, "ga") == []
    assert shards(tmp_path / "dask" / "data") == before
    # an interrupted run (one shard missing) is completed with that episode only
    (tmp_path / "dask" / "data" / "shards" / "ga_000001.npz").unlink()
    stats = dataset.generate(tiny(tmp_path / "dask", "dask"), tmp_path / "dask" / "data", seeds, "ga")
    assert [s["seed"] for s in stats] == [1] and shards(tmp_path / "dask" / "data") == before


def preload(path: str) -> None:
    """On a worker: load (and cache) the ONNX model at ``path`` as a job driving with it would."""
    from plan_ga_training.episodes import load_onnx_policy

    load_onnx_policy(path)


def test_dagger_rounds_on_a_kept_cluster_use_each_rounds_model(cluster, tmp_path):
    """Each round exports to the same path; workers that outlive a round must not drive with the old model."""
    sys.path.insert(0, str(REPO / "test"))
    import onnx_models

    from plan_ga_training import dataset
    from plan_ga_training.config import model_spec

    model = tmp_path / "planner.onnx"
    made: dict[str, dict[str, bytes]] = {}
    for gain in (1.0, 0.4):  # two "rounds": a different model at the same path
        onnx_models.go_to_goal(str(model), model_spec(tiny(tmp_path, "local")), gain_v=gain)
        for backend in ("dask", "local"):
            root = tmp_path / f"{backend}_{gain}"
            dataset.generate(tiny(root, backend), root / "data", [50_000], "dagger1", model_path=str(model))
            made[f"{backend}_{gain}"] = shards(root / "data")
        cluster.run(preload, str(model))  # every worker now holds this round's model (by its path) in its cache
    assert made["dask_1.0"] == made["local_1.0"] and made["dask_0.4"] == made["local_0.4"]
    assert made["local_1.0"] != made["local_0.4"]
