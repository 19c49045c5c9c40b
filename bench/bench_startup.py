"""Start-up time of short CLI commands: wall time of a fresh ``python -m regwizard ...``
(median of --runs), and how many modules each one loads (which heavy ones among them).

    .venv/bin/python bench/bench_startup.py [--runs 11]

Needs no lab and touches no host: it runs ``--version``, ``plan check`` on a plan that
``plan new`` writes to a temporary directory, ``completion bash`` and ``apply --help``.
HOME points at an empty temporary directory (no ~/.ssh/config to read). Bytecode is
cached, as for an installed regwizard: PYTHONDONTWRITEBYTECODE is dropped for the
children, and each command runs once before it is timed (this writes __pycache__/
next to the sources; git ignores it). `python -m` puts the current directory first on
sys.path, so run it from the checkout to measure (e.g. an exported older commit). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("paramiko", "docker", "cryptography", "bcrypt", "yaml", "tomlkit", "textual", "rich")
PROBE = (
    "import runpy, sys, json\n"
    "sys.argv = ['regwizard', *json.loads(sys.argv[1])]\n"
    "try:\n"
    "    runpy.run_module('regwizard', run_name='__main__')\n"
    "except SystemExit:\n"
    "    pass\n"
    f"heavy = {HEAVY!r}\n"
    "print(json.dumps([len(sys.modules), sorted(h for h in heavy if h in sys.modules)]),"
    " file=sys.__stderr__)\n"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HOME": tmp}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        plan = str(Path(tmp) / "plan.toml")
        subprocess.run(
            [sys.executable, "-m", "regwizard", "plan", "new", "-o", plan],
            env=env,
            check=True,
            capture_output=True,
        )
        commands = {
            "--version": ["--version"],
            "plan check": ["plan", "check", plan],
            "completion bash": ["completion", "bash"],
            "apply --help": ["apply", "--help"],
        }
        out: dict[str, dict] = {}
        for name, argv in commands.items():
            times = []
            subprocess.run([sys.executable, "-m", "regwizard", *argv], env=env, capture_output=True)
            for _ in range(opts.runs):
                t0 = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "regwizard", *argv], env=env, capture_output=True
                )
                times.append(time.perf_counter() - t0)
            probe = subprocess.run(
                [sys.executable, "-c", PROBE, json.dumps(argv)],
                env=env,
                capture_output=True,
                text=True,
            )
            count, heavy = json.loads(probe.stderr.strip().splitlines()[-1])
            out[name] = {
                "median_s": round(statistics.median(times), 3),
                "min_s": round(min(times), 3),
                "max_s": round(max(times), 3),
                "modules": count,
                "heavy_loaded": heavy,
            }
        bare = []
        for _ in range(opts.runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], env=env, capture_output=True)
            bare.append(time.perf_counter() - t0)
        out["python -c pass"] = {"median_s": round(statistics.median(bare), 3)}
    print(
        json.dumps({"runs": opts.runs, "python": sys.version.split()[0], "results": out}, indent=2)
    )


if __name__ == "__main__":
    main()
