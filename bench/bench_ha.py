"""N concurrent pushes, then N concurrent pulls, of small distinct images through the
registry's one name: with 1 replica serving (node3's registry container stopped), then
with 2 (both running). Prints JSON: per replica count, push and pull throughput
(images/s), p50 / p95 latency (s) of one `docker push` / `docker pull`, and how many
requests each registry host served.

Two clients share the N: this machine and node2. The hosts-file step gives each client
the replicas in another order (Go tries them in file order), so with 2 replicas up this
machine uses node1 and node2 uses node3; with one up, both use node1.

Needs the HA lab with the HA plan applied (Linux, root):
    regwizard lab up --ha
    regwizard apply /var/lib/regwizard-lab/ha-plan.toml \\
        --s3-secret-file /var/lib/regwizard-lab/s3-secret \\
        --password-file /var/lib/regwizard-lab/verify-password
    .venv/bin/python bench/bench_ha.py [-n 20] [--rounds 1]

The images are built once on this machine (FROM scratch, one small distinct file each;
a new set per replica count and round, so every push uploads a new layer). This
machine's docker CLI pushes and pulls them by the registry's name, as the plan's verify
user. The lab's nodes share this machine's CPUs: see docs/benchmarks.md for what the
figures do and do not say about separate machines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

DOCKER_TIMEOUT = 300  # one push or pull of a tiny image; far above what it takes


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100), linear between the closest ranks (numpy's default)."""
    if not values:
        return math.nan
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(latencies: list[float], wall: float, failures: int) -> dict:
    """One phase's figures: throughput counts the images that made it."""
    done = len(latencies)
    return {
        "images": done,
        "failures": failures,
        "wall_s": round(wall, 3),
        "images_per_s": round(done / wall, 3) if wall > 0 else None,
        "p50_s": round(percentile(latencies, 50), 3) if latencies else None,
        "p95_s": round(percentile(latencies, 95), 3) if latencies else None,
    }


def report(n: int, rounds: int, results: dict[int, dict[str, dict]], meta: dict) -> dict:
    """The JSON printed: {"n", "rounds", "replicas": {"1": {"push", "pull"}, "2": ...}, ...}."""
    return {
        "n": n,
        "rounds": rounds,
        "replicas": {str(k): v for k, v in sorted(results.items())},
        **meta,
    }


def image_refs(registry: str, tag: str, n: int) -> list[str]:
    return [f"{registry}/bench-ha/img{i:02d}:{tag}" for i in range(n)]


def _docker(
    *args: str, input: bytes | None = None, node=None
) -> subprocess.CompletedProcess[bytes]:  # noqa: ANN001
    """`docker ARGS` on this machine (node None) or inside a lab node."""
    argv = ["docker", *args]
    if node is not None:
        argv = ["nsenter", "-t", str(node.init_pid), "-m", "-u", "-n", "--", *argv]
    return subprocess.run(argv, input=input, capture_output=True, timeout=DOCKER_TIMEOUT)


def _context(ref: str) -> bytes:
    """A build context as a tar (fed on stdin, so a node needs no shared directory)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (
            ("Dockerfile", b"FROM scratch\nCOPY payload /payload\n"),
            ("payload", ref.encode() + b"\n" + secrets.token_bytes(4096)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_images(refs: list[str], clients: list) -> None:  # noqa: ANN001
    """FROM scratch + one small distinct file, one build per image, each on the client
    that pushes it (done before timing)."""
    for i, ref in enumerate(refs):
        cp = _docker("build", "-q", "-t", ref, "-", input=_context(ref), node=_of(clients, i))
        if cp.returncode != 0:
            raise SystemExit(f"docker build {ref} failed: {cp.stderr.decode()[-500:]}")


def _of(clients: list, i: int):  # noqa: ANN001, ANN202
    return clients[i % len(clients)] if clients else None


def concurrently(verb: str, refs: list[str], clients: list | None = None):  # noqa: ANN201
    """`docker VERB ref` for every ref at once, ref i on client i mod len(clients):
    (latencies of the ones that worked, wall seconds of the whole batch, errors)."""
    clients = clients or [None]

    def one(i: int) -> tuple[float, str]:
        ref = refs[i]
        t = time.perf_counter()
        try:
            cp = _docker(verb, "-q", ref, node=_of(clients, i))
        except subprocess.TimeoutExpired:
            return time.perf_counter() - t, f"{ref}: no end within {DOCKER_TIMEOUT}s"
        dt = time.perf_counter() - t
        return dt, "" if cp.returncode == 0 else f"{ref}: {cp.stderr.decode()[-300:].strip()}"

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(refs)) as pool:
        out = list(pool.map(one, range(len(refs))))
    wall = time.perf_counter() - t0
    return [dt for dt, err in out if not err], wall, [err for _, err in out if err]


def _remove(refs: list[str], clients: list) -> None:  # noqa: ANN001
    for c in clients or [None]:
        _docker("image", "rm", "-f", *refs, node=c)


def phase(refs: list[str], clients: list | None = None) -> dict[str, dict]:
    """Push every ref at once; remove them on the clients; pull every ref at once."""
    clients = clients or [None]
    lat, wall, errs = concurrently("push", refs, clients)
    push = summary(lat, wall, len(errs))
    _remove(refs, clients)
    lat, wall, errs2 = concurrently("pull", refs, clients)
    pull = summary(lat, wall, len(errs2))
    if errs or errs2:
        print("\n".join(["errors:", *(errs + errs2)[:5]]), file=sys.stderr)
    _remove(refs, clients)
    return {"push": push, "pull": pull}


def _requests(client, name: str) -> int:  # noqa: ANN001
    """HTTP requests a registry container has logged so far (its access-log lines)."""
    return client.containers.get(name).logs().count(b'" 20')


def merge_rounds(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    """Several rounds of one replica count: the median of each figure."""
    import statistics

    if len(rounds) == 1:
        return rounds[0]
    out: dict[str, dict] = {}
    for op in ("push", "pull"):
        out[op] = {}
        for key in rounds[0][op]:
            vals = [r[op][key] for r in rounds if r[op][key] is not None]
            out[op][key] = round(statistics.median(vals), 3) if vals else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Concurrent pushes and pulls through 1 and 2 registry replicas (HA lab).",
        epilog="Needs `regwizard lab up --ha` and the HA plan applied; prints JSON.",
    )
    ap.add_argument("-n", type=int, default=20, help="concurrent pushes/pulls (default 20)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds per replica count (median)")
    ap.add_argument("--plan", help="the HA plan (default: the lab's ha-plan.toml)")
    args = ap.parse_args(argv)
    if not 1 <= args.n <= 200 or not 1 <= args.rounds <= 20:
        ap.error("-n must be 1..200 and --rounds 1..20")

    from regwizard import lab as labmod
    from regwizard.plan import load_plan

    state = labmod.LabState.load()
    plan_file = args.plan or (state.ha_plan_file if state else "")
    if state is None or not plan_file or "node3" not in state.nodes:
        raise SystemExit("the HA lab is not up: run `regwizard lab up --ha`, then apply its plan")
    plan = load_plan(plan_file)
    registry = plan.registry.address
    password = (labmod.STATE_DIR / "verify-password").read_text().strip()
    clients = [None, state.nodes["node2"]]  # this machine and node2
    for c in clients:
        login = _docker("login", registry, "-u", plan.verify.user, "--password-stdin",
                        input=password.encode(), node=c)  # fmt: skip
        if login.returncode != 0:
            raise SystemExit(f"docker login {registry} failed (is the HA plan applied?): "
                             f"{login.stderr.decode()[-300:]}")  # fmt: skip
    hosts = {"node1": state.nodes["node1"], "node3": state.nodes["node3"]}
    dockers = {name: labmod.node_docker(n, timeout=60) for name, n in hosts.items()}
    container = dockers["node3"].containers.get(plan.registry.container)
    results: dict[int, dict[str, dict]] = {}
    try:
        for replicas in (1, 2):
            if replicas == 1:
                container.stop(timeout=10)  # node3's registry down: node1 alone serves
            else:
                container.start()
                time.sleep(3)  # let it listen before the clients find it again
            runs = []
            since = {name: _requests(d, plan.registry.container) for name, d in dockers.items()}
            for r in range(args.rounds):
                refs = image_refs(registry, f"r{replicas}-{r}-{secrets.token_hex(3)}", args.n)
                build_images(refs, clients)
                runs.append(phase(refs, clients))
            results[replicas] = merge_rounds(runs)
            results[replicas]["requests_served"] = {
                name: _requests(d, plan.registry.container) - since[name]
                for name, d in dockers.items()
            }
    finally:
        container.reload()
        if container.status != "running":
            container.start()
        for d in dockers.values():
            d.close()
    meta = {
        "registry": registry,
        "replica_hosts": [plan.host.address, *(r.address for r in plan.replicas)],
        "cpus": os.cpu_count(),
        "clients": ["this machine", "node2"],
        "note": "every lab node shares this machine's CPUs, disk and kernel",
    }
    print(json.dumps(report(args.n, args.rounds, results, meta), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
