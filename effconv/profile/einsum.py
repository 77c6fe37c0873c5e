"""Einsum equations: index sizes from the operand shapes, the output shape, and the Mult-Adds of
the contraction done pairwise, left to right (as a runtime without a path optimizer does).

One pairwise contraction of operands with index sets P and Q, keeping the indices still needed,
costs prod(size of every index in P | Q) multiply-adds: 'bhqd,bhkd->bhqk' is b*h*q*k*d, the batched
matrix product it is. Broadcast ("...") dimensions multiply every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class EinsumError(ValueError):
    """An equation that does not fit its operands."""


@dataclass(frozen=True)
class EinsumSpec:
    terms: tuple[str, ...]  # index letters of each operand, ellipsis removed
    output: str  # index letters of the output, ellipsis removed
    sizes: dict[str, int]
    ellipsis: tuple[int, ...]  # broadcast shape of the "..." dims

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (*self.ellipsis, *(self.sizes[c] for c in self.output))

    def pairwise_mult_adds(self) -> int:
        ell = math.prod(self.ellipsis)
        acc, total = set(self.terms[0]), 0
        for k in range(1, len(self.terms)):
            touched = acc | set(self.terms[k])
            total += ell * math.prod(self.sizes[c] for c in touched)
            later = set(self.output).union(*map(set, self.terms[k + 1:]))
            acc = touched & later
        return total


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    r = max(len(a), len(b))
    a, b = (1,) * (r - len(a)) + a, (1,) * (r - len(b)) + b
    out = []
    for p, q in zip(a, b):
        if p != q and 1 not in (p, q):
            raise EinsumError(f"'...' dims {a} and {b} do not broadcast")
        out.append(max(p, q))
    return tuple(out)


def parse_einsum(equation: str, shapes: list[tuple[int, ...]]) -> EinsumSpec:
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    raw = lhs.split(",")
    if len(raw) != len(shapes):
        raise EinsumError(f"equation {equation!r} names {len(raw)} operands, the node has {len(shapes)}")
    sizes: dict[str, int] = {}
    ellipsis: tuple[int, ...] = ()
    terms = []
    for term, shape in zip(raw, shapes):
        pre, dots, post = term.partition("...")
        n_ell = len(shape) - len(pre) - len(post)
        if n_ell < 0 or (not dots and n_ell):
            raise EinsumError(f"operand {term!r} does not match its rank {len(shape)}")
        if dots:
            ellipsis = _broadcast(ellipsis, tuple(shape[len(pre):len(pre) + n_ell]))
        dims = (*shape[:len(pre)], *shape[len(pre) + n_ell:])
        for c, d in zip(pre + post, dims):
            if sizes.get(c, 1) not in (1, d) and d != 1:
                raise EinsumError(f"index {c!r} is {sizes[c]} and {d}")
            sizes[c] = max(sizes.get(c, 1), d)
        terms.append(pre + post)
    if arrow:
        output = rhs.replace("...", "")
    else:  # implicit mode: the indices that appear once, in alphabetical order
        letters = "".join(terms)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if any(c not in sizes for c in output):
        raise EinsumError(f"output index not among the operands' in {equation!r}")
    return EinsumSpec(tuple(terms), output, sizes, ellipsis)
