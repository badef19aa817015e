"""Export the chapter 2 FizzBuzz model to ONNX and run it with ONNX Runtime.

Book: chapter 8, "ONNX". We use today's exporter, ``torch.onnx.export(..., dynamo=True)`` (it captures the model with
``torch.export`` and translates it with onnxscript); the book's TorchScript-based exporter is ``dynamo=False``. The
graph is ``Gemm -> Sigmoid -> Gemm``. The input is named ``input.1`` on purpose: that is the name the book's old
exporter gave it, and the book's HTTP contract ``{"input.1": n}`` comes from it.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

import handson
from chapter02_simple_nn.fizbuz import MODEL_PATH, load_or_train

CHAPTER = "chapter08_production"
ONNX_PATH = handson.ARTIFACTS_DIR / CHAPTER / "fizbuz.onnx"
INPUT_NAME = "input.1"   # the book's (and its HTTP contract's) input name
OUTPUT_NAME = "logits"


def export_onnx(model: nn.Module, path: Path | None = ONNX_PATH, input_size: int = 10) -> onnx.ModelProto:
    """Export ``model`` with the dynamo-based exporter: input ``input.1`` ``(batch, input_size)`` float32 (batch
    dynamic), output ``logits`` ``(batch, 4)``. Writes ``path`` atomically when given; returns the checked ModelProto.

    Raises:
        onnx.checker.ValidationError: the exported model is not valid ONNX.
    """
    example = torch.zeros(1, input_size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(model.to("cpu").eval(), (example,), input_names=[INPUT_NAME],
                                output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},), dynamo=True, verbose=False)
    proto = program.model_proto
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # several server workers may export at once: write, then rename
        onnx.save(proto, tmp)
        os.replace(tmp, path)
    return proto


def export_legacy(model: nn.Module, input_size: int = 10) -> onnx.ModelProto:
    """The book's exporter (TorchScript-based, ``dynamo=False``, deprecated: it warns) for comparison; not saved."""
    buffer = io.BytesIO()
    torch.onnx.export(model.to("cpu").eval(), (torch.zeros(1, input_size),), buffer, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


def ensure_onnx(path: Path = ONNX_PATH, model_path: Path = MODEL_PATH) -> Path:
    """Return ``path``, exporting the saved chapter 2 model first if the ONNX file is missing or older than it."""
    path, model_path = Path(path), Path(model_path)
    if not path.exists() or (model_path.exists() and model_path.stat().st_mtime > path.stat().st_mtime):
        export_onnx(load_or_train(model_path), path)
    return path


def graph_lines(proto: onnx.ModelProto) -> list[str]:
    """One line per graph node: ``op(inputs) -> outputs``, plus the graph's inputs and outputs with their shapes."""
    def describe(value: onnx.ValueInfoProto) -> str:
        dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        return f"{value.name} {onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type)}{dims}"
    lines = [f"input  {describe(v)}" for v in proto.graph.input]
    lines += [f"{node.op_type}({', '.join(node.input)}) -> {', '.join(node.output)}" for node in proto.graph.node]
    lines += [f"output {describe(v)}" for v in proto.graph.output]
    return lines


def ort_session(model: Path | bytes = ONNX_PATH, threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime CPU session for a file or serialized model; ``threads`` intra-op threads (1 suits servers
    that run one process per core)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def ort_logits(session: ort.InferenceSession, bits: np.ndarray) -> np.ndarray:
    """Run the session on ``bits`` ``(batch, input_size)`` float32; return logits ``(batch, 4)`` float32."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(bits, dtype=np.float32)})[0]
