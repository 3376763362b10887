"""Every registered command answers --help and has an end-to-end test; ``fathom list`` lists
every registry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fathom.cli import main
from fathom.registry import COMMANDS, REGISTRIES

TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", COMMANDS.names())
def test_every_command_answers_help(name, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([name, "--help"])
    assert stopped.value.code == 0
    assert f"usage: fathom {name}" in capsys.readouterr().out


def test_the_root_help_lists_every_command(capsys):
    assert main([]) == 0
    shown = capsys.readouterr().out
    assert all(name in shown for name in COMMANDS.names())


@pytest.mark.parametrize("name", COMMANDS.names())
def test_every_command_has_an_end_to_end_test(name):
    """Some test runs ``main(["NAME", ...])`` (or ``fathom NAME`` in a subprocess)."""
    pattern = re.compile(
        rf"""main\(\s*\[\s*["']{re.escape(name)}["']|["']-m["'],\s*["']fathom(\.cli)?["'],\s*["']{re.escape(name)}["']"""
    )
    callers = [
        path for path in TESTS.rglob("test_*.py")
        if path.name != "test_commands.py" and pattern.search(path.read_text())
    ]  # fmt: skip
    assert callers, f"no end-to-end test runs 'fathom {name}'"


@pytest.mark.parametrize("kind", list(REGISTRIES))
def test_list_shows_every_registry(kind, capsys):
    assert main(["list", kind]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == REGISTRIES[kind].names()


def test_an_unknown_kind_is_refused():
    with pytest.raises(SystemExit) as stopped:
        main(["list", "modles"])
    assert stopped.value.code == 2
