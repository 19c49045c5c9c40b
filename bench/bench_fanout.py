"""Fan-out: trust configured on N clients at once, N = 1, 4, 8. Prints JSON.

Needs the lab (Linux, root): reuses a running one, else builds it, then gives it 8
extra clients (`regwizard lab clients 8`: each its own namespaces, dockerd and sshd).
The registry on node1 is made healthy first; every measured run then starts from
clients with no trust at all: certs.d removed, probe images removed, and (with
--hosts-file) the /etc/hosts entry removed too.

    .venv/bin/python bench/bench_fanout.py [--rounds 2] [--sizes 1,4,8] [--hosts-file]
                                           [--bcrypt-cost 5]

Each run is a real `apply` of a plan whose clients are client1..clientN: preflight on
every host, the trust step on every client, then the full verification (anonymous
push refused, login, push from client1, a pull with digest check on every client,
the catalog). Sizes run in the order 1 4 8 8 4 1 (A B C C B A).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

from regwizard import engine
from regwizard import lab as labmod
from regwizard.htpasswd import hash_password
from regwizard.plan import Plan, Secrets, User, load_plan, parse_plan


def reset_client(node: labmod.Node, hosts_file: bool) -> None:
    script = (
        f"rm -rf /etc/docker/certs.d/{labmod.DOMAIN};"
        "docker images -q 'reg.lab.test/regwizard/probe' | xargs -r docker rmi -f >/dev/null;"
    )
    if hosts_file:
        script += f"sed -i '/{labmod.DOMAIN}/d' /etc/hosts;"
    else:  # name resolution is in place (as DNS would be): only trust is configured
        script += (
            f"grep -q '{labmod.DOMAIN}' /etc/hosts || "
            f"echo '{labmod.NODE_IPS['node1']}\t{labmod.DOMAIN}' >> /etc/hosts;"
        )
    labmod.node_exec(node, ["sh", "-c", script], check=True)


def node_cpu_s(node: labmod.Node) -> float:
    """CPU seconds used so far by a node's processes and containers, reaped children
    included (sshd's sessions and the docker CLIs they ran count in sshd's cutime)."""
    total = 0
    pids = set(labmod._netns_pids(node.netns))
    # its containers (the registry) have network namespaces of their own: find them by
    # the cgroup parent the lab gives each node's dockerd
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if f"/rwlab-{node.name}/" in (d / "cgroup").read_text():
                    pids.add(int(d.name))
            except OSError:
                continue
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def fanout_plan(state: labmod.LabState, n: int, users) -> Plan:
    names = [f"{labmod.CLIENT_PREFIX}{i}" for i in range(1, n + 1)]
    plan = parse_plan(labmod.lab_plan_text(state, clients=names))
    if users:
        plan.users = users
    return plan


def one_run(state: labmod.LabState, n: int, secrets: Secrets, hosts_file: bool, users) -> dict:
    for i in range(1, n + 1):
        reset_client(state.nodes[f"{labmod.CLIENT_PREFIX}{i}"], hosts_file)
    plan = fanout_plan(state, n, users)
    marks: dict[tuple[str, str], list[float]] = {}

    def emit(ev) -> None:
        kind = type(ev).__name__
        if kind in ("StepStarted", "StepFinished"):
            marks.setdefault((ev.step, kind), []).append(time.perf_counter())

    nodes = [state.nodes["node1"]] + [
        state.nodes[f"{labmod.CLIENT_PREFIX}{i}"] for i in range(1, n + 1)
    ]
    cpu0 = [node_cpu_s(x) for x in nodes]
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    result = engine.run(plan, secrets, emit=emit)
    total = time.perf_counter() - t
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu1 = [node_cpu_s(x) for x in nodes]
    registry_cpu = cpu1[0] - cpu0[0]
    clients_cpu = sum(b - a for a, b in zip(cpu0[1:], cpu1[1:], strict=True))
    regwizard_cpu = (me1.ru_utime + me1.ru_stime) - (me0.ru_utime + me0.ru_stime)
    if not result.ok:
        raise SystemExit(f"N={n}: the run failed: {result.failure}")
    changed = sum(1 for s in result.steps if s.status == "changed" and s.step == "trust")
    if changed != n:
        raise SystemExit(f"N={n}: trust changed on {changed} clients, expected {n}")

    def span(step: str) -> float:
        return max(marks[(step, "StepFinished")]) - min(marks[(step, "StepStarted")])

    return {
        "total_s": total,
        "trust_s": span("trust"),
        "hosts_file_s": span("hosts-file") if ("hosts-file", "StepStarted") in marks else 0.0,
        "verify_s": span("verify"),
        "pulled_on": len((result.verification.trust if result.verification else {}) or {}),
        "cpu_registry_host_s": registry_cpu,
        "cpu_clients_s": clients_cpu,
        "cpu_regwizard_s": regwizard_cpu,
        # all the lab's machines share this machine's cores: 1.0 = every core busy
        "cpu_saturation": (registry_cpu + clients_cpu + regwizard_cpu)
        / (total * (os.cpu_count() or 1)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2, help="A B C C B A blocks")
    ap.add_argument("--sizes", default="1,4,8")
    ap.add_argument("--hosts-file", action="store_true", help="also add the /etc/hosts entry")
    ap.add_argument("--keep-clients", action="store_true", help="leave the extra clients up")
    ap.add_argument(
        "--bcrypt-cost",
        type=int,
        help="hash the verify user at this cost for the runs (the lab plan's is 10); "
        "the registry is restored to the lab plan afterwards",
    )
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    state = labmod.LabState.load()
    if state is None or not labmod.status().get("up"):
        state = labmod.up()
    t = time.perf_counter()
    state = labmod.ensure_clients(max(sizes))
    build_s = time.perf_counter() - t
    password = Path(labmod.STATE_DIR / "verify-password").read_text().strip()
    secrets = Secrets(verify_password=password)
    users = None
    if args.bcrypt_cost:
        users = [User(state.verify_user, hash_password(password, args.bcrypt_cost))]
    # the registry itself healthy first (with the measured users): what is measured is
    # the clients' side
    base = engine.run(fanout_plan(state, 1, users), secrets)
    if not base.ok:
        raise SystemExit(f"the lab plan does not verify: {base.failure}")
    order = []
    for _ in range(args.rounds):
        order += sizes + sizes[::-1]
    runs: dict[int, list[dict]] = {n: [] for n in sizes}
    for n in order:
        runs[n].append(one_run(state, n, secrets, args.hosts_file, users))
    if users:
        engine.run(load_plan(state.plan_file), secrets)  # the lab plan's htpasswd again
    if not args.keep_clients:
        labmod.ensure_clients(0)

    def med(n: int, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[n]), 3)

    out = {
        "clients_built_s": round(build_s, 2),
        "hosts_file_managed": args.hosts_file,
        "bcrypt_cost": args.bcrypt_cost or 10,
        "cores": os.cpu_count(),
        "order": order,
        "by_n": {
            str(n): {
                "total_s": [round(r["total_s"], 3) for r in runs[n]],
                "median_total_s": med(n, "total_s"),
                "median_trust_step_s": med(n, "trust_s"),
                "median_verify_s": med(n, "verify_s"),
                "median_hosts_file_s": med(n, "hosts_file_s"),
                "pulled_on": runs[n][0]["pulled_on"],
                "median_cpu_registry_host_s": med(n, "cpu_registry_host_s"),
                "median_cpu_clients_s": med(n, "cpu_clients_s"),
                "median_cpu_regwizard_s": med(n, "cpu_regwizard_s"),
                "median_cpu_saturation": med(n, "cpu_saturation"),
            }
            for n in sizes
        },
    }
    lo, hi = min(sizes), max(sizes)
    out[f"ratio_total_N{hi}_vs_N{lo}"] = round(med(hi, "total_s") / med(lo, "total_s"), 2)
    out[f"ratio_trust_step_N{hi}_vs_N{lo}"] = round(med(hi, "trust_s") / med(lo, "trust_s"), 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
