"""The fact the HA design rests on, checked on loopback: two distribution 2.8 processes
(Debian's /usr/bin/docker-registry) sharing one S3 bucket (SeaweedFS, seaweedlab.py) and
one http secret serve as one registry. An upload started on one is finished on the
other, and both serve the blob back. A third with another http secret cannot finish it.

Each registry's config (with the S3 secret key and the http secret) is a 0600 file, never
argv or environment; the environment has no AWS_* variable (AWS_CA_BUNDLE makes the S3
driver panic at start).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from seaweedlab import IP, Weed, free_ports

from regwizard import lab_ha

REGISTRY = "/usr/bin/docker-registry"


def config_text(weed: Weed, port: int, http_secret: str, root: str) -> str:
    return f"""version: 0.1
log:
  level: info
storage:
  s3:
    accesskey: {weed.access_key}
    secretkey: {weed.secret}
    region: {weed.region}
    regionendpoint: {weed.endpoint}
    bucket: {weed.bucket}
    secure: false
    v4auth: true
    rootdirectory: {root}
  redirect:
    disable: true
  cache:
    blobdescriptor: inmemory
http:
  addr: {IP}:{port}
  secret: {http_secret}
"""


def _request(port: int, method: str, path: str, body: bytes = b"", headers=None):  # noqa: ANN001, ANN202
    conn = http.client.HTTPConnection(IP, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def registries(seaweed: Weed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """Ports of three registries on the same bucket and prefix: A and B share an http
    secret, C has its own."""
    if not os.access(REGISTRY, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail("CI must run this test, but docker-registry is missing")
        pytest.skip("Debian's docker-registry is not installed (apt-get install docker-registry)")
    d = tmp_path_factory.mktemp("registries")
    shared, other = secrets.token_hex(16), secrets.token_hex(16)
    root = f"/rw-test-{secrets.token_hex(4)}"
    ports = free_ports(3)
    procs: list[subprocess.Popen] = []
    try:
        for name, port, secret in zip("ABC", ports, (shared, shared, other), strict=True):
            cfg = d / f"{name}.yml"
            lab_ha.write_private(cfg, config_text(seaweed, port, secret, root))
            with open(d / f"{name}.log", "ab") as log:
                procs.append(
                    subprocess.Popen(
                        [REGISTRY, "serve", str(cfg)],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                        env=lab_ha.child_env(),
                        start_new_session=True,
                    )  # fmt: skip
                )
        deadline = time.monotonic() + 60
        for port, proc in zip(ports, procs, strict=True):
            while not lab_ha.port_answers(IP, port, 0.5):
                logs = "\n".join(p.read_text()[-1000:] for p in d.glob("*.log"))
                assert proc.poll() is None, f"a registry exited:\n{logs}"
                assert time.monotonic() < deadline, f"no registry on {port}:\n{logs}"
                time.sleep(0.2)
        yield ports
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=15)


def _upload_path(location: str) -> str:
    parts = urlsplit(location)  # the registry answers with an absolute URL
    return f"{parts.path}?{parts.query}"


def test_an_upload_started_on_one_replica_finishes_on_the_other(registries: list[int]) -> None:
    a, b, _ = registries
    blob = b"regwizard HA " + secrets.token_bytes(64)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    status, headers, _ = _request(a, "POST", "/v2/ha/test/blobs/uploads/")
    assert status == 202, headers
    status, headers, body = _request(
        a, "PATCH", _upload_path(headers["Location"]), blob,
        {"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert status == 202, body
    location = _upload_path(headers["Location"])
    status, headers, body = _request(b, "PUT", f"{location}&digest={digest}", b"",
                                     {"Content-Length": "0"})  # fmt: skip
    assert status == 201, body
    for port in (a, b):
        status, _, got = _request(port, "GET", f"/v2/ha/test/blobs/{digest}")
        assert status == 200 and got == blob


def test_another_http_secret_cannot_finish_it(registries: list[int]) -> None:
    a, _, c = registries
    status, headers, _ = _request(a, "POST", "/v2/ha/other/blobs/uploads/")
    assert status == 202
    blob = b"x" * 100
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    path = _upload_path(headers["Location"])
    status, _, body = _request(c, "PUT", f"{path}&digest={digest}", blob,
                               {"Content-Type": "application/octet-stream"})  # fmt: skip
    assert status in (400, 404), (status, body)  # the upload state's signature does not match
    assert b"BLOB_UPLOAD" in body or b"unknown" in body.lower(), body


def test_no_secret_in_the_registry_argv(registries: list[int], seaweed: Weed) -> None:
    for pid in Path("/proc").iterdir():
        if not pid.name.isdigit():
            continue
        try:
            cmd = (pid / "cmdline").read_bytes()
        except OSError:
            continue
        if REGISTRY.encode() in cmd or b"weed" in cmd:
            assert seaweed.secret.encode() not in cmd
