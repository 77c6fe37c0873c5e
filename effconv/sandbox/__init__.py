"""The sandbox: files from outside are parsed and timed in limited child processes, so untrusted
input cannot take the CLI down with it.

- parent: run a function in a limited child and turn its outcome into effconv's errors
  (`run_in_child`, `run_isolated`, `profile_onnx_isolated`);
- child: the child's side (limits on itself, one JSON message back);
- prestart: the profile's worker, forked before the CLI parses its arguments;
- lifetime: a child dies with its parent; limits: the Limits value;
- safety: checks of files before they are read (pickled code in checkpoints, external data
  outside the model's folder, Git LFS pointers).

Nothing is imported here until a name is asked for: the CLI imports `effconv.sandbox.prestart`
first thing, and that must cost it no more than os, select and signal.
"""

from __future__ import annotations

import importlib

_LAZY = {
    **dict.fromkeys(("Limits", "DEFAULT_MEM_LIMIT_MB", "DEFAULT_TIMEOUT_S"), "effconv.sandbox.limits"),
    **dict.fromkeys(("run_in_child", "run_isolated", "profile_onnx_isolated", "rebuild_error"), "effconv.sandbox.parent"),
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'effconv.sandbox' has no attribute {name!r}")
