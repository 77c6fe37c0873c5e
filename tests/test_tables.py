"""effconv.tables: plain text when redirected, rich on a terminal, EFFCONV_TABLES to choose."""

from __future__ import annotations

import io

import pytest

from effconv.tables import Line, Table, plain_output, render_plain, show, to_rich


def _table() -> Table:
    t = Table("costs", [("Type", "left"), ("Mult-Adds", "right")])
    t.add_row("Conv 1x1", "539,492,352")
    t.add_row("FC", "1,024,000")
    t.add_section()
    t.add_row("Total", "540,516,352")
    t.caption = "zero-cost: Relu x27"
    return t


def test_plain_columns_are_aligned_and_sections_are_rules():
    lines = render_plain(_table()).splitlines()
    assert lines == [
        "costs",
        "Type        Mult-Adds",
        "--------  -----------",
        "Conv 1x1  539,492,352",
        "FC          1,024,000",
        "--------  -----------",
        "Total     540,516,352",
        "zero-cost: Relu x27",
    ]


def test_row_width_must_match_the_columns():
    with pytest.raises(ValueError, match="3 cells for 2 columns"):
        _table().add_row("a", "b", "c")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_choice_follows_the_stream_and_the_environment(monkeypatch):
    monkeypatch.delenv("EFFCONV_TABLES", raising=False)
    assert plain_output(io.StringIO()) and not plain_output(_Tty())
    monkeypatch.setenv("EFFCONV_TABLES", "plain")
    assert plain_output(_Tty())
    monkeypatch.setenv("EFFCONV_TABLES", "rich")
    assert not plain_output(io.StringIO())


def test_show_plain_writes_text_and_lines():
    buf = io.StringIO()
    show([_table(), Line("Note: x", "cyan"), "done"], console=None, plain=True, stream=buf)
    text = buf.getvalue()
    assert text.startswith("costs\n") and "Note: x\n" in text and text.endswith("done\n")


def test_rich_table_has_the_same_cells_and_no_markup_parsing():
    from rich.console import Console

    t = _table()
    t.add_row("a[/b]", "1")  # would raise if parsed as rich markup
    console = Console(file=io.StringIO(), width=120, emoji=False)
    show([t, Line("Note: [red]x", "cyan")], console, plain=False)
    out = console.file.getvalue()
    for cell in ("Conv 1x1", "539,492,352", "a[/b]", "zero-cost: Relu x27", "Note: [red]x"):
        assert cell in out
    assert to_rich(t).row_count == 4  # the section is a rule on the row before it, not a row


@pytest.mark.parametrize("width", [50, 80, 120, 200])
def test_merged_layout_prints_what_rich_lays_out_itself(width):
    """Oracle: the same table with every column given to rich (merge=False), as plain text."""
    from rich.console import Console

    t = Table("per layer", [("Layer", "left"), ("Op", "left"), ("Output", "left"), ("Mult-Adds", "right"),
                            ("%", "right")])
    for i in range(30):
        t.add_row(f"/model/block{i}/conv{i % 3}/Conv_with_a_long_name", "Conv", f"1x{32 * (i + 1)}x14x14",
                  f"{1234567 * (i + 1):,}", f"{i * 1.5:.2f}")
    t.add_section()
    t.add_row("Total", "", "", "999,999,999", "100.00")
    t.caption = "the 30 costliest"
    outs = []
    for merge in (False, True):
        console = Console(file=io.StringIO(), width=width, color_system=None, emoji=False)
        console.print(to_rich(t, merge=merge))
        outs.append(console.file.getvalue())
    assert outs[0] == outs[1]
    assert "37,037,010" in outs[1]  # numbers are never cut, whatever the width


def test_a_cell_with_several_lines_spreads_its_row():
    t = Table("", [("experiment", "left"), ("runs", "left"), ("n", "right")])
    t.add_row("kernel-size", "3x3 = vgg19_3x3\n5x5 = vgg19_5x5", "2")
    t.add_section()
    t.add_row("optimizer", "adam", "1")
    assert render_plain(t).splitlines() == [
        "experiment   runs             n",
        "-----------  ---------------  -",
        "kernel-size  3x3 = vgg19_3x3  2",
        "             5x5 = vgg19_5x5",
        "-----------  ---------------  -",
        "optimizer    adam             1",
    ]
