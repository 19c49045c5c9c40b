"""The shell commands a dry run prints are the ones the steps would run.

``regwizard apply --dry-run`` runs the engine in dry-run mode (each step's ``check``)
and then prints ``engine.shell_commands(plan)``. On hosts where nothing exists yet every
step has a change, and the commands of those changes, in step order, must be exactly
the commands printed: none missing, none extra, none out of order. Checked for the
three certificate modes, with and without managing /etc/hosts, on fake hosts (a
registry host and two clients), and the dry run must change nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from regwizard import engine
from regwizard.events import StepFinished
from regwizard.steps import STEPS
from regwizard.steps.base import Change, host_entries
from tests.fixtures import world


def _fresh(mode: str, manage: bool, local: Path) -> world.Case:
    data: dict = {
        "plan": {
            "registry": {"manage_hosts_file": manage, "port": 5000},
            "clients": [{"address": "local"}, {"address": "10.0.0.3", "label": "node2"}],
            "certificate": {"mode": mode, "extra_sans": ["registry.lan"]},
        },
        # nothing at all on any host: no /etc/hosts entry, no files, no container, no image
    }
    if mode == "provided":
        data["certs"] = {"mine": "self-signed for reg.example.test,10.0.0.2,registry.lan"}
        data["plan"]["certificate"] |= {"cert_file": "<local>/c.pem", "key_file": "<local>/k.pem"}
        data["local_files"] = {"c.pem": {"cert": "mine"}, "k.pem": {"private_key": "mine"}}
    return world.build(data, local)


def _dedup(blocks: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """The commands of each step once (an every-host step prints them once)."""
    out: list[str] = []
    seen: set[str] = set()
    for step, cmds in blocks:
        if step not in seen and cmds:
            seen.add(step)
            out.extend(cmds)
    return out


def _fresh_runtimes(local: Path) -> world.Case:
    """Fresh hosts, with a Kubernetes node (containerd alone, config.toml missing, apply
    may set config_path) and a podman-only client besides this machine's Docker."""
    found_containerd = [
        {"argv": "containerd-read", "stdout": "socket\n" + world.CONTAINERD_1},
        {"argv": "containerd-preflight", "rc": 0},
    ]
    no_docker = {"down": world.NO_DOCKER}
    data: dict = {
        "plan": {
            "registry": {"port": 5000},
            "clients": [
                {"address": "local"},
                {"address": "10.0.0.3", "label": "k8s1", "runtimes": ["containerd"],
                 "manage_containerd_config": True},
                {"address": "10.0.0.4", "label": "pod1", "runtimes": ["podman"]},
            ],
        },
        "hosts": {
            "k8s1": {"commands": found_containerd, "docker": no_docker},
            "pod1": {"commands": [{"argv": "podman-which", "stdout": "/usr/bin/podman\n"}],
                     "docker": no_docker},
        },
    }  # fmt: skip
    return world.build(data, local)


def _dry_run(case: world.Case) -> tuple[list[StepFinished], list[str], list[str]]:
    """A dry run on the case's hosts: its steps, the commands of their changes (in step
    order, each step's once) and the shell commands printed for the plan."""
    events: list = []
    result = engine.run(
        case.plan, case.secrets, emit=events.append, dry_run=True, connect=case.connect()
    )
    assert result.ok and result.failure is None, result.failure
    assert case.writes() == {}, "the dry run changed a host"
    assert case.key_reads() == {}
    finished = [ev for ev in events if isinstance(ev, StepFinished) and ev.step != "connect"]
    # on hosts where nothing exists, every step that touches a host has a change
    assert all(ev.status == "would-change" for ev in finished if ev.step != "preflight"), [
        (ev.step, ev.host, ev.status, ev.detail) for ev in finished
    ]
    blocks = [(ev.step, ev.commands) for ev in finished]
    # steps a dry run skips (they talk to the running registry) still print their commands:
    # their own check() gives them
    ctx = case.ctx(dry_run=True)
    for step in STEPS:
        if step.needs_registry:
            for e in step.targets(ctx):
                outcome = step.check(ctx, e) if step.name != "health" else None
                if isinstance(outcome, Change):
                    blocks.append((step.name, outcome.commands))
    # the headings, not a step's own comment lines ("# in config.toml: ...")
    heads = ("# on ", "# from ")
    printed = [line for line in engine.shell_commands(case.plan) if not line.startswith(heads)]
    return finished, _dedup(blocks), printed


@pytest.mark.parametrize("manage", [True, False], ids=["hosts-file", "no-hosts-file"])
@pytest.mark.parametrize("mode", ["self-signed", "local-ca", "provided"])
def test_dry_run_prints_the_commands_of_the_changes(mode, manage, tmp_path) -> None:
    case = _fresh(mode, manage, tmp_path)
    finished, changes, printed = _dry_run(case)
    assert ("hosts-file" in {ev.step for ev in finished}) is manage
    assert changes == printed


def test_dry_run_with_containerd_and_podman_clients(tmp_path) -> None:
    case = _fresh_runtimes(tmp_path)
    finished, changes, printed = _dry_run(case)
    assert changes == printed
    where = {(ev.step, ev.host) for ev in finished if ev.step != "preflight"}
    assert {h for s, h in where if s == "trust"} == {"node1", "this machine"}  # Docker's
    assert {h for s, h in where if s in ("containerd-config", "trust-containerd")} == {"k8s1"}
    assert {h for s, h in where if s == "trust-podman"} == {"pod1"}
    lines = engine.shell_commands(case.plan)
    addr = "reg.example.test:5000"
    for want in (
        "# on every host (k8s1)",
        '# in /etc/containerd/config.toml: [plugins."io.containerd.grpc.v1.cri".registry] '
        'config_path = "/etc/containerd/certs.d"',
        "systemctl restart containerd",
        f"mkdir -p /etc/containerd/certs.d/{addr}",
        f"cat > /etc/containerd/certs.d/{addr}/hosts.toml <<'EOF'\n",
        "# on every host (pod1)",
        f"mkdir -p /etc/containers/certs.d/{addr}",
        f"scp REGISTRY:/etc/regwizard/certs/current/reg.example.test.crt "
        f"/etc/containers/certs.d/{addr}/ca.crt",
    ):
        assert any(line.startswith(want) for line in lines), want
    verify = lines[lines.index("# from the first client") + 1 :]
    assert any(line.startswith("podman login") for line in verify), verify
    assert any(
        line.startswith("ctr images pull --hosts-dir /etc/containerd/certs.d") for line in verify
    )


@pytest.mark.parametrize("runtimes", [False, True], ids=["docker", "containerd-podman"])
def test_each_change_equals_its_steps_script_on_a_fresh_host(runtimes, tmp_path) -> None:
    """check() on a fresh host shows the step's whole script: the dry-run text is the plan."""
    case = _fresh_runtimes(tmp_path) if runtimes else _fresh("local-ca", True, tmp_path)
    ctx = case.ctx(dry_run=True)
    for step in STEPS:
        script = getattr(step, "script", None)
        for e in step.targets(ctx):
            outcome = step.check(ctx, e)
            if script is None:
                assert not outcome.commands, step.name
            elif isinstance(outcome, Change):
                assert outcome.commands == script(ctx), step.name
    assert case.writes() == {}


def test_shell_commands_name_every_host_of_every_host_steps() -> None:
    case_plan = world.build({"plan": {"clients": [{"address": "local"}]}}, Path("/nonexistent"))
    lines = engine.shell_commands(case_plan.plan)
    labels = [e.label for e in host_entries(case_plan.plan)]
    assert f"# on the registry host ({case_plan.plan.host.name})" in lines
    assert "# on every host (" + ", ".join(labels) + ")" in lines
    assert lines[-2] == "# from the first client"


def test_a_dry_run_is_cancellable_and_still_changes_nothing(tmp_path) -> None:
    case = _fresh("self-signed", True, tmp_path)
    cancel = threading.Event()
    cancel.set()
    result = engine.run(
        case.plan, case.secrets, dry_run=True, cancel=cancel, connect=case.connect()
    )
    assert not result.ok and result.failure is not None
    assert case.writes() == {}
