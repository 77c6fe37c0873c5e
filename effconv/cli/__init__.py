"""effconv's command line. `main()` turns every error into one line and a documented exit code.

Nothing heavy is imported at module level: `main()` first lets effconv.sandbox.prestart fork the profile's
sandbox worker (so onnx is imported there while Typer is imported here), then loads the app.
"""

from __future__ import annotations

import importlib
import os
import sys

from effconv.sandbox import prestart

# One module per command (or command group); each registers itself on `app` when imported.
COMMAND_MODULES = ("models", "profile", "export", "train", "latency", "experiment", "deploy")
# The module holding each top-level command. Typer builds a click command for every registered
# command on each call, so `effconv profile x.onnx` imports effconv.cli.profile alone. A command
# not listed here (or --help, or no command) imports every module, so nothing can go missing.
COMMAND_HOME = {"profile": "profile", "cost": "profile", "latency": "latency", "backends": "latency",
                "device": "latency", "models": "models", "export": "export", "train": "train",
                "experiment": "experiment", "compare": "experiment", "deploy": "deploy"}


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
    """Run the CLI; exit with the documented code. Tracebacks only with --debug (anywhere on the
    line, before a lone "--") or EFFCONV_DEBUG=1; --debug never changes the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    head = args[: args.index("--")] if "--" in args else args
    debug = "--debug" in head or os.environ.get("EFFCONV_DEBUG") == "1"
    args = [a for a in head if a != "--debug"] + args[len(head):]
    prestart.prestart(args)
    from effconv.cli.app import app, err_console
    from effconv.cli.outcome import exit_code_of, on_sigterm

    previous = on_sigterm()
    try:
        register_commands(_modules_for(args))
        code = _invoke(app, args)
    except BaseException as exc:  # noqa: BLE001 - every outcome becomes one line and a documented code
        code = exit_code_of(exc, debug, err_console)
    finally:
        on_sigterm(previous)
    if code:
        sys.exit(code)


def _invoke(app, args: list[str]) -> int:
    """Build the click command tree, put the validation layer on every command, run it."""
    import typer.main

    from effconv.cli import validate

    command = typer.main.get_command(app)
    validate.install(command)
    rv = command.main(args=args, prog_name="effconv", standalone_mode=False)
    code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    if code == 130:  # Ctrl-C while click parsed (Typer turns it into a silent Exit(130))
        from effconv.cli.app import err_console

        err_console.print("effconv: error: interrupted", markup=False, highlight=False)
    return code


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
