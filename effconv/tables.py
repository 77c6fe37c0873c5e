"""Tables as data, printed as rich tables on a terminal and as plain aligned text otherwise.

Why two renderers: rich draws boxes, colours and wraps to the terminal, which is what a person at a
terminal wants; redirected to a file, a pipe or a log, plain columns separated by two spaces are
easier to grep and cut, and cost nothing to print (no rich import, ~1 ms for a 40-row table where
rich takes ~70 ms plus ~50 ms to import). `EFFCONV_TABLES=rich|plain` overrides the choice.

    t = Table("MobileNet: per layer type", [("Type", "left"), ("Mult-Adds", "right")])
    t.add_row("Conv 1x1", "539,492,352")
    show([t, Line("Note: ...", "cyan")], console)   # console: a rich Console, used only on a terminal
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class Table:
    title: str
    columns: Sequence[tuple[str, str]]  # (header, "left" | "right")
    rows: list[tuple[str, ...] | None] = field(default_factory=list)  # None: a section rule
    caption: str | None = None

    def add_row(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(tuple(cells))

    def add_section(self) -> None:
        self.rows.append(None)


@dataclass(frozen=True)
class Line:
    """One line of text; `style` (a rich style such as "yellow") applies on a terminal only."""

    text: str
    style: str | None = None


def plain_output(stream: TextIO | None = None) -> bool:
    """True unless `stream` (default stdout) is a terminal; EFFCONV_TABLES=rich|plain decides first."""
    choice = os.environ.get("EFFCONV_TABLES", "").strip().lower()
    if choice in ("plain", "rich"):
        return choice == "plain"
    stream = sys.stdout if stream is None else stream
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-like stream without isatty
        return True


def _width(cell: str) -> int:
    return max(len(line) for line in cell.split("\n"))


def render_plain(table: Table) -> str:
    """The title, a header, a dashed rule, the rows (a section is a rule), the caption. A cell
    with several lines spreads its row over as many lines."""
    heads = [h for h, _ in table.columns]
    cells = [r for r in table.rows if r is not None]
    widths = [max([len(h)] + [_width(r[i]) for r in cells]) for i, h in enumerate(heads)]

    def lines(values: Sequence[str]) -> list[str]:
        split = [v.split("\n") for v in values]
        out = []
        for k in range(max(len(c) for c in split)):
            parts = [(c[k] if k < len(c) else "").rjust(w) if j == "right" else (c[k] if k < len(c) else "").ljust(w)
                     for c, w, (_, j) in zip(split, widths, table.columns)]
            out.append("  ".join(parts).rstrip())
        return out

    rule = "  ".join("-" * w for w in widths)
    out = [table.title] if table.title else []
    out += [*lines(heads), rule]
    for r in table.rows:
        out += [rule] if r is None else lines(r)
    if table.caption:
        out.append(table.caption)
    return "\n".join(out) + "\n"


def to_rich(table: Table, *, merge: bool = True):
    """The same table as a rich Table (cells are plain Text: never parsed as markup).

    Layout: no vertical rules, so eight columns of numbers fit 80 columns. Numbers, types and shapes
    are never cut ("51,380,2…"); the first column (names) and long text columns fold instead.
    With `merge`, the fixed-width columns after the first are laid out here, two spaces apart as
    rich would, and given to rich as one column: the same output at a third of rich's layout time
    (~45 -> ~15 ms for a 28-row per-layer table), which is on `effconv profile`'s critical path."""
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    t = RichTable(title=Text(table.title) if table.title else None, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True, show_edge=False)
    cells = [r for r in table.rows if r is not None]
    widths = [max([len(h)] + [_width(r[i]) for r in cells]) for i, (h, _) in enumerate(table.columns)]
    folds = [i == 0 or (j == "left" and widths[i] > 24) for i, (_, j) in enumerate(table.columns)]
    multiline = any("\n" in c for r in cells for c in r)
    if merge and len(table.columns) > 2 and not any(folds[1:]) and not multiline:
        def joined(values):
            return "  ".join(v.rjust(widths[i]) if table.columns[i][1] == "right" else v.ljust(widths[i])
                             for i, v in enumerate(values) if i)

        columns = [(table.columns[0][0], "left"), (joined([h for h, _ in table.columns]), "left")]
        rows = [None if r is None else (r[0], joined(r)) for r in table.rows]
        widths, folds = [widths[0], len(columns[1][0])], [True, False]
    else:
        columns, rows = list(table.columns), table.rows
    for (head, justify), width, fold in zip(columns, widths, folds):
        if fold:
            t.add_column(head, justify=justify, overflow="fold", min_width=min(width, 12))
        else:
            t.add_column(head, justify=justify, no_wrap=True, min_width=width)
    for r in rows:
        if r is None:
            t.add_section()
        else:
            t.add_row(*(Text(c) for c in r))
    if table.caption:
        t.caption = table.caption
        t.caption_justify = "left"
    return t


def warm_up(console: Any, *, plain: bool | None = None) -> None:
    """Import rich, make the console and render a one-cell table to nowhere, when output goes to
    a terminal: called while a child process works, it takes rich's imports and first-render setup
    (~60 ms) off the critical path."""
    if console is None or (plain_output(_stream_of(console)) if plain is None else plain):
        return
    import io

    from rich.console import Console

    probe = Table("", [("a", "left"), ("b", "right")])
    probe.add_row("1", "2")
    real = getattr(console, "real", console)
    Console(file=io.StringIO(), width=real.width, color_system=real.color_system, emoji=False).print(to_rich(probe))


def _stream_of(console: Any) -> TextIO:
    """Where `console` writes, without building a lazy one (effconv.cli.app.LazyConsole.stream)."""
    if console is None:
        return sys.stdout
    stream = getattr(console, "stream", None)
    return stream if stream is not None else console.file


def show(items: Iterable[Table | Line | str], console: Any = None, *, plain: bool | None = None,
         stream: TextIO | None = None) -> None:
    """Print tables and lines: as plain text when `plain` (default: `plain_output()` of the
    console's stream), to `stream` (default: where the console writes, else stdout); otherwise
    through the rich `console`."""
    out = _stream_of(console) if stream is None else stream
    if plain is None:
        plain = plain_output(out)
    if plain or console is None:
        for item in items:
            text = render_plain(item) if isinstance(item, Table) else (item.text if isinstance(item, Line) else item)
            out.write(text if text.endswith("\n") else text + "\n")
            if isinstance(item, Table):
                out.write("\n")
        out.flush()
        return
    from rich.text import Text

    for item in items:
        if isinstance(item, Table):
            console.print(to_rich(item))
        else:
            line = item if isinstance(item, Line) else Line(item)
            console.print(Text(line.text, style=line.style or ""))
