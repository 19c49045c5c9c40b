"""Security and hostile conditions on the real lab (the review's items that need hosts).

- doctor never sends the verify password to a server it has not verified;
- private keys stay on the registry host: check, dry run and doctor read none;
- the http secret is not readable with docker inspect;
- two applies at once: the second waits for the first, no user is lost;
- a data migration that would not fit is refused before anything changes;
- an image pinned by digest is pulled by that digest.

Tenants: domain repair.lab.test, ports 5520-5529, containers rp-*.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from regwizard import engine, htpasswd, pki
from regwizard import lab as labmod
from regwizard.backend import EngineBackend
from regwizard.doctor import diagnose
from regwizard.plan import CertificateSpec, Secrets, User, save_plan

from .test_repair_lab import (
    DOMAIN,
    EXE,
    build_and_push,
    cleanup,
    drop_hosts_everywhere,
    n1,
    problems,
    set_node0_hosts,
    tenant_plan,
)

pytestmark = pytest.mark.lab


def _secrets(lab) -> Secrets:
    return Secrets(verify_password=lab.verify_password)


# ---------------------------------------------------------------- the impostor


IMPOSTOR = r"""
import http.server, ssl, sys
log = open(sys.argv[3], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        log.write(repr(dict(self.headers)) + "\n")
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="impostor"')
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[4], sys.argv[5])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
"""


def test_doctor_never_sends_the_password_to_an_unverified_server(lab, lab_plan, tmp_path):
    """Another TLS server answers at the registry's address (a certificate for the same
    name, from another key): doctor says so, and no Authorization header reaches it."""
    plan = tenant_plan(lab_plan, "imp", 5520)
    secrets = _secrets(lab)
    reg = plan.registry
    proc = None
    try:
        cleanup(lab, plan)
        assert engine.run(plan, secrets).ok
        n1(lab, f"docker stop {reg.container} >/dev/null")
        k, c = pki.make_server_cert(
            CertificateSpec(key="ecdsa-p256", organization="impostor"), reg.domain, reg.ip
        )
        d = "/root/rp-imp"
        n1(lab, f"mkdir -p {d}")
        node = lab.nodes["node1"]
        labmod.node_exec(node, ["sh", "-c", f"cat > {d}/c.pem"], input=pki.cert_to_pem(c))
        labmod.node_exec(node, ["sh", "-c", f"cat > {d}/k.pem"], input=pki.key_to_pem(k))
        labmod.node_exec(node, ["sh", "-c", f"cat > {d}/srv.py"], input=IMPOSTOR.encode())
        proc = subprocess.Popen(
            # the node's own /root hides this venv's interpreter: Debian's python3
            ["nsenter", "-t", str(node.init_pid), "-m", "-u", "-n", "--", "/usr/bin/python3",
             f"{d}/srv.py", reg.ip, str(reg.port), f"{d}/log", f"{d}/c.pem", f"{d}/k.pem"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout.readline().strip() == "ready"

        for report in (
            diagnose(plan, secrets),
            EngineBackend().diagnose(plan, secrets, __import__("threading").Event()),  # Repair
        ):
            f = next(f for f in report.findings if f.check == "tls" and f.severity == "fail")
            assert f.id == "server-not-verified", problems(report)
            login = report.of("login")[0]
            assert login.severity == "skip" and "not sent" in login.message, login
            assert report.exit_code == 1
        seen = n1(lab, f"cat {d}/log")
        assert seen.count("User-Agent") >= 2, seen  # it was asked, anonymously
        assert "Authorization" not in seen and lab.verify_password not in seen, seen
    finally:
        if proc is not None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        n1(lab, "rm -rf /root/rp-imp", check=False)
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)


# ---------------------------------------------------------------- keys and secrets


def test_no_private_key_leaves_the_registry_host(lab, lab_plan, monkeypatch):
    """Check (no-op apply), dry run and doctor read no private key; apply reads the CA
    key only to sign a new server certificate. The http secret is in a root-only file
    and docker inspect shows none of it."""
    from regwizard import hosts
    from regwizard.facts import read

    plan = tenant_plan(lab_plan, "keys", 5521)
    plan.certificate.mode = "local-ca"
    secrets = _secrets(lab)
    try:
        cleanup(lab, plan)
        assert engine.run(plan, secrets).ok
        read_paths: list[str] = []
        real_read, real_snap = hosts.Host.read_file, read.snapshot

        def spy_read(self, path, **kw):
            read_paths.append(path)
            return real_read(self, path, **kw)

        def spy_snapshot(host, *, files=(), **kw):
            read_paths.extend(files)
            return real_snap(host, files=files, **kw)

        monkeypatch.setattr(hosts.Host, "read_file", spy_read)
        monkeypatch.setattr(read, "snapshot", spy_snapshot)
        assert engine.run(plan, secrets).ok  # a no-op rerun
        assert engine.run(plan, secrets, dry_run=True).ok
        assert diagnose(plan, secrets).exit_code == 0
        keys = [p for p in read_paths if p.endswith(".key") or "PRIVATE" in p]
        assert read_paths and not keys, keys

        # a renewal signs with the CA key: the one read of a private key, in apply only
        read_paths.clear()
        plan.certificate.extra_sans = ["keys.repair.lab.test"]
        assert engine.run(plan, secrets).ok
        assert [p for p in read_paths if p.endswith(".key")] == [
            f"{plan.registry.config_dir}/ca/ca.key"
        ]
        # the CA key is outside the directory mounted into the registry
        mounts = n1(lab, f"docker inspect -f '{{{{json .Mounts}}}}' {plan.registry.container}")
        sources = [m["Source"] for m in json.loads(mounts)]
        assert f"{plan.registry.config_dir}/ca" not in sources
        assert not any(
            "ca.key" in p for p in n1(lab, f"find {plan.registry.config_dir}/certs").split()
        )

        # the http secret: root-only file, never in docker inspect
        cfg = n1(lab, f"cat {plan.registry.config_dir}/registry/config.yml")
        secret = next(ln.split(":", 1)[1].strip().strip('"') for ln in cfg.splitlines()
                      if ln.strip().startswith("secret:"))  # fmt: skip
        assert len(secret) == 64
        inspect = n1(lab, f"docker inspect {plan.registry.container}")
        assert secret not in inspect and "REGISTRY_HTTP_SECRET" not in inspect
        assert (
            n1(lab, f"stat -c %a {plan.registry.config_dir}/registry/config.yml").strip() == "600"
        )
    finally:
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)


# ---------------------------------------------------------------- two runs at once


def test_two_applies_at_once_lose_no_user(lab, lab_plan, tmp_path):
    """Two plans for one registry, each adding its own user, applied at the same moment:
    the run lock makes the second wait for the first, so htpasswd ends with both."""
    plan = tenant_plan(lab_plan, "twice", 5522)
    plan.users = list(plan.users)
    secrets = _secrets(lab)
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("REGWIZARD_PASSWORD", None)
    pw = tmp_path / "pw"
    pw.write_text(lab.verify_password + "\n")
    files = []
    try:
        cleanup(lab, plan)
        for who in ("ann", "bob"):
            p = copy.deepcopy(plan)
            p.users.append(User(who, htpasswd.hash_password(f"{who}-password-42", 4)))
            f = tmp_path / f"{who}.toml"
            save_plan(p, f)
            files.append((p, f))
        procs = [
            subprocess.Popen(
                [EXE, "apply", str(f), "--password-file", str(pw)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )  # fmt: skip
            for _p, f in files
        ]
        outs = [p.communicate(timeout=600) for p in procs]
        for p, (_out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err
        waited = [err for _o, err in outs if "waiting" in err]
        assert len(waited) == 1, [e[-2000:] for _o, e in outs]  # exactly one run waited
        assert "pid" in waited[0] and "started" in waited[0]  # and it named the holder
        users = {
            ln.split(":", 1)[0]
            for ln in n1(lab, f"cat {plan.registry.config_dir}/auth/htpasswd").splitlines()
        }
        assert {"ann", "bob", plan.verify_user} <= users
        for p, _f in files:
            report = diagnose(p, secrets)
            assert report.exit_code == 0, problems(report)
    finally:
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)


# ---------------------------------------------------------------- migration space


def test_a_migration_that_would_not_fit_is_refused_with_nothing_changed(lab, lab_plan):
    """Images in an anonymous volume (~20 MB), the plan's storage on an 80 MiB tmpfs
    (64 MiB must stay free): apply refuses before it stops or copies anything."""
    name, port = "tiny", 5523
    address = f"{DOMAIN}:{port}"
    n1ip = lab.nodes["node1"].ip
    plan = tenant_plan(lab_plan, name, port)
    plan.registry.storage = "/opt/rp-tiny"
    volumes: list[str] = []
    try:
        cleanup(lab, plan)
        k, c = pki.make_server_cert(CertificateSpec(key="ecdsa-p256"), DOMAIN, n1ip)
        node = lab.nodes["node1"]
        n1(lab, "mkdir -p /root/rp-tiny-certs /opt/rp-tiny && "
                "mount -t tmpfs -o size=80m rp-tiny /opt/rp-tiny")  # fmt: skip
        labmod.node_exec(node, ["sh", "-c", f"cat > /root/rp-tiny-certs/{DOMAIN}.crt"],
                         input=pki.cert_to_pem(c))  # fmt: skip
        labmod.node_exec(node, ["sh", "-c", f"cat > /root/rp-tiny-certs/{DOMAIN}.key"],
                         input=pki.key_to_pem(k))  # fmt: skip
        n1(lab,
           f"grep -qi {DOMAIN} /etc/hosts || echo '{n1ip} {DOMAIN}' >> /etc/hosts; "
           f"docker run -d -p {port}:5000 --name rp-{name} -v /root/rp-tiny-certs:/certs "
           f"-e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/{DOMAIN}.crt "
           f"-e REGISTRY_HTTP_TLS_KEY=/certs/{DOMAIN}.key registry:2 >/dev/null")  # fmt: skip
        Path(f"/etc/docker/certs.d/{address}").mkdir(parents=True, exist_ok=True)
        Path(f"/etc/docker/certs.d/{address}/ca.crt").write_bytes(pki.cert_to_pem(c))
        set_node0_hosts(n1ip)
        time.sleep(1)
        build_and_push(address, "big/blob:1", None, payload=os.urandom(20 * 2**20))
        volumes = [v for v in n1(lab, f"docker inspect -f '{{{{range .Mounts}}}}{{{{.Name}}}} "
                                      f"{{{{end}}}}' rp-{name}").split() if len(v) == 64]  # fmt: skip
        before = n1(lab, f"docker inspect -f '{{{{.Id}}}} {{{{.State.Status}}}}' rp-{name}")

        result = engine.run(plan, _secrets(lab))
        assert not result.ok and result.failure.step == "container", result.failure
        assert "do not fit" in result.failure.cause and "MiB free" in result.failure.cause
        assert "nothing was changed" in result.failure.fix
        assert n1(lab, f"docker inspect -f '{{{{.Id}}}} {{{{.State.Status}}}}' rp-{name}") == before
        assert n1(lab, "ls -A /opt/rp-tiny").strip() == ""
        assert volumes and volumes[0] in n1(lab, "docker volume ls -q")
        report = diagnose(plan, _secrets(lab))
        refusal = [f for f in report.findings if f.id == "apply-refuses"]
        assert refusal and "do not fit" in refusal[0].message, problems(report)
    finally:
        n1(lab, f"docker rm -f rp-{name} >/dev/null 2>&1; umount /opt/rp-tiny; "
                "rm -rf /root/rp-tiny-certs /opt/rp-tiny", check=False)  # fmt: skip
        cleanup(lab, plan, volumes=tuple(volumes))
        drop_hosts_everywhere(lab)


# ---------------------------------------------------------------- digest-pinned images


def test_an_image_pinned_by_digest_is_pulled_by_that_digest(lab, lab_plan):
    """A mirror registry (TLS, no auth) on node1 holds registry:2; the plan pins it as
    NAME@sha256:DIGEST. With no local copy, the image step pulls exactly that digest."""
    n1ip = lab.nodes["node1"].ip
    mirror = f"{DOMAIN}:5524"
    plan = tenant_plan(lab_plan, "pinned", 5525)
    try:
        cleanup(lab, plan)
        k, c = pki.make_server_cert(CertificateSpec(key="ecdsa-p256"), DOMAIN, n1ip)
        node = lab.nodes["node1"]
        n1(lab, "mkdir -p /root/rp-mirror")
        labmod.node_exec(node, ["sh", "-c", f"cat > /root/rp-mirror/{DOMAIN}.crt"],
                         input=pki.cert_to_pem(c))  # fmt: skip
        labmod.node_exec(node, ["sh", "-c", f"cat > /root/rp-mirror/{DOMAIN}.key"],
                         input=pki.key_to_pem(k))  # fmt: skip
        n1(lab, textwrap.dedent(f"""\
            grep -qi {DOMAIN} /etc/hosts || echo '{n1ip} {DOMAIN}' >> /etc/hosts
            mkdir -p '/etc/docker/certs.d/{mirror}'
            cp /root/rp-mirror/{DOMAIN}.crt '/etc/docker/certs.d/{mirror}/ca.crt'
            docker run -d -p 5524:5000 --name rp-mirror -v /root/rp-mirror:/certs \\
              -e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/{DOMAIN}.crt \\
              -e REGISTRY_HTTP_TLS_KEY=/certs/{DOMAIN}.key registry:2 >/dev/null
            sleep 6
            docker tag registry:2 {mirror}/library/registry:2
            docker push {mirror}/library/registry:2 >/dev/null
            """))  # fmt: skip
        digest = n1(lab, f"docker inspect -f '{{{{index .RepoDigests 0}}}}' "
                         f"{mirror}/library/registry:2").strip().split("@")[1]  # fmt: skip
        n1(lab, f"docker rmi {mirror}/library/registry:2 >/dev/null")
        pinned = f"{mirror}/library/registry@{digest}"
        assert not n1(lab, f"docker images -q {pinned}", check=False).strip()
        plan.registry.image = pinned
        events: list = []
        result = engine.run(plan, _secrets(lab), emit=events.append)
        assert result.ok, result.failure
        image = [e for e in events if getattr(e, "step", "") == "image" and hasattr(e, "status")]
        assert image[0].status == "changed" and f"pulled {pinned}" in image[0].detail
        ran = n1(lab, f"docker inspect -f '{{{{.Config.Image}}}}' {plan.registry.container}")
        assert ran.strip() == pinned
        again = engine.run(plan, _secrets(lab))
        assert again.ok and not again.changed
    finally:
        n1(lab, f"docker rm -f rp-mirror >/dev/null 2>&1; rm -rf /root/rp-mirror "
                f"'/etc/docker/certs.d/{mirror}'; docker rmi -f $(docker images -q "
                f"'{mirror}/library/registry') >/dev/null 2>&1", check=False)  # fmt: skip
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)
