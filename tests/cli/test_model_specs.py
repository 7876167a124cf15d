"""Naming a model for ``shiftlab measure`` (issue 22, item 5): ``module.path:callable`` beside
``file.py:factory``, a registered name, ``--model-kwargs`` and ``--weights`` for all of them, a
model file that imports a module beside it, and tables whose layer names are printed whole when
the output is no terminal (it was cut to 80 columns: ``layer1.0.conv1`` and ``layer1.0.conv2``
both read ``layer1.0.…``)."""

from __future__ import annotations

import argparse
import json
import sys

import pytest
import torch
from cli_helpers import run

from shiftlab.cli.measure import _torch_model
from shiftlab.cli.model_loading import load_model

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ("--input-shape", "1,8,8", "-n", "2", "--shifts", "1", "--device", "cpu")

NETS = """
from torch import nn


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, padding_mode="circular")
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, padding_mode="circular")

    def forward(self, x):
        return x + self.conv2(self.conv1(x).relu())


class Net(nn.Module):
    def __init__(self, width=4, classes=3):
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, padding=1, padding_mode="circular")
        self.layer1 = nn.Sequential(Block(width))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))

    def forward(self, x):
        return self.head(self.layer1(self.stem(x)))


def build(width=4, classes=3):
    return Net(width, classes)


def broken():
    return {}["width"]


def not_a_model():
    return 42


SETTING = 3
"""


@pytest.fixture
def spec_module(tmp_path, monkeypatch) -> str:
    """A package ``specnets_<id>`` in the current directory (not installed), with a module ``nets``;
    taken out of ``sys.modules`` afterwards."""
    name = f"specnets_{tmp_path.name.replace('-', '_')}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "nets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    yield f"{name}.nets"
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shiftlab measure: error: "), err
    return lines[0]


def args(model: str, weights: str | None = None, model_kwargs: dict | None = None) -> argparse.Namespace:
    return argparse.Namespace(model=model, weights=weights, model_kwargs=model_kwargs)


# --------------------------------------------------------------------------- module:callable


def test_a_module_callable_is_imported_from_the_current_directory(capsys, spec_module, tmp_path):
    code, out, err = run(capsys, "measure", f"{spec_module}:build", *FAST, "--json", str(tmp_path / "m.json"))
    assert code == 0, err
    assert f"{spec_module}:build: 351 parameters" in " ".join(out.split())  # width 4
    assert json.loads((tmp_path / "m.json").read_text())["model"] == f"{spec_module}:build"
    assert str(tmp_path) not in sys.path  # the current directory was on sys.path for the import only


def test_a_class_is_a_callable_too(spec_module):
    assert type(load_model(f"{spec_module}:Net", {"width": 2})).__name__ == "Net"


def test_model_kwargs_reach_the_factory(capsys, spec_module):
    for width, parameters in ((2, "105 parameters"), (5, "528 parameters")):
        code, out, err = run(capsys, "measure", f"{spec_module}:build", *FAST, "--model-kwargs", json.dumps({"width": width}))
        assert code == 0 and parameters in out, (out, err)


@pytest.mark.parametrize("target, message", [
    ("no_such_package_xyz.models:build",
     "MODEL no_such_package_xyz.models:build: no module no_such_package_xyz.models can be imported (No module named "
     "'no_such_package_xyz'), and no file no_such_package_xyz.models exists either; give path/to/file.py:factory, "
     "module.path:callable"),
    ("{mod}:nope", "module {mod} has no callable 'nope'; callables there: ['Block', 'Net', 'broken', 'build', "
                   "'not_a_model']"),
    ("{mod}:SETTING", "'SETTING' in module {mod} is not callable (its type: int); name a function or class that "
                      "returns a torch.nn.Module"),
    ("{mod}:not_a_model", "{mod}:not_a_model returned int, not a torch.nn.Module"),
    ("{mod}:broken", "the factory {mod}:broken raised KeyError: 'width'; check its arguments (add --debug"),
])
def test_module_spec_errors_say_what_is_wrong(capsys, spec_module, target, message):
    code, _, err = run(capsys, "measure", target.format(mod=spec_module), *FAST)
    assert code == 2 and message.format(mod=spec_module) in error_line(err)


def test_a_module_that_fails_to_import_is_named(capsys, spec_module, tmp_path):
    (tmp_path / spec_module.split(".")[0] / "needs.py").write_text("import a_module_that_is_not_installed\n")
    code, _, err = run(capsys, "measure", f"{spec_module.split('.')[0]}.needs:build", *FAST)
    line = error_line(err)
    assert code == 2 and "importing the module" in line and "No module named 'a_module_that_is_not_installed'" in line
    assert "install what it needs" in line


@pytest.mark.parametrize("kwargs, message", [
    ('{"width": 2, "depth": 3}', "cannot be called with --model-kwargs {\"width\": 2, \"depth\": 3} (got an unexpected "
                                 "keyword argument 'depth'); its parameters: (width=4, classes=3)"),
])
def test_model_kwargs_the_factory_does_not_take_are_named_with_its_parameters(capsys, spec_module, kwargs, message):
    code, _, err = run(capsys, "measure", f"{spec_module}:build", *FAST, "--model-kwargs", kwargs)
    assert code == 2 and message in error_line(err)


@pytest.mark.parametrize("text, message", [
    ("{width: 2}", "argument --model-kwargs: not valid JSON (Expecting property name enclosed in double quotes"),
    ("[1, 2]", "argument --model-kwargs: must be a JSON object of keyword arguments such as '{\"num_classes\": 10}', "
               "got a JSON list"),
])
def test_model_kwargs_must_be_a_json_object(capsys, text, message):
    with pytest.raises(SystemExit) as exit_:
        run(capsys, "measure", "anything.py:build", *FAST, "--model-kwargs", text)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_model_kwargs_are_refused_for_an_onnx_file(capsys, tmp_path):
    code, _, err = run(capsys, "measure", str(tmp_path / "m.onnx"), *FAST, "--model-kwargs", "{}")
    assert code == 2 and "an ONNX file holds its weights; --weights is for file.py:factory models" in error_line(err)


# --------------------------------------------------------------------------- --weights


def test_weights_round_trip_for_a_module_spec_and_a_file(capsys, spec_module, tmp_path):
    source = load_model(f"{spec_module}:build", {"width": 2})
    torch.save(source.state_dict(), tmp_path / "w.pt")
    file = tmp_path / spec_module.split(".")[0] / "nets.py"
    for target in (f"{spec_module}:build", f"{file}:build"):
        model, _ = _torch_model(args(target, str(tmp_path / "w.pt"), {"width": 2}))
        assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), model.state_dict().values(), strict=True))
        code, _, err = run(capsys, "measure", target, *FAST, "--model-kwargs", '{"width": 2}', "--weights",
                           str(tmp_path / "w.pt"))
        assert code == 0, err


def test_weights_errors_name_the_file_and_the_first_keys(capsys, spec_module, tmp_path):
    torch.save(load_model(f"{spec_module}:build", {"width": 2}).state_dict(), tmp_path / "narrow.pt")
    torch.save({f"{k}.renamed": v for k, v in load_model(f"{spec_module}:build").state_dict().items()},
               tmp_path / "renamed.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    cases = {
        "absent.pt": f"weights file {tmp_path / 'absent.pt'} does not exist",
        "list.pt": "holds a list, not a state dict",
        "narrow.pt": "do not fit the model (Net): stem.weight: file (2, 1, 3, 3), model (4, 1, 3, 3);",
        "renamed.pt": "do not fit the model (Net): missing stem.weight (4, 1, 3, 3); missing stem.bias (4,);",
    }
    for name, message in cases.items():
        code, _, err = run(capsys, "measure", f"{spec_module}:build", *FAST, "--weights", str(tmp_path / name))
        line = error_line(err)
        assert code == 2 and message in line, line
    assert "; ... 8 more (" in line  # 8 missing and 8 unexpected keys: the first 8 named, the rest counted


# --------------------------------------------------------------------------- model files


def test_a_model_file_imports_a_module_beside_it_and_leaves_sys_path_as_it_was(capsys, tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "spec_sibling_layers.py").write_text(
        "from torch import nn\n\ndef block(c):\n    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU())\n")
    (tmp_path / "proj" / "net.py").write_text(
        "from torch import nn\nfrom spec_sibling_layers import block\n\n"
        "def build(width=4):\n    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), block(width), "
        "nn.AdaptiveAvgPool2d(1), nn.Flatten())\n")
    path_before, modules_before = list(sys.path), set(sys.modules)
    code, out, err = run(capsys, "measure", f"{tmp_path / 'proj' / 'net.py'}:build", *FAST)
    assert code == 0, err
    assert sys.path == path_before
    assert not {m for m in set(sys.modules) - modules_before if "spec_sibling" in m or m.startswith("shiftlab_user_")}


def test_the_file_form_wins_for_an_existing_file_without_py(capsys, tmp_path, spec_module):
    (tmp_path / "netsfile").write_text(NETS)  # a file whose name is no module path
    code, _, err = run(capsys, "measure", f"{tmp_path / 'netsfile'}:build", *FAST)
    assert code == 0, err


# --------------------------------------------------------------------------- output


def test_layer_names_are_printed_whole_when_the_output_is_no_terminal(capsys, spec_module, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)  # capsys is no terminal: Rich's default width, 80
    code, out, err = run(capsys, "measure", f"{spec_module}:build", *FAST)
    assert code == 0, err
    assert "layer1.0.conv1 Conv2d" in out and "layer1.0.conv2 Conv2d" in out
    assert "…" not in out


def test_help_explains_the_forms_of_model(capsys):
    with pytest.raises(SystemExit):
        run(capsys, "measure", "--help")
    out = capsys.readouterr().out
    for form in ("path/to/file.py:factory", "module.path:callable", "shiftlab.models:resnet18", "model.onnx",
                 "--model-kwargs", "NAME", "resnet18"):
        assert form in out, form


# --------------------------------------------------------------------------- registered names


def test_a_registered_name_and_its_module_spec_build_the_same_model_printed_whole(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    quick = ("--input-shape", "3,32,32", "-n", "2", "--shifts", "1", "--device", "cpu", "--model-kwargs", '{"num_classes": 10}')
    for target in ("resnet18", "shiftlab.models:resnet18"):
        code, out, err = run(capsys, "measure", target, *quick)
        assert code == 0, err
        assert f"{target}: 11,181,642 parameters" in out
        assert "layer1.0.conv1 Conv2d" in out and "layer1.0.conv2 Conv2d" in out and "…" not in out


def test_a_name_that_is_no_file_no_model_and_no_module_spec_lists_the_registered_names(capsys):
    code, _, err = run(capsys, "measure", "resnt18", *FAST)
    line = error_line(err)
    assert code == 2 and "MODEL resnt18 does not exist as a file, and it is no registered model (did you mean resnet18?)" in line
    assert "registered: mobilenet_v2, resnet18, resnet34, resnet50, vgg11, vgg11_bn, vgg16, vgg16_bn" in line
