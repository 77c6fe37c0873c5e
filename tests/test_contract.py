"""The CLI contract under bad input, for every option of every command, read from the Typer app and
the constraint table (effconv.cli.constraints): a new option is covered without editing this file.

Each numeric option gets nan, inf, -1, 0, 1e20 and 10^20; each name option an unknown name; each
path option a missing, a read-only and a full target (faked here by errno; the real tmpfs test
below mounts one when it can). A value the table refuses must exit with the documented code within
2 s, as one line on stderr, no traceback, no file left behind, and without reaching the command's
body; a value the table accepts must reach the body (the table says no more than the checks do).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import effconv.io
import typer.main
from effconv.cli import constraints as c
from effconv.cli import register_commands, validate
from effconv.cli.app import app

REACHED_BODY = 99  # BEFORE_WORK exits with this when a command's checks passed
NUMBERS = ("nan", "inf", "-1", "0", "1e20", str(10**20))


def _leaf_commands():
    register_commands()
    found = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, (*path, name))
        else:
            found.append((path, cmd))

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = _leaf_commands()


def _params(cmd):
    return [p for p in cmd.params if validate.needs_constraint(p)]


def _rule(path, param):
    return c.constraint_for(" ".join(path), validate.param_key(param))


def _argv(path, cmd, tmp: Path, param, value: str) -> list[str]:
    """The command with `param` set to `value` and a valid value for every other required argument."""
    argv = [*path, "--"] if param.param_type_name == "argument" else list(path)  # "--": -1 is a value
    for p in cmd.params:
        if p.param_type_name == "argument" and (p.required or p is param):
            argv.append(value if p is param else _rule(path, p).example(tmp))
    return argv if param.param_type_name == "argument" else [*argv, validate.param_key(param), value]


def _bad_values(rule, param) -> list[tuple[str, int]]:
    """(value, expected exit code) for one option; accepted values expect REACHED_BODY."""
    if isinstance(rule, c.Num):
        integer = "int" in type(param.type).__name__.lower()
        out = []
        for text in NUMBERS:
            try:
                value = int(text) if integer else float(text)
            except ValueError:
                out.append((text, 2))  # click refuses it: "'nan' is not a valid int"
                continue
            low_ok = getattr(param.type, "min", None) is None or value >= param.type.min
            out.append((text, REACHED_BODY if rule.accepts(value) and low_ok else 2))
        return out
    if isinstance(rule, c.Choice):
        return [("no-such-name", 2)]
    if isinstance(rule, c.Text):
        return [("x" * (rule.max_len + 1), 2)] + ([("../bad name", 2)] if rule.safe_name else [])
    if isinstance(rule, c.Shapes):
        return [("input=1x3x100000000000000000000x2", 2), ("garbage", 2), ("input=1x3x0x2", 2)]
    if isinstance(rule, c.ModelRef):
        return [("no_such_model_xyz", rule.missing_exit), ("{tmp}/missing/m.onnx", rule.missing_exit), ("", 2)]
    if isinstance(rule, c.PathC):
        missing = "{tmp}/missing/sub/x" if rule.role == "out_dir" else "{tmp}/missing/x.out"
        if rule.role == "out_dir":
            missing = "{tmp}/afile/sub"  # under a file: cannot be made
        cases = [(missing, 2)]
        if rule.output:
            leaf = "" if rule.role == "out_dir" else "/x.out"
            cases += [("{ro}" + leaf, 2), ("{full}" + leaf, 4)]
        if rule.role in ("out_file", "cache_file"):
            cases.append(("{fifo}", 2))  # a rename must never replace a device or pipe (-o /dev/null)
        return cases
    raise AssertionError(f"no bad values for {rule!r}")


def _cases():
    for path, cmd in COMMANDS:
        for param in _params(cmd):
            rule = _rule(path, param)
            if rule is None:
                continue
            for value, code in _bad_values(rule, param):
                yield pytest.param(path, param.name, value, code, id=f"{' '.join(path)}:{param.name}={value[:24]}")


def test_every_option_is_in_the_table():
    missing = [f"{' '.join(path)} {validate.param_key(p)}" for path, cmd in COMMANDS for p in _params(cmd)
               if _rule(path, p) is None]
    assert not missing, f"add these to effconv/cli/constraints.py: {missing}"


@pytest.fixture
def fake_fs(tmp_path, monkeypatch):
    """A read-only folder and a full one, by errno: mkstemp there fails with EROFS, free space is 0."""
    ro, full = tmp_path / "ro", tmp_path / "full"
    ro.mkdir()
    full.mkdir()
    (tmp_path / "afile").write_text("a file, not a folder")
    os.mkfifo(tmp_path / "fifo")
    real_mkstemp, real_free = tempfile.mkstemp, effconv.io.free_bytes

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == ro.resolve():
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(effconv.io, "free_bytes", lambda d: 0 if Path(d).resolve() == full.resolve() else real_free(d))
    return {"tmp": str(tmp_path), "ro": str(ro), "full": str(full), "fifo": str(tmp_path / "fifo")}


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("path, name, value, code", list(_cases()))
def test_bad_value_is_refused_before_work(cli, fake_fs, monkeypatch, tmp_path, path, name, value, code):
    cmd = dict(COMMANDS)[path]
    param = next(p for p in cmd.params if p.name == name)
    monkeypatch.setattr(validate, "BEFORE_WORK", lambda command, values: sys.exit(REACHED_BODY))
    value = value.format(**fake_fs)
    argv = _argv(path, cmd, tmp_path, param, value)
    before = _tree(tmp_path)
    cwd_before = set(os.listdir("."))
    started = time.monotonic()
    res = cli(*argv)
    took = time.monotonic() - started
    assert took < 2.0, f"{argv}: took {took:.1f} s"
    assert res.code == code, (argv, res.code, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    if code != REACHED_BODY:
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("effconv: error: "), res.stderr
        assert validate.param_key(param) in lines[0] or param.name.upper() in lines[0], lines[0]
    assert _tree(tmp_path) == before, "a file was left behind"
    assert set(os.listdir(".")) == cwd_before


def test_debug_anywhere_keeps_the_exit_code(cli):
    for argv in (["--debug", "export", "resnet20", "--opset", "5"], ["export", "resnet20", "--opset", "5", "--debug"]):
        res = cli(*argv)
        assert res.code == 2, res.stderr
        assert res.stderr.strip().splitlines()[-1].startswith("effconv: error: --opset 5")


def test_click_usage_errors_are_one_line(cli):
    for argv in (["export", "resnet20", "--opset", "nan"], ["export"], ["export", "resnet20", "--bogus"]):
        res = cli(*argv)
        assert res.code == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr


@pytest.mark.parametrize("exc, code", [
    (OSError(errno.ENOSPC, "No space left on device", "/x/y"), 4),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), 4),
    (OSError(errno.EROFS, "Read-only file system", "/x"), 2),
    (OSError(errno.EACCES, "Permission denied", "/x"), 2),
    (MemoryError(), 4),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), 4),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"), 4),
    (OverflowError("cannot fit 'int' into an index-sized integer"), 3),
    (RuntimeError("a native runtime failed"), 5),
])
def test_exit_code_follows_the_cause(cli, monkeypatch, exc, code):
    def boom(command, values):
        raise exc

    monkeypatch.setattr(validate, "BEFORE_WORK", boom)
    res = cli("cost", "14", "512", "512", "3")
    assert res.code == code, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def _mount_tmpfs(where: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return proc.returncode == 0


def test_real_full_and_read_only_file_systems(cli, tmp_path):
    """A 64 KiB tmpfs filled to the last byte, then the same remounted read-only."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if not _mount_tmpfs(mnt, "size=64k"):
        pytest.skip("cannot mount a tmpfs here (needs root); the errno fakes above cover the cases")
    try:
        with open(mnt / "filler", "wb", buffering=0) as fh, pytest.raises(OSError):
            while True:
                fh.write(b"\0" * 4096)
        res = cli("export", "resnet20", "-o", mnt / "m.onnx")
        assert res.code == 4 and "space" in res.stderr, res.stderr
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        res = cli("profile", "resnet20", "--json", mnt / "p.json")
        assert res.code == 2 and "read-only" in res.stderr, res.stderr
        assert sorted(os.listdir(mnt)) == ["filler"]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.parametrize("argv", [
    ["profile", "{model}", "--json", "{model}", "--no-latency"],  # would overwrite the model it reads
    ["profile", "{model}", "--json", "{tmp}/same.out", "--csv", "{tmp}/same.out", "--no-latency"],
    ["export", "resnet20", "-o", "{tmp}/m.onnx", "--json", "{tmp}/m.onnx"],
])
def test_an_output_may_not_be_another_file_of_the_command(cli, monkeypatch, tmp_path, argv):
    monkeypatch.setattr(validate, "BEFORE_WORK", lambda command, values: sys.exit(REACHED_BODY))
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read")
    res = cli(*(a.format(model=model, tmp=tmp_path) for a in argv))
    assert res.code == 2 and "give each output its own file" in res.stderr, res.stderr
    assert model.read_bytes() == b"not read"


@pytest.mark.parametrize("argv", [["train", "resnet20", "--data", "/dev/zero"], ["profile", "/dev/zero"],
                                  ["export", "resnet20", "-o", "{tmp}/" + "n" * 250 + ".onnx"]])
def test_devices_as_inputs_and_overlong_names_are_refused(cli, monkeypatch, tmp_path, argv):
    monkeypatch.setattr(validate, "BEFORE_WORK", lambda command, values: sys.exit(REACHED_BODY))
    res = cli(*(a.format(tmp=tmp_path) for a in argv))
    assert res.code in (2, 3) and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_zoo_names_read_without_torch_match_the_registries():
    from effconv.zoo import blocks

    assert c._zoo_names("ACTIVATIONS") == list(blocks.ACTIVATIONS)
    assert c._zoo_names("NORMS") == list(blocks.NORMS)
