"""Living with a registry (issue 13), on the real lab.

- delete and gc: two tags with different layers, one deleted, gc frees about that layer;
  a push during gc fails with a read-only error while a pull works; pushes work after;
- certificates over time: in local-CA mode a renewal signs a new server certificate with
  the same CA, so every client's ca.crt stays byte-identical and pulls go on working.

Tenants: domain repair.lab.test, ports 5530-5539, containers rp-*.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from regwizard import engine, gc, pki
from regwizard import lab as labmod
from regwizard.events import StepStarted
from regwizard.facts import tls
from regwizard.facts.certsd import trust_file
from regwizard.layout import layout
from regwizard.plan import Secrets

from .conftest import node_sh
from .test_repair_lab import (
    build_and_push,
    cleanup,
    drop_hosts_everywhere,
    n1,
    node0_docker,
    problems,
    pull,
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


# ---------------------------------------------------------------- delete and gc


def _delete_manifest(plan, password: str, repo: str, digest: str) -> int:
    reg = plan.registry
    status, _h, _b = tls.request(
        reg.domain, reg.ip, reg.port, _anchor(plan),
        f"/v2/{repo}/manifests/{digest}", auth=(plan.verify_user, password), method="DELETE",
    )  # fmt: skip
    return status


def _anchor(plan) -> bytes:
    return Path(trust_file(plan.registry.address)).read_bytes()


def _push_errors(address: str, src: str, dst: str, auth: dict) -> list[str]:
    """Tag node0's ``src`` as ``dst`` and push it; the push's errors."""
    c = node0_docker()
    try:
        name, _, tag = f"{address}/{dst}".rpartition(":")
        c.images.get(f"{address}/{src}").tag(name, tag)
        return [
            item["error"]
            for item in c.api.push(name, tag=tag, stream=True, decode=True, auth_config=auth)
            if "error" in item
        ]
    finally:
        c.close()


def test_delete_then_gc_frees_the_layer_and_refuses_pushes_meanwhile(lab, lab_plan):
    plan = tenant_plan(lab_plan, "gc", 5531)
    plan.registry.allow_delete = True
    secrets = Secrets(verify_password=lab.verify_password)
    reg = plan.registry
    auth = {"username": plan.verify_user, "password": lab.verify_password}
    big = 6 * 1024 * 1024
    try:
        cleanup(lab, plan)
        set_node0_hosts(reg.ip)
        assert engine.run(plan, secrets).ok
        build_and_push(reg.address, "gc/app:keep", auth, payload=os.urandom(64 * 1024))
        gone = build_and_push(reg.address, "gc/app:gone", auth, payload=os.urandom(big))
        assert _delete_manifest(plan, lab.verify_password, "gc/app", gone) == 202
        cid = n1(lab, f"docker inspect -f '{{{{.Id}}}}' {reg.container}").strip()

        during: dict[str, object] = {}

        def emit(ev) -> None:
            if isinstance(ev, StepStarted) and ev.step == "collect" and not during:
                during["push"] = _push_errors(reg.address, "gc/app:keep", "gc/app:during", auth)
                during["pull"] = pull(reg.address, "gc/app:keep", auth)

        res = gc.collect(plan, secrets, emit=emit)
        assert res.ok, res.failure
        assert res.restored and res.blobs >= 1
        assert res.freed is not None and big * 0.9 < res.freed < big * 1.5, res
        errors = during["push"]
        assert errors and any("405" in str(x) or "read" in str(x).lower() for x in errors), errors
        assert during["pull"]  # pulls go on while pushes are refused
        # afterwards: read-write again, the other tag still pulls, pushes work, same container
        assert pull(reg.address, "gc/app:keep", auth)
        assert not _push_errors(reg.address, "gc/app:keep", "gc/app:after", auth)
        assert n1(lab, f"docker inspect -f '{{{{.Id}}}}' {reg.container}").strip() == cid
        assert n1(lab, f"test -e {layout(plan).maintenance_marker} && echo left",
                  check=False).strip() == ""  # fmt: skip
    finally:
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)


# ---------------------------------------------------------------- users, without a restart

COMMENT = "# hand-written: who asked for this registry, and why\n"


def _container(lab, plan) -> str:
    """The registry container's ID and start time: a restart or re-create changes it."""
    fmt = "'{{.Id}} {{.State.StartedAt}}'"
    return n1(lab, f"docker inspect -f {fmt} {plan.registry.container}").strip()


def _login_status(plan, user: str, password: str) -> int:
    reg = plan.registry
    status, _h, _b = tls.request(
        reg.domain, reg.ip, reg.port, _anchor(plan), "/v2/", auth=(user, password)
    )
    return status


def test_user_add_passwd_remove_prove_logins_keep_the_container_and_the_comment(
    lab, lab_plan, tmp_path
):
    from regwizard.plan import load_plan, save_plan

    from .test_repair_lab import run_cli

    plan = tenant_plan(lab_plan, "users", 5534)
    secrets = Secrets(verify_password=lab.verify_password)
    reg = plan.registry
    path = tmp_path / "plan.toml"
    save_plan(plan, path)
    text = path.read_text()
    path.write_text(text.replace("[policy]", COMMENT + "[policy]", 1))
    assert COMMENT in path.read_text()
    pw1, pw2 = tmp_path / "pw1", tmp_path / "pw2"
    pw1.write_text("carol-first-password\n")
    pw2.write_text("carol-second-password\n")
    try:
        cleanup(lab, plan)
        set_node0_hosts(reg.ip)
        assert engine.run(plan, secrets).ok
        before = _container(lab, plan)

        def cli(*argv: str) -> None:
            cp = run_cli("user", *argv, home=tmp_path)
            assert cp.returncode == 0, cp.stderr
            assert "carol-" not in cp.stdout + cp.stderr  # no password is ever printed
            assert _container(lab, plan) == before  # no restart, no re-create
            assert COMMENT in path.read_text()

        cli("add", str(path), "carol", "--password-file", str(pw1), "--cost", "4")
        assert _login_status(plan, "carol", "carol-first-password") == 200
        assert "carol" in [u.name for u in load_plan(path).users]

        cli("passwd", str(path), "carol", "--password-file", str(pw2), "--cost", "4")
        assert _login_status(plan, "carol", "carol-first-password") == 401
        assert _login_status(plan, "carol", "carol-second-password") == 200

        cli("remove", str(path), "carol", "--password-file", str(pw2))
        assert _login_status(plan, "carol", "carol-second-password") == 401
        after = load_plan(path)
        assert "carol" not in [u.name for u in after.users] and "carol" in after.remove_users

        # the saved plan is what the host has: a full apply changes nothing
        rerun = engine.run(after, secrets)
        assert rerun.ok and not rerun.changed, [s.step for s in rerun.changed]
        # the verify user cannot be removed: refused before any connection
        cp = run_cli("user", "remove", str(path), plan.verify_user, home=tmp_path)
        assert cp.returncode == 2 and "Traceback" not in cp.stderr, cp.stderr
    finally:
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)


# ---------------------------------------------------------------- a pull-through mirror


def _anonymous_upstream(lab, up) -> bytes:
    """A hand-run registry:2 on node1 with TLS from its own CA and no auth (distribution
    2.8's proxy logs in only to token-auth upstreams: distribution#3153). node0 trusts
    it; returns the CA."""
    reg = up.registry
    ca_key, ca = pki.make_ca(up.certificate, domain=reg.domain)
    key, cert = pki.make_server_cert(
        up.certificate, reg.domain, reg.ip, issuer_key=ca_key, issuer_cert=ca
    )
    node = lab.nodes["node1"]
    d = f"{reg.config_dir}/certs"
    n1(lab, f"mkdir -p {d}")
    labmod.node_exec(node, ["sh", "-c", f"cat > {d}/up.key"], input=pki.key_to_pem(key))
    labmod.node_exec(node, ["sh", "-c", f"cat > {d}/up.crt"], input=pki.cert_to_pem(cert))
    n1(lab, f"docker run -d --name {reg.container} -p {reg.ip}:{reg.port}:5000 "
            f"-v {d}:/certs:ro -v {reg.storage}:/var/lib/registry "
            "-e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/up.crt "
            "-e REGISTRY_HTTP_TLS_KEY=/certs/up.key registry:2 >/dev/null")  # fmt: skip
    ca_pem = pki.cert_to_pem(ca)
    trust = Path(trust_file(reg.address))
    trust.parent.mkdir(parents=True, exist_ok=True)
    trust.write_bytes(ca_pem)
    deadline = time.monotonic() + 15
    while not tls.served(reg.domain, reg.ip, reg.port).connected:
        assert time.monotonic() < deadline, "the upstream does not answer"
        time.sleep(0.2)
    return ca_pem


def test_a_mirror_pulls_an_image_pushed_only_upstream(lab, lab_plan):
    """Two tenants on node1: an upstream with its own CA, and a mirror of it that trusts
    that CA through proxy_ca_file. Verify pulls through the mirror an image that exists
    only upstream; pushes to the mirror are refused by design; a rerun changes nothing."""
    from regwizard.doctor import diagnose

    up = tenant_plan(lab_plan, "upstream", 5536)
    mirror = tenant_plan(lab_plan, "mirror", 5535)
    mirror.registry.proxy_remote_url = f"https://{up.registry.ip}:{up.registry.port}"
    mirror.registry.proxy_ca_file = trust_file(up.registry.address)  # on node0
    mirror.verify.mirror_image = "lab/upstream-only:v1"
    auth = {"username": mirror.verify_user, "password": lab.verify_password}
    try:
        for p in (up, mirror):
            cleanup(lab, p)
        set_node0_hosts(up.registry.ip)
        _anonymous_upstream(lab, up)
        digest = build_and_push(up.registry.address, "lab/upstream-only:v1")

        secrets = Secrets(verify_password=lab.verify_password, upstream_anonymous=True)
        result = engine.run(mirror, secrets)
        assert result.ok, result.failure
        v = result.verification
        assert v is not None and v.pull_digest == digest and not v.push_digest
        assert v.anonymous_refused
        # a rerun changes nothing
        again = engine.run(mirror, Secrets(verify_password=lab.verify_password))
        assert again.ok and not again.changed, [s.step for s in again.changed]
        # pushes to a mirror are refused (distribution's rule)
        errors = _push_errors_to(mirror.registry.address, up.registry.address, auth)
        assert errors, "a push to the mirror was accepted"
        report = diagnose(mirror, Secrets(verify_password=lab.verify_password))
        assert report.exit_code == 0, problems(report)
    finally:
        for p in (mirror, up):
            cleanup(lab, p)
        Path(trust_file(up.registry.address)).unlink(missing_ok=True)
        drop_hosts_everywhere(lab)


def _push_errors_to(mirror_address: str, up_address: str, auth: dict) -> list[str]:
    c = node0_docker()
    try:
        img = c.images.get(f"{up_address}/lab/upstream-only:v1")
        img.tag(f"{mirror_address}/lab/pushed-to-mirror", "v1")
        return [
            i["error"]
            for i in c.api.push(
                f"{mirror_address}/lab/pushed-to-mirror", tag="v1", stream=True, decode=True,
                auth_config=auth,
            )
            if "error" in i
        ]  # fmt: skip
    finally:
        c.close()
