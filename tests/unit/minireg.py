"""A tiny registry API over TLS on 127.0.0.1, for offline tests of registry_api and
facts.tls.request: catalog and tags with distribution's paging (n, last, Link), manifests
by tag or digest (GET / HEAD, by Accept), DELETE (202, or 405 UNSUPPORTED when delete is
off), Basic auth. Its certificate is issued by a test CA made with regwizard.pki."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from regwizard import pki
from regwizard.plan import CertificateSpec
from regwizard.registry_api import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

DOMAIN = "reg.example.test"
USER, PASSWORD = "alice", "alice-password-1"


def manifest(config: int, *layers: tuple[str, int], media: str = OCI_MANIFEST) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": media,
        "config": {"digest": "sha256:" + "c" * 64, "size": config},
        "layers": [{"digest": d, "size": s} for d, s in layers],
    }
    return json.dumps(doc).encode()


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class MiniRegistry:
    """``repos``: repo -> tag -> manifest bytes; blobs by digest in ``by_digest``."""

    def __init__(self, tmp: Path, *, delete_enabled: bool = False) -> None:
        spec = CertificateSpec(key="ecdsa-p256")
        ca_key, ca = pki.make_ca(spec)
        k, c = pki.make_server_cert(
            spec, DOMAIN, "", ["127.0.0.1"], issuer_key=ca_key, issuer_cert=ca
        )
        self.anchor = pki.cert_to_pem(ca)
        (tmp / "srv.crt").write_bytes(pki.cert_to_pem(c))
        (tmp / "srv.key").write_bytes(pki.key_to_pem(k))
        self.delete_enabled = delete_enabled
        self.repos: dict[str, dict[str, bytes]] = {}
        self.by_digest: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        reg = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:  # noqa: ANN002
                pass

            def _answer(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self) -> None:
                reg.requests.append((self.command, self.path, dict(self.headers.items())))
                auth = self.headers.get("Authorization", "")
                want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if auth != want:
                    self._answer(401, b"{}", {"WWW-Authenticate": 'Basic realm="r"'})
                    return
                url = urlsplit(self.path)
                q = parse_qs(url.query)
                path = url.path
                if path == "/v2/":
                    self._answer(200, b"{}")
                elif path == "/v2/_catalog":
                    self._page(sorted(reg.repos), q, "/v2/_catalog", "repositories", {})
                elif path.endswith("/tags/list"):
                    repo = path[len("/v2/") : -len("/tags/list")]
                    if repo not in reg.repos:
                        self._answer(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
                        return
                    self._page(sorted(reg.repos[repo]), q, path, "tags", {"name": repo})
                elif "/manifests/" in path:
                    repo, _, ref = path[len("/v2/") :].partition("/manifests/")
                    self._manifest(repo, ref)
                else:
                    self._answer(404, b"{}")

            def _page(self, names, q, path, key, extra) -> None:  # noqa: ANN001
                n = int(q.get("n", ["1000000"])[0])  # no n: everything
                last = q.get("last", [""])[0]
                rest = [x for x in names if x > last]
                page, more = rest[:n], len(rest) > n
                headers = {"Content-Type": "application/json"}
                if more:
                    headers["Link"] = f'<{path}?last={page[-1]}&n={n}>; rel="next"'
                self._answer(200, json.dumps({**extra, key: page}).encode(), headers)

            def _manifest(self, repo: str, ref: str) -> None:
                tags = reg.repos.get(repo, {})
                body = reg.by_digest.get(ref) if ref.startswith("sha256:") else tags.get(ref)
                if self.command == "DELETE":
                    if not reg.delete_enabled:
                        self._answer(
                            405,
                            b'{"errors":[{"code":"UNSUPPORTED","message":"The operation is '
                            b'unsupported."}]}',
                        )
                        return
                    gone = [t for t, b in tags.items() if digest_of(b) == ref]
                    if not gone:
                        self._answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                        return
                    for t in gone:
                        del tags[t]
                    self._answer(202)
                    return
                if body is None:
                    self._answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                    return
                media = json.loads(body).get("mediaType", "")
                if media not in self.headers.get("Accept", ""):
                    self._answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                    return
                self._answer(
                    200, body, {"Content-Type": media, "Docker-Content-Digest": digest_of(body)}
                )

            do_GET = do_HEAD = do_DELETE = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp / "srv.crt", tmp / "srv.key")
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def push(self, repo: str, tag: str, body: bytes) -> str:
        self.repos.setdefault(repo, {})[tag] = body
        self.by_digest[digest_of(body)] = body
        return digest_of(body)

    def add_blob_manifest(self, body: bytes) -> str:
        self.by_digest[digest_of(body)] = body
        return digest_of(body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def index(*children: tuple[str, str, str]) -> bytes:
    """An OCI index of (digest, os, arch) children."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": d,
                    "size": 100,
                    "platform": {"os": o, "architecture": a},
                }
                for d, o, a in children
            ],
        }
    ).encode()


__all__ = ["DOCKER_MANIFEST", "MiniRegistry", "index", "manifest"]
