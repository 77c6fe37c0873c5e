"""What the device must hold while the model runs: activation bytes per layer and the peak of live
activations, in the stored node order and in the best order a schedule search finds.

Conventions (docs/profile-json-schema.md, "Memory"): an activation is a tensor that depends on a
graph input; tensors computed from constants only (a weight, an Identity of one, a folded shape)
are weights, not activations. A tensor is live from the node that writes it (graph inputs: from the
start) to the last node that reads it (graph outputs: to the end); a node's inputs and outputs are
live together while it runs (no in-place reuse). The peak is the largest sum of live bytes over the
node sequence. Real runtimes differ (arenas round up, kernels need workspace, some ops run in
place): this is the lower bound every schedule of this graph needs, not a measurement.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import onnx

from effconv.profile.consts import item_bits
from effconv.profile.graph import Graph
from effconv.profile.model import MemoryProfile

SEARCH_SECONDS = 0.5  # cap on the schedule search; the result says when it stopped early


def _subgraph_reads(node: onnx.NodeProto) -> set[str]:
    """Outer tensors a node's subgraphs read by name (they stay live until the node runs)."""
    out: set[str] = set()
    for a in node.attribute:
        for sub in [a.g] if a.HasField("g") else list(a.graphs):
            made = {o for n in sub.node for o in n.output} | {i.name for i in sub.input}
            made |= {t.name for t in sub.initializer}
            for n in sub.node:
                out |= {i for i in n.input if i and i not in made}
                out |= _subgraph_reads(n) - made
    return out


class Lifetimes:
    """Activation tensors of a graph: their bytes, writer and readers, over the runtime nodes."""

    def __init__(self, g: Graph):
        self.g = g
        consts, folded = g.consts, g.folded
        self.nodes = [n for n in g.nodes if not g.is_static(n)]
        self.names = [n.name or f"{n.op_type}_{i}" for i, n in enumerate(self.nodes)]
        self.bytes: dict[str, int] = {}
        self.unknown: list[str] = []
        self.reads: list[list[str]] = []
        self.writes: list[list[str]] = []
        for name in g.inputs:
            self._size(name)
        for n in self.nodes:
            ins = [i for i in dict.fromkeys((*n.input, *sorted(_subgraph_reads(n)))) if i and i not in consts
                   and i not in folded]
            outs = [o for o in n.output if o and o not in consts and o not in folded]
            for t in (*ins, *outs):
                self._size(t)
            self.reads.append(ins)
            self.writes.append(outs)
        self.outputs = {o for o in g.outputs if o in self.bytes}
        self.inputs = [i for i in g.inputs if i in self.bytes]

    def _size(self, name: str) -> None:
        if name in self.bytes:
            return
        shape = self.g.shapes.get(name)
        bits = item_bits(self.g.types.get(name, 1))
        if shape is None or not all(isinstance(d, int) and d >= 0 for d in shape) or not bits:
            self.unknown.append(name)
            self.bytes[name] = 0
        else:
            self.bytes[name] = (math.prod(shape) * bits + 7) // 8

    def peak(self, order: Sequence[int], series: list[int] | None = None) -> tuple[int, int]:
        """(peak live bytes, position in `order` where it occurs) for a schedule of node indices;
        `series`, when given, receives the live bytes while each node runs."""
        last: dict[str, int] = {}
        for pos, i in enumerate(order):
            for t in self.reads[i]:
                last[t] = pos
        end = len(order)
        for t in self.outputs:
            last[t] = end
        live = sum(self.bytes[t] for t in self.inputs)
        free_at: dict[int, int] = {}
        for t in self.inputs:
            free_at[last.get(t, -1)] = free_at.get(last.get(t, -1), 0) + self.bytes[t]
        live -= free_at.pop(-1, 0)  # an input nobody reads is freed at once
        best, where = live, 0
        for pos, i in enumerate(order):
            for t in self.writes[i]:
                live += self.bytes[t]
                e = last.get(t, pos)
                free_at[e] = free_at.get(e, 0) + self.bytes[t]
            if series is not None:
                series.append(live)
            if live > best:
                best, where = live, pos
            live -= free_at.pop(pos, 0)
        return best, where


def schedule(lt: Lifetimes, deadline: float, depth_first: bool) -> tuple[list[int] | None, bool]:
    """A topological order that, at each step, runs the ready node adding the fewest live bytes
    (its outputs minus the inputs it is the last reader of); `depth_first` first prefers a node
    reading what the previous step wrote (finish a branch before starting the next). Ties keep the
    stored order. Returns (order, or None when the deadline passed; stopped_early)."""
    n = len(lt.nodes)
    writer = {t: i for i, outs in enumerate(lt.writes) for t in outs}
    users: list[list[int]] = [[] for _ in range(n)]
    waiting = [0] * n
    left: dict[str, int] = {}
    for i, ins in enumerate(lt.reads):
        deps = {writer[t] for t in ins if t in writer and writer[t] != i}
        waiting[i] = len(deps)
        for j in deps:
            users[j].append(i)
        for t in ins:
            left[t] = left.get(t, 0) + 1
    ready = {i for i in range(n) if not waiting[i]}
    order: list[int] = []
    fresh: set[str] = set()
    while ready:
        if len(order) % 256 == 0 and time.perf_counter() > deadline:
            return None, True
        best = min(ready, key=lambda i: (depth_first and not fresh.intersection(lt.reads[i]), _delta(lt, i, left), i))
        ready.discard(best)
        order.append(best)
        fresh = set(lt.writes[best])
        for t in lt.reads[best]:
            left[t] -= 1
        for j in users[best]:
            waiting[j] -= 1
            if not waiting[j]:
                ready.add(j)
    return (order, False) if len(order) == n else (None, False)


def _delta(lt: Lifetimes, i: int, left: dict[str, int]) -> int:
    grow = sum(lt.bytes[t] for t in lt.writes[i])
    free = sum(lt.bytes[t] for t in lt.reads[i] if left.get(t, 0) == 1 and t not in lt.outputs)
    return grow - free


def memory_profile(g: Graph, seconds: float = SEARCH_SECONDS) -> MemoryProfile:
    lt = Lifetimes(g)
    stored, timeline = list(range(len(lt.nodes))), []
    peak, where = lt.peak(stored, timeline)
    deadline, early = time.perf_counter() + seconds, False
    best_order, best_peak, best_where, how = stored, peak, where, "stored order (no better order found)"
    for depth_first, label in ((False, "greedy: fewest new live bytes first"),
                               (True, "greedy, depth first: finish a branch, then fewest new live bytes")):
        order, stopped = schedule(lt, deadline, depth_first) if not early else (None, True)
        early |= stopped
        if order is not None:
            p, w = lt.peak(order)
            if p < best_peak:
                best_order, best_peak, best_where, how = order, p, w, label
    if early:
        how += f"; search stopped at its {seconds:g} s cap"
    names = lt.names
    return MemoryProfile(
        activation_bytes=sum(lt.bytes.values()), peak_bytes=peak, peak_node=names[stored[where]] if names else "",
        best_peak_bytes=best_peak, best_peak_node=names[best_order[best_where]] if names else "",
        best_order=tuple(names[i] for i in best_order), search=how,
        input_bytes=sum(lt.bytes[t] for t in lt.inputs), output_bytes=sum(lt.bytes[t] for t in lt.outputs),
        complete=not lt.unknown, unknown=tuple(lt.unknown[:50]),
        timeline=tuple(timeline), timeline_nodes=tuple(names),
    )


def activation_bytes(g: Graph, node: onnx.NodeProto) -> int:
    """Bytes of the activations a node writes (0 for a node computed from constants)."""
    total = 0
    for o in node.output:
        if not o or o in g.consts or o in g.folded:
            continue
        shape, bits = g.shapes.get(o), item_bits(g.types.get(o, 1))
        if shape is not None and all(isinstance(d, int) and d >= 0 for d in shape):
            total += (math.prod(shape) * bits + 7) // 8
    return total
