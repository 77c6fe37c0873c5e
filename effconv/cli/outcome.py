"""Every way a command can end, as one line on stderr and the documented exit code.

The code follows the cause (ARCHITECTURE.md): EffconvError carries its own; a file-system error
by its errno (no space or quota -> 4; read-only, permission, missing path -> 2); MemoryError -> 4;
a number too large for the runtime -> 3; Ctrl-C or SIGTERM -> 130; click's usage errors -> 2; any
other exception (a native runtime's, or a bug) -> 5. With --debug the traceback is printed first
and the exit code stays the same.
"""

from __future__ import annotations

import errno
import signal
import sys

from effconv.errors import (EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_RESOURCE, EXIT_RUNTIME_CRASH, EXIT_USAGE,
                            EffconvError)

MAX_LINE = 600  # characters of one error line; longer messages (a runtime's dump) are cut
_OS_CODES = {
    errno.ENOSPC: (EXIT_RESOURCE, "no space left on the device"),
    errno.EDQUOT: (EXIT_RESOURCE, "disk quota exceeded"),
    errno.EFBIG: (EXIT_RESOURCE, "file too large for the file system"),
    errno.ENOMEM: (EXIT_RESOURCE, "out of memory"),
    errno.EROFS: (EXIT_USAGE, "read-only file system"),
    errno.EACCES: (EXIT_USAGE, "permission denied"),
    errno.EPERM: (EXIT_USAGE, "operation not permitted"),
    errno.ENOENT: (EXIT_USAGE, "no such file or folder"),
    errno.ENOTDIR: (EXIT_USAGE, "not a folder"),
    errno.EISDIR: (EXIT_USAGE, "is a folder"),
    errno.ENAMETOOLONG: (EXIT_USAGE, "file name too long"),
    errno.EEXIST: (EXIT_USAGE, "already exists"),
    errno.EXDEV: (EXIT_USAGE, "cannot move across file systems"),
    errno.EMFILE: (EXIT_RESOURCE, "too many open files"),
}


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
    if isinstance(exc, OSError) and exc.errno in _OS_CODES:
        code, why = _OS_CODES[exc.errno]
        where = f"{exc.filename}: " if exc.filename else ""
        return code, f"{where}{why}"
    if isinstance(exc, MemoryError):
        return EXIT_RESOURCE, "out of memory (MemoryError); use a smaller batch or input"
    if isinstance(exc, OverflowError):
        return EXIT_INVALID_INPUT, f"a number is too large to handle ({exc})"
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
