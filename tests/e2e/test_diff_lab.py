"""``regwizard apply --dry-run --diff`` on the real lab: nothing to show on a healthy
setup; one removed certs.d ca.crt on node2 is the one diff, and exit 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from regwizard import engine

from .conftest import node_sh

pytestmark = pytest.mark.lab

ASIDE = "/root/.regwizard-diff-test-ca.crt"  # node2's own /root: out of certs.d


def _dry_run(lab, *flags: str) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "regwizard")
    return subprocess.run(
        [exe, "apply", lab.plan_file, "--dry-run", "--diff", *flags],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dry_run_diff_shows_only_what_changed(lab, plan, secrets):
    first = engine.run(plan, secrets)  # a healthy, applied lab to start from
    assert first.ok, first.failure

    cp = _dry_run(lab)
    assert cp.returncode == 0, cp.stderr
    assert "what would change" not in cp.stdout and "\n--- " not in cp.stdout
    assert "dry run: nothing to change" in cp.stderr

    ca = f"/etc/docker/certs.d/{plan.registry.address}/ca.crt"
    node_sh(lab, "node2", f"mv -- '{ca}' {ASIDE}")
    try:
        cp = _dry_run(lab)
        assert cp.returncode == 3, cp.stderr
        diff = cp.stdout[cp.stdout.index("# what would change") :]
        assert f"--- /dev/null\n+++ node2:{ca} (after apply)\n" in diff, diff
        assert diff.count("\n--- ") == 1, diff  # that file, nothing else
        assert "+  subject: " in diff and "+  sha256:  " in diff  # a summary, not PEM
        out = cp.stdout + cp.stderr
        assert "PRIVATE KEY" not in out and "BEGIN CERTIFICATE" not in out
        assert lab.verify_password not in out and "$2" not in out

        cp = _dry_run(lab, "--json")
        assert cp.returncode == 3, cp.stderr
        doc = json.loads(cp.stdout)
        assert [(d["host"], d["path"]) for d in doc["diffs"]] == [("node2", ca)]
        assert doc["pending"] == ["trust@node2"]
    finally:
        node_sh(lab, "node2", f"mv -f -- {ASIDE} '{ca}'")
    cp = _dry_run(lab)
    assert cp.returncode == 0, cp.stderr + cp.stdout
