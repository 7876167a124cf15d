"""Entry point of the ``shiftlab`` command: sub-commands ``measure``, ``study`` and ``report``.

Every error ends the command with one line, ``shiftlab COMMAND: error: ...``, and exit code 2;
``--debug`` prints the Python traceback instead (exit code 2 as well). Under torchrun
(:mod:`shiftlab.cli.torchrun`) the line names the rank, ``shiftlab COMMAND: error: rank N: ...``,
and only the rank that failed prints it; the others stop with exit code 2, and those that lost
the failed rank in an exchange (it died, or it hung past the timeout) say so in a line
``shiftlab COMMAND: rank N: stopped: ...``.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from contextlib import nullcontext

from shiftlab import __version__
from shiftlab.cli import measure, report, study
from shiftlab.cli.signals import Terminated, sigterm_raises
from shiftlab.cli.torchrun import SPREAD, Launch, launch_from_env, process_group, quiet, rank_device
from shiftlab.measure.distributed import PeerFailure

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


def _run(args: argparse.Namespace, launch: Launch | None) -> int:
    """Run the command: in this process alone, or as one rank of a torchrun launch."""
    if launch is None:
        return int(args.run(args) or 0)
    if args.command not in SPREAD:  # nothing to spread: rank 0 runs it
        return int(args.run(args) or 0) if launch.rank == 0 else 0
    args.device = rank_device(args.device, launch)
    if launch.rank != 0 and getattr(args, "json_path", None):
        args.json_path = None  # rank 0 writes the results
    with process_group(launch, args.device, command=f"shiftlab {args.command}"), (nullcontext() if launch.rank == 0 else quiet()):
        return int(args.run(args) or 0)


#: What an interrupted command keeps, and how to go on (``report`` only with ``--explorer``).
RESUME_HINTS = {"study": " (finished epochs are checkpointed: rerun with --resume to continue)",
                "report": " (the explorer data of the runs finished so far is saved: rerun the command to compute the rest)"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 2 bad usage or input, 130 interrupted by
    Ctrl-C, 143 stopped by SIGTERM: both unwind the same way, :mod:`shiftlab.cli.signals`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    rank = ""
    try:
        launch = launch_from_env()
        rank = "" if launch is None else f"rank {launch.rank}: "
        with sigterm_raises():
            return _run(args, launch)
    except KeyboardInterrupt as err:
        hint = RESUME_HINTS.get(args.command, "") if args.command != "report" or getattr(args, "explorer", None) else ""
        what = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        print(f"shiftlab {args.command}: {rank}{what}{hint}", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    except Exception as err:
        if args.debug:
            traceback.print_exc()
            return 2
        if isinstance(err, PeerFailure):  # another rank failed: it reports its own error
            if err.__cause__ is not None:  # ... unless it died (or hung) in an exchange
                print(f"shiftlab {args.command}: {rank}stopped: {one_line(str(err))}", file=sys.stderr)
            return 2
        print(f"shiftlab {args.command}: error: {rank}{error_message(err, args.command)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
