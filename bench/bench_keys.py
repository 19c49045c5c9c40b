"""Key-press latency while a run streams its log, in a real terminal (tmux, 80x24).

Each sample: Ctrl+Q is sent with `tmux send-keys` while the Run screen streams log lines;
the time until the "Quit while a run is in progress?" dialog is on the terminal is one
latency; Enter ("Keep running") until it is gone is another. Every fifth sample does the
same with Escape ("Cancel the run?"), reported apart: Textual holds a lone Escape for
ESCDELAY (100 ms) to tell it from an escape sequence. The run is never stopped.

    .venv/bin/python bench/bench_keys.py --mode flood [--rate 2000] [--samples 20]
    .venv/bin/python bench/bench_keys.py --mode lab   [--samples 6]

flood: the wizard's real Run screen and worker, fed by a backend that emits log lines
       at --rate lines/s (through the same emit callback as the engine) for as long as
       the samples take. The worst case: far more lines than any real run produces.
lab:   the real engine on the lab plan, from zero (the lab is reset first, as in
       bench_apply.py), so the log is the real one.
Prints JSON. tmux's capture-pane is polled every few ms, which bounds the resolution.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SESSION = "rwbench-keys"
DIALOG = "Cancel the run?"
QUIT_DIALOG = "Quit while a run"


# ---------------------------------------------------------------- the child (in tmux)


def child(mode: str, rate: int, plan_file: str, password: str) -> None:
    from regwizard.app import RegwizardApp
    from regwizard.backend import EngineBackend
    from regwizard.events import LogLine, RunFinished, RunResult, StepFinished, StepStarted
    from regwizard.plan import Secrets, load_plan

    class FloodBackend(EngineBackend):
        """The engine's backend, except that run() streams log lines at a fixed rate."""

        def run(self, plan, secrets, *, emit, cancel, dry_run=False):
            emit(StepStarted("container", "node1", "Registry container"))
            n, t0 = 0, time.monotonic()
            while not cancel.is_set():
                due = int((time.monotonic() - t0) * rate)
                while n < due:
                    emit(LogLine("container", "node1", f"flood line {n}: layer 4f3c2b1a pushed"))
                    n += 1
                if cancel.wait(0.005) or time.monotonic() - t0 > 600:
                    break
            emit(StepFinished("container", "node1", "unchanged", 0.0, "done", ()))
            result = RunResult(ok=False, steps=[])
            emit(RunFinished(result))
            return result

    backend = FloodBackend() if mode == "flood" else EngineBackend()
    app = RegwizardApp(
        backend=backend,
        plan=load_plan(plan_file),
        plan_path=Path(plan_file),
        start_at="review",
        secrets=Secrets(verify_password=password),
    )
    app.run()


# ---------------------------------------------------------------- the parent


def tmux(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, **kw)


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION).stdout


def wait(pred, timeout: float = 20) -> float:
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        if pred(screen()):
            return time.perf_counter() - t
        time.sleep(0.002)
    raise SystemExit("timed out; the screen was:\n" + screen())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("flood", "lab"), default="flood")
    ap.add_argument("--rate", type=int, default=2000, help="flood: log lines per second")
    ap.add_argument("--samples", type=int, default=20, help="key presses (open + close)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    from regwizard import lab as labmod

    if args.child:
        child(args.mode, args.rate, os.environ["RW_PLAN"], os.environ.pop("RW_PASSWORD"))
        return
    if not shutil.which("tmux"):
        raise SystemExit("tmux is needed: apt-get install tmux")
    state = labmod.LabState.load()
    if state is None or not labmod.status().get("up"):
        state = labmod.up()
    if args.mode == "lab":
        sys.path.insert(0, str(HERE))
        from bench_apply import reset

        reset(state)
    env = {**os.environ, "RW_PLAN": state.plan_file, "RW_PASSWORD": state.verify_password}
    env["TERM"] = "xterm-256color"
    tmux("kill-session", "-t", SESSION)
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--mode", args.mode]
    argv += ["--rate", str(args.rate)]
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", SESSION, "-x", "80", "-y", "24", *argv],
        check=True,
        env=env,
    )
    latencies: list[float] = []
    escapes: list[float] = []
    lines_seen = 0
    try:
        wait(lambda s: "Review" in s)
        tmux("send-keys", "-t", SESSION, "C-n")  # Run
        wait(lambda s: "Setting up the registry" in s)
        t_run = time.perf_counter()
        for i in range(args.samples):
            if "Done" in screen():
                break  # lab mode: the run ended before all samples were taken
            # Ctrl+Q opens "Quit while a run is in progress?"; Enter answers the focused
            # "Keep running". Every fifth sample uses Escape both ways instead: Textual
            # waits ESCDELAY (100 ms) to tell a lone Escape from an escape sequence.
            esc = i % 5 == 4
            time.sleep(0.05)
            tmux("send-keys", "-t", SESSION, "Escape" if esc else "C-q")
            dialog = DIALOG if esc else QUIT_DIALOG
            (escapes if esc else latencies).append(wait(lambda s, d=dialog: d in s, 10))
            time.sleep(0.05)
            tmux("send-keys", "-t", SESSION, "Escape" if esc else "Enter")
            (escapes if esc else latencies).append(wait(lambda s, d=dialog: d not in s, 10))
        run_s = time.perf_counter() - t_run
        last = [x for x in screen().splitlines() if "flood line" in x]
        if last:
            lines_seen = int(last[-1].split("flood line ")[1].split(":")[0])
    finally:
        tmux("kill-session", "-t", SESSION)
    if not latencies:
        raise SystemExit("no sample taken: the run ended first")
    lat = sorted(latencies)
    print(
        json.dumps(
            {
                "mode": args.mode,
                "rate_lines_per_s": args.rate if args.mode == "flood" else None,
                "samples": len(lat),
                "key_latency_ms_median": round(statistics.median(lat) * 1000, 1),
                "key_latency_ms_p95": round(lat[int(0.95 * (len(lat) - 1))] * 1000, 1),
                "key_latency_ms_max": round(lat[-1] * 1000, 1),
                "escape_key_latency_ms_median": round(statistics.median(escapes) * 1000, 1)
                if escapes
                else None,
                "streamed_s": round(run_s, 2),
                "last_line_on_screen": lines_seen or None,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
