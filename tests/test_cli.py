"""The CLI skeleton: version, help, and the error-to-exit-code contract."""

import subprocess
import sys

from effconv import __version__


def test_version(cli):
    res = cli("--version")
    assert res.code == 0
    assert __version__ in res.stdout


def test_help_lists_commands(cli):
    res = cli("--help")
    assert res.code == 0
    assert "Usage" in res.stdout


def test_unknown_command_is_usage_error(cli):
    res = cli("no-such-command")
    assert res.code == 2


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "effconv", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert __version__ in proc.stdout
