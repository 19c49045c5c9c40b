"""Apply from zero vs the tutorial as a bash script vs the same as an Ansible playbook
(A B C A B C); no-op rerun of regwizard and Ansible; doctor on the healthy result, each
through the CLI and in-process; peak RSS.

Needs the lab (Linux, root): reuses a running one, else builds it. Prints JSON.
    bench/setup_ansible.sh                      # once: the Ansible venv, outside the repo
    .venv/bin/python bench/bench_apply.py [--rounds 2] [--noop 5] [--idle 6] [--bcrypt-cost 5]

Without the Ansible venv (--ansible-venv, default /srv/regwizard-bench/ansible) the
Ansible contender is skipped and the JSON says so.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from regwizard import lab as labmod
from regwizard.htpasswd import DEFAULT_COST, hash_password

HERE = Path(__file__).resolve().parent
EXE = str(Path(sys.executable).with_name("regwizard"))
ANSIBLE_VENV = "/srv/regwizard-bench/ansible"  # bench/setup_ansible.sh's default
PROBES = ("baseline", "ansible")  # the images baseline.sh and registry.yml push and pull
OUR_PROBE = f"{labmod.DOMAIN}/regwizard/probe:verify"  # what regwizard's proof pushes


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
                f"sed -i '/{labmod.DOMAIN}/d' /etc/hosts;"
                f"docker image rm -f {OUR_PROBE} >/dev/null 2>&1; true",
            ],
            check=False,
        )
    subprocess.run(["rm", "-rf", f"/etc/docker/certs.d/{labmod.DOMAIN}"], check=False)
    subprocess.run(["sed", "-i", f"/{labmod.DOMAIN}/d", "/etc/hosts"], check=False)
    # every contender's probe, regwizard's too: a from-zero run loads or builds its own
    probes = [f"{labmod.DOMAIN}/{p}/probe" for p in PROBES] + [OUR_PROBE]
    subprocess.run(
        ["docker", "image", "rm", "-f", *probes], capture_output=True, check=False, timeout=60
    )


class Ansible:
    """The playbook bench/ansible/registry.yml, with an inventory made from the LabState.

    The inventory and the password's vars file (mode 0600) live in a private temp dir;
    the password never reaches argv. Each from-zero run gets a fresh SSH ControlPath
    directory, so it opens its connections from scratch like bash and regwizard; the no-op
    reruns share one, as a user rerunning within ControlPersist's 60 s would.
    """

    def __init__(self, venv: Path, state: labmod.LabState, bcrypt_cost: int = DEFAULT_COST) -> None:
        self.playbook = str(venv / "bin" / "ansible-playbook")
        self.dir = Path(tempfile.mkdtemp(prefix="bench-ansible-"))
        python = str(venv / "bin" / "python")
        ssh_args = (
            f"-o UserKnownHostsFile={state.known_hosts} -o StrictHostKeyChecking=yes"
            " -o BatchMode=yes"
        )
        hosts = {
            name: {
                "ansible_host": state.nodes[name].ip,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": state.key_file,
                "ansible_ssh_common_args": ssh_args,
            }
            for name in ("node1", "node2")
        }
        hosts["localhost"] = {"ansible_connection": "local"}
        inventory = {"all": {"hosts": hosts, "vars": {"ansible_python_interpreter": python}}}
        # JSON is YAML: no YAML library needed here
        (self.dir / "inventory.yml").write_text(json.dumps(inventory, indent=2))
        fd = os.open(self.dir / "secret.yml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(
                json.dumps({"registry_password": state.verify_password, "bcrypt_cost": bcrypt_cost})
            )
        self.shared_cp = self.dir / "cp-noop"
        self.shared_cp.mkdir()
        self.runs = 0

    def argv(self) -> list[str]:
        inv, secret = self.dir / "inventory.yml", self.dir / "secret.yml"
        pb = HERE / "ansible" / "registry.yml"
        return [self.playbook, "-i", str(inv), "-e", f"@{secret}", str(pb)]

    def env(self, fresh: bool) -> dict[str, str]:
        self.runs += 1
        cp = self.dir / f"cp-{self.runs}" if fresh else self.shared_cp
        cp.mkdir(exist_ok=True)
        return {
            **os.environ,
            "ANSIBLE_CONFIG": str(HERE / "ansible" / "ansible.cfg"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp),
            "ANSIBLE_NOCOLOR": "1",
        }

    def from_zero(self) -> float:
        return timed(self.argv(), env=self.env(fresh=True))

    def noop(self) -> float:
        dt, rc, out, _ = run(self.argv(), env=self.env(fresh=False))
        if rc != 0:
            raise SystemExit(f"the Ansible no-op rerun failed:\n{out[-2000:]}")
        recap = out[out.rfind("PLAY RECAP") :]
        if re.search(r"changed=[1-9]", recap):
            raise SystemExit(f"the Ansible no-op rerun changed something:\n{recap}")
        return dt

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


PEAK_KB: dict[str, int] = {}  # the largest child's peak RSS, by program name


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str, str]:
    """Run argv to its end: (seconds, exit code, stdout, stderr). Reaped with wait4, so
    each program's own peak RSS is kept apart (regwizard's vs ansible-playbook's)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env)
        killer = threading.Timer(600, proc.kill)  # the same 600 s limit as before
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        dt = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        name = Path(argv[0]).name
        PEAK_KB[name] = max(PEAK_KB.get(name, 0), usage.ru_maxrss)
        out.seek(0)
        err.seek(0)
        return dt, proc.returncode, out.read(), err.read()


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    dt, rc, out, err = run(argv, env)
    if rc != 0:
        tail = err[-2000:] or out[-2000:]  # ansible-playbook reports on stdout
        raise SystemExit(f"failed: {' '.join(argv[:3])}…\n{tail}")
    return dt


def registry_cpu_s(state: labmod.LabState, container: str) -> float:
    """CPU seconds the registry's process on node1 has used (it checks a bcrypt hash on
    every authenticated request and signs every TLS handshake)."""
    c = labmod.node_docker(state.nodes["node1"]).containers.get(container)
    fields = Path(f"/proc/{c.attrs['State']['Pid']}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def idle(seconds: float) -> None:
    """Issue 15: before each timed run from zero the lab sits idle this long since its
    last teardown (dockerd's resolver caches /etc/hosts for 5 s after a lookup)."""
    if seconds > 0:
        time.sleep(seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--noop", type=int, default=5, help="no-op reruns and doctor runs")
    ap.add_argument(
        "--idle", type=float, default=0.0, help="seconds to sit idle before each from-zero run"
    )
    ap.add_argument(
        "--ansible-venv",
        default=ANSIBLE_VENV,
        help="the venv bench/setup_ansible.sh made (skipped if missing)",
    )
    ap.add_argument(
        "--bcrypt-cost",
        type=int,
        default=DEFAULT_COST,
        help="the verify user's bcrypt cost, for all three contenders (10: regwizard's "
        "default; 5: what the tutorial's `htpasswd -B` writes)",
    )
    args = ap.parse_args()
    venv = Path(args.ansible_venv)
    ansible_missing = not (venv / "bin" / "ansible-playbook").exists()
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
    if args.bcrypt_cost != DEFAULT_COST:
        for user in plan.users:
            if user.name == plan.verify_user:
                user.bcrypt = hash_password(state.verify_password, args.bcrypt_cost)
    plan_file = pwfile + ".toml"
    save_plan(plan, plan_file)
    apply = [EXE, "apply", plan_file, "--password-file", pwfile]
    os.environ["PYTHON"] = sys.executable
    os.environ["BCRYPT_COST"] = str(args.bcrypt_cost)  # baseline.sh's htpasswd line
    bash = ["bash", str(HERE / "baseline.sh"), state.key_file, state.known_hosts, n1, n2]
    bash.append(state.verify_password)
    ans = None if ansible_missing else Ansible(venv, state, args.bcrypt_cost)
    if ans is not None:
        atexit.register(ans.close)  # the password file goes, even when a run fails
    a, b, c = [], [], []
    for _ in range(args.rounds):
        reset(state)
        idle(args.idle)
        a.append(timed(apply))
        reset(state)
        idle(args.idle)
        b.append(timed(bash))
        if ans is not None:
            reset(state)
            idle(args.idle)
            c.append(ans.from_zero())
    reset(state)
    timed(apply)
    reg0, cli0 = registry_cpu_s(state, plan.registry.container), children_cpu_s()
    noop = [timed(apply) for _ in range(args.noop)]
    # where a no-op rerun's CPU goes: the registry's and the regwizard process's, per run
    noop_cpu = {
        "registry": round((registry_cpu_s(state, plan.registry.container) - reg0) / args.noop, 2),
        "regwizard_cli": round((children_cpu_s() - cli0) / args.noop, 2),
    }
    doctor = [
        timed([EXE, "doctor", plan_file, "--password-file", pwfile]) for _ in range(args.noop)
    ]
    # the same two in-process: what a long-lived caller (the wizard) pays, without the
    # interpreter start and imports of a fresh `regwizard` process
    from regwizard import engine
    from regwizard.doctor import diagnose
    from regwizard.plan import Secrets

    secrets = Secrets(verify_password=state.verify_password)
    engine.run(plan, secrets)  # imports and first connections out of the way
    from regwizard.steps.hosts_file import HostsFile

    noop_in, noop_in_serial, doctor_in = [], [], []
    for _ in range(args.noop):
        t = time.perf_counter()
        result = engine.run(plan, secrets)
        noop_in.append(time.perf_counter() - t)
        if not result.ok or result.changed:
            raise SystemExit(f"the no-op rerun changed or failed: {result.failure}")
        # the same rerun with verification only after every check (no early proof)
        HostsFile.settles_names = False
        try:
            t = time.perf_counter()
            engine.run(plan, secrets)
            noop_in_serial.append(time.perf_counter() - t)
        finally:
            HostsFile.settles_names = True
        t = time.perf_counter()
        report = diagnose(plan, secrets)
        doctor_in.append(time.perf_counter() - t)
        if not report.healthy:
            raise SystemExit("doctor found problems on a healthy setup")
    ans_noop: list[float] = []
    if ans is not None:
        reset(state)
        idle(args.idle)
        ans.from_zero()
        ans_noop = [ans.noop() for _ in range(args.noop)]
        ans.close()
    os.unlink(pwfile)
    os.unlink(plan_file)
    ma, mb = statistics.median(a), statistics.median(b)
    noop_median = statistics.median(noop)
    if ans is None:
        ansible: dict[str, object] = {
            "ansible_note": f"skipped: no {venv}/bin/ansible-playbook (run bench/setup_ansible.sh)"
        }
    else:
        mc, mcn = statistics.median(c), statistics.median(ans_noop)
        ansible = {
            "ansible_from_zero_s": [round(x, 2) for x in c],
            "ansible_ratio_median": round(mc / mb, 2),
            "ansible_noop_rerun_s": [round(x, 2) for x in ans_noop],
            "ansible_noop_rerun_median_s": round(mcn, 2),
            "apply_vs_ansible_from_zero_ratio": round(ma / mc, 2),
            "noop_rerun_vs_ansible_ratio": round(noop_median / mcn, 2),
            "ansible_peak_rss_mb": round(PEAK_KB.get("ansible-playbook", 0) / 1024, 1),
            "ansible_note": "bench/ansible/registry.yml: the same setup and the same login, "
            "push and pull check as bash; a rerun reports changed=0 and still runs the check",
        }
    print(
        json.dumps(
            {
                "apply_from_zero_s": [round(x, 2) for x in a],
                "bash_baseline_s": [round(x, 2) for x in b],
                "ratio_median": round(ma / mb, 2),
                "noop_rerun_s": [round(x, 2) for x in noop],
                "noop_rerun_median_s": round(noop_median, 2),
                "noop_rerun_cpu_s_per_run": noop_cpu,
                "noop_rerun_in_process_s": [round(x, 3) for x in noop_in],
                "noop_rerun_in_process_median_s": round(statistics.median(noop_in), 3),
                "noop_rerun_in_process_without_early_proof_median_s": round(
                    statistics.median(noop_in_serial), 3
                ),
                "doctor_s": [round(x, 2) for x in doctor],
                "doctor_median_s": round(statistics.median(doctor), 2),
                "doctor_in_process_median_s": round(statistics.median(doctor_in), 3),
                "peak_rss_mb_children": round(PEAK_KB.get("regwizard", 0) / 1024, 1),
                "note": "regwizard also runs preflight, health and full verification "
                "(anonymous refused, login, push, pull on 2 clients, catalog)",
                "idle_before_from_zero_s": args.idle,
                "bcrypt_cost": args.bcrypt_cost,
                **ansible,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
