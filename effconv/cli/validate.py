"""The one validation layer: every parsed value checked against effconv.cli.constraints before a
command's body runs (`install` wraps each click command's callback).

Errors are one line naming the option: UsageError (exit 2), or ResourceLimitError (exit 4) for an
output folder whose file system has no space left. `BEFORE_WORK`, when set (tests), is called with
the command and its values after the checks passed, just before the body.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from effconv.cli import constraints as c
from effconv.errors import Interrupted, ResourceLimitError, UsageError

MIN_FREE_BYTES = 1 << 20  # an output folder with less free space than this is "full"
MAX_NAME_BYTES = 200  # a new file's name: NAME_MAX is 255, and temporaries add a prefix and suffix
BEFORE_WORK: Callable[[str, dict], None] | None = None


def install(command, path: tuple[str, ...] = ()) -> None:
    """Wrap the callback of every leaf command under `command` (a click command tree) once."""
    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in subs.items():
            install(sub, (*path, name))
        return
    inner = command.callback
    if inner is None or getattr(inner, "_effconv_checked", False):
        return
    name, params = " ".join(path), list(command.params)

    def checked(**values):
        try:
            check_values(name, params, values, given=_given(values))
            if BEFORE_WORK is not None:
                BEFORE_WORK(name, values)
            return inner(**values)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (effconv.cli.outcome.Terminated)
            raise interrupted(name, exc) from None

    checked._effconv_checked = True
    command.callback = checked


def interrupted(command: str, exc: BaseException) -> Interrupted:
    """The one line for a command stopped by Ctrl-C or SIGTERM (exit 130); `effconv.cli.app.stage`
    makes it say what was running."""
    cause = "terminated (SIGTERM)" if type(exc).__name__ == "Terminated" else "interrupted"
    doing = getattr(exc, "effconv_stage", None)
    what = f" while {doing}" if doing else ""
    return Interrupted(f"{cause}{what}: effconv {command} stopped, no report written")


def param_key(param) -> str:
    """The table key of a click parameter: its long flag ("--lr"), or an argument's name."""
    if param.param_type_name == "argument":
        return param.name
    return next((o for o in param.opts if o.startswith("--")), param.opts[0])


def needs_constraint(param) -> bool:
    """Every parameter but switches (--quiet, --strict/--no-strict) and eager ones (--version)."""
    return not getattr(param, "is_flag", False) and not getattr(param, "is_eager", False)


def _given(values: dict[str, Any]) -> set[str] | None:
    """The parameters the user gave (defaults are valid by construction and skipped: checking
    `--per-layer auto` would import the latency package into every `effconv profile`)."""
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return None
    return {n for n in values if ctx.get_parameter_source(n) not in (ParameterSource.DEFAULT, None)}


def check_values(command: str, params, values: dict[str, Any], given: set[str] | None = None) -> None:
    """Check `values` (click's parsed parameters) of `command`; `given`: only these names (None: all)."""
    files: list[tuple[str, Path, bool]] = []  # (label, path, is an output) for the overlap check
    for param in params:
        value = values.get(param.name)
        if value is None or not needs_constraint(param) or (given is not None and param.name not in given):
            continue
        key = param_key(param)
        rule = c.constraint_for(command, key)
        if rule is None:
            continue
        label = key.upper() if param.param_type_name == "argument" else key
        items = value if isinstance(value, (list, tuple)) and not isinstance(rule, c.Shapes) else [value]
        for item in items:
            check_one(label, rule, item)
            if isinstance(rule, (c.PathC, c.ModelRef)) and Path(str(item)).suffix:
                files.append((label, Path(str(item)), isinstance(rule, c.PathC) and rule.output))
    _distinct_outputs(files)


def _distinct_outputs(files: list[tuple[str, Path, bool]]) -> None:
    """No output file may be another output or one of the inputs (`profile m.onnx --json m.onnx`
    would overwrite the model it reads)."""
    seen: dict[Path, tuple[str, bool]] = {}
    for label, path, output in files:
        key = path.resolve()
        if key in seen and (output or seen[key][1]):
            raise UsageError(f"{label} {path}: is also {seen[key][0]}; give each output its own file")
        seen.setdefault(key, (label, output))


def check_one(label: str, rule, value: Any) -> None:
    checker = {c.Num: _num, c.Choice: _choice, c.Text: _text, c.PathC: _path, c.ModelRef: _model_ref,
               c.Shapes: _shapes}[type(rule)]
    checker(label, rule, value)


def _num(label: str, rule: c.Num, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not rule.accepts(value):
        raise UsageError(f"{label} {value!r}: must be {rule.describe()}")


def _choice(label: str, rule: c.Choice, value: str) -> None:
    names = list(rule.names())
    if value in names or (rule.pattern and re.fullmatch(rule.pattern, value)):
        _gpu_check(label, value)
        return
    if label == "--device-profile" and value.endswith(".toml"):
        if not Path(value).is_file():
            raise UsageError(f"{label} {value}: no such file")
        from effconv.latency.roofline import load_device_profile

        load_device_profile(value)  # a malformed profile is exit 3 now, not after the timing run
        return
    extra = " or a .toml file" if label == "--device-profile" else ""
    raise UsageError(f"{label} {value!r}: unknown {rule.what}; use one of {', '.join(names)}{extra}")


def _text(label: str, rule: c.Text, value: str) -> None:
    if rule.nonempty and not value.strip():
        raise UsageError(f"{label}: must not be empty")
    if len(value) > rule.max_len:
        raise UsageError(f"{label}: at most {rule.max_len} characters, got {len(value)}")
    if rule.safe_name and not re.fullmatch(r"[A-Za-z0-9._-]+", value):
        raise UsageError(f"{label} {value!r}: use letters, digits, '.', '_' and '-' only")


def _shapes(label: str, rule: c.Shapes, value) -> None:
    for text in [value] if isinstance(value, str) else value:  # profile repeats it; export, deploy take one
        m = re.fullmatch(r"\s*([^=]+?)\s*=\s*(\d+(?:\s*[x,]\s*\d+)*)\s*", text)
        if not m:
            raise UsageError(f"{label} {text!r}: expected NAME=DxDx... such as input=1x3x224x224")
        dims = [int(d) for d in re.split(r"\s*[x,]\s*", m.group(2))]
        if any(not 1 <= d <= c.INT32_MAX for d in dims):
            raise UsageError(f"{label} {text!r}: each dimension must be between 1 and {c.INT32_MAX}")
        elements = 1
        for d in dims:
            elements *= d
        if elements > rule.max_elements:
            raise UsageError(f"{label} {text!r}: {elements:.3g} elements per input is more than any model "
                             f"can be profiled at (at most {rule.max_elements:.3g})")


# Names that need a device ------------------------------------------------------------------------
def gpu_missing() -> str | None:
    """Why no NVIDIA GPU can be used here, or None; cheap (no CUDA runtime is imported)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    if not any(Path("/dev").glob("nvidia[0-9]*")):
        return "no NVIDIA GPU on this machine (/dev/nvidia* absent)"
    return None


def _gpu_check(label: str, value: str) -> None:
    """--backend ort-cuda / torch-cuda / tensorrt, --device cuda[:N]: refused up front without a GPU."""
    if label == "--backend":
        from effconv.latency.backends import BACKENDS

        backend = BACKENDS[value]
        why = gpu_missing() if backend.device == "cuda" else None
        if why is None and backend.kind == "torch":  # torch is loaded by the torch runner anyway
            avail = backend.probe()
            why = None if avail.available else avail.reason
        if why:
            cpu = "torch-cpu" if backend.kind == "torch" else "ort-cpu"
            raise UsageError(f"--backend {value} cannot run here: {why}; use --backend {cpu} "
                             "(`effconv backends` lists what is available)")
    elif label == "--device" and value.startswith("cuda"):
        why = gpu_missing()
        if why:
            raise UsageError(f"--device {value}: {why}; use --device cpu (or auto)")


# Paths ---------------------------------------------------------------------------------------------
def _path(label: str, rule: c.PathC, value) -> None:
    path = Path(value)
    role = rule.role
    if role == "in_file" and not path.is_file():
        raise UsageError(f"{label} {path}: " + ("is a folder, not a file" if path.is_dir() else "no such file"))
    if role == "in_dir" and not path.is_dir():
        raise UsageError(f"{label} {path}: " + ("is a file, not a folder" if path.exists() else "no such folder"))
    if role == "in_any" and not path.exists():
        raise UsageError(f"{label} {path}: no such file or folder")
    if role in ("in_file", "in_any") and path.exists() and not (path.is_file() or path.is_dir()):
        raise UsageError(f"{label} {path}: is a device, pipe or socket, not a file or folder")
    if rule.output and not path.exists() and len(path.name.encode()) > MAX_NAME_BYTES:
        raise UsageError(f"{label}: file name of {len(path.name.encode())} bytes is too long (at most {MAX_NAME_BYTES})")
    if role in ("out_file", "cache_file"):
        if path.is_dir():
            raise UsageError(f"{label} {path}: is a folder; give a file name")
        if path.exists() and not path.is_file():
            raise UsageError(f"{label} {path}: is a device, pipe or socket, not a file; refusing to replace it")
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise UsageError(f"{label} {path}: output folder does not exist ({folder})")
        writable_folder(label, folder)
    if role == "out_dir":
        if path.exists() and not path.is_dir():
            raise UsageError(f"{label} {path}: is a file, not a folder")
        ancestor = path
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise UsageError(f"{label} {path}: {ancestor} is a file, not a folder")
        writable_folder(label, ancestor)


def writable_folder(label: str, folder: Path) -> None:
    """A file can be created in `folder` (tried: a temporary file, removed at once) and its file
    system has MIN_FREE_BYTES free; else one line naming the option (exit 2, or 4 when full)."""
    import errno
    import tempfile

    from effconv.io import free_bytes

    try:
        fd, probe = tempfile.mkstemp(prefix=".effconv-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ResourceLimitError(f"{label}: no space left on the file system of {folder}") from exc
        why = {errno.EROFS: "is on a read-only file system", errno.EACCES: "is not writable",
               errno.EPERM: "is not writable"}.get(exc.errno, f"cannot hold new files ({exc.strerror})")
        raise UsageError(f"{label}: folder {folder} {why}") from exc
    if free_bytes(folder) < MIN_FREE_BYTES:
        raise ResourceLimitError(f"{label}: no space left on the file system of {folder} "
                                 f"({free_bytes(folder)} bytes free)")


def _model_ref(label: str, rule: c.ModelRef, value: str) -> None:
    if not str(value).strip():
        raise UsageError(f"{label}: must not be empty (give a {rule.what} or a zoo model name)")
    path = Path(value)
    if path.exists():
        if not (path.is_file() or path.is_dir()):
            from effconv.errors import InvalidInputError

            cls = InvalidInputError if rule.missing_exit == 3 else UsageError
            raise cls(f"{label} {value}: is a device, pipe or socket, not a model file or folder")
        return
    from effconv.specs import MODELS_DIR

    looks_like_path = "/" in value or "\\" in value or path.suffix in (".onnx", ".toml", ".pt", ".pth")
    if not looks_like_path and (MODELS_DIR / f"{value}.toml").is_file():
        return
    from effconv.errors import InvalidInputError

    cls = InvalidInputError if rule.missing_exit == 3 else UsageError
    if looks_like_path:
        raise cls(f"{label} {value}: no such file or folder")
    raise cls(f"{label} {value!r}: unknown model: no such file, folder or zoo model (a {rule.what}, or a "
              "name from `effconv models`)")
