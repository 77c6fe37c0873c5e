"""A child's lifetime is its parent's: shared by the forked or spawned sandbox child
(effconv.sandbox.child) and the prestarted worker (effconv.sandbox.prestart). os, signal and sys
only: the worker calls this first thing after the fork."""

from __future__ import annotations

import os
import signal
import sys


def die_with_parent(parent_pid: int) -> None:
    """In a child: be killed (SIGKILL) the moment the parent dies, however it dies (kill -9
    included), so no sandbox child runs on for minutes without a parent. Linux: prctl
    PR_SET_PDEATHSIG; elsewhere the child's limits (RLIMIT_CPU) end it. A parent already gone
    (it died before the prctl took effect): exit now."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(70)
