"""A non-root SSH user: sudo with the right/wrong/no password, and Docker through sudo."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hostlab import TEST_PASSWORD, Lab, make_conn, remote_gone

from regwizard.errors import CommandFailed, CommandTimeout, SudoFailed
from regwizard.hosts import Host, connect
from regwizard.plan import Secrets


def user_conn(sshlab: Lab, user: str, **kw: object):
    return make_conn(sshlab, user=user, auth="password", **kw)


def passwords(sudo: str | None = TEST_PASSWORD) -> Secrets:
    s = Secrets(ssh_passwords={"127.0.0.1": TEST_PASSWORD})
    if sudo is not None:
        s.sudo_passwords["127.0.0.1"] = sudo
    return s


def test_sudo_runs_as_root_and_stdin_is_intact(user_host: Host) -> None:
    assert user_host.run(["id", "-u"]).stdout == b"0\n"
    assert user_host.run(["id", "-u"], as_root=False).stdout != b"0\n"
    data = b"payload\nwithout the password\n" * 1000
    res = user_host.run(["cat"], input=data)
    assert res.stdout == data  # sudo took exactly its password line, nothing more
    assert TEST_PASSWORD.encode() not in res.stdout + res.stderr


def test_sudo_files(user_host: Host, tmp_path: Path) -> None:
    tmp_path.chmod(0o700)  # only root can write here: proves the write went through sudo
    target = tmp_path / "root-only"
    user_host.write_file(str(target), b"secret stuff", mode=0o600)
    assert target.stat().st_uid == 0 and target.read_bytes() == b"secret stuff"
    assert user_host.read_file(str(target)) == b"secret stuff"


def test_sudo_failure_text_has_no_password(user_host: Host) -> None:
    with pytest.raises(CommandFailed) as info:
        user_host.run(["sh", "-c", 'echo "bad $1" >&2; exit 2', "sh", TEST_PASSWORD])
    text = f"{info.value}\n{info.value.evidence}\n{info.value.command}"
    assert TEST_PASSWORD not in text and "********" in text
    lines: list[str] = []
    user_host.run(["echo", TEST_PASSWORD], on_line=lines.append)
    assert lines == ["********"]


def test_sudo_timeout_kills_the_root_command(user_host: Host) -> None:
    with pytest.raises(CommandTimeout):
        user_host.run(["sleep", "30.5678"], timeout=1)
    assert remote_gone("sleep 30.5678")


def test_facts_with_sudo(user_host: Host) -> None:
    f = user_host.facts()
    assert not f.is_root and f.sudo_ok
    assert f.docker_version and not f.docker_error


def test_docker_through_sudo_dial_stdio(user_host: Host) -> None:
    client = user_host.docker(timeout=30)
    assert client.version()["Version"]
    assert isinstance(client.images.list(), list)
    assert client.adapter.opened == 1  # type: ignore[attr-defined]


def test_wrong_sudo_password(sshlab: Lab, known_hosts: Path, test_user: str) -> None:
    wrong = "not-the-Sudo-pw-42"
    host = connect(
        user_conn(sshlab, test_user, sudo=True), passwords(sudo=wrong), known_hosts=str(known_hosts)
    )
    with host:
        start = time.monotonic()
        with pytest.raises(SudoFailed) as info:
            host.run(["true"])
        assert time.monotonic() - start < 15
        e = info.value
        assert e.cause == "sudo on 127.0.0.1 refused the password"
        for text in (str(e), e.evidence, e.fix):
            assert wrong not in text and TEST_PASSWORD not in text
        # remembered: no second slow probe with the same wrong password
        start = time.monotonic()
        with pytest.raises(SudoFailed):
            host.read_file("/etc/hostname")
        assert time.monotonic() - start < 0.5
        f = host.facts()
        assert not f.sudo_ok and "refused the password" in f.docker_error
        # fixing the password on the same Host works
        host.secrets.sudo_passwords["127.0.0.1"] = TEST_PASSWORD
        assert host.run(["id", "-u"]).stdout == b"0\n"


def test_missing_sudo_password(sshlab: Lab, known_hosts: Path, test_user: str) -> None:
    with connect(
        user_conn(sshlab, test_user, sudo=True), passwords(sudo=None), known_hosts=str(known_hosts)
    ) as host:
        with pytest.raises(SudoFailed) as info:
            host.run(["true"])
    assert "needs a password" in info.value.cause


def test_non_root_without_sudo(sshlab: Lab, known_hosts: Path, test_user: str) -> None:
    with connect(user_conn(sshlab, test_user), passwords(), known_hosts=str(known_hosts)) as host:
        assert host.run(["id", "-u"]).stdout != b"0\n"
        f = host.facts()
        assert not f.is_root and not f.sudo_ok
        assert not f.docker_version
        assert "may not use the Docker socket" in f.docker_error
        assert "sudo" in f.docker_error
