"""Two registry hosts on SeaweedFS object storage, one name, failover (issue 16).

The lab gains node3 and SeaweedFS (a master, a filer and the S3 gateway on node1, volume
servers on node1 and node3) through ``lab_ha.ensure_ha``. The plan is the lab's HA plan
with its own name, port, container and directories, so the lab's one-host registry on
node1 (reg.lab.test:443) stays as the other tests expect it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import warnings

import pytest

from regwizard import lab as labmod
from regwizard import lab_ha
from regwizard.facts.registry import CRASH_WINDOW, interpret
from regwizard.plan import load_plan, save_plan

from .conftest import node_sh

pytestmark = pytest.mark.lab

DOMAIN = "ha.lab.test"
PORT = 5443
CONTAINER = "registry-ha"
CONFIG_DIR = "/etc/regwizard-ha"
REGISTRY_HOSTS = ("node1", lab_ha.HA_NODE)
SETTLE = 3.0  # seconds a (re)started registry runs before the test relies on it
STARTED = int(time.time())  # the containers' docker events since then explain a failure


@pytest.fixture(scope="module")
def ha(lab, tmp_path_factory):
    """The running lab with its HA parts, and an HA plan of its own (mode 0600)."""
    state = lab_ha.ensure_ha()
    plan = load_plan(state.ha_plan_file)
    plan.registry.domain = plan.certificate.common_name = DOMAIN
    plan.registry.port = PORT
    plan.registry.container = CONTAINER
    plan.registry.config_dir = CONFIG_DIR
    plan.registry.storage = "/opt/registry-ha"  # empty: never the one-host lab's data
    plan.storage.root_directory = f"/ha-test-{os.getpid()}"  # this run's own prefix
    d = tmp_path_factory.mktemp("ha")
    path = d / "ha-plan.toml"
    save_plan(plan, path)
    yield state, str(path)
    for name in REGISTRY_HOSTS:
        node_sh(state, name, f"docker rm -f {CONTAINER} >/dev/null 2>&1; true", check=False)


def cli(*args: str, check_rc: int | None = 0) -> subprocess.CompletedProcess[str]:
    d = labmod.STATE_DIR
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGWIZARD_S3")}
    cp = subprocess.run(
        [sys.executable, "-m", "regwizard", *args, "--password-file", f"{d}/verify-password"]
        + ["--s3-secret-file", f"{d}/s3-secret"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    if check_rc is not None:
        assert cp.returncode == check_rc, cp.stdout + cp.stderr
    return cp


def docker_on(state, name: str, *argv: str, input: bytes | None = None) -> str:
    cp = labmod.node_exec(state.nodes[name], ["docker", *argv], input=input, check=False)
    assert cp.returncode == 0, (argv, cp.stderr.decode())
    return cp.stdout.decode()


def local_docker(*argv: str, input: str | None = None) -> str:
    cp = subprocess.run(
        ["docker", *argv], input=input, capture_output=True, text=True, timeout=300, check=False
    )
    assert cp.returncode == 0, (argv, cp.stderr)
    return cp.stdout


def registry_container(state, name: str):
    return labmod.node_docker(state.nodes[name]).containers.get(CONTAINER)


def catalog(state, name: str) -> list[str]:
    from regwizard.facts import tls

    anchor = (labmod.STATE_DIR / "ha-anchor.pem").read_bytes()
    status, _, body = tls.request(
        DOMAIN,
        state.nodes[name].ip,
        PORT,
        anchor,
        "/v2/_catalog?n=1000",
        auth=("demo", state.verify_password),
    )
    assert status == 200, (name, status, body[:200])
    return json.loads(body)["repositories"]


def test_ha_apply_failover_rerun_and_doctor(ha):
    state, plan_file = ha
    ref = f"{DOMAIN}:{PORT}/failover/probe"

    # 1. apply of the HA plan exits 0, with one line per registry host
    cp = cli("apply", plan_file, "--json")
    report = json.loads(cp.stdout)
    assert report["ok"], cp.stdout
    replicas = {r["client"]: r for r in report["replicas"]}
    assert set(replicas) == set(REGISTRY_HOSTS) and all(r["ok"] for r in replicas.values())
    # the secret key never reaches the container's inspect data or the plan
    secret = (labmod.STATE_DIR / "s3-secret").read_text().strip()
    for name in REGISTRY_HOSTS:
        attrs = registry_container(state, name).attrs
        assert secret not in json.dumps(attrs)
        assert not [e for e in attrs["Config"]["Env"] or [] if e.startswith("AWS_")]
    assert secret not in open(plan_file).read()
    # clients map the one name to both registry hosts
    hosts = open("/etc/hosts").read()
    ips = {state.nodes[n].ip for n in REGISTRY_HOSTS}
    assert {ln.split()[0] for ln in hosts.splitlines() if DOMAIN in ln.split()[1:2]} == ips
    # the CA both hosts' certificate chains to, for this test's own catalog reads
    ca = node_sh(state, "node1", f"cat {CONFIG_DIR}/ca/ca.crt")
    (labmod.STATE_DIR / "ha-anchor.pem").write_text(ca)

    # 2. failover: node3's registry stopped, a push and a pull through the name still work
    # (Go's dialer is refused by node3's port and tries node1)
    pw = state.verify_password
    local_docker("login", f"{DOMAIN}:{PORT}", "-u", "demo", "--password-stdin", input=pw)
    import docker

    from regwizard.steps.verify import probe_image

    local = docker.DockerClient(base_url=f"unix://{labmod.NODE0_SOCK}", timeout=120)
    # a layer no registry has seen: the push really uploads
    local.images.load(
        probe_image(f"{ref}:latest", local.version()["Arch"], f"failover {time.time_ns()}")
    )
    registry_container(state, lab_ha.HA_NODE).stop(timeout=10)
    try:
        out = local_docker("push", ref)
        pushed = next(w for w in out.split() if w.startswith("sha256:"))
        # now node1's stopped and node3's back: node2 pulls what was pushed through node1
        registry_container(state, lab_ha.HA_NODE).start()
        _wait_settled(state, lab_ha.HA_NODE)
        registry_container(state, "node1").stop(timeout=10)
        docker_on(state, "node2", "login", f"{DOMAIN}:{PORT}", "-u", "demo",
                  "--password-stdin", input=pw.encode())  # fmt: skip
        docker_on(state, "node2", "pull", ref)
        got = docker_on(state, "node2", "image", "inspect", "-f", "{{json .RepoDigests}}", ref)
        assert any(d.endswith(pushed) for d in json.loads(got)), (got, pushed)
    finally:
        for name in REGISTRY_HOSTS:
            c = registry_container(state, name)
            c.reload()
            if c.status != "running":
                c.start()
        for name in REGISTRY_HOSTS:
            _wait_settled(state, name)
        docker_on(state, "node2", "logout", f"{DOMAIN}:{PORT}")
        local_docker("logout", f"{DOMAIN}:{PORT}")
    # both back: the catalog is the same through every registry host, read once each has
    # run CRASH_WINDOW, so the rerun below meets registries apply calls steady
    seen = {name: _wait_settled(state, name, CRASH_WINDOW + 1) for name in REGISTRY_HOSTS}
    assert "failover/probe" in seen["node1"] and seen["node1"] == seen[lab_ha.HA_NODE], seen

    # 3. a rerun changes nothing (and proves everything again)
    cp = cli("apply", plan_file, "--json")
    again = json.loads(cp.stdout)
    moved = [s for s in again["steps"] if s["status"] != "unchanged"]
    assert again["ok"] and again["changed"] == [], (moved, again["failure"], _containers(state))

    # 4. doctor: healthy, then a replica with another http secret is flagged (never shown)
    cli("doctor", plan_file)
    cfg = f"{CONFIG_DIR}/registry/config.yml"
    node_sh(state, lab_ha.HA_NODE, f"cp -p {cfg} {cfg}.test-saved")
    other = hashlib.sha256(b"another secret").hexdigest()
    node_sh(state, lab_ha.HA_NODE, f"sed -i 's/^  secret: .*/  secret: \"{other}\"/' {cfg}")
    cp = cli("doctor", plan_file, "--json", check_rc=1)
    found = json.loads(cp.stdout)
    ids = {(f["host"], f["id"]) for f in found["findings"] if f["severity"] == "fail"}
    assert (lab_ha.HA_NODE, "http-secret-differs") in ids, cp.stdout
    assert other not in cp.stdout + cp.stderr
    # apply gives node3 the shared secret back (its file backed up) and restarts it
    cp = cli("apply", plan_file, "--json")
    fixed = json.loads(cp.stdout)
    assert fixed["ok"], cp.stdout
    assert f"config@{lab_ha.HA_NODE}" in fixed["changed"], fixed["changed"]
    cli("doctor", plan_file)


def _containers(state) -> str:
    """Each registry container's state, docker events and last log lines: why it moved."""
    out = []
    for name in REGISTRY_HOSTS:
        c = registry_container(state, name)
        st = c.attrs["State"]
        keep = ("Status", "Restarting", "ExitCode", "Error", "StartedAt", "FinishedAt")
        state_now = {k: st.get(k) for k in keep}
        out.append(f"{name}: RestartCount {c.attrs['RestartCount']} {state_now}")
        api = labmod.node_docker(state.nodes[name]).api
        seen = api.events(
            since=STARTED, until=int(time.time()) + 1, filters={"container": CONTAINER}, decode=True
        )
        for ev in seen:
            code = ev.get("Actor", {}).get("Attributes", {}).get("exitCode")
            out.append(f"  {ev.get('time')} {ev.get('Action')}" + (f" exit {code}" if code else ""))
        out.append(c.logs(tail=15, timestamps=True).decode(errors="replace"))
    return "\n".join(out)


def _wait_settled(state, name: str, settle: float = SETTLE, timeout: float = 60) -> list[str]:
    """The catalog, read (authenticated, over verified TLS) once the registry on ``name``
    has run ``settle`` seconds and apply would not call it crash-looping (restarted by its
    policy under CRASH_WINDOW ago). A policy restart is reported as a warning with the
    container's events and logs: seen in CI, once a registry that answered TLS and then
    dropped the next handshake, once a rerun that found one freshly restarted."""
    end = time.monotonic() + timeout
    warned = False
    while True:
        facts = interpret(registry_container(state, name).attrs, lambda _path: (None, ""))
        if facts.restart_count and not warned:
            warned = True
            why = f"its policy restarted the registry on {name}\n{_containers(state)}"
            warnings.warn(why, stacklevel=2)
        if facts.running and not facts.crash_looping() and (facts.up_for() or 0) >= settle:
            try:
                return catalog(state, name)
            except (OSError, AssertionError):
                pass
        if time.monotonic() > end:
            raise AssertionError(f"the registry on {name} did not settle\n{_containers(state)}")
        time.sleep(0.3)
