"""Small real ONNX models that obey (or deliberately break) the model contract, built with onnx.helper."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from plan_ga_ros.contract import (
    COSTMAP_INPUT,
    GOAL_INPUT,
    METADATA_INPUT,
    METADATA_KEY,
    OUTPUT,
    STATE_INPUT,
    ModelSpec,
)

OPSET = 17


def _inputs(spec: ModelSpec, names: tuple[str, ...] | None = None, cells: int | None = None) -> list:
    n = cells or spec.window_cells
    names = names or (COSTMAP_INPUT, STATE_INPUT, GOAL_INPUT, METADATA_INPUT)
    shapes = [["B", 1, n, n], ["B", 9], ["B", 3], ["B", 2]]
    return [helper.make_tensor_value_info(nm, TensorProto.FLOAT, sh) for nm, sh in zip(names, shapes)]


def _save(graph: onnx.GraphProto, path: str, spec: ModelSpec | None, metadata: str | None = None) -> str:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    if spec is not None or metadata is not None:
        helper.set_model_props(model, {METADATA_KEY: metadata if metadata is not None else spec.to_json()})
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def go_to_goal(path: str, spec: ModelSpec = ModelSpec(), gain_v: float = 1.0, gain_w: float = 2.0,
               metadata: bool = True, metadata_json: str | None = None) -> str:
    """Steer toward the relative goal: v_x = max_v·tanh(gain_v·dx), ω = max_ω·tanh(gain_w·atan-ish dy).

    Every step repeats the same twist. Output [B, 60] is scaled in-graph to the limits.
    """
    lim = spec.limits
    nodes = [
        helper.make_node("MatMul", [GOAL_INPUT, "w_goal"], ["lin"]),  # [B,3] -> [B,3] (dx, 0, dy)
        helper.make_node("Mul", ["lin", "gain"], ["scaled"]),
        helper.make_node("Tanh", ["scaled"], ["t"]),
        helper.make_node("Mul", ["t", "scale"], ["twist"]),
        helper.make_node("Add", ["twist", "offset"], ["twist_off"]),
        helper.make_node("Tile", ["twist_off", "reps"], [OUTPUT]),
    ]
    w = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=np.float32)  # dx -> v_x, dy -> omega
    half = (lim.max_v_x - lim.min_v_x) / 2
    inits = [
        _const("w_goal", w),
        _const("gain", [gain_v, 0.0, gain_w]),
        _const("scale", [half, 0.0, lim.max_omega]),
        _const("offset", [lim.min_v_x + half, 0.0, 0.0]),
        numpy_helper.from_array(np.array([1, spec.steps], dtype=np.int64), "reps"),
    ]
    out = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["B", spec.steps * 3])
    graph = helper.make_graph(nodes, "go_to_goal", _inputs(spec), [out], inits)
    return _save(graph, path, spec if metadata else None, metadata_json)


def hostile_metadata(path: str, spec: ModelSpec = ModelSpec(), **fields) -> str:
    """A working go-to-goal model whose metadata lies: ``fields`` overwrite the spec's JSON (e.g. dt=1e-6,
    steps=1, window_cells=100000, resolution=1e-4), values ModelSpec itself would refuse to build."""
    meta = json.loads(spec.to_json())
    meta.update(fields)
    return go_to_goal(path, spec, metadata_json=json.dumps(meta))


def loop_model(path: str, twist: tuple[float, float, float], iterations_at_rest: int, iterations_moving: int,
               spec: ModelSpec = ModelSpec(), threshold: float = 0.05) -> str:
    """Outputs ``twist`` at every step after a ``Loop`` of ``iterations_at_rest`` iterations when the state's
    |v_x| < ``threshold`` (the load probe, a robot at rest), else of ``iterations_moving``. With 2**62
    iterations the model never returns: a hung inference, passing the probe if only when moving."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["x_in", "one"], ["x_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [1])],
        [_const("one", [1.0])])
    row = np.tile(np.asarray(twist, np.float32), spec.steps)
    nodes = [
        helper.make_node("Slice", [STATE_INPUT, "i3", "i4", "ax"], ["vx"]),  # [B,1]
        helper.make_node("ReduceMax", ["vx"], ["vmax"], keepdims=0),
        helper.make_node("Abs", ["vmax"], ["speed"]),
        helper.make_node("Div", ["speed", "thr"], ["ratio"]),
        helper.make_node("Floor", ["ratio"], ["k"]),
        helper.make_node("Clip", ["k", "zero", "one_s"], ["moving"]),  # 0 at rest, 1 moving
        helper.make_node("Mul", ["moving", "span"], ["extra"]),
        helper.make_node("Add", ["extra", "rest"], ["trips_f"]),
        helper.make_node("Cast", ["trips_f"], ["trips"], to=TensorProto.INT64),
        helper.make_node("Loop", ["trips", "true", "x0"], ["x_final"], body=body),
        helper.make_node("Mul", ["x_final", "zero"], ["nothing"]),  # [1]: 0, after the loop
        helper.make_node("Mul", ["vx", "zero"], ["zeros"]),  # [B,1]
        helper.make_node("Add", ["zeros", "nothing"], ["zeros2"]),
        helper.make_node("Add", ["zeros2", "row"], [OUTPUT]),
    ]
    inits = [
        numpy_helper.from_array(np.array([3], np.int64), "i3"),
        numpy_helper.from_array(np.array([4], np.int64), "i4"),
        numpy_helper.from_array(np.array([1], np.int64), "ax"),
        numpy_helper.from_array(np.array(True), "true"),
        _const("x0", [0.0]), _const("thr", threshold), _const("zero", 0.0), _const("one_s", 1.0),
        numpy_helper.from_array(np.array(float(iterations_at_rest), np.float32), "rest"),
        numpy_helper.from_array(np.array(float(iterations_moving) - float(iterations_at_rest), np.float32), "span"),
        _const("row", row),
    ]
    out = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["B", spec.steps * 3])
    graph = helper.make_graph(nodes, "loop", _inputs(spec), [out], inits)
    return _save(graph, path, spec)


def padded(path: str, nbytes: int, spec: ModelSpec = ModelSpec()) -> str:
    """A go-to-goal model with an unused initializer of ``nbytes`` bytes (a large model file)."""
    go_to_goal(path, spec)
    model = onnx.load(path)
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(nbytes // 4, np.float32), "padding"))
    onnx.save(model, path)
    return path


def constant(path: str, twist: tuple[float, float, float], spec: ModelSpec = ModelSpec(),
             value: float | None = None) -> str:
    """Every step outputs ``twist`` (or ``value`` everywhere, e.g. NaN), whatever the input."""
    row = np.tile(np.asarray(twist, np.float32), spec.steps) if value is None else np.full(spec.steps * 3, value)
    nodes = [
        helper.make_node("Slice", [STATE_INPUT, "s0", "s1", "ax"], ["col"]),  # [B,1]
        helper.make_node("Mul", ["col", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "row"], [OUTPUT]),  # broadcast [B,1] + [60]
    ]
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "s0"),
        numpy_helper.from_array(np.array([1], np.int64), "s1"),
        numpy_helper.from_array(np.array([1], np.int64), "ax"),
        _const("zero", [0.0]),
        _const("row", row),
    ]
    out = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["B", spec.steps * 3])
    graph = helper.make_graph(nodes, "constant", _inputs(spec), [out], inits)
    return _save(graph, path, spec)


def _broken(path: str, spec: ModelSpec, name: str, input_names: tuple[str, ...] | None = None,
            cells: int | None = None, size: int | None = None) -> str:
    """A model that tiles one state entry to ``size`` outputs, with chosen input names/window."""
    size = size or spec.steps * 3
    state = (input_names or (COSTMAP_INPUT, STATE_INPUT))[1]
    nodes = [helper.make_node("Slice", [state, "s0", "s1", "ax"], ["col"]),
             helper.make_node("Tile", ["col", "reps"], [OUTPUT])]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "s0"),
             numpy_helper.from_array(np.array([1], np.int64), "s1"),
             numpy_helper.from_array(np.array([1], np.int64), "ax"),
             numpy_helper.from_array(np.array([1, size], np.int64), "reps")]
    out = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["B", size])
    graph = helper.make_graph(nodes, name, _inputs(spec, input_names, cells), [out], inits)
    return _save(graph, path, spec)


def wrong_output(path: str, spec: ModelSpec = ModelSpec(), size: int = 59) -> str:
    """A model whose output has the wrong width."""
    return _broken(path, spec, "wrong_output", size=size)


def wrong_input_names(path: str, spec: ModelSpec = ModelSpec()) -> str:
    """A model whose inputs are called input_0..input_3 (the classic export mistake)."""
    return _broken(path, spec, "wrong_names", input_names=("input_0", "input_1", "input_2", "input_3"))


def wrong_window(path: str, spec: ModelSpec = ModelSpec(), cells: int = 64) -> str:
    """A contract-named model that expects a window of ``cells`` instead of the spec's."""
    return _broken(path, spec, "wrong_window", cells=cells)


def fails_when_fast(path: str, spec: ModelSpec = ModelSpec(), mode: str = "nan", threshold: float = 5.0) -> str:
    """Drives forward normally; when the state's v_x ≥ ``threshold`` it returns NaN (mode "nan")
    or makes ONNX Runtime raise in a Reshape (mode "raise"). Passes the load-time probe (robot at rest).
    """
    row = np.tile(np.asarray([0.3, 0.0, 0.0], np.float32), spec.steps)
    nodes = [
        helper.make_node("Slice", [STATE_INPUT, "i3", "i4", "ax"], ["vx"]),  # [B,1]
        helper.make_node("Div", ["vx", "thr"], ["ratio"]),
        helper.make_node("Floor", ["ratio"], ["k"]),
        helper.make_node("Clip", ["k", "zero", "one"], ["flag"]),  # 0 below threshold, 1 at/above
        helper.make_node("Mul", ["vx", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "row"], ["plan"]),  # [B,60]
    ]
    if mode == "nan":
        nodes += [helper.make_node("Neg", ["flag"], ["neg"]),
                  helper.make_node("Sqrt", ["neg"], ["maybe_nan"]),  # sqrt(-1) = NaN, sqrt(-0) = 0
                  helper.make_node("Add", ["plan", "maybe_nan"], [OUTPUT])]
    else:
        nodes += [helper.make_node("ReduceMax", ["flag"], ["fmax"], keepdims=0),
                  helper.make_node("Mul", ["fmax", "seven"], ["extra"]),
                  helper.make_node("Add", ["extra", "sixty"], ["width_f"]),
                  helper.make_node("Cast", ["width_f"], ["width"], to=TensorProto.INT64),
                  helper.make_node("Reshape", ["width", "one_dim"], ["width1"]),
                  helper.make_node("Concat", ["minus_one", "width1"], ["shape"], axis=0),
                  helper.make_node("Reshape", ["plan", "shape"], [OUTPUT])]  # 60·B not divisible by 67
    inits = [
        numpy_helper.from_array(np.array([3], np.int64), "i3"),
        numpy_helper.from_array(np.array([4], np.int64), "i4"),
        numpy_helper.from_array(np.array([1], np.int64), "ax"),
        numpy_helper.from_array(np.array([1], np.int64), "one_dim"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
        _const("thr", [threshold]), _const("zero", 0.0), _const("one", 1.0),
        _const("seven", 7.0), _const("sixty", 60.0), _const("row", row),
    ]
    out = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["B", spec.steps * 3])
    used = {i for n in nodes for i in n.input}
    graph = helper.make_graph(nodes, f"fails_{mode}", _inputs(spec), [out], [t for t in inits if t.name in used])
    return _save(graph, path, spec)
