"""Loading the planner model for the node: bounded at configure, off the executor and planning
threads for a hot-swap, swapped in only after validation.

A hot-swap request (a change of ``model_path``, or of the ``model_*`` geometry of a model without
metadata) starts a load on its own thread and waits up to ``SYNC_LOAD_WAIT`` for it: a quick load
answers the request with its verdict (a refused model is refused by the parameter service). A slow
one lets the request succeed; when the load ends the model is swapped in, or the parameters are put
back and the refusal logged and reported. Either way the running model keeps planning meanwhile.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rclpy.parameter import Parameter

from ..contract import ContractError, ModelSpec
from ..policy import OnnxPolicy, PolicyError, SessionConfig, load_policy
from .diagnostics import bounded

FALLBACK_GEOMETRY = ("model_resolution", "model_dt", "model_goal_clip_distance", "model_kinematics")
MODEL_KEYS = ("model_path", *FALLBACK_GEOMETRY)
SYNC_LOAD_WAIT = 0.2  # s: a request gets the model's verdict if it loads this fast, else it comes later


def load(values: dict[str, Any], default_path: str, logger: Any) -> OnnxPolicy:
    """Load, validate, warm up and probe the model ``values`` name, bounded in file size and time."""
    try:
        fallback = ModelSpec(resolution=values["model_resolution"], dt=values["model_dt"],
                             goal_clip_distance=values["model_goal_clip_distance"],
                             kinematics=values["model_kinematics"])
    except ContractError as exc:
        raise PolicyError(f"model_* parameters (the geometry of a model without metadata): {exc}") from exc
    cfg = SessionConfig(tuple(values["providers"]), values["intra_op_num_threads"], values["graph_optimization"],
                        values["warmup_runs"])
    policy = load_policy(values["model_path"] or default_path, cfg, fallback, values["model_load_timeout"],
                         values["max_model_bytes"])
    if not policy.has_metadata:
        logger.warning(f"model {policy.path} has no plan_ga_ros metadata: using parameters model_resolution, "
                       "model_dt, model_goal_clip_distance and model_kinematics for its geometry")
    return policy


@dataclass
class _Load:
    values: dict[str, Any]  # the candidate configuration it loads for
    previous: dict[str, Any]  # the model parameters to restore if it fails after the request returned
    started: float
    policy: OnnxPolicy | None = None
    error: str = ""
    done: bool = False
    detached: bool = False  # the request returned before the load ended: the loader applies the verdict


class ModelSlot:
    """The running model and the hot-swap in progress.

    ``swap(policy)`` puts a validated model into the node (it takes the session lock itself);
    ``params`` is the node's NodeParameters (its lock orders requests, reverts and late swaps).
    """

    def __init__(self, params: Any, default_path: Callable[[], str], logger: Any,
                 swap: Callable[[OnnxPolicy], None]) -> None:
        self._params, self._default_path, self._log, self._swap = params, default_path, logger, swap
        self.policy: OnnxPolicy | None = None
        self.values: dict[str, Any] = {}  # the model parameters of the running model
        self.error = ""  # why the last hot-swap was refused
        self._loading: _Load | None = None
        self._pending: _Load | None = None  # loaded by a request, swapped in once the request is applied

    def load(self, values: dict[str, Any]) -> OnnxPolicy:
        return load(values, self._default_path(), self._log)

    def set_running(self, policy: OnnxPolicy | None, values: dict[str, Any]) -> None:
        self.policy, self.error = policy, ""
        self.values = {k: values[k] for k in MODEL_KEYS} if policy is not None else {}
        self._loading = self._pending = None

    def needs_load(self, values: dict[str, Any]) -> bool:
        if values["model_path"] != self.values.get("model_path"):
            return True
        no_metadata = self.policy is not None and not self.policy.has_metadata
        return no_metadata and any(values[k] != self.values.get(k) for k in FALLBACK_GEOMETRY)

    # ------------------------------------------------------------------ requests
    def request(self, candidate: dict[str, Any]) -> str | None:
        """A parameter request names another model: start loading it; its refusal, or None."""
        self._pending = None
        if not self.needs_load(candidate):
            return None
        if self._loading is not None and all(candidate[k] == self._loading.values[k] for k in MODEL_KEYS):
            return None  # an unrelated change while this very model loads
        if self._loading is not None:
            return (f"model {self._loading.values['model_path'] or '<default>'} is still loading "
                    f"({time.monotonic() - self._loading.started:.1f} s); try again when it is done")
        job = _Load(dict(candidate), dict(self.values), time.monotonic())
        self._loading = job
        mutex, finished = threading.Lock(), threading.Event()

        def work() -> None:
            try:
                job.policy = self.load(job.values)
            except PolicyError as exc:
                job.error = str(exc)
            except Exception as exc:  # whatever happens, the request gets a verdict
                job.error = f"{type(exc).__name__}: {exc}"
            with mutex:
                job.done = True
                detached = job.detached
            finished.set()
            if detached:
                with self._params.lock:
                    self._finish(job)

        threading.Thread(target=work, name="model-hot-swap", daemon=True).start()
        finished.wait(SYNC_LOAD_WAIT)
        with mutex:
            if not job.done:
                job.detached = True
                self._log.info(f"loading model {self._name(job)} in the background")
                return None
        self._loading = None
        if job.error:
            return self._refuse(job)
        self._pending = job
        return None

    def take_pending(self, values: dict[str, Any]) -> OnnxPolicy | None:
        """The model a request loaded, if the applied parameters are the ones it was loaded for."""
        job, self._pending = self._pending, None
        if job is None or any(values[k] != job.values[k] for k in self._keys(job)):
            return None  # prepared for a request that was refused after all
        return job.policy

    def _keys(self, job: _Load) -> tuple[str, ...]:
        no_metadata = job.policy is not None and not job.policy.has_metadata
        return MODEL_KEYS if no_metadata else ("model_path",)

    def _name(self, job: _Load) -> str:
        return job.values["model_path"] or os.path.basename(self._default_path())

    def _refuse(self, job: _Load) -> str:
        self.error = bounded(f"refused model {self._name(job)}: {job.error}", 1000)
        self._log.error(self.error + " (the previous model keeps running)")
        return self.error

    def _finish(self, job: _Load) -> None:
        """A background load ended after its request was accepted (parameter lock held)."""
        self._loading = None
        values = self._params.values
        if self.policy is None or any(values[k] != job.values[k] for k in MODEL_KEYS):
            return  # cleaned up, or superseded by a later request
        if job.policy is not None:
            self._swap(job.policy)
            return
        self._refuse(job)
        revert = [Parameter(k, value=job.previous[k]) for k in MODEL_KEYS
                  if job.previous.get(k, values[k]) != values[k]]
        if revert:
            self._params.node.set_parameters_atomically(revert)
