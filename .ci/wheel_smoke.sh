#!/usr/bin/env bash
# The package as users get it. Builds the sdist and, from it, the wheel (as `pip install` of the
# sdist would); checks both with twine and that the sdist holds the tests and docs; installs the
# wheel, not editable, into a fresh venv; then, from a folder outside the source tree (no src/ to
# import), runs `shiftlab --version`, `shiftlab study --quick` and the report's browser tests
# (copied from the sdist) against the installed package. Fails if a file the package needs at run
# time is missing from the wheel.
#
# Needs: python3 with venv, git, network or a wheel cache for pip, and Chromium with its WebDriver
# (apt-get install chromium chromium-driver). About 3 minutes on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
START=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/shiftlab-wheel-smoke.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

for tool in chromium chromedriver; do
  command -v "$tool" >/dev/null || { echo "wheel smoke: $tool not found: apt-get install chromium chromium-driver" >&2; exit 1; }
done

# What a clean clone holds (tracked files and new ones git does not ignore), so a stale build/ or
# *.egg-info in the checkout cannot put a file into the wheel that the configuration no longer ships.
mkdir "$WORK/tree"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
  | (cd "$ROOT" && tar --null -T - -cf -) | tar -xf - -C "$WORK/tree"

echo "== build (sdist, then the wheel from the sdist)"
python3 -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q -c "$ROOT/constraints.txt" "build>=1" "twine>=5" "setuptools>=77"
"$WORK/tools/bin/python" -m build --no-isolation --outdir "$WORK/dist" "$WORK/tree" >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log"; exit 1; }
WHEEL="$(ls "$WORK"/dist/shiftlab-*-py3-none-any.whl)"
SDIST="$(ls "$WORK"/dist/shiftlab-*.tar.gz)"
VERSION="$(basename "$WHEEL" | cut -d- -f2)"
"$WORK/tools/bin/twine" check --strict "$WHEEL" "$SDIST"
"$WORK/tools/bin/python" - "$SDIST" "$WORK/tree" <<'EOF'
"""The sdist holds every file of tests/, docs/, examples/, benchmarks/ and the top-level files
that the tests read, so its test suite runs as a clone's does."""
import sys, tarfile
from pathlib import Path

sdist, tree = sys.argv[1], Path(sys.argv[2])
with tarfile.open(sdist) as tar:
    held = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
wanted = {p.relative_to(tree).as_posix() for d in ("tests", "docs", "examples", "benchmarks")
          for p in (tree / d).rglob("*") if p.is_file()}
wanted |= {"README.md", "LICENSE", "CHANGELOG.md", "constraints.txt", "pyproject.toml", ".gitignore", "mkdocs.yml"}
missing = sorted(wanted - held)
if missing:
    sys.exit(f"the sdist lacks {len(missing)} files the tests need, e.g. {missing[:5]}: add them to MANIFEST.in")
print(f"sdist: {len(held)} files, all {len(wanted)} of tests/, docs/, examples/, benchmarks/ and the top level")
EOF
echo "wheel: $(basename "$WHEEL"), $(stat -c %s "$WHEEL") bytes; sdist: $(stat -c %s "$SDIST") bytes"

echo "== install the wheel into a fresh venv"
python3 -m venv "$WORK/venv"
VENV="$WORK/venv"
"$VENV/bin/pip" install -q -c "$ROOT/constraints.txt" "$WHEEL" "pytest>=7" "selenium>=4.10"

# Outside the source tree: only the sdist's tests/, so `import shiftlab` can only find the wheel.
mkdir "$WORK/run"
tar -xzf "$SDIST" -C "$WORK" "shiftlab-$VERSION/tests"
mv "$WORK/shiftlab-$VERSION/tests" "$WORK/run/tests"
cd "$WORK/run"
unset PYTHONPATH
export PYTHONNOUSERSITE=1

echo "== the installed package"
IMPORTED="$("$VENV/bin/python" -c 'import shiftlab; print(shiftlab.__file__)')"
echo "import shiftlab -> $IMPORTED"
case "$IMPORTED" in
  "$VENV"/lib/python3*/site-packages/shiftlab/__init__.py) ;;
  *) echo "wheel smoke: shiftlab was imported from $IMPORTED, not from the venv's site-packages" >&2; exit 1 ;;
esac
SAID="$("$VENV/bin/shiftlab" --version)"
echo "shiftlab --version -> $SAID"
[ "$SAID" = "shiftlab $VERSION" ] || { echo "wheel smoke: expected 'shiftlab $VERSION'" >&2; exit 1; }

echo "== shiftlab study --quick"
STUDY_START=$SECONDS
"$VENV/bin/shiftlab" study --quick --out "$WORK/quick"
echo "quick study: $((SECONDS - STUDY_START)) s"

echo "== the report's browser tests, against the installed package"
SHIFTLAB_QUICK_RUN="$WORK/quick" "$VENV/bin/python" -m pytest -q -p no:cacheprovider -rs \
  tests/study/test_study_quick_e2e.py \
  tests/report/test_report_chromium.py \
  "tests/report/test_explorer_study.py::test_the_explorer_shows_the_values_of_results_json_in_chromium"

echo "wheel smoke passed in $((SECONDS - START)) s"
