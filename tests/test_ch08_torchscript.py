"""Chapter 8 TorchScript: tracing loses a data-dependent branch, scripting keeps it; save/load; torch.export as the
successor; the C++ program (built with CMake against the wheel's libtorch) prints Python's logits."""
import pytest
import torch

import handson
from chapter02_simple_nn.fizbuz import FizBuzNet, make_tensors
from chapter08_production.build_cpp import build, missing_tools, run_predict
from chapter08_production.torchscript_export import ZeroIsFizzBuzz, export_program, quiet_torchscript, save_scripted


@pytest.fixture(scope="module")
def model():
    handson.seed_everything(2)
    return FizBuzNet().eval()


def bits(number):
    return make_tensors([number])[0]


def test_trace_loses_the_branch_script_keeps_it(model):
    wrapped = ZeroIsFizzBuzz(model).eval()
    with quiet_torchscript(), pytest.warns(torch.jit.TracerWarning, match="Python boolean"):
        traced = torch.jit.trace(wrapped, bits(5))
    with quiet_torchscript():
        scripted = torch.jit.script(wrapped)
    with torch.no_grad():
        assert wrapped(bits(0)).argmax().item() == 0 == scripted(bits(0)).argmax().item()
        torch.testing.assert_close(traced(bits(0)), model(bits(0)))  # the trace only knows the network branch
        assert not torch.equal(traced(bits(0)), wrapped(bits(0)))
        torch.testing.assert_close(scripted(bits(7)), model(bits(7)))


def test_scripted_save_load_and_export_roundtrip(model, tmp_path):
    x, _ = make_tensors(range(1024))
    with torch.no_grad():
        expected = model(x)
    path = save_scripted(model, tmp_path / "fizbuz_script.pt")
    with quiet_torchscript():
        loaded = torch.jit.load(str(path))
    program = torch.export.load(export_program(model, tmp_path / "fizbuz.pt2"))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), expected)
        torch.testing.assert_close(program.module()(x), expected)
        torch.testing.assert_close(program.module()(x[:1]), expected[:1])  # dynamic batch size


@pytest.mark.skipif(bool(missing_tools()), reason=f"C++ build tools missing: {', '.join(missing_tools())}")
def test_cpp_program_prints_python_logits(model, tmp_path):
    executable = build()  # cached in artifacts/chapter08_production/cpp_build: slow only the first time
    path = save_scripted(model, tmp_path / "fizbuz_script.pt")
    numbers = [0, 1, 3, 5, 14, 15, 1023]
    predictions = run_predict(executable, path, numbers)
    with torch.no_grad():
        expected = model(make_tensors(numbers)[0])
    assert [p.number for p in predictions] == numbers
    torch.testing.assert_close(torch.tensor([p.logits for p in predictions]), expected, atol=1e-5, rtol=1e-5)
    assert [p.label for p in predictions] == expected.argmax(1).tolist()
    with pytest.raises(RuntimeError, match="1024"):
        run_predict(executable, path, [1024])
