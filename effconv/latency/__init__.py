"""Measured latency: one timing loop for every backend, per-layer latency, roofline.

`BACKENDS` (declared in effconv.latency.backends) is a plain dict keyed by the names users type
(`--backend ort-cpu`). Nothing is imported here until a name is asked for: the CLI reads the
backend descriptors for its help text at start-up, and this package must not cost it the timing
code (dataclasses, numpy) on the way; each backend imports its runtime inside its factory.
"""

from __future__ import annotations

import importlib

_LAZY = {
    **dict.fromkeys(("BACKENDS", "PREFERENCE", "Availability", "Backend", "best_backend", "get_backend", "register"),
                    "effconv.latency.backends"),
    **dict.fromkeys(("LatencyOptions", "Statistics", "Timing", "compute_statistics", "time_runner"),
                    "effconv.latency.base"),
    "LatencyReport": "effconv.latency.report",
    **dict.fromkeys(("measure_model", "measure_profile_latency", "check_budget"), "effconv.latency.api"),
    **dict.fromkeys(("render_latency", "plot_latency_vs_macs"), "effconv.latency.render"),
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    """Each public name, imported from its module on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'effconv.latency' has no attribute {name!r}")
