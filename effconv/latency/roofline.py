"""Device ceilings and the roofline model.

A device profile (profiles/devices/<name>.toml) gives peak FLOP/s per precision in TFLOP/s (TOPS
for int8; dense figures, never the 2:4-sparsity ones) and memory bandwidth in GB/s (1e9 bytes/s),
each with its `source`. Arithmetic intensity = FLOP / byte moved = 2 * MACs / (bytes of inputs +
weights + outputs at the timed precision); a layer is memory-bound when its intensity is below the
ridge point peak / bandwidth. % of roofline = achieved / attainable, attainable = min(peak, I * BW).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from effconv.errors import InvalidInputError, UsageError

DEVICES_DIR = Path(__file__).resolve().parents[2] / "profiles" / "devices"
PRECISION_KEYS = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8")
REQUIRED = ("name", "description", "source", "figures", "memory_bandwidth_gbs", "peak_tflops")
OPTIONAL = ("notes", "measured")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    source: str  # the vendor datasheet (name and URL) or how it was measured
    figures: str  # "dense" or how the figures were obtained
    memory_bandwidth: float  # bytes/s
    peak_flops: Mapping[str, float]  # FLOP/s (OP/s for int8) per precision
    notes: str = ""
    measured: bool = False  # True for `effconv device calibrate` output

    def peak(self, precision: str) -> float:
        if precision not in self.peak_flops:
            have = ", ".join(self.peak_flops)
            raise UsageError(f"device profile {self.name!r} has no {precision} peak (it has {have})")
        return self.peak_flops[precision]


def parse_device_profile(data: dict, path: Path) -> DeviceProfile:
    """Validate a parsed TOML table; unknown keys, a missing source or bad numbers are errors."""
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise InvalidInputError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(REQUIRED + OPTIONAL)}", path=path)
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise InvalidInputError(f"missing key(s) {', '.join(missing)}", path=path)
    if not str(data["source"]).strip():
        raise InvalidInputError("`source` must name where the figures come from", path=path)
    peaks = data["peak_tflops"]
    if not isinstance(peaks, dict) or not peaks:
        raise InvalidInputError("[peak_tflops] must be a table such as fp32 = 67.0", path=path)
    bad = sorted(set(peaks) - set(PRECISION_KEYS))
    if bad:
        raise InvalidInputError(f"unknown precision(s) in [peak_tflops]: {', '.join(bad)}; allowed: {', '.join(PRECISION_KEYS)}", path=path)
    numbers = {"memory_bandwidth_gbs": data["memory_bandwidth_gbs"], **{f"peak_tflops.{k}": v for k, v in peaks.items()}}
    for key, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise InvalidInputError(f"{key} must be a positive number, got {value!r}", path=path)
    return DeviceProfile(
        name=str(data["name"]), description=str(data["description"]), source=str(data["source"]),
        figures=str(data["figures"]), memory_bandwidth=float(data["memory_bandwidth_gbs"]) * 1e9,
        peak_flops=MappingProxyType({k: float(v) * 1e12 for k, v in peaks.items()}),
        notes=str(data.get("notes", "")), measured=bool(data.get("measured", False)),
    )


def load_device_profile(name_or_path: str | Path) -> DeviceProfile:
    """A name under profiles/devices/ (e.g. "h100-sxm") or a path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = DEVICES_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise UsageError(f"unknown device profile {name_or_path!r}; known: {', '.join(list_device_names())}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError("device profile not found", path=path) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"not valid TOML: {exc}", path=path) from exc
    return parse_device_profile(data, path)


def list_device_names() -> list[str]:
    return sorted(p.stem for p in DEVICES_DIR.glob("*.toml"))


@dataclass(frozen=True)
class RooflinePoint:
    intensity: float  # FLOP per byte moved
    ridge: float  # FLOP per byte where the device turns compute-bound
    bound: str  # "memory" | "compute"
    attainable: float  # FLOP/s the roofline allows at this intensity
    achieved: float  # FLOP/s measured (2 * MACs / time)
    pct_of_roofline: float  # achieved / attainable, percent; for MAC-free ops: bytes/s / bandwidth


def roofline(macs: int, bytes_moved: int, ms: float, device: DeviceProfile, precision: str) -> RooflinePoint:
    peak, bw = device.peak(precision), device.memory_bandwidth
    flops = 2.0 * macs
    seconds = ms / 1e3
    intensity = flops / bytes_moved if bytes_moved else float("inf")
    ridge = peak / bw
    attainable = min(peak, intensity * bw)
    achieved = flops / seconds if seconds > 0 else 0.0
    if flops > 0:
        pct = 100.0 * achieved / attainable
    else:  # no arithmetic: judge by the memory traffic alone
        pct = 100.0 * (bytes_moved / seconds) / bw if seconds > 0 else 0.0
    return RooflinePoint(intensity, ridge, "memory" if intensity < ridge else "compute", attainable, achieved, pct)
