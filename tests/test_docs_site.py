"""The API reference (mkdocs.yml, docs/api/) documents every public name, and each has a docstring.

The public API is the ``__all__`` of ``shiftlab`` and of each public module under it (not ``cli``);
a package without ``__all__`` (``shiftlab.study``) is public through its modules. ``mkdocs build
--strict`` (a CI step) renders the docs; these checks read the sources, so they run in a second.
"""

import doctest
import importlib
import importlib.util
import pkgutil
import re
import sys
import types
from pathlib import Path

import griffe
import pytest
import yaml

import shiftlab

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"
NOT_API = {"cli", "__main__"}  # the command line, documented by --help and the README


def public_modules() -> list[str]:
    """``shiftlab`` and every public module under it that the reference must hold, by dotted name."""
    names = ["shiftlab"]
    for info in pkgutil.iter_modules(shiftlab.__path__):
        if info.name.startswith("_") or info.name in NOT_API:
            continue
        module = importlib.import_module(f"shiftlab.{info.name}")
        if hasattr(module, "__all__") or not info.ispkg:
            names.append(module.__name__)
        else:
            names += [f"{module.__name__}.{sub.name}" for sub in pkgutil.iter_modules(module.__path__)
                      if not sub.name.startswith("_")]
    return names


def directives() -> dict[str, list[str]]:
    """Each ``::: module`` directive in docs/api/*.md, with the option lines indented under it."""
    found: dict[str, list[str]] = {}
    for page in sorted(API.glob("*.md")):
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if match := re.fullmatch(r":::\s*(\S+)\s*", line):
                options = [rest for rest in lines[i + 1:] if rest.startswith(" ")]
                found[match[1]] = found.get(match[1], []) + options[: next(
                    (k for k, rest in enumerate(lines[i + 1:]) if not rest.startswith(" ")), len(options))]
    return found


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    """shiftlab as mkdocstrings reads it: statically, through the site's griffe extension."""
    extension = f"{ROOT / 'docs' / 'griffe_docstrings.py'}:SphinxHabits"
    loaded = griffe.load("shiftlab", search_paths=[ROOT / "src"], extensions=griffe.load_extensions(extension),
                         docstring_parser="google")
    assert isinstance(loaded, griffe.Module)
    return loaded


def test_every_public_module_has_one_directive_and_no_directive_is_stale():
    documented = directives()
    public = public_modules()
    assert "shiftlab.nn" in public and "shiftlab.study.results" in public and "shiftlab.cli" not in public
    missing = sorted(set(public) - set(documented))
    assert not missing, f"add '::: NAME' to a page in docs/api/ (and mkdocs.yml's nav) for: {missing}"
    stale = sorted(set(documented) - set(public))
    assert not stale, f"docs/api/ documents modules that are not public (remove or fix): {stale}"


def test_no_option_hides_members():
    """mkdocstrings renders a module's ``__all__`` (else its public names) unless an option narrows it."""
    hidden = {name: options for name, options in directives().items() if options}
    assert not hidden, f"options under ':::' directives can hide public names; set them in mkdocs.yml: {hidden}"
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    python = next(p["mkdocstrings"] for p in config["plugins"] if isinstance(p, dict) and "mkdocstrings" in p)
    options = python["handlers"]["python"]["options"]
    assert options["filters"] == ["!^_"] and "members" not in options
    assert options["docstring_style"] == "google"


def _documented_object(package: griffe.Module, module: str, name: str) -> griffe.Object:
    """The object the reference shows for ``module.name`` (a re-export resolved to its definition)."""
    found = package[module.removeprefix("shiftlab").lstrip(".") + f".{name}" if module != "shiftlab" else name]
    target = found.final_target if isinstance(found, griffe.Alias) else found
    runtime = getattr(importlib.import_module(module), name)
    if target.is_module and not isinstance(runtime, types.ModuleType):
        # `from .evaluate import evaluate` in a package: griffe sees the submodule, which holds the function.
        target = target[name]
    return target


def test_every_public_name_has_a_docstring(package):
    undocumented = []
    for module in public_modules():
        for name in importlib.import_module(module).__all__:
            obj = _documented_object(package, module, name)
            if obj.docstring is None or not obj.docstring.value.strip():
                undocumented.append(f"{module}.{name} ({obj.path}, {obj.relative_filepath}:{obj.lineno})")
    assert not undocumented, ("mkdocstrings leaves these public names out of the reference: give each a docstring "
                              f"(a constant: a '#:' comment above it): {undocumented}")


def test_docstrings_parse_without_warnings(package, caplog):
    """What would fail ``mkdocs build --strict``: Args that name no parameter, sections griffe cannot read."""
    seen: set[str] = set()

    def parse(obj: griffe.Object | griffe.Alias) -> None:
        if isinstance(obj, griffe.Alias) or obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.parse("google")
        for member in obj.members.values():
            if not member.name.startswith("_"):
                parse(member)

    with caplog.at_level("WARNING", logger="griffe"):
        for module in public_modules():
            parse(package[module.removeprefix("shiftlab").lstrip(".")] if module != "shiftlab" else package)
    assert len(seen) > 500
    assert not caplog.records, "\n".join(record.getMessage() for record in caplog.records)


def test_site_extension_reads_sphinx_habits(package, monkeypatch):
    """docs/griffe_docstrings.py: ``#:`` comments, ``Example:``, grouped Args and Sphinx roles, as Sphinx reads them."""
    assert package["conversion.DOWNSAMPLE_METHODS"].docstring.value.startswith("Accepted values of")
    sections = {section.kind.value: section for section in package["nn.blurpool.BlurPool2d"].docstring.parse("google")}
    assert "examples" in sections  # not an "Example" admonition of Markdown
    check = {section.kind.value: section for section in package["checks.check_equivariant"].docstring.parse("google")}
    names = [parameter.name for parameter in check["parameters"].value]
    assert "atol" in names and "rtol" in names and not any("," in name for name in names)
    text = package["measure.invariance.InvarianceResult"].docstring.value + package["conversion.convert"].docstring.value
    assert ":func:" not in text and ":class:" not in text

    name = "docs_griffe_docstrings"  # its own name: griffe imported the file as an extension already
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "griffe_docstrings.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # doctest finds a function's tests through its module
    spec.loader.exec_module(module)
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(module):
        runner.run(test)
    assert runner.summarize(verbose=False) == (0, 3)
