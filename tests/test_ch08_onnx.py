"""Chapter 8 ONNX: the exported graph (Gemm -> Sigmoid -> Gemm), the checker, and ONNX Runtime equal to PyTorch on
all 1024 inputs, through a file and through bytes."""
import os

import onnx
import pytest
import torch

import handson
from chapter02_simple_nn.fizbuz import FizBuzNet, make_tensors, save_model
from chapter08_production.onnx_export import INPUT_NAME, ensure_onnx, export_onnx, graph_lines, ort_logits, ort_session


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    handson.seed_everything(1)
    model = FizBuzNet().eval()
    path = tmp_path_factory.mktemp("ch08_onnx") / "fizbuz.onnx"
    return model, export_onnx(model, path), path


def test_graph_is_gemm_sigmoid_gemm_and_valid(exported):
    _, proto, path = exported
    assert [node.op_type for node in proto.graph.node] == ["Gemm", "Sigmoid", "Gemm"]
    assert [i.name for i in proto.graph.input] == [INPUT_NAME]
    onnx.checker.check_model(onnx.load(path), full_check=True)
    lines = graph_lines(proto)
    assert lines[0] == "input  input.1 FLOAT['batch', 10]" and lines[-1] == "output logits FLOAT['batch', 4]"


@pytest.mark.parametrize("source", ["file", "bytes"])
def test_onnx_runtime_equals_pytorch_on_every_input(exported, source):
    model, proto, path = exported
    session = ort_session(path if source == "file" else proto.SerializeToString())
    x, _ = make_tensors(range(1024))
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(torch.from_numpy(ort_logits(session, x.numpy())), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.from_numpy(ort_logits(session, x[:1].numpy())), expected[:1], atol=1e-5,
                               rtol=1e-5)  # batch size 1 through the same dynamic-batch graph


def test_ensure_onnx_reexports_when_the_model_is_newer(tmp_path, exported):
    model, _, _ = exported
    model_path = save_model(model, tmp_path / "fizbuz.pt")
    onnx_path = tmp_path / "fizbuz.onnx"
    onnx_path.write_bytes(b"stale")
    os.utime(onnx_path, (0, 0))
    assert ensure_onnx(onnx_path, model_path) == onnx_path
    onnx.checker.check_model(onnx.load(onnx_path))
