"""Offline tests for reading a registry (facts), adopting it (adopt.adoption) and the
doctor's evidence: the TLS look at the port, certificate and trust classification,
certs.d files and the report. Whole hosts are in the JSON fixtures (test_fixtures.py);
these test the pieces."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import ssl
import threading

import pytest

from regwizard import pki, problems
from regwizard.adopt import CertSummary, DataPlace, Found, adoption, parse_target
from regwizard.doctor import DoctorReport, Finding, format_finding
from regwizard.errors import RegwizardError
from regwizard.facts import certsd
from regwizard.facts.registry import (
    Mount,
    host_path,
    interpret,
    looks_like_registry,
    mounts_of,
    port_of,
    published_ports,
)
from regwizard.facts.tls import PLAIN_HTTP, served
from regwizard.htpasswd import hash_password
from regwizard.plan import CertificateSpec, Connection, Plan, RegistrySpec, dump_plan

from .certs import self_signed_pem

# ---------------------------------------------------------------- parse_target


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


@pytest.mark.parametrize("bad", ["root@", "root@host:ssh", "u@[fd00::1", "u@h:0", "u@h:70000"])
def test_parse_target_rejects(bad):
    with pytest.raises(RegwizardError):
        parse_target(bad)


# ---------------------------------------------------------------- mounts, ports, listen

ANON = "9f2c4e1a7b3d" + "0" * 52
MOUNTS = [
    {"Type": "bind", "Source": "/root/certs", "Destination": "/certs"},
    {"Type": "bind", "Source": "/root/auth/htpasswd", "Destination": "/auth/htpasswd"},
    {"Type": "volume", "Name": ANON, "Source": "/var/lib/docker/volumes/x/_data",
     "Destination": "/var/lib/registry"},
    {"Type": "bind", "Source": "/srv", "Destination": "/"},
]  # fmt: skip


def test_host_path_takes_the_longest_mount():
    ms = mounts_of({"Mounts": MOUNTS})
    assert host_path(ms, "/certs/reg.crt") == ("/root/certs/reg.crt", ms[0])
    assert host_path(ms, "/auth/htpasswd") == ("/root/auth/htpasswd", ms[1])
    assert host_path(ms, "/var/lib/registry")[0] == "/var/lib/docker/volumes/x/_data"
    assert host_path(ms, "/etc/x") == ("/srv/etc/x", ms[3])
    assert host_path(ms[:2], "/certsX/a") == (None, None)
    assert host_path(ms, "relative/path") == (None, None)
    # a tmpfs holds the path, but it is on no host directory
    tmp = mounts_of({"HostConfig": {"Tmpfs": {"/var/lib/registry": "size=1g"}}})
    assert host_path(tmp, "/var/lib/registry/docker") == (None, tmp[0])


def test_mounts_tolerate_hostile_inspect_data():
    assert mounts_of({"Mounts": [None, 3, {"Destination": 7}, {"Destination": "rel"}]}) == []
    assert mounts_of({"Mounts": "nope"}) == [] and mounts_of([]) == []
    (m,) = mounts_of({"Mounts": [{"Destination": "/d", "RW": False}]})
    assert m == Mount("bind", "", "/d", "", rw=False)


def test_anonymous_volume():
    ms = mounts_of({"Mounts": MOUNTS})
    assert ms[2].anonymous
    assert not Mount("volume", "/x", "/d", name="regdata").anonymous
    assert not ms[0].anonymous


@pytest.mark.parametrize(
    ("image", "cmd", "want"),
    [
        ("registry:2", [], True),
        ("docker.io/library/registry:2.8.3", [], True),
        ("ghcr.io/distribution/distribution:3.0.0", [], True),
        ("registry.gitlab.com/team/app:1", [], False),  # a registry host, not a registry
        ("nginx:latest", [], False),
        ("sha256:abcd", ["serve", "/etc/docker/registry/config.yml"], True),
        ("sha256:abcd", ["serve", "/etc/app/config.yml"], False),
    ],
)
def test_looks_like_registry(image, cmd, want):
    attrs = {"Config": {"Image": image, "Cmd": cmd, "Entrypoint": []}}
    assert looks_like_registry(attrs) is want


def test_looks_like_registry_by_its_image_tags():
    attrs = {"Config": {"Image": "sha256:abcd", "Cmd": ["/etc/docker/registry/config.yml"]}}
    assert looks_like_registry(attrs, ["registry:2"])


def test_ports_and_listen_address():
    attrs = {"HostConfig": {"PortBindings": {
        "5000/tcp": [{"HostIp": "", "HostPort": "5500"}, {"HostIp": "::", "HostPort": "5500"}],
        "5001/udp": [{"HostPort": "9"}],
        "bad/tcp": [{"HostPort": "1"}],
        "6000/tcp": [{"HostPort": "99999"}],
    }}}  # fmt: skip
    assert published_ports(attrs) == {5000: [5500, 5500]}
    assert published_ports({"HostConfig": {"NetworkMode": "host"}}) == {}
    assert port_of("") == 5000
    assert port_of(":5443") == 5443
    assert port_of("0.0.0.0:5000") == 5000
    assert port_of("[::]:70000") == 5000
    read = _reader({})
    env = {"Config": {"Env": ["REGISTRY_HTTP_ADDR=:5443"]}}
    assert interpret(env, read).listen_port == 5443
    assert interpret({}, read).listen_port == 5000


def test_config_file_location_and_env_overrides():
    """argv (serve PATH) wins over REGISTRY_CONFIGURATION_PATH; env overrides file keys."""
    cfg = b"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /data\nhttp:\n  addr: :5001\n"
    attrs = {
        "Config": {
            "Image": "registry:2",
            "Cmd": ["serve", "/cfg/a.yml"],
            "Env": ["REGISTRY_CONFIGURATION_PATH=/cfg/b.yml", "REGISTRY_HTTP_ADDR=:5002"],
        },
        "Mounts": [{"Type": "bind", "Source": "/srv/cfg", "Destination": "/cfg"}],
    }
    f = interpret(attrs, _reader({"/srv/cfg/a.yml": cfg}, attrs["Mounts"]))
    assert (f.config.path, f.config.origin, f.config.where) == (
        "/cfg/a.yml",
        "command",
        "/srv/cfg/a.yml",
    )
    assert f.storage.root == "/data" and f.listen_port == 5002
    attrs["Config"]["Cmd"] = []
    f = interpret(attrs, _reader({"/srv/cfg/b.yml": cfg}, attrs["Mounts"]))
    assert (f.config.path, f.config.origin) == ("/cfg/b.yml", "env")
    v3 = interpret({"Config": {"Image": "registry:3.0.0"}}, _reader({}))
    assert v3.config.path == "/etc/distribution/config.yml" and not v3.config.found


# ---------------------------------------------------------------- adopt on faked data


def _reader(files: dict[str, bytes], mounts: list[dict] | None = None):
    """read(container path) -> (bytes, where), through the mounts, as facts.read does."""

    def read(cpath: str):
        hp, _m = host_path(mounts_of({"Mounts": mounts or []}), cpath)
        if hp and hp in files:
            return files[hp], hp
        if cpath in files:  # a file of the container itself (get_archive)
            return files[cpath], f"registry:{cpath}"
        return None, f"registry:{cpath}"

    return read


def _adopt(
    env: list[str], mounts: list[dict], files: dict[str, bytes], address="10.0.0.2", **found_kw
):
    attrs = {
        "Name": "/registry",
        "Config": {"Image": "registry:2", "Env": env},
        "HostConfig": {
            "PortBindings": {"5000/tcp": [{"HostPort": "443"}]},
            "RestartPolicy": {"Name": "always"},
        },
        "State": {"Status": "running"},
        "Mounts": mounts,
    }
    read = _reader(files, mounts)
    facts = interpret(attrs, read)
    cert, cert_where = read(facts.tls.certificate) if facts.tls.certificate else (None, "")
    ht, ht_where = read(facts.auth.htpasswd) if facts.auth.htpasswd else (None, "")
    found = Found(
        facts=facts,
        image_tags=("registry:2",),
        cert=cert,
        cert_where=cert_where,
        htpasswd=ht,
        htpasswd_where=ht_where,
        host_label="node1",
        fingerprint="SHA256:" + "A" * 43,
        **found_kw,
    )
    return adoption(found, Connection(address=address))


@pytest.mark.parametrize(
    ("alias", "hostname", "domain", "ip"),
    [
        ("regbox", "10.9.9.9", "registry.example.test", "10.9.9.9"),
        ("prod.reg", "reg.internal.test", "reg.internal.test", ""),
    ],
)
def test_adopt_through_an_ssh_config_alias(alias, hostname, domain, ip):
    """The plan keeps the alias as its host; the registry's name never becomes the alias."""
    route = f"{alias} (→ root@{hostname}:22 via ~/.ssh/config)"
    found = _adopt([], [], {}, address=alias, route=route, hostname=hostname)
    assert found.plan.host.address == alias
    assert found.plan.registry.domain == domain and found.plan.registry.ip == ip
    assert any(route in n and "keeps the alias" in n for n in found.notes)


def test_adopt_facts_tls_md5_user_anonymous_volume():
    _, cert = pki.make_server_cert(
        CertificateSpec(key="ecdsa-p256"), "reg.example.test", "10.0.0.2", days=90
    )
    pem = pki.cert_to_pem(cert)
    htpasswd_text = f"carol:{hash_password('carol-pw-42', rounds=4)}\ndave:$apr1$xyz$abc\n"
    found = _adopt(
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
    assert not found.plain_http and found.refused == []
    assert found.plan.registry.domain == "reg.example.test"
    assert found.plan.host.host_key == "SHA256:" + "A" * 43  # pinned as read
    # the notes say the same in words (the CLI prints them)
    ignored = "user dave: a apr1-md5 hash that the registry ignores"
    assert any(n.startswith(ignored) for n in found.notes)
    assert f"certificate /root/certs/domain.crt: {found.certificate.details}, {left} left" in (
        found.notes
    )
    assert any(f"in anonymous volume {ANON[:12]} (/var/lib/registry)" in n for n in found.notes)


def test_adopt_facts_plain_http_and_bound_storage():
    found = _adopt(
        [],
        [{"Type": "bind", "Source": "/srv/registry", "Destination": "/var/lib/registry"}],
        {},
    )
    assert found.plain_http and found.certificate is None
    assert found.unpersisted_data is None and found.plan.registry.storage == "/srv/registry"
    assert found.ignored_users == [] and found.plan.users == []
    assert any(n.startswith("plain HTTP registry: no TLS") for n in found.notes)
    # no users: the plan is not valid yet, and the notes say what to edit
    assert any(n.startswith("edit the plan before apply: users") for n in found.notes)


@pytest.mark.parametrize(
    ("mounts", "want", "words"),
    [
        ([], DataPlace("layer"), "in the container's writable layer"),
        (
            [{"Type": "volume", "Name": "regdata", "Destination": "/var/lib/registry"}],
            DataPlace("volume", "regdata"),
            "in volume regdata",
        ),
        (
            [{"Type": "tmpfs", "Destination": "/var/lib/registry"}],
            DataPlace("tmpfs"),
            "on a tmpfs",
        ),
    ],
)
def test_adopt_facts_data_not_persisted(mounts, want, words):
    found = _adopt([], mounts, {})
    assert found.unpersisted_data == want and want.where == words
    assert any(n.startswith(f"images are {words} (") for n in found.notes)


def test_adopt_keeps_the_tutorial_storage_path_directory():
    """-e STORAGE_PATH=/opt/docker-image with that directory bound: the plan stores there."""
    found = _adopt(
        ["STORAGE_PATH=/opt/docker-image"],
        [
            {"Type": "bind", "Source": "/opt/docker-image", "Destination": "/opt/docker-image"},
            {
                "Type": "volume",
                "Name": ANON,
                "Destination": "/var/lib/registry",
                "Source": "/var/lib/docker/volumes/a/_data",
            },
        ],  # fmt: skip
        {},
    )
    assert found.plan.registry.storage == "/opt/docker-image"
    assert found.unpersisted_data == DataPlace("anonymous-volume", ANON[:12])
    assert any("registry v1 setting that v2 ignores" in n for n in found.notes)


def test_adopt_s3_becomes_storage_and_never_shows_its_secret():
    cfg = (
        b"storage:\n  s3:\n    bucket: registry\n    secretkey: TOPSECRET\n    accesskey: AKIA\n"
        b"    regionendpoint: http://10.0.0.5:8333\n    rootdirectory: /reg\n"
    )
    found = _adopt(
        ["REGISTRY_CONFIGURATION_PATH=/cfg/config.yml", "REGISTRY_STORAGE_S3_REGION=eu-1"],
        [{"Type": "bind", "Source": "/srv/cfg", "Destination": "/cfg"}],
        {"/srv/cfg/config.yml": cfg},
    )
    assert not found.refused
    st = found.plan.storage
    assert (st.driver, st.bucket, st.endpoint, st.access_key) == (
        "s3", "registry", "http://10.0.0.5:8333", "AKIA",
    )  # fmt: skip
    assert (st.region, st.root_directory) == ("eu-1", "/reg")  # the env override wins
    text = "\n".join(found.notes) + dump_plan(found.plan)
    assert "TOPSECRET" not in text
    assert "secret key is never put in the plan" in text
    assert any("REGISTRY_STORAGE_S3_REGION" in n for n in found.notes)  # s3-env-override


def test_adopt_refuses_another_driver():
    cfg = b"storage:\n  gcs:\n    bucket: b\n    keyfile: /k.json\n"
    found = _adopt(
        ["REGISTRY_CONFIGURATION_PATH=/cfg/config.yml"],
        [{"Type": "bind", "Source": "/srv/cfg", "Destination": "/cfg"}],
        {"/srv/cfg/config.yml": cfg},
    )
    assert found.refused and "gcs storage driver" in found.refused[0]


# ---------------------------------------------------------------- certificates


def _ids(pem: bytes, domain="reg.example.test", ip="10.0.0.2") -> list[tuple[str, str, str]]:
    plan = Plan(registry=RegistrySpec(domain=domain, ip=ip))
    found = problems.certificate(pki.inspect_cert(pem), plan)
    return [(p.id, p.severity, p.evidence) for p in found]


def test_cert_evidence_is_dockers_own_text():
    assert _ids(self_signed_pem("reg.example.test")) == [("cert-no-san", "fail", pki.LEGACY_CN)]
    spec = CertificateSpec(key="ecdsa-p256")
    _, other = pki.make_server_cert(spec, "other.example.test", "10.0.0.2")
    assert _ids(pki.cert_to_pem(other)) == [
        (
            "cert-names",
            "fail",
            "x509: certificate is valid for other.example.test, not reg.example.test",
        )
    ]
    _, no_ip = pki.make_server_cert(spec, "reg.example.test")
    ((pid, sev, ev),) = _ids(pki.cert_to_pem(no_ip))
    assert (pid, sev) == ("cert-names", "fail") and "doesn't contain any IP SANs" in ev
    _, soon = pki.make_server_cert(spec, "reg.example.test", "10.0.0.2", days=10)
    ((pid, sev, ev),) = _ids(pki.cert_to_pem(soon))
    assert (pid, sev) == ("cert-expiring", "warn") and "expires on" in ev
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    _, gone = pki.make_server_cert(spec, "reg.example.test", "10.0.0.2", days=365, now=old)
    assert _ids(pki.cert_to_pem(gone)) == [("cert-expired", "fail", pki.EXPIRED)]


def test_cert_without_server_auth_is_weak_not_a_name_problem():
    from cryptography.x509.oid import ExtendedKeyUsageOID

    pem = self_signed_pem(
        "reg.example.test", dns_sans=["reg.example.test"], eku=[ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    ((pid, sev, ev),) = _ids(pem, ip="")
    assert (pid, sev) == ("cert-weak", "fail") and "incompatible key usage" in ev


def test_trust_bundle_matching():
    spec = CertificateSpec(key="ecdsa-p256", organization="t")
    _, leaf = pki.make_server_cert(spec, "reg.example.test")
    leaf_pem = pki.cert_to_pem(leaf)
    _, other = pki.make_server_cert(spec, "reg.example.test")
    other_pem = pki.cert_to_pem(other)
    assert certsd.trusts(leaf_pem, leaf_pem)  # self-signed: the certificate is its own CA
    assert certsd.trusts(other_pem + leaf_pem, leaf_pem)  # anywhere in the bundle
    assert not certsd.trusts(other_pem, leaf_pem)
    ca_key, ca = pki.make_ca(spec)
    _, signed = pki.make_server_cert(spec, "reg.example.test", issuer_key=ca_key, issuer_cert=ca)
    assert certsd.trusts(pki.cert_to_pem(ca), pki.cert_to_pem(signed))
    assert not certsd.trusts(b"not a certificate", leaf_pem)
    assert not certsd.trusts(leaf_pem, b"") and not certsd.trusts(None, leaf_pem)


# ---------------------------------------------------------------- the TLS look


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


def test_served_tls_registry(tmp_path):
    from regwizard.facts.tls import request

    spec = CertificateSpec(key="ecdsa-p256")
    k, c = pki.make_server_cert(spec, "reg.example.test", "127.0.0.1")
    cert = pki.cert_to_pem(c)
    srv = _serve(_Registry, (cert, pki.key_to_pem(k)), tmp_path)
    try:
        port = srv.server_address[1]
        p = served("reg.example.test", "127.0.0.1", port)
        assert p.connected and p.tls and p.status == 401 and p.pem == cert
        assert p.auth_required and p.speaks_v2
        assert p.url == f"https://reg.example.test:{port}/v2/"
        # credentials only through request(), verified against the anchor first
        status, headers, _ = request(
            "reg.example.test", "127.0.0.1", port, cert, "/v2/", auth=("u", "p")
        )
        assert status == 200 and headers["docker-distribution-api-version"] == "registry/2.0"
    finally:
        srv.shutdown()


def test_served_plain_http_registry(tmp_path):
    srv = _serve(_Registry, None, tmp_path)
    try:
        p = served("reg.example.test", "127.0.0.1", srv.server_address[1])
        assert p.plain_http and not p.tls and p.docker_error.endswith(PLAIN_HTTP)
        assert problems.tls(None, p)[0].id == "plain-http"
    finally:
        srv.shutdown()


def test_served_refused_and_dropped():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = served("reg.example.test", "127.0.0.1", port)
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
    p = served("reg.example.test", "127.0.0.1", lsn.getsockname()[1])
    lsn.close()
    assert p.connected and not p.tls
    assert p.docker_error.endswith(("EOF", "connection reset by peer")), p.docker_error


# ---------------------------------------------------------------- certs.d, report


def test_stray_certs_d_files():
    names = ["ca.cert", "client.cert", "client.key", "lonely.key", "ok.crt", ""]
    got = dict(certsd.stray_files(names))
    assert set(got) == {"ca.cert", "lonely.key"}
    assert got["ca.cert"] == (
        "missing key ca.key for client certificate ca.cert. "
        "CA certificates must use the extension .crt"
    )
    assert got["lonely.key"] == "missing client certificate lonely.cert for key lonely.key"
    assert certsd.stray_files([]) == ()


@pytest.mark.parametrize(
    ("dirs", "port", "want"),
    [
        (["reg.example.test:443", "other:443"], 443, ["reg.example.test:443"]),
        (["reg.example.test", "REG.example.test:5000"], 5000, ["REG.example.test:5000", "reg.example.test"]),
        (["reg.example.test:5001"], 5000, []),  # another port: another registry, left alone
        (["10.0.0.2", "reg"], 443, ["10.0.0.2", "reg"]),
        (["reg.example.test"], 443, []),
    ],
)  # fmt: skip
def test_misnamed_certs_d_directories(dirs, port, want):
    assert certsd.misnamed(tuple(dirs), "reg.example.test", "10.0.0.2", port) == want


def test_report_exit_codes_and_lines():
    ok = Finding("tls", "node1", "ok", "TLS answers")
    bad = Finding("auth", "node1", "fail", "registry without auth", "GET /v2/ -> 200", "apply")
    skip = Finding("login", "node1", "skip", "login not checked")
    assert DoctorReport([ok]).exit_code == 0 and DoctorReport([ok]).healthy
    assert DoctorReport([ok, skip]).exit_code == 0  # a skipped check is no problem found
    assert DoctorReport([ok, bad]).exit_code == 1
    assert DoctorReport([ok], incomplete=["connect@node1: refused"]).exit_code == 2
    assert DoctorReport([bad], incomplete=["x"]).exit_code == 2  # could not check wins
    lines = format_finding(bad)
    assert lines[0].split()[:3] == ["fail", "auth", "node1"]
    assert "evidence: GET /v2/ -> 200" in lines[1] and "fix:" in lines[2]
    assert format_finding(ok) == [format_finding(ok)[0]]
    assert DoctorReport([ok, bad]).to_json()["problems"] == 1
