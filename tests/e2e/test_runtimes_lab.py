"""Beyond Docker, on the real lab: a Docker client (node0), a podman client (podman1,
which has Docker too) and a containerd-only client (k8s1: no dockerd, a standalone
containerd as a Kubernetes node has it). Each runtime proves trust with its own client.

Tenant: domain repair.lab.test, port 5530, container rp-rt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from regwizard import engine
from regwizard import lab as labmod
from regwizard.doctor import diagnose
from regwizard.events import StepFinished
from regwizard.plan import Connection, Secrets, save_plan

from .test_repair_lab import DOMAIN, cleanup, drop_hosts_everywhere, problems, tenant_plan

pytestmark = pytest.mark.lab

EXE = os.path.join(os.path.dirname(sys.executable), "regwizard")
PORT = 5530
ADDRESS = f"{DOMAIN}:{PORT}"
CONFIG = "/etc/containerd/config.toml"


@pytest.fixture(scope="module")
def rt_lab(lab):
    """The lab with podman1 and k8s1 (built on demand; `lab down` removes them)."""
    return labmod.ensure_runtime_clients()


def on(state, name: str, script: str, check: bool = True) -> str:
    cp = labmod.node_exec(state.nodes[name], ["sh", "-c", script], check=check)
    return cp.stdout.decode(errors="replace")


def starts(state) -> int:
    """How many times the lab's service manager has started containerd on k8s1."""
    return len(on(state, "k8s1", "cat /run/containerd-lab.starts", check=False).split())


def restore_k8s1(state) -> None:
    """k8s1's config.toml as the lab made it (config_path set), containerd restarted."""
    labmod.node_exec(
        state.nodes["k8s1"],
        ["sh", "-c", f"cat > {CONFIG} && service containerd restart"],
        input=labmod.CONTAINERD_LAB_CONFIG.encode(),
    )


def rt_plan(state, lab_plan):
    plan = tenant_plan(lab_plan, "rt", PORT)

    def conn(name: str, **kw) -> Connection:
        n = state.nodes[name]
        return Connection(
            address=n.ip, key_file=state.key_file, host_key=n.host_key, label=name, **kw
        )

    plan.clients = [
        Connection(),  # node0: Docker
        conn("podman1", runtimes=["docker", "podman"]),
        conn("k8s1", runtimes=["containerd"], manage_containerd_config=True),
    ]
    return plan


def forget_tenant(state) -> None:
    for name in ("podman1", "k8s1"):
        on(state, name, f"rm -rf '/etc/containers/certs.d/{ADDRESS}' "
                        f"'/etc/containerd/certs.d/{ADDRESS}' '/etc/docker/certs.d/{ADDRESS}'",
           check=False)  # fmt: skip


def test_docker_podman_and_containerd_clients_prove_trust(rt_lab, lab_plan, tmp_path):
    state = rt_lab
    plan = rt_plan(state, lab_plan)
    secrets = Secrets(verify_password=state.verify_password)
    try:
        cleanup(state, plan)
        forget_tenant(state)
        # a Kubernetes node whose CRI does not read certs.d yet: apply may set it
        # (manage_containerd_config) and restarts containerd on that run only
        on(state, "k8s1", f"sed -i '/config_path/d' {CONFIG} && service containerd restart")
        before = starts(state)

        events: list = []
        first = engine.run(plan, secrets, emit=events.append)
        assert first.ok, first.failure
        v = first.verification
        proofs = {(p.client, p.runtime): p for p in v.proofs}
        assert proofs[("podman1", "podman")].ok and proofs[("podman1", "podman")].pulled
        assert v.push_digest[7:19] in proofs[("podman1", "podman")].how
        ctr = proofs[("k8s1", "containerd")]
        assert ctr.ok and "401" in ctr.how and not ctr.pulled
        assert v.trust == {"this machine": True, "podman1": True}  # Docker pulls
        done = {(e.step, e.host): e.status for e in events if isinstance(e, StepFinished)}
        assert done[("containerd-config", "k8s1")] == "changed"
        assert done[("trust-containerd", "k8s1")] == "changed"
        assert done[("trust-podman", "podman1")] == "changed"
        assert ("trust", "k8s1") not in done  # no Docker there
        assert starts(state) == before + 1
        assert 'config_path = "/etc/containerd/certs.d"' in on(state, "k8s1", f"cat {CONFIG}")
        assert on(state, "k8s1", f"cat /etc/containerd/certs.d/{ADDRESS}/ca.crt").startswith(
            "-----BEGIN CERTIFICATE"
        )

        # a rerun changes nothing and does not restart containerd
        again = engine.run(plan, secrets)
        assert again.ok and not again.changed, [s.step for s in again.changed]
        assert starts(state) == before + 1
        report = diagnose(plan, secrets)
        assert report.exit_code == 0, problems(report)
        assert {f.check for f in report.findings} >= {"containerd", "podman"}

        # one runtime's ca.crt gone: doctor names that client and runtime; apply fixes it
        for name, runtime, path in (
            ("podman1", "podman", f"/etc/containers/certs.d/{ADDRESS}/ca.crt"),
            ("k8s1", "containerd", f"/etc/containerd/certs.d/{ADDRESS}/ca.crt"),
        ):
            on(state, name, f"rm -f '{path}'")
            broken = diagnose(plan, secrets)
            bad = [f for f in broken.problems if f.check == runtime]
            assert bad and {f.host for f in bad} == {name}, problems(broken)
            fixed = engine.run(plan, secrets)
            assert fixed.ok, fixed.failure
            assert [(s.step, s.host) for s in fixed.changed] == [(f"trust-{runtime}", name)]
            assert diagnose(plan, secrets).exit_code == 0
        assert starts(state) == before + 1  # still the one restart

        # the CLI's JSON: one line per client and runtime
        pw = tmp_path / "pw"
        pw.write_text(state.verify_password + "\n")
        plan_file = tmp_path / "plan.toml"
        save_plan(plan, plan_file)
        env = dict(os.environ, HOME=str(tmp_path))
        env.pop("REGWIZARD_PASSWORD", None)
        cp = subprocess.run(
            [EXE, "apply", str(plan_file), "--password-file", str(pw), "--json"],
            capture_output=True, text=True, timeout=300, env=env, check=False,
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        lines = {(r["client"], r["runtime"]): r["ok"] for r in json.loads(cp.stdout)["runtimes"]}
        assert lines == {
            ("this machine", "docker"): True,
            ("podman1", "docker"): True,
            ("podman1", "podman"): True,
            ("k8s1", "containerd"): True,
        }
        assert state.verify_password not in cp.stdout + cp.stderr
    finally:
        cleanup(state, plan)
        forget_tenant(state)
        drop_hosts_everywhere(state)


def test_a_containerd_config_path_is_never_changed_unless_the_plan_allows_it(rt_lab, lab_plan):
    state = rt_lab
    plan = rt_plan(state, lab_plan)
    plan.clients[2].manage_containerd_config = False
    plan.clients = [plan.clients[0], plan.clients[2]]
    secrets = Secrets(verify_password=state.verify_password)
    try:
        cleanup(state, plan)
        on(state, "k8s1", f"sed -i '/config_path/d' {CONFIG} && service containerd restart")
        text, before = on(state, "k8s1", f"cat {CONFIG}"), starts(state)
        report = diagnose(plan, secrets)
        f = [x for x in report.problems if x.id == "containerd-config-path"]
        assert f and f[0].host == "k8s1" and "manage_containerd_config" in f[0].fix
        result = engine.run(plan, secrets)
        assert not result.ok and result.failure.step == "containerd-config"
        assert "manage_containerd_config = true" in result.failure.fix
        assert on(state, "k8s1", f"cat {CONFIG}") == text and starts(state) == before
    finally:
        restore_k8s1(state)
        cleanup(state, plan)
        forget_tenant(state)
        drop_hosts_everywhere(state)
