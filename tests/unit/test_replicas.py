"""Replicas against real registries: two distribution 2.8 processes (Debian's
docker-registry) on 127.0.0.1 and 127.0.0.2, one port, one storage directory, one
certificate, and the same or another http secret. ``verify.prove_replicas`` must prove
the shared secret (an upload started on one finishes on the other), the same manifest
digest and the same catalog, or name the host that does not agree."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from regwizard import htpasswd, pki
from regwizard.events import Proof
from regwizard.plan import CertificateSpec, Connection, Plan, Secrets, san_list
from regwizard.steps.base import Ctx, host_entries
from regwizard.steps.verify import prove_replicas

REGISTRY = shutil.which("docker-registry")
PASSWORD = "alice-password-1"
pytestmark = pytest.mark.skipif(REGISTRY is None, reason="docker-registry is not installed")


def _free_port() -> int:
    for port in range(26100, 26400):
        ok = True
        for ip in ("127.0.0.1", "127.0.0.2"):
            with socket.socket() as s:
                if s.connect_ex((ip, port)) == 0:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no free port in 26100-26400")


def _plan(port: int) -> Plan:
    plan = Plan()
    plan.registry.domain = "reg.example.test"
    plan.registry.ip = "127.0.0.1"
    plan.registry.port = port
    plan.host = Connection(address="127.0.0.1", label="node1")
    plan.replicas = [Connection(address="127.0.0.2", label="node2")]
    plan.clients = []
    plan.verify.user = "alice"
    return plan


def _serve(tmp: Path, name: str, ip: str, port: int, secret: str) -> subprocess.Popen:
    cfg = tmp / f"{name}.yml"
    cfg.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n"
        f"http:\n  addr: {ip}:{port}\n  secret: {secret}\n"
        f"  tls:\n    certificate: {tmp / 'reg.crt'}\n    key: {tmp / 'reg.key'}\n"
        f"auth:\n  htpasswd:\n    realm: test\n    path: {tmp / 'htpasswd'}\n"
    )
    return subprocess.Popen(
        [REGISTRY, "serve", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / f"{name}.log", "wb"),  # noqa: SIM115 - closed with the process
    )


@pytest.fixture
def replicas(tmp_path: Path, request):  # noqa: ANN001, ANN201
    """Start two registries; ``request.param`` is the replica's secret (None: the same)."""
    port = _free_port()
    plan = _plan(port)
    k, c = pki.make_server_cert(
        CertificateSpec(key="ecdsa-p256"), "reg.example.test", "127.0.0.1", ["127.0.0.2"]
    )
    (tmp_path / "reg.key").write_bytes(pki.key_to_pem(k))
    (tmp_path / "reg.crt").write_bytes(pki.cert_to_pem(c))
    (tmp_path / "htpasswd").write_text(f"alice:{htpasswd.hash_password(PASSWORD, 4)}\n")
    (tmp_path / "data").mkdir()
    secret = "s" * 32
    procs = [
        _serve(tmp_path, "a", "127.0.0.1", port, secret),
        _serve(tmp_path, "b", "127.0.0.2", port, getattr(request, "param", None) or secret),
    ]
    try:
        deadline = time.monotonic() + 20
        for ip in ("127.0.0.1", "127.0.0.2"):
            while True:
                with socket.socket() as s:
                    if s.connect_ex((ip, port)) == 0:
                        break
                if time.monotonic() > deadline:
                    logs = [(tmp_path / f"{n}.log").read_text() for n in "ab"]
                    pytest.fail(f"registries did not start: {logs}")
                time.sleep(0.05)
        ctx = Ctx(plan, Secrets(verify_password=PASSWORD), lambda e: None, threading.Event())
        ctx.hosts = host_entries(plan)
        yield ctx, pki.cert_to_pem(c)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def _by_host(proofs: list[Proof]) -> dict[str, Proof]:
    return {p.client: p for p in proofs}


def test_sans_hold_every_replica_address() -> None:
    assert san_list(_plan(443)) == ["DNS:reg.example.test", "IP:127.0.0.1", "IP:127.0.0.2"]


def test_replicas_with_one_secret_act_as_one(replicas) -> None:  # noqa: ANN001
    ctx, anchor = replicas
    proofs = _by_host(prove_replicas(ctx, anchor))
    assert set(proofs) == {"node1", "node2"}
    assert all(p.ok for p in proofs.values()), proofs
    assert "upload started here finished on node2" in proofs["node1"].how
    assert "upload started here finished on node1" in proofs["node2"].how
    assert all("same catalog (1 repositories)" in p.how for p in proofs.values())
    # a rerun uploads and puts the very same content: it changes nothing and agrees again
    again = _by_host(prove_replicas(ctx, anchor))
    assert [p.how for p in again.values()] == [p.how for p in proofs.values()]


@pytest.mark.parametrize("replicas", ["another-secret-0123456789abcdef"], indirect=True)
def test_a_replica_with_another_secret_is_named(replicas) -> None:  # noqa: ANN001
    ctx, anchor = replicas
    proofs = _by_host(prove_replicas(ctx, anchor))
    # node2 cannot finish node1's upload (its state token is signed with another secret)
    assert not proofs["node2"].ok
    assert "finishing node1's upload" in proofs["node2"].how
    assert PASSWORD not in repr(proofs)


def test_shell_commands_show_each_registry_host() -> None:
    from regwizard.engine import shell_commands

    plan = _plan(443)
    plan.host = Connection(address="10.0.0.2", label="node1")
    plan.registry.ip = "10.0.0.2"
    plan.replicas = [Connection(address="10.0.0.3", label="node2")]
    text = "\n".join(shell_commands(plan))
    assert "# on each registry host (node1, node2)" in text
    assert "echo '10.0.0.2 reg.example.test' >> /etc/hosts" in text
    assert "echo '10.0.0.3 reg.example.test' >> /etc/hosts" in text
    assert "IP:10.0.0.3" in text  # the one certificate names every replica
