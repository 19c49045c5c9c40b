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


@pytest.mark.parametrize("manage", [True, False], ids=["hosts-file", "no-hosts-file"])
@pytest.mark.parametrize("mode", ["self-signed", "local-ca", "provided"])
def test_dry_run_prints_the_commands_of_the_changes(mode, manage, tmp_path) -> None:
    case = _fresh(mode, manage, tmp_path)
    events: list = []
    result = engine.run(
        case.plan, case.secrets, emit=events.append, dry_run=True, connect=case.connect()
    )
    assert result.ok and result.failure is None, result.failure
    assert case.writes() == {}, "the dry run changed a host"
    assert case.key_reads() == {}
    finished = [ev for ev in events if isinstance(ev, StepFinished) and ev.step != "connect"]
    # on hosts where nothing exists, every step that touches a host has a change
    names = {ev.step for ev in finished}
    assert all(ev.status == "would-change" for ev in finished if ev.step != "preflight"), [
        (ev.step, ev.host, ev.status, ev.detail) for ev in finished
    ]
    assert ("hosts-file" in names) is manage
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
    printed = [line for line in engine.shell_commands(case.plan) if not line.startswith("#")]
    assert _dedup(blocks) == printed


def test_each_change_equals_its_steps_script_on_a_fresh_host(tmp_path) -> None:
    """check() on a fresh host shows the step's whole script: the dry-run text is the plan."""
    case = _fresh("local-ca", True, tmp_path)
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
