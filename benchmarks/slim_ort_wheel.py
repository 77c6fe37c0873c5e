"""A smaller onnxruntime-gpu wheel for the GPU machine: fewer 40-58 MB runs to send it.

The GPU image lacks onnxruntime-gpu and reaches no registry, so ../shared/device/prepare.sh
downloads the wheel here and splits it into parts that travel one per run. This script rewrites
that wheel without the TensorRT provider library (TensorRT's own libraries are not on the image,
so that provider cannot load there anyway) and with every member LZMA-compressed instead of
deflated, then splits it again:

    python benchmarks/slim_ort_wheel.py                     # reads .device/ort/part*, writes .device/ort
    python benchmarks/slim_ort_wheel.py --part-bytes 58000000 --drop ''   # keep the TensorRT library

The result is the same file name, still a wheel that `pip install --no-index --no-deps --target`
installs (pip reads members with zipfile, which decompresses LZMA), with RECORD rewritten to match,
so ../shared/device/setup-on-device.sh installs it unchanged: it concatenates the parts, checks
whl.sha256 and counts the parts against `count`, all of which this script rewrites. The original
parts are kept in .device/ort-full/. Deflate's 32 KB window misses the long repeats in the CUDA
provider library that LZMA's dictionary finds; most of that library is compressed CUDA fat binaries,
which neither can shrink. See benchmarks/README.md for the measured sizes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

DROP = ("onnxruntime/capi/libonnxruntime_providers_tensorrt.so",)
PART_BYTES = 52_000_000  # 4 parts of the slim wheel; each leaves ~15 MB of a run's 64 MiB (67,108,864 bytes) for the working tree


def assemble(folder: Path, work: Path) -> Path:
    """The wheel from `folder` (a *.whl there, or part* + whl.sha256), checked against whl.sha256."""
    wheels = sorted(folder.glob("*.whl"))
    if wheels:
        return wheels[0]
    name = (folder / "whl.sha256").read_text().split()[1]
    out = work / name
    with open(out, "wb") as fh:
        for part in sorted(folder.glob("part*")):
            fh.write(part.read_bytes())
    want = (folder / "whl.sha256").read_text().split()[0]
    if sha256(out) != want:
        raise SystemExit(f"{out}: sha256 does not match {folder / 'whl.sha256'}")
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def slim(src: Path, dst: Path, drop: tuple[str, ...]) -> dict[str, int]:
    """Rewrite `src` into `dst` without `drop`, every member LZMA-compressed, RECORD updated."""
    dropped = 0
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_LZMA) as zout:
        record_name = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
        for info in zin.infolist():
            if info.filename in drop:
                dropped += info.file_size
                continue
            if info.filename == record_name:
                continue
            data = zin.read(info)
            new = zipfile.ZipInfo(info.filename, info.date_time)
            new.external_attr = info.external_attr  # keeps the executable bits of the .so files
            new.compress_type = zipfile.ZIP_LZMA
            zout.writestr(new, data)
        lines = [ln for ln in zin.read(record_name).decode().splitlines()
                 if ln and ln.split(",")[0] not in drop]
        new = zipfile.ZipInfo(record_name, zin.getinfo(record_name).date_time)
        new.compress_type = zipfile.ZIP_LZMA
        zout.writestr(new, "\n".join(lines) + "\n")
    return {"dropped_bytes": dropped}


def split(wheel: Path, out: Path, part_bytes: int) -> int:
    for old in out.glob("part*"):
        old.unlink()
    data = wheel.read_bytes()
    n = 0
    for n, start in enumerate(range(0, len(data), part_bytes)):
        (out / f"part{n:02d}").write_bytes(data[start:start + part_bytes])
    (out / "whl.sha256").write_text(f"{sha256(wheel)}  {wheel.name}\n")
    (out / "count").write_text(f"{n + 1}\n")
    return n + 1


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=Path(".device/ort"), help="folder with the wheel or its parts")
    ap.add_argument("--out", type=Path, default=Path(".device/ort"), help="folder for the new parts")
    ap.add_argument("--keep", type=Path, default=Path(".device/ort-full"), help="where the original parts go")
    ap.add_argument("--part-bytes", type=int, default=PART_BYTES)
    ap.add_argument("--drop", default=",".join(DROP), help="comma-separated members to leave out ('' for none)")
    args = ap.parse_args(argv)
    drop = tuple(d for d in args.drop.split(",") if d)
    work = args.out.parent / "ort-work"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    original = assemble(args.src, work)
    before = original.stat().st_size
    slim_path = work / f"slim-{original.name}"
    info = slim(original, slim_path, drop)
    if args.src.resolve() == args.out.resolve():  # keep the original parts before they are replaced
        args.keep.mkdir(parents=True, exist_ok=True)
        for f in list(args.src.glob("part*")) + [args.src / "whl.sha256", args.src / "count"]:
            if f.exists():
                shutil.move(str(f), args.keep / f.name)
    args.out.mkdir(parents=True, exist_ok=True)
    final = work / original.name
    if original != final:
        shutil.copyfile(original, final)
    os.replace(slim_path, final)
    parts = split(final, args.out, args.part_bytes)
    after = final.stat().st_size
    shutil.rmtree(work)
    print(f"{original.name}: {before:,} -> {after:,} bytes ({after / before:.1%}), dropped {info['dropped_bytes']:,} "
          f"uncompressed bytes ({', '.join(drop) or 'nothing'}); {parts} parts of at most {args.part_bytes:,} bytes "
          f"in {args.out}; {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
