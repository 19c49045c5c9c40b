"""Living with a registry (issue 13), on the real lab.

- certificates over time: in local-CA mode a renewal signs a new server certificate with
  the same CA, so every client's ca.crt stays byte-identical and pulls go on working.

Tenants: domain repair.lab.test, ports 5530-5539, containers rp-*.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from regwizard import engine, pki
from regwizard import lab as labmod
from regwizard.facts import tls
from regwizard.facts.certsd import trust_file
from regwizard.layout import layout
from regwizard.plan import Secrets

from .conftest import node_sh
from .test_repair_lab import (
    cleanup,
    drop_hosts_everywhere,
    n1,
    problems,
    set_node0_hosts,
    tenant_plan,
)

pytestmark = pytest.mark.lab


def _client_cas(lab, address: str) -> dict[str, bytes]:
    """Every client's ca.crt for this registry, byte for byte."""
    path = trust_file(address)
    return {
        "node0": Path(path).read_bytes(),
        "node2": node_sh(lab, "node2", f"cat '{path}'").encode(),
    }


def test_a_local_ca_renewal_leaves_every_client_ca_byte_identical(lab, lab_plan):
    from regwizard.doctor import diagnose

    plan = tenant_plan(lab_plan, "renewca", 5530)
    plan.certificate.mode = "local-ca"
    secrets = Secrets(verify_password=lab.verify_password)
    reg, lay = plan.registry, layout(plan)
    try:
        cleanup(lab, plan)
        set_node0_hosts(reg.ip)
        first = engine.run(plan, secrets)
        assert first.ok, first.failure
        before = _client_cas(lab, reg.address)
        assert before["node0"] == before["node2"]

        # the served certificate nears its end: 10 days left, signed by the same CA
        ca_pem = n1(lab, f"cat {lay.ca_path}").encode()
        ca_key = pki.load_key(n1(lab, f"cat {lay.ca_key_path}").encode())
        k, c = pki.make_server_cert(
            plan.certificate, reg.domain, reg.ip, days=10,
            issuer_key=ca_key, issuer_cert=pki.load_cert(ca_pem),
        )  # fmt: skip
        write_cert_only(lab, plan, pki.key_to_pem(k), pki.cert_to_pem(c))
        warned = diagnose(plan, secrets)
        assert any(
            f.check == "certificate" and f.severity == "warn" and "expires on" in f.message
            for f in warned.problems
        ), problems(warned)

        renewed = engine.run(plan, secrets)
        assert renewed.ok, renewed.failure
        assert any(s.step == "certificate" and s.status == "changed" for s in renewed.steps)
        v = renewed.verification
        assert v is not None and v.cert_days_left > pki.RENEW_DAYS and v.cert_expires
        # no client was touched: the trust step changed nothing, the files are identical
        assert not [s for s in renewed.steps if s.step == "trust" and s.status == "changed"]
        assert _client_cas(lab, reg.address) == before
        assert v.trust and all(v.trust.values())  # pulls through the same ca.crt work
        assert diagnose(plan, secrets).exit_code == 0
    finally:
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)


def write_cert_only(lab, plan, key_pem: bytes, cert_pem: bytes) -> None:
    """Replace the served pair on the registry host only (clients keep the CA), restart,
    and wait until the registry serves it (TLS is loaded at start)."""
    reg, lay = plan.registry, layout(plan)
    node = lab.nodes["node1"]
    labmod.node_exec(node, ["sh", "-c", f"cat > '{lay.key_path}'"], input=key_pem)
    labmod.node_exec(node, ["sh", "-c", f"cat > '{lay.cert_path}'"], input=cert_pem)
    n1(lab, f"docker restart {reg.container} >/dev/null")
    deadline = time.monotonic() + 15
    while tls.served(reg.domain, reg.ip, reg.port).pem != cert_pem:
        assert time.monotonic() < deadline, "the registry does not serve the new certificate"
        time.sleep(0.2)
