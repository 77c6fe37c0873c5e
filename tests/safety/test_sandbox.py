"""effconv.sandbox: a crash, a memory blow-up or a hang in the child becomes the documented exit
code in the parent, which survives; the child's EffconvError comes back with its class and message."""

from __future__ import annotations

import os
import time

import pytest

from effconv.sandbox import parent as sandbox
from effconv.errors import EffconvError, InvalidInputError, ResourceLimitError, RuntimeCrashError, UsageError


def test_result_comes_back_from_another_process(targets):
    out = sandbox.run_isolated(targets.add, 2, 3, scale=10, mem_limit_mb=1024, timeout_s=60)
    assert out["sum"] == 50
    assert out["pid"] != os.getpid()


@pytest.mark.parametrize("name,signame", [("abort", "SIGABRT"), ("segfault", "SIGSEGV"), ("bus_error", "SIGBUS")])
def test_native_crash_is_exit_5(targets, name, signame):
    with pytest.raises(RuntimeCrashError, match=signame) as info:
        sandbox.run_isolated(getattr(targets, name), timeout_s=60)
    assert info.value.exit_code == 5


@pytest.mark.parametrize("name", ["allocate", "native_allocate"])
def test_memory_limit_is_exit_4(targets, name):
    with pytest.raises(ResourceLimitError, match="out of memory under the 1024 MB limit") as info:
        sandbox.run_isolated(getattr(targets, name), 2048, mem_limit_mb=1024, timeout_s=60)
    assert info.value.exit_code == 4


def test_timeout_kills_the_child_and_is_exit_4(targets):
    t0 = time.monotonic()
    with pytest.raises(ResourceLimitError, match="timed out after 1 s") as info:
        sandbox.run_isolated(targets.sleep, 60, timeout_s=1)
    assert info.value.exit_code == 4
    assert time.monotonic() - t0 < 20  # the parent did not wait for the 60 s sleep


def test_child_sets_its_own_limits(targets):
    got = sandbox.run_isolated(targets.limits, mem_limit_mb=1536, timeout_s=10)
    assert got["as"] == [1536 * 1024 * 1024] * 2
    assert got["cpu"] == [12, 17]  # soft: timeout + 2 s (SIGXCPU), hard: 5 s later (SIGKILL)


def test_cpu_limit_signal_is_exit_4():
    err = sandbox._from_exit(-24, "", sandbox.Limits(1024, 1), "m.onnx")  # SIGXCPU, as the kernel sends it
    assert isinstance(err, ResourceLimitError) and "CPU time limit" in str(err)


def test_bad_alloc_on_stderr_is_a_memory_error_not_a_crash():
    tail = "terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc\n"
    err = sandbox._from_exit(-6, tail, sandbox.Limits(512, 10), "m.onnx")
    assert isinstance(err, ResourceLimitError) and "512 MB" in str(err) and "SIGABRT" in str(err)


@pytest.mark.parametrize("name,args,cls,text", [
    ("invalid", ("m.onnx",), InvalidInputError, "m.onnx: is not what it claims"),
    ("spec_error", (), "SpecError", "unknown key 'x' in [arch]"),
])
def test_effconv_error_keeps_class_and_message(targets, name, args, cls, text):
    with pytest.raises(EffconvError) as info:
        sandbox.run_isolated(getattr(targets, name), *args, timeout_s=60)
    got = type(info.value)
    assert (got.__name__ if isinstance(cls, str) else got) == cls
    assert str(info.value) == text
    assert info.value.exit_code == (3 if got is InvalidInputError else 2)
    if isinstance(cls, str):
        assert issubclass(got, UsageError)


@pytest.mark.parametrize("name,args,text", [
    ("bug", (), "KeyError"),
    ("not_plain_data", (), "not JSON serializable"),
    ("exit_status", (7,), "exited with status 7"),
])
def test_other_failures_are_exit_5(targets, name, args, text):
    with pytest.raises(RuntimeCrashError, match=text):
        sandbox.run_isolated(getattr(targets, name), *args, timeout_s=60)


def test_unknown_error_class_falls_back_by_exit_code():
    err = sandbox.rebuild_error("os", "system", "x: refused", None, 3)  # never imported: not effconv's
    assert type(err) is InvalidInputError and str(err) == "x: refused"


def test_child_stderr_is_forwarded(targets, capfd):
    assert sandbox.run_isolated(targets.noisy, timeout_s=60) == "done"
    assert "a warning from native code" in capfd.readouterr().err


def _disk_full():
    import errno

    raise OSError(errno.ENOSPC, "No space left on device", "/tmp/x")


def test_a_childs_full_disk_is_exit_4_not_a_crash():
    import pytest

    from effconv.errors import ResourceLimitError
    from effconv.sandbox import run_isolated

    with pytest.raises(ResourceLimitError, match="no space left"):
        run_isolated(_disk_full, mem_limit_mb=None, timeout_s=30)
