"""regwizard in a real terminal: tmux at 80x24, keyboard only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

EXE = os.path.join(os.path.dirname(sys.executable), "regwizard")


class Tmux:
    def __init__(self, name: str, command: list[str], env: dict[str, str] | None = None):
        if not shutil.which("tmux"):
            if os.environ.get("CI"):
                pytest.fail("tmux is not installed (scripts/install installs it)")
            pytest.skip("tmux missing")
        self.name = name
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
        envargs = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24", *envargs]
            + [" ".join(command) + "; echo EXIT=$?; sleep 30"],
            check=True,
        )

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        ).stdout

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.screen()
            if text in out:
                return out
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def test_starts_renders_and_quits_at_80x24():
    t = Tmux("rw-tmux-welcome", [EXE], env={"TERM": "xterm-256color"})
    try:
        out = t.wait_for("New setup")
        assert "Repair" in out
        t.keys("C-q")
        out = t.wait_for("EXIT=")
        assert "Traceback" not in out
    finally:
        t.close()


@pytest.mark.lab
def test_review_to_verified_registry_with_the_keyboard(lab):
    t = Tmux("rw-tmux-run", [EXE, lab.plan_file], env={"TERM": "xterm-256color"})
    try:
        t.wait_for("Review")
        t.keys("C-n")  # Run
        t.wait_for("Password")
        t.keys(lab.verify_password, "Enter")
        out = t.wait_for("Done", timeout=120)
        assert lab.verify_password not in out
        t.keys("C-q")
        t.wait_for("EXIT=")
    finally:
        t.close()
