"""Ctrl-C (or SIGTERM) of a command: one line saying what it stopped, exit 130, nothing written."""

from __future__ import annotations

import pytest

import effconv.profile.api as profile_api


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("where, needle", [
    ("static_profile", "while counting resnet20 (its sandbox child was stopped)"),
    ("measure", "while timing resnet20 on ort-cpu (the timing run was stopped)"),
])
def test_ctrl_c_of_profile_says_what_it_stopped(cli, monkeypatch, tmp_path, where, needle):
    monkeypatch.setattr(profile_api, where, _interrupt)
    res = cli("profile", "resnet20", "--backend", "ort-cpu", "--json", tmp_path / "p.json", "--quiet")
    assert res.code == 130, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("effconv: error: interrupted ") and needle in lines[0], lines
    assert "effconv profile stopped" in lines[0] and not (tmp_path / "p.json").exists()


def test_ctrl_c_of_any_command_is_one_line(cli, monkeypatch):
    from effconv.cli import validate

    monkeypatch.setattr(validate, "BEFORE_WORK", lambda command, values: _interrupt())
    res = cli("cost", "14", "512", "512", "3")
    assert res.code == 130 and len(res.stderr.strip().splitlines()) == 1, res.stderr
