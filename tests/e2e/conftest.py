"""Fixtures for end-to-end runs on the lab: plans that target node1/node2."""

from __future__ import annotations

import copy
import os
import subprocess

import pytest

from regwizard import lab as labmod
from regwizard.plan import load_plan


@pytest.fixture(scope="session")
def lab_plan(lab):
    """The plan `regwizard lab up` wrote: registry on node1, clients node0 + node2."""
    return load_plan(lab.plan_file)


@pytest.fixture
def plan(lab_plan):
    return copy.deepcopy(lab_plan)


@pytest.fixture
def secrets(lab):
    from regwizard.plan import Secrets

    return Secrets(verify_password=lab.verify_password)


def node_sh(lab, name: str, script: str, check: bool = True) -> str:
    node = lab.nodes[name]
    cp = labmod.node_exec(node, ["sh", "-c", script], check=check)
    return cp.stdout.decode()


@pytest.fixture
def reset_registry(lab):
    """Remove what a previous run left on node1 (container, config, storage) and trust."""

    def reset(storage: bool = True) -> None:
        for name in ("node1", "node2"):
            labmod.node_exec(
                lab.nodes[name],
                ["sh", "-c", "docker rm -f $(docker ps -aq) 2>/dev/null; "
                 "rm -rf /etc/regwizard /etc/docker/certs.d; sed -i '/reg.lab.test/d' /etc/hosts; "
                 + ("rm -rf /opt/docker-image" if storage else "true")],
                check=False,
            )  # fmt: skip
        subprocess.run(["rm", "-rf", f"/etc/docker/certs.d/{labmod.DOMAIN}"], check=False)

    return reset


def events_sink():
    got = []
    return got, got.append


os.environ.setdefault("REGWIZARD_TEST", "1")
