"""The repair holes the one-truth redesign closes, each on the real lab.

1. Storage set by a mounted config.yml (``rootdirectory: /data``) is found and kept, on a
   named volume and on a host directory; S3 storage is refused, never replaced.
2. A certificate renewal cut short heals on the next run: the registry then serves
   exactly the certificate on disk; key and certificate are switched as one pair.
3. /etc/hosts names match without regard to case.
4. Provided-certificate mode checks extra_sans before it installs anything.

Tenants: domain repair.lab.test, ports 5510-5519, containers rp-*, config under
/etc/regwizard-repair and /root/rp-*, storage /opt/rp-*.
"""

from __future__ import annotations

import copy
import threading
import time

import pytest

from regwizard import engine, htpasswd, pki
from regwizard import lab as labmod
from regwizard.adopt import adopt
from regwizard.doctor import diagnose
from regwizard.events import StepFinished
from regwizard.facts import tls
from regwizard.plan import CertificateSpec, Connection, Secrets, User, dump_plan

from .test_repair_lab import (
    DOMAIN,
    build_and_push,
    cleanup,
    drop_hosts_everywhere,
    n1,
    only,
    problems,
    pull,
    repair,
    set_node0_hosts,
    tenant_plan,
)

pytestmark = pytest.mark.lab

USER, PW = "keeper", "keeper-password-42"


def _node1(lab) -> Connection:
    return Connection(
        address=lab.nodes["node1"].ip,
        key_file=lab.key_file,
        host_key=lab.nodes["node1"].host_key,
        label="node1",
    )


def _served_sha(plan) -> str:
    reg = plan.registry
    pem = tls.served(reg.domain, reg.ip, reg.port).pem
    return pki.inspect_cert(pem).sha256 if pem else ""


def _disk_sha(lab, plan) -> str:
    pem = n1(lab, f"cat {plan.registry.config_dir}/certs/current/{DOMAIN}.crt")
    return pki.inspect_cert(pem.encode()).sha256


# ---------------------------------------------------------------- 1. config.yml storage


CONFIG_YML = """\
version: 0.1
storage:
  filesystem:
    rootdirectory: /data
http:
  addr: :5000
  tls:
    certificate: /certs/{domain}.crt
    key: /certs/{domain}.key
auth:
  htpasswd:
    realm: by hand
    path: /auth/htpasswd
"""


def _hand_made_with_config(lab, name: str, port: int, data_mount: str) -> str:
    """A registry set up by hand the documented way: everything in a mounted config.yml.
    Returns the certificate (PEM) it serves."""
    n1ip = lab.nodes["node1"].ip
    base = f"/root/rp-{name}"
    bcrypt = htpasswd.hash_password(PW)
    n1(lab,
       f"mkdir -p {base}/certs {base}/auth && cd {base} && "
       "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 825 "
       f"-keyout certs/{DOMAIN}.key -out certs/{DOMAIN}.crt -subj /CN={DOMAIN} "
       f"-addext subjectAltName=DNS:{DOMAIN},IP:{n1ip} 2>/dev/null && "
       f"printf '%s\\n' '{USER}:{bcrypt}' > auth/htpasswd && "
       f"cat > config.yml <<'EOF'\n{CONFIG_YML.format(domain=DOMAIN)}EOF\n"
       f"grep -qi {DOMAIN} /etc/hosts || echo '{n1ip} {DOMAIN}' >> /etc/hosts; "
       f"docker run -d -p {port}:5000 --restart=always --name rp-{name} "
       f"-v {base}/config.yml:/etc/docker/registry/config.yml "
       f"-v {base}/certs:/certs -v {base}/auth:/auth -v {data_mount}:/data "
       "registry:2 >/dev/null")  # fmt: skip
    crt = n1(lab, f"cat {base}/certs/{DOMAIN}.crt")
    address = f"{DOMAIN}:{port}"
    import os
    from pathlib import Path

    os.makedirs(f"/etc/docker/certs.d/{address}", exist_ok=True)
    Path(f"/etc/docker/certs.d/{address}/ca.crt").write_text(crt)
    set_node0_hosts(n1ip)
    deadline = time.monotonic() + 15
    while not tls.served(DOMAIN, n1ip, port).tls:
        assert time.monotonic() < deadline, "the hand-made registry does not answer"
        time.sleep(0.2)
    return crt


@pytest.mark.parametrize(
    ("name", "port", "kind"), [("cfgvol", 5510, "volume"), ("cfgdir", 5511, "directory")]
)
def test_storage_in_a_mounted_config_yml_is_kept(lab, name, port, kind):
    data = f"rp-{name}-data" if kind == "volume" else f"/opt/rp-{name}-data"
    address = f"{DOMAIN}:{port}"
    auth = {"username": USER, "password": PW}
    plan = None
    try:
        _hand_made_with_config(lab, name, port, data)
        digest = build_and_push(address, "kept/by-config:1", auth)
        before = n1(lab, f"docker inspect -f '{{{{.Id}}}}' rp-{name}")

        adoption = adopt(_node1(lab), Secrets(), f"rp-{name}")
        plan = adoption.plan
        notes = "\n".join(adoption.notes)
        assert f"configuration: /root/rp-{name}/config.yml" in notes, notes
        assert "(/data)" in notes or f"storage: {data} (bound at /data)" in notes, notes
        assert not adoption.refused, adoption.refused
        assert [u.name for u in plan.users] == [USER]
        if kind == "directory":
            # the images stay where they are: the plan mounts that directory
            assert plan.registry.storage == data and adoption.unpersisted_data is None
        else:
            assert adoption.unpersisted_data is not None and adoption.unpersisted_data.name == data
            assert plan.registry.storage.startswith("/opt/")
        assert n1(lab, f"docker inspect -f '{{{{.Id}}}}' rp-{name}") == before  # read-only

        secrets = Secrets(verify_password=PW)
        report = diagnose(plan, secrets)
        drift = " ".join(f.message for f in report.of("plan"))
        if kind == "volume":
            assert f"volume {data}" in drift and "first copy its images" in drift, drift
        repair(plan, secrets)
        # the image pushed before the repair pulls afterwards, with the same digest
        assert pull(address, "kept/by-config:1", auth) == digest
        # no source volume or directory was deleted
        if kind == "volume":
            assert data in n1(lab, "docker volume ls -q").split()
            vol = f"/var/lib/docker/volumes/{data}/_data"
            assert "kept" in n1(lab, f"ls {vol}/docker/registry/v2/repositories")
        else:
            assert "kept" in n1(lab, f"ls {data}/docker/registry/v2/repositories")
    finally:
        if plan is not None:
            cleanup(
                lab, plan, f"/root/rp-{name}", f"/opt/rp-{name}-data", volumes=(f"rp-{name}-data",)
            )
        n1(lab, f"docker rm -f rp-{name} >/dev/null 2>&1; docker volume rm rp-{name}-data "
                f">/dev/null 2>&1; rm -rf /root/rp-{name} /opt/rp-{name}-data", check=False)  # fmt: skip
        drop_hosts_everywhere(lab)


def test_s3_storage_is_adopted_and_never_replaced_without_its_key(lab, lab_plan):
    """storage: s3 becomes the plan's [storage] (its secret key never in the plan or the
    notes); apply without that key stops at the config step, and the container is left
    exactly as it was (no empty registry in its place)."""
    name, port = "s3", 5512
    base = f"/root/rp-{name}"
    plan = None
    try:
        n1(lab,
           f"mkdir -p {base} && cat > {base}/config.yml <<'EOF'\n"
           "version: 0.1\n"
           "storage:\n  s3:\n    region: us-east-1\n    bucket: images\n"
           "    regionendpoint: http://127.0.0.1:9\n    accesskey: AKIA-NOT-REAL\n"
           "    secretkey: not-a-real-secret\n"
           "http:\n  addr: :5000\n"
           "EOF\n"
           f"docker run -d -p {port}:5000 --name rp-{name} "
           f"-v {base}/config.yml:/etc/docker/registry/config.yml registry:2 >/dev/null")  # fmt: skip
        before = n1(lab, f"docker inspect -f '{{{{.Id}}}}' rp-{name}")
        adoption = adopt(_node1(lab), Secrets(), f"rp-{name}")
        assert not adoption.refused, adoption.refused
        plan = adoption.plan
        st = plan.storage
        assert (st.driver, st.bucket, st.endpoint, st.access_key) == (
            "s3",
            "images",
            "http://127.0.0.1:9",
            "AKIA-NOT-REAL",
        )
        assert "not-a-real-secret" not in "\n".join(adoption.notes) + dump_plan(plan)
        plan.users = [User("fixer", htpasswd.hash_password("fixer-password-42"))]
        plan.verify.user = "fixer"
        result = engine.run(plan, Secrets(verify_password="fixer-password-42"))
        assert not result.ok and result.failure is not None
        assert result.failure.step == "config", result.failure
        assert "no S3 secret key" in result.failure.cause, result.failure
        assert n1(lab, f"docker inspect -f '{{{{.Id}}}}' rp-{name}") == before
    finally:
        if plan is not None:
            cleanup(lab, plan, base)
        n1(lab, f"docker rm -f rp-{name} >/dev/null 2>&1; rm -rf {base}", check=False)
        drop_hosts_everywhere(lab)


# ---------------------------------------------------------------- 2. renewal cut short


def test_a_renewal_cut_short_heals_on_the_next_run(lab, lab_plan):
    plan = tenant_plan(lab_plan, "renew", 5513)
    secrets = Secrets(verify_password=lab.verify_password)
    try:
        cleanup(lab, plan)
        first = engine.run(plan, secrets)
        assert first.ok, first.failure
        served_before = _served_sha(plan)
        assert served_before == _disk_sha(lab, plan)

        # a new SAN forces a new certificate; the run is cut right after that step
        plan.certificate.extra_sans = ["renew.repair.lab.test"]
        cancel = threading.Event()

        def cut(ev) -> None:
            if isinstance(ev, StepFinished) and ev.step == "certificate":
                cancel.set()

        cut_run = engine.run(plan, secrets, emit=cut, cancel=cancel)
        assert not cut_run.ok and "cancelled" in cut_run.failure.cause
        on_disk = _disk_sha(lab, plan)
        assert on_disk != served_before
        assert _served_sha(plan) == served_before  # still the old one: TLS loads at start
        # the pair on disk matches (the host proves it without the key leaving it)
        c = f"{plan.registry.config_dir}/certs/current"
        pubs = n1(lab, f"openssl x509 -in {c}/{DOMAIN}.crt -noout -pubkey | sha256sum; "
                       f"openssl pkey -in {c}/{DOMAIN}.key -pubout | sha256sum").split("\n")  # fmt: skip
        assert pubs[0].split()[0] == pubs[1].split()[0]
        stale = diagnose(plan, secrets)
        assert any(f.id == "cert-stale" for f in stale.findings), problems(stale)

        events = []
        healed = engine.run(plan, secrets, emit=events.append)
        assert healed.ok, healed.failure
        container = [e for e in events if isinstance(e, StepFinished) and e.step == "container"]
        assert container[0].status == "changed" and "older certificate" in container[0].detail
        assert _served_sha(plan) == _disk_sha(lab, plan) == on_disk
        again = engine.run(plan, secrets)
        assert again.ok and not again.changed, [s.step for s in again.changed]
    finally:
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)


def test_a_cut_between_key_and_certificate_never_leaves_a_mismatched_pair(
    lab, lab_plan, monkeypatch
):
    """The pair is written into a new generation, then switched by one rename: a cut
    after the key is written (before its certificate) leaves the old pair live."""
    from regwizard.steps import certificate

    plan = tenant_plan(lab_plan, "pair", 5514)
    secrets = Secrets(verify_password=lab.verify_password)
    try:
        cleanup(lab, plan)
        assert engine.run(plan, secrets).ok
        live = _disk_sha(lab, plan)
        real = certificate.Certificate._write_generation

        def key_then_die(self, ctx, e, key, cert):
            lay = ctx.layout
            gen = "g-cut"
            e.host.makedirs(lay.generation_dir(gen), 0o700)
            e.host.write_file(f"{lay.generation_dir(gen)}/{DOMAIN}.key", key, 0o600)
            raise ConnectionError("the connection dropped here")

        monkeypatch.setattr(certificate.Certificate, "_write_generation", key_then_die)
        plan.certificate.extra_sans = ["pair.repair.lab.test"]
        cut = engine.run(plan, secrets)
        assert not cut.ok and cut.failure.step == "certificate"
        assert _disk_sha(lab, plan) == live  # current still points at the old, whole pair
        monkeypatch.setattr(certificate.Certificate, "_write_generation", real)
        healed = engine.run(plan, secrets)
        assert healed.ok, healed.failure
        assert _served_sha(plan) == _disk_sha(lab, plan) != live
        # the half-written generation was moved out of the mounted directory
        listing = n1(lab, f"ls -A {plan.registry.config_dir}/certs").split()
        assert "g-cut" not in listing and len(listing) == 2, listing
        assert "g-cut" in n1(lab, f"ls {plan.registry.config_dir}/backups/certs")
    finally:
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)


# ---------------------------------------------------------------- 3. /etc/hosts case


def test_hosts_file_names_match_without_regard_to_case(lab, lab_plan):
    plan = tenant_plan(lab_plan, "case", 5515)
    secrets = Secrets(verify_password=lab.verify_password)
    node2 = lab.nodes["node2"]
    try:
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)
        labmod.node_exec(node2, ["sh", "-c", f"echo '10.9.9.9 {DOMAIN.upper()}' >> /etc/hosts"])
        report = diagnose(plan, secrets)
        f = only(report, "hosts-file", "node2")[0]
        assert f.id == "hosts-wrong" and "10.9.9.9" in f.message, f
        result = engine.run(plan, secrets)
        assert result.ok, result.failure
        hosts = labmod.node_exec(node2, ["cat", "/etc/hosts"]).stdout.decode()
        assert DOMAIN.upper() not in hosts and "10.9.9.9" not in hosts
        got = labmod.node_exec(node2, ["getent", "ahosts", DOMAIN]).stdout.decode()
        assert {ln.split()[0] for ln in got.splitlines()} == {plan.registry.ip}
        assert result.verification.trust["node2"]  # node2 pulled through the name
    finally:
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)


# ---------------------------------------------------------------- 4. provided + extra_sans


def test_provided_certificate_missing_an_extra_san_is_never_installed(lab, lab_plan, tmp_path):
    plan = tenant_plan(lab_plan, "given", 5516)
    reg = plan.registry
    spec = CertificateSpec(key="ecdsa-p256", organization="given")
    k, c = pki.make_server_cert(spec, reg.domain, reg.ip)  # no extra SAN in it
    (tmp_path / "c.pem").write_bytes(pki.cert_to_pem(c))
    (tmp_path / "k.pem").write_bytes(pki.key_to_pem(k))
    tmp_path.chmod(0o700)
    plan.certificate = copy.deepcopy(plan.certificate)
    plan.certificate.mode = "provided"
    plan.certificate.cert_file = str(tmp_path / "c.pem")
    plan.certificate.key_file = str(tmp_path / "k.pem")
    plan.certificate.extra_sans = ["mirror.repair.lab.test"]
    try:
        cleanup(lab, plan)
        result = engine.run(plan, Secrets(verify_password=lab.verify_password))
        assert not result.ok and result.failure.step == "certificate"
        assert "mirror.repair.lab.test" in result.failure.cause, result.failure
        assert "extra_sans" in result.failure.fix
        assert n1(lab, f"ls -A {reg.config_dir}/certs 2>/dev/null", check=False).strip() == ""
    finally:
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)
