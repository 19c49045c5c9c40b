"""`regwizard completion bash|zsh|fish`, loaded in a real bash: `regwizard ap<TAB>`
completes to apply, subcommand actions and plan files complete too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from regwizard.cli.completion import SHELLS

EXE = [sys.executable, "-m", "regwizard"]


def _script(shell: str) -> str:
    cp = subprocess.run([*EXE, "completion", shell], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def _complete_in_bash(tmp_path: Path, line: str) -> list[str]:
    """What bash offers for ``line`` (ending where TAB is pressed), through the function
    the script registered with `complete` for regwizard."""
    script = tmp_path / "regwizard.bash"
    script.write_text(_script("bash"))
    words = line.split(" ")
    prog = f"""
source {script}
fn=$(complete -p regwizard | sed -E 's/.*-F ([^ ]+).*/\\1/')
COMP_WORDS=({" ".join(repr(w) for w in words)})
COMP_CWORD={len(words) - 1}
COMP_LINE={line!r}
COMP_POINT=${{#COMP_LINE}}
"$fn" regwizard {words[-1]!r} {words[-2]!r}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    cp = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", prog],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    return [x for x in cp.stdout.splitlines() if x]


def test_bash_completes_a_subcommand(tmp_path: Path) -> None:
    assert _complete_in_bash(tmp_path, "regwizard ap") == ["apply"]


def test_bash_completes_an_action_and_a_flag(tmp_path: Path) -> None:
    assert "check" in _complete_in_bash(tmp_path, "regwizard plan ch")
    assert "--dry-run" in _complete_in_bash(tmp_path, "regwizard apply --dr")


def test_bash_completes_plan_files(tmp_path: Path) -> None:
    (tmp_path / "my-plan.toml").write_text("")
    assert "my-plan.toml" in _complete_in_bash(tmp_path, "regwizard apply my-")


@pytest.mark.parametrize("shell", SHELLS)
def test_every_shell_gets_a_script_naming_the_subcommands(shell: str) -> None:
    text = _script(shell)
    for cmd in ("apply", "adopt", "doctor", "gc", "images", "plan", "user", "lab"):
        assert cmd in text, (shell, cmd)
