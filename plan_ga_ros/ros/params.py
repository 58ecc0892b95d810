"""The node's parameters, declared once from the ROS-free table and changed only as a valid whole.

Like Nav2's parameter handlers: each parameter of ``plan_ga_ros.parameters`` is declared with its
default, description and range. A *static* parameter is read at configure and refused while the
node is configured; a *dynamic* one may change at any time. Every set request (atomic or not, through
the services or the node's API) is checked as one candidate configuration: while configured with
``parameters.validate`` (each value and the rules between them) plus the checks that need this
machine (execution providers that exist); while unconfigured each value alone (the whole is checked
at configure). A refused request changes nothing. Values given at start-up that are invalid are kept
out (the default is declared) and fail ``configure`` with the parameter named, until they are set right.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.parameter import Parameter
from rclpy.parameter_service import ParameterService
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from .. import parameters
from ..parameters import PARAMETERS, Param

STATIC_NOTE = "Static: read at configure; refused while configured."


def descriptor(p: Param) -> ParameterDescriptor:
    """The ROS descriptor of a table entry: description, range, choices, static note."""
    d = ParameterDescriptor(description=p.description + ("" if p.dynamic else " " + STATIC_NOTE))
    if p.low is not None and p.high is not None:
        if type(p.default) is float:
            d.floating_point_range = [FloatingPointRange(from_value=float(p.low), to_value=float(p.high), step=0.0)]
        elif type(p.default) is int:
            d.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=1)]
    if p.choices:
        d.additional_constraints = "one of: " + ", ".join(p.choices)
    return d


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def system_problems(values: Mapping[str, Any]) -> list[str]:
    """Checks against what exists on this machine (ONNX Runtime execution providers)."""
    providers = values.get("providers")
    if providers is None:
        return []
    have = available_providers()
    missing = [p for p in providers if p not in have]
    return [f"providers {missing} are not available in this onnxruntime (have {have})"] if missing else []


def qos_profile(values: Mapping[str, Any], role: str) -> QoSProfile:
    """The QoS of a topic role from its validated ``qos.<role>.*`` values."""
    rel = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}
    dur = {"volatile": DurabilityPolicy.VOLATILE, "transient_local": DurabilityPolicy.TRANSIENT_LOCAL}
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(values[f"qos.{role}.depth"]),
                      reliability=rel[values[f"qos.{role}.reliability"]],
                      durability=dur[values[f"qos.{role}.durability"]])


class NodeParameters:
    """Declares the table on ``node`` and keeps the accepted values (``values``: a plain dict the
    planning code reads without asking rclpy).

    ``configured()`` tells whether static parameters are frozen; ``prepare(changes)`` is the node's
    own check of a valid candidate (config, model), returning a refusal reason or None.
    """

    def __init__(self, node: Any, configured: Callable[[], bool],
                 prepare: Callable[[dict[str, Any], dict[str, Any]], str | None],
                 apply: Callable[[dict[str, Any]], None]) -> None:
        self.node = self._node = node
        self._configured, self._prepare, self._apply = configured, prepare, apply
        self.lock = threading.RLock()  # one set request at a time (services, the node's API, reverts)
        self.startup_problems: dict[str, str] = {}
        overrides = getattr(node, "_parameter_overrides", {})
        for name, p in PARAMETERS.items():
            self._declare(p, overrides.get(name))
        self.values: dict[str, Any] = {name: node.get_parameter(name).value for name in PARAMETERS}
        self._pending: dict[str, Any] | None = None
        node.add_on_set_parameters_callback(self._on_set)
        node.add_post_set_parameters_callback(self._on_set_done)

    def _declare(self, p: Param, override: Parameter | None) -> None:
        """Declare with the start-up value if it is valid (an int for a float parameter is taken as a
        float); otherwise with the default, remembering why so that configure fails naming it."""
        desc = descriptor(p)
        value = None if override is None else override.value
        if isinstance(p.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        problem = None if override is None else p.check(value)
        if override is not None and problem is None:
            try:
                self._node.declare_parameter(p.name, value, desc, ignore_override=True)
                return
            except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
                problem = f"{p.name}={value!r} is refused: {exc}"
        if problem is not None:
            self.startup_problems[p.name] = problem
        self._node.declare_parameter(p.name, p.default, desc, ignore_override=True)

    # ------------------------------------------------------------------ checks
    def check(self, changes: dict[str, Any]) -> str | None:
        """Why this candidate change is refused, or None."""
        configured = self._configured()
        changed = {k: v for k, v in changes.items() if v != self.values.get(k)}
        if configured:
            static = sorted(k for k in changed if not PARAMETERS[k].dynamic)
            if static:
                return (f"{', '.join(static)} {'is' if len(static) == 1 else 'are'} static (read at configure): "
                        "deactivate and clean up the node to change "
                        f"{'it' if len(static) == 1 else 'them'}")
        candidate = {**self.values, **changes}
        if configured:
            problems = parameters.validate(candidate)
        else:
            problems = [msg for k, v in changes.items() if (msg := PARAMETERS[k].check(v))]
        if not problems and "providers" in changed:
            problems = system_problems(changes)
        if problems:
            return "; ".join(problems)
        return self._prepare(changes, candidate) if configured else None

    def configure_problems(self) -> list[str]:
        """Every problem with the current configuration (start-up values refused, rules, this machine)."""
        return [*self.startup_problems.values(), *parameters.validate(self.values), *system_problems(self.values)]

    # ------------------------------------------------------------------ rclpy callbacks
    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        changes = {p.name: p.value for p in params if p.name in PARAMETERS}
        if not changes:
            return SetParametersResult(successful=True)
        for name, value in changes.items():  # rclpy keeps the declared type; ints for floats are refused there
            if isinstance(value, tuple):
                changes[name] = list(value)
        try:
            reason = self.check(changes)
        except Exception as exc:  # a bug must refuse the change, not take the node down
            reason = f"internal error while checking the change: {type(exc).__name__}: {exc}"
        self._pending = None if reason else changes
        return SetParametersResult(successful=reason is None, reason=reason or "")

    def _on_set_done(self, params: list[Parameter]) -> None:
        changes = {p.name: p.value for p in params if p.name in PARAMETERS}
        if not changes:
            return
        changes = {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}
        self.values.update(changes)
        for name in changes:
            self.startup_problems.pop(name, None)
        self._pending = None
        self._apply(changes)


class WholeRequestParameterService(ParameterService):
    """rclpy's parameter services, except that a (non-atomic) SetParameters request is checked and
    applied as one candidate configuration: `[min_v_x 0.6, max_v_x 0.7]` works in either order, and a
    refused request changes nothing (every parameter in it carries the reason)."""

    def _set_parameters_callback(self, request: Any, response: Any) -> Any:
        node = self._get_node()
        params = [Parameter.from_parameter_msg(p) for p in request.parameters]
        try:
            result = node.set_parameters_atomically(params)
        except Exception as exc:  # undeclared parameters and the like
            result = SetParametersResult(successful=False, reason=str(exc))
        response.results = [result for _ in params]
        return response
