"""Speed and memory of the static profile against onnx-tool (the baseline), measured in one run.

    python benchmarks/profile_speed.py [--repeat 5]

Needs the `bench` extra (onnx-tool==1.0.1) and the zoo (for MobileNet v1, exported once, untimed).
Prints, per model: in-process time after imports (effconv profile_onnx: load + check + shape
inference + count; onnx-tool: load + shape_infer + profile, without printing), end-to-end time of
`effconv profile FILE --no-latency` and `python -m onnx_tool -i FILE` as subprocesses, run
alternately (interpreter start included, bytecode cached as after an install), once with output
redirected (effconv prints plain tables) and once to a pseudo-terminal (rich tables), and the
children's peak RSS. Models: MobileNet v1, a synthetic 2,000-node Conv chain, and an exported graph
of 6,000+ nodes full of shape arithmetic (folded to a fixed point by effconv). Targets: MobileNet
<= 0.05 s, 2,000 nodes <= 0.25 s, >= 2x faster than onnx-tool in process; end to end no slower;
peak RSS < 2x file + 200 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def synthetic_graph(path: Path, nodes: int = 2000, channels: int = 16, size: int = 32) -> Path:
    """A chain of nodes/2 (Conv 3x3 + Relu) blocks on a 1 x channels x size x size map."""
    rng = np.random.default_rng(0)
    graph_nodes, inits, x = [], [], "input"
    for i in range(nodes // 2):
        w = numpy_helper.from_array(rng.standard_normal((channels, channels, 3, 3)).astype(np.float32), f"w{i}")
        inits.append(w)
        graph_nodes.append(helper.make_node("Conv", [x, w.name], [f"c{i}"], pads=[1, 1, 1, 1], name=f"conv{i}"))
        graph_nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
        x = f"r{i}"
    shape = [1, channels, size, size]
    g = helper.make_graph(graph_nodes, "chain", [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def mobilenet(path: Path) -> Path:
    from effconv.export.onnx import export_onnx
    from effconv.specs import load_spec
    from effconv.zoo import build_model

    spec = load_spec("mobilenet_v1")
    return export_onnx(build_model(spec), path, spec.input_shape(1))


def exported_deep(path: Path, blocks: int = 48) -> Path:
    """An exported graph of 6,000+ nodes, as exporters really write them: a Swin-style stack whose
    every block pads to a multiple of its window and splits channels from shapes computed at run
    time (Shape -> Gather -> Mod/Div -> Pad/Slice), windowed attention, a chunked MLP. Exported by
    effconv's own exporter (TorchScript, opset 17)."""
    import torch
    from torch import nn

    from effconv.export.onnx import export_onnx

    class Block(nn.Module):
        def __init__(self, dim: int = 32, window: int = 4):
            super().__init__()
            self.window, self.norm = window, nn.LayerNorm(dim)
            self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(2 * dim, dim)

        def forward(self, x):  # x: [B, H, W, C]
            b, h, w, c = x.shape
            ws = self.window
            y = nn.functional.pad(self.norm(x), (0, 0, 0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws))
            hp, wp = y.shape[1], y.shape[2]
            y = y.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
            q, k, v = self.qkv(y).chunk(3, dim=-1)
            a = (q @ k.transpose(-2, -1) * (c ** -0.5)).softmax(-1) @ v
            a = self.proj(a).view(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
            x = x + a[:, :h, :w, :]
            u, g = self.fc1(x).chunk(2, dim=-1)
            return x + self.fc2(u * torch.sigmoid(g))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 32, 4, 4)
            self.blocks = nn.Sequential(*[Block() for _ in range(blocks)])
            self.head = nn.Linear(32, 10)

        def forward(self, x):
            y = self.blocks(self.stem(x).permute(0, 2, 3, 1))
            return self.head(y.mean((1, 2)))

    torch.manual_seed(0)
    return export_onnx(Net().eval(), path, (1, 3, 56, 56))


def best_of(fn, repeat: int) -> float:
    """Median wall time of `repeat` calls, seconds (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# Runs the command from a small clean interpreter: a child forked from this process (numpy, onnx,
# torch loaded) would inherit our resident set and report it as its own peak.
# With "tty" first, the command's stdout and stderr are a pseudo-terminal (drained by a thread):
# effconv then prints rich tables, as at an interactive terminal; otherwise output goes to
# /dev/null (a pipe or a file: plain tables). ru_maxrss from wait4 is the largest of the child
# and its reaped children (effconv's sandbox worker), not their sum.
WRAPPER = """
import os, pty, subprocess, sys, threading, time
argv, out = sys.argv[1:], subprocess.DEVNULL
if argv[0] == "tty":
    argv, (master, out) = argv[1:], pty.openpty()
    def drain():
        try:
            while os.read(master, 65536):
                pass
        except OSError:
            pass
    threading.Thread(target=drain, daemon=True).start()
t0 = time.perf_counter()
p = subprocess.Popen(argv, stdout=out, stderr=out)
_, status, usage = os.wait4(p.pid, 0)
print(time.perf_counter() - t0, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def child_env(cache: Path) -> dict[str, str]:
    """The children's environment: bytecode cached under `cache` for every module, as after a
    normal install. With PYTHONDONTWRITEBYTECODE set (as in some sandboxes) an editable effconv
    would recompile its own sources on every start while onnx-tool loads installed .pyc files."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process; its output is discarded."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, check=True, env=env)
    wall, rss_kib, code = out.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {code}")
    return float(wall), int(rss_kib) / 1024  # Linux reports KiB


def child_stats(cmds: list[list[str]], repeat: int, env: dict[str, str]) -> list[tuple[float, float]]:
    """(median wall s, max peak RSS MiB) per command; the commands alternate run by run, so a
    machine busy with other work slows both alike. One untimed run each first (fills the cache)."""
    for cmd in cmds:
        run_child(cmd, env)
    runs = [[run_child(cmd, env) for cmd in cmds] for _ in range(repeat)]
    return [(statistics.median(r[i][0] for r in runs), max(r[i][1] for r in runs)) for i in range(len(cmds))]


def bench(name: str, path: Path, repeat: int) -> None:
    import onnx_tool

    from effconv.profile import profile_onnx

    def ours():
        profile_onnx(path)

    def theirs():
        g = onnx_tool.loadmodel(str(path), {"verbose": False}).graph
        g.graph_reorder_nodes()
        g.shape_infer()
        g.profile()

    t_ours, t_theirs = best_of(ours, repeat), best_of(theirs, repeat)
    exe = shutil.which("effconv") or str(Path(sys.executable).parent / "effconv")
    ours_cmd = [exe, "profile", str(path), "--no-latency"]
    theirs_cmd = [sys.executable, "-m", "onnx_tool", "-i", str(path)]
    with tempfile.TemporaryDirectory(prefix="pycache-") as cache:
        (e_ours, m_ours), (e_theirs, m_theirs), (t_ours_tty, _), (t_theirs_tty, _) = child_stats(
            [ours_cmd, theirs_cmd, ["tty", *ours_cmd], ["tty", *theirs_cmd]], max(3, repeat), child_env(Path(cache)))
    size = path.stat().st_size / 2**20
    print(f"\n{name}: {len(onnx.load(str(path), load_external_data=False).graph.node)} nodes, {size:.1f} MiB")
    print(f"  in process   effconv {t_ours * 1000:8.1f} ms   onnx-tool {t_theirs * 1000:8.1f} ms   "
          f"speed-up {t_theirs / t_ours:5.1f}x")
    print(f"  end to end   effconv {e_ours:8.2f} s    onnx-tool {e_theirs:8.2f} s    "
          f"ratio {e_theirs / e_ours:5.2f}x   (output redirected: plain tables)")
    print(f"  end to end   effconv {t_ours_tty:8.2f} s    onnx-tool {t_theirs_tty:8.2f} s    "
          f"ratio {t_theirs_tty / t_ours_tty:5.2f}x   (output to a terminal: rich tables)")
    print(f"  peak RSS     effconv {m_ours:8.0f} MiB  onnx-tool {m_theirs:8.0f} MiB  "
          f"(largest process; effconv runs two: at most {2 * m_ours:.0f} MiB together; "
          f"limit 2 x file + 200 = {2 * size + 200:.0f} MiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    try:
        import onnx_tool  # noqa: F401
    except ImportError:
        raise SystemExit("onnx-tool is missing: pip install 'onnx-tool==1.0.1' (extra `bench`)")
    with tempfile.TemporaryDirectory() as tmp:
        models = [("mobilenet_v1 (224)", mobilenet(Path(tmp) / "mobilenet_v1.onnx")),
                  ("synthetic 2,000 nodes", synthetic_graph(Path(tmp) / "chain2000.onnx")),
                  ("exported windowed-attention stack", exported_deep(Path(tmp) / "deep.onnx"))]
        print(f"python {sys.version.split()[0]}, onnx {onnx.__version__}, {os.cpu_count()} CPUs; "
              f"median of {args.repeat} in-process runs after one warm-up; end to end: median of "
              f"{max(3, args.repeat)} alternating child runs, bytecode cached")
        for name, path in models:
            bench(name, path, args.repeat)


if __name__ == "__main__":
    main()
