"""ONNX export with the contract's names, dynamic batch, metadata and a full checker pass.

When export fails, ``ExportError`` says why and how to fix it for the classic non-exportable
patterns (Python control flow on tensor values, ``.item()``, lists of tensors and ``len()``,
adaptive pooling with non-divisible sizes).
"""

from __future__ import annotations

import re
import subprocess
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from plan_ga_ros.contract import INPUT_NAMES, METADATA_KEY, OUTPUT, ModelSpec, input_shapes

EXPORTER = "dynamo"  # torch.onnx.export(dynamo=True), the exporter of torch 2.13
OPSET = 18

HINTS: list[tuple[str, str]] = [
    (r"data.dependent|GuardOnDataDependent|Could not guard on data-dependent|TracerWarning.*(bool|Python)"
     r"|Converting a tensor to a Python boolean",
     "Python control flow on a tensor value (e.g. `if x.sum() > 0:`): the exported graph cannot branch on "
     "data. Compute both branches and select with `torch.where(cond, a, b)`."),
    (r"\.item\(\)|_local_scalar_dense|Converting a tensor to a Python (number|float|integer)",
     "`.item()`/`float(tensor)` turns a tensor into a Python number the graph cannot follow. Keep values as "
     "tensors (index with slicing, use tensor ops)."),
    (r"adaptive_(avg|max)_pool|adaptive pool|AdaptiveAvgPool|AdaptiveMaxPool",
     "Adaptive pooling whose input size is not a multiple of the output size has no ONNX equivalent. Use "
     "`nn.AvgPool2d`/`nn.MaxPool2d` with a fixed kernel and stride, or make the size divisible."),
    (r"list|len\(\)|TensorList|tuple index|Sequence",
     "A Python list of tensors or `len()` of one: build the tensor directly (`torch.stack` once, or a batched "
     "op) and use `tensor.shape[0]` instead of `len()`."),
]


class ExportError(RuntimeError):
    """Export failed; the message carries the cause and an actionable fix."""


def _chain_text(exc: BaseException | str) -> str:
    """The messages of an exception and its causes (the useful part is often a cause)."""
    if isinstance(exc, str):
        return exc
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def explain(exc: BaseException | str) -> str:
    text = _chain_text(exc)
    for pattern, hint in HINTS:
        if re.search(pattern, text, flags=re.IGNORECASE | re.DOTALL):
            return hint
    return ("Look for Python-side logic on tensor values in forward(); run the model under "
            "torch.export.export(...) to see the first unsupported construct.")


def example_inputs(spec: ModelSpec, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """A batch ≥ 2 example (a batch-1 example pins the batch axis to 1)."""
    g = torch.Generator().manual_seed(0)
    shapes = input_shapes(spec)
    return tuple(torch.rand(batch, *shapes[name], generator=g) for name in INPUT_NAMES)


def git_commit() -> str:
    """The short commit of the code that exports, "-dirty" when tracked files differ from it."""
    here = Path(__file__).resolve().parent  # this package's checkout, wherever the user runs from
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=here).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True, cwd=here).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head + ("-dirty" if dirty else "")


def export_module(model: nn.Module, args: tuple[torch.Tensor, ...], path: Path, input_names: list[str],
                  output_names: list[str], exporter: str = EXPORTER, opset: int = OPSET) -> onnx.ModelProto:
    """Export any module with a dynamic batch axis; raise ExportError with a hint on failure."""
    model = model.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", torch.jit.TracerWarning)  # a baked-in branch is a failure
            if exporter == "dynamo":
                batch = torch.export.Dim("batch", min=1, max=4096)
                torch.onnx.export(model, args, str(path), input_names=input_names, output_names=output_names,
                                  dynamic_shapes=tuple({0: batch} for _ in args), opset_version=opset,
                                  dynamo=True, optimize=True, verbose=False, external_data=False)
            elif exporter == "legacy":
                axes = {n: {0: "batch"} for n in [*input_names, *output_names]}
                torch.onnx.export(model, args, str(path), input_names=input_names, output_names=output_names,
                                  dynamic_axes=axes, opset_version=opset, do_constant_folding=True,
                                  dynamo=False)
            else:
                raise ValueError(f"exporter must be 'dynamo' or 'legacy', got {exporter!r}")
    except ValueError:
        raise
    except Exception as exc:  # the exporters raise many types; all are explained the same way
        msg = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
        first = msg.splitlines()[0] if msg else type(exc).__name__
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: {first}\nFix: {explain(exc)}") from exc
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_planner(model: nn.Module, spec: ModelSpec, path: Path, exporter: str = EXPORTER,
                   opset: int = OPSET) -> onnx.ModelProto:
    """Export the planner under the contract's names with its metadata; checks the result."""
    proto = export_module(model, example_inputs(spec), path, list(INPUT_NAMES), [OUTPUT], exporter, opset)
    meta = {p.key: p.value for p in proto.metadata_props}
    meta[METADATA_KEY] = spec.to_json()
    meta["exporter"] = f"torch {torch.__version__} {exporter}, opset {opset}"
    onnx.helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return proto
