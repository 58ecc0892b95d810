"""What is inside an ONNX planner: inputs/outputs, op histogram, parameter count, metadata."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import onnx

from plan_ga_ros.contract import METADATA_KEY


def _dims(value: onnx.ValueInfoProto) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def inspect(path: str) -> dict:
    model = onnx.load(path)
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    ops: Counter = Counter(n.op_type for n in graph.node)
    for fn in model.functions:  # exporters may keep local functions
        ops.update(n.op_type for n in fn.node)
    meta = {p.key: p.value for p in model.metadata_props}
    return {
        "path": path,
        "inputs": [{"name": i.name, "shape": _dims(i),
                    "dtype": onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type).name}
                   for i in graph.input if i.name not in init_names],
        "outputs": [{"name": o.name, "shape": _dims(o),
                     "dtype": onnx.helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type).name}
                    for o in graph.output],
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "nodes": sum(ops.values()),
        "parameters": int(sum(np.prod(t.dims) for t in graph.initializer)),
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "ir_version": model.ir_version,
        "metadata": json.loads(meta[METADATA_KEY]) if METADATA_KEY in meta else None,
        "other_metadata": {k: v for k, v in meta.items() if k != METADATA_KEY},
    }


def report(info: dict) -> str:
    lines = [f"model: {info['path']}  (IR {info['ir_version']}, opset {info['opset']})", "inputs:"]
    lines += [f"  {i['name']:<24} {str(i['shape']):<18} {i['dtype']}" for i in info["inputs"]]
    lines += ["outputs:"] + [f"  {o['name']:<24} {str(o['shape']):<18} {o['dtype']}" for o in info["outputs"]]
    lines += [f"parameters: {info['parameters']:,}", f"nodes: {info['nodes']}", "op histogram:"]
    lines += [f"  {op:<20} {n}" for op, n in info["ops"].items()]
    lines.append("metadata:" if info["metadata"] else "metadata: none (the node falls back to its parameters)")
    for k, v in (info["metadata"] or {}).items():
        lines.append(f"  {k}: {v}")
    for k, v in info["other_metadata"].items():
        lines.append(f"  {k}: {v}")
    return "\n".join(lines)


def serve_netron(path: str, port: int = 8080) -> None:
    """Serve the model in Netron on localhost until interrupted."""
    import time

    import netron

    netron.start(path, address=("127.0.0.1", port), browse=False)
    print(f"Netron is serving {path} at http://127.0.0.1:{port} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        netron.stop()
