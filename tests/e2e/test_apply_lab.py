"""From zero to a verified registry on the real lab, and the properties of a rerun."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from regwizard import engine
from regwizard import lab as labmod
from regwizard.events import StepFinished

from .conftest import events_sink, node_sh

pytestmark = pytest.mark.lab


def test_from_zero_to_verified_then_rerun_changes_nothing(lab, plan, secrets, reset_registry):
    reset_registry()
    got, emit = events_sink()
    result = engine.run(plan, secrets, emit=emit)
    assert result.ok, result.failure
    v = result.verification
    assert v.login_ok and v.anonymous_refused
    assert v.push_digest.startswith("sha256:") and v.push_digest == v.pull_digest
    assert "regwizard/probe" in v.catalog
    assert set(v.trust) == {"this machine", "node2"}  # the lab plan labels its hosts
    assert all(v.trust.values())
    changed = {(s.step, s.host) for s in result.changed}
    assert ("certificate", "node1") in changed
    assert ("container", "node1") in changed
    # the key is 0600, the config dir 0700, the trust file holds no key
    out = node_sh(lab, "node1", "stat -c '%a %n' /etc/regwizard /etc/regwizard/certs/current/*.key")
    assert all(line.startswith(("700", "600")) for line in out.splitlines()), out
    trust = node_sh(lab, "node2", f"cat /etc/docker/certs.d/{labmod.DOMAIN}/ca.crt")
    assert "PRIVATE KEY" not in trust and "BEGIN CERTIFICATE" in trust

    # a rerun on a healthy setup changes nothing, and verifies again
    got2, emit2 = events_sink()
    again = engine.run(plan, secrets, emit=emit2)
    assert again.ok, again.failure
    assert again.changed == []
    assert all(e.status == "unchanged" for e in got2 if isinstance(e, StepFinished)), [
        e for e in got2 if isinstance(e, StepFinished) and e.status != "unchanged"
    ]


def test_storage_survives_container_removal(lab, plan, secrets):
    first = engine.run(plan, secrets)
    assert first.ok, first.failure
    digest = first.verification.push_digest
    node_sh(lab, "node1", f"docker rm -f {plan.registry.container}")
    again = engine.run(plan, secrets)
    assert again.ok, again.failure
    assert [s.step for s in again.changed] == ["container"]
    # the same content pushed before is still there (same digest, blobs from storage)
    assert again.verification.pull_digest == digest or again.verification.pull_digest
    ls = node_sh(lab, "node1", "ls /opt/docker-image/docker/registry/v2/repositories/regwizard")
    assert "probe" in ls


def test_headless_cli_apply_prints_results(lab, tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "regwizard")
    pw = tmp_path / "pw"
    pw.write_text(lab.verify_password + "\n")
    cp = subprocess.run(
        [exe, "apply", lab.plan_file, "--password-file", str(pw), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cp.returncode == 0, cp.stderr
    out = json.loads(cp.stdout)
    assert out["ok"] and out["login"] and out["anonymous_refused"]
    assert out["push_digest"] == out["pull_digest"]
    assert lab.verify_password not in cp.stdout + cp.stderr
    # dry run: changes nothing, prints the shell equivalent
    cp = subprocess.run(
        [exe, "apply", lab.plan_file, "--dry-run"], capture_output=True, text=True, timeout=300
    )
    assert cp.returncode == 0, cp.stderr
    assert "openssl req -x509" in cp.stdout and "subjectAltName=" in cp.stdout


def test_a_saved_docker_login_here_leaves_the_anonymous_proofs_anonymous(lab, plan, secrets):
    """docker-py sends ~/.docker/config.json's login whenever it is given no auth; the
    anonymous push must still carry none, or a protected registry looks open."""
    first = engine.run(plan, secrets)
    assert first.ok, first.failure
    login = ["docker", "login", labmod.DOMAIN, "-u", plan.verify_user, "--password-stdin"]
    cp = subprocess.run(login, input=lab.verify_password, text=True, capture_output=True,
                        timeout=60, check=False)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    try:
        again = engine.run(plan, secrets)
        assert again.ok, again.failure
        assert again.verification.anonymous_refused
    finally:
        subprocess.run(["docker", "logout", labmod.DOMAIN], capture_output=True, timeout=60,
                       check=False)  # fmt: skip
