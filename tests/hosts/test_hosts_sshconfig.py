"""~/.ssh/config against a real sshd: an alias, ProxyCommand, ProxyJump, host-key checks.

HOME is a temp dir (hostlab's isolated_home): the config and known_hosts written here
are throwaway files; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hostlab import Lab

from regwizard.errors import ConnectFailed, HostKeyChanged, HostKeyUnknown
from regwizard.hosts import SSHHost, connect
from regwizard.plan import Connection, Secrets

RELAY = """\
import socket, sys, threading
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.settimeout(None)
def up():
    while True:
        data = sys.stdin.buffer.read1(65536)
        if not data:
            break
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while True:
    data = s.recv(65536)
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
"""


def write_config(home: Path, text: str) -> None:
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "config").write_text(text)


def host_entry(sshlab: Lab, alias: str, *extra: str) -> str:
    return "\n".join(
        [
            f"Host {alias}",
            "  HostName 127.0.0.1",
            f"  Port {sshlab.sshd.port}",
            "  User root",
            f"  IdentityFile {sshlab.client_key}",
            *(f"  {line}" for line in extra),
            "",
        ]
    )


def trusting(sshlab: Lab) -> Secrets:
    return Secrets(accepted_host_keys={sshlab.fingerprint})


def test_alias_from_config_connects(sshlab: Lab, isolated_home: Path, known_hosts: Path) -> None:
    write_config(isolated_home, host_entry(sshlab, "regbox"))
    conn = Connection(address="regbox")  # port, user and key all left at their defaults
    with connect(conn, trusting(sshlab), known_hosts=str(known_hosts)) as host:
        assert host.run(["id", "-u"]).stdout == b"0\n"
        assert isinstance(host, SSHHost) and host.route.port == sshlab.sshd.port
        assert host.label == "regbox"
    # remembered under the name OpenSSH uses: the HostName and the port, not the alias
    line = known_hosts.read_text().splitlines()[-1]
    assert line.startswith(f"[127.0.0.1]:{sshlab.sshd.port} ssh-ed25519 ")


def test_alias_unknown_key_is_asked_for(
    sshlab: Lab, isolated_home: Path, known_hosts: Path
) -> None:
    write_config(isolated_home, host_entry(sshlab, "regbox"))
    with pytest.raises(HostKeyUnknown) as info:
        connect(Connection(address="regbox"), Secrets(), known_hosts=str(known_hosts))
    assert info.value.fingerprint == sshlab.fingerprint
    assert "regbox" in info.value.host
    assert not known_hosts.exists()


def test_changed_key_refused_through_alias(
    sshlab: Lab, isolated_home: Path, known_hosts: Path
) -> None:
    write_config(isolated_home, host_entry(sshlab, "regbox"))
    known_hosts.parent.mkdir(mode=0o700, exist_ok=True)
    other = sshlab.other_key.with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{sshlab.sshd.port} {other[0]} {other[1]}\n")
    with pytest.raises(HostKeyChanged):
        connect(Connection(address="regbox"), trusting(sshlab), known_hosts=str(known_hosts))


def test_host_key_alias_names_the_known_hosts_entry(
    sshlab: Lab, isolated_home: Path, known_hosts: Path
) -> None:
    write_config(isolated_home, host_entry(sshlab, "regbox", "HostKeyAlias regbox-key"))
    with connect(Connection(address="regbox"), trusting(sshlab), known_hosts=str(known_hosts)):
        pass
    assert known_hosts.read_text().startswith("regbox-key ssh-ed25519 ")


def test_plan_values_win_over_the_config(
    sshlab: Lab, isolated_home: Path, known_hosts: Path
) -> None:
    # the config's port and key are wrong; the plan's explicit ones are used
    write_config(
        isolated_home,
        "Host regbox\n  HostName 127.0.0.1\n  Port 1\n  IdentityFile /nonexistent/key\n",
    )
    conn = Connection(address="regbox", port=sshlab.sshd.port, key_file=str(sshlab.client_key))
    with connect(conn, trusting(sshlab), known_hosts=str(known_hosts)) as host:
        assert host.run(["true"]).ok


def test_proxy_command(sshlab: Lab, isolated_home: Path, known_hosts: Path) -> None:
    relay = isolated_home / "relay.py"
    relay.write_text(RELAY)
    write_config(
        isolated_home,
        host_entry(sshlab, "viaproxy", f"ProxyCommand {sys.executable} {relay} %h %p"),
    )
    with connect(
        Connection(address="viaproxy"), trusting(sshlab), known_hosts=str(known_hosts)
    ) as host:
        assert host.run(["echo", "through the relay"]).stdout == b"through the relay\n"
        assert host.run(["id", "-u"]).stdout == b"0\n"


def test_proxy_jump_through_itself(sshlab: Lab, isolated_home: Path, known_hosts: Path) -> None:
    # the jump host is the same sshd under another known_hosts name, so its key is
    # unknown on its own: it must be asked for like any other
    write_config(
        isolated_home,
        host_entry(sshlab, "target", "ProxyJump jumpbox")
        + host_entry(sshlab, "jumpbox", "HostKeyAlias jumpbox-key"),
    )
    known_hosts.parent.mkdir(mode=0o700, exist_ok=True)
    pub = sshlab.sshd.host_keys[0].with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{sshlab.sshd.port} {pub[0]} {pub[1]}\n")
    with pytest.raises(HostKeyUnknown) as info:
        connect(Connection(address="target"), Secrets(), known_hosts=str(known_hosts))
    assert "jumpbox" in info.value.host
    assert "jumpbox-key" not in known_hosts.read_text()
    with connect(
        Connection(address="target"), trusting(sshlab), known_hosts=str(known_hosts)
    ) as host:
        assert isinstance(host, SSHHost) and host._jump is not None
        assert host.run(["id", "-u"]).stdout == b"0\n"
        jump = host._jump
    assert jump._closed  # closed with the host
    assert "jumpbox-key ssh-ed25519" in known_hosts.read_text()


def test_proxy_jump_changed_jump_key_refused(
    sshlab: Lab, isolated_home: Path, known_hosts: Path
) -> None:
    write_config(
        isolated_home,
        host_entry(sshlab, "target", "ProxyJump jumpbox")
        + host_entry(sshlab, "jumpbox", "HostKeyAlias jumpbox-key"),
    )
    known_hosts.parent.mkdir(mode=0o700, exist_ok=True)
    other = sshlab.other_key.with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"jumpbox-key {other[0]} {other[1]}\n")
    with pytest.raises(HostKeyChanged) as info:
        connect(Connection(address="target"), trusting(sshlab), known_hosts=str(known_hosts))
    assert "jumpbox" in str(info.value)


def test_proxy_command_that_fails_is_a_clear_error(
    sshlab: Lab, isolated_home: Path, known_hosts: Path
) -> None:
    write_config(isolated_home, host_entry(sshlab, "viaproxy", "ProxyCommand false %h"))
    with pytest.raises(ConnectFailed) as info:
        connect(Connection(address="viaproxy"), trusting(sshlab), known_hosts=str(known_hosts))
    assert "viaproxy" in info.value.cause and info.value.fix


def test_proxy_jump_loop_ends(sshlab: Lab, isolated_home: Path, known_hosts: Path) -> None:
    write_config(
        isolated_home,
        host_entry(sshlab, "a", "ProxyJump b") + host_entry(sshlab, "b", "ProxyJump a"),
    )
    with pytest.raises(ConnectFailed) as info:
        connect(Connection(address="a"), trusting(sshlab), known_hosts=str(known_hosts))
    assert "ProxyJump" in info.value.cause
