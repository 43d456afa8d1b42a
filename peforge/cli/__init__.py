"""The ``peforge`` command: parses, validates, calls one library function, prints.

Each subcommand is a module here with ``add_arguments(parser)`` and ``run(args) -> int``.
A bad input ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
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


def main(argv: list[str] | None = None) -> int:
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
        print(f"peforge: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("peforge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `peforge ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
