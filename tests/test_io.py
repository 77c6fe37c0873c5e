"""Atomic writes: all or nothing, with ordinary permissions."""

import os

import pytest

from effconv.errors import UsageError
from effconv.io import atomic_path, write_text


def test_write_text_replaces_atomically(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_failure_keeps_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_missing_folder_is_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        write_text(tmp_path / "nope" / "a.txt", "x")


def test_atomic_write_never_replaces_a_device_or_pipe(tmp_path):
    """`export -o /dev/null` used to rename a file over the device node."""
    import os
    import stat

    import pytest

    from effconv.errors import UsageError
    from effconv.io import write_text

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="not a regular file"):
        write_text(fifo, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]
