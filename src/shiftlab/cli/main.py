"""Entry point of the ``shiftlab`` command: sub-commands ``measure``, ``study`` and ``report``.

Every error ends the command with one line, ``shiftlab COMMAND: error: ...``, and exit code 2;
``--debug`` prints the Python traceback instead (exit code 2 as well).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from shiftlab import __version__
from shiftlab.cli import measure, report, study

DESCRIPTION = """\
shiftlab answers, with measurements, whether a network is translation invariant and
which layer stops it being equivariant, and why (stride/aliasing or padding/boundary).
"""

EPILOG = """\
run `shiftlab COMMAND --help` for the options of a command; add --debug to see the Python
traceback of an error.
"""

_DEBUG_HELP = "show the Python traceback of an error instead of a one-line message"


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Lists the commands once, under "commands:", without a line for the COMMAND metavar."""

    def _format_action(self, action: argparse.Action) -> str:
        text = super()._format_action(action)
        if isinstance(action, argparse._SubParsersAction):
            text = text.split("\n", 1)[1]
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shiftlab", description=DESCRIPTION, epilog=EPILOG, formatter_class=_HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"shiftlab {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    study.add_parser(sub)
    measure.add_parser(sub)
    report.add_parser(sub)
    for command in sub.choices.values():  # also after the command: `shiftlab measure ... --debug`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    return parser


def one_line(text: str) -> str:
    """``text`` on one line: line breaks and runs of spaces become single spaces."""
    return " ".join(text.split())


def error_message(err: Exception, command: str) -> str:
    """What ``shiftlab COMMAND: error:`` says about ``err``: its message for the errors the CLI
    raises on purpose (bad input, missing files), the exception's type as well for anything else."""
    if isinstance(err, RuntimeError) and command == "measure":
        return measure.explain_model_error(err)
    if isinstance(err, (ValueError, TypeError, OSError, ImportError)) and str(err):
        text = str(err)
    else:  # an unexpected error (a bug, or a library's): name it, and how to see where it came from
        text = f"{type(err).__name__}: {err} (rerun with --debug to see the traceback)"
    return one_line(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 2 bad usage or input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        hint = " (finished epochs are checkpointed: rerun with --resume to continue)" if args.command == "study" else ""
        print(f"shiftlab {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            traceback.print_exc()
            return 2
        print(f"shiftlab {args.command}: error: {error_message(err, args.command)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
