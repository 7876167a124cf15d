"""Entry point of the ``shiftlab`` command: sub-commands ``measure``, ``study`` and ``report``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shiftlab import __version__
from shiftlab.cli import measure, report, study

DESCRIPTION = """\
shiftlab answers, with measurements, whether a network is translation invariant and
which layer stops it being equivariant, and why (stride/aliasing or padding/boundary).

Sub-commands:
  study     train the architectures of the question on real images, measure them, write a report
  measure   invariance and the per-layer equivariance profile of any PyTorch model
  report    rebuild a study's report.html from its saved results
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shiftlab", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"shiftlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    study.add_parser(sub)
    measure.add_parser(sub)
    report.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 2 bad usage or input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as err:
        print(f"shiftlab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = " (finished epochs are checkpointed: rerun with --resume to continue)" if args.command == "study" else ""
        print(f"shiftlab {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    except RuntimeError as err:  # raised inside the user's model, e.g. an input of the wrong shape
        print(f"shiftlab {args.command}: error: the model failed: {err}\n"
              "check that the images (--input-shape, --images, --data) fit the model", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
