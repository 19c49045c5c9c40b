"""Faults that take a node's service away: the engine says what happened, changes
nothing half-way, and a rerun converges once the service is back."""

from __future__ import annotations

import os
import signal

import pytest

from regwizard import engine
from regwizard import lab as labmod
from regwizard.events import StepStarted

from .conftest import node_sh

pytestmark = pytest.mark.lab


def no_traceback(result) -> str:
    f = result.failure
    text = f"{f.cause}\n{f.fix}\n{f.evidence}"
    assert "Traceback" not in text and 'File "' not in text, text
    return text


def test_dockerd_stopped_before_the_container_step(lab, plan, secrets):
    first = engine.run(plan, secrets)
    assert first.ok, first.failure
    labmod.stop_dockerd(lab, "node1")
    try:
        before = node_sh(lab, "node1", "ls -l --time-style=+%s /etc/regwizard/certs")
        bad = engine.run(plan, secrets)
        assert not bad.ok
        text = no_traceback(bad)
        assert bad.failure.step == "preflight" and bad.failure.host == "node1", bad.failure
        assert "Docker" in bad.failure.cause and "unreachable" in bad.failure.cause.lower(), text
        assert "start" in bad.failure.fix.lower() or "docker" in bad.failure.fix.lower()
        assert node_sh(lab, "node1", "ls -l --time-style=+%s /etc/regwizard/certs") == before
    finally:
        labmod.start_dockerd(lab, "node1")
    again = engine.run(plan, secrets)
    assert again.ok, again.failure


def test_ssh_connection_dropped_mid_run(lab, plan, secrets, reset_registry):
    """node1's sshd session process is killed when the certificate step starts."""
    reset_registry(storage=False)
    killed: list[int] = []

    def emit(ev) -> None:
        if isinstance(ev, StepStarted) and ev.step == "certificate" and not killed:
            for pid in labmod.sshd_session_pids(lab, "node1"):
                try:
                    os.kill(pid, signal.SIGKILL)  # a lab sshd child we started
                    killed.append(pid)
                except ProcessLookupError:
                    pass

    result = engine.run(plan, secrets, emit=emit)
    assert killed, "no sshd session was found to cut"
    if not result.ok:  # a clear message, not a traceback
        text = no_traceback(result)
        assert "connection" in text.lower() or "ssh" in text.lower(), text
    # nothing half-written: no temp files; the key, if there, matches its certificate
    leftovers = node_sh(lab, "node1", "find /etc/regwizard -name '*regwizard-tmp*' | wc -l")
    assert leftovers.strip() == "0"
    # a rerun converges and verifies
    again = engine.run(plan, secrets)
    assert again.ok, again.failure
