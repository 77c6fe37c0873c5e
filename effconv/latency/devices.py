"""`effconv device calibrate`: measure this machine's ceilings and write a device profile.

FLOP/s: a square fp32 matmul (n x n by n x n = 2 n^3 FLOP), best of several repeats.
Bandwidth: a large array copy (each byte is read once and written once: 2 x size bytes moved),
best of several repeats. numpy uses whatever BLAS it ships with and all cores it is allowed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from effconv.io import write_text
from effconv.latency.base import cpu_name
from effconv.latency.roofline import DeviceProfile, parse_device_profile


@dataclass(frozen=True)
class Calibration:
    flops_fp32: float  # FLOP/s
    bandwidth: float  # bytes/s
    matmul_n: int
    copy_mib: int
    repeats: int
    device: str


def _best_seconds(fn, repeats: int) -> float:
    fn()  # first call warms caches, page-faults buffers and spins up BLAS threads
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def calibrate(matmul_n: int = 2048, copy_mib: int = 256, repeats: int = 5) -> Calibration:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((matmul_n, matmul_n), dtype=np.float32)
    b = rng.standard_normal((matmul_n, matmul_n), dtype=np.float32)
    out = np.empty_like(a)
    t_mm = _best_seconds(lambda: np.matmul(a, b, out=out), repeats)
    src = np.ones(copy_mib * 2**20 // 4, dtype=np.float32)
    dst = np.empty_like(src)
    t_cp = _best_seconds(lambda: np.copyto(dst, src), repeats)
    return Calibration(2.0 * matmul_n**3 / t_mm, 2.0 * src.nbytes / t_cp, matmul_n, copy_mib, repeats, cpu_name())


def calibration_toml(cal: Calibration, name: str) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "# Measured by `effconv device calibrate`; TFLOP/s and GB/s.\n"
        f'name = "{name}"\n'
        f'description = "{_escape(cal.device)} (measured)"\n'
        f'source = "effconv device calibrate, {when}: numpy fp32 matmul n={cal.matmul_n}, '
        f'copy of {cal.copy_mib} MiB, best of {cal.repeats}"\n'
        'figures = "measured (achievable, below the theoretical peak)"\n'
        f"memory_bandwidth_gbs = {cal.bandwidth / 1e9:.3f}\n"
        "measured = true\n\n"
        "[peak_tflops]\n"
        f"fp32 = {cal.flops_fp32 / 1e12:.6f}\n"
    )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def write_calibration(cal: Calibration, path: str | Path, name: str) -> DeviceProfile:
    """Write the profile atomically and return it parsed back (so what was written is valid)."""
    import tomllib

    text = calibration_toml(cal, name)
    profile = parse_device_profile(tomllib.loads(text), Path(path))
    write_text(path, text)
    return profile
