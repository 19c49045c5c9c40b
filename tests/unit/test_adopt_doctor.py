"""Offline tests for the repair helpers: reading a container's setup (adopt) and the
doctor's evidence (live probe, certificate and trust classification, certs.d files)."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import ssl
import threading
from types import SimpleNamespace

import pytest

from regwizard import hosts, pki
from regwizard.adopt import (
    CertSummary,
    DataPlace,
    adopt,
    host_path,
    is_anonymous_volume,
    listen_port,
    looks_like_registry,
    parse_target,
    published,
)
from regwizard.doctor import (
    PLAIN_HTTP,
    DoctorReport,
    Finding,
    _classify_cert_problem,
    _trusts,
    format_finding,
    live_probe,
)
from regwizard.errors import RegwizardError
from regwizard.htpasswd import hash_password
from regwizard.plan import CertificateSpec, Connection, Secrets

from .certs import self_signed_pem

# ---------------------------------------------------------------- adopt


@pytest.mark.parametrize(
    ("text", "port", "want"),
    [
        ("root@10.0.0.2", None, ("root", "10.0.0.2", 22)),
        ("10.0.0.2", None, ("root", "10.0.0.2", 22)),
        ("admin@reg.example.test:2222", None, ("admin", "reg.example.test", 2222)),
        ("admin@reg.example.test:2222", 22, ("admin", "reg.example.test", 22)),
        ("ops@[fd00::2]:2200", None, ("ops", "fd00::2", 2200)),
        ("ops@fd00::2", None, ("ops", "fd00::2", 22)),
    ],
)
def test_parse_target(text, port, want):
    assert parse_target(text, port) == want


@pytest.mark.parametrize("bad", ["root@", "root@host:ssh", "u@[fd00::1"])
def test_parse_target_rejects(bad):
    with pytest.raises(RegwizardError):
        parse_target(bad)


MOUNTS = [
    {"Type": "bind", "Source": "/root/certs", "Destination": "/certs"},
    {"Type": "bind", "Source": "/root/auth/htpasswd", "Destination": "/auth/htpasswd"},
    {"Type": "volume", "Name": "a" * 64, "Source": "/var/lib/docker/volumes/x/_data",
     "Destination": "/var/lib/registry"},
    {"Type": "bind", "Source": "/srv", "Destination": "/"},
]  # fmt: skip


def test_host_path_takes_the_longest_mount():
    assert host_path(MOUNTS, "/certs/reg.crt") == ("/root/certs/reg.crt", MOUNTS[0])
    assert host_path(MOUNTS, "/auth/htpasswd") == ("/root/auth/htpasswd", MOUNTS[1])
    assert host_path(MOUNTS, "/var/lib/registry")[0] == "/var/lib/docker/volumes/x/_data"
    assert host_path(MOUNTS, "/etc/x") == ("/srv/etc/x", MOUNTS[3])
    assert host_path(MOUNTS[:2], "/certsX/a") == (None, None)


def test_anonymous_volume():
    assert is_anonymous_volume(MOUNTS[2])
    assert not is_anonymous_volume({"Type": "volume", "Name": "regdata"})
    assert not is_anonymous_volume(MOUNTS[0]) and not is_anonymous_volume(None)


@pytest.mark.parametrize(
    ("image", "cmd", "want"),
    [
        ("registry:2", [], True),
        ("docker.io/library/registry:2.8.3", [], True),
        ("ghcr.io/distribution/distribution:3.0.0", [], True),
        ("registry.gitlab.com/team/app:1", [], False),  # a registry host, not a registry
        ("nginx:latest", [], False),
        ("sha256:abcd", ["serve", "/etc/docker/registry/config.yml"], True),
    ],
)
def test_looks_like_registry(image, cmd, want):
    attrs = {"Config": {"Image": image, "Cmd": cmd, "Entrypoint": []}}
    assert looks_like_registry(attrs) is want


def test_ports_and_listen_address():
    attrs = {"HostConfig": {"PortBindings": {
        "5000/tcp": [{"HostIp": "", "HostPort": "5500"}, {"HostIp": "::", "HostPort": "5500"}],
        "5001/udp": [{"HostPort": "9"}],
    }}}  # fmt: skip
    assert published(attrs) == {5000: [5500, 5500]}
    assert listen_port({}) == 5000
    assert listen_port({"REGISTRY_HTTP_ADDR": ":5443"}) == 5443
    assert listen_port({"REGISTRY_HTTP_ADDR": "0.0.0.0:5000"}) == 5000
    assert published({"HostConfig": {"NetworkMode": "host"}}) == {}


# ---------------------------------------------------------------- adopt on a faked host

ANON = "9f2c4e1a7b3d" + "0" * 52


class _Container:
    """A docker-py container: attrs as `docker inspect` gives them."""

    def __init__(self, attrs: dict):
        self.name, self.attrs, self.status = "registry", attrs, "running"
        self.image = SimpleNamespace(tags=["registry:2"])

    def reload(self) -> None:
        pass

    def get_archive(self, path: str):
        import docker.errors

        raise docker.errors.NotFound(path)


class _Host:
    """What adopt uses of a Host: its Docker client and files (read-only)."""

    label = "10.0.0.2"
    fingerprint = "SHA256:fake"

    def __init__(self, attrs: dict, files: dict[str, bytes]):
        self.container, self.files = _Container(attrs), files

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def docker(self, timeout: float = 60):
        c = self.container
        return SimpleNamespace(
            containers=SimpleNamespace(get=lambda name: c, list=lambda all=False: [c])
        )

    def read_file(self, path: str, **kw) -> bytes | None:
        return self.files.get(path)

    def exists(self, path: str, **kw) -> bool:
        return False


def _adopt(monkeypatch, env: list[str], mounts: list[dict], files: dict[str, bytes]):
    attrs = {
        "Config": {"Image": "registry:2", "Env": env},
        "HostConfig": {"PortBindings": {"5000/tcp": [{"HostPort": "443"}]}},
        "State": {"Status": "running"},
        "Mounts": mounts,
    }
    host = _Host(attrs, files)
    monkeypatch.setattr(hosts, "connect", lambda *a, **k: host)
    return adopt(Connection(address="10.0.0.2"), Secrets())


def test_adopt_facts_tls_md5_user_anonymous_volume(monkeypatch):
    _, cert = pki.make_server_cert(
        CertificateSpec(key="ecdsa-p256"), "reg.example.test", "10.0.0.2", days=90
    )
    pem = pki.cert_to_pem(cert)
    htpasswd_text = f"carol:{hash_password('carol-pw-42', rounds=4)}\ndave:$apr1$xyz$abc\n"
    found = _adopt(
        monkeypatch,
        [
            "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt",
            "REGISTRY_HTTP_TLS_KEY=/certs/domain.key",
            "REGISTRY_AUTH=htpasswd",
            "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd",
        ],
        [
            {"Type": "bind", "Source": "/root/certs", "Destination": "/certs"},
            {"Type": "bind", "Source": "/root/auth", "Destination": "/auth"},
            {
                "Type": "volume",
                "Name": ANON,
                "Source": "/var/lib/docker/volumes/x/_data",
                "Destination": "/var/lib/registry",
            },
        ],
        {"/root/certs/domain.crt": pem, "/root/auth/htpasswd": htpasswd_text.encode()},
    )
    assert [u.name for u in found.plan.users] == ["carol"]
    assert found.ignored_users == [("dave", "apr1-md5")]
    assert found.unpersisted_data == DataPlace("anonymous-volume", ANON[:12])
    left = pki.inspect_cert(pem).days_left
    assert left in (89, 90)
    assert found.certificate == CertSummary(
        "CN=reg.example.test, SANs reg.example.test, 10.0.0.2, ecdsa-p256, 90 days", left
    )
    assert not found.plain_http
    # the notes say the same in words (the CLI prints them)
    ignored = "user dave: a apr1-md5 hash that the registry ignores"
    assert any(n.startswith(ignored) for n in found.notes)
    assert f"certificate /root/certs/domain.crt: {found.certificate.details}, {left} left" in (
        found.notes
    )
    assert any(f"in anonymous volume {ANON[:12]} (/var/lib/registry)" in n for n in found.notes)


def test_adopt_facts_plain_http_and_bound_storage(monkeypatch):
    found = _adopt(
        monkeypatch,
        [],
        [{"Type": "bind", "Source": "/srv/registry", "Destination": "/var/lib/registry"}],
        {},
    )
    assert found.plain_http and found.certificate is None
    assert found.unpersisted_data is None and found.plan.registry.storage == "/srv/registry"
    assert found.ignored_users == [] and found.plan.users == []
    assert any(n.startswith("plain HTTP: the registry has no TLS") for n in found.notes)


@pytest.mark.parametrize(
    ("mounts", "want", "words"),
    [
        ([], DataPlace("layer"), "in the container's writable layer"),
        (
            [{"Type": "volume", "Name": "regdata", "Destination": "/var/lib/registry"}],
            DataPlace("volume", "regdata"),
            "in volume regdata",
        ),
    ],
)
def test_adopt_facts_data_not_persisted(monkeypatch, mounts, want, words):
    found = _adopt(monkeypatch, [], mounts, {})
    assert found.unpersisted_data == want and want.where == words
    assert any(n.startswith(f"storage not persisted: images are {words} (") for n in found.notes)


# ---------------------------------------------------------------- certificates


def _cn_only_cert() -> bytes:
    return self_signed_pem("reg.example.test")


def _problems(pem: bytes, domain="reg.example.test", ip="10.0.0.2") -> list[tuple[str, str]]:
    info = pki.inspect_cert(pem)
    return [_classify_cert_problem(p) for p in pki.cert_problems(info, domain=domain, ip=ip)]


def test_cert_evidence_is_dockers_own_text():
    assert _problems(_cn_only_cert()) == [("fail", pki.LEGACY_CN)]
    spec = CertificateSpec(key="ecdsa-p256")
    _, other = pki.make_server_cert(spec, "other.example.test", "10.0.0.2")
    assert _problems(pki.cert_to_pem(other)) == [
        ("fail", "x509: certificate is valid for other.example.test, not reg.example.test")
    ]
    _, no_ip = pki.make_server_cert(spec, "reg.example.test")
    (sev, ev), = _problems(pki.cert_to_pem(no_ip))  # fmt: skip
    assert sev == "fail" and "doesn't contain any IP SANs" in ev
    _, soon = pki.make_server_cert(spec, "reg.example.test", "10.0.0.2", days=10)
    (sev, ev), = _problems(pki.cert_to_pem(soon))  # fmt: skip
    assert sev == "warn" and "expires on" in ev
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    _, gone = pki.make_server_cert(spec, "reg.example.test", "10.0.0.2", days=365, now=old)
    assert _problems(pki.cert_to_pem(gone)) == [("fail", pki.EXPIRED)]


def test_trust_bundle_matching():
    spec = CertificateSpec(key="ecdsa-p256", organization="t")
    _, leaf = pki.make_server_cert(spec, "reg.example.test")
    leaf_pem = pki.cert_to_pem(leaf)
    _, other = pki.make_server_cert(spec, "reg.example.test")
    assert _trusts(leaf_pem, leaf_pem)  # self-signed: the certificate is its own CA
    assert _trusts(pki.cert_to_pem(other) + leaf_pem, leaf_pem)  # anywhere in the bundle
    assert not _trusts(pki.cert_to_pem(other), leaf_pem)
    ca_key, ca = pki.make_ca(spec)
    _, signed = pki.make_server_cert(spec, "reg.example.test", issuer_key=ca_key, issuer_cert=ca)
    assert _trusts(pki.cert_to_pem(ca), pki.cert_to_pem(signed))
    assert not _trusts(b"not a certificate", leaf_pem)


# ---------------------------------------------------------------- live probe


def _serve(handler_cls, tls_cert: tuple[bytes, bytes] | None, tmp_path):
    srv = http.server.HTTPServer(("127.0.0.1", 0), handler_cls)
    if tls_cert:
        (tmp_path / "c.pem").write_bytes(tls_cert[0])
        (tmp_path / "k.pem").write_bytes(tls_cert[1])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class _Registry(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.headers.get("Authorization"):
            self.send_response(200)
        else:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="Registry Realm"')
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *a):
        pass


def test_probe_tls_registry(tmp_path):
    spec = CertificateSpec(key="ecdsa-p256")
    k, c = pki.make_server_cert(spec, "reg.example.test", "127.0.0.1")
    cert = pki.cert_to_pem(c)
    srv = _serve(_Registry, (cert, pki.key_to_pem(k)), tmp_path)
    try:
        port = srv.server_address[1]
        p = live_probe("reg.example.test", "127.0.0.1", port)
        assert p.tls and p.status == 401 and p.peer_pem == cert
        assert "basic" in p.headers["www-authenticate"].lower()
        assert live_probe("reg.example.test", "127.0.0.1", port, auth=("u", "p")).status == 200
    finally:
        srv.shutdown()


def test_probe_plain_http_registry(tmp_path):
    srv = _serve(_Registry, None, tmp_path)
    try:
        p = live_probe("reg.example.test", "127.0.0.1", srv.server_address[1])
        assert p.plain_http and not p.tls and p.docker_error.endswith(PLAIN_HTTP)
    finally:
        srv.shutdown()


def test_probe_refused_and_dropped():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = live_probe("reg.example.test", "127.0.0.1", port)
    assert not p.connected and "connect: connection refused" in p.docker_error
    # a published port with nothing behind it (docker-proxy): accepted, then closed
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(8)

    def drop() -> None:
        for _ in range(2):
            conn, _ = lsn.accept()
            conn.close()

    threading.Thread(target=drop, daemon=True).start()
    p = live_probe("reg.example.test", "127.0.0.1", lsn.getsockname()[1])
    lsn.close()
    assert p.connected and not p.tls
    assert p.docker_error.endswith(("EOF", "connection reset by peer")), p.docker_error


# ---------------------------------------------------------------- certs.d, report


def test_stray_certs_d_files(tmp_path):
    from regwizard import hosts
    from regwizard.steps import stray_certs_d_files

    for name in ("ca.cert", "client.cert", "client.key", "lonely.key", "ok.crt"):
        (tmp_path / name).write_text("x")
    with hosts.connect(Connection(), Secrets()) as h:
        got = dict(stray_certs_d_files(h, str(tmp_path)))
        assert set(got) == {"ca.cert", "lonely.key"}
        assert got["ca.cert"] == (
            "missing key ca.key for client certificate ca.cert. "
            "CA certificates must use the extension .crt"
        )
        assert stray_certs_d_files(h, str(tmp_path / "missing")) == []


def test_report_exit_codes_and_lines():
    ok = Finding("tls", "node1", "ok", "TLS answers")
    bad = Finding("auth", "node1", "fail", "registry without auth", "GET /v2/ -> 200", "apply")
    assert DoctorReport([ok]).exit_code == 0 and DoctorReport([ok]).healthy
    assert DoctorReport([ok, bad]).exit_code == 1
    assert DoctorReport([ok], incomplete=["connect@node1: refused"]).exit_code == 2
    lines = format_finding(bad)
    assert lines[0].split()[:3] == ["fail", "auth", "node1"]
    assert "evidence: GET /v2/ -> 200" in lines[1] and "fix:" in lines[2]
    assert format_finding(ok) == [format_finding(ok)[0]]
    assert DoctorReport([ok, bad]).to_json()["problems"] == 1
