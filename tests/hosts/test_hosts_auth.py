"""SSH authentication: key, agent, password, and the errors people will meet."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import paramiko
import pytest
from hostlab import TEST_PASSWORD, Lab, make_conn

from regwizard.errors import AuthFailed, RegwizardError
from regwizard.hosts import connect
from regwizard.plan import Secrets


def test_key_auth(sshlab: Lab, known_hosts: Path) -> None:
    with connect(make_conn(sshlab), Secrets(), known_hosts=str(known_hosts)) as host:
        assert host.run(["id", "-u"]).stdout == b"0\n"


def test_key_file_with_tilde(sshlab: Lab, known_hosts: Path, isolated_home: Path) -> None:
    (isolated_home / "k").write_bytes(sshlab.client_key.read_bytes())
    with connect(make_conn(sshlab, key_file="~/k"), Secrets(), known_hosts=str(known_hosts)) as h:
        assert h.run(["true"]).ok


def test_key_not_authorized(sshlab: Lab, known_hosts: Path) -> None:
    with pytest.raises(AuthFailed) as info:
        connect(
            make_conn(sshlab, key_file=str(sshlab.other_key)),
            Secrets(),
            known_hosts=str(known_hosts),
        )
    assert str(info.value).startswith(f"root@127.0.0.1:{sshlab.sshd.port}: authentication failed")
    assert "ssh-copy-id" in info.value.fix and str(sshlab.other_key) in info.value.fix


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing", None, "does not exist"),
        ("garbage", b"not a key\n", "not a private key"),
        ("public", "PUB", "not a private key"),
    ],
)
def test_unusable_key_file(
    sshlab: Lab, known_hosts: Path, tmp_path: Path, name: str, content: object, expected: str
) -> None:
    path = tmp_path / name
    if content == "PUB":
        path.write_bytes(sshlab.client_key.with_suffix(".pub").read_bytes())
    elif content is not None:
        path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(RegwizardError) as info:
        connect(make_conn(sshlab, key_file=str(path)), Secrets(), known_hosts=str(known_hosts))
    assert expected in str(info.value)
    assert str(path) in str(info.value)
    assert info.value.fix


def test_encrypted_key_says_so(sshlab: Lab, known_hosts: Path) -> None:
    with pytest.raises(RegwizardError) as info:
        connect(
            make_conn(sshlab, key_file=str(sshlab.encrypted_key)),
            Secrets(),
            known_hosts=str(known_hosts),
        )
    assert "encrypted" in info.value.cause and str(sshlab.encrypted_key) in info.value.cause
    assert "ssh-add" in info.value.fix


def test_unreadable_key_file(
    sshlab: Lab, known_hosts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # We run as root, which reads any file: simulate the EACCES a normal user gets.
    def denied(path: object, password: object = None) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(paramiko.PKey, "from_path", staticmethod(denied))
    with pytest.raises(RegwizardError) as info:
        connect(make_conn(sshlab), Secrets(), known_hosts=str(known_hosts))
    assert f"cannot read SSH key file {sshlab.client_key}: permission denied" in str(info.value)
    assert "chmod 600" in info.value.fix


def test_agent_auth(sshlab: Lab, known_hosts: Path, tmp_path: Path, monkeypatch) -> None:
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(
            ["ssh-add", "-q", str(sshlab.client_key)],
            env=env,
            check=True,
            timeout=10,
            capture_output=True,
        )
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        conn = make_conn(sshlab, auth="agent", key_file="/nonexistent")
        with connect(conn, Secrets(), known_hosts=str(known_hosts)) as host:
            assert host.run(["id", "-u"]).stdout == b"0\n"
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=5)


def test_agent_without_keys(sshlab: Lab, known_hosts: Path) -> None:
    with pytest.raises(AuthFailed) as info:
        connect(make_conn(sshlab, auth="agent"), Secrets(), known_hosts=str(known_hosts))
    assert "ssh-agent has no keys" in str(info.value) and "ssh-add" in info.value.fix


def test_password_auth(sshlab: Lab, known_hosts: Path, test_user: str) -> None:
    conn = make_conn(sshlab, user=test_user, auth="password")
    secrets = Secrets(ssh_passwords={"127.0.0.1": TEST_PASSWORD})
    with connect(conn, secrets, known_hosts=str(known_hosts)) as host:
        assert host.run(["id", "-un"], as_root=False).stdout == f"{test_user}\n".encode()


def test_wrong_password(sshlab: Lab, known_hosts: Path, test_user: str) -> None:
    conn = make_conn(sshlab, user=test_user, auth="password")
    wrong = "definitely-Wrong-7"
    with pytest.raises(AuthFailed) as info:
        connect(conn, Secrets(ssh_passwords={"127.0.0.1": wrong}), known_hosts=str(known_hosts))
    text = f"{info.value}\n{info.value.evidence}"
    assert f"{test_user}@127.0.0.1:{sshlab.sshd.port}: authentication failed" in text
    assert wrong not in text


def test_missing_password(sshlab: Lab, known_hosts: Path, test_user: str) -> None:
    conn = make_conn(sshlab, user=test_user, auth="password")
    with pytest.raises(AuthFailed, match="no SSH password given"):
        connect(conn, Secrets(), known_hosts=str(known_hosts))
