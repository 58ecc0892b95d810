"""ONNX Runtime session for the planner model: load, check against the contract, warm up, run.

Every run takes optional ``onnxruntime.RunOptions``: setting ``terminate`` on them from another
thread cancels a run that does not return (a watchdog's last resort). ``load_policy`` bounds a
load (file size, and the time to load, warm up and probe) so a hostile model is refused.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .contract import (
    GOAL_INPUT,
    METADATA_INPUT,
    OUTPUT,
    ContractError,
    ModelSpec,
    TensorInfo,
    check_io,
    input_shapes,
    spec_from_metadata,
)


class PolicyError(RuntimeError):
    """The model could not be loaded, validated or run; the message says why."""


@dataclass(frozen=True)
class SessionConfig:
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    intra_op_num_threads: int = 1
    graph_optimization: str = "all"  # disable | basic | extended | all
    warmup_runs: int = 5


_OPT_LEVELS = ("disable", "basic", "extended", "all")


class OnnxPolicy:
    """A loaded, validated and warmed-up planner model.

    ``spec`` comes from the model's metadata; a model without metadata is checked against
    ``fallback_spec`` and ``has_metadata`` is False so the caller can warn.
    """

    def __init__(self, path: str, config: SessionConfig = SessionConfig(),
                 fallback_spec: ModelSpec | None = None, run_options: Any = None) -> None:
        import onnxruntime as ort  # imported here so the core imports without it

        self.path = os.path.abspath(path)
        if not os.path.isfile(self.path):
            raise PolicyError(f"model file not found: {self.path}")
        if config.graph_optimization not in _OPT_LEVELS:
            raise PolicyError(f"graph_optimization must be one of {_OPT_LEVELS}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(config.intra_op_num_threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[config.graph_optimization]
        # Spinning threads burn a core between ticks; a 20 Hz planner must not.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        opts.log_severity_level = 4  # errors reach the caller as PolicyError; no duplicate stderr lines
        available = ort.get_available_providers()
        unknown = [p for p in config.providers if p not in available]
        if unknown:
            raise PolicyError(f"execution providers {unknown} are not available (have {available})")
        try:
            self.session = ort.InferenceSession(self.path, sess_options=opts, providers=list(config.providers))
        except Exception as exc:  # onnxruntime raises several private exception types
            raise PolicyError(f"cannot load model {self.path}: {exc}") from exc
        self.providers = tuple(self.session.get_providers())
        props = self.session.get_modelmeta().custom_metadata_map
        try:
            spec = spec_from_metadata(props)
        except ContractError as exc:
            raise PolicyError(f"model {self.path}: {exc}") from exc
        self.has_metadata = spec is not None
        self.spec = spec if spec is not None else (fallback_spec or ModelSpec())
        try:
            check_io(_infos(self.session.get_inputs()), _infos(self.session.get_outputs()), self.spec)
        except ContractError as exc:
            raise PolicyError(f"model {self.path} does not match the contract: {exc}") from exc
        self.warmup_ms = self._warm_up(config.warmup_runs, run_options)

    def _warm_up(self, runs: int, run_options: Any = None) -> float:
        feed = probe_feed(self.spec)
        t0 = time.perf_counter()
        for _ in range(max(runs, 1)):
            self.run(feed, run_options)
        return (time.perf_counter() - t0) * 1e3 / max(runs, 1)

    def run(self, feed: dict[str, np.ndarray], run_options: Any = None) -> np.ndarray:
        """Run the model on a feed dict; returns the [B, 60] output. Raises PolicyError.
        ``run_options`` (onnxruntime.RunOptions) let another thread cancel the run."""
        try:
            (out,) = self.session.run([OUTPUT], feed, run_options)
        except Exception as exc:
            raise PolicyError(f"inference failed: {exc}") from exc
        out = np.asarray(out)
        batch = next(iter(feed.values())).shape[0]
        if out.shape != (batch, self.spec.output_size):
            raise PolicyError(f"model output has shape {out.shape}, expected ({batch}, {self.spec.output_size})")
        return out

    def controls(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The first sample's plan as [steps, 3] controls (step-major output)."""
        return self.run(feed)[0].reshape(self.spec.steps, 3)


def check_model_file(path: str, max_bytes: int) -> None:
    """Refuse a path that is not a readable file of at most ``max_bytes`` (before loading anything)."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise PolicyError(f"model file not found: {os.path.abspath(path)} ({exc.strerror})") from exc
    if not os.path.isfile(path):
        raise PolicyError(f"model path is not a file: {os.path.abspath(path)}")
    if size > max_bytes:
        raise PolicyError(f"model {os.path.abspath(path)} has {size} bytes, more than max_model_bytes={max_bytes}")


def load_policy(path: str, config: SessionConfig, fallback_spec: ModelSpec | None, timeout: float,
                max_bytes: int) -> OnnxPolicy:
    """Load, validate, warm up and probe a model within ``timeout`` seconds, or raise PolicyError.

    The work runs on a daemon thread: a load that overruns is cancelled where ONNX Runtime allows
    (warm-up and probe runs) and abandoned otherwise; either way the caller gets a refusal in time.
    The probe runs the model once on a valid input (robot at rest) and refuses NaN/inf outputs.
    """
    import onnxruntime as ort

    check_model_file(path, max_bytes)
    options = ort.RunOptions()
    options.log_severity_level = 4
    result: list[Any] = []

    def work() -> None:
        try:
            policy = OnnxPolicy(path, config, fallback_spec, options)
            raw = policy.run(probe_feed(policy.spec), options)
            if not np.isfinite(raw).all():
                raise PolicyError(f"model {policy.path} returns NaN/inf on a valid input")
            result.append(policy)
        except PolicyError as exc:
            result.append(exc)
        except Exception as exc:  # a bug or an exhausted resource must refuse the model, not kill the caller
            result.append(PolicyError(f"cannot load model {os.path.abspath(path)}: {type(exc).__name__}: {exc}"))

    worker = threading.Thread(target=work, name="model-load", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive() or not result:
        options.terminate = True
        raise PolicyError(f"model {os.path.abspath(path)} did not load, warm up and pass the probe within "
                          f"model_load_timeout={timeout:g} s")
    if isinstance(result[0], PolicyError):
        raise result[0]
    return result[0]


def probe_feed(spec: ModelSpec, batch: int = 1) -> dict[str, np.ndarray]:
    """A valid input (empty window, robot at rest, goal 1 m ahead) for warm-up and load checks."""
    feed = {name: np.zeros((batch, *shape), np.float32) for name, shape in input_shapes(spec).items()}
    feed[METADATA_INPUT][:] = (spec.inflation_decay, spec.resolution)
    feed[GOAL_INPUT][:, 0] = 1.0
    return feed


def _infos(values: Sequence) -> list[TensorInfo]:
    return [TensorInfo(v.name, list(v.shape), v.type) for v in values]
