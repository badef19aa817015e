"""Unit tests of the shared helper module (profile, device, seeding, paths) and the notebook runner."""
import json

import nbformat
import pytest
import torch

import handson
from handson import runner


def test_profile_reads_environment(monkeypatch):
    monkeypatch.setenv("HANDSON_PROFILE", "Book")
    assert handson.get_profile() == "book"
    monkeypatch.delenv("HANDSON_PROFILE")
    assert handson.get_profile() == "default"
    assert handson.get_profile("smoke") == "smoke"


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HANDSON_PROFILE", "fast")
    with pytest.raises(ValueError, match="smoke, default, book"):
        handson.get_profile()


def test_by_profile_picks_value():
    assert handson.by_profile("smoke", smoke=1, default=2, book=3) == 1
    assert handson.by_profile("book", smoke=1, default=2, book=3) == 3


def test_device_override(monkeypatch):
    monkeypatch.setenv("HANDSON_DEVICE", "cpu")
    assert handson.get_device() == torch.device("cpu")
    assert handson.get_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            handson.get_device("cuda")


def test_seed_everything_repeats_draws():
    handson.seed_everything(3)
    a = torch.rand(4)
    handson.seed_everything(3)
    assert torch.equal(a, torch.rand(4))


def test_artifacts_dir_is_created_under_artifacts(tmp_path, monkeypatch):
    monkeypatch.setattr(handson, "ARTIFACTS_DIR", tmp_path / "artifacts")
    path = handson.artifacts_dir("chapter99", "x")
    assert path.is_dir() and path.relative_to(tmp_path / "artifacts") == path.relative_to(tmp_path / "artifacts")
    assert path.parent.name == "chapter99"


def _notebook(tmp_path, name, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T")] +
                                  [nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def test_runner_reports_headline_and_failing_cell(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "ARTIFACTS_DIR", tmp_path / "artifacts")
    good = _notebook(tmp_path, "good.ipynb", "import handson", "handson.headline('answer: 42')")
    bad = _notebook(tmp_path, "bad.ipynb", "x = 1", "raise ValueError('boom')", "print('never')")
    before = good.read_text()
    status = runner.main([str(good), str(bad), "--profile", "smoke", "--timeout", "120"])
    out = capsys.readouterr().out
    assert status == 1
    assert "answer: 42" in out
    assert "code cell 2" in out and "ValueError: boom" in out
    assert good.read_text() == before  # the committed notebook is left alone
    executed = list((tmp_path / "artifacts" / "executed" / "smoke").rglob("good.ipynb"))
    assert executed and json.loads(executed[0].read_text())["cells"][2]["outputs"]
