"""The API reference (mkdocs.yml, docs/api/) documents every public name, and each has a docstring.

The public API is the ``__all__`` of ``shiftlab`` and of each public module under it (not ``cli``;
``docs/site_checks.py``, ``public_modules``). ``mkdocs build --strict`` (a CI step) renders the site
and its hook fails the build on a public name missing from ``objects.inv`` or a link to no file;
these tests read the sources instead, so they run without building the site.
"""

import doctest
import importlib
import importlib.util
import re
import sys
import types
import zlib
from pathlib import Path

import griffe
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"


def _docs_module(stem: str) -> types.ModuleType:
    """Import ``docs/<stem>.py`` (a file MkDocs loads by path) under a name of its own."""
    name = f"docs_{stem}"  # not the name griffe or mkdocs gave it when they imported the file
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{stem}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # doctest finds a function's tests through its module
        spec.loader.exec_module(module)
    return sys.modules[name]


site_checks = _docs_module("site_checks")


def directives() -> dict[str, list[str]]:
    """Each ``::: path`` directive in docs/api/*.md, with the option lines indented under it."""
    found: dict[str, list[str]] = {}
    for page in sorted(API.glob("*.md")):
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if match := re.fullmatch(r":::\s*(\S+)\s*", line):
                options = []
                for rest in lines[i + 1:]:
                    if not rest.startswith(" "):
                        break
                    options.append(rest)
                found[match[1]] = found.get(match[1], []) + options
    return found


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    """shiftlab as mkdocstrings reads it: statically, through the site's griffe extension."""
    extension = f"{ROOT / 'docs' / 'griffe_docstrings.py'}:SphinxHabits"
    loaded = griffe.load("shiftlab", search_paths=[ROOT / "src"], extensions=griffe.load_extensions(extension),
                         docstring_parser="google")
    assert isinstance(loaded, griffe.Module)
    return loaded


def _public_objects(package: griffe.Module) -> list[tuple[str, griffe.Object, bool]]:
    """``(module.name, what the reference shows for it, whether it needs a directive of its own)``.

    A function imported over the submodule of the same name (``from .evaluate import evaluate``)
    is the submodule to griffe, so ``::: package`` leaves the function out: it needs its own.
    """
    found = []
    for module in site_checks.public_modules():
        for name in importlib.import_module(module).__all__:
            member = package[f"{module}.{name}".removeprefix("shiftlab").lstrip(".")]
            target = member.final_target if isinstance(member, griffe.Alias) else member
            runtime = getattr(importlib.import_module(module), name)
            shadowed = target.is_module and not isinstance(runtime, types.ModuleType)
            found.append((f"{module}.{name}", target[name] if shadowed else target, shadowed))
    return found


def test_every_public_module_and_shadowed_function_has_a_directive_and_none_is_stale(package):
    public = site_checks.public_modules()
    assert "shiftlab.nn" in public and "shiftlab.study.results" in public and "shiftlab.cli" not in public
    shadowed = {target.path for _, target, own in _public_objects(package) if own}
    assert "shiftlab.training.evaluate.evaluate" in shadowed
    documented = set(directives())
    missing = sorted((set(public) | shadowed) - documented)
    assert not missing, f"add '::: PATH' to a page in docs/api/ (and mkdocs.yml's nav) for: {missing}"
    stale = sorted(documented - set(public) - shadowed)
    assert not stale, f"docs/api/ documents what is not public (remove or fix): {stale}"


def test_no_option_hides_members():
    """mkdocstrings renders a module's ``__all__`` (else its public names) unless an option narrows it."""
    narrowed = {name: options for name, options in directives().items() if options}
    assert not narrowed, f"options under ':::' directives can hide public names; set them in mkdocs.yml: {narrowed}"
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    python = next(p["mkdocstrings"] for p in config["plugins"] if isinstance(p, dict) and "mkdocstrings" in p)
    options = python["handlers"]["python"]["options"]
    assert options["filters"] == ["!^_"] and "members" not in options
    assert options["docstring_style"] == "google"
    assert "docs/site_checks.py" in config["hooks"]


def test_every_public_name_has_a_docstring(package):
    undocumented = [f"{name} ({target.relative_filepath}:{target.lineno})" for name, target, _ in _public_objects(package)
                    if target.docstring is None or not target.docstring.value.strip()]
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
        for module in site_checks.public_modules():
            parse(package[module.removeprefix("shiftlab").lstrip(".")] if module != "shiftlab" else package)
    assert len(seen) > 500
    assert not caplog.records, "\n".join(record.getMessage() for record in caplog.records)


def test_site_extension_reads_sphinx_habits(package):
    """docs/griffe_docstrings.py: ``#:`` comments, ``Example:``, grouped Args and Sphinx roles, as Sphinx reads them."""
    assert package["conversion.DOWNSAMPLE_METHODS"].docstring.value.startswith("Accepted values of")
    sections = {section.kind.value: section for section in package["nn.blurpool.BlurPool2d"].docstring.parse("google")}
    assert "examples" in sections  # not an "Example" admonition of Markdown
    check = {section.kind.value: section for section in package["checks.check_equivariant"].docstring.parse("google")}
    names = [parameter.name for parameter in check["parameters"].value]
    assert "atol" in names and "rtol" in names and not any("," in name for name in names)
    text = package["measure.invariance.InvarianceResult"].docstring.value + package["conversion.convert"].docstring.value
    assert ":func:" not in text and ":class:" not in text

    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(_docs_module("griffe_docstrings")):
        runner.run(test)
    assert runner.summarize(verbose=False) == (0, 3)


def test_build_check_names_each_public_name_missing_from_the_inventory(tmp_path):
    """The hook reads ``objects.inv`` and accepts a name documented where it is defined."""
    everything = {name for module in site_checks.public_modules()
                  for name in (f"{module}.{n}" for n in importlib.import_module(module).__all__)}
    everything.discard("shiftlab.invariance")  # documented as shiftlab.measure.invariance.invariance
    everything.add("shiftlab.measure.invariance.invariance")
    body = "".join(f"{name} py:function 1 api/#$ -\n" for name in sorted(everything - {"shiftlab.zoo.build"}))
    inventory = tmp_path / "objects.inv"
    inventory.write_bytes(b"# Sphinx inventory version 2\n# Project: x\n# Version: 0\n# zlib\n" + zlib.compress(body.encode()))
    assert site_checks.undocumented(site_checks.inventory_names(inventory)) == ["shiftlab.zoo.build"]


def test_build_check_finds_a_link_to_no_file(tmp_path):
    """Links MkDocs does not check (a notebook's cells) fail the strict build when they reach no file."""
    (tmp_path / "definitions").mkdir()
    (tmp_path / "definitions" / "index.html").write_text("<p>definitions</p>")
    (tmp_path / "results" / "run").mkdir(parents=True)
    (tmp_path / "results" / "run" / "report.html").write_text("<p>report</p>")
    (tmp_path / "tutorial").mkdir()
    (tmp_path / "tutorial" / "index.html").write_text(
        '<a href="../definitions/">ok</a> <a href="../results/run/report.html#top">ok</a> <a href="#cell">ok</a>'
        ' <a href="https://pytorch.org">ok</a> <img src="data:image/png;base64,AAAA">'
        ' <a href="definitions.md">broken</a> <img src="../figures/missing.png">')
    assert site_checks.broken_links(tmp_path) == [("tutorial/index.html", "definitions.md"),
                                                  ("tutorial/index.html", "../figures/missing.png")]


def test_notebook_links_to_pages_become_page_urls():
    """docs/notebook_links.py: a notebook cell's ``definitions.md#x`` becomes ``../definitions/#x`` in the site."""
    notebook_links = _docs_module("notebook_links")

    class Doc(types.SimpleNamespace):
        def is_documentation_page(self) -> bool:
            return self.src_uri.endswith((".md", ".ipynb"))

        def url_relative_to(self, other: "Doc") -> str:
            return "../" + self.src_uri.removesuffix(".md") + "/"

    pages = {uri: Doc(src_uri=uri) for uri in ("definitions.md", "tutorial.ipynb", "results/run/report.html")}
    files = types.SimpleNamespace(get_file_from_path=pages.get)
    html = '<a href="definitions.md#shifts">a</a> <a href="missing.md">b</a> <a href="results/run/report.html">c</a>'
    notebook = types.SimpleNamespace(file=pages["tutorial.ipynb"])
    assert notebook_links.on_page_content(html, page=notebook, files=files) == (
        '<a href="../definitions/#shifts">a</a> <a href="missing.md">b</a> <a href="results/run/report.html">c</a>')
    markdown_page = types.SimpleNamespace(file=pages["definitions.md"])
    assert notebook_links.on_page_content(html, page=markdown_page, files=files) == html
