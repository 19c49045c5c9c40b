"""Time from launching `regwizard` in a real terminal (tmux, 80x24) to the first
painted Welcome screen. Prints JSON.   .venv/bin/python bench/bench_tui.py [--runs 5]
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


def once(session: str) -> float:
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    t = time.perf_counter()
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", EXE], check=True
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
    times = [once(f"rwbench{i}") for i in range(args.runs)]
    print(
        json.dumps(
            {
                "first_paint_s": [round(x, 3) for x in times],
                "first_paint_median_s": round(statistics.median(times), 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
