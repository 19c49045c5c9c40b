"""Commands and files over SSH (as root, by key), and the Docker API over the same transport."""

from __future__ import annotations

import glob
import os
import platform
import re
import shlex
import stat
import threading
import time
from pathlib import Path

import docker
import pytest
from hostlab import TEST_PASSWORD, Lab, make_conn, remote_gone

from regwizard.errors import Cancelled, CommandFailed, CommandTimeout, ConnectFailed
from regwizard.hosts import Host, Result, SSHHost, connect
from regwizard.plan import Secrets

NASTY = [
    "a; touch /tmp/pwned-$RANDOM",
    "$(touch /tmp/pwned-sub)",
    "`touch /tmp/pwned-tick`",
    'it\'s "quoted"',
    "line\nbreak",
    "*",
    "-n",
    "",
    "  spaces  ",
    "back\\slash",
    "ünïcødé ✓",
    "|& > /tmp/pwned-redir",
]


def test_argv_is_never_shell_code(root_host: Host) -> None:
    before = set(glob.glob("/tmp/pwned*"))
    res = root_host.run(["printf", "%s", "a; touch /tmp/pwned-$RANDOM"])
    assert res.stdout == b"a; touch /tmp/pwned-$RANDOM"
    res = root_host.run(["printf", r"%s\0", *NASTY])
    assert res.stdout.decode().split("\0")[:-1] == NASTY
    assert set(glob.glob("/tmp/pwned*")) == before


def test_input_and_binary_output(root_host: Host) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB, every byte value
    res = root_host.run(["cat"], input=data)
    assert res == Result(0, data, b"")


def test_big_input_and_big_output_do_not_deadlock(root_host: Host) -> None:
    data = os.urandom(6 * 1024 * 1024)
    res = root_host.run(
        ["sh", "-c", "cat; cat /dev/zero | head -c 3000000 >&2"], input=data, timeout=30
    )
    assert res.stdout == data and len(res.stderr) == 3_000_000


def test_on_line_streams_stdout_and_stderr(root_host: Host) -> None:
    lines: list[str] = []
    root_host.run(
        ["sh", "-c", "echo one; echo two >&2; printf 'three\\r\\nfour'"], on_line=lines.append
    )
    assert sorted(lines) == ["four", "one", "three", "two"]


def test_failure_raises_command_failed(root_host: Host) -> None:
    with pytest.raises(CommandFailed) as info:
        root_host.run(["sh", "-c", "echo first >&2; echo 'it broke' >&2; exit 3", "x y"])
    e = info.value
    assert e.rc == 3
    assert e.command == shlex.join(
        ["sh", "-c", "echo first >&2; echo 'it broke' >&2; exit 3", "x y"]
    )
    assert "it broke" in e.cause and "first\nit broke" == e.evidence
    assert "regwizard-pid" not in e.stderr  # our PID line never shows
    res = root_host.run(["sh", "-c", "exit 4"], check=False)
    assert res.rc == 4 and not res.ok


def test_timeout_kills_the_command(root_host: Host) -> None:
    start = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        root_host.run(["sleep", "30.1234"], timeout=1)
    assert time.monotonic() - start < 3
    assert "`sleep`" in str(info.value) and "1s" in str(info.value)
    assert remote_gone("sleep 30.1234")
    assert root_host.run(["true"]).ok  # the host is still usable


def test_cancel(sshlab: Lab, known_hosts: Path) -> None:
    cancel = threading.Event()
    with connect(make_conn(sshlab), Secrets(), cancel=cancel, known_hosts=str(known_hosts)) as host:
        threading.Timer(0.5, cancel.set).start()
        start = time.monotonic()
        with pytest.raises(Cancelled):
            host.run(["sleep", "30.4321"])
        assert time.monotonic() - start < 3
        assert remote_gone("sleep 30.4321")
        with pytest.raises(Cancelled):  # checked before every command
            host.run(["true"])
    with pytest.raises(Cancelled):
        connect(make_conn(sshlab), Secrets(), cancel=cancel, known_hosts=str(known_hosts))


def test_write_file_is_atomic_with_mode(root_host: Host, tmp_path: Path) -> None:
    target = tmp_path / "dir with space" / "conf $(x).txt"
    target.parent.mkdir()
    target.write_text("old")
    old_inode = target.stat().st_ino
    root_host.write_file(str(target), b"new\x00data", mode=0o600)
    assert target.read_bytes() == b"new\x00data"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.stat().st_ino != old_inode  # replaced by rename, not rewritten
    assert os.listdir(target.parent) == [target.name]  # no temp file left behind
    root_host.write_file(str(tmp_path / "fresh"), b"x")
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o644


def test_write_file_failure_leaves_no_temp(root_host: Host, tmp_path: Path) -> None:
    with pytest.raises(CommandFailed):
        root_host.write_file(str(tmp_path / "missing-dir" / "f"), b"x")
    (tmp_path / "d").mkdir()
    with pytest.raises(CommandFailed):  # the target is a directory: mv fails
        root_host.write_file(str(tmp_path / "d"), b"x")
    assert os.listdir(tmp_path / "d") == []
    assert [p for p in os.listdir(tmp_path) if "regwizard-tmp" in p] == []


def test_write_in_place_keeps_inode(root_host: Host, tmp_path: Path) -> None:
    target = tmp_path / "hosts"
    target.write_text("127.0.0.1 localhost\n" * 10)
    target.chmod(0o640)
    inode = target.stat().st_ino
    root_host.write_in_place(str(target), b"10.0.0.2 reg.example.test\n")
    assert target.read_bytes() == b"10.0.0.2 reg.example.test\n"
    assert target.stat().st_ino == inode
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_read_file(root_host: Host, tmp_path: Path) -> None:
    assert root_host.read_file(str(tmp_path / "nope")) is None
    (tmp_path / "f").write_bytes(b"\x00\xffdata")
    assert root_host.read_file(str(tmp_path / "f")) == b"\x00\xffdata"
    with pytest.raises(CommandFailed):
        root_host.read_file(str(tmp_path))  # a directory


def test_makedirs_exists_backup(root_host: Host, tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b c" / "d"
    assert not root_host.exists(str(deep))
    root_host.makedirs(str(deep), 0o700)
    assert root_host.exists(str(deep)) and stat.S_IMODE(deep.stat().st_mode) == 0o700
    root_host.makedirs(str(deep), 0o700)  # idempotent

    f = deep / "conf"
    assert root_host.backup(str(f)) is None
    f.write_text("v1")
    f.chmod(0o640)
    b1 = root_host.backup(str(f))
    b2 = root_host.backup(str(f))
    assert b1 and re.fullmatch(re.escape(str(f)) + r"\.bak-\d{8}-\d{6}", b1)
    assert b2 and b2 != b1  # two backups in the same second do not collide
    for b in (b1, b2):
        assert Path(b).read_text() == "v1"
        assert stat.S_IMODE(Path(b).stat().st_mode) == 0o640


def test_free_bytes_uses_nearest_existing_parent(root_host: Host, tmp_path: Path) -> None:
    got = root_host.free_bytes(str(tmp_path / "not" / "yet" / "there"))
    st = os.statvfs(tmp_path)
    assert abs(got - st.f_bavail * st.f_frsize) < 512 * 1024 * 1024  # others write too


def test_facts_as_root(root_host: Host, sshlab: Lab) -> None:
    f = root_host.facts("/nonexistent/storage")
    pretty = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', Path("/etc/os-release").read_text(), re.M)
    assert pretty and f.os == pretty.group(1)
    assert f.arch == platform.machine()
    assert f.is_root and not f.sudo_ok
    assert f.fingerprint == sshlab.fingerprint and f.key_type == "ssh-ed25519"
    local = docker.DockerClient(base_url="unix:///var/run/docker.sock", version="1.41")
    try:
        assert f.docker_version == local.version()["Version"] and f.docker_error == ""
    finally:
        local.close()
    assert f.free_bytes and f.free_bytes > 0
    assert f.label == "127.0.0.1" and f.address == "127.0.0.1"


def test_docker_over_the_one_transport(sshlab: Lab, known_hosts: Path) -> None:
    with connect(make_conn(sshlab), Secrets(), known_hosts=str(known_hosts)) as host:
        assert isinstance(host, SSHHost)
        transport = host.transport
        opened: list[object] = []
        real_open = transport.open_session

        def counting_open(*a: object, **kw: object):
            ch = real_open(*a, **kw)
            opened.append(ch)
            return ch

        transport.open_session = counting_open  # type: ignore[method-assign]
        client = host.docker(timeout=30)
        assert host.docker(timeout=30) is client  # cached per host
        version = client.version()
        assert version["ApiVersion"] and version["Version"]
        images = client.images.list()
        assert isinstance(images, list)
        client.containers.list(all=True)
        # negotiation + 3 calls, all over ONE dial-stdio channel of this transport
        assert len(opened) == 1
        assert client.adapter.opened == 1  # type: ignore[attr-defined]
        assert host.transport is transport
    assert not transport.is_active()  # close() closed the transport (and the client)


def test_reconnects_after_drop_with_same_key(sshlab: Lab, known_hosts: Path) -> None:
    host = connect(make_conn(sshlab), Secrets(), known_hosts=str(known_hosts))
    try:
        first = host.transport
        first.close()
        assert host.run(["true"]).ok
        assert host.transport is not first
    finally:
        host.close()
    with pytest.raises(ConnectFailed, match="closed"):
        host.run(["true"])


def test_a_command_fed_nothing_reads_an_empty_stdin(root_host: Host) -> None:
    """No EOF is sent for it (hosts._send_eof): its stdin is /dev/null, so `cat` ends."""
    assert root_host.run(["cat"], timeout=20) == Result(0, b"", b"")


def test_an_eof_sent_late_never_follows_the_channels_close(
    sshlab: Lab, known_hosts: Path, test_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """paramiko builds a channel's EOF under its lock and sends it after (paramiko#1115):
    when the command ends in between, the transport thread answers the server's CLOSE
    first and OpenSSH drops the whole connection ("ieof packet referred to nonexistent
    channel"). Seen about once in a hundred lab doctor runs with four checks at once on
    one host; here every EOF is held back until the command has ended."""
    import paramiko.common
    import paramiko.transport

    send = paramiko.transport.Transport._send_user_message

    def late_eof(self, data) -> None:  # noqa: ANN001
        if data.asbytes()[:1] == bytes([paramiko.common.MSG_CHANNEL_EOF]):
            time.sleep(0.3)  # the command (`true`) is long done by then
        send(self, data)

    monkeypatch.setattr(paramiko.transport.Transport, "_send_user_message", late_eof)
    root = connect(make_conn(sshlab), Secrets(), known_hosts=str(known_hosts))
    user = connect(
        make_conn(sshlab, user=test_user, auth="password", sudo=True),
        Secrets(
            ssh_passwords={"127.0.0.1": TEST_PASSWORD}, sudo_passwords={"127.0.0.1": TEST_PASSWORD}
        ),
        known_hosts=str(known_hosts),
    )
    try:
        # as root `true` is fed nothing (no EOF at all); as the user, sudo's password
        # and then the EOF, long after `true` ended
        for host in (root, user):
            first = host.transport
            assert host.run(["true"]).ok
            assert host.run(["cat"], input=b"fed").stdout == b"fed"
            assert host.run(["true"]).ok
            assert host.transport is first and first.is_active()  # never dropped
    finally:
        root.close()
        user.close()


def test_write_file_through_symlink_replaces_target(root_host: Host, tmp_path: Path) -> None:
    (tmp_path / "real").write_text("old")
    (tmp_path / "link").symlink_to("real")
    root_host.write_file(str(tmp_path / "link"), b"new")
    assert (tmp_path / "link").is_symlink()
    assert (tmp_path / "real").read_bytes() == b"new"


def test_helper_errors_name_the_operation(root_host: Host, tmp_path: Path) -> None:
    with pytest.raises(CommandFailed) as info:
        root_host.write_file(str(tmp_path / "no-dir" / "f"), b"x", mode=0o600)
    assert info.value.command == f"write {tmp_path / 'no-dir' / 'f'} (mode 600, atomic)"
    with pytest.raises(CommandTimeout) as timeout:
        root_host._sh("sleep 5", what="wait for godot", timeout=0.5)
    assert "`wait for godot`" in str(timeout.value)
