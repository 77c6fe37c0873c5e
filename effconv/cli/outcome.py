"""Every way a command can end, as one line on stderr and the documented exit code.

The code follows the cause (ARCHITECTURE.md): EffconvError carries its own; a file-system error
by its errno (no space or quota -> 4; read-only, permission, missing path -> 2); MemoryError -> 4;
a number too large for the runtime -> 3; Ctrl-C or SIGTERM -> 130; click's usage errors -> 2; any
other exception (a native runtime's, or a bug) -> 5. With --debug the traceback is printed first
and the exit code stays the same.
"""

from __future__ import annotations

import signal
import sys

from effconv.errors import EXIT_INTERRUPTED, EXIT_RUNTIME_CRASH, EffconvError, from_exception

MAX_LINE = 600  # characters of one error line; longer messages (a runtime's dump) are cut


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every clean-up written for Ctrl-C (staging folders,
    the interrupted run's checkpoint, sandbox children) runs for it too."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated("terminated (SIGTERM)")


def on_sigterm(previous=None):
    """Install the SIGTERM -> Terminated handler (returns the old one); with `previous`, put it back."""
    try:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
            return None
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        return None


def one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 30] + " ... (--debug for all of it)"


def classify(exc: BaseException) -> tuple[int, str]:
    """(exit code, message) for an exception that reached the CLI's top level."""
    from typer import exceptions as te
    from typer._click import exceptions as ce

    if isinstance(exc, EffconvError):
        return exc.exit_code, str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    if isinstance(exc, te.Abort):
        return EXIT_INTERRUPTED, "aborted"
    if isinstance(exc, ce.ClickException):
        hint = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) is not None else ""
        return exc.exit_code, exc.format_message() + hint
    mapped = from_exception(exc)
    if mapped is not None:
        return mapped.exit_code, str(mapped)
    return EXIT_RUNTIME_CRASH, f"{type(exc).__name__}: {exc} (rerun with --debug for the traceback)"


def exit_code_of(exc: BaseException, debug: bool, console) -> int:
    """Print `exc` as one line (after its traceback with `debug`) and return its exit code."""
    from typer._click import exceptions as ce

    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, ce.NoArgsIsHelpError):  # `effconv` or a group alone: its help, as before
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
        return exc.exit_code
    if debug and not isinstance(exc, ce.ClickException):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    code, message = classify(exc)
    console.print(f"effconv: error: {one_line(message)}", markup=False, highlight=False, soft_wrap=True)
    return code
