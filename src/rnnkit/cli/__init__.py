"""The `rnnkit` command line: `rnnkit <task> <action> ...`.

Each task lives in its own module under `rnnkit.cli` and registers itself in `COMMANDS` with a function
`add_parser(subparsers)` that adds its sub-command and sets `func` on the parsed namespace. User errors
(`rnnkit.errors.UserError`, bad options, missing files) end as one line on stderr and exit status 2;
no traceback is shown for them.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

from ..errors import UserError

# task name -> module under rnnkit.cli that defines add_parser(subparsers). Imported lazily so that
# `rnnkit --help` does not import every task's dependencies.
COMMANDS: dict[str, str] = {"textgen": "textgen", "classify": "classify", "forecast": "forecast",
                            "diagnose": "diagnose", "memory": "memory",
                            "transcribe": "transcribe", "translate": "translate", "names": "names",
                            "export": "export", "import": "import_cmd",
                            "hopfield": "hopfield", "fixedpoints": "fixedpoints",
                            "sweep": "sweep"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as argparse does, but with the fix hinted
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rnnkit", description="Recurrent neural networks on NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module in COMMANDS.items():
        importlib.import_module(f"{__name__}.{module}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..train.outdir import release_out_dirs

    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM during training (see train.trainer.Terminated)
        signum = getattr(e, "signum", 2)
        print("rnnkit: interrupted" if signum == 2 else f"rnnkit: stopped by {signal.Signals(signum).name}",
              file=sys.stderr)
        return 128 + signum
    finally:
        release_out_dirs()
