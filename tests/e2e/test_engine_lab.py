"""The engine on the real lab, no mocks: sudo users, several clients, host keys,
bad credentials, offline images and registry:3.

Each test leaves the lab usable for the next: what a test breaks it resets, and every
extra registry it starts (own container name, port and storage) is removed afterwards.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import time

import pytest

from regwizard import engine
from regwizard import lab as labmod
from regwizard.events import StepFailed, StepFinished

from .conftest import events_sink, node_sh

pytestmark = pytest.mark.lab

LISTING = (
    "if [ -e /etc/regwizard ]; then find /etc/regwizard -printf '%p %s %m %u %T@\\n' | sort; "
    "else echo ABSENT; fi; "
    "docker ps -aq --no-trunc | sort | xargs -r docker inspect -f '{{.Name}} {{.State.StartedAt}}'"
)


def node1_state(lab) -> str:
    """Config files (size, mode, owner, mtime) and containers (start time) on node1."""
    return node_sh(lab, "node1", LISTING)


def failure_text(result) -> str:
    f = result.failure
    assert f is not None
    return "\n".join([f.step, f.host, f.cause, f.fix, f.evidence])


def finished(got, step: str) -> dict[str, str]:
    return {e.host: e.status for e in got if isinstance(e, StepFinished) and e.step == step}


@pytest.fixture
def side_registry(lab, plan):
    """A plan for a second registry on node1 (own container, port and storage dir),
    removed again afterwards together with its trust directories and probe images."""
    made: list = []

    def make(name: str, port: int, storage: str):
        p = copy.deepcopy(plan)
        p.registry.container, p.registry.port, p.registry.storage = name, port, storage
        made.append(p)
        return p

    yield make
    for p in made:
        reg = p.registry
        node_sh(lab, "node1", f"docker rm -f {reg.container} >/dev/null 2>&1; rm -rf {reg.storage}",
                check=False)  # fmt: skip
        for n in ("node1", "node2"):
            node_sh(lab, n, f"rm -rf '/etc/docker/certs.d/{reg.address}'; "
                    f"docker rmi -f {reg.address}/regwizard/probe:verify >/dev/null 2>&1",
                    check=False)  # fmt: skip
        shutil.rmtree(f"/etc/docker/certs.d/{reg.address}", ignore_errors=True)
        subprocess.run(["docker", "rmi", "-f", f"{reg.address}/regwizard/probe:verify"],
                       capture_output=True, check=False)  # fmt: skip


# ---------------------------------------------------------------- 1. non-root + sudo


def test_non_root_user_with_sudo(lab, plan, secrets, reset_registry):
    n1 = lab.nodes["node1"]
    plan.host.user, plan.host.auth, plan.host.sudo = labmod.LAB_USER, "password", True
    secrets.ssh_passwords[n1.ip] = lab.user_password
    reset_registry()

    # a wrong sudo password: a clear sudo failure, no secret anywhere, nothing touched
    wrong = "not-the-sudo-pw-5c1e"
    secrets.sudo_passwords[n1.ip] = wrong
    got, emit = events_sink()
    bad = engine.run(plan, secrets, emit=emit)
    assert not bad.ok
    text = failure_text(bad)
    assert "sudo" in bad.failure.cause and "refused the password" in bad.failure.cause, text
    assert bad.failure.host == n1.name
    everything = text + "\n".join(repr(e) for e in got)
    assert wrong not in everything
    assert lab.user_password not in everything
    assert "Traceback" not in everything
    after = node_sh(lab, "node1", "ls -d /etc/regwizard 2>&1; docker ps -aq; grep -c reg.lab.test "
                    "/etc/hosts", check=False)  # fmt: skip
    assert "No such file" in after and after.split()[-1] == "0", after

    # the right one: a full run from zero, everything made as root through sudo
    secrets.sudo_passwords[n1.ip] = lab.user_password
    got, emit = events_sink()
    result = engine.run(plan, secrets, emit=emit)
    assert result.ok, result.failure
    assert result.verification.push_digest == result.verification.pull_digest
    assert ("container", n1.name) in {(s.step, s.host) for s in result.changed}
    owners = node_sh(
        lab, "node1", "stat -c '%U %a %n' /etc/regwizard /etc/regwizard/certs/current/*.key"
    )
    assert all(line.startswith("root ") for line in owners.splitlines()), owners
    assert lab.user_password not in "\n".join(repr(e) for e in got)


# ---------------------------------------------------------------- 2. several clients


def test_every_client_trusts_and_pulls_and_lost_trust_is_repaired(lab, plan, secrets):
    n2 = lab.nodes["node2"]
    first = engine.run(plan, secrets)
    assert first.ok, first.failure
    assert first.verification.trust == {"this machine": True, n2.name: True}

    # the TLS boundary is real: without certs.d, node2's daemon refuses the registry
    node_sh(lab, "node2", "rm -rf /etc/docker/certs.d")
    login = ["docker", "login", labmod.DOMAIN, "-u", lab.verify_user, "--password-stdin"]
    cp = labmod.node_exec(n2, login, input=lab.verify_password.encode(), check=False)
    assert cp.returncode != 0
    assert "x509: certificate signed by unknown authority" in cp.stderr.decode(), cp.stderr

    # a rerun puts the trust back on node2 only, and verifies on both clients again
    got, emit = events_sink()
    again = engine.run(plan, secrets, emit=emit)
    assert again.ok, again.failure
    assert [(s.step, s.host) for s in again.changed] == [("trust", n2.name)]
    n1 = lab.nodes["node1"]
    want = {"this machine": "unchanged", n2.name: "changed", n1.name: "unchanged"}
    assert finished(got, "trust") == want
    assert again.verification.trust == {"this machine": True, n2.name: True}
    cp = labmod.node_exec(n2, login, input=lab.verify_password.encode(), check=False)
    assert cp.returncode == 0, cp.stderr
    labmod.node_exec(n2, ["docker", "logout", labmod.DOMAIN], check=False)


def test_a_hand_edit_of_etc_hosts_just_before_the_run_is_waited_out(lab, plan, secrets):
    """node2's dockerd looked the name up (no entry yet), then /etc/hosts gets the entry
    by hand: for up to 5 s Docker still says "no such host". The run, which changed
    nothing there itself, waits the window out once and verifies."""
    from regwizard.events import LogLine

    first = engine.run(plan, secrets)
    assert first.ok, first.failure
    n2 = lab.nodes["node2"]
    node_sh(lab, "node2", f"sed -i '/{labmod.DOMAIN}/d' /etc/hosts")
    time.sleep(5.5)  # past the window of the run's own lookups: the next one re-reads
    # dockerd resolves (and caches /etc/hosts without the name); node2 has no route to
    # any DNS server, so nothing leaves the lab
    pull = ["docker", "pull", f"{labmod.DOMAIN}/regwizard/probe:verify"]
    cp = labmod.node_exec(n2, pull, check=False)
    assert "lookup " + labmod.DOMAIN in cp.stderr.decode(), cp.stderr
    node_sh(lab, "node2", f"echo '{lab.nodes['node1'].ip} {labmod.DOMAIN}' >> /etc/hosts")
    got, emit = events_sink()
    again = engine.run(plan, secrets, emit=emit)
    assert again.ok, again.failure
    assert again.changed == []  # the mapping was there: nothing to change
    waits = [e.text for e in got if isinstance(e, LogLine) and "does not resolve" in e.text]
    assert waits and n2.name in waits[0], [e.text for e in got if isinstance(e, LogLine)]
    assert again.verification.trust == {"this machine": True, n2.name: True}


# ---------------------------------------------------------------- 3. host keys


def test_changed_host_key_is_refused_and_nothing_is_touched(lab, plan, secrets):
    ok = engine.run(plan, secrets)  # a known state to compare against
    assert ok.ok, ok.failure
    before = node1_state(lab)
    n1 = lab.nodes["node1"]
    plan.host.host_key = "SHA256:" + "A" * 43
    got, emit = events_sink()
    result = engine.run(plan, secrets, emit=emit)
    assert not result.ok
    text = failure_text(result)
    assert "CHANGED" in result.failure.cause and n1.host_key in result.failure.cause, text
    assert result.failure.step == "connect"
    assert not [e for e in got if isinstance(e, StepFinished) and e.step != "connect"]
    assert node1_state(lab) == before


def test_unknown_host_key_is_shown_then_accepted(lab, plan, secrets, tmp_path, monkeypatch):
    n1 = lab.nodes["node1"]
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/.ssh/known_hosts: empty
    plan.host.host_key = ""
    before = node1_state(lab)
    result = engine.run(plan, secrets)
    assert not result.ok
    assert n1.host_key in result.failure.cause, failure_text(result)
    assert "unknown SSH host key" in result.failure.cause
    assert f"--accept-host-key {n1.host_key}" in result.failure.fix
    assert node1_state(lab) == before
    assert not (tmp_path / ".ssh" / "known_hosts").exists()

    secrets.accepted_host_keys = {n1.host_key}
    result = engine.run(plan, secrets)
    assert result.ok, result.failure
    known = (tmp_path / ".ssh" / "known_hosts").read_text()
    assert known.split() == [n1.ip, *n1.host_key_line.split()], known

    # from now on the key is known: no acceptance needed
    secrets.accepted_host_keys = set()
    again = engine.run(plan, secrets, dry_run=True)
    assert again.ok, again.failure


# ---------------------------------------------------------------- 4. verify password


def test_wrong_verify_password_fails_clearly_in_verify(lab, plan, secrets):
    wrong = "wrong-verify-pw-7f3a"
    secrets.verify_password = wrong
    got, emit = events_sink()
    result = engine.run(plan, secrets, emit=emit)
    assert not result.ok
    text = failure_text(result)
    assert result.failure.step == "verify", text
    assert "login" in result.failure.cause and "refused the credentials" in result.failure.cause
    assert "401" in result.failure.evidence, text
    everything = text + "\n".join(repr(e) for e in got)
    assert wrong not in everything and "Traceback" not in everything
    assert result.verification and not result.verification.login_ok
    assert result.verification.anonymous_refused
    assert [e for e in got if isinstance(e, StepFailed)] == [result.failure]


# ---------------------------------------------------------------- 5. offline image


def test_offline_image_archive_is_loaded(lab, plan, secrets, side_registry, tmp_path):
    import docker

    n1 = lab.nodes["node1"]
    archive = tmp_path / "registry-3.tar"
    local = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=120)
    try:
        with open(archive, "wb") as fh:
            for chunk in local.api.get_image("registry:3"):
                fh.write(chunk)
    finally:
        local.close()
    d1 = labmod.node_docker(n1)
    try:
        # untag only: registry:2 (used by the main container) keeps the layers
        d1.images.remove("registry:3")
        with pytest.raises(docker.errors.ImageNotFound):
            d1.images.get("registry:3")
        p = side_registry("registry-offline", 5443, "/opt/offline")
        p.registry.image, p.registry.image_archive = "registry:3", str(archive)
        got, emit = events_sink()
        result = engine.run(p, secrets, emit=emit)
        assert result.ok, result.failure
        image = [e for e in got if isinstance(e, StepFinished) and e.step == "image"]
        assert [(e.status, e.host) for e in image] == [("changed", n1.name)]
        assert "loaded" in image[0].detail
        assert d1.images.get("registry:3").id == d1.images.get("registry:2").id
        c = d1.containers.get("registry-offline")
        assert c.image.id == d1.images.get("registry:3").id
        assert result.verification.trust == {"this machine": True, "node2": True}
    finally:
        try:
            d1.images.get("registry:3")
        except docker.errors.ImageNotFound:
            d1.images.get("registry:2").tag("registry", "3")
        d1.close()


# ---------------------------------------------------------------- 6. registry:3


def test_registry_3_image(lab, plan, secrets, side_registry):
    p = side_registry("registry-v3", 5444, "/opt/registry-v3")
    p.registry.image = "registry:3"
    result = engine.run(p, secrets)
    assert result.ok, result.failure
    v = result.verification
    assert v.login_ok and v.anonymous_refused and v.push_digest == v.pull_digest
    c = labmod.node_docker(lab.nodes["node1"])
    try:
        assert c.containers.get("registry-v3").attrs["Config"]["Image"] == "registry:3"
    finally:
        c.close()
    ls = node_sh(lab, "node1", "ls /opt/registry-v3/docker/registry/v2/repositories/regwizard")
    assert "probe" in ls
