"""Memory in the profile's outputs: summary lines, the --memory tables, the Markdown section, the
PNG memory timeline, and the --ram-budget-mb / --flash-budget-mb checks. No onnx or rich here."""

from __future__ import annotations

from pathlib import Path

from effconv.errors import CheckFailedError
from effconv.io import save_png
from effconv.profile.model import ModelProfile
from effconv.tables import Line, Table

MB = 1e6  # decimal megabytes, as torchinfo and flash sizes are quoted


def mb(n: int) -> str:
    return f"{n / MB:.2f} MB"


def _weights(p: ModelProfile) -> int:
    return sum(p.totals.weight_bytes.values())


def memory_lines(p: ModelProfile) -> list[Line]:
    """One line for what the device stores, one for what it must hold while running."""
    m = p.memory
    if m is None:
        return []
    by = ", ".join(f"{k} {mb(v)}" for k, v in sorted(p.totals.weight_bytes.items(), key=lambda kv: -kv[1]))
    lines = [Line(f"Memory: parameters {mb(_weights(p))} ({by or 'none'}); activations: peak live {mb(m.peak_bytes)} "
                  f"at {m.peak_node or '-'} (stored order)" + (
                      f", {mb(m.best_peak_bytes)} in the best order found ({m.saving:.1%} less; --json has it)"
                      if m.best_peak_bytes < m.peak_bytes else ", no better order found")
                  + f"; {mb(m.activation_bytes)} of activations in all, inputs included")]
    if not m.complete:
        lines.append(Line(f"Memory LOWER BOUND: {len(m.unknown)} activation(s) have no static shape "
                          f"(e.g. {m.unknown[0]}); their bytes are not included", "bold red"))
    return lines


def memory_type_table(p: ModelProfile) -> Table:
    """Per layer type: parameter bytes and the activation bytes its layers write, with shares."""
    t = Table(f"{p.model}: memory per layer type",
              [("Type", "left"), ("Param bytes", "right"), ("%", "right"), ("Activation bytes", "right"),
               ("%", "right"), ("Largest", "right")])
    acc: dict[str, list[int]] = {}
    for lc in p.layers:
        row = acc.setdefault(lc.type, [0, 0, 0])
        row[0] += lc.param_bytes
        row[1] += lc.activation_bytes
        row[2] = max(row[2], lc.activation_bytes)
    wsum, asum = sum(r[0] for r in acc.values()), sum(r[1] for r in acc.values())
    for name, (w, a, big) in sorted(acc.items(), key=lambda kv: (-kv[1][0] - kv[1][1])):
        if w or a:
            t.add_row(name, f"{w:,}", f"{100 * w / wsum if wsum else 0:.2f}", f"{a:,}",
                      f"{100 * a / asum if asum else 0:.2f}", f"{big:,}")
    t.add_section()
    t.add_row("Total", f"{wsum:,}", "100.00", f"{asum:,}", "100.00", "")
    return t


def memory_layer_table(p: ModelProfile, top: int = 40) -> Table:
    """The layers live memory is highest at (stored order): live bytes, what each writes and stores."""
    m = p.memory
    t = Table(f"{p.model}: live activation memory per layer (stored order)",
              [("Layer", "left"), ("Type", "left"), ("Live bytes", "right"), ("Writes", "right"),
               ("Params", "right")])
    by_name = {lc.name: lc for lc in p.layers}
    rows = list(zip(m.timeline_nodes, m.timeline)) if m is not None else []
    shown = sorted(rows, key=lambda r: -r[1])[:top] if top else rows
    keep = {name for name, _ in shown}
    for name, live in rows:
        if name in keep:
            lc = by_name.get(name)
            t.add_row(name, lc.type if lc else "", f"{live:,}", f"{lc.activation_bytes if lc else 0:,}",
                      f"{lc.param_bytes if lc else 0:,}")
    if len(shown) < len(rows):
        t.caption = f"the {len(shown)} layers with the most live memory of {len(rows)}, in graph order"
    return t


def memory_markdown(p: ModelProfile) -> list[str]:
    m = p.memory
    if m is None:
        return []
    out = ["## Memory", "", "| What | Bytes | MB |", "|---|---:|---:|"]
    for k, v in sorted(p.totals.weight_bytes.items(), key=lambda kv: -kv[1]):
        out.append(f"| parameters, {k} | {v:,} | {v / MB:.2f} |")
    out += [f"| parameters, all | {_weights(p):,} | {_weights(p) / MB:.2f} |",
            f"| peak live activations, stored order (at `{m.peak_node}`) | {m.peak_bytes:,} | {m.peak_bytes / MB:.2f} |",
            f"| peak live activations, best order found (at `{m.best_peak_node}`) | {m.best_peak_bytes:,} | "
            f"{m.best_peak_bytes / MB:.2f} |",
            f"| activations written in all | {m.activation_bytes:,} | {m.activation_bytes / MB:.2f} |",
            f"| inputs / outputs | {m.input_bytes:,} / {m.output_bytes:,} | |", "",
            f"Live memory: a tensor is live from its writer to its last reader, a node's inputs and outputs together "
            f"(no in-place reuse); schedule search: {m.search}.", ""]
    if not m.complete:
        out += [f"**Memory LOWER BOUND: {len(m.unknown)} activation(s) have no static shape.**", ""]
    return out


def write_memory_plot(p: ModelProfile, target: str | Path) -> Path:
    """PNG memory timeline: live activation bytes over the node sequence (stored order), the peak
    marked, each node's bar coloured by its layer type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = p.memory
    if m is None or not m.timeline:
        from effconv.errors import UsageError

        raise UsageError("--memory-plot: the model has no runtime nodes to plot")
    types = {lc.name: lc.type for lc in p.layers}
    kinds = list(dict.fromkeys(types.get(n, "?") for n in m.timeline_nodes))
    cmap = plt.get_cmap("tab20")
    colour = {k: cmap(i % 20) for i, k in enumerate(kinds)}
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    xs = range(len(m.timeline))
    ys = [v / MB for v in m.timeline]
    ax.bar(xs, ys, width=1.0, color=[colour[types.get(n, "?")] for n in m.timeline_nodes], linewidth=0)
    peak_x = max(xs, key=lambda i: m.timeline[i])
    ax.annotate(f"peak {m.peak_bytes / MB:.2f} MB\n{m.peak_node}", xy=(peak_x, ys[peak_x]),
                xytext=(0.3, 0.85), textcoords="axes fraction", fontsize=8, arrowprops={"arrowstyle": "->"})
    if m.best_peak_bytes < m.peak_bytes:
        ax.axhline(m.best_peak_bytes / MB, linestyle="--", color="black", linewidth=1,
                   label=f"best order found: {m.best_peak_bytes / MB:.2f} MB")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[k]) for k in kinds[:12]]
    ax.legend(handles, kinds[:12], fontsize=7, ncol=2, loc="upper right", framealpha=0.8)
    ax.set_xlabel("node (stored order; constants excluded)")
    ax.set_ylabel("live activations (MB)")
    ax.set_title(f"{p.model}: live activation memory (batch {next(iter(p.input_shapes.values()), [1])[0]})")
    fig.tight_layout()
    return save_png(fig, target)


def check_memory_budgets(p: ModelProfile, ram_mb: float | None, flash_mb: float | None) -> None:
    """Exit 1 (CheckFailedError) when the peak live activations or the parameters exceed a budget."""
    over = []
    if ram_mb is not None and p.memory is not None and not p.memory.complete:
        over.append("--ram-budget-mb cannot be checked: the peak live memory is a lower bound "
                    f"({len(p.memory.unknown)} activation(s) without a static shape)")
    elif ram_mb is not None and p.memory is not None and p.memory.best_peak_bytes > ram_mb * MB:
        over.append(f"peak live activations {mb(p.memory.best_peak_bytes)} (best order found) > --ram-budget-mb {ram_mb:g}")
    if flash_mb is not None and _weights(p) > flash_mb * MB:
        over.append(f"parameters {mb(_weights(p))} > --flash-budget-mb {flash_mb:g}")
    if over:
        raise CheckFailedError("; ".join(over))
