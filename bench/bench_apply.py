"""Apply from zero vs the tutorial as a bash script (A B A B); no-op rerun and doctor on
the healthy result, each through the CLI and in-process; peak RSS.

Needs the lab (Linux, root): reuses a running one, else builds it. Prints JSON.
    .venv/bin/python bench/bench_apply.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from regwizard import lab as labmod

HERE = Path(__file__).resolve().parent
EXE = str(Path(sys.executable).with_name("regwizard"))


def reset(state: labmod.LabState) -> None:
    """Remove what either contender made, so each round starts from zero."""
    for name in ("node1", "node2"):
        labmod.node_exec(
            state.nodes[name],
            [
                "sh",
                "-c",
                "docker rm -f $(docker ps -aq) >/dev/null 2>&1; docker volume prune -f >/dev/null 2>&1;"
                "rm -rf /etc/regwizard /root/certs /root/auth /opt/docker-image /etc/docker/certs.d;"
                f"sed -i '/{labmod.DOMAIN}/d' /etc/hosts",
            ],
            check=False,
        )
    subprocess.run(["rm", "-rf", f"/etc/docker/certs.d/{labmod.DOMAIN}"], check=False)
    subprocess.run(["sed", "-i", f"/{labmod.DOMAIN}/d", "/etc/hosts"], check=False)


def timed(argv: list[str], **kw) -> float:
    t = time.perf_counter()
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)
    dt = time.perf_counter() - t
    if cp.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv[:3])}…\n{cp.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--noop", type=int, default=5, help="no-op reruns and doctor runs")
    args = ap.parse_args()
    state = labmod.LabState.load()
    if state is None or not labmod.status().get("up"):
        state = labmod.up()
    n1, n2 = state.nodes["node1"].ip, state.nodes["node2"].ip
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write(state.verify_password + "\n")
        pwfile = f.name
    # the same certificate as the tutorial: self-signed RSA-4096
    from regwizard.plan import load_plan, save_plan

    plan = load_plan(state.plan_file)
    plan.certificate.mode, plan.certificate.key = "self-signed", "rsa-4096"
    plan_file = pwfile + ".toml"
    save_plan(plan, plan_file)
    apply = [EXE, "apply", plan_file, "--password-file", pwfile]
    os.environ["PYTHON"] = sys.executable
    bash = ["bash", str(HERE / "baseline.sh"), state.key_file, state.known_hosts, n1, n2]
    bash.append(state.verify_password)
    a, b = [], []
    for _ in range(args.rounds):
        reset(state)
        a.append(timed(apply))
        reset(state)
        b.append(timed(bash))
    reset(state)
    timed(apply)
    noop = [timed(apply) for _ in range(args.noop)]
    doctor = [
        timed([EXE, "doctor", plan_file, "--password-file", pwfile]) for _ in range(args.noop)
    ]
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # the same two in-process: what a long-lived caller (the wizard) pays, without the
    # interpreter start and imports of a fresh `regwizard` process
    from regwizard import engine
    from regwizard.doctor import diagnose
    from regwizard.plan import Secrets

    secrets = Secrets(verify_password=state.verify_password)
    engine.run(plan, secrets)  # imports and first connections out of the way
    noop_in, doctor_in = [], []
    for _ in range(args.noop):
        t = time.perf_counter()
        result = engine.run(plan, secrets)
        noop_in.append(time.perf_counter() - t)
        if not result.ok or result.changed:
            raise SystemExit(f"the no-op rerun changed or failed: {result.failure}")
        t = time.perf_counter()
        report = diagnose(plan, secrets)
        doctor_in.append(time.perf_counter() - t)
        if not report.healthy:
            raise SystemExit("doctor found problems on a healthy setup")
    os.unlink(pwfile)
    os.unlink(plan_file)
    ma, mb = statistics.median(a), statistics.median(b)
    print(
        json.dumps(
            {
                "apply_from_zero_s": [round(x, 2) for x in a],
                "bash_baseline_s": [round(x, 2) for x in b],
                "ratio_median": round(ma / mb, 2),
                "noop_rerun_s": [round(x, 2) for x in noop],
                "noop_rerun_median_s": round(statistics.median(noop), 2),
                "noop_rerun_in_process_s": [round(x, 3) for x in noop_in],
                "noop_rerun_in_process_median_s": round(statistics.median(noop_in), 3),
                "doctor_s": [round(x, 2) for x in doctor],
                "doctor_median_s": round(statistics.median(doctor), 2),
                "doctor_in_process_median_s": round(statistics.median(doctor_in), 3),
                "peak_rss_mb_children": round(rss_kb / 1024, 1),
                "note": "regwizard also runs preflight, health and full verification "
                "(anonymous refused, login, push, pull on 2 clients, catalog)",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
