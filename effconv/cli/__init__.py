"""effconv's command line. `main()` turns every error into one line and a documented exit code."""

from __future__ import annotations

import importlib
import os
import sys

from effconv.cli.app import app, err_console
from effconv.errors import EXIT_INTERRUPTED, EXIT_RUNTIME_CRASH, EffconvError

# One module per command (or command group); each registers itself on `app` when imported.
COMMAND_MODULES = ("models", "profile", "export", "train", "latency", "experiment")


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"effconv.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"effconv.cli.{name}":
                raise


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exit with the documented code. Tracebacks only with --debug or EFFCONV_DEBUG=1."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("EFFCONV_DEBUG") == "1"
    try:
        # Typer handles usage errors itself (exit 2); everything raised by a command lands here.
        app(args=args, prog_name="effconv")
    except KeyboardInterrupt:
        err_console.print("effconv: interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except EffconvError as exc:
        if debug:
            raise
        err_console.print(f"effconv: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a crash inside a native library or a bug: one line, exit 5
        if debug:
            raise
        err_console.print(
            f"effconv: error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(EXIT_RUNTIME_CRASH)
