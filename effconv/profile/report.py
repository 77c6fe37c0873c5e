"""Render a ModelProfile: tables for the terminal (effconv.tables: rich on a terminal, plain
aligned text when redirected); JSON, CSV, Markdown and a PNG bar chart for files (every file
written atomically). Each renderer is a separate function so that other sections (measured
latency) can be printed next to them. No rich and no onnx import here."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from effconv.io import save_png, write_text
from effconv.profile.memory_report import (
    memory_layer_table, memory_lines, memory_markdown, memory_type_table, write_memory_plot,
)
from effconv.profile.model import ModelProfile
from effconv.tables import Line, Table, show

LAYER_FIELDS = ("name", "op_type", "type", "output_shape", "mult_adds", "weights", "biases",
                "norm_params", "other_params", "mult_adds_pct", "cumulative_pct", "param_bytes", "activation_bytes")
LATENCY_FIELDS = ("latency_ms", "latency_group")


def _shape(shape) -> str:
    return "x".join("?" if d is None else str(d) for d in shape) if shape is not None else "?"


def _counted(p: ModelProfile):
    return [t for t in p.by_type if t.mult_adds or t.weights]


def _zero_types(p: ModelProfile) -> str:
    zero = [f"{t.type} x{t.layers}" for t in p.by_type if not (t.mult_adds or t.weights)]
    return ", ".join(zero)


def _columns(names: tuple[str, ...], right: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(c, "right" if c in right else "left") for c in names]


def _total(p: ModelProfile) -> str:
    return f"{p.totals.mult_adds:,}" if p.complete else f">= {p.totals.mult_adds:,}"


def type_table(p: ModelProfile) -> Table:
    """The paper's per-type table: type, Mult-Adds, %, parameters (weights), %, layers. The Total
    row's layer count is the sum of the rows shown; zero-cost types are named in the caption."""
    t = Table(f"{p.model}: resources per layer type ({p.convention} convention)",
              _columns(("Type", "Mult-Adds", "%", "Weights", "%", "Layers"), ("Mult-Adds", "%", "Weights", "Layers")))
    rows = _counted(p)
    for r in rows:
        t.add_row(r.type, f"{r.mult_adds:,}", f"{r.mult_adds_pct:.2f}", f"{r.weights:,}", f"{r.weights_pct:.2f}",
                  str(r.layers))
    t.add_section()
    t.add_row("Total" if p.complete else "Total (lower bound)", _total(p), "100.00", f"{p.totals.weights:,}",
              "100.00", str(sum(r.layers for r in rows)))
    zero = _zero_types(p)
    if zero:
        t.caption = f"zero-cost in this convention: {zero}"
    return t


def _shown(p: ModelProfile, all_layers: bool, top: int) -> set[int]:
    """Indices of the layers to print: counted (or all) ones, capped at the `top` costliest."""
    idx = [i for i, lc in enumerate(p.layers) if all_layers or lc.mult_adds or lc.weights]
    if top and len(idx) > top:  # rich renders ~1 ms per row: thousands of rows would take seconds
        idx = sorted(idx, key=lambda i: (-p.layers[i].mult_adds, -p.layers[i].weights))[:top]
    return set(idx)


def layer_table(p: ModelProfile, all_layers: bool = False, top: int = 0) -> Table:
    """Per layer: name, op, type, output shape, Mult-Adds, weights, %, cumulative %. In graph order;
    with `top` > 0 and more layers than that, the `top` costliest, costliest first, the cumulative %
    running over the rows shown (how much of the model the first k rows hold)."""
    t = Table(f"{p.model}: per layer", _columns(("Layer", "Op", "Type", "Output", "Mult-Adds", "Weights", "%", "Cum. %"),
                                                ("Mult-Adds", "Weights", "%", "Cum. %")))
    total, run = p.totals.mult_adds, 0
    eligible = [i for i, lc in enumerate(p.layers) if all_layers or lc.mult_adds or lc.weights]
    shown = eligible
    if top and len(eligible) > top:  # rich renders ~1 ms per row: thousands of rows would take seconds
        shown = sorted(eligible, key=lambda i: (-p.layers[i].mult_adds, -p.layers[i].weights))[:top]
    for i in shown:
        lc = p.layers[i]
        run += lc.mult_adds
        pct = 100 * lc.mult_adds / total if total else 0.0
        cum = 100 * run / total if total else 0.0
        t.add_row(lc.name, lc.op_type, lc.type, _shape(lc.output_shape), f"{lc.mult_adds:,}",
                  f"{lc.weights:,}", f"{pct:.2f}", f"{cum:.2f}")
    if len(shown) < len(eligible):
        t.caption = (f"the {len(shown)} costliest of {len(eligible)} layers, costliest first; every layer is in "
                     "--json/--csv/--markdown (--top 0 prints all, in graph order)")
    return t


def summary(p: ModelProfile) -> list[Line]:
    """Totals, convention, inputs, unsupported ops and notes, one line each."""
    tot = p.totals
    shapes = ", ".join(f"{k}={_shape(v)}" for k, v in p.input_shapes.items())
    lines = [
        Line(f"Model {p.model}  inputs {shapes}  convention {p.convention} (one fused multiply-add = 1)"),
        Line(f"Mult-Adds {_total(p)}  weights {tot.weights:,}  biases {tot.biases:,}  "
             f"normalization {tot.norm_params:,}  other {tot.other_params:,}  nodes {tot.nodes}"),
    ]
    bound = p.lower_bound_line()
    if bound:
        lines.append(Line(bound, "bold red"))
    lines += memory_lines(p)
    if p.unsupported:
        listed = ", ".join(f"{k} x{v}" for k, v in p.unsupported.items())
        lines.append(Line(f"Not counted (unsupported): {listed}", "yellow"))
    lines += [Line(f"Note: {n}", "cyan") for n in p.notes]
    return lines


def render_profile(
    console, p: ModelProfile, *, layers: bool = True, all_layers: bool = False, top: int = 40,
    plain: bool | None = None, memory: bool = False,
) -> None:
    """The static profile section of `effconv profile`: through the rich `console` on a terminal,
    as plain text on stdout otherwise (see effconv.tables.show). `memory`: the memory tables too."""
    items = ([layer_table(p, all_layers, top)] if layers else []) + [type_table(p)]
    if memory and p.memory is not None:
        items += ([memory_layer_table(p, top)] if layers else []) + [memory_type_table(p)]
    items += summary(p)
    show(items, console, plain=plain)


def to_json(p: ModelProfile, latency: dict | None = None) -> str:
    """The profile's JSON; with `latency` (a LatencyReport.to_dict()) under the key "latency"."""
    doc = p.to_dict()
    if latency is not None:
        doc["latency"] = latency
    return json.dumps(doc, indent=2, default=str) + "\n"


def _latency_by_node(latency: dict | None) -> tuple[dict[str, float], dict[str, str]]:
    """Per-layer latency -> (ms per group-heading node, heading node of every node covered).
    Rows the runtime inserted itself (no ONNX node) stay in the JSON only."""
    ms, head = {}, {}
    per_layer = (latency or {}).get("per_layer") or {}
    for row in per_layer.get("layers", []):
        if row["nodes"]:
            ms[row["name"]] = ms.get(row["name"], 0.0) + row["ms"]
            head.update({n: row["name"] for n in row["nodes"]})
    return ms, head


def to_csv(p: ModelProfile, latency: dict | None = None) -> str:
    """One row per layer (every node), columns LAYER_FIELDS; with `latency`, two more columns:
    latency_ms (ms per inference, on the node heading each timed group) and latency_group (that
    heading node, on every node the group covers)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LAYER_FIELDS + (LATENCY_FIELDS if latency is not None else ()))
    ms, head = _latency_by_node(latency)
    for row in p.to_dict()["layers"]:
        cells = [_shape(row[f]) if f == "output_shape" else row[f] for f in LAYER_FIELDS]
        if latency is not None:
            cells += [f"{ms[row['name']]:.6f}" if row["name"] in ms else "", head.get(row["name"], "")]
        w.writerow(cells)
    return buf.getvalue()


def to_markdown(p: ModelProfile, latency: dict | None = None) -> str:
    """Totals, the per-type table (paper form), notes, the measured latency (when given), and the
    per-layer table of counted layers."""
    tot = p.totals
    shapes = ", ".join(f"`{k}` {_shape(v)}" for k, v in p.input_shapes.items())
    out = [f"# Profile of {p.model}", "",
           f"Inputs: {shapes}. Convention: `{p.convention}` (one fused multiply-add counts 1).", "",
           f"Mult-Adds: **{_total(p)}**; weights: **{tot.weights:,}** (biases {tot.biases:,}, "
           f"normalization {tot.norm_params:,}, other {tot.other_params:,}); nodes: {tot.nodes}.", "",
           *([f"**{p.lower_bound_line()}**", ""] if not p.complete else []),

           "| Type | Mult-Adds | % | Weights | % |", "|---|---:|---:|---:|---:|"]
    out += [f"| {r.type} | {r.mult_adds:,} | {r.mult_adds_pct:.2f} | {r.weights:,} | {r.weights_pct:.2f} |"
            for r in _counted(p)]
    if _zero_types(p):
        out += ["", f"Zero-cost in this convention: {_zero_types(p)}."]
    if p.unsupported:
        out += ["", "Not counted (unsupported): " + ", ".join(f"{k} x{v}" for k, v in p.unsupported.items())]
    out += [""] + [f"> Note: {n}" for n in p.notes] + ([""] if p.notes else [])
    out += memory_markdown(p)
    out += latency_markdown(latency) if latency is not None else []
    out += ["## Per layer", "", "| Layer | Op | Type | Output | Mult-Adds | Weights | % | Cum. % |",
            "|---|---|---|---|---:|---:|---:|---:|"]
    for row in p.to_dict()["layers"]:
        if row["mult_adds"] or row["weights"]:
            out.append(f"| {row['name']} | {row['op_type']} | {row['type']} | {_shape(row['output_shape'])} | "
                       f"{row['mult_adds']:,} | {row['weights']:,} | {row['mult_adds_pct']:.2f} | "
                       f"{row['cumulative_pct']:.2f} |")
    return "\n".join(out) + "\n"


def write_plot(p: ModelProfile, target: str | Path) -> Path:
    """PNG bar chart of the Mult-Adds and weight shares per layer type (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _counted(p)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows) + 2), 4), dpi=100)
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r.mult_adds_pct for r in rows], width=0.4, label="Mult-Adds %")
    ax.bar([x + 0.2 for x in xs], [r.weights_pct for r in rows], width=0.4, label="Weights %")
    ax.set_xticks(list(xs), [r.type for r in rows], rotation=30, ha="right")
    ax.set_ylabel("share of the model (%)")
    ax.set_title(f"{p.model} ({p.convention} convention)")
    ax.legend()
    fig.tight_layout()
    return save_png(fig, target)


def latency_markdown(lat: dict) -> list[str]:
    """The `latency` JSON section as Markdown lines: statistics, per-type table, per-layer method."""
    s, env = lat["statistics"], lat["environment"]
    out = ["## Measured latency", "",
           f"{lat['backend']}, {lat['precision']}, batch {lat['batch']}, {s['iterations']} iterations "
           f"(timer: {lat['timer']}); device: {env.get('device', env.get('host_cpu'))}; "
           f"threads: {env.get('intra_op_threads', '-')}; copies included: {env.get('include_copies')}.", "",
           "| min | median | mean | p90 | p95 | p99 | CV | items/s |", "|---:|---:|---:|---:|---:|---:|---:|---:|",
           "| " + " | ".join(f"{s[k]:.3f}" for k in ("min_ms", "median_ms", "mean_ms", "p90_ms", "p95_ms", "p99_ms"))
           + f" | {s['cv']:.1%} | {s['throughput']:.1f} |", ""]
    pl = lat.get("per_layer")
    if pl:
        out += [f"Per layer type ({pl['method']}: {pl['measures']}); sum {pl['sum_ms']:.3f} ms = "
                f"{pl['sum_ratio']:.2f} x the end-to-end median.", "",
                "| Type | Layers | ms | % time | % Mult-Adds | GMAC/s | FLOP/B | Bound | % roofline |",
                "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
        out += [f"| {t['type']} | {t['layers']} | {t['ms']:.3f} | {t['pct']:.1f} | {_opt(t['mult_adds_pct'], '.2f')} | "
                f"{_opt(t['gmacs'], '.1f')} | {_opt(t['intensity'], '.1f')} | {t['bound'] or '-'} | "
                f"{_opt(t['pct_of_roofline'], '.1f')} |" for t in lat["by_type"]]
        out += (["", f"> Gap: {pl['gap_explanation']}"] if pl.get("gap_explanation") else [])
    notes = [*(pl or {}).get("notes", []), *lat.get("notes", [])]
    return out + [""] + [f"> Note: {n}" for n in notes] + ([""] if notes else [])


def _opt(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def write_reports(p: ModelProfile, *, json_path=None, csv_path=None, markdown_path=None, plot_path=None,
                  latency: dict | None = None, memory_plot_path=None) -> list[Path]:
    """Write each requested file atomically; return the paths written. `latency` (a
    LatencyReport.to_dict()) adds the measured section to the JSON, CSV and Markdown."""
    written = []
    for target, render in ((json_path, to_json), (csv_path, to_csv), (markdown_path, to_markdown)):
        if target is not None:
            written.append(write_text(target, render(p, latency)))
    if plot_path is not None:
        written.append(write_plot(p, plot_path))
    if memory_plot_path is not None:
        written.append(write_memory_plot(p, memory_plot_path))
    return written


def crosscheck_table(c) -> Table:
    """fvcore (on the PyTorch module) against the ONNX count, one row per fvcore category."""
    verdict = "agree" if c.ok else "DISAGREE"
    t = Table(f"{c.model}: ONNX against fvcore ({verdict}; one fused multiply-add = 1)",
              _columns(("Category", "fvcore", "ONNX", "Why"), ("fvcore", "ONNX")))
    for r in c.rows:
        t.add_row(r.category, f"{r.fvcore:,}", f"{r.onnx:,}", r.reason)
    t.add_section()
    t.add_row("matched total", f"{c.fvcore_matched:,}", f"{c.onnx_mult_adds:,}", f"fvcore total {c.fvcore_total:,}")
    if c.fvcore_skipped:
        skipped = ", ".join(f"{k} x{v}" for k, v in sorted(c.fvcore_skipped.items()))
        t.caption = f"fvcore has no counter for (counts 0): {skipped}"
    return t
