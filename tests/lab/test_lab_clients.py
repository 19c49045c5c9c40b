"""Extra lab clients, built on demand (`regwizard lab clients N`), for fan-out runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from regwizard import lab as labmod

pytestmark = pytest.mark.lab

EXE = str(Path(sys.executable).with_name("regwizard"))


def regwizard(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


def test_clients_on_demand_get_trust_and_pull(lab, tmp_path):
    plan = tmp_path / "fan.toml"
    up = regwizard("lab", "clients", "3", "-o", str(plan))
    assert up.returncode == 0, up.stderr
    assert "the lab has 3 extra client(s)" in up.stdout
    assert oct(plan.stat().st_mode & 0o777) == "0o600"
    try:
        state = labmod.LabState.load()
        names = labmod.client_names(state)
        assert names == ["client1", "client2", "client3"]
        st = labmod.status()
        for name in names:
            node = state.nodes[name]
            assert st["nodes"][name]["dockerd"] is True and st["nodes"][name]["sshd"] is True
            # each is its own machine: own hostname, no trust for the registry yet
            cp = subprocess.run(
                [*labmod.lab_ssh(state, node), "hostname; ls /etc/docker/certs.d | wc -l"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert cp.returncode == 0, cp.stderr
            assert cp.stdout.split() == [name, "0"]
        # fewer is fine too: the extra ones are removed, the rest kept as they are
        down = regwizard("lab", "clients", "2")
        assert down.returncode == 0, down.stderr
        state = labmod.LabState.load()
        assert labmod.client_names(state) == ["client1", "client2"]
        assert not Path("/run/netns/rwlab-client3").exists()

        env = {**os.environ, "REGWIZARD_PASSWORD": state.verify_password}
        plan.write_text(labmod.lab_plan_text(state, clients=["client1", "client2"]))
        run = subprocess.run(
            [EXE, "apply", str(plan), "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        import json

        out = json.loads(run.stdout)
        trust = {s["host"]: s["status"] for s in out["steps"] if s["step"] == "trust"}
        assert trust["client1"] == "changed" and trust["client2"] == "changed"
        assert out["ok"] and out["trust"] == {"client1": True, "client2": True}
        # the registry host's files were not touched by a plan made for the same lab
        assert {s["step"]: s["status"] for s in out["steps"] if s["host"] == "node1"}[
            "htpasswd"
        ] == "unchanged"
    finally:
        gone = regwizard("lab", "clients", "0")
        assert gone.returncode == 0, gone.stderr
    state = labmod.LabState.load()
    assert labmod.client_names(state) == []
    assert not any(Path("/run/netns").glob("rwlab-client*"))
    assert labmod.status()["up"]
