"""Credentials go only over a connection verified against the plan's trust anchor.

A throwaway TLS server on 127.0.0.1 records everything it receives after each TLS
handshake. Serving a certificate that is NOT the plan's anchor (same name, another
key: what an impostor at the registry's address would present):

- ``facts.tls.request(..., auth=(user, password))`` raises Untrusted, and the server
  never receives a single byte of a request;
- ``doctor.diagnose`` (fake hosts, the real Network) reports ``server-not-verified``
  and skips the login check (severity ``skip``), and the server never sees an
  Authorization header, nor the password in any form.

The same server serving the anchor itself receives the credentials: the recorder works.
(The lead's lab test does the same against a real registry.)
"""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from regwizard import doctor, pki
from regwizard.facts import tls
from regwizard.plan import CertificateSpec
from regwizard.steps.base import Network
from tests.fixtures import world

USER, PASSWORD = "alice", world.ALICE_PASSWORD
DOMAIN = "reg.example.test"


class RecordingTLSServer:
    """Accepts TLS on 127.0.0.1; answers every request like a registry (401 without
    credentials, 200 with); records handshakes and every byte received after one."""

    def __init__(self, cert_pem: bytes, key_pem: bytes, tmp: Path) -> None:
        (tmp / "srv.crt").write_bytes(cert_pem)
        (tmp / "srv.key").write_bytes(key_pem)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(tmp / "srv.crt", tmp / "srv.key")
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.handshakes = 0
        self.received: list[bytes] = []  # one entry per connection that completed a handshake
        self.lock = threading.Lock()
        self.workers: list[threading.Thread] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._one, args=(conn,), daemon=True)
            with self.lock:
                self.accepted += 1
                self.workers.append(t)
            t.start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            ss = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()  # the client refused our certificate: nothing was sent
            return
        with self.lock:
            self.handshakes += 1
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = ss.recv(65536)
                if not chunk:
                    break
                data += chunk
            if data:
                if b"authorization:" in data.lower():
                    status, extra = "200 OK", ""
                else:
                    status = "401 Unauthorized"
                    extra = 'WWW-Authenticate: Basic realm="Registry Realm"\r\n'
                ss.sendall(
                    f"HTTP/1.1 {status}\r\n{extra}Docker-Distribution-API-Version: "
                    "registry/2.0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".encode()
                )
        except (ssl.SSLError, OSError):
            pass
        finally:
            with self.lock:
                self.received.append(data)
            try:
                ss.close()
            except OSError:
                pass

    def settle(self, connections: int, timeout: float = 10.0) -> None:
        """Wait until ``connections`` were accepted and every one was dealt with."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                workers = list(self.workers)
            if len(workers) >= connections:
                break
            time.sleep(0.01)
        for t in workers:
            t.join(max(0.0, deadline - time.monotonic()))
        with self.lock:
            assert self.accepted >= connections, (self.accepted, connections)
            assert not any(t.is_alive() for t in self.workers)

    def everything(self) -> bytes:
        with self.lock:
            return b"\n".join(self.received)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(timeout=5)


def _pair(names: list[str]) -> tuple[bytes, bytes]:
    k, c = pki.make_server_cert(CertificateSpec(key="ecdsa-p256"), names[0], "", names[1:])
    return pki.cert_to_pem(c), pki.key_to_pem(k)


def _secret_forms() -> list[bytes]:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode())
    return [PASSWORD.encode(), token, b"authorization"]


@pytest.fixture
def impostor(tmp_path):
    """A server at the registry's address with a certificate for the same name and IP,
    but not the plan's (another key, self-signed)."""
    cert, key = _pair([DOMAIN, "127.0.0.1"])
    srv = RecordingTLSServer(cert, key, tmp_path)
    yield srv
    srv.close()


def test_request_refuses_before_sending_anything(impostor) -> None:
    anchor, _ = _pair([DOMAIN, "127.0.0.1"])  # the plan's certificate: not what is served
    with pytest.raises(tls.Untrusted) as err:
        tls.request(DOMAIN, "127.0.0.1", impostor.port, anchor, "/v2/", auth=(USER, PASSWORD))
    assert err.value.reason == tls.UNKNOWN_CA
    impostor.settle(1)
    assert impostor.accepted == 1  # it connected ...
    assert impostor.handshakes == 0 and impostor.everything() == b""  # ... and sent nothing


def test_request_refuses_a_trusted_certificate_for_another_name(tmp_path) -> None:
    """Signed by the trusted CA, but for another name: still no request is sent."""
    spec = CertificateSpec(key="ecdsa-p256")
    ca_key, ca = pki.make_ca(spec)
    k, c = pki.make_server_cert(spec, "other.example.test", issuer_key=ca_key, issuer_cert=ca)
    srv = RecordingTLSServer(pki.cert_to_pem(c), pki.key_to_pem(k), tmp_path)
    try:
        with pytest.raises(tls.Untrusted) as err:
            tls.request(
                DOMAIN, "127.0.0.1", srv.port, pki.cert_to_pem(ca), "/v2/", auth=(USER, PASSWORD)
            )
        assert err.value.reason == f"x509: certificate is not valid for {DOMAIN}"
        srv.settle(1)
        assert srv.handshakes == 0 and srv.everything() == b""
    finally:
        srv.close()


def test_request_refuses_a_common_name_only_certificate(tmp_path) -> None:
    """The anchor itself, but without SANs: Docker (Go >= 1.15) refuses it, so does request()."""
    from tests.fixtures import recipes

    m = recipes.make("cn-only for reg.example.test", {})
    srv = RecordingTLSServer(m.pem, m.key_pem, tmp_path)
    try:
        with pytest.raises(tls.Untrusted):
            tls.request(DOMAIN, "127.0.0.1", srv.port, m.pem, "/v2/", auth=(USER, PASSWORD))
        srv.settle(1)
        assert srv.everything() == b""
    finally:
        srv.close()


def test_request_refuses_without_an_anchor(impostor) -> None:
    with pytest.raises(tls.Untrusted):
        tls.request(DOMAIN, "127.0.0.1", impostor.port, b"", "/v2/", auth=(USER, PASSWORD))
    time.sleep(0.3)  # the accept loop polls every 0.2 s
    assert impostor.accepted == 0  # not even a connection


def test_the_recorder_sees_credentials_when_the_server_is_the_registry(tmp_path) -> None:
    cert, key = _pair([DOMAIN, "127.0.0.1"])
    srv = RecordingTLSServer(cert, key, tmp_path)
    try:
        status, _h, _b = tls.request(
            DOMAIN, "127.0.0.1", srv.port, cert, "/v2/", auth=(USER, PASSWORD)
        )
        assert status == 200
        srv.settle(1)
        sent = srv.everything()
        assert sent.startswith(b"GET /v2/ HTTP/1.1")
        assert all(s in sent.lower() for s in (x.lower() for x in _secret_forms()[1:]))
    finally:
        srv.close()


def test_served_looks_without_credentials(impostor) -> None:
    """served() reads the certificate without verifying it, and sends no credential."""
    p = tls.served(DOMAIN, "127.0.0.1", impostor.port)
    assert p.tls and p.status == 401 and p.pem
    impostor.settle(1)
    sent = impostor.everything()
    assert sent.startswith(b"GET /v2/ HTTP/1.1")
    assert not any(s.lower() in sent.lower() for s in _secret_forms())


def test_doctor_never_sends_the_password_to_an_unverified_server(impostor, tmp_path) -> None:
    case = world.build(
        {
            "setup": "applied",
            "plan": {"registry": {"ip": "127.0.0.1", "port": impostor.port}},
            "secrets": {"verify_password": PASSWORD},
        },
        tmp_path,
    )
    report = doctor.diagnose(case.plan, case.secrets, connect=case.connect(), net=Network())
    (tls_finding,) = report.of("tls")
    assert (tls_finding.severity, tls_finding.id) == ("fail", "server-not-verified")
    assert tls_finding.evidence == tls.UNKNOWN_CA
    assert f"127.0.0.1:{impostor.port}" in tls_finding.message
    (login,) = report.of("login")
    assert (login.severity, login.id) == ("skip", "login-skipped")
    assert "was not sent" in login.message
    # what the server received: anonymous looks only (served(), then the refused request)
    impostor.settle(2)
    assert impostor.handshakes == 1
    sent = impostor.everything()
    assert sent  # doctor did look (served(): an anonymous GET /v2/)
    assert not any(s.lower() in sent.lower() for s in _secret_forms()), sent
    assert report.exit_code == 1
    assert case.writes() == {} and case.key_reads() == {}


def test_doctor_logs_in_when_the_server_is_the_registry(tmp_path) -> None:
    """The control: the same doctor run against a server holding the plan's own pair."""
    case = world.build({"setup": "applied", "secrets": {"verify_password": PASSWORD}}, tmp_path)
    live = case.made["live"]
    srv = RecordingTLSServer(live.pem, live.key_pem, tmp_path)
    try:
        case.plan.registry.ip = "127.0.0.1"
        case.plan.registry.port = srv.port
        report = doctor.diagnose(case.plan, case.secrets, connect=case.connect(), net=Network())
        assert [f.severity for f in report.of("tls")] == ["ok"]
        assert [(f.severity, f.message) for f in report.of("login")] == [
            ("ok", f"login as {USER} works")
        ]
        srv.settle(3)  # served(), the verified anonymous request, the login
        assert base64.b64encode(f"{USER}:{PASSWORD}".encode()) in srv.everything()
    finally:
        srv.close()
