"""The Typer app and the options shared by several commands (declared once, as Annotated aliases).

Command modules (effconv/cli/<command>.py) register themselves on `app`; each command parses its
options, calls one library function and renders the result. No torch at import time: commands
import what they need inside their body, so `effconv --help` and ONNX-only commands stay fast.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from effconv import __version__

app = typer.Typer(
    name="effconv",
    help="Train, export and profile efficient CNNs: per-layer Mult-Adds, parameters and measured latency.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)



class LazyConsole:
    """A rich Console made on first use: rich costs ~50 ms to import, and a command whose output
    is plain text (effconv.tables on a pipe) or that fails early never needs it.
    emoji=False: text from models (file and node names) is printed as is, never ":code:" -> emoji."""

    def __init__(self, **options) -> None:
        self._options = {"emoji": False, **options}
        self._console = None

    @property
    def stream(self):
        """The file this console writes to (stdout or stderr), without importing rich."""
        if self._console is not None:
            return self._console.file
        return sys.stderr if self._options.get("stderr") else sys.stdout

    @property
    def real(self):
        """The rich Console itself (made now if need be)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def __enter__(self):  # `with console:` (special methods bypass __getattr__)
        return self.real.__enter__()

    def __exit__(self, *exc):
        return self.real.__exit__(*exc)


console = LazyConsole()
err_console = LazyConsole(stderr=True)

@contextlib.contextmanager
def stage(doing: str):
    """Name what the block does, for the one line that Ctrl-C or SIGTERM prints there
    ("interrupted while timing m.onnx on ort-cpu: ..."; effconv.cli.validate.interrupted)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        if getattr(exc, "effconv_stage", None) is None:
            exc.effconv_stage = doing
        raise


# Shared options -------------------------------------------------------------------------------
JsonOut = Annotated[
    Optional[Path], typer.Option("--json", help="Also write the result as JSON to this file.", dir_okay=False)
]
CsvOut = Annotated[
    Optional[Path], typer.Option("--csv", help="Also write the result as CSV to this file.", dir_okay=False)
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"effconv {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """effconv: know what a CNN costs before it ships.

    Exit codes: 0 done; 1 a check failed; 2 usage; 3 invalid or unsafe input;
    4 resource limit; 5 a runtime crashed; 130 interrupted.
    """
