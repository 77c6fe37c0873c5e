"""effconv's command line. `main()` turns every error into one line and a documented exit code.

Nothing heavy is imported at module level: `main()` first lets effconv.prestart fork the profile's
sandbox worker (so onnx is imported there while Typer is imported here), then loads the app.
"""

from __future__ import annotations

import importlib
import os
import sys

from effconv import prestart
from effconv.errors import EXIT_INTERRUPTED, EXIT_RUNTIME_CRASH, EffconvError

# One module per command (or command group); each registers itself on `app` when imported.
COMMAND_MODULES = ("models", "profile", "export", "train", "latency", "experiment")
# The module holding each top-level command. Typer builds a click command for every registered
# command on each call, so `effconv profile x.onnx` imports effconv.cli.profile alone. A command
# not listed here (or --help, or no command) imports every module, so nothing can go missing.
COMMAND_HOME = {"profile": "profile", "cost": "profile", "latency": "latency", "backends": "latency",
                "device": "latency", "models": "models", "export": "export", "train": "train",
                "experiment": "experiment", "compare": "experiment"}


def register_commands(names: tuple[str, ...] = COMMAND_MODULES) -> None:
    """Import the command modules `names`; each registers its commands on `app`."""
    for name in names:
        importlib.import_module(f"effconv.cli.{name}")


def _modules_for(args: list[str]) -> tuple[str, ...]:
    """The command modules that `effconv ARGS` needs (root options take no values)."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command in COMMAND_HOME and not any(a in ("-h", "--help") for a in args[: args.index(command)]):
        return (COMMAND_HOME[command],)
    return COMMAND_MODULES


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exit with the documented code. Tracebacks only with --debug or EFFCONV_DEBUG=1."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("EFFCONV_DEBUG") == "1"
    prestart.prestart(args)
    from effconv.cli.app import app, err_console

    try:
        register_commands(_modules_for(args))
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


def run() -> None:
    """The console script and `python -m effconv`: `main()`, then leave without the interpreter's
    teardown (freeing Typer, rich and the rest: ~20 ms of a ~0.4 s `effconv profile`). Exit
    handlers still run (multiprocessing's child clean-up, the prestarted worker's), and stdout and
    stderr are flushed; every file effconv writes is closed before its command returns."""
    import atexit

    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (effconv profile | head): nothing left to say
            pass
    os._exit(code)
