"""Time from launching `regwizard` in a real terminal (tmux, 80x24) to the first
painted Welcome screen, beside the same for a one-Button Textual app (Textual's own
floor on this machine, whose speed wanders: alternated, run for run). Prints JSON.
    .venv/bin/python bench/bench_tui.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

EXE = str(Path(sys.executable).with_name("regwizard"))
# the floor: Textual's import, start and first frame, with one widget
BARE = (
    "from textual.app import App\n"
    "from textual.widgets import Button\n"
    "class Bare(App):\n"
    "    def compose(self):\n"
    "        yield Button('New setup')\n"
    "Bare().run()\n"
)


def once(session: str, argv: list[str]) -> float:
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    t = time.perf_counter()
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", *argv], check=True
    )
    try:
        deadline = t + 20
        while time.perf_counter() < deadline:
            out = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            if "New setup" in out:
                return time.perf_counter() - t
            time.sleep(0.01)
        raise SystemExit("the Welcome screen never painted:\n" + out)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not shutil.which("tmux"):
        raise SystemExit("tmux is needed: apt-get install tmux")
    times, bare = [], []
    for i in range(args.runs):
        times.append(once(f"rwbench{i}", [EXE]))
        bare.append(once(f"rwbare{i}", [sys.executable, "-c", BARE]))
    print(
        json.dumps(
            {
                "first_paint_s": [round(x, 3) for x in times],
                "first_paint_median_s": round(statistics.median(times), 3),
                "bare_textual_s": [round(x, 3) for x in bare],
                "bare_textual_median_s": round(statistics.median(bare), 3),
                "over_bare_s": round(statistics.median(times) - statistics.median(bare), 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
