"""Shared fixtures. The `lab` fixture builds the real two-host lab once per session."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import settings

# CI replays the same examples every run: a property failure there is real and
# reproducible, never a lucky draw. Locally hypothesis explores new examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def isolated_config(monkeypatch, tmp_path_factory):
    """Every test gets its own empty config directory (regwizard.settings: theme, recent
    plans): no test reads the machine's settings (snapshots stay the same everywhere)
    or writes to the real home."""
    config = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config / "regwizard"


def _lab_unavailable_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the lab needs Linux"
    if os.geteuid() != 0:
        return "the lab needs root"
    return None


@pytest.fixture(scope="session")
def lab():
    """The real lab: node0 = this machine, node1 = registry host, node2 = client.

    REGWIZARD_LAB_REUSE=1 reuses a lab that is already up (handy while developing);
    otherwise a stale lab is torn down and a fresh one built, then torn down at the end.
    With CI=true a lab that cannot be built is a failure, never a skip.
    """
    reason = _lab_unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI: {reason}; the lab tests must run")
        pytest.skip(reason)
    from regwizard import lab as labmod

    reuse = os.environ.get("REGWIZARD_LAB_REUSE") == "1"
    state = labmod.LabState.load() if reuse else None
    if state is None or not labmod.status().get("up"):
        state = labmod.up()
        reuse = False
    yield state
    if not reuse and os.environ.get("REGWIZARD_KEEP_LAB") != "1":
        labmod.down(quiet=True)
