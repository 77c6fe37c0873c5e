"""The limits a sandbox child runs under (effconv.sandbox): plain values the parent, the child
and the CLI's options all read."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MEM_LIMIT_MB = 4096  # address space of the child; parsing a few-hundred-MB model fits
DEFAULT_TIMEOUT_S = 300.0  # wall clock; the CPU limit is set a little above it


@dataclass(frozen=True)
class Limits:
    mem_limit_mb: int | None = DEFAULT_MEM_LIMIT_MB  # None: no memory limit
    timeout_s: float | None = DEFAULT_TIMEOUT_S  # wall clock; None: no time limit
    cpu_s: float | None = None  # CPU seconds over all threads (RLIMIT_CPU); None: timeout_s
