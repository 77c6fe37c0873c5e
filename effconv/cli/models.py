"""`effconv models`: the model zoo as a table (or JSON), with parameter counts."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from effconv.cli.app import app, console


def zoo_rows() -> list[dict]:
    """One dict per spec in models/: name, family, input size, classes, parameters, description."""
    from effconv.specs import list_specs  # validating [arch] imports torch
    from effconv.zoo import count_parameters

    return [
        {
            "name": s.name, "family": s.family, "input_size": s.input_size, "in_channels": s.in_channels,
            "num_classes": s.num_classes, "parameters": n, "size_mb": round(n * 4 / 1e6, 2),
            "description": s.description,
        }
        for s in list_specs()
        for n in (count_parameters(s),)
    ]


@app.command("models")
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON to stdout.")] = False,
) -> None:
    """List the model zoo (models/*.toml) with input size, classes and trainable parameters.

    Parameters are counted by building each model on torch's meta device (no memory, no init):
    every trainable tensor, batchnorm scale and shift included, running statistics excluded; size
    is their fp32 bytes in MB (10^6). `effconv profile NAME` counts the exported file instead and
    explains the difference (folded batchnorm, shared constants, unused modules) in a note.

    Example: effconv models --json > zoo.json
    """
    rows = zoo_rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from effconv.tables import Table, show

    table = Table("effconv model zoo", [("name", "left"), ("family", "left"), ("input", "right"), ("classes", "right"),
                                        ("parameters", "right"), ("MB", "right"), ("description", "left")])
    for r in rows:
        size = f"{r['in_channels']}x{r['input_size']}x{r['input_size']}"
        table.add_row(r["name"], r["family"], size, str(r["num_classes"]), f"{r['parameters']:,}", f"{r['size_mb']:.2f}",
                      r["description"])
    show([table], console)
