"""LocalHost: the same interface with subprocess and the local Docker socket."""

from __future__ import annotations

import glob
import os
import platform
import stat
import threading
import time
from pathlib import Path

import pytest
from hostlab import as_user_in_child, need, need_root, remote_gone

from regwizard import hosts
from regwizard.errors import Cancelled, CommandFailed, CommandTimeout
from regwizard.hosts import LocalHost, connect
from regwizard.plan import Connection, Secrets


@pytest.fixture
def local() -> LocalHost:
    host = connect(Connection(), Secrets())
    assert isinstance(host, LocalHost)
    yield host
    host.close()


def test_local_quoting_input_and_lines(local: LocalHost) -> None:
    before = set(glob.glob("/tmp/pwned*"))
    assert local.run(["printf", "%s", "a; touch /tmp/pwned-$RANDOM"]).stdout == (
        b"a; touch /tmp/pwned-$RANDOM"
    )
    assert set(glob.glob("/tmp/pwned*")) == before
    data = os.urandom(3 * 1024 * 1024)
    assert local.run(["cat"], input=data).stdout == data
    lines: list[str] = []
    local.run(["sh", "-c", "echo out; echo err >&2; printf tail"], on_line=lines.append)
    assert sorted(lines) == ["err", "out", "tail"]
    assert local.label == "this machine"


def test_local_failures(local: LocalHost) -> None:
    with pytest.raises(CommandFailed) as info:
        local.run(["sh", "-c", "echo nope >&2; exit 5"])
    assert info.value.rc == 5 and "nope" in info.value.cause
    res = local.run(["no-such-program-rw"], check=False)
    assert res.rc == 127


def test_local_timeout_and_cancel() -> None:
    with connect(Connection(), Secrets()) as host:
        start = time.monotonic()
        with pytest.raises(CommandTimeout):
            host.run(["sleep", "30.2468"], timeout=1)
        assert time.monotonic() - start < 3
        assert remote_gone("sleep 30.2468")
    cancel = threading.Event()
    with connect(Connection(), Secrets(), cancel=cancel) as host:
        threading.Timer(0.3, cancel.set).start()
        with pytest.raises(Cancelled):
            host.run(["sleep", "30.1357"])
        assert remote_gone("sleep 30.1357")
        with pytest.raises(Cancelled):
            host.run(["true"])


def test_local_files(local: LocalHost, tmp_path: Path) -> None:
    f = tmp_path / "x y" / "f"
    local.makedirs(str(f.parent), 0o750)
    assert stat.S_IMODE(f.parent.stat().st_mode) == 0o750
    assert local.read_file(str(f)) is None and not local.exists(str(f))
    local.write_file(str(f), b"one", mode=0o640)
    assert f.read_bytes() == b"one" and stat.S_IMODE(f.stat().st_mode) == 0o640
    inode = f.stat().st_ino
    local.write_in_place(str(f), b"two")
    assert f.stat().st_ino == inode and local.read_file(str(f)) == b"two"
    backup = local.backup(str(f))
    assert backup and Path(backup).read_bytes() == b"two"
    assert stat.S_IMODE(Path(backup).stat().st_mode) == 0o640
    assert local.free_bytes(str(tmp_path / "nothing" / "here")) > 0


def test_local_facts_and_docker(local: LocalHost) -> None:
    need_root()
    f = local.facts("/opt/not-yet")
    assert f.address == "local" and f.fingerprint == ""
    assert f.arch == platform.machine() and f.os
    assert f.is_root == (os.geteuid() == 0)
    assert f.docker_version, f.docker_error
    assert f.free_bytes and f.free_bytes > 0
    client = local.docker(timeout=30)
    assert local.docker(timeout=30) is client
    assert isinstance(client.images.list(), list)


def test_local_non_root_with_sudo_uses_sudo_dial_stdio(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend to be a normal user with sudo and no access to the Docker socket.

    (We are root, so `sudo -n` works without a password: the NOPASSWD path.)
    """
    need_root()
    monkeypatch.setattr(LocalHost, "_euid", lambda self: 1000)
    monkeypatch.setattr(hosts, "DOCKER_SOCKET", "/nonexistent/docker.sock")
    streams: list[object] = []
    from regwizard import dockerssh

    real = dockerssh.ProcessStream

    def tracking(*a: object, **kw: object):
        s = real(*a, **kw)
        streams.append(s)
        return s

    monkeypatch.setattr(dockerssh, "ProcessStream", tracking)
    host = connect(Connection(sudo=True), Secrets())
    try:
        assert host.run(["id", "-u"]).stdout == b"0\n"
        assert host._mode == "sudo-nopass"
        client = host.docker(timeout=30)
        assert client.version()["Version"]
        assert isinstance(client.images.list(), list)
        assert len(streams) == 1
        assert streams[0].proc.args[:3] == ["sudo", "-n", "--"]  # type: ignore[attr-defined]
    finally:
        host.close()
    deadline = time.monotonic() + 5
    while streams[0].proc.poll() is None and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    assert streams[0].proc.poll() is not None  # type: ignore[attr-defined]


def test_local_real_non_root_with_sudo_password(test_user: str) -> None:
    from hostlab import TEST_PASSWORD

    def body() -> dict:
        out: dict = {}
        good = Secrets(sudo_passwords={"local": TEST_PASSWORD})
        with connect(Connection(sudo=True), good) as host:
            out["uid"] = host.run(["id", "-u"]).text
            out["user_uid"] = host.run(["id", "-u"], as_root=False).text
            out["cat"] = host.run(["cat"], input=b"stdin intact").text
            out["mode"] = host._mode
            client = host.docker(timeout=30)
            out["docker"] = client.version()["Version"]
            out["opened"] = client.adapter.opened
            facts = host.facts()
            out["facts"] = [facts.is_root, facts.sudo_ok, facts.docker_version]
        bad = Secrets(sudo_passwords={"local": "wrong-Local-pw-1"})
        with connect(Connection(sudo=True), bad) as host:
            try:
                host.run(["true"])
                out["bad"] = "no error"
            except Exception as e:  # noqa: BLE001
                out["bad"] = str(e)
        with connect(Connection(), Secrets()) as host:  # no sudo: plain user
            out["plain"] = host.facts().docker_error
        return out

    out = as_user_in_child(test_user, body)
    assert "error" not in out, out
    assert out["uid"] == "0\n" and out["user_uid"] != "0\n"
    assert out["cat"] == "stdin intact" and out["mode"] == "sudo"
    assert out["docker"] and out["opened"] == 1
    assert out["facts"][:2] == [False, True] and out["facts"][2]
    assert out["bad"].startswith("sudo on this machine refused the password")
    assert "wrong-Local-pw-1" not in out["bad"]
    assert "may not use the Docker socket" in out["plain"]


def test_a_pooled_stream_closed_by_the_far_end_is_replaced_for_gets() -> None:
    """A stream closed between two calls: the next GET retries once on a fresh stream.

    (Seen in the fan-out benchmark: "Remote end closed connection without response"
    on a preflight's `docker version` while 9 hosts were checked at once.)
    """
    import socket

    import requests

    from regwizard import dockerssh

    need(os.path.exists("/var/run/docker.sock"), "no local Docker socket")

    def opener(timeout: float) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect("/var/run/docker.sock")
        return s

    client = dockerssh.client_over(opener, timeout=30)
    try:
        adapter = client.adapter
        assert client.version()["ApiVersion"]
        assert adapter.opened == 1  # negotiation and this call shared one stream

        def close_pooled() -> None:
            pool = adapter.get_connection("http+docker://ssh/version")
            for conn in list(pool.pool.queue):
                if conn is not None and conn.sock is not None:
                    conn.sock.shutdown(socket.SHUT_RDWR)  # as when the far end goes away

        close_pooled()
        assert client.version()["ApiVersion"]  # GET: retried on a fresh stream
        assert adapter.opened == 2
        close_pooled()
        # POST is not idempotent: never replayed, the failure is reported
        # (a harmless POST: replayed, it would answer 404 instead of failing to connect)
        with pytest.raises(requests.exceptions.ConnectionError):
            client.api._post(client.api._url("/containers/rw-no-such-container/kill"), timeout=30)
    finally:
        client.close()


def test_a_hung_daemon_is_not_waited_for_twice(tmp_path: Path) -> None:
    """A read timeout is never retried: one stream, one timeout, then the error."""
    import socket

    import requests

    from regwizard import dockerssh

    path = str(tmp_path / "hung.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)  # accepts (in the backlog) and never answers
    opened = []

    def opener(timeout: float) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        opened.append(s)
        return s

    t = time.monotonic()
    try:
        with pytest.raises(requests.exceptions.ReadTimeout):
            dockerssh.client_over(opener, timeout=0.5)
    finally:
        server.close()
    assert len(opened) == 1  # one attempt, no retry
    assert time.monotonic() - t < 30  # a guard against a hang, not a speed test
