"""The ``peforge`` command: parses, validates, calls one library function, prints.

Each subcommand is a module here with ``add_arguments(parser)`` and ``run(args) -> int``.
A bad input ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# subcommand name -> module in this package
COMMANDS = {
    "blocks": "blocks",
    "export": "export",
    "verify": "verify",
    "workloads": "workloads",
    "workload": "workload",
    "characterize": "characterize",
    "evaluate": "evaluate",
    "sweep": "sweep",
    "report": "report",
    "export-design": "export_design",
    "verify-design": "verify_design",
    "serve": "serve",
}


class UsageError(Exception):
    """A user input that cannot be used; the message names it and what is allowed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + error
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="peforge", description="Hardware design-space exploration for LLM inference.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        command = sub.add_parser(name, help=module.__doc__.strip().splitlines()[0],
                                 description=module.__doc__.strip())
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def _os_error(error: OSError) -> str:
    """One line for a file-system error: the path(s), what went wrong."""
    where = " -> ".join(str(f) for f in (error.filename, error.filename2) if f is not None)
    what = error.strerror or str(error) or type(error).__name__
    return f"{where}: {what}" if where else what


def _save_traceback() -> str:
    """Write the current exception's traceback to a temporary file; returns its path."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="peforge-traceback-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        traceback.print_exc(file=f)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Every expected failure (a bad input, a file-system error, a storage or
    simulator failure, a resource limit) ends in one line on stderr and exit status 2; an interrupt
    in 130; anything unexpected in one line naming a file that holds its traceback (``--debug``
    prints it instead)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv  # anywhere on the line: print an internal error's traceback
    argv = [a for a in argv if a != "--debug"]
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        # KEY=VALUE block parameters may follow options: gather them wherever they stand.
        if extra and hasattr(args, "assignments") and all("=" in x and not x.startswith("-") for x in extra):
            args.assignments += extra
        elif extra:
            raise UsageError(f"unrecognized arguments: {' '.join(extra)}")
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        return args.run(args)
    except (UsageError, ValueError) as error:
        _say(f"error: {error}")
        return 2
    except OSError as error:
        if isinstance(error, BrokenPipeError):  # `peforge ... | head`: the reader left; not an error of ours
            sys.stderr.close()
            return 0
        _say(f"error: {_os_error(error)}")
        return 2
    except RuntimeError as error:  # a tool that failed (Yosys, a simulator build, a testbench)
        _say(f"error: {_first_line(error) or type(error).__name__}")
        return 2
    except MemoryError:
        _say("error: out of memory (the input is too large for this machine)")
        return 2
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except Exception as error:  # a bug: one line, the traceback kept
        if debug:
            raise
        _say(f"internal error: {type(error).__name__}: {_first_line(error)} (traceback in {_save_traceback()}; "
             f"--debug prints it)")
        return 1


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _say(text: str) -> None:
    print(f"peforge: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
