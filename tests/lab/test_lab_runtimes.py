"""The lab's clients with other runtimes, built on demand (`regwizard lab runtimes`):
podman1 runs Docker and podman, k8s1 runs a standalone containerd and no dockerd."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from regwizard import lab as labmod
from regwizard.plan import load_plan

pytestmark = pytest.mark.lab

EXE = str(Path(sys.executable).with_name("regwizard"))


def node_sh(state, name: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*labmod.lab_ssh(state, state.nodes[name]), script],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_runtime_clients_are_built_on_demand(lab, tmp_path):
    plan_file = tmp_path / "rt.toml"
    cp = subprocess.run(
        [EXE, "lab", "runtimes", "-o", str(plan_file)], capture_output=True, text=True, timeout=600
    )
    assert cp.returncode == 0, cp.stderr
    assert "podman1 10.213.47.21 (client: docker, podman)" in cp.stdout
    assert "k8s1 10.213.47.22 (client: containerd)" in cp.stdout
    state = labmod.LabState.load()
    st = labmod.status()
    assert st["up"], st
    assert st["nodes"]["k8s1"]["dockerd"] == "none" and st["nodes"]["k8s1"]["containerd"] is True

    # podman1: its own hostname, podman on its own vfs store, Docker as well
    out = node_sh(state, "podman1", "hostname; podman info --format '{{.Store.GraphDriverName}} "
                                    "{{.Store.GraphRoot}}'; docker version -f '{{.Server.Version}}'")  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == "podman1" and lines[1] == "vfs /var/lib/containers/storage"
    assert lines[2]
    # k8s1: no Docker at all, a containerd that CRI-reads /etc/containerd/certs.d
    out = node_sh(state, "k8s1", "hostname; command -v dockerd >/dev/null && "
                                 "test -S /var/run/docker.sock && echo docker; "
                                 "ctr --address /run/containerd/containerd.sock version -q 2>/dev/null "
                                 "| head -1; grep config_path /etc/containerd/config.toml")  # fmt: skip
    assert out.stdout.split("\n")[0] == "k8s1" and "docker" not in out.stdout.split()
    assert 'config_path = "/etc/containerd/certs.d"' in out.stdout
    # the lab's service manager restarts containerd and counts the starts
    before = node_sh(state, "k8s1", "wc -l < /run/containerd-lab.starts").stdout.strip()
    again = node_sh(state, "k8s1", "service containerd restart && sleep 0.5 && "
                                   "ctr version >/dev/null && wc -l < /run/containerd-lab.starts")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert int(again.stdout.strip()) == int(before) + 1
    # the plan names the runtimes, and may set config_path on the containerd node
    plan = load_plan(plan_file)
    by = {c.label or "node0": c for c in plan.clients}
    assert by["node0"].runtimes == ["docker"]
    assert by["podman1"].runtimes == ["docker", "podman"]
    assert by["k8s1"].runtimes == ["containerd"] and by["k8s1"].manage_containerd_config
    # asking again builds nothing new
    cp = subprocess.run([EXE, "lab", "runtimes"], capture_output=True, text=True, timeout=600)
    assert cp.returncode == 0, cp.stderr
    assert labmod.LabState.load().nodes["k8s1"].init_pid == state.nodes["k8s1"].init_pid
