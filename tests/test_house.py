"""The house rules of effconv/ that a reviewer would otherwise check by eye (issue 17):

- no module over 300 lines, unless it says why in a comment that starts `# size:` in its first 40
  lines (a table that reads best whole, say);
- no CLI command function whose body runs over 40 lines, unless a `# size:` comment inside it says
  why: a command parses its options, calls one api function and renders, so a long one is doing
  library work. The body is what follows the signature and the docstring: the signature is the
  options' declarations, one per option as Typer needs them, and says nothing about what the
  command does.

Lines are counted as `wc -l` does; a command is a function in effconv/cli/ decorated with
`@<something>.command(...)` or `@<something>.callback(...)`, read with `ast` (nothing is run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "effconv"
MODULE_LINES = 300
COMMAND_LINES = 40
REASON = "# size:"

MODULES = sorted(PACKAGE.rglob("*.py"))


def _has_reason(lines: list[str]) -> bool:
    return any(line.strip().startswith(REASON) for line in lines)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_size(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) > MODULE_LINES:
        assert _has_reason(lines[:40]), (
            f"{path.relative_to(ROOT)} has {len(lines)} lines (> {MODULE_LINES}) and no '{REASON}' reason comment"
        )


def _is_command(node: ast.FunctionDef) -> bool:
    for deco in node.decorator_list:
        call = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(call, ast.Attribute) and call.attr in ("command", "callback"):
            return True
    return False


def commands() -> list[tuple[Path, ast.FunctionDef]]:
    found = []
    for path in sorted((PACKAGE / "cli").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [(path, n) for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and _is_command(n)]
    return found


def test_the_cli_has_commands() -> None:
    """The walk below must see the commands, or the size test would pass by seeing none."""
    names = {node.name for _, node in commands()}
    assert len(names) >= 8, names


@pytest.mark.parametrize("item", commands(), ids=lambda item: f"{item[0].name}:{item[1].name}")
def test_command_size(item: tuple[Path, ast.FunctionDef]) -> None:
    path, node = item
    source = path.read_text(encoding="utf-8").splitlines()
    statements = node.body
    if len(statements) > 1 and isinstance(statements[0], ast.Expr) and isinstance(statements[0].value, ast.Constant):
        statements = statements[1:]  # the docstring
    body = source[statements[0].lineno - 1 : node.end_lineno]
    if len(body) > COMMAND_LINES:
        assert _has_reason(body), (
            f"{path.relative_to(ROOT)}:{node.lineno} command {node.name} has {len(body)} lines "
            f"(> {COMMAND_LINES}) and no '{REASON}' reason comment"
        )
