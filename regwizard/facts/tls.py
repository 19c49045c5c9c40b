"""What the registry's port serves, seen from this machine, and the one way to talk to it.

``served(...)`` looks without trusting: it completes a TLS handshake *without* verifying,
only to read the certificate the server presents (or to see that it speaks plain HTTP),
and sends nothing but an anonymous ``GET /v2/``. It never carries a credential.

``request(...)`` is the only function that sends credentials: it verifies the server
against the plan's trust anchor and the registry's name first, so a server with another
certificate at the registry's address never receives ``user:password``.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
from dataclasses import dataclass, field

PLAIN_HTTP = "http: server gave HTTP response to HTTPS client"
UNKNOWN_CA = "x509: certificate signed by unknown authority"


@dataclass
class Served:
    """What answered on the registry's address, as Docker would see it."""

    url: str
    connected: bool = False
    tls: bool = False
    plain_http: bool = False
    status: int = 0  # of an anonymous GET /v2/ (0: none)
    headers: dict[str, str] = field(default_factory=dict)
    pem: bytes = b""  # the certificate the server presents
    docker_error: str = ""  # what Docker would print for this failure

    @property
    def auth_required(self) -> bool:
        return self.status == 401 and "basic" in self.headers.get("www-authenticate", "").lower()

    @property
    def speaks_v2(self) -> bool:
        return "registry/2.0" in self.headers.get("docker-distribution-api-version", "")


def _connect(target: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((target, port), timeout)
    # as http.client does: without it Nagle and delayed ACK add ~40 ms per request
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _plain_http_answers(target: str, port: int, host: str, timeout: float) -> bool:
    try:
        with _connect(target, port, timeout) as s:
            s.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            return s.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


def served(domain: str, target: str, port: int, *, timeout: float = 5.0) -> Served:
    """The served certificate and an anonymous GET /v2/; no verification, no credentials."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    addr = domain if port == 443 else f"{domain}:{port}"
    p = Served(url=f"https://{addr}/v2/")
    where = f"{target}:{port}"
    try:
        sock = _connect(target, port, timeout)
    except ConnectionRefusedError:
        p.docker_error = f'Get "{p.url}": dial tcp {where}: connect: connection refused'
        return p
    except TimeoutError:
        p.docker_error = f'Get "{p.url}": dial tcp {where}: i/o timeout'
        return p
    except OSError as e:
        p.docker_error = f'Get "{p.url}": dial tcp {where}: {e.strerror or e}'
        return p
    p.connected = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # to see what is served; nothing secret is ever sent here
    try:
        ss = ctx.wrap_socket(sock, server_hostname=domain)
    except (ssl.SSLError, OSError, EOFError) as e:
        sock.close()
        if _plain_http_answers(target, port, addr, timeout):
            p.plain_http = True
            p.docker_error = f'Get "{p.url}": {PLAIN_HTTP}'
        elif isinstance(e, ConnectionResetError):
            p.docker_error = f'Get "{p.url}": connection reset by peer'
        elif isinstance(e, ssl.SSLEOFError | EOFError):
            p.docker_error = f'Get "{p.url}": EOF'
        else:
            p.docker_error = f'Get "{p.url}": {getattr(e, "reason", None) or e}'
        return p
    p.tls = True
    der = ss.getpeercert(binary_form=True)
    if der:
        p.pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    conn = http.client.HTTPConnection(domain, port, timeout=timeout)
    conn.sock = ss
    try:
        conn.request("GET", "/v2/", headers={"User-Agent": "regwizard", "Host": addr})
        resp = conn.getresponse()
        p.status = resp.status
        p.headers = {k.lower(): v for k, v in resp.getheaders()}
        resp.read(65536)
    except (OSError, http.client.HTTPException) as e:
        p.docker_error = f'Get "{p.url}": {e or type(e).__name__}'
    finally:
        conn.close()
    return p


class Untrusted(Exception):
    """The server's certificate does not verify against the trust anchor for the name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def request(
    domain: str,
    target: str,
    port: int,
    anchor_pem: bytes,
    path: str,
    *,
    auth: tuple[str, str] | None = None,
    method: str = "GET",
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
    max_body: int = 65536,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """An HTTPS request verified against ``anchor_pem`` and ``domain`` before anything is sent.

    GET, HEAD and DELETE send no body; POST and PUT send ``body`` (the replica proof's
    blob upload and manifest, never a credential). ``headers`` adds headers (Accept,
    say) but may not set Host or Authorization: credentials go only through ``auth``.
    At most ``max_body`` bytes of the answer are read.

    Raises Untrusted when verification fails (no request was made), OSError when the
    server cannot be reached, ValueError for a method or header this function refuses.
    """
    if method not in ("GET", "HEAD", "DELETE", "POST", "PUT"):
        raise ValueError(f"request() does not send {method!r}")
    if body is not None and method not in ("POST", "PUT"):
        raise ValueError(f"request() sends no body with {method}")
    extra = dict(headers or {})
    for k, v in extra.items():
        if k.lower() in ("host", "authorization") or any(c in f"{k}{v}" for c in "\r\n\0"):
            raise ValueError(f"request() refuses the header {k!r}")
    if not anchor_pem:
        raise Untrusted("there is no trust anchor to verify the registry against")
    try:
        ctx = ssl.create_default_context(cadata=anchor_pem.decode("ascii", errors="replace"))
    except (ssl.SSLError, ValueError) as e:
        raise Untrusted(f"the trust anchor is not a usable certificate ({e})") from None
    ctx.hostname_checks_common_name = False  # as Go >= 1.15: a CN-only certificate fails
    sock = _connect(target, port, timeout)
    try:
        ss = ctx.wrap_socket(sock, server_hostname=domain)
    except ssl.SSLCertVerificationError as e:
        sock.close()
        raise Untrusted(_go_words(e, domain)) from None
    except (ssl.SSLError, EOFError) as e:
        sock.close()
        raise OSError(f"TLS handshake with {target}:{port} failed: {e}") from None
    except OSError:
        sock.close()
        raise
    addr = domain if port == 443 else f"{domain}:{port}"
    conn = http.client.HTTPConnection(domain, port, timeout=timeout)
    conn.sock = ss
    sent = {"User-Agent": "regwizard", **extra, "Host": addr}
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        sent["Authorization"] = f"Basic {token}"
    try:
        if method in ("POST", "PUT"):
            sent["Content-Length"] = str(len(body or b""))
        conn.request(method, path, body=body if method in ("POST", "PUT") else None, headers=sent)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(max_body)
    except http.client.HTTPException as e:
        raise OSError(f"{method} {path}: {e or type(e).__name__}") from None
    finally:
        conn.close()


def _go_words(e: ssl.SSLCertVerificationError, domain: str) -> str:
    """The verification failure as Docker (Go) words it, for the evidence line."""
    msg = (e.verify_message or str(e)).lower()
    if "hostname mismatch" in msg or "ip address mismatch" in msg:
        return f"x509: certificate is not valid for {domain}"
    if "expired" in msg or "not yet valid" in msg:
        return "x509: certificate has expired or is not yet valid"
    return UNKNOWN_CA
